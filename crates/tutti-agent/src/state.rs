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

use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use tutti_proto::command::Command;
use tutti_proto::{CommandId, RunId};

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const QUEUE: TableDefinition<u64, &[u8]> = TableDefinition::new("queue");
const SEEN: TableDefinition<&str, u64> = TableDefinition::new("seen_commands");
const RUNNING: TableDefinition<&str, &[u8]> = TableDefinition::new("running");
const KILLED_RUNS: TableDefinition<&str, u64> = TableDefinition::new("killed_runs");
const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");

const CURSOR_KEY: &str = "cursor";
const OUTBOX_NEXT_KEY: &str = "outbox_next";
const OUTBOX_BYTES_KEY: &str = "outbox_bytes";

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
            let mut seen = txn.open_table(SEEN)?;
            let mut outbox = txn.open_table(OUTBOX)?;
            advance(&mut meta, queued.stream_seq)?;
            let command_id = &*queued.command.command_id.to_string();
            if seen.get(command_id)?.is_some() {
                outcome = EnqueueOutcome::Duplicate;
            } else {
                seen.insert(command_id, queued.stream_seq)?;
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
        let millis = u64::try_from(at.as_millisecond()).unwrap_or(0);
        txn.open_table(KILLED_RUNS)?
            .insert(&*run_id.to_string(), millis)?;
        txn.commit()?;
        Ok(())
    }

    /// Takes a kill command in: records the kill, advances the cursor past it, and answers
    /// every queued copy of the run as skipped, in one transaction. Returns false when the
    /// kill command was seen before. A running copy is the caller's to stop.
    pub fn take_kill(
        &self,
        stream_seq: u64,
        command_id: &CommandId,
        run_id: &RunId,
        skipped: impl Fn(&QueuedCommand) -> OutboxMessage,
    ) -> Result<bool, StateError> {
        let txn = self.db.begin_write()?;
        let is_new;
        {
            let mut meta = txn.open_table(META)?;
            let mut seen = txn.open_table(SEEN)?;
            advance(&mut meta, stream_seq)?;
            is_new = seen.get(&*command_id.to_string())?.is_none();
            if is_new {
                seen.insert(&*command_id.to_string(), stream_seq)?;
                let millis = u64::try_from(Timestamp::now().as_millisecond()).unwrap_or(0);
                txn.open_table(KILLED_RUNS)?
                    .insert(&*run_id.to_string(), millis)?;
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
