//! `tutti freeze on|off|status`: the fleet freeze (`/api/v1/fleet/freeze`), which holds
//! scheduled runs while manual ones still run.
//!
//! `--for 2h` is turned into an `until` here, with this machine's clock, so the server and
//! every agent judge the same instant.

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use tutti_api::fleet::FreezeState;

use crate::args::FreezeAction;
use crate::client::{ApiClient, CliError};
use crate::output::{or_empty, print_json};

const PATH: &str = "fleet/freeze";

/// Dispatches the `freeze` subcommands.
pub(crate) async fn freeze(
    client: &ApiClient,
    action: FreezeAction,
    json: bool,
) -> Result<(), CliError> {
    let state: FreezeState = match action {
        FreezeAction::On {
            reason,
            until,
            duration,
        } => {
            let until = until_from(until.as_deref(), duration.as_deref(), Timestamp::now())?;
            let body = json!({ "reason": reason, "until": until });
            client.put(PATH, &body).await?
        }
        FreezeAction::Off => client.delete_json(PATH).await?,
        FreezeAction::Status => client.get(PATH).await?,
    };
    if json {
        print_json(&state);
    } else {
        println!("{}", describe(&state));
    }
    Ok(())
}

/// The `until` to send: `--until` as given, or now plus `--for`, or none (until lifted).
fn until_from(
    until: Option<&str>,
    duration: Option<&str>,
    now: Timestamp,
) -> Result<Option<Timestamp>, CliError> {
    if let Some(until) = until {
        let parsed = until.parse::<Timestamp>().map_err(|err| {
            CliError::Usage(format!(
                "--until {until:?}: expected RFC 3339 like 2026-05-01T18:00:00Z ({err})"
            ))
        })?;
        return Ok(Some(parsed));
    }
    let Some(duration) = duration else {
        return Ok(None);
    };
    let secs = crate::duration::parse_secs("--for", duration)?;
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    now.checked_add(SignedDuration::from_secs(secs))
        .map(Some)
        .map_err(|_| CliError::Usage(format!("--for {duration:?} is too long")))
}

/// One line for people: `frozen since … by … until … — reason`, or why it is not frozen.
fn describe(state: &FreezeState) -> String {
    let at = or_empty(state.at);
    let actor = state.actor.as_deref().unwrap_or_default();
    let reason = state.reason.as_deref().unwrap_or_default();
    let until_text = match state.until {
        None => "until lifted".to_string(),
        Some(until) => format!("until {until}"),
    };
    if state.in_force {
        return format!("frozen since {at} by {actor} {until_text} — {reason}");
    }
    if state.frozen {
        let until = or_empty(state.until);
        return format!("not frozen: the freeze by {actor} ended at {until} — {reason}");
    }
    if at.is_empty() {
        "not frozen".to_string()
    } else {
        format!("not frozen (lifted {at} by {actor})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_comes_from_until_or_for_or_nothing() {
        let now: Timestamp = "2026-05-01T12:00:00Z".parse().unwrap();
        let two_hours: Timestamp = "2026-05-01T14:00:00Z".parse().unwrap();
        assert_eq!(until_from(None, None, now).unwrap(), None);
        assert_eq!(until_from(None, Some("2h"), now).unwrap(), Some(two_hours));
        assert_eq!(
            until_from(Some("2026-05-01T14:00:00Z"), None, now).unwrap(),
            Some(two_hours)
        );
        let err = until_from(Some("tomorrow"), None, now).unwrap_err();
        assert!(err.to_string().contains("--until"), "{err}");
        let err = until_from(None, Some("2w"), now).unwrap_err();
        assert!(err.to_string().contains("--for"), "{err}");
    }

    fn state(value: serde_json::Value) -> FreezeState {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn lines_say_since_by_until_and_why() {
        let frozen = state(json!({
            "frozen": true, "in_force": true, "until": "2026-05-01T14:00:00Z",
            "reason": "release", "actor": "alice", "at": "2026-05-01T12:00:00Z",
        }));
        assert_eq!(
            describe(&frozen),
            "frozen since 2026-05-01T12:00:00Z by alice until 2026-05-01T14:00:00Z — release"
        );
        let t = "2026-05-01T12:00:00Z";
        let u = "2026-05-01T14:00:00Z";
        let open_ended = state(
            json!({"in_force": true, "frozen": true, "until": null, "reason": "x", "actor": "a", "at": t}),
        );
        assert!(describe(&open_ended).contains("until lifted"));
        let ended = state(
            json!({"in_force": false, "frozen": true, "until": u, "reason": "r", "actor": "a", "at": t}),
        );
        assert!(describe(&ended).starts_with(&format!("not frozen: the freeze by a ended at {u}")));
        let lifted = state(
            json!({"in_force": false, "frozen": false, "until": null, "reason": null, "actor": "bob", "at": t}),
        );
        assert_eq!(describe(&lifted), format!("not frozen (lifted {t} by bob)"));
        let never = state(
            json!({"in_force": false, "frozen": false, "until": null, "reason": null, "actor": null, "at": null}),
        );
        assert_eq!(describe(&never), "not frozen");
    }
}
