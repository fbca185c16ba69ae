//! The outbox publisher: drains durable results and events to JetStream, in order.
//!
//! A message leaves the outbox only after the broker acknowledged it. Each carries a
//! `Nats-Msg-Id`, so a publish repeated after a crash (acknowledged, but not yet deleted
//! here) is dropped by the broker's de-duplication window. Publishes of a batch are
//! pipelined and their acknowledgements awaited in order; the first failure stops the batch
//! and the drain retries with jittered backoff.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use tokio::sync::Notify;

use crate::state::{OutboxMessage, StateHandle};

/// Messages published per batch before awaiting acknowledgements.
const BATCH: usize = 128;

/// Drains the outbox forever; returns only when `shutdown` fires.
pub async fn run(
    state: StateHandle,
    js: async_nats::jetstream::Context,
    wake: Arc<Notify>,
    ack_timeout: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut failures: u32 = 0;
    loop {
        if *shutdown.borrow() {
            return;
        }
        match drain_once(&state, &js, ack_timeout).await {
            Ok(0) => {
                failures = 0;
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = shutdown.changed() => {}
                }
            }
            Ok(_) => failures = 0,
            Err(err) => {
                failures = failures.saturating_add(1);
                let delay =
                    tutti_bus::connect::reconnect_delay(failures as usize, Duration::from_secs(10));
                tracing::debug!(error = %err, ?delay, "Outbox publish failed; retrying.");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}

/// Publishes one batch; returns how many messages were acknowledged and removed.
async fn drain_once(
    state: &StateHandle,
    js: &async_nats::jetstream::Context,
    ack_timeout: Duration,
) -> Result<usize, String> {
    let batch = state
        .call(|state| state.outbox_head(BATCH))
        .await
        .map_err(|err| err.to_string())?;
    if batch.is_empty() {
        return Ok(0);
    }
    let mut pending = Vec::with_capacity(batch.len());
    let mut first_error = None;
    for (key, message) in &batch {
        match publish(js, message).await {
            Ok(ack) => pending.push((*key, ack)),
            Err(err) => {
                first_error = Some(err);
                break;
            }
        }
    }
    let mut acked = Vec::with_capacity(pending.len());
    for (key, ack) in pending {
        match tokio::time::timeout(ack_timeout, ack).await {
            Ok(Ok(_)) => acked.push(key),
            Ok(Err(err)) => {
                first_error.get_or_insert(err.to_string());
                break;
            }
            Err(_) => {
                first_error.get_or_insert(format!("no acknowledgement within {ack_timeout:?}"));
                break;
            }
        }
    }
    let count = acked.len();
    if count > 0 {
        state
            .call(move |state| state.outbox_remove_many(&acked))
            .await
            .map_err(|err| err.to_string())?;
    }
    match first_error {
        Some(err) if count == 0 => Err(err),
        _ => Ok(count),
    }
}

async fn publish(
    js: &async_nats::jetstream::Context,
    message: &OutboxMessage,
) -> Result<async_nats::jetstream::context::PublishAckFuture, String> {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", message.msg_id.as_str());
    js.publish_with_headers(
        message.subject.clone(),
        headers,
        message.payload.clone().into(),
    )
    .await
    .map_err(|err| err.to_string())
}
