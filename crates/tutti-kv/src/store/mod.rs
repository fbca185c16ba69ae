//! The local store: where a replica keeps its durable copy of a bucket and its cursor.
//!
//! [`LocalStore`] is the narrow interface the replica loop needs: load everything once at
//! start, then commit batches. Every [`Commit`] carries the data changes *and* the cursor
//! that covers them, and a store must make the two durable together or not at all; that is
//! the whole cursor-after-apply contract, pinned by `tests/crash.rs` and the protocol property
//! test in `replica::protocol_tests`.
//!
//! [`RedbStore`] is the production store; [`MemoryStore`] keeps commits in memory for tests
//! and benchmarks that must not measure a disk.

mod codec;
mod memory;
mod redb_store;

use std::collections::BTreeMap;
use std::time::SystemTime;

use bytes::Bytes;

pub use memory::MemoryStore;
pub use redb_store::RedbStore;

use crate::entry::Operation;

/// What the store keeps per key: the latest applied revision, including tombstones, so that a
/// replayed older revision can be recognised after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// The stream sequence that wrote this revision.
    pub revision: u64,
    /// What the revision did.
    pub operation: Operation,
    /// The value; empty for tombstones.
    pub value: Bytes,
}

impl StoredEntry {
    /// Whether the key is absent at this revision.
    pub fn is_tombstone(&self) -> bool {
        self.operation.is_tombstone()
    }
}

/// One change to the stored copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChange {
    /// Set the key to this revision (a tombstone is an upsert too).
    Upsert {
        /// The key.
        key: String,
        /// Its new revision.
        entry: StoredEntry,
    },
    /// Forget the key entirely (it vanished from the bucket during a gap).
    Remove {
        /// The key.
        key: String,
    },
}

/// Bookkeeping stored beside the data, in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoreMeta {
    /// Every update with a stream sequence up to here is applied; `None` before the first sync.
    pub cursor: Option<u64>,
    /// Bucket and selection the copy was made for (see `Selection::fingerprint`).
    pub fingerprint: Option<String>,
    /// Wall-clock time of the last commit made while in sync with the broker.
    pub last_sync: Option<SystemTime>,
}

/// One atomic write: data changes plus the metadata that covers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// Changes in the order they must be applied.
    pub changes: Vec<StoreChange>,
    /// The metadata after this commit. A field left `None` keeps its stored value.
    pub meta: StoreMeta,
}

/// Everything a store holds, as loaded at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadedState {
    /// Every key with its latest applied revision, tombstones included.
    pub entries: BTreeMap<String, StoredEntry>,
    /// The stored metadata.
    pub meta: StoreMeta,
}

/// Why the local store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage engine or the file system failed; retrying may succeed.
    #[error("local store failed: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A record failed its checksum or could not be decoded; the copy must not be trusted.
    #[error("local store is corrupted: {0}")]
    Corrupted(String),
}

/// A durable home for a replica. Calls are blocking; the replica runs them on tokio's
/// blocking pool.
pub trait LocalStore: Send + 'static {
    /// Reads the whole stored copy, verifying every record.
    fn load(&mut self) -> Result<LoadedState, StoreError>;

    /// Applies `commit` atomically: after a crash at any point, either all of it or none of it
    /// is visible, and it is durable once this returns `Ok`.
    fn commit(&mut self, commit: &Commit) -> Result<(), StoreError>;
}

impl LoadedState {
    /// Applies a commit in memory with the same semantics as a store (used by
    /// [`MemoryStore`] and by tests as the model).
    pub fn apply(&mut self, commit: &Commit) {
        for change in &commit.changes {
            match change {
                StoreChange::Upsert { key, entry } => {
                    self.entries.insert(key.clone(), entry.clone());
                }
                StoreChange::Remove { key } => {
                    self.entries.remove(key);
                }
            }
        }
        merge_meta(&mut self.meta, &commit.meta);
    }
}

fn merge_meta(stored: &mut StoreMeta, update: &StoreMeta) {
    if update.cursor.is_some() {
        stored.cursor = update.cursor;
    }
    if update.fingerprint.is_some() {
        stored.fingerprint.clone_from(&update.fingerprint);
    }
    if update.last_sync.is_some() {
        stored.last_sync = update.last_sync;
    }
}
