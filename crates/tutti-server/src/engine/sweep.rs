//! The expiry sweep: queued targets of runs whose deadline passed become `expired`.
//!
//! Agents skip a command received after its deadline and report it, but an agent that
//! never comes back reports nothing; without this sweep its target would stay queued for
//! ever. `expire_targets` is one idempotent statement, so several server replicas may
//! sweep at once. The same tick deletes dashboard sessions past their lifetime or idle
//! limit (they are refused anyway; this keeps the table small).

use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;

use crate::app::App;

/// Sweeps every `interval` until `shutdown` changes.
pub(crate) async fn run(app: App, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => sweep_once(&app).await,
            _ = shutdown.changed() => return,
        }
    }
}

async fn sweep_once(app: &App) {
    match app.store.expire_targets(Timestamp::now()).await {
        Ok(0) => {}
        Ok(n_expired) => tracing::info!(
            n_expired,
            "Expired queued targets of runs past their deadline."
        ),
        Err(err) => {
            tracing::warn!(error = %err, "The expiry sweep failed; it runs again at the next tick.")
        }
    }
    let now = Timestamp::now();
    let idle = jiff::SignedDuration::from_secs(
        i64::try_from(app.config.auth.session_idle_secs).unwrap_or(i64::MAX),
    );
    let idle_before = now.checked_sub(idle).unwrap_or(Timestamp::MIN);
    match app.store.delete_expired_sessions(now, idle_before).await {
        Ok(0) => {}
        Ok(n_deleted) => tracing::debug!(n_deleted, "Deleted ended dashboard sessions."),
        Err(err) => {
            tracing::warn!(error = %err, "Deleting ended sessions failed; retrying at the next tick.")
        }
    }
}
