//! Heartbeats: core NATS messages on `tutti.agent.*.heartbeat`, micro-batched into
//! `apply_heartbeats`.
//!
//! Heartbeats are not stored in a stream: a lost one is replaced by the next. Ten thousand
//! agents at one beat per 30 s is ~330 messages a second, so they are collected for up to
//! half a second (or 1000 messages) and written in one transaction. Server replicas share
//! the subscription through a queue group, so each beat is written once. A heartbeat
//! only updates an enrolled agent; one from any other id is counted and dropped.

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use tutti_proto::heartbeat::Heartbeat;
use tutti_proto::subjects;

use super::unknown_agents::MessageKind;
use crate::app::App;

/// Longest wait before a partial batch is written.
const WINDOW: Duration = Duration::from_millis(500);
/// Largest batch.
const MAX_BATCH: usize = 1000;

/// Collects and applies heartbeats until `shutdown` changes.
pub(crate) async fn run(app: App, mut shutdown: watch::Receiver<bool>) {
    let queue_group = format!("{}-heartbeats", app.config.projector.consumer_prefix);
    let subscription = app
        .bus
        .client()
        .queue_subscribe(subjects::all_heartbeats(), queue_group)
        .await;
    let mut subscription = match subscription {
        Ok(subscription) => subscription,
        Err(err) => {
            tracing::error!(error = %err, "Cannot subscribe to heartbeats; agents will show as offline.");
            return;
        }
    };
    let mut batch = Vec::new();
    let mut ticker = tokio::time::interval(WINDOW);
    loop {
        tokio::select! {
            message = subscription.next() => {
                let Some(message) = message else { return };
                collect(&app, &message, &mut batch);
                if batch.len() >= MAX_BATCH {
                    flush(&app, &mut batch).await;
                }
            }
            _ = ticker.tick() => {
                if !batch.is_empty() {
                    flush(&app, &mut batch).await;
                }
            }
            _ = shutdown.changed() => {
                flush(&app, &mut batch).await;
                return;
            }
        }
    }
}

fn collect(app: &App, message: &async_nats::Message, batch: &mut Vec<Heartbeat>) {
    let Ok(heartbeat) = serde_json::from_slice::<Heartbeat>(&message.payload) else {
        tracing::debug!(subject = %message.subject, "Dropped a heartbeat that does not decode.");
        return;
    };
    let subject_agent = message.subject.split('.').nth(2).unwrap_or_default();
    if subject_agent != heartbeat.agent_id.as_str() {
        tracing::warn!(subject = %message.subject, agent_id = %heartbeat.agent_id, "Dropped a heartbeat sent on another agent's subject.");
        return;
    }
    app.metrics
        .heartbeats
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    batch.push(heartbeat);
}

async fn flush(app: &App, batch: &mut Vec<Heartbeat>) {
    if batch.is_empty() {
        return;
    }
    let heartbeats = std::mem::take(batch);
    let n_heartbeats = heartbeats.len();
    match app.store.apply_heartbeats(heartbeats).await {
        Ok(outcome) => app
            .metrics
            .unknown_agents
            .dropped(MessageKind::Heartbeat, &outcome.unknown_agents),
        // Losing a batch of heartbeats only delays liveness by one interval.
        Err(err) => {
            tracing::warn!(error = %err, n_heartbeats, "A batch of heartbeats could not be stored.");
        }
    }
}
