//! `tutti tokens list|create|revoke`: API tokens (`/api/v1/tokens`). Everyone manages their
//! own; an admin lists (`--all`) and revokes anyone's. The secret is printed once, at
//! creation.

use serde_json::{Value, json};

use crate::args::TokensAction;
use crate::client::{ApiClient, CliError, urlencode};
use crate::output::{print_json, print_page_footer, table, text};

/// Dispatches the `tokens` subcommands.
pub(crate) async fn tokens(
    client: &ApiClient,
    action: TokensAction,
    json: bool,
) -> Result<(), CliError> {
    match action {
        TokensAction::List { all, limit, offset } => list(client, all, limit, offset, json).await,
        TokensAction::Create {
            name,
            role,
            expires_days,
        } => {
            let body = json!({ "name": name, "role": role, "expires_in_days": expires_days });
            let created: Value = client.post("tokens", &body).await?;
            print_created(client, &created, json);
            Ok(())
        }
        TokensAction::Revoke { token_id } => {
            client
                .delete(&format!("tokens/{}", urlencode(&token_id)))
                .await?;
            if json {
                print_json(&json!({ "token_id": token_id, "revoked": true }));
            } else {
                println!("API token {token_id} revoked");
            }
            Ok(())
        }
    }
}

async fn list(
    client: &ApiClient,
    all: bool,
    limit: u32,
    offset: u64,
    json: bool,
) -> Result<(), CliError> {
    let page: Value = client
        .get(&format!("tokens?all={all}&limit={limit}&offset={offset}"))
        .await?;
    if json {
        print_json(&page);
        return Ok(());
    }
    let mut rows = table(&[
        "TOKEN",
        "NAME",
        "OWNER",
        "ROLE",
        "CREATED",
        "EXPIRES",
        "LAST USED",
        "REVOKED",
    ]);
    for token in page["items"].as_array().into_iter().flatten() {
        let expires = match text(token, "expires_at") {
            never if never.is_empty() => "never".to_string(),
            at => at,
        };
        rows.add_row(vec![
            text(token, "token_id"),
            text(token, "name"),
            text(token, "username"),
            text(token, "role"),
            text(token, "created_at"),
            expires,
            text(token, "last_used_at"),
            text(token, "revoked_at"),
        ]);
    }
    println!("{rows}");
    print_page_footer(&page, offset, "tokens");
    Ok(())
}

fn print_created(client: &ApiClient, created: &Value, json: bool) {
    if json {
        print_json(created);
        return;
    }
    let expires = match created["expires_at"].as_str() {
        Some(at) => format!("expires at {at}"),
        None => "never expires".to_string(),
    };
    println!(
        "API token {} ({:?}, role {}) created; it {expires}",
        text(created, "token_id"),
        text(created, "name"),
        text(created, "role")
    );
    let token = text(created, "token");
    println!("\nThe secret is shown only now; it is not shown again:\n\n  {token}\n");
    println!("Use it as TUTTI_TOKEN, or store it as a profile:\n");
    println!(
        "  tutti login --server {} --token <secret> --name {}",
        client.base(),
        profile_name(&text(created, "name"))
    );
}

/// A token name as a profile name: spaces become dashes.
fn profile_name(token_name: &str) -> String {
    token_name.split_whitespace().collect::<Vec<_>>().join("-")
}
