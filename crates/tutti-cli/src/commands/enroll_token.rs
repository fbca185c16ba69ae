//! `tutti enroll-token create|list|revoke`: the one-time secrets agents enroll with. The
//! secret is printed once, at creation, with the exact command that enrolls an agent.

use serde_json::json;
use tutti_api::Paged;
use tutti_api::tokens::{CreatedToken, EnrollmentToken};

use crate::args::EnrollTokenAction;
use crate::client::{ApiClient, CliError, urlencode};
use crate::output::{or_empty, print_json, table};

/// Dispatches the `enroll-token` subcommands.
pub(crate) async fn enroll_token(
    client: &ApiClient,
    action: EnrollTokenAction,
    json: bool,
) -> Result<(), CliError> {
    match action {
        EnrollTokenAction::Create {
            name,
            uses,
            expires,
        } => {
            let expires_in_secs = crate::duration::parse_secs("--expires", &expires)?;
            let body = json!({ "name": name, "uses": uses, "expires_in_secs": expires_in_secs });
            let created: CreatedToken = client.post("enrollment-tokens", &body).await?;
            print_created(client, &created, json);
            Ok(())
        }
        EnrollTokenAction::List { limit } => list(client, limit, json).await,
        EnrollTokenAction::Revoke { token_id } => {
            client
                .delete(&format!("enrollment-tokens/{}", urlencode(&token_id)))
                .await?;
            if json {
                print_json(&json!({ "token_id": token_id, "revoked": true }));
            } else {
                println!("enrollment token {token_id} revoked");
            }
            Ok(())
        }
    }
}

fn print_created(client: &ApiClient, created: &CreatedToken, json: bool) {
    if json {
        print_json(created);
        return;
    }
    println!(
        "enrollment token {} created: {} use(s), valid until {}",
        created.token_id, created.uses, created.expires_at
    );
    println!("\nThe secret is shown only now:\n\n  {}\n", created.token);
    let key_id = created.server_key_id.to_string();
    let pins = Pins {
        server: created.public_url.as_deref().unwrap_or(client.base()),
        token: &created.token,
        key_id: &key_id,
        ca_file: client.ca_file(),
    };
    if created.install_script {
        println!("On the machine to enroll, as root, install, enroll and start the agent with:\n");
        println!("  {}\n", pins.install_command());
        println!("or, with `tutti-agent` already installed:\n");
    } else {
        println!("On the machine to enroll, install `tutti-agent`, then run:\n");
    }
    println!("  {}\n", pins.enroll_command());
    if let Some(ca_file) = pins.ca_file {
        println!(
            "(copy {} to the machine as ca.pem first)",
            ca_file.display()
        );
    }
    println!("and start it with `tutti-agent install` (a systemd service) or `tutti-agent run`.");
}

/// What an install command pins: the server, its signing key and, for a private CA, the
/// CA the CLI itself trusts.
struct Pins<'a> {
    server: &'a str,
    token: &'a str,
    key_id: &'a str,
    ca_file: Option<&'a std::path::Path>,
}

impl Pins<'_> {
    /// The command an operator pastes on a new machine that already has the agent binary.
    fn enroll_command(&self) -> String {
        let ca = match self.ca_file {
            Some(_) => " --ca ca.pem",
            None => "",
        };
        format!(
            "tutti-agent enroll --server {} --token {} --server-key-id {}{ca}",
            self.server, self.token, self.key_id
        )
    }

    /// The one-liner that downloads, verifies, enrolls and installs the agent.
    fn install_command(&self) -> String {
        let url = format!("{}/install.sh?token={}", self.server, self.token);
        match self.ca_file {
            Some(_) => format!("curl -fsSL --cacert ca.pem '{url}' | sudo TUTTI_CA=ca.pem sh"),
            None => format!("curl -fsSL '{url}' | sudo sh"),
        }
    }
}

async fn list(client: &ApiClient, limit: u32, json: bool) -> Result<(), CliError> {
    let page: Paged<EnrollmentToken> = client
        .get(&format!("enrollment-tokens?limit={limit}"))
        .await?;
    if json {
        print_json(&page);
        return Ok(());
    }
    let mut rows = table(&[
        "TOKEN",
        "NAME",
        "USES LEFT",
        "EXPIRES",
        "REVOKED",
        "CREATED BY",
    ]);
    for token in &page.items {
        rows.add_row(vec![
            token.token_id.clone(),
            token.name.clone(),
            token.uses_left.to_string(),
            token.expires_at.to_string(),
            or_empty(token.revoked_at),
            token.created_by.clone(),
        ]);
    }
    println!("{rows}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_commands_pin_the_key_and_a_private_ca() {
        let ca_file = std::path::PathBuf::from("/home/op/ca.pem");
        let mut pins = Pins {
            server: "https://tutti.example.com",
            token: "abc",
            key_id: "0123456789abcdef",
            ca_file: None,
        };
        assert_eq!(
            pins.enroll_command(),
            "tutti-agent enroll --server https://tutti.example.com --token abc --server-key-id 0123456789abcdef"
        );
        assert_eq!(
            pins.install_command(),
            "curl -fsSL 'https://tutti.example.com/install.sh?token=abc' | sudo sh"
        );
        pins.ca_file = Some(&ca_file);
        assert!(pins.enroll_command().ends_with(" --ca ca.pem"));
        assert_eq!(
            pins.install_command(),
            "curl -fsSL --cacert ca.pem 'https://tutti.example.com/install.sh?token=abc' | sudo TUTTI_CA=ca.pem sh"
        );
    }
}
