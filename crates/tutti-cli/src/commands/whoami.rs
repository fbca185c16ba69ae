//! `tutti whoami`: the account and role behind the profile's token (`GET /api/v1/auth/me`).

use tutti_api::accounts::{Me, RequiredAction, SignedInVia};

use crate::client::{ApiClient, CliError};
use crate::output::{print_json, table};

/// Shows who the current credentials belong to.
pub(crate) async fn whoami(client: &ApiClient, json: bool) -> Result<(), CliError> {
    let me: Me = client.get("auth/me").await?;
    if json {
        print_json(&me);
        return Ok(());
    }
    let account = &me.account;
    let mut rows = table(&["FIELD", "VALUE"]);
    rows.add_row(vec!["server".to_string(), client.base().to_string()]);
    rows.add_row(vec!["account".to_string(), account.username.clone()]);
    rows.add_row(vec!["role".to_string(), me.role.to_string()]);
    if account.role != me.role {
        rows.add_row(vec!["account role".to_string(), account.role.to_string()]);
    }
    let via = match me.via {
        SignedInVia::Session => "session",
        SignedInVia::Token => "token",
    };
    rows.add_row(vec!["signed in with".to_string(), via.to_string()]);
    let mfa = if account.mfa_enabled { "on" } else { "off" };
    rows.add_row(vec!["two-factor sign-in".to_string(), mfa.to_string()]);
    let required = match me.required_action {
        None => "none",
        Some(RequiredAction::ChangePassword) => "change_password",
        Some(RequiredAction::SetupMfa) => "setup_mfa",
    };
    rows.add_row(vec!["required action".to_string(), required.to_string()]);
    println!("{rows}");
    match me.required_action {
        Some(RequiredAction::ChangePassword) => {
            println!("Change the password with `tutti passwd`.")
        }
        Some(RequiredAction::SetupMfa) => println!("Set up two-factor sign-in in the dashboard."),
        None => {}
    }
    Ok(())
}
