//! `/api/v1/keys`: the command-signing keys and their rotation (`crate::keyring`).
//!
//! `GET` shows the current key, a rotation's next key with how many agents already trust
//! it (from their heartbeats), and retiring keys. `POST /api/v1/keys/rotate` starts a
//! rotation; the switch happens by itself at `activates_at` (`engine::key_rotation`).

use axum::Json;
use axum::extract::State;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

use crate::actor::Actor;
use crate::api::json::ApiJson;
use crate::app::App;
use crate::error::{Error, Result};
use crate::keyring::{DEFAULT_OVERLAP, KeysStatus, RotateError};
pub use tutti_api::keys::KeysView;

/// Longest overlap accepted: a year. Longer is a typo, and a key trusted for that long
/// after its replacement defeats the rotation.
pub const MAX_OVERLAP_SECS: i64 = 366 * 24 * 3600;

/// `POST /api/v1/keys/rotate`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// Seconds before the next key takes over, and again before the old one is dropped
    /// (default 72 hours).
    #[serde(default)]
    pub overlap_secs: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/keys", responses((status = 200, body = KeysView)))]
/// The signing keys: current, next (during a rotation) and retiring.
pub async fn status(State(app): State<App>) -> Result<Json<KeysView>> {
    Ok(Json(view(&app, app.keys.status()).await?))
}

#[utoipa::path(post, path = "/api/v1/keys/rotate", request_body = RotateRequest, responses((status = 200, body = KeysView), (status = 400, body = crate::api::error::ErrorBody), (status = 409, body = crate::api::error::ErrorBody)))]
/// Starts a key rotation: a next key that agents learn now and that signs from
/// `activates_at`.
pub async fn rotate(
    State(app): State<App>,
    actor: Actor,
    ApiJson(request): ApiJson<RotateRequest>,
) -> Result<Json<KeysView>> {
    let overlap_secs = request.overlap_secs.unwrap_or(DEFAULT_OVERLAP.as_secs());
    if !(1..=MAX_OVERLAP_SECS).contains(&overlap_secs) {
        return Err(Error::bad_request(format!(
            "overlap_secs must be between 1 and {MAX_OVERLAP_SECS} (a year), got {overlap_secs}"
        )));
    }
    let status = app
        .keys
        .rotate(SignedDuration::from_secs(overlap_secs), Timestamp::now())
        .map_err(|err| match err {
            RotateError::InProgress { .. } => Error::Conflict(err.to_string()),
            RotateError::OverlapTooShort => Error::bad_request(err.to_string()),
            RotateError::Io(err) => Error::internal("write the next signing key", err),
        })?;
    // Agents learn the next key from the ring; publishing it now rather than at the next
    // tick of the rotation clock makes "rotate, then status" show progress at once.
    app.kv.publish_ring().await?;
    let next = status.next.as_ref();
    let summary = serde_json::json!({
        "key_id": next.map(|next| next.key_id),
        "activates_at": next.map(|next| next.activates_at),
        "overlap_secs": overlap_secs,
    });
    let target = format!("key/{}", next.map_or(status.current, |next| next.key_id));
    app.auditor
        .succeeded(&actor, "keys.rotate", target, summary)
        .await;
    tracing::info!(actor = %actor.name, next = ?next.map(|next| next.key_id), "Started a signing key rotation.");
    Ok(Json(view(&app, status).await?))
}

async fn view(app: &App, keys: KeysStatus) -> Result<KeysView> {
    let probe = keys.next.as_ref().map_or(keys.current, |next| next.key_id);
    let trust = app.store.agents_trusting_key(&probe).await?;
    Ok(KeysView {
        next_trusted_by: keys.next.as_ref().map(|_| trust.trusting),
        agents_enrolled: trust.enrolled,
        keys,
    })
}
