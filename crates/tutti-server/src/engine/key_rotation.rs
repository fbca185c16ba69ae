//! The key rotation clock: switches to the next signing key when its time has come,
//! drops retiring keys after their overlap, and keeps the published key ring and the
//! fleet values' signatures in line with the current key.
//!
//! Every tick publishes the ring and re-signs the bucket if they lag the keyring (both are
//! one read when nothing changed), so a tick that switched keys while the broker was away
//! is completed by the next one. The switch itself happens once, on disk, in
//! `crate::keyring`.

use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;

use crate::actor::Actor;
use crate::app::App;

/// How often the clock looks.
pub(crate) const TICK: Duration = Duration::from_secs(15);

const DRIVER: &str = "key-rotation";

/// Steps at least every `interval`, at each switch or expiry time, and after each
/// rotation, until `shutdown` changes.
pub(crate) async fn run(app: App, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Err(err) = advance_once(&app).await {
            tracing::warn!(error = %format!("{err:#}"), "The key rotation step failed; it runs again at the next tick.");
        }
        let until_due = app
            .keys
            .next_due()
            .and_then(|due| Duration::try_from(due.duration_since(Timestamp::now())).ok())
            .map_or(interval, |wait| wait.min(interval));
        tokio::select! {
            _ = tokio::time::sleep(until_due) => {}
            _ = app.keys.rotated() => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One step: switch or expire keys when due, then publish what agents must see; a switch
/// is audited once the bucket carries the new key's signatures.
pub(crate) async fn advance_once(app: &App) -> anyhow::Result<()> {
    let advanced = app.keys.advance(Timestamp::now())?;
    app.kv.publish_ring().await?;
    app.kv
        .resign_all(app.bus.jetstream(), app.bus.request_timeout())
        .await?;
    if let Some((old, new)) = advanced.activated {
        tracing::info!(%old, %new, "The next signing key took over; the old one stays trusted for the overlap.");
        let summary = serde_json::json!({ "old_key_id": old, "key_id": new });
        audit(app, "keys.activate", new, summary).await;
    }
    for key_id in &advanced.expired {
        tracing::info!(%key_id, "A retired signing key's overlap ended; agents no longer trust it.");
        audit(app, "keys.expire", *key_id, serde_json::json!({})).await;
    }
    Ok(())
}

async fn audit(app: &App, action: &str, key_id: tutti_proto::KeyId, summary: serde_json::Value) {
    app.auditor
        .succeeded(
            &Actor::system(DRIVER),
            action,
            format!("key/{key_id}"),
            summary,
        )
        .await;
}
