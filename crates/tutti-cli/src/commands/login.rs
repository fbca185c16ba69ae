//! `tutti login` and `tutti logout`: sign in to a server and keep its URL and an API token
//! as a named profile, or forget one.
//!
//! Signing in trades a user name and password for an API token (`POST /api/v1/auth/token`).
//! The server answers what is missing, and the CLI asks for it and tries again: a 401 that
//! asks for the one-time code, a 403 that says the account must change its password first.
//! Those answers are recognised by their exact messages, which are constants the CLI
//! shares with the server (`tutti_api::errors`), so rewording one cannot break
//! the other ([`asks_for_code`], [`must_change_password`]).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tutti_api::errors as signin;

use crate::Env;
use crate::args::LoginArgs;
use crate::client::{ApiClient, CliError, urlencode};
use crate::output::print_json;
use crate::profile::{Profile, Profiles};
use crate::prompt::SecretInput;

/// Signs in (or checks `--token`) and stores the profile as the current one.
pub(crate) async fn login(mut args: LoginArgs, env: &Env, json: bool) -> Result<(), CliError> {
    check_server_url(&args.server)?;
    args.server = args.server.trim_end_matches('/').to_string();
    let ca_file = args
        .ca
        .as_deref()
        .map(std::path::absolute)
        .transpose()
        .map_err(|err| CliError::Usage(format!("--ca: {err}")))?;
    let anonymous = ApiClient::new(&profile(&args.server, None, ca_file.clone()))?;
    let signed_in = match &args.token {
        Some(token) => check_token(&args.server, token, ca_file.clone()).await?,
        None => sign_in(&anonymous, &args).await?,
    };
    let mut profiles = Profiles::load(&env.profiles_path)?;
    let stored = profile(&args.server, Some(signed_in.token.clone()), ca_file);
    match &signed_in.token_id {
        Some(token_id) => profiles.set_current_issued(&args.name, stored, token_id.clone()),
        None => profiles.set_current(&args.name, stored),
    }
    profiles.save(&env.profiles_path)?;
    print_signed_in(&signed_in, &args, env, json);
    Ok(())
}

/// Forgets a profile, revoking its token first when `tutti login` issued it.
pub(crate) async fn logout(name: Option<String>, env: &Env, json: bool) -> Result<(), CliError> {
    let mut profiles = Profiles::load(&env.profiles_path)?;
    let Some(name) = name.or_else(|| profiles.current.clone()) else {
        return Err(CliError::Usage(
            "no current profile to log out of: name one (`tutti logout NAME`)".into(),
        ));
    };
    let Some((profile, token_id)) = profiles.forget(&name) else {
        let known: Vec<&String> = profiles.profiles.keys().collect();
        return Err(CliError::Usage(format!(
            "no profile named {name:?} (profiles: {known:?})"
        )));
    };
    let revoked = match &token_id {
        Some(token_id) => revoke_own_token(&profile, token_id).await,
        None => Revoked::NotIssuedByLogin,
    };
    profiles.save(&env.profiles_path)?;
    if json {
        let revoked_id = matches!(revoked, Revoked::Yes).then_some(token_id);
        print_json(&json!({ "profile": name, "revoked_token_id": revoked_id }));
        return Ok(());
    }
    match revoked {
        Revoked::Yes => println!("logged out of {name:?}: its API token is revoked"),
        Revoked::NotIssuedByLogin => println!(
            "forgot profile {name:?}; its token was not issued by `tutti login`, so it still \
             works on the server (revoke it with `tutti tokens revoke TOKEN_ID` if it should not)"
        ),
        Revoked::AlreadyRefused(reason) => {
            println!("logged out of {name:?}: the server already refuses its token ({reason})")
        }
        Revoked::Failed(reason) => println!(
            "forgot profile {name:?}, but could not revoke its token {} on the server \
             ({reason}): revoke it from another profile with `tutti tokens revoke {}`",
            token_id.as_deref().unwrap_or_default(),
            token_id.as_deref().unwrap_or_default()
        ),
    }
    Ok(())
}

/// Who is signed in, and the token the profile will hold.
struct SignedIn {
    token: String,
    token_id: Option<String>,
    token_name: Option<String>,
    account: String,
    role: String,
    expires_at: Option<String>,
}

/// The body of `POST /api/v1/auth/token`.
#[derive(Serialize)]
struct TokenLogin {
    username: String,
    password: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    token_name: String,
    expires_in_days: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    new_password: Option<String>,
}

impl fmt::Debug for TokenLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenLogin")
            .field("username", &self.username)
            .field("token_name", &self.token_name)
            .finish_non_exhaustive()
    }
}

/// The answer of `POST /api/v1/auth/token` (and `POST /api/v1/tokens`).
#[derive(Deserialize)]
struct IssuedToken {
    token_id: String,
    token: String,
    name: String,
    role: String,
    expires_at: Option<String>,
}

async fn sign_in(client: &ApiClient, args: &LoginArgs) -> Result<SignedIn, CliError> {
    let mut input = SecretInput::new(args.password_stdin);
    let username = match &args.user {
        Some(user) => user.clone(),
        None => input.answer("User: ", "--user NAME")?,
    };
    let password = input.password(
        &format!("Password for {username} on {}: ", args.server),
        "the password on its first line",
    )?;
    let mut request = TokenLogin {
        username,
        password,
        code: args.code.clone(),
        token_name: format!("tutti CLI on {}", hostname()),
        expires_in_days: args.expires_days,
        new_password: None,
    };
    // Each answer that asks for something is followed at most once, so this ends.
    loop {
        let outcome: Result<IssuedToken, CliError> = client.post("auth/token", &request).await;
        match outcome {
            Ok(issued) => return Ok(signed_in(issued, request.username)),
            Err(CliError::Refused {
                status: 401,
                message,
            }) if asks_for_code(&message) && request.code.is_none() => {
                let code = input.answer(
                    "Code from the authenticator app (or a recovery code): ",
                    "--code CODE (this account uses two-factor sign-in)",
                )?;
                request.code = Some(code);
            }
            Err(CliError::Refused {
                status: 403,
                message,
            }) if must_change_password(&message) && request.new_password.is_none() => {
                if !args.password_stdin {
                    eprintln!(
                        "{} must change its password before signing in.",
                        request.username
                    );
                }
                let line =
                    "a new password on its second line (this account must change its password)";
                request.new_password = Some(input.new_password(line)?);
            }
            Err(err) => return Err(explain_refusal(err, &args.server)),
        }
    }
}

/// Whether a 401 from the token route asks for the second factor rather than refusing.
fn asks_for_code(message: &str) -> bool {
    message == signin::CODE_REQUIRED
}

/// Whether a 403 from the token route asks for a new password.
fn must_change_password(message: &str) -> bool {
    message == signin::PASSWORD_CHANGE_REQUIRED
}

/// A failed sign-in, with what to do next.
fn explain_refusal(err: CliError, server: &str) -> CliError {
    let CliError::Refused { status, message } = err else {
        return err;
    };
    let next = match status {
        401 if message.contains("current password") => {
            "the first line of --password-stdin is the current password"
        }
        401 => {
            "check the user name and password, or ask an admin for a new one-time password \
             (`tutti users reset-password NAME`)"
        }
        400 => "choose another new password and run `tutti login` again",
        403 if message == signin::MFA_SETUP_REQUIRED => {
            "admins must set up two-factor sign-in first: sign in to the dashboard, set it up, \
             then run `tutti login` again"
        }
        429 => "wait, then try again",
        _ => "",
    };
    let message = match next {
        "" => format!("signing in to {server} failed: {message}"),
        next => format!("signing in to {server} failed: {message}; {next}"),
    };
    CliError::Refused { status, message }
}

fn signed_in(issued: IssuedToken, account: String) -> SignedIn {
    SignedIn {
        token: issued.token,
        token_id: Some(issued.token_id),
        token_name: Some(issued.name),
        account,
        role: issued.role,
        expires_at: issued.expires_at,
    }
}

/// Checks `--token` with `GET /api/v1/auth/me` before it is stored.
async fn check_token(
    server: &str,
    token: &str,
    ca_file: Option<std::path::PathBuf>,
) -> Result<SignedIn, CliError> {
    let client = ApiClient::new(&profile(server, Some(token.to_string()), ca_file))?;
    let me: tutti_api::accounts::Me = client.get("auth/me").await.map_err(|err| match err {
        CliError::Refused { status, message } if status == 401 || status == 403 => {
            CliError::Refused {
                status,
                message: format!(
                    "{server} does not accept this token ({message}): check it, or sign in \
                     with a password instead (`tutti login --server {server} --user NAME`)"
                ),
            }
        }
        other => other,
    })?;
    Ok(SignedIn {
        token: token.to_string(),
        token_id: None,
        token_name: None,
        account: me.account.username,
        role: me.role.to_string(),
        expires_at: None,
    })
}

fn print_signed_in(signed_in: &SignedIn, args: &LoginArgs, env: &Env, json: bool) {
    if json {
        print_json(&json!({
            "profile": args.name,
            "server": args.server,
            "account": signed_in.account,
            "role": signed_in.role,
            "token_id": signed_in.token_id,
            "token_name": signed_in.token_name,
            "expires_at": signed_in.expires_at,
        }));
        return;
    }
    println!(
        "signed in to {} as {} (role {})",
        args.server, signed_in.account, signed_in.role
    );
    match (&signed_in.token_name, &signed_in.expires_at) {
        (Some(name), Some(expires_at)) => {
            println!("API token {name:?} stored; it expires at {expires_at}");
        }
        (Some(name), None) => println!("API token {name:?} stored; it never expires"),
        _ => println!("API token stored (its expiry is not known to the CLI)"),
    }
    println!(
        "profile {:?} is now current (in {})",
        args.name,
        env.profiles_path.display()
    );
}

/// What became of a profile's token at logout.
enum Revoked {
    Yes,
    /// Given with `--token`: its id is unknown, so it is left alone.
    NotIssuedByLogin,
    /// Expired, revoked already, or its account is disabled.
    AlreadyRefused(String),
    Failed(String),
}

async fn revoke_own_token(profile: &Profile, token_id: &str) -> Revoked {
    let client = match ApiClient::new(profile) {
        Ok(client) => client,
        Err(err) => return Revoked::Failed(err.to_string()),
    };
    match client
        .delete(&format!("tokens/{}", urlencode(token_id)))
        .await
    {
        Ok(()) => Revoked::Yes,
        Err(CliError::Refused {
            status: 401,
            message,
        }) => Revoked::AlreadyRefused(message),
        Err(err) => Revoked::Failed(err.to_string()),
    }
}

fn check_server_url(server: &str) -> Result<(), CliError> {
    if server.starts_with("http://") || server.starts_with("https://") {
        return Ok(());
    }
    Err(CliError::Usage(format!(
        "--server {server:?} must start with http:// or https://"
    )))
}

fn profile(server: &str, token: Option<String>, ca_file: Option<std::path::PathBuf>) -> Profile {
    Profile {
        server: server.to_string(),
        token,
        ca_file,
    }
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "an unnamed host".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_two_follow_up_answers_are_recognised() {
        // The exact messages of tutti-server's `auth/signin.rs` and `api/auth.rs`.
        assert!(asks_for_code(
            "this account uses two-factor sign-in: send the 6-digit code from the authenticator app (or a recovery code) as `code`"
        ));
        assert!(must_change_password(
            "this account must change its password first: send it as `new_password`"
        ));
        assert!(!asks_for_code("wrong username or password"));
        assert!(!must_change_password("setup_mfa before using an API token"));
    }

    #[test]
    fn a_wrong_password_says_what_to_do_next() {
        let refused = CliError::Refused {
            status: 401,
            message: "wrong username or password".into(),
        };
        let err = explain_refusal(refused, "http://s").to_string();
        assert!(
            err.contains("wrong username or password") && err.contains("reset-password"),
            "{err}"
        );
    }

    #[test]
    fn the_request_debug_output_hides_the_passwords() {
        let request = TokenLogin {
            username: "alice".into(),
            password: "pw-one-secret".into(),
            code: Some("123456".into()),
            token_name: "cli".into(),
            expires_in_days: 30,
            new_password: Some("pw-two-secret".into()),
        };
        let debug = format!("{request:?}");
        assert!(
            !debug.contains("secret") && !debug.contains("123456"),
            "{debug}"
        );
    }
}
