//! `ReplicaState` (the in-memory copy callers read) and the pure protocol that turns watch
//! batches into commits: never-regress filtering, resync planning, and applying a commit once
//! the store has made it durable.
//!
//! Nothing here does I/O, which is what lets `protocol_tests` drive the same functions through
//! random crash, replay and retention schedules, and `benches/replica.rs` measure the
//! in-memory apply path alone.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::entries::KeyedEntries;
use crate::entry::Entry;
use crate::selection::Selection;
use crate::store::{Commit, LoadedState, StoreChange, StoreMeta, StoredEntry};

/// What the replica loop is doing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ReplicaPhase {
    /// Serving the local copy only; no sync has completed since start (offline boot).
    #[default]
    Offline,
    /// A watch is being (re)established or a resync is running.
    Syncing,
    /// Caught up and following live updates.
    Live,
    /// Stopped after an unrecoverable error (e.g. the local store kept failing).
    Failed(String),
    /// Shut down on request.
    Stopped,
}

/// Whether a batch continued the stream or replaced the copy after an expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    /// Updates in stream order after the cursor.
    Live,
    /// A resynchronisation: keys that vanished are removed first, then fresh values follow.
    Resync,
}

/// A batch the replica has made durable and applied, as handed to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedBatch {
    /// The applied changes, in order.
    pub changes: Vec<StoreChange>,
    /// The cursor persisted with them.
    pub cursor: u64,
    /// Live or resync.
    pub kind: BatchKind,
    /// Deliveries ignored because the copy already had a newer revision of their key.
    pub ignored_stale: usize,
}

/// The replica's in-memory copy: every key with its latest applied revision (tombstones kept
/// for never-regress, hidden from reads), the cursor, and the loop's phase.
#[derive(Debug, Clone, Default)]
pub struct ReplicaState {
    entries: KeyedEntries,
    cursor: Option<u64>,
    max_revision: u64,
    live_keys: usize,
    phase: ReplicaPhase,
    last_sync: Option<SystemTime>,
    stale_ignored: u64,
}

/// A commit planned from a batch, not yet durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedCommit {
    pub(crate) commit: Commit,
    pub(crate) kind: BatchKind,
    pub(crate) ignored_stale: usize,
}

impl ReplicaState {
    /// The copy as loaded from a store.
    pub fn from_loaded(loaded: LoadedState) -> ReplicaState {
        let max_revision = loaded
            .entries
            .values()
            .map(|entry| entry.revision)
            .max()
            .unwrap_or(0);
        let live_keys = loaded
            .entries
            .values()
            .filter(|entry| !entry.is_tombstone())
            .count();
        ReplicaState {
            entries: KeyedEntries::from_loaded(loaded.entries, max_revision),
            cursor: loaded.meta.cursor,
            max_revision,
            live_keys,
            phase: ReplicaPhase::Offline,
            last_sync: loaded.meta.last_sync,
            stale_ignored: 0,
        }
    }

    /// The live value of `key`.
    pub fn get(&self, key: &str) -> Option<&Bytes> {
        self.entries
            .get(key)
            .filter(|entry| !entry.is_tombstone())
            .map(|entry| &entry.value)
    }

    /// The latest applied revision of `key`, tombstones included.
    pub fn entry(&self, key: &str) -> Option<&StoredEntry> {
        self.entries.get(key)
    }

    /// Live keys and values starting with `prefix`, in key order.
    pub fn scan<'s>(&'s self, prefix: &'s str) -> impl Iterator<Item = (&'s str, &'s Bytes)> + 's {
        self.entries
            .with_prefix(prefix)
            .filter(|(_, entry)| !entry.is_tombstone())
            .map(|(key, entry)| (key, &entry.value))
    }

    /// Number of live keys.
    pub fn len(&self) -> usize {
        self.live_keys
    }

    /// Whether there is no live key.
    pub fn is_empty(&self) -> bool {
        self.live_keys == 0
    }

    /// The persisted cursor; `None` before the first sync.
    pub fn cursor(&self) -> Option<u64> {
        self.cursor
    }

    /// What the loop is doing.
    pub fn phase(&self) -> &ReplicaPhase {
        &self.phase
    }

    /// When the copy was last confirmed in sync with the broker (persisted across restarts).
    pub fn last_sync(&self) -> Option<SystemTime> {
        self.last_sync
    }

    /// Time since the last confirmed sync; `None` if the copy was never synced.
    pub fn staleness(&self) -> Option<Duration> {
        self.last_sync
            .map(|last| SystemTime::now().duration_since(last).unwrap_or_default())
    }

    /// Deliveries ignored since start because the copy already had a newer revision of
    /// their key (replays after a reconnect or a lagging cursor).
    pub fn stale_deliveries_ignored(&self) -> u64 {
        self.stale_ignored
    }

    /// Every key with its applied revision, tombstones included, in key order.
    #[cfg(test)]
    pub(crate) fn entries(&self) -> std::collections::BTreeMap<String, StoredEntry> {
        self.entries.to_btree_map()
    }

    pub(crate) fn set_phase(&mut self, phase: ReplicaPhase) {
        self.phase = phase;
    }

    pub(crate) fn confirm_sync(&mut self, at: SystemTime) {
        self.last_sync = Some(at);
    }

    /// Plans a live batch: entries at or below the revision already applied for their key are
    /// dropped (never regress), the rest are kept in stream order.
    pub(crate) fn plan_live(
        &self,
        entries: Vec<Entry>,
        batch_cursor: u64,
        meta: StoreMeta,
    ) -> PlannedCommit {
        // Every applied revision is at most `max(cursor, max_revision)`, so anything above it
        // is new for its key without a lookup; that keeps the common path a comparison.
        let mut newest_applied = self.cursor.unwrap_or(0).max(self.max_revision);
        let mut changes: Vec<StoreChange> = Vec::with_capacity(entries.len());
        let mut ignored_stale = 0;
        for entry in entries {
            let fresh =
                entry.revision > newest_applied || self.is_newer_than_applied(&entry, &changes);
            if !fresh {
                ignored_stale += 1;
                continue;
            }
            newest_applied = newest_applied.max(entry.revision);
            changes.push(upsert(entry));
        }
        let cursor = batch_cursor.max(self.cursor.unwrap_or(0));
        let commit = Commit {
            changes,
            meta: StoreMeta {
                cursor: Some(cursor),
                ..meta
            },
        };
        PlannedCommit {
            commit,
            kind: BatchKind::Live,
            ignored_stale,
        }
    }

    /// Plans a resync from a complete snapshot: the snapshot is the broker's current state,
    /// so it replaces the copy. Keys absent from it are removed first, then changed values are
    /// written.
    pub(crate) fn plan_resync(
        &self,
        snapshot: Vec<Entry>,
        snapshot_cursor: u64,
        selection: &Selection,
        meta: StoreMeta,
    ) -> PlannedCommit {
        let latest = latest_per_key(snapshot, selection);
        let mut changes: Vec<StoreChange> = self
            .entries
            .keys()
            .filter(|key| !latest.contains_key(*key))
            .map(|key| StoreChange::Remove {
                key: key.to_owned(),
            })
            .collect();
        let mut fresh: Vec<Entry> = latest
            .into_values()
            .filter(|entry| self.entries.get(&entry.key) != Some(&stored(entry)))
            .collect();
        fresh.sort_by_key(|entry| entry.revision);
        for entry in fresh {
            self.warn_if_older(&entry);
            changes.push(upsert(entry));
        }
        let commit = Commit {
            changes,
            meta: StoreMeta {
                cursor: Some(snapshot_cursor),
                ..meta
            },
        };
        PlannedCommit {
            commit,
            kind: BatchKind::Resync,
            ignored_stale: 0,
        }
    }

    /// Applies a commit the store has made durable.
    pub(crate) fn apply(&mut self, planned: &PlannedCommit) {
        for change in &planned.commit.changes {
            self.apply_change(change);
        }
        if planned.kind == BatchKind::Resync {
            // A resync may lower revisions (a recreated stream), so recompute instead of max.
            self.max_revision = self
                .entries
                .values()
                .map(|entry| entry.revision)
                .max()
                .unwrap_or(0);
        }
        self.stale_ignored += planned.ignored_stale as u64;
        if let Some(cursor) = planned.commit.meta.cursor {
            self.cursor = Some(cursor);
        }
        if let Some(last_sync) = planned.commit.meta.last_sync {
            self.last_sync = Some(last_sync);
        }
    }

    fn apply_change(&mut self, change: &StoreChange) {
        match change {
            StoreChange::Upsert { key, entry } => {
                self.max_revision = self.max_revision.max(entry.revision);
                let replaced = self.entries.upsert(key, entry.clone());
                let was_live = replaced.is_some_and(|replaced| !replaced.is_tombstone());
                self.count_live(was_live, !entry.is_tombstone());
            }
            StoreChange::Remove { key } => {
                if let Some(removed) = self.entries.remove(key) {
                    self.count_live(!removed.is_tombstone(), false);
                }
            }
        }
    }

    fn count_live(&mut self, was_live: bool, is_live: bool) {
        match (was_live, is_live) {
            (false, true) => self.live_keys += 1,
            (true, false) => self.live_keys -= 1,
            _ => {}
        }
    }

    fn is_newer_than_applied(&self, entry: &Entry, planned: &[StoreChange]) -> bool {
        let planned_revision = planned.iter().rev().find_map(|change| match change {
            StoreChange::Upsert {
                key,
                entry: planned,
            } if *key == entry.key => Some(planned.revision),
            _ => None,
        });
        let applied =
            planned_revision.or_else(|| self.entries.get(&entry.key).map(|stored| stored.revision));
        applied.is_none_or(|applied| entry.revision > applied)
    }

    fn warn_if_older(&self, entry: &Entry) {
        if let Some(stored) = self
            .entries
            .get(&entry.key)
            .filter(|stored| stored.revision > entry.revision)
        {
            tracing::warn!(
                key = entry.key,
                local_revision = stored.revision,
                broker_revision = entry.revision,
                "The broker's snapshot is older than the local copy (was the bucket recreated?); taking the broker's."
            );
        }
    }
}

fn latest_per_key(snapshot: Vec<Entry>, selection: &Selection) -> HashMap<String, Entry> {
    let mut latest: HashMap<String, Entry> = HashMap::with_capacity(snapshot.len());
    for entry in snapshot
        .into_iter()
        .filter(|entry| selection.matches(&entry.key))
    {
        match latest.get(&entry.key) {
            Some(kept) if kept.revision >= entry.revision => {}
            _ => {
                latest.insert(entry.key.clone(), entry);
            }
        }
    }
    latest
}

fn stored(entry: &Entry) -> StoredEntry {
    StoredEntry {
        revision: entry.revision,
        operation: entry.operation,
        value: entry.value.clone(),
    }
}

fn upsert(entry: Entry) -> StoreChange {
    let stored = StoredEntry {
        revision: entry.revision,
        operation: entry.operation,
        value: entry.value,
    };
    StoreChange::Upsert {
        key: entry.key,
        entry: stored,
    }
}
