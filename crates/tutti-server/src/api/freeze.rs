//! `/api/v1/fleet/freeze`: read, set and lift the fleet freeze (`tutti_fleet` / `freeze`).
//!
//! The freeze lives only in KV, written through `crate::fleet_kv`: agents follow it to
//! hold scheduled commands, the scheduler to fire nothing, and the run engine reads it to
//! mark manual runs created during it. "In force" is `FleetFreeze::in_force` at the time
//! of the request, so a freeze past its `until` reads as `frozen` but not `in_force`.

use axum::Json;
use axum::extract::State;
use jiff::Timestamp;
use serde::Deserialize;
use tutti_proto::fleet::FleetFreeze;

use crate::actor::Actor;
use crate::api::json::ApiJson;
use crate::app::App;
use crate::error::{Error, Result};
pub use tutti_api::fleet::FreezeState;

pub use tutti_api::fleet::MAX_REASON_CHARS;

/// `PUT /api/v1/fleet/freeze`: freeze the fleet, until lifted or until `until`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeRequest {
    /// Why, for operators and the audit log: required, at most 500 characters.
    pub reason: String,
    /// When the freeze ends by itself (RFC 3339, in the future); absent: until lifted.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub until: Option<Timestamp>,
}

#[utoipa::path(get, path = "/api/v1/fleet/freeze", responses((status = 200, body = FreezeState)))]
/// The fleet freeze and whether it is in force now.
pub async fn status(State(app): State<App>) -> Result<Json<FreezeState>> {
    let freeze = app.kv.get_freeze().await?;
    Ok(Json(FreezeState::of(freeze.as_ref(), Timestamp::now())))
}

#[utoipa::path(put, path = "/api/v1/fleet/freeze", request_body = FreezeRequest, responses((status = 200, body = FreezeState), (status = 400, body = crate::api::error::ErrorBody)))]
/// Freezes the fleet (or replaces the current freeze): scheduled runs are held.
pub async fn freeze(
    State(app): State<App>,
    actor: Actor,
    ApiJson(request): ApiJson<FreezeRequest>,
) -> Result<Json<FreezeState>> {
    let now = Timestamp::now();
    let reason = check_reason(&request.reason)?;
    check_until(request.until, now)?;
    let freeze = FleetFreeze {
        frozen: true,
        until: request.until,
        at: now,
        actor: actor.name.clone(),
        reason,
    };
    app.kv.put_freeze(&freeze).await?;
    let summary = serde_json::json!({ "reason": freeze.reason, "until": freeze.until });
    app.auditor
        .succeeded(&actor, "fleet.freeze", "fleet/freeze".into(), summary)
        .await;
    tracing::info!(actor = %actor.name, until = ?freeze.until, "Froze the fleet.");
    Ok(Json(FreezeState::of(Some(&freeze), now)))
}

#[utoipa::path(delete, path = "/api/v1/fleet/freeze", responses((status = 200, description = "The freeze after lifting it", body = FreezeState)))]
/// Lifts the freeze. Lifting a fleet that is not frozen changes nothing.
pub async fn unfreeze(State(app): State<App>, actor: Actor) -> Result<Json<FreezeState>> {
    let now = Timestamp::now();
    let current = app.kv.get_freeze().await?;
    let Some(lifted) = current.as_ref().filter(|freeze| freeze.frozen) else {
        return Ok(Json(FreezeState::of(current.as_ref(), now)));
    };
    // Written as `frozen: false` rather than deleted, so the value says who lifted it.
    let freeze = FleetFreeze {
        frozen: false,
        until: None,
        at: now,
        actor: actor.name.clone(),
        reason: String::new(),
    };
    app.kv.put_freeze(&freeze).await?;
    let summary = serde_json::json!({
        "reason": lifted.reason, "until": lifted.until, "was_in_force": lifted.in_force(now),
    });
    app.auditor
        .succeeded(&actor, "fleet.unfreeze", "fleet/freeze".into(), summary)
        .await;
    tracing::info!(actor = %actor.name, "Lifted the fleet freeze.");
    Ok(Json(FreezeState::of(Some(&freeze), now)))
}

fn check_reason(reason: &str) -> Result<String> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Error::bad_request(
            "reason: required; say why the fleet is frozen",
        ));
    }
    let n_chars = reason.chars().count();
    if n_chars > MAX_REASON_CHARS {
        return Err(Error::bad_request(format!(
            "reason: {n_chars} characters, at most {MAX_REASON_CHARS}"
        )));
    }
    Ok(reason.to_string())
}

fn check_until(until: Option<Timestamp>, now: Timestamp) -> Result<()> {
    match until {
        Some(until) if until <= now => Err(Error::bad_request(format!(
            "until: {until} is not in the future"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_required_and_bounded() {
        assert_eq!(check_reason("  incident 42 ").unwrap(), "incident 42");
        assert!(check_reason(" ").is_err());
        assert!(
            check_reason(&"é".repeat(MAX_REASON_CHARS)).is_ok(),
            "chars, not bytes"
        );
        let err = check_reason(&"x".repeat(MAX_REASON_CHARS + 1)).unwrap_err();
        assert!(err.to_string().contains("at most 500"), "{err}");
    }

    #[test]
    fn until_must_be_ahead() {
        let now = Timestamp::now();
        let second = jiff::SignedDuration::from_secs(1);
        assert!(check_until(None, now).is_ok());
        assert!(check_until(Some(now + second), now).is_ok());
        assert!(check_until(Some(now), now).is_err());
        assert!(check_until(Some(now - second), now).is_err());
    }

    #[test]
    fn state_of_a_freeze_past_its_until_is_frozen_but_not_in_force() {
        let now = Timestamp::now();
        let freeze = FleetFreeze {
            frozen: true,
            until: Some(now),
            at: now - jiff::SignedDuration::from_hours(1),
            actor: "alice".into(),
            reason: "release".into(),
        };
        let state = FreezeState::of(Some(&freeze), now);
        assert!(state.frozen && !state.in_force);
        assert_eq!(state.reason.as_deref(), Some("release"));
        let never = FreezeState::of(None, now);
        assert!(!never.frozen && never.actor.is_none() && never.at.is_none());
    }
}
