//! One file per command; [`dispatch`] is the single place that maps a parsed command line
//! to its implementation and an error to its exit code.

mod agents;
mod apply;
mod audit;
#[cfg(feature = "embedded")]
mod bench;
mod completions;
mod config;
mod enroll_token;
mod freeze;
mod inventory;
mod jobs;
mod keys;
mod login;
mod passwd;
mod run;
mod runs;
mod schedules;
#[cfg(feature = "embedded")]
mod server;
mod tokens;
#[cfg(feature = "embedded")]
mod up;
mod users;
mod whoami;

use std::process::ExitCode;

use crate::Env;
use crate::args::{Cli, Command};
use crate::client::{ApiClient, CliError};
use crate::profile::Profiles;

/// Runs the command and turns its outcome into an exit code.
pub(crate) async fn dispatch(cli: Cli, env: Env) -> ExitCode {
    let json = cli.json;
    let profile = cli.profile.clone();
    let outcome = match cli.command {
        // Boxed: these futures hold a whole server configuration and are large.
        #[cfg(feature = "embedded")]
        Command::Up(args) => Box::pin(up::up(args, &env))
            .await
            .map(|()| ExitCode::SUCCESS),
        #[cfg(feature = "embedded")]
        Command::Server(args) => Box::pin(server::server(args, &env))
            .await
            .map(|()| ExitCode::SUCCESS),
        #[cfg(feature = "embedded")]
        Command::Bench(args) => Box::pin(bench::bench(args, &env, json))
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Login(args) => login::login(args, &env, json)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Logout { name } => login::logout(name, &env, json)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Completions { shell } => {
            completions::completions(shell);
            Ok(ExitCode::SUCCESS)
        }
        command => match client(&env, profile.as_deref()) {
            Ok(client) => over_http(&client, command, json)
                .await
                .map_err(explain_refusal),
            Err(err) => Err(err),
        },
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tutti: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

/// The commands that talk to the server's HTTP API.
async fn over_http(client: &ApiClient, command: Command, json: bool) -> Result<ExitCode, CliError> {
    let done = |()| ExitCode::SUCCESS;
    match command {
        Command::Run(args) => run::run(client, args, json).await,
        Command::Runs(args) => runs::runs(client, args, json).await.map(done),
        Command::Agents(args) => agents::agents(client, args, json).await.map(done),
        Command::Apply(args) => apply::apply(client, args, json).await.map(done),
        Command::Jobs(args) => jobs::jobs(client, args, json).await.map(done),
        Command::Inventory(args) => inventory::inventory(client, args, json).await.map(done),
        Command::Config(args) => config::config(client, args, json).await.map(done),
        Command::Audit(args) => audit::audit(client, args, json).await.map(done),
        Command::Freeze(args) => freeze::freeze(client, args.action, json).await.map(done),
        Command::Keys(args) => keys::keys(client, args.action, json).await.map(done),
        Command::Schedules(args) => schedules::schedules(client, args, json).await.map(done),
        Command::EnrollToken(args) => enroll_token::enroll_token(client, args.action, json)
            .await
            .map(done),
        Command::Whoami => whoami::whoami(client, json).await.map(done),
        Command::Passwd(args) => passwd::passwd(client, args, json).await.map(done),
        Command::Users(args) => users::users(client, args.action, json).await.map(done),
        Command::Tokens(args) => tokens::tokens(client, args.action, json).await.map(done),
        #[cfg(feature = "embedded")]
        Command::Up(_) | Command::Server(_) | Command::Bench(_) => Err(CliError::Other(
            "this command does not use the server".into(),
        )),
        Command::Login(_) | Command::Logout { .. } | Command::Completions { .. } => Err(
            CliError::Other("this command does not use the server".into()),
        ),
    }
}

/// The API client for the chosen profile (environment overrides win).
fn client(env: &Env, profile: Option<&str>) -> Result<ApiClient, CliError> {
    let profiles =
        Profiles::load(&env.profiles_path).map_err(|err| CliError::Usage(format!("{err:#}")))?;
    let resolved = profiles
        .resolve(profile, &env.overrides)
        .map_err(|err| CliError::Usage(err.to_string()))?;
    ApiClient::new(&resolved)
}

/// Adds what to do next to a refusal of the credentials (401) or of the role (403).
fn explain_refusal(err: CliError) -> CliError {
    let CliError::Refused { status, message } = err else {
        return err;
    };
    let next = match status {
        401 if message.contains("disabled") => {
            "ask an admin to enable the account (`tutti users enable NAME`), or sign in as \
             another one (`tutti login`)"
        }
        401 => "sign in with `tutti login --server URL`, or set TUTTI_TOKEN to a valid API token",
        403 if message.contains(" role") => {
            "ask an admin for an account or token with that role (`tutti whoami` shows yours)"
        }
        _ => return CliError::Refused { status, message },
    };
    CliError::Refused {
        status,
        message: format!("{message}; {next}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_credentials_and_roles_say_what_to_do_next() {
        let explained = |status, message: &str| {
            explain_refusal(CliError::Refused {
                status,
                message: message.into(),
            })
            .to_string()
        };
        let role = explained(403, "this needs the operator role; admin/ci has viewer");
        assert!(
            role.contains("operator role") && role.contains("tutti whoami"),
            "{role}"
        );
        let disabled = explained(401, "the token's account is disabled");
        assert!(disabled.contains("tutti users enable"), "{disabled}");
        let missing = explained(
            401,
            "sign in first: send a session cookie or `Authorization: Bearer <API token>`",
        );
        assert!(missing.contains("tutti login --server"), "{missing}");
        assert_eq!(
            explained(404, "run x not found"),
            "the server refused (404): run x not found"
        );
    }
}
