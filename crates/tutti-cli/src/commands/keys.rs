//! `tutti keys status|rotate`: the server's command-signing keys (`/api/v1/keys`).

use serde_json::{Value, json};

use crate::args::KeysAction;
use crate::client::{ApiClient, CliError};
use crate::output::{print_json, table, text};

/// Dispatches the `keys` subcommands.
pub(crate) async fn keys(
    client: &ApiClient,
    action: KeysAction,
    json: bool,
) -> Result<(), CliError> {
    let status: Value = match action {
        KeysAction::Status => client.get("keys").await?,
        KeysAction::Rotate { overlap } => {
            let overlap_secs = overlap
                .map(|text| crate::duration::parse_secs("--overlap", &text))
                .transpose()?;
            client
                .post("keys/rotate", &json!({ "overlap_secs": overlap_secs }))
                .await?
        }
    };
    if json {
        print_json(&status);
        return Ok(());
    }
    print_table(&status);
    if let Some(line) = next_step(&status) {
        println!("{line}");
    }
    Ok(())
}

fn print_table(status: &Value) {
    let mut rows = table(&["KEY", "ROLE", "SINCE / UNTIL"]);
    rows.add_row(vec![
        text(status, "current"),
        "signing".into(),
        String::new(),
    ]);
    if let Some(next) = status.get("next").filter(|next| !next.is_null()) {
        rows.add_row(vec![
            text(next, "key_id"),
            "next".into(),
            format!("takes over {}", text(next, "activates_at")),
        ]);
    }
    for retiring in status["retiring"].as_array().into_iter().flatten() {
        rows.add_row(vec![
            text(retiring, "key_id"),
            "retiring".into(),
            format!("trusted until {}", text(retiring, "trusted_until")),
        ]);
    }
    println!("{rows}");
}

/// What the operator should know next: how far the next key has reached the fleet.
fn next_step(status: &Value) -> Option<String> {
    let next = status.get("next").filter(|next| !next.is_null())?;
    let trusting = status["next_trusted_by"].as_u64().unwrap_or(0);
    let enrolled = status["agents_enrolled"].as_u64().unwrap_or(0);
    let mut line = format!(
        "{trusting} of {enrolled} agents trust the next key {} (from their heartbeats).",
        text(next, "key_id")
    );
    if trusting < enrolled {
        line.push_str(
            " Agents that do not by the switch learn it when they next sync, as long as they come back before the old key's overlap ends.",
        );
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_step_counts_agents_only_during_a_rotation() {
        let idle = json!({"current": "aa", "next": null, "retiring": [], "next_trusted_by": null, "agents_enrolled": 3});
        assert_eq!(next_step(&idle), None);
        let rotating = json!({
            "current": "aa", "next": {"key_id": "bb", "activates_at": "t"}, "retiring": [],
            "next_trusted_by": 2, "agents_enrolled": 3,
        });
        let line = next_step(&rotating).unwrap();
        assert!(
            line.starts_with("2 of 3 agents trust the next key bb"),
            "{line}"
        );
        let everyone = json!({
            "current": "aa", "next": {"key_id": "bb", "activates_at": "t"}, "retiring": [],
            "next_trusted_by": 3, "agents_enrolled": 3,
        });
        assert!(!next_step(&everyone).unwrap().contains("learn it"));
    }
}
