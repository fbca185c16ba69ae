//! The agent's durable local state: command cursor, queue, de-duplication, running marks,
//! kills and the results outbox, all in one redb database in the state directory.
//!
//! One database means one transaction can cover every step that must happen together:
//! a command enters the queue **and** the cursor advances past it **and** its `received`
//! event enters the outbox, or none of them does. That is what makes catch-up exactly-once:
//! the cursor never covers a command that is not safely queued, and a command id seen
//! before is never queued twice (see `enqueue_is_idempotent_by_command_id`).
//!
//! Every commit is `Durability::Immediate` (fsynced): a result acknowledged here survives
//! SIGKILL and power loss. The calls are blocking; async callers go through
//! [`StateHandle`], which runs them on the blocking pool.
//!
//! Two things here would grow without bound and are kept in check: seen command ids are
//! pruned once no delivery of the command could still run ([`AgentState::prune_seen`]),
//! and refusals are reported one by one only up to a [`RefusalLimit`], the rest counted in
//! the same transaction that moves the cursor past them ([`AgentState::refuse`]), so a
//! flood of forged commands cannot flood the outbox and the summary survives a crash.

use std::path::Path;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use tutti_proto::command::Command;
use tutti_proto::{CommandId, RunId};

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const QUEUE: TableDefinition<u64, &[u8]> = TableDefinition::new("queue");
const SEEN: TableDefinition<&str, u64> = TableDefinition::new("seen_commands");
/// The seen command ids again, keyed by when each may be pruned (unix ms), so pruning
/// reads only what is due. Ids recorded before this table existed are not in it and are
/// kept, which is always safe.
const SEEN_BY_PRUNE_TIME: TableDefinition<(u64, &str), ()> =
    TableDefinition::new("seen_commands_by_prune_time");
const RUNNING: TableDefinition<&str, &[u8]> = TableDefinition::new("running");
const KILLED_RUNS: TableDefinition<&str, u64> = TableDefinition::new("killed_runs");
const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");

const CURSOR_KEY: &str = "cursor";
const OUTBOX_NEXT_KEY: &str = "outbox_next";
const OUTBOX_BYTES_KEY: &str = "outbox_bytes";
const REFUSALS_WINDOW_KEY: &str = "refusals_window_start_ms";
const REFUSALS_REPORTED_KEY: &str = "refusals_reported";
const REFUSALS_SUPPRESSED_KEY: &str = "refusals_suppressed";
const REFUSALS_LAST_SEQ_KEY: &str = "refusals_last_suppressed_seq";

/// How long after it could last have run a command's seen entry is kept: covers the
/// agent's clock being set back after the prune.
pub const SEEN_MARGIN: SignedDuration = SignedDuration::from_hours(24);
/// How long `TUTTI_COMMANDS` keeps a message (`tutti_proto::catalog`; the test
/// `the_commands_retention_is_the_catalogs` keeps them equal).
pub const COMMANDS_RETENTION: SignedDuration = SignedDuration::from_hours(7 * 24);

/// When the seen entry of a command may be pruned: [`SEEN_MARGIN`] after the last moment a
/// delivery of it could still be taken in.
///
/// **Invariant: pruning never lets a command run twice.** After `expires_at` every
/// delivery of a command is refused at verification (`intake::accept`, `Expired`), so
/// its id is no longer needed to recognise it. A command without `expires_at` can only be
/// delivered again while the commands stream holds it, at most [`COMMANDS_RETENTION`]
/// after the agent received it; the consumer resumes after the cursor, which never moves
/// backwards, and only a group backfill reads below it, from minutes before. Both are
/// pinned by `tests/replay.rs` (`a_pruned_command_delivered_again_is_refused_not_run`)
/// and the unit tests `seen_entries_are_pruned_only_after_their_expiry_and_margin`.
pub fn seen_prune_time(command: &Command, received_at: Timestamp) -> Timestamp {
    let last_delivery = command
        .expires_at
        .unwrap_or_else(|| received_at + COMMANDS_RETENTION);
    last_delivery + SEEN_MARGIN
}

/// How many refusals are reported one by one per window; the rest are counted and
/// reported in one summary after the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusalLimit {
    /// Refusals reported one by one in a window.
    pub per_window: u64,
    /// The window.
    pub window: SignedDuration,
}

impl Default for RefusalLimit {
    fn default() -> Self {
        RefusalLimit {
            per_window: 10,
            window: SignedDuration::from_secs(60),
        }
    }
}

/// A command accepted into the local queue, with where it came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QueuedCommand {
    /// Its sequence in the commands stream.
    pub stream_seq: u64,
    /// The subject it was delivered on.
    pub subject: String,
    /// The verified command.
    pub command: Command,
    /// When the agent accepted it.
    pub received_at: Timestamp,
}

/// A message waiting to be published to JetStream and acknowledged.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutboxMessage {
    /// The subject to publish on.
    pub subject: String,
    /// The `Nats-Msg-Id` header: the broker drops a second publish with the same id.
    pub msg_id: String,
    /// The message body.
    pub payload: Vec<u8>,
    /// For a `received` or `started` event: the command it reports on. Such an event is
    /// not published when the command's result leaves in the same outbox batch (see
    /// `outbox.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_of: Option<CommandId>,
    /// For a result: its command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_of: Option<CommandId>,
}

/// What a state operation can fail with. Every variant means the local disk or database is
/// in trouble; callers log it and retry, never drop the work.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// redb failed (I/O, corruption, disk full).
    #[error("agent state database: {0}")]
    Database(String),
    /// A stored record could not be decoded.
    #[error("agent state record {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
}

macro_rules! impl_from_redb {
    ($($error:ty),*) => {$(
        impl From<$error> for StateError {
            fn from(error: $error) -> Self {
                StateError::Database(error.to_string())
            }
        }
    )*};
}
impl_from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// What `enqueue` did with a delivered command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnqueueOutcome {
    /// Queued; its `received` event is in the outbox.
    Queued,
    /// Seen before (replay after a reconnect or a consumer switch); only the cursor moved.
    Duplicate,
    /// Its run was killed before it arrived; it is answered as skipped.
    AlreadyKilled,
}

/// The agent's state database.
#[derive(Debug)]
pub struct AgentState {
    db: Database,
}

impl AgentState {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<AgentState, StateError> {
        let db = Database::create(path)?;
        let state = AgentState { db };
        state.create_tables()?;
        Ok(state)
    }

    fn create_tables(&self) -> Result<(), StateError> {
        let txn = self.db.begin_write()?;
        txn.open_table(META)?;
        txn.open_table(QUEUE)?;
        txn.open_table(SEEN)?;
        txn.open_table(SEEN_BY_PRUNE_TIME)?;
        txn.open_table(RUNNING)?;
        txn.open_table(KILLED_RUNS)?;
        txn.open_table(OUTBOX)?;
        txn.commit()?;
        Ok(())
    }

    /// The last commands-stream sequence the agent has fully taken in, if any.
    pub fn cursor(&self) -> Result<Option<u64>, StateError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta.get(CURSOR_KEY)?.map(|value| value.value()))
    }

    /// Moves the cursor forward to `seq` (never backwards), optionally with an outbox message
    /// (a refusal or gap report) in the same transaction.
    pub fn advance_cursor(
        &self,
        seq: u64,
        report: Option<&OutboxMessage>,
    ) -> Result<(), StateError> {
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            advance(&mut meta, seq)?;
            if let Some(message) = report {
                push_outbox(&mut meta, &mut txn.open_table(OUTBOX)?, message)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Takes a verified command in: queues it, records its id, advances the cursor, and puts
    /// `received` into the outbox, in one transaction. For a run already killed, the skip
    /// result goes to the outbox instead (`skipped_result` builds it).
    pub fn enqueue(
        &self,
        queued: &QueuedCommand,
        received_event: &OutboxMessage,
        skipped_result: impl FnOnce() -> OutboxMessage,
    ) -> Result<EnqueueOutcome, StateError> {
        let txn = self.db.begin_write()?;
        let outcome;
        {
            let mut meta = txn.open_table(META)?;
            let mut outbox = txn.open_table(OUTBOX)?;
            advance(&mut meta, queued.stream_seq)?;
            if !record_seen(&txn, queued)? {
                outcome = EnqueueOutcome::Duplicate;
            } else {
                let killed = match queued.command.run_id() {
                    Some(run_id) => txn
                        .open_table(KILLED_RUNS)?
                        .get(&*run_id.to_string())?
                        .is_some(),
                    None => false,
                };
                push_outbox(&mut meta, &mut outbox, received_event)?;
                if killed {
                    push_outbox(&mut meta, &mut outbox, &skipped_result())?;
                    outcome = EnqueueOutcome::AlreadyKilled;
                } else {
                    txn.open_table(QUEUE)?
                        .insert(queued.stream_seq, encode(queued)?.as_slice())?;
                    outcome = EnqueueOutcome::Queued;
                }
            }
        }
        txn.commit()?;
        Ok(outcome)
    }

    /// The queued commands in stream order.
    pub fn queued(&self) -> Result<Vec<QueuedCommand>, StateError> {
        let txn = self.db.begin_read()?;
        let queue = txn.open_table(QUEUE)?;
        let mut commands = Vec::new();
        for entry in queue.iter()? {
            let (_, value) = entry?;
            commands.push(decode("queued command", value.value())?);
        }
        Ok(commands)
    }

    /// Number of queued commands.
    pub fn queue_depth(&self) -> Result<u64, StateError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(QUEUE)?.len()?)
    }

    /// Moves a command from the queue to the running set, with its `started` event in the
    /// outbox. If the agent dies before `finish`, the next start reports it `interrupted`.
    pub fn start(
        &self,
        queued: &QueuedCommand,
        started_event: &OutboxMessage,
    ) -> Result<(), StateError> {
        let txn = self.db.begin_write()?;
        {
            txn.open_table(QUEUE)?.remove(queued.stream_seq)?;
            let key = &*queued.command.command_id.to_string();
            txn.open_table(RUNNING)?
                .insert(key, encode(queued)?.as_slice())?;
            push_outbox(
                &mut txn.open_table(META)?,
                &mut txn.open_table(OUTBOX)?,
                started_event,
            )?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Ends a command, queued or running, with its result in the outbox.
    pub fn finish(&self, queued: &QueuedCommand, result: &OutboxMessage) -> Result<(), StateError> {
        let txn = self.db.begin_write()?;
        {
            txn.open_table(QUEUE)?.remove(queued.stream_seq)?;
            txn.open_table(RUNNING)?
                .remove(&*queued.command.command_id.to_string())?;
            push_outbox(
                &mut txn.open_table(META)?,
                &mut txn.open_table(OUTBOX)?,
                result,
            )?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Commands that were running when the agent last stopped (crash, SIGKILL, reboot).
    pub fn running(&self) -> Result<Vec<QueuedCommand>, StateError> {
        let txn = self.db.begin_read()?;
        let running = txn.open_table(RUNNING)?;
        let mut commands = Vec::new();
        for entry in running.iter()? {
            let (_, value) = entry?;
            commands.push(decode("running command", value.value())?);
        }
        Ok(commands)
    }

    /// Records that a run was killed, so a copy that arrives later (catch-up) is skipped.
    pub fn record_kill(&self, run_id: &RunId, at: Timestamp) -> Result<(), StateError> {
        let txn = self.db.begin_write()?;
        txn.open_table(KILLED_RUNS)?
            .insert(&*run_id.to_string(), millis(at))?;
        txn.commit()?;
        Ok(())
    }

    /// Takes a kill command (`kill`, its run `run_id`) in: records the kill, advances the
    /// cursor past it, and answers every queued copy of the run as skipped, in one
    /// transaction. Returns false when the kill command was seen before. A running copy is
    /// the caller's to stop.
    pub fn take_kill(
        &self,
        kill: &QueuedCommand,
        run_id: &RunId,
        skipped: impl Fn(&QueuedCommand) -> OutboxMessage,
    ) -> Result<bool, StateError> {
        let txn = self.db.begin_write()?;
        let is_new;
        {
            let mut meta = txn.open_table(META)?;
            advance(&mut meta, kill.stream_seq)?;
            is_new = record_seen(&txn, kill)?;
            if is_new {
                txn.open_table(KILLED_RUNS)?
                    .insert(&*run_id.to_string(), millis(Timestamp::now()))?;
                let mut queue = txn.open_table(QUEUE)?;
                let mut outbox = txn.open_table(OUTBOX)?;
                let mut doomed = Vec::new();
                for entry in queue.iter()? {
                    let (key, value) = entry?;
                    let queued: QueuedCommand = decode("queued command", value.value())?;
                    if queued.command.run_id() == Some(run_id) {
                        doomed.push((key.value(), queued));
                    }
                }
                for (key, queued) in doomed {
                    queue.remove(key)?;
                    push_outbox(&mut meta, &mut outbox, &skipped(&queued))?;
                }
            }
        }
        txn.commit()?;
        Ok(is_new)
    }

    /// Whether a run was killed.
    pub fn is_killed(&self, run_id: &RunId) -> Result<bool, StateError> {
        let txn = self.db.begin_read()?;
        Ok(txn
            .open_table(KILLED_RUNS)?
            .get(&*run_id.to_string())?
            .is_some())
    }

    /// Whether a command id has been taken in before.
    pub fn has_seen(&self, command_id: &CommandId) -> Result<bool, StateError> {
        let txn = self.db.begin_read()?;
        Ok(txn
            .open_table(SEEN)?
            .get(&*command_id.to_string())?
            .is_some())
    }

    /// Prunes at most `limit` seen entries whose prune time ([`seen_prune_time`]) is at or
    /// before `now`, in one transaction, and returns how many. Callers prune in small
    /// batches, so that no transaction holds the writer long; with nothing due this only
    /// reads.
    pub fn prune_seen(&self, now: Timestamp, limit: usize) -> Result<usize, StateError> {
        let now_ms = millis(now);
        let mut due = Vec::new();
        {
            let txn = self.db.begin_read()?;
            let by_time = txn.open_table(SEEN_BY_PRUNE_TIME)?;
            for entry in by_time.range((0, "")..=(now_ms, "~"))?.take(limit) {
                let (key, _) = entry?;
                let (prune_ms, command_id) = key.value();
                due.push((prune_ms, command_id.to_string()));
            }
        }
        if due.is_empty() {
            return Ok(0);
        }
        let txn = self.db.begin_write()?;
        {
            let mut by_time = txn.open_table(SEEN_BY_PRUNE_TIME)?;
            let mut seen = txn.open_table(SEEN)?;
            for (prune_ms, command_id) in &due {
                by_time.remove((*prune_ms, command_id.as_str()))?;
                seen.remove(command_id.as_str())?;
            }
        }
        txn.commit()?;
        Ok(due.len())
    }

    /// Takes a refused message in: advances the cursor past `stream_seq` and, while the
    /// current window of `limit` has room, puts `report` into the outbox; otherwise only
    /// counts it. A refusal that opens a new window first writes the summary of the
    /// previous one's (`summary(count, last_seq)`). One transaction, so a refusal is
    /// either reported or counted, never lost. Returns `None` when it was reported, and
    /// when the summary that will count it falls due when it was not.
    pub fn refuse(
        &self,
        stream_seq: u64,
        report: &OutboxMessage,
        limit: RefusalLimit,
        now: Timestamp,
        summary: impl FnOnce(u64, u64) -> OutboxMessage,
    ) -> Result<Option<Timestamp>, StateError> {
        let txn = self.db.begin_write()?;
        let summary_due;
        {
            let mut meta = txn.open_table(META)?;
            let mut outbox = txn.open_table(OUTBOX)?;
            advance(&mut meta, stream_seq)?;
            if window_end(&meta, limit)?.is_none_or(|end| now >= end) {
                push_summary(&mut meta, &mut outbox, summary)?;
                meta.insert(REFUSALS_WINDOW_KEY, millis(now))?;
                meta.insert(REFUSALS_REPORTED_KEY, 0)?;
            }
            let n_reported = get_meta(&meta, REFUSALS_REPORTED_KEY)?;
            if n_reported < limit.per_window {
                meta.insert(REFUSALS_REPORTED_KEY, n_reported + 1)?;
                push_outbox(&mut meta, &mut outbox, report)?;
                summary_due = None;
            } else {
                let n_suppressed = get_meta(&meta, REFUSALS_SUPPRESSED_KEY)?;
                meta.insert(REFUSALS_SUPPRESSED_KEY, n_suppressed + 1)?;
                meta.insert(REFUSALS_LAST_SEQ_KEY, stream_seq)?;
                summary_due = window_end(&meta, limit)?;
            }
        }
        txn.commit()?;
        Ok(summary_due)
    }

    /// When the summary of refusals counted but not reported falls due, if any are.
    pub fn refusal_summary_due(
        &self,
        limit: RefusalLimit,
    ) -> Result<Option<Timestamp>, StateError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        if get_meta(&meta, REFUSALS_SUPPRESSED_KEY)? == 0 {
            return Ok(None);
        }
        Ok(Some(
            window_end(&meta, limit)?.unwrap_or(Timestamp::UNIX_EPOCH),
        ))
    }

    /// Once the window of `limit` has ended, puts the summary of the refusals it did not
    /// report into the outbox (`summary(count, last_seq)`); returns whether it wrote one.
    pub fn summarize_refusals(
        &self,
        limit: RefusalLimit,
        now: Timestamp,
        summary: impl FnOnce(u64, u64) -> OutboxMessage,
    ) -> Result<bool, StateError> {
        let txn = self.db.begin_write()?;
        let written;
        {
            let mut meta = txn.open_table(META)?;
            let ended = window_end(&meta, limit)?.is_none_or(|end| now >= end);
            written = ended && push_summary(&mut meta, &mut txn.open_table(OUTBOX)?, summary)?;
        }
        txn.commit()?;
        Ok(written)
    }

    /// Puts one message into the outbox on its own.
    pub fn push_outbox(&self, message: &OutboxMessage) -> Result<(), StateError> {
        let txn = self.db.begin_write()?;
        push_outbox(
            &mut txn.open_table(META)?,
            &mut txn.open_table(OUTBOX)?,
            message,
        )?;
        txn.commit()?;
        Ok(())
    }

    /// Up to `limit` outbox messages, oldest first, with their keys.
    pub fn outbox_head(&self, limit: usize) -> Result<Vec<(u64, OutboxMessage)>, StateError> {
        let txn = self.db.begin_read()?;
        let outbox = txn.open_table(OUTBOX)?;
        let mut messages = Vec::new();
        for entry in outbox.iter()?.take(limit) {
            let (key, value) = entry?;
            messages.push((key.value(), decode("outbox message", value.value())?));
        }
        Ok(messages)
    }

    /// Removes an acknowledged outbox message.
    pub fn outbox_remove(&self, key: u64) -> Result<(), StateError> {
        self.outbox_remove_many(&[key])
    }

    /// Removes several acknowledged outbox messages in one transaction.
    pub fn outbox_remove_many(&self, keys: &[u64]) -> Result<(), StateError> {
        let txn = self.db.begin_write()?;
        {
            let mut outbox = txn.open_table(OUTBOX)?;
            let mut removed_bytes = 0i64;
            for key in keys {
                if let Some(value) = outbox.remove(*key)? {
                    removed_bytes += value.value().len() as i64;
                }
            }
            add_outbox_bytes(&mut txn.open_table(META)?, -removed_bytes)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Bytes waiting in the outbox.
    pub fn outbox_bytes(&self) -> Result<u64, StateError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta
            .get(OUTBOX_BYTES_KEY)?
            .map(|value| value.value())
            .unwrap_or(0))
    }

    /// Number of messages waiting in the outbox.
    pub fn outbox_depth(&self) -> Result<u64, StateError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(OUTBOX)?.len()?)
    }
}

/// Records the command's id as seen, with its prune time; false when it was seen before.
fn record_seen(txn: &redb::WriteTransaction, queued: &QueuedCommand) -> Result<bool, StateError> {
    let mut seen = txn.open_table(SEEN)?;
    let command_id = &*queued.command.command_id.to_string();
    if seen.get(command_id)?.is_some() {
        return Ok(false);
    }
    seen.insert(command_id, queued.stream_seq)?;
    let prune_ms = millis(seen_prune_time(&queued.command, queued.received_at));
    txn.open_table(SEEN_BY_PRUNE_TIME)?
        .insert((prune_ms, command_id), ())?;
    Ok(true)
}

/// When the refusal window that started last ends; `None` before the first refusal.
fn window_end(
    meta: &impl ReadableTable<&'static str, u64>,
    limit: RefusalLimit,
) -> Result<Option<Timestamp>, StateError> {
    let Some(started_ms) = meta.get(REFUSALS_WINDOW_KEY)?.map(|value| value.value()) else {
        return Ok(None);
    };
    let started = Timestamp::from_millisecond(i64::try_from(started_ms).unwrap_or(i64::MAX))
        .unwrap_or(Timestamp::UNIX_EPOCH);
    Ok(Some(
        started.saturating_add(limit.window).unwrap_or(started),
    ))
}

/// Writes the summary of the refusals counted since the last one, if any, and resets the
/// count; returns whether it wrote one.
fn push_summary(
    meta: &mut redb::Table<&str, u64>,
    outbox: &mut redb::Table<u64, &[u8]>,
    summary: impl FnOnce(u64, u64) -> OutboxMessage,
) -> Result<bool, StateError> {
    let n_suppressed = get_meta(meta, REFUSALS_SUPPRESSED_KEY)?;
    if n_suppressed == 0 {
        return Ok(false);
    }
    let last_seq = get_meta(meta, REFUSALS_LAST_SEQ_KEY)?;
    push_outbox(meta, outbox, &summary(n_suppressed, last_seq))?;
    meta.insert(REFUSALS_SUPPRESSED_KEY, 0)?;
    Ok(true)
}

fn get_meta(meta: &impl ReadableTable<&'static str, u64>, key: &str) -> Result<u64, StateError> {
    Ok(meta.get(key)?.map(|value| value.value()).unwrap_or(0))
}

/// Unix milliseconds, clamped at zero.
fn millis(at: Timestamp) -> u64 {
    u64::try_from(at.as_millisecond()).unwrap_or(0)
}

fn advance(meta: &mut redb::Table<&str, u64>, seq: u64) -> Result<(), StateError> {
    let current = meta
        .get(CURSOR_KEY)?
        .map(|value| value.value())
        .unwrap_or(0);
    if seq > current {
        meta.insert(CURSOR_KEY, seq)?;
    }
    Ok(())
}

fn push_outbox(
    meta: &mut redb::Table<&str, u64>,
    outbox: &mut redb::Table<u64, &[u8]>,
    message: &OutboxMessage,
) -> Result<(), StateError> {
    let key = meta
        .get(OUTBOX_NEXT_KEY)?
        .map(|value| value.value())
        .unwrap_or(1);
    meta.insert(OUTBOX_NEXT_KEY, key + 1)?;
    let encoded = encode(message)?;
    outbox.insert(key, encoded.as_slice())?;
    add_outbox_bytes(meta, encoded.len() as i64)
}

/// Keeps the running total of outbox bytes, so the bound is checked without a scan.
fn add_outbox_bytes(meta: &mut redb::Table<&str, u64>, delta: i64) -> Result<(), StateError> {
    let current = meta
        .get(OUTBOX_BYTES_KEY)?
        .map(|value| value.value())
        .unwrap_or(0);
    meta.insert(OUTBOX_BYTES_KEY, current.saturating_add_signed(delta))?;
    Ok(())
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StateError> {
    serde_json::to_vec(value).map_err(|err| StateError::Corrupt {
        what: "encode",
        detail: err.to_string(),
    })
}

fn decode<T: for<'de> Deserialize<'de>>(what: &'static str, bytes: &[u8]) -> Result<T, StateError> {
    serde_json::from_slice(bytes).map_err(|err| StateError::Corrupt {
        what,
        detail: err.to_string(),
    })
}

/// A cloneable async handle: runs state calls on the blocking pool, because every write
/// fsyncs and must not stall the runtime's worker threads.
#[derive(Debug, Clone)]
pub struct StateHandle {
    state: Arc<AgentState>,
}

impl StateHandle {
    /// Wraps an opened state database.
    pub fn new(state: AgentState) -> StateHandle {
        StateHandle {
            state: Arc::new(state),
        }
    }

    /// Runs `call` against the state on the blocking pool.
    pub async fn call<T, F>(&self, call: F) -> Result<T, StateError>
    where
        T: Send + 'static,
        F: FnOnce(&AgentState) -> Result<T, StateError> + Send + 'static,
    {
        let state = Arc::clone(&self.state);
        tokio::task::spawn_blocking(move || call(&state))
            .await
            .map_err(|err| StateError::Database(format!("state task failed: {err}")))?
    }

    /// Direct access for synchronous start-up code.
    pub fn blocking(&self) -> &AgentState {
        &self.state
    }
}

#[cfg(test)]
pub(crate) mod tests;
