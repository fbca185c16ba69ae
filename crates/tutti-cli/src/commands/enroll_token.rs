//! `tutti enroll-token create|list|revoke`: the one-time secrets agents enroll with. The
//! secret is printed once, at creation, with the exact command that enrolls an agent.

use serde_json::{Value, json};

use crate::args::EnrollTokenAction;
use crate::client::{ApiClient, CliError, urlencode};
use crate::output::{print_json, table, text};

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
            let created: Value = client.post("enrollment-tokens", &body).await?;
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

fn print_created(client: &ApiClient, created: &Value, json: bool) {
    if json {
        print_json(created);
        return;
    }
    let token = text(created, "token");
    println!(
        "enrollment token {} created: {} use(s), valid until {}",
        text(created, "token_id"),
        text(created, "uses"),
        text(created, "expires_at")
    );
    println!("\nThe secret is shown only now:\n\n  {token}\n");
    println!("On the machine to enroll, install `tutti-agent`, then run:\n");
    println!("  {}\n", enroll_command(client.base(), &token));
    println!("and start it with `tutti-agent run`.");
}

/// The command an operator pastes on a new machine.
fn enroll_command(server: &str, token: &str) -> String {
    format!("tutti-agent enroll --server {server} --token {token}")
}

async fn list(client: &ApiClient, limit: u32, json: bool) -> Result<(), CliError> {
    let page: Value = client
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
    for token in page["items"].as_array().into_iter().flatten() {
        rows.add_row(vec![
            text(token, "token_id"),
            text(token, "name"),
            text(token, "uses_left"),
            text(token, "expires_at"),
            text(token, "revoked_at"),
            text(token, "created_by"),
        ]);
    }
    println!("{rows}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_enroll_command_is_the_agents_own_syntax() {
        assert_eq!(
            enroll_command("http://127.0.0.1:8080", "abc"),
            "tutti-agent enroll --server http://127.0.0.1:8080 --token abc"
        );
    }
}
