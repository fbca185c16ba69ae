//! Server-sent events for the CLI and the dashboard.
//!
//! - `GET /api/v1/runs/{run_id}/progress`: a `target` event per (agent, state) change and
//!   a `counts` event after each change set, then `done` once no target is open. The
//!   handler re-reads the run's targets whenever a projector, kill or sweep reports the
//!   run changed, and at least once a second (server replicas do not see each other's
//!   notifications). The first read sends every target, so a late subscriber starts from
//!   the full picture.
//! - `GET /api/v1/runs/{run_id}/output`: live output from `tutti.agent.*.output.<run>`,
//!   one `output` event per chunk with the agent id and the text (lossy UTF-8). Best
//!   effort, like the agent's publishing of it; the stored result is the record.
//!
//! Both streams end when the server shuts down.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use futures::{Stream, StreamExt};
use serde::Serialize;
use tokio::sync::mpsc;
use tutti_proto::{AgentId, RunId, subjects};
use tutti_store::{MAX_PAGE_LIMIT, Page, TargetQuery, TargetState};

use crate::api::parse_id;
use crate::api::runs::counts_by_name;
use crate::app::App;
use crate::error::{Error, Result};

/// How often progress is re-read without a notification.
const POLL: Duration = Duration::from_secs(1);

/// One target's state change.
#[derive(Debug, Serialize)]
struct TargetChange<'a> {
    agent_id: &'a AgentId,
    state: TargetState,
    reason: Option<&'a str>,
    exit_code: Option<i32>,
}

/// One chunk of live output.
#[derive(Debug, Serialize)]
struct OutputChunk<'a> {
    agent_id: &'a str,
    text: String,
}

type EventStream =
    Sse<KeepAliveStream<futures::stream::BoxStream<'static, Result<Event, Infallible>>>>;

#[utoipa::path(get, path = "/api/v1/runs/{run_id}/progress", responses((status = 200, description = "text/event-stream of `target`, `counts` and `done` events", content_type = "text/event-stream", body = String), (status = 404, body = crate::api::error::ErrorBody)))]
/// Live per-target progress of a run.
pub async fn progress(State(app): State<App>, Path(run_id): Path<String>) -> Result<EventStream> {
    let run_id: RunId = parse_id(&run_id)?;
    app.store.get_run(&run_id).await?;
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(watch_progress(app, run_id, tx));
    Ok(sse(receiver_stream(rx)))
}

#[utoipa::path(get, path = "/api/v1/runs/{run_id}/output", responses((status = 200, description = "text/event-stream of `output` events", content_type = "text/event-stream", body = String), (status = 404, body = crate::api::error::ErrorBody)))]
/// Live output of a run's processes.
pub async fn output(State(app): State<App>, Path(run_id): Path<String>) -> Result<EventStream> {
    let run_id: RunId = parse_id(&run_id)?;
    app.store.get_run(&run_id).await?;
    let subscription = app
        .bus
        .client()
        .subscribe(subjects::run_output(&run_id))
        .await
        .map_err(|err| Error::Unavailable(format!("cannot subscribe to live output: {err}")))?;
    // The subscription is on the wire before the client sees the response headers, so
    // nothing printed after the client connected is missed (pinned by `tests/output.rs`).
    app.bus
        .client()
        .flush()
        .await
        .map_err(|err| Error::Unavailable(format!("cannot subscribe to live output: {err}")))?;
    let mut shutdown = app.shutdown_signal();
    let ended = async move {
        let _ = shutdown.changed().await;
    };
    let events = subscription
        .map(|message| Ok(output_event(&message)))
        .take_until(Box::pin(ended));
    Ok(sse(events))
}

fn sse(stream: impl Stream<Item = Result<Event, Infallible>> + Send + 'static) -> EventStream {
    Sse::new(stream.boxed()).keep_alive(KeepAlive::default())
}

fn receiver_stream(rx: mpsc::Receiver<Event>) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|event| (Ok(event), rx))
    })
}

fn output_event(message: &async_nats::Message) -> Event {
    let agent_id = message.subject.split('.').nth(2).unwrap_or_default();
    let chunk = OutputChunk {
        agent_id,
        text: String::from_utf8_lossy(&message.payload).into_owned(),
    };
    json_event("output", &chunk)
}

/// Sends target changes until the run has no open target, the client leaves, or the
/// server stops.
async fn watch_progress(app: App, run_id: RunId, tx: mpsc::Sender<Event>) {
    let mut changes = app.run_changes.subscribe();
    let mut shutdown = app.shutdown_signal();
    let mut known: BTreeMap<AgentId, TargetState> = BTreeMap::new();
    loop {
        match send_changes(&app, run_id, &mut known, &tx).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(run_id = %run_id, error = %err, "Live progress could not read the run; ending the stream.");
                return;
            }
        }
        tokio::select! {
            _ = wait_for_run(&mut changes, run_id) => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => return,
            _ = tx.closed() => return,
        }
    }
}

async fn wait_for_run(changes: &mut tokio::sync::broadcast::Receiver<RunId>, run_id: RunId) {
    loop {
        match changes.recv().await {
            Ok(changed) if changed == run_id => return,
            Ok(_) => {}
            // Missed notifications: re-read now rather than guess.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

/// Sends the targets that changed since the last read; `Ok(true)` when the run is done.
async fn send_changes(
    app: &App,
    run_id: RunId,
    known: &mut BTreeMap<AgentId, TargetState>,
    tx: &mpsc::Sender<Event>,
) -> Result<bool> {
    let mut changed = false;
    let mut reads = 0;
    loop {
        reads += 1;
        changed |= send_target_changes(app, run_id, known, tx).await?;
        let detail = app.store.get_run(&run_id).await?;
        let done = detail.counts.open() == 0;
        // The targets and the run are two reads: a target can finish between them. `done`
        // goes out only after every final state was sent, so read the targets again.
        if done && !known.values().all(|state| state.is_final()) && reads < 3 {
            continue;
        }
        if changed {
            let counts = counts_by_name(&detail.counts);
            let _ = tx.send(json_event("counts", &counts)).await;
        }
        if done {
            let status = serde_json::json!({ "status": detail.run.status });
            let _ = tx.send(json_event("done", &status)).await;
        }
        return Ok(done);
    }
}

/// Sends every target whose state differs from `known`; whether any did.
async fn send_target_changes(
    app: &App,
    run_id: RunId,
    known: &mut BTreeMap<AgentId, TargetState>,
    tx: &mpsc::Sender<Event>,
) -> Result<bool> {
    let mut offset = 0;
    let mut changed = false;
    loop {
        let query = TargetQuery {
            state: None,
            page: Page::new(MAX_PAGE_LIMIT, offset),
        };
        let page = app.store.list_targets(&run_id, &query).await?;
        for target in &page.items {
            if known.get(&target.agent_id) != Some(&target.state) {
                known.insert(target.agent_id.clone(), target.state);
                changed = true;
                let change = TargetChange {
                    agent_id: &target.agent_id,
                    state: target.state,
                    reason: target.reason.as_deref(),
                    exit_code: target.exit_code,
                };
                let _ = tx.send(json_event("target", &change)).await;
            }
        }
        offset += page.items.len() as u64;
        if page.items.len() < MAX_PAGE_LIMIT as usize || offset >= page.total {
            return Ok(changed);
        }
    }
}

fn json_event(name: &str, value: &impl Serialize) -> Event {
    Event::default()
        .event(name)
        .json_data(value)
        .unwrap_or_else(|_| Event::default().event(name))
}
