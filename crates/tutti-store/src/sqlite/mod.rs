//! The SQLite backend: one writer connection, a few reader connections, and the blocking
//! SQL of every operation in the submodules.
//!
//! SQLite allows one writer at a time, so all writes go through one connection behind a
//! mutex, each as one `BEGIN IMMEDIATE` transaction; readers use their own connections and
//! never wait for the writer (WAL mode). The async methods run the blocking work on
//! `tokio::task::spawn_blocking` so the server's runtime never blocks on disk. The
//! submodules hold plain functions over a connection or transaction; `api.rs` wraps them.

mod accounts;
mod agents;
mod anomalies;
mod api;
mod api_tokens;
mod audit;
mod coverage;
mod events;
mod identities;
mod inventory;
mod jobs;
pub(crate) mod migrate;
mod overview;
mod results;
mod rollouts;
mod runs;
mod schedules;
mod sessions;
mod sql;
mod tokens;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::error::{StoreError, StoreResult};

/// How long a connection waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Reader connections kept open between calls; more are opened under load and closed after.
const IDLE_READERS: usize = 4;

/// A SQLite database file in WAL mode.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub async fn open(path: impl Into<PathBuf>) -> StoreResult<Self> {
        let path = path.into();
        blocking(move || SqliteStore::open_blocking(&path)).await
    }

    /// [`SqliteStore::open`] for callers outside a runtime (tools, tests).
    pub fn open_blocking(path: &Path) -> StoreResult<Self> {
        let mut writer = connect(path)?;
        let mode: String =
            writer.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::other(format!(
                "{} cannot use WAL mode (journal mode is {mode})",
                path.display()
            )));
        }
        migrate::migrate(&mut writer)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `work` in one write transaction, committed when it returns `Ok`.
    async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> StoreResult<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            // A panic inside `work` drops its transaction, which rolls back, so the
            // connection behind a poisoned lock is still in a clean state.
            let mut writer = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = work(&tx)?;
            tx.commit()?;
            Ok(value)
        })
        .await
    }

    /// Runs `work` on a reader connection inside one read transaction, so a count and
    /// its page see the same snapshot.
    async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> StoreResult<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let mut reader = inner.take_reader()?;
            let value = {
                let tx = reader.transaction()?;
                let value = work(&tx)?;
                tx.commit()?;
                value
            };
            inner.give_back(reader);
            Ok(value)
        })
        .await
    }
}

impl Inner {
    fn take_reader(&self) -> StoreResult<Connection> {
        let idle = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match idle {
            Some(reader) => Ok(reader),
            None => {
                let reader = connect(&self.path)?;
                reader.pragma_update(None, "query_only", "ON")?;
                Ok(reader)
            }
        }
    }

    fn give_back(&self, reader: Connection) {
        let mut readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if readers.len() < IDLE_READERS {
            readers.push(reader);
        }
    }
}

/// Opens a connection with the settings every connection needs.
fn connect(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path)
        .map_err(|err| StoreError::other_with(format!("cannot open {}", path.display()), err))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // NORMAL is durable against process crashes in WAL mode (the crash test pins this);
    // a power loss may drop the last commits, which the projectors redeliver.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Runs blocking work on tokio's blocking pool.
async fn blocking<T, F>(work: F) -> StoreResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> StoreResult<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| StoreError::other_with("store task failed", err))?
}
