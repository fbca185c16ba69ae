//! `tutti whoami`: the account and role behind the profile's token (`GET /api/v1/auth/me`).

use serde_json::Value;

use crate::client::{ApiClient, CliError};
use crate::output::{print_json, table, text};

/// Shows who the current credentials belong to.
pub(crate) async fn whoami(client: &ApiClient, json: bool) -> Result<(), CliError> {
    let me: Value = client.get("auth/me").await?;
    if json {
        print_json(&me);
        return Ok(());
    }
    let account = &me["account"];
    let mut rows = table(&["FIELD", "VALUE"]);
    rows.add_row(vec!["server".to_string(), client.base().to_string()]);
    rows.add_row(vec!["account".to_string(), text(account, "username")]);
    rows.add_row(vec!["role".to_string(), text(&me, "role")]);
    if text(account, "role") != text(&me, "role") {
        rows.add_row(vec!["account role".to_string(), text(account, "role")]);
    }
    rows.add_row(vec!["signed in with".to_string(), text(&me, "via")]);
    rows.add_row(vec![
        "two-factor sign-in".to_string(),
        on_off(&account["mfa_enabled"]),
    ]);
    let required = text(&me, "required_action");
    rows.add_row(vec![
        "required action".to_string(),
        if required.is_empty() {
            "none".to_string()
        } else {
            required.clone()
        },
    ]);
    println!("{rows}");
    match required.as_str() {
        "change_password" => println!("Change the password with `tutti passwd`."),
        "setup_mfa" => println!("Set up two-factor sign-in in the dashboard."),
        _ => {}
    }
    Ok(())
}

fn on_off(value: &Value) -> String {
    match value.as_bool() {
        Some(true) => "on".to_string(),
        _ => "off".to_string(),
    }
}
