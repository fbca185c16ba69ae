//! Projectors: the streams agents and the server write (results, events, inventory, audit)
//! turned into tables, plus heartbeats from core NATS (`heartbeats.rs`).
//!
//! Each stream has one durable pull consumer, `<prefix>-<kind>`, shared by every server
//! replica that uses the same database, with explicit acks. A batch starts with the first
//! message to arrive (waiting up to `batch_window_ms` for it) and takes whatever else is
//! already waiting, at most `batch_size` messages, without waiting for more: a quiet stream
//! costs one request per window, and a busy one fills its batches without adding a window
//! to every message's latency. A batch is applied with the store's
//! `apply_*`, which is one transaction and idempotent, and only then is each message
//! acknowledged. A crash between commit and ack redelivers messages the store already has,
//! which it counts as duplicates (test `server_killed_mid_batch_loses_and_duplicates_nothing`).
//! If the transaction fails the batch is nak'ed and retried.
//!
//! A message that does not decode, or whose agent id differs from the agent id in its
//! subject (an agent may only speak as itself), is acknowledged and dropped with a warning:
//! it can never become valid, and keeping it would block the stream. A message from an
//! agent id that no enrolled agent has is dropped by the store inside the batch's
//! transaction (so a deletion cannot race the check), acknowledged with the batch, and
//! counted and logged sparingly by `unknown_agents.rs`.

pub(crate) mod heartbeats;
pub(crate) mod unknown_agents;

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::AckKind;
use async_nats::jetstream::Message;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tutti_proto::catalog::{AUDIT_STREAM, EVENTS_STREAM, INVENTORY_STREAM, RESULTS_STREAM};
use tutti_proto::event::{AgentEvent, EventKind};
use tutti_proto::{AgentId, RunId, subjects};
use tutti_store::{ApplyOutcome, Sequenced, StoreResult};

use crate::app::App;
use unknown_agents::MessageKind;

/// The projected streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `TUTTI_RESULTS` → results and target outcomes.
    Results,
    /// `TUTTI_EVENTS` → run events and target progress.
    Events,
    /// `TUTTI_INVENTORY` → current inventory and its history.
    Inventory,
    /// `TUTTI_AUDIT` → the audit log.
    Audit,
}

impl Kind {
    /// Every projected stream.
    pub(crate) const ALL: [Kind; 4] = [Kind::Results, Kind::Events, Kind::Inventory, Kind::Audit];

    /// The stream name.
    pub(crate) fn stream(self) -> &'static str {
        match self {
            Kind::Results => RESULTS_STREAM,
            Kind::Events => EVENTS_STREAM,
            Kind::Inventory => INVENTORY_STREAM,
            Kind::Audit => AUDIT_STREAM,
        }
    }

    fn filter_subject(self) -> String {
        match self {
            Kind::Results => subjects::all_results(),
            Kind::Events => subjects::all_events(),
            Kind::Inventory => subjects::all_inventory(),
            Kind::Audit => subjects::audit(),
        }
    }

    /// What the stream carries from agents; `None` for the server's own audit records.
    fn message_kind(self) -> Option<MessageKind> {
        match self {
            Kind::Results => Some(MessageKind::Result),
            Kind::Events => Some(MessageKind::Event),
            Kind::Inventory => Some(MessageKind::Inventory),
            Kind::Audit => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Results => "results",
            Kind::Events => "events",
            Kind::Inventory => "inventory",
            Kind::Audit => "audit",
        }
    }
}

/// Runs the projector of `kind` until `shutdown` changes, reopening its consumer with
/// backoff after any failure.
pub(crate) async fn run(app: App, kind: Kind, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(250);
    loop {
        match project(&app, kind, &mut shutdown).await {
            Ok(()) => return,
            Err(err) => {
                tracing::warn!(stream = kind.stream(), error = format!("{err:#}"), retry_in = ?backoff, "A projector stopped; it restarts after a pause.");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Fetches and applies batches until shutdown (`Ok`) or a failure (`Err`).
async fn project(
    app: &App,
    kind: Kind,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let consumer = open_consumer(app, kind).await?;
    loop {
        let batch = tokio::select! {
            batch = fetch(app, &consumer) => batch?,
            _ = shutdown.changed() => return Ok(()),
        };
        if !batch.is_empty() {
            apply_and_ack(app, kind, batch).await?;
        }
    }
}

async fn open_consumer(app: &App, kind: Kind) -> anyhow::Result<PullConsumer> {
    let settings = &app.config.projector;
    let name = format!("{}-{}", settings.consumer_prefix, kind.name());
    let config = pull::Config {
        durable_name: Some(name.clone()),
        description: Some(format!("tutti server projector of {}", kind.stream())),
        filter_subject: kind.filter_subject(),
        ack_policy: AckPolicy::Explicit,
        ack_wait: Duration::from_secs(settings.ack_wait_secs.max(1)),
        max_ack_pending: i64::try_from(settings.batch_size.saturating_mul(4)).unwrap_or(i64::MAX),
        deliver_policy: DeliverPolicy::All,
        ..Default::default()
    };
    let timeout = app.bus.request_timeout();
    let js = app.bus.jetstream();
    let stream = tutti_bus::bounded("get stream", timeout, js.get_stream(kind.stream())).await?;
    let consumer = tokio::time::timeout(timeout, stream.get_or_create_consumer(&name, config))
        .await
        .context("creating the projector consumer timed out")?
        .with_context(|| format!("cannot create consumer {name}"))?;
    tracing::info!(stream = kind.stream(), consumer = %name, "A projector is following its stream.");
    Ok(consumer)
}

/// One batch: the first message within the batch window, then up to `batch_size - 1` more
/// that are already there.
async fn fetch(app: &App, consumer: &PullConsumer) -> anyhow::Result<Vec<Message>> {
    let settings = &app.config.projector;
    let window = Duration::from_millis(settings.batch_window_ms.max(10));
    let timeout = app.bus.request_timeout();
    let first = consumer.batch().max_messages(1).expires(window).messages();
    // The broker ends a request after its window (or at once, for `fetch`); a dead
    // connection would not, so each request is bounded too.
    let mut batch = tokio::time::timeout(window + timeout, drain(first))
        .await
        .context("waiting for a message timed out")??;
    if batch.is_empty() || settings.batch_size <= 1 {
        return Ok(batch);
    }
    let rest = consumer
        .fetch()
        .max_messages(settings.batch_size - 1)
        .messages();
    batch.extend(
        tokio::time::timeout(timeout, drain(rest))
            .await
            .context("fetching a batch timed out")??,
    );
    Ok(batch)
}

/// Every message of one pull request.
async fn drain<F, S, E, M>(request: F) -> anyhow::Result<Vec<Message>>
where
    F: std::future::IntoFuture<Output = Result<S, E>>,
    S: futures::Stream<Item = Result<Message, M>> + Unpin,
    E: std::error::Error + Send + Sync + 'static,
    M: std::fmt::Display,
{
    let mut messages = request.await.context("cannot request a batch")?;
    let mut batch = Vec::new();
    while let Some(message) = messages.next().await {
        batch.push(message.map_err(|err| anyhow::anyhow!("batch delivery failed: {err}"))?);
    }
    Ok(batch)
}

async fn apply_and_ack(app: &App, kind: Kind, batch: Vec<Message>) -> anyhow::Result<()> {
    let counters = app.metrics.projector(kind.stream());
    match apply(app, kind, &batch).await {
        Ok((outcome, runs)) => {
            counters.record(&outcome);
            if let Some(message_kind) = kind.message_kind() {
                app.metrics
                    .unknown_agents
                    .dropped(message_kind, &outcome.unknown_agents);
            }
            for message in &batch {
                if let Err(err) = message.ack().await {
                    tracing::warn!(stream = kind.stream(), error = %err, "An acknowledgement was lost; the message will be redelivered and de-duplicated.");
                }
            }
            for run_id in runs {
                app.notify_run_changed(run_id);
            }
            Ok(())
        }
        Err(err) => {
            counters
                .failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            for message in &batch {
                let _ = message
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                    .await;
            }
            Err(anyhow::Error::new(err)
                .context(format!("applying a batch of {} failed", kind.stream())))
        }
    }
}

/// Decodes and applies one batch; returns the outcome and the runs it touched.
async fn apply(
    app: &App,
    kind: Kind,
    batch: &[Message],
) -> StoreResult<(ApplyOutcome, BTreeSet<RunId>)> {
    let store = &app.store;
    match kind {
        Kind::Results => {
            let decoded = decode(
                app,
                kind,
                batch,
                |result: &tutti_proto::result::RunResult| Some(&result.agent_id),
            );
            let runs = decoded.iter().map(|item| item.message.run_id).collect();
            Ok((store.apply_results(decoded).await?, runs))
        }
        Kind::Events => {
            let decoded = decode(app, kind, batch, |event: &AgentEvent| Some(&event.agent_id));
            let runs = decoded
                .iter()
                .filter_map(|item| event_run(&item.message))
                .collect();
            Ok((store.apply_events(decoded).await?, runs))
        }
        Kind::Inventory => {
            let decoded = decode(
                app,
                kind,
                batch,
                |snapshot: &tutti_proto::inventory::InventorySnapshot| Some(&snapshot.agent_id),
            );
            Ok((store.apply_inventory(decoded).await?, BTreeSet::new()))
        }
        Kind::Audit => {
            let decoded = decode(app, kind, batch, |_: &tutti_proto::audit::AuditRecord| None);
            Ok((store.apply_audit(decoded).await?, BTreeSet::new()))
        }
    }
}

fn event_run(event: &AgentEvent) -> Option<RunId> {
    match &event.kind {
        EventKind::Received { run_id, .. } | EventKind::Started { run_id, .. } => Some(*run_id),
        _ => None,
    }
}

/// Decodes every message of a batch, dropping (with a warning) those that do not decode
/// or that claim another agent than their subject's.
fn decode<T: DeserializeOwned>(
    app: &App,
    kind: Kind,
    batch: &[Message],
    agent_of: impl Fn(&T) -> Option<&AgentId>,
) -> Vec<Sequenced<T>> {
    let counters = app.metrics.projector(kind.stream());
    let mut decoded = Vec::with_capacity(batch.len());
    for message in batch {
        match decode_one(message, &agent_of) {
            Ok(item) => decoded.push(item),
            Err(reason) => {
                counters
                    .rejected
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(stream = kind.stream(), subject = %message.subject, reason, "Dropped a message that cannot be projected.");
            }
        }
    }
    decoded
}

fn decode_one<T: DeserializeOwned>(
    message: &Message,
    agent_of: &impl Fn(&T) -> Option<&AgentId>,
) -> Result<Sequenced<T>, String> {
    let info = message
        .info()
        .map_err(|err| format!("no stream metadata: {err}"))?;
    let stream_seq = info.stream_sequence;
    let value: T = serde_json::from_slice(&message.payload)
        .map_err(|err| format!("does not decode: {err}"))?;
    if let Some(agent_id) = agent_of(&value) {
        let subject_agent = message.subject.split('.').nth(2).unwrap_or_default();
        if subject_agent != agent_id.as_str() {
            return Err(format!(
                "agent {agent_id} published on another agent's subject"
            ));
        }
    }
    Ok(Sequenced::new(stream_seq, value))
}
