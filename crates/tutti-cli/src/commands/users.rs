//! `tutti users list|create|disable|enable|role|reset-password`: accounts, for admins
//! (`/api/v1/accounts`). A generated one-time password is printed once, with the command
//! its owner signs in with.

use serde_json::{Value, json};
use tutti_api::Paged;
use tutti_api::accounts::{Account, AccountWithPassword};

use crate::args::UsersAction;
use crate::client::{ApiClient, CliError, urlencode};
use crate::output::{print_json, print_page_footer, table};
use crate::prompt::SecretInput;

/// Dispatches the `users` subcommands.
pub(crate) async fn users(
    client: &ApiClient,
    action: UsersAction,
    json: bool,
) -> Result<(), CliError> {
    match action {
        UsersAction::List { limit, offset } => list(client, limit, offset, json).await,
        UsersAction::Create {
            name,
            role,
            password_stdin,
        } => {
            let password = match password_stdin {
                true => Some(
                    SecretInput::new(true)
                        .password("", "the initial password on its first line")?,
                ),
                false => None,
            };
            let body = json!({ "username": name, "role": role, "password": password });
            let created: AccountWithPassword = client.post("accounts", &body).await?;
            print_with_password(client, &created, "created", json);
            Ok(())
        }
        UsersAction::Disable { name } => {
            update(client, &name, json!({"disabled": true}), json).await
        }
        UsersAction::Enable { name } => {
            update(client, &name, json!({"disabled": false}), json).await
        }
        UsersAction::SetRole { name, role } => {
            update(client, &name, json!({"role": role}), json).await
        }
        UsersAction::ResetPassword { name } => {
            let path = format!("accounts/{}/password-reset", urlencode(&name));
            let reset: AccountWithPassword = client.post_empty(&path).await?;
            print_with_password(client, &reset, "has a new password", json);
            Ok(())
        }
    }
}

async fn list(client: &ApiClient, limit: u32, offset: u64, json: bool) -> Result<(), CliError> {
    let page: Paged<Account> = client
        .get(&format!("accounts?limit={limit}&offset={offset}"))
        .await?;
    if json {
        print_json(&page);
        return Ok(());
    }
    let mut rows = table(&[
        "USER",
        "ROLE",
        "STATUS",
        "TWO-FACTOR",
        "CREATED",
        "CREATED BY",
    ]);
    for account in &page.items {
        rows.add_row(vec![
            account.username.clone(),
            account.role.to_string(),
            status(account).to_string(),
            if account.mfa_enabled { "on" } else { "off" }.to_string(),
            account.created_at.to_string(),
            account.created_by.clone(),
        ]);
    }
    println!("{rows}");
    print_page_footer(&page, offset, "accounts");
    Ok(())
}

async fn update(client: &ApiClient, name: &str, patch: Value, json: bool) -> Result<(), CliError> {
    let account: Account = client
        .patch(&format!("accounts/{}", urlencode(name)), &patch)
        .await?;
    if json {
        print_json(&account);
        return Ok(());
    }
    println!(
        "account {}: role {}, {}",
        account.username,
        account.role,
        status(&account)
    );
    Ok(())
}

/// An account with the one-time password it was given, shown once.
fn print_with_password(client: &ApiClient, answer: &AccountWithPassword, what: &str, json: bool) {
    if json {
        print_json(answer);
        return;
    }
    let account = &answer.account;
    let username = &account.username;
    println!("account {username} {what} (role {})", account.role);
    match &answer.initial_password {
        Some(password) => {
            println!("\nIts one-time password, shown only now:\n\n  {password}\n");
            println!("It must be changed at the first sign-in:");
        }
        None => println!("\nIts password must be changed at the first sign-in:"),
    }
    println!(
        "\n  tutti login --server {} --user {username}",
        client.base()
    );
}

fn status(account: &Account) -> &'static str {
    if account.disabled {
        "disabled"
    } else if account.must_change_password {
        "must change password"
    } else {
        "active"
    }
}
