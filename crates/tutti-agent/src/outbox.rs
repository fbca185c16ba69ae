//! The outbox publisher: drains durable results and events to JetStream, in order.
//!
//! A message leaves the outbox only after the broker acknowledged it. Each carries a
//! `Nats-Msg-Id`, so a publish repeated after a crash (acknowledged, but not yet deleted
//! here) is dropped by the broker's de-duplication window. Publishes of a batch are
//! pipelined and their acknowledgements awaited in order; the first failure stops the batch
//! and the drain retries with jittered backoff.
//!
//! **Superseded progress is folded into the result.** A `received` or `started` event whose
//! command's result is in the same batch is not published: the result carries the delivery
//! and start times, and the server moves the target straight to its outcome. Such events
//! leave the outbox with the result's acknowledgement. This happens when commands finish
//! faster than the outbox drains (a fan-out to the whole fleet, a backlog after a
//! reconnect) and saves two of every three publishes, acks and projector rows there; a
//! long command still reports `received` and `started` live, because its result is not in
//! the batch yet.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use tokio::sync::Notify;
use tutti_proto::CommandId;

use crate::state::{OutboxMessage, StateHandle};

/// Messages published per batch before awaiting acknowledgements.
const BATCH: usize = 128;
/// An empty outbox is re-read this often without a wake-up, as a safety net only: every
/// write to the outbox wakes the publisher. At ten thousand agents a 5 s re-read was 2,000
/// database reads a second across the fleet's simulator for nothing.
const IDLE_RECHECK: Duration = Duration::from_secs(60);

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
                    _ = tokio::time::sleep(IDLE_RECHECK) => {}
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
    let finishing: HashSet<CommandId> = batch
        .iter()
        .filter_map(|(_, message)| message.result_of)
        .collect();
    let mut pending = Vec::with_capacity(batch.len());
    let mut superseded = Vec::new();
    let mut first_error = None;
    for (key, message) in &batch {
        if let Some(command_id) = message.progress_of
            && finishing.contains(&command_id)
        {
            superseded.push((*key, command_id));
            continue;
        }
        match publish(js, message).await {
            Ok(ack) => pending.push((*key, message.result_of, ack)),
            Err(err) => {
                first_error = Some(err);
                break;
            }
        }
    }
    let mut acked = Vec::with_capacity(pending.len());
    let mut reported = HashSet::new();
    for (key, result_of, ack) in pending {
        match tokio::time::timeout(ack_timeout, ack).await {
            Ok(Ok(_)) => {
                acked.push(key);
                reported.extend(result_of);
            }
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
    // A folded event goes only once its result is acknowledged; otherwise it stays and is
    // weighed again with the next batch.
    acked.extend(
        superseded
            .into_iter()
            .filter(|(_, command_id)| reported.contains(command_id))
            .map(|(key, _)| key),
    );
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

#[cfg(test)]
mod tests {
    use tutti_bus::{connect, ensure_resources};
    use tutti_proto::AgentId;
    use tutti_proto::catalog::{Catalog, CatalogConfig, EVENTS_STREAM, RESULTS_STREAM};
    use tutti_proto::result::ResultStatus;
    use tutti_testkit::TestNats;

    use super::*;
    use crate::report;
    use crate::state::tests::run_command;
    use crate::state::{AgentState, QueuedCommand};

    /// A command that finished before the outbox drained is reported by its result alone;
    /// one still in progress keeps its `received` event, which is published as usual.
    #[tokio::test]
    async fn progress_events_of_a_finished_command_fold_into_its_result() {
        let nats = TestNats::start();
        let bus = connect(&nats.bus_config()).await.unwrap();
        let catalog = Catalog::tutti(&CatalogConfig {
            storage_budget_bytes: 1 << 30,
            replicas: 1,
        });
        ensure_resources(&bus, &catalog).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let state = StateHandle::new(AgentState::open(&dir.path().join("state.redb")).unwrap());
        let agent_id = AgentId::parse("web-01").unwrap();
        let (done, slow) = (run_command(1), run_command(2));
        let run_of = |queued: &QueuedCommand| *queued.command.run_id().unwrap();
        let messages = [
            report::received(&agent_id, &done, &run_of(&done)),
            report::started(&agent_id, &done, &run_of(&done)),
            report::received(&agent_id, &slow, &run_of(&slow)),
            report::bare_result(&agent_id, &done, &run_of(&done), ResultStatus::Interrupted),
        ];
        for message in &messages {
            state.blocking().push_outbox(message).unwrap();
        }

        let drained = drain_once(&state, bus.jetstream(), Duration::from_secs(5)).await;
        assert_eq!(drained, Ok(4), "two published, two folded");
        assert_eq!(state.blocking().outbox_depth().unwrap(), 0);
        let count = |stream: &'static str| {
            let js = bus.jetstream().clone();
            async move {
                let mut stream = js.get_stream(stream).await.unwrap();
                stream.info().await.unwrap().state.messages
            }
        };
        assert_eq!(
            count(EVENTS_STREAM).await,
            1,
            "only the slow command's event"
        );
        assert_eq!(count(RESULTS_STREAM).await, 1);
        let result: tutti_proto::result::RunResult =
            serde_json::from_slice(&messages[3].payload).unwrap();
        assert_eq!(result.delivered_at, Some(done.received_at));
    }
}
