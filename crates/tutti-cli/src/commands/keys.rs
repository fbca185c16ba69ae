//! `tutti keys status|rotate`: the server's command-signing keys (`/api/v1/keys`).

use serde_json::json;
use tutti_api::keys::KeysView;

use crate::args::KeysAction;
use crate::client::{ApiClient, CliError};
use crate::output::{print_json, table};

/// Dispatches the `keys` subcommands.
pub(crate) async fn keys(
    client: &ApiClient,
    action: KeysAction,
    json: bool,
) -> Result<(), CliError> {
    let status: KeysView = match action {
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

fn print_table(status: &KeysView) {
    let keys = &status.keys;
    let mut rows = table(&["KEY", "ROLE", "SINCE / UNTIL"]);
    rows.add_row(vec![
        keys.current.to_string(),
        "signing".into(),
        String::new(),
    ]);
    if let Some(next) = &keys.next {
        rows.add_row(vec![
            next.key_id.to_string(),
            "next".into(),
            format!("takes over {}", next.activates_at),
        ]);
    }
    for retiring in &keys.retiring {
        rows.add_row(vec![
            retiring.key_id.to_string(),
            "retiring".into(),
            format!("trusted until {}", retiring.trusted_until),
        ]);
    }
    println!("{rows}");
}

/// What the operator should know next: how far the next key has reached the fleet.
fn next_step(status: &KeysView) -> Option<String> {
    let next = status.keys.next.as_ref()?;
    let trusting = status.next_trusted_by.unwrap_or(0);
    let enrolled = status.agents_enrolled;
    let mut line = format!(
        "{trusting} of {enrolled} agents trust the next key {} (from their heartbeats).",
        next.key_id
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

    fn view(value: serde_json::Value) -> KeysView {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_next_step_counts_agents_only_during_a_rotation() {
        let (aa, bb, t) = (
            "00000000000000aa",
            "00000000000000bb",
            "2026-05-01T12:00:00Z",
        );
        let idle = view(
            json!({"current": aa, "next": null, "retiring": [], "next_trusted_by": null, "agents_enrolled": 3}),
        );
        assert_eq!(next_step(&idle), None);
        let next = json!({"key_id": bb, "introduced_at": t, "activates_at": t});
        let rotating = view(json!({
            "current": aa, "next": next, "retiring": [],
            "next_trusted_by": 2, "agents_enrolled": 3,
        }));
        let line = next_step(&rotating).unwrap();
        assert!(
            line.starts_with(&format!("2 of 3 agents trust the next key {bb}")),
            "{line}"
        );
        let everyone = view(json!({
            "current": aa, "next": next, "retiring": [],
            "next_trusted_by": 3, "agents_enrolled": 3,
        }));
        assert!(!next_step(&everyone).unwrap().contains("learn it"));
    }
}
