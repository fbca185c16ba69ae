//! Command intake: one ephemeral consumer, resumed from the local cursor, feeding the queue.
//!
//! The bus contract this module keeps (see `docs/protocol.md`):
//! - **One consumer per connected agent**, named `cmd-<agent-id>` so broker permissions can
//!   pin it, ephemeral (`inactive_threshold`), with one filter per subject the agent listens
//!   on: `all`, each of its groups, itself. A disconnected agent costs the broker nothing.
//! - **Resume from the cursor.** The consumer starts at `cursor + 1`. The cursor advances only
//!   in the same transaction that queues the command (`AgentState::enqueue`), so a crash
//!   between delivery and queueing redelivers instead of losing.
//! - **Exactly once.** Command ids already taken in are never queued again, so replays after
//!   a reconnect or a group change are harmless.
//! - **Gap detection.** NATS silently starts at the stream's first sequence when asked for
//!   an older one. The new consumer's info says where it really starts (it has "delivered"
//!   up to the sequence before); if that lies beyond `cursor + 1`, the agent reports
//!   `gap_detected` for the lost range.
//! - **Only its own commands.** A delivered subject outside the agent's filters, a bad
//!   signature, an unknown key, an expired command or one signed for another subject is
//!   refused and reported, never executed. Up to a [`RefusalLimit`] a window are reported
//!   one by one; the rest are counted and reported in one summary when the window ends, so
//!   whoever can publish forged commands cannot make every agent flood the events stream.
//! - **Housekeeping.** Seen command ids are pruned in small batches once no delivery of
//!   their command could still run (`state::seen_prune_time`, which says why that is safe).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures::StreamExt;
use jiff::Timestamp;
use tokio::sync::{Notify, mpsc, watch};
use tutti_bus::{BusError, bounded};
use tutti_proto::catalog::COMMANDS_STREAM;
use tutti_proto::command::{Command, CommandBody};
use tutti_proto::result::SkipReason;
use tutti_proto::sign::SignedCommand;
use tutti_proto::{AgentId, GroupName, RunId, subjects};

use crate::report;
use crate::state::{EnqueueOutcome, QueuedCommand, RefusalLimit, StateError, StateHandle};
use crate::trust::TrustStore;

/// How long the broker keeps the consumer after the agent stops pulling.
const CONSUMER_INACTIVE_THRESHOLD: Duration = Duration::from_secs(30);
/// The broker's idle heartbeat on the command consumer; async-nats reports one missed after
/// twice this without a message.
const PULL_HEARTBEAT: Duration = Duration::from_secs(5);
/// Missed heartbeats in a row after which the consumer is presumed gone and re-created.
const MISSED_HEARTBEATS_TOLERATED: u32 = 3;
/// How often seen command ids are pruned (and once at the start of every session).
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);
/// Seen command ids pruned per transaction.
const PRUNE_BATCH: usize = 256;

/// What intake needs to know and whom it tells.
#[derive(Debug, Clone)]
pub struct IntakeContext {
    /// This agent.
    pub agent_id: AgentId,
    /// The signing keys commands must be signed with.
    pub trust: Arc<TrustStore>,
    /// Where commands and cursor live.
    pub state: StateHandle,
    /// Poked whenever a command is queued.
    pub queued: Arc<Notify>,
    /// Receives run ids to kill now (running copies).
    pub kills: mpsc::UnboundedSender<RunId>,
    /// Poked whenever the outbox gains messages.
    pub outbox: Arc<Notify>,
    /// Start position for a never-connected agent (from enrollment).
    pub start_after_seq: Option<u64>,
    /// How many refusals are reported one by one.
    pub refusal_limit: RefusalLimit,
}

/// Why an intake session ended.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// Talking to the broker failed; the session is retried from the cursor.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The local state failed; the session is retried, nothing was acknowledged.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Groups the agent joined, and from when their commands must be read again.
///
/// The cursor covers everything delivered under the *old* filters, which can include
/// commands published after a command for a newly joined group: the server targeted this
/// agent for that command, but the old consumer skipped it. So after a join, the new groups'
/// subjects are read again from shortly before the change (`since`) up to the cursor; command
/// ids already taken in are ignored, so the overlap costs nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Backfill {
    /// The groups joined.
    pub groups: Vec<GroupName>,
    /// Read their commands published at or after this instant.
    pub since: Timestamp,
}

/// How far before a group change the backfill starts, covering clock skew between the
/// server (which stamps the stream) and the agent and the membership's propagation time.
pub const BACKFILL_MARGIN: jiff::SignedDuration = jiff::SignedDuration::from_secs(300);

/// Runs one intake session: creates the consumer from the cursor and takes commands in
/// until the group list changes (returns the groups joined) or the broker fails (returns
/// `Err`). The caller loops, so a new session resumes exactly at the cursor with the new
/// filters, after a [`Backfill`] of the groups joined.
pub async fn run_session(
    context: &IntakeContext,
    js: &async_nats::jetstream::Context,
    timeout: Duration,
    groups: &mut watch::Receiver<Vec<GroupName>>,
    backfill: &mut Option<Backfill>,
) -> Result<Option<Backfill>, IntakeError> {
    let current_groups = groups.borrow_and_update().clone();
    let filters = subjects::agent_command_filters(&context.agent_id, &current_groups);
    let cursor = initial_cursor(context, js, timeout).await?;
    if let Some(pending) = backfill.clone() {
        run_backfill(context, js, timeout, &pending, cursor).await?;
        *backfill = None;
    }
    let start_seq = cursor.saturating_add(1);
    let opened = open_consumer(context, js, timeout, &filters, start_seq).await?;
    let mut messages = opened.messages;
    report_gap(context, start_seq, opened.starts_at).await?;
    tracing::info!(agent_id = %context.agent_id, start_seq, ?filters, "Command intake started.");
    let mut silence = Silence::default();
    let limit = context.refusal_limit;
    let mut summary_due = context
        .state
        .call(move |state| state.refusal_summary_due(limit))
        .await?;
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let until_summary = summary_due.map(wait_until);
        tokio::select! {
            _ = prune.tick() => prune_seen(context).await?,
            () = tokio::time::sleep(until_summary.unwrap_or_default()), if until_summary.is_some() => {
                summary_due = summarize_refusals(context).await?;
            }
            changed = groups.changed() => {
                if changed.is_err() {
                    return Ok(None);
                }
                tracing::info!(agent_id = %context.agent_id, "Groups changed; re-creating the command consumer from the cursor.");
                let joined: Vec<GroupName> = groups
                    .borrow()
                    .iter()
                    .filter(|group| !current_groups.contains(group))
                    .cloned()
                    .collect();
                let since = Timestamp::now() - BACKFILL_MARGIN;
                return Ok((!joined.is_empty()).then_some(Backfill { groups: joined, since }));
            }
            next = messages.next() => match next {
                Some(Ok(message)) => {
                    if let Some(due) = take_message(context, &filters, message).await? {
                        summary_due.get_or_insert(due);
                    }
                }
                Some(Err(err)) if err.kind() == pull::MessagesErrorKind::MissingHeartbeat
                    && silence.tolerate(tokio::time::Instant::now()) =>
                {
                    tracing::debug!(agent_id = %context.agent_id, "A command consumer heartbeat is late; keeping the consumer.");
                }
                Some(Err(err)) => return Err(BusError::Other(format!("command consumer: {err}")).into()),
                None => return Err(BusError::Unavailable("command consumer ended".into()).into()),
            },
        }
    }
}

/// How long until `due` on the agent's clock (zero once it passed).
fn wait_until(due: Timestamp) -> Duration {
    Duration::try_from(due.duration_since(Timestamp::now())).unwrap_or_default()
}

/// Prunes every seen command id that is due, a small transaction at a time.
async fn prune_seen(context: &IntakeContext) -> Result<(), IntakeError> {
    let mut n_pruned = 0;
    loop {
        let now = Timestamp::now();
        let n_batch = context
            .state
            .call(move |state| state.prune_seen(now, PRUNE_BATCH))
            .await?;
        n_pruned += n_batch;
        if n_batch < PRUNE_BATCH {
            break;
        }
        tokio::task::yield_now().await;
    }
    if n_pruned > 0 {
        tracing::debug!(agent_id = %context.agent_id, n_pruned, "Pruned seen command ids that can no longer be delivered.");
    }
    Ok(())
}

/// Writes the summary of the refusals not reported one by one, if their window ended;
/// returns when to look again (a refusal counted meanwhile may have moved it).
async fn summarize_refusals(context: &IntakeContext) -> Result<Option<Timestamp>, IntakeError> {
    let agent_id = context.agent_id.clone();
    let limit = context.refusal_limit;
    let written = context
        .state
        .call(move |state| {
            state.summarize_refusals(limit, Timestamp::now(), |n_suppressed, last_seq| {
                report::refusals_suppressed(&agent_id, n_suppressed, last_seq, limit)
            })
        })
        .await?;
    if written {
        context.outbox.notify_one();
    }
    Ok(context
        .state
        .call(move |state| state.refusal_summary_due(limit))
        .await?)
}

/// Reads the joined groups' commands from `since` up to `cursor` through the same intake
/// path (signature checks, de-duplication), then ends.
async fn run_backfill(
    context: &IntakeContext,
    js: &async_nats::jetstream::Context,
    timeout: Duration,
    backfill: &Backfill,
    cursor: u64,
) -> Result<(), IntakeError> {
    let filters: Vec<String> = backfill.groups.iter().map(subjects::cmd_group).collect();
    let start_time =
        time::OffsetDateTime::from_unix_timestamp_nanos(backfill.since.as_nanosecond())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let policy = DeliverPolicy::ByStartTime { start_time };
    let opened = open_consumer_with(context, js, timeout, &filters, policy).await?;
    let (mut messages, pending) = (opened.messages, opened.pending);
    let mut remaining = pending;
    tracing::info!(agent_id = %context.agent_id, groups = ?backfill.groups, pending, "Reading commands of newly joined groups.");
    while remaining > 0 {
        let next = tokio::time::timeout(timeout * 2, messages.next()).await;
        let message = match next {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(err))) => {
                return Err(BusError::Other(format!("backfill consumer: {err}")).into());
            }
            Ok(None) | Err(_) => {
                return Err(BusError::Unavailable("backfill consumer stalled".into()).into());
            }
        };
        let info = message
            .info()
            .map_err(|err| BusError::Other(err.to_string()))?;
        let (stream_seq, pending) = (info.stream_sequence, info.pending);
        if stream_seq > cursor {
            break;
        }
        take_message(context, &filters, message).await?;
        remaining = pending;
    }
    Ok(())
}

async fn initial_cursor(
    context: &IntakeContext,
    js: &async_nats::jetstream::Context,
    timeout: Duration,
) -> Result<u64, IntakeError> {
    if let Some(cursor) = context.state.call(|state| state.cursor()).await? {
        return Ok(cursor);
    }
    // A freshly enrolled agent starts at its enrollment point, not at the beginning of the
    // stream: a new laptop must not replay a week of broadcasts.
    let start_after = match context.start_after_seq {
        Some(seq) => seq,
        None => stream_state(js, timeout).await?.last_sequence,
    };
    context
        .state
        .call(move |state| state.advance_cursor(start_after, None))
        .await?;
    Ok(start_after)
}

async fn open_consumer(
    context: &IntakeContext,
    js: &async_nats::jetstream::Context,
    timeout: Duration,
    filters: &[String],
    start_seq: u64,
) -> Result<OpenedConsumer, BusError> {
    let policy = DeliverPolicy::ByStartSequence {
        start_sequence: start_seq,
    };
    open_consumer_with(context, js, timeout, filters, policy).await
}

/// A command consumer as the broker created it.
struct OpenedConsumer {
    messages: pull::Stream,
    /// Messages pending for it at creation.
    pending: u64,
    /// The stream sequence it starts at. A start below the stream's first retained
    /// sequence is moved up to it by the broker, silently but visibly here: the consumer's
    /// info says it has "delivered" up to the sequence before its real start. Reading the
    /// start from the creation reply, not from stream info before and after, leaves no
    /// window for retention to move in between, and costs the broker no info requests.
    starts_at: u64,
}

/// Creates the agent's one consumer (replacing a lingering one) and returns its message
/// stream and the number of messages pending for it at creation.
async fn open_consumer_with(
    context: &IntakeContext,
    js: &async_nats::jetstream::Context,
    timeout: Duration,
    filters: &[String],
    deliver_policy: DeliverPolicy,
) -> Result<OpenedConsumer, BusError> {
    let name = format!("cmd-{}", context.agent_id);
    // No stream info request first: the broker queues at most 10,000 of those and drops
    // the rest, which a fleet starting at once would exceed (BENCHMARKS.md).
    // A consumer of the same name may linger from the previous session until its
    // inactivity threshold; its start position is wrong now, so replace it.
    let _ = tokio::time::timeout(
        timeout,
        js.delete_consumer_from_stream(&name, COMMANDS_STREAM),
    )
    .await;
    let config = pull::Config {
        name: Some(name),
        filter_subjects: filters.to_vec(),
        deliver_policy,
        ack_policy: AckPolicy::None,
        inactive_threshold: CONSUMER_INACTIVE_THRESHOLD,
        ..pull::Config::default()
    };
    let consumer = tokio::time::timeout(
        timeout,
        js.create_consumer_on_stream(config, COMMANDS_STREAM),
    )
    .await
    .map_err(|_| BusError::Timeout {
        what: "create command consumer".into(),
        after: timeout,
    })?
    .map_err(|err| BusError::Other(format!("create command consumer: {err}")))?;
    let pending = consumer.cached_info().num_pending;
    let starts_at = consumer
        .cached_info()
        .delivered
        .stream_sequence
        .saturating_add(1);
    let messages = consumer
        .stream()
        .heartbeat(PULL_HEARTBEAT)
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .map_err(|err| BusError::Other(format!("pull command consumer: {err}")))?;
    Ok(OpenedConsumer {
        messages,
        pending,
        starts_at,
    })
}

async fn stream_state(
    js: &async_nats::jetstream::Context,
    timeout: Duration,
) -> Result<async_nats::jetstream::stream::State, BusError> {
    // One info request, not two: `get_stream` would ask for the info to build the handle.
    let stream = bounded(
        "get commands stream",
        timeout,
        js.get_stream_no_info(COMMANDS_STREAM),
    )
    .await?;
    let info = bounded("commands stream info", timeout, stream.get_info()).await?;
    Ok(info.state)
}

/// Counts missed consumer heartbeats in a row. One late heartbeat is what a broker (or an
/// agent) busy for a few seconds looks like, for instance every agent of a large fleet
/// during a fleet-wide run; re-creating the consumer then would add thousands of API calls
/// to a broker that is already behind. Only silence for about
/// `MISSED_HEARTBEATS_TOLERATED` reporting periods means the consumer is gone.
#[derive(Debug, Default)]
struct Silence {
    missed: u32,
    last_miss: Option<tokio::time::Instant>,
}

impl Silence {
    /// Records a missed heartbeat at `now`; false when the consumer should be re-created.
    fn tolerate(&mut self, now: tokio::time::Instant) -> bool {
        // async-nats reports a miss every two heartbeat periods while silence lasts; a longer
        // pause since the previous miss means heartbeats came in between.
        let in_a_row = self
            .last_miss
            .is_some_and(|last| now.duration_since(last) <= PULL_HEARTBEAT * 3);
        self.missed = if in_a_row { self.missed + 1 } else { 1 };
        self.last_miss = Some(now);
        self.missed < MISSED_HEARTBEATS_TOLERATED
    }
}

/// Reports the range the agent can never read, if retention removed it, and moves the
/// cursor past it in the same transaction.
async fn report_gap(
    context: &IntakeContext,
    start_seq: u64,
    first_seq: u64,
) -> Result<(), IntakeError> {
    if first_seq <= start_seq {
        return Ok(());
    }
    let (from_seq, to_seq) = (start_seq, first_seq - 1);
    tracing::warn!(agent_id = %context.agent_id, from_seq, to_seq, "Commands were removed by retention before this agent could read them; reporting the gap.");
    let message = report::gap(&context.agent_id, from_seq, to_seq);
    context
        .state
        .call(move |state| state.advance_cursor(to_seq, Some(&message)))
        .await?;
    context.outbox.notify_one();
    Ok(())
}

/// Takes one delivered message in, as a command or a refusal. Returns when a refusal
/// summary falls due if the message was a refusal counted rather than reported.
async fn take_message(
    context: &IntakeContext,
    filters: &[String],
    message: async_nats::jetstream::Message,
) -> Result<Option<Timestamp>, IntakeError> {
    let stream_seq = match message.info() {
        Ok(info) => info.stream_sequence,
        Err(err) => return Err(BusError::Other(format!("command without metadata: {err}")).into()),
    };
    let subject = message.subject.to_string();
    match accept(context, filters, &subject, &message.payload) {
        Ok(command) => {
            take_command(context, stream_seq, subject, command).await?;
            Ok(None)
        }
        Err(refusal) => refuse(context, stream_seq, &subject, refusal).await,
    }
}

/// Reports a refusal, or counts it for the summary once the window's reports are spent.
async fn refuse(
    context: &IntakeContext,
    stream_seq: u64,
    subject: &str,
    refusal: Refusal,
) -> Result<Option<Timestamp>, IntakeError> {
    let agent_id = context.agent_id.clone();
    let limit = context.refusal_limit;
    let report = report::refused(
        &agent_id,
        refusal.command_id,
        stream_seq,
        refusal.reason.clone(),
    );
    let summary_due = context
        .state
        .call(move |state| {
            state.refuse(
                stream_seq,
                &report,
                limit,
                Timestamp::now(),
                |n_suppressed, last_seq| {
                    report::refusals_suppressed(&agent_id, n_suppressed, last_seq, limit)
                },
            )
        })
        .await?;
    if summary_due.is_none() {
        tracing::warn!(agent_id = %context.agent_id, stream_seq, %subject, reason = %refusal.reason, "Refused a command.");
    } else {
        tracing::debug!(agent_id = %context.agent_id, stream_seq, %subject, reason = %refusal.reason, "Refused a command; over the reporting limit, it is counted for a summary.");
    }
    context.outbox.notify_one();
    Ok(summary_due)
}

/// Why a delivered message is not a command for this agent.
#[derive(Debug)]
struct Refusal {
    command_id: Option<tutti_proto::CommandId>,
    reason: String,
}

fn accept(
    context: &IntakeContext,
    filters: &[String],
    subject: &str,
    payload: &[u8],
) -> Result<Command, Refusal> {
    let refuse = |reason: String| Refusal {
        command_id: None,
        reason,
    };
    if !filters
        .iter()
        .any(|filter| subjects::matches(filter, subject))
    {
        return Err(refuse(format!(
            "delivered on {subject}, which is not one of this agent's subjects"
        )));
    }
    let signed = SignedCommand::from_bytes(payload).map_err(|err| refuse(err.to_string()))?;
    let command = context
        .trust
        .verify_command(&signed, Timestamp::now())
        .map_err(|err| refuse(err.to_string()))?;
    if !command.is_addressed_to(subject) {
        return Err(Refusal {
            command_id: Some(command.command_id),
            reason: format!("signed for {} but delivered on {subject}", command.subject),
        });
    }
    if matches!(command.body, CommandBody::Unknown) {
        return Err(Refusal {
            command_id: Some(command.command_id),
            reason: "unknown command type (is this agent older than the server?)".into(),
        });
    }
    Ok(command)
}

async fn take_command(
    context: &IntakeContext,
    stream_seq: u64,
    subject: String,
    command: Command,
) -> Result<(), IntakeError> {
    let queued = QueuedCommand {
        stream_seq,
        subject,
        command,
        received_at: Timestamp::now(),
    };
    match &queued.command.body {
        CommandBody::Kill(kill) => take_kill(context, queued.clone(), kill.run_id).await,
        CommandBody::Run(run) => take_run(context, queued.clone(), run.run_id).await,
        CommandBody::Unknown => Ok(()),
    }
}

async fn take_run(
    context: &IntakeContext,
    queued: QueuedCommand,
    run_id: RunId,
) -> Result<(), IntakeError> {
    let agent_id = context.agent_id.clone();
    let received = report::received(&agent_id, &queued, &run_id);
    let outcome = context
        .state
        .call(move |state| {
            state.enqueue(&queued, &received, || {
                report::skipped(&agent_id, &queued, &run_id, SkipReason::Killed)
            })
        })
        .await?;
    context.outbox.notify_one();
    if outcome == EnqueueOutcome::Queued {
        context.queued.notify_one();
    }
    Ok(())
}

async fn take_kill(
    context: &IntakeContext,
    queued: QueuedCommand,
    run_id: RunId,
) -> Result<(), IntakeError> {
    let agent_id = context.agent_id.clone();
    let kill_run = run_id;
    let is_new = context
        .state
        .call(move |state| {
            state.take_kill(&queued, &kill_run, |copy| {
                report::skipped(&agent_id, copy, &kill_run, SkipReason::Killed)
            })
        })
        .await?;
    if is_new {
        tracing::info!(agent_id = %context.agent_id, run_id = %run_id, "Kill received.");
        let _ = context.kills.send(run_id);
        context.outbox.notify_one();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_tolerated_until_three_misses_in_a_row() {
        let start = tokio::time::Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let mut silence = Silence::default();
        assert!(silence.tolerate(at(10)));
        assert!(silence.tolerate(at(20)));
        assert!(!silence.tolerate(at(30)), "30 s without a heartbeat");

        // Misses far apart are separate hiccups, however many there are.
        let mut silence = Silence::default();
        for minute in 1..10 {
            assert!(silence.tolerate(at(minute * 60)), "minute {minute}");
        }
    }
}
