//! `tutti tokens list|create|revoke`: API tokens (`/api/v1/tokens`). Everyone manages their
//! own; an admin lists (`--all`) and revokes anyone's. The secret is printed once, at
//! creation.

use serde_json::json;
use tutti_api::Paged;
use tutti_api::accounts::{ApiToken, IssuedToken};

use crate::args::TokensAction;
use crate::client::{ApiClient, CliError, urlencode};
use crate::output::{or_empty, print_json, print_page_footer, table};

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
            let created: IssuedToken = client.post("tokens", &body).await?;
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
    let page: Paged<ApiToken> = client
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
    for token in &page.items {
        rows.add_row(vec![
            token.token_id.clone(),
            token.name.clone(),
            token.username.clone(),
            token.role.to_string(),
            token.created_at.to_string(),
            token
                .expires_at
                .map_or_else(|| "never".to_string(), |at| at.to_string()),
            or_empty(token.last_used_at),
            or_empty(token.revoked_at),
        ]);
    }
    println!("{rows}");
    print_page_footer(&page, offset, "tokens");
    Ok(())
}

fn print_created(client: &ApiClient, created: &IssuedToken, json: bool) {
    if json {
        print_json(created);
        return;
    }
    let expires = match created.expires_at {
        Some(at) => format!("expires at {at}"),
        None => "never expires".to_string(),
    };
    println!(
        "API token {} ({:?}, role {}) created; it {expires}",
        created.token_id, created.name, created.role
    );
    println!(
        "\nThe secret is shown only now; it is not shown again:\n\n  {}\n",
        created.token
    );
    println!("Use it as TUTTI_TOKEN, or store it as a profile:\n");
    println!(
        "  tutti login --server {} --token <secret> --name {}",
        client.base(),
        profile_name(&created.name)
    );
}

/// A token name as a profile name: spaces become dashes.
fn profile_name(token_name: &str) -> String {
    token_name.split_whitespace().collect::<Vec<_>>().join("-")
}
