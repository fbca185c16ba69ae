//! Property tests of the replica protocol against a model, with a deliberately broken variant
//! that the same property must catch.
//!
//! A simulated broker (an append-only log with head eviction) feeds the real planning and
//! apply functions of `state.rs` through a simulated watch that behaves like `watch.rs`:
//! resume from the persisted cursor, expiry and overrun detection against the first retained
//! sequence, and replays after a "reconnect". Random schedules interleave writes, deliveries,
//! crashes in the middle of a commit, clean restarts, replays, evictions and transient store
//! failures. Properties:
//! 1. With no eviction, the store at rest always equals the log replayed up to its cursor:
//!    data never ahead of or behind the cursor.
//! 2. Memory never holds what the store does not.
//! 3. A key's applied revision never decreases while the key is present.
//! 4. After the schedule, a clean catch-up converges on the broker's retained state (see
//!    `check_converged` for the one documented exception, keys evicted without a marker).
//!
//! The broken variant persists the cursor in its own commit before the data. A crash between
//! the two leaves a cursor that covers updates the store never received; property 1 catches it.

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use super::state::{PlannedCommit, ReplicaState};
use crate::entry::{Entry, Operation};
use crate::selection::Selection;
use crate::store::{Commit, LocalStore, MemoryStore, StoreMeta, StoredEntry};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CommitProtocol {
    /// Data and cursor in one atomic commit, as `run.rs` does.
    Atomic,
    /// Deliberately broken: cursor first, data in a second commit.
    CursorBeforeApply,
}

#[derive(Debug, Clone)]
enum Step {
    Write { key_idx: u8, delete: bool },
    Deliver { max_entries: usize },
    CrashDuringNextCommit { writes_that_land: usize },
    Restart,
    Replay { back: u64 },
    Evict { count: u64 },
    FailNextCommitOnce,
}

fn step(allow_eviction: bool) -> impl Strategy<Value = Step> {
    let evict_weight = if allow_eviction { 1 } else { 0 };
    prop_oneof![
        6 => (0u8..6, prop::bool::weighted(0.25)).prop_map(|(key_idx, delete)| Step::Write { key_idx, delete }),
        4 => (1usize..5).prop_map(|max_entries| Step::Deliver { max_entries }),
        1 => (0usize..2).prop_map(|writes_that_land| Step::CrashDuringNextCommit { writes_that_land }),
        1 => Just(Step::Restart),
        1 => (1u64..6).prop_map(|back| Step::Replay { back }),
        evict_weight => (1u64..4).prop_map(|count| Step::Evict { count }),
        1 => Just(Step::FailNextCommitOnce),
    ]
}

/// The broker: every write ever made, and the first sequence still retained.
#[derive(Debug, Default)]
struct SimBroker {
    log: Vec<Entry>,
    first_sequence: u64,
}

impl SimBroker {
    fn write(&mut self, key_idx: u8, delete: bool) {
        let revision = self.log.len() as u64 + 1;
        let (operation, value) = match delete {
            true => (Operation::Delete, Bytes::new()),
            false => (Operation::Put, Bytes::from(format!("v{revision}"))),
        };
        self.log.push(Entry {
            key: format!("k{key_idx}"),
            value,
            revision,
            operation,
        });
        self.first_sequence = self.first_sequence.max(1);
    }

    fn last_sequence(&self) -> u64 {
        self.log.len() as u64
    }

    fn retained(&self) -> impl Iterator<Item = &Entry> {
        self.log
            .iter()
            .filter(|entry| entry.revision >= self.first_sequence)
    }

    fn evict(&mut self, count: u64) {
        self.first_sequence = (self.first_sequence.max(1) + count).min(self.last_sequence() + 1);
    }

    fn snapshot(&self) -> Vec<Entry> {
        let mut latest: BTreeMap<&str, &Entry> = BTreeMap::new();
        for entry in self.retained() {
            latest.insert(&entry.key, entry);
        }
        let mut snapshot: Vec<Entry> = latest.into_values().cloned().collect();
        snapshot.sort_by_key(|entry| entry.revision);
        snapshot
    }
}

/// Live keys of a replayed sequence of entries.
fn live_view<'e>(entries: impl Iterator<Item = &'e Entry>) -> BTreeMap<String, (u64, Bytes)> {
    let mut view = BTreeMap::new();
    for entry in entries {
        match entry.operation {
            Operation::Put => view.insert(entry.key.clone(), (entry.revision, entry.value.clone())),
            _ => view.remove(&entry.key),
        };
    }
    view
}

fn stored_live_view(entries: &BTreeMap<String, StoredEntry>) -> BTreeMap<String, (u64, Bytes)> {
    entries
        .iter()
        .filter(|(_, entry)| !entry.is_tombstone())
        .map(|(key, entry)| (key.clone(), (entry.revision, entry.value.clone())))
        .collect()
}

/// The replica process: state in memory, the store, and the watch position.
struct SimReplica {
    protocol: CommitProtocol,
    store: MemoryStore,
    state: ReplicaState,
    position: u64,
    needs_resync: bool,
    crash_during_next_commit: Option<usize>,
    fail_next_commit: bool,
    highest_revision_seen: BTreeMap<String, u64>,
}

impl SimReplica {
    fn boot(protocol: CommitProtocol, store: MemoryStore) -> SimReplica {
        let loaded = store.clone().load().expect("memory store loads");
        let state = ReplicaState::from_loaded(loaded);
        SimReplica {
            protocol,
            position: state.cursor().unwrap_or(0),
            needs_resync: state.cursor().is_none(),
            state,
            store,
            crash_during_next_commit: None,
            fail_next_commit: false,
            highest_revision_seen: BTreeMap::new(),
        }
    }

    fn restart(&mut self) {
        let seen = std::mem::take(&mut self.highest_revision_seen);
        *self = SimReplica::boot(self.protocol, self.store.clone());
        self.highest_revision_seen = seen;
    }

    /// One delivery round, as a session of `run.rs` would do it. Returns false on a crash.
    fn deliver(&mut self, broker: &SimBroker, max_entries: usize) -> bool {
        let resumable = self.position + 1 >= broker.first_sequence.max(1)
            && self.position <= broker.last_sequence();
        if self.needs_resync || !resumable {
            return self.resync(broker);
        }
        let batch: Vec<Entry> = broker
            .retained()
            .filter(|entry| entry.revision > self.position)
            .take(max_entries)
            .cloned()
            .collect();
        let Some(batch_cursor) = batch.last().map(|entry| entry.revision) else {
            return true;
        };
        // The live overrun guard: a jump over the next expected sequence with the floor past it.
        if batch[0].revision > self.position + 1 && broker.first_sequence > self.position + 1 {
            return self.resync(broker);
        }
        let planned = self
            .state
            .plan_live(batch, batch_cursor, StoreMeta::default());
        self.position = batch_cursor;
        self.commit_and_apply(planned)
    }

    fn resync(&mut self, broker: &SimBroker) -> bool {
        let cursor = broker.last_sequence();
        let planned = self.state.plan_resync(
            broker.snapshot(),
            cursor,
            &Selection::WholeBucket,
            StoreMeta::default(),
        );
        self.position = cursor;
        let survived = self.commit_and_apply(planned);
        self.needs_resync = !survived;
        survived
    }

    fn commit_and_apply(&mut self, planned: PlannedCommit) -> bool {
        if std::mem::take(&mut self.fail_next_commit) {
            // The store refused the commit; the loop re-queues the same planned commit.
            self.store.fail_next_commits(1);
            assert!(self.store.commit(&planned.commit).is_err());
        }
        let writes = store_writes(&planned.commit, self.protocol);
        if let Some(landing) = self.crash_during_next_commit.take() {
            for write in writes.iter().take(landing) {
                self.store.commit(write).expect("memory store commit");
            }
            self.restart();
            return false;
        }
        for write in &writes {
            self.store.commit(write).expect("memory store commit");
        }
        self.state.apply(&planned);
        true
    }

    fn check_never_regressed(&mut self) -> Result<(), TestCaseError> {
        for (key, entry) in self.state.entries() {
            let highest = self.highest_revision_seen.entry(key.clone()).or_insert(0);
            prop_assert!(
                entry.revision >= *highest,
                "{key} went from revision {highest} back to {}",
                entry.revision
            );
            *highest = entry.revision;
        }
        Ok(())
    }
}

fn store_writes(commit: &Commit, protocol: CommitProtocol) -> Vec<Commit> {
    match protocol {
        CommitProtocol::Atomic => vec![commit.clone()],
        CommitProtocol::CursorBeforeApply => vec![
            Commit {
                changes: Vec::new(),
                meta: commit.meta.clone(),
            },
            Commit {
                changes: commit.changes.clone(),
                meta: StoreMeta::default(),
            },
        ],
    }
}

fn run_schedule(protocol: CommitProtocol, steps: &[Step]) -> Result<(), TestCaseError> {
    let mut broker = SimBroker::default();
    let mut replica = SimReplica::boot(protocol, MemoryStore::new());
    for step in steps {
        match step {
            Step::Write { key_idx, delete } => broker.write(*key_idx, *delete),
            Step::Deliver { max_entries } => {
                replica.deliver(&broker, *max_entries);
            }
            Step::CrashDuringNextCommit { writes_that_land } => {
                replica.crash_during_next_commit = Some(*writes_that_land)
            }
            Step::Restart => replica.restart(),
            Step::Replay { back } => replica.position = replica.position.saturating_sub(*back),
            Step::Evict { count } => broker.evict(*count),
            Step::FailNextCommitOnce => replica.fail_next_commit = true,
        }
        check_at_rest(&broker, &replica)?;
        replica.check_never_regressed()?;
    }
    replica.crash_during_next_commit = None;
    replica.restart();
    while replica.position < broker.last_sequence() || replica.needs_resync {
        replica.deliver(&broker, 3);
    }
    check_converged(&broker, &replica)
}

/// Property 4. A key the broker retains must match exactly. A key of which the broker retains
/// nothing was evicted without a marker (as `max_age` does); no watch can see that, so the copy
/// may keep it, but only with the last value the full history gave it, never an older one.
fn check_converged(broker: &SimBroker, replica: &SimReplica) -> Result<(), TestCaseError> {
    let converged = stored_live_view(&replica.state.entries());
    let retained = live_view(broker.retained());
    let full_history = live_view(broker.log.iter());
    let retained_keys: std::collections::BTreeSet<&str> =
        broker.retained().map(|entry| entry.key.as_str()).collect();
    for (key, expected) in &retained {
        prop_assert_eq!(
            converged.get(key),
            Some(expected),
            "no convergence on retained key {}",
            key
        );
    }
    for (key, kept) in &converged {
        if retained_keys.contains(key.as_str()) {
            prop_assert!(
                retained.contains_key(key),
                "{} is deleted on the broker but kept",
                key
            );
        } else {
            prop_assert_eq!(
                full_history.get(key),
                Some(kept),
                "{} kept with a value the history never ended on",
                key
            );
        }
    }
    Ok(())
}

/// Properties 1 and 2.
fn check_at_rest(broker: &SimBroker, replica: &SimReplica) -> Result<(), TestCaseError> {
    let stored = replica.store.snapshot();
    let memory = stored_live_view(&replica.state.entries());
    prop_assert_eq!(
        &memory,
        &stored_live_view(&stored.entries),
        "memory differs from the store"
    );
    let never_evicted = broker.first_sequence <= 1;
    if let (true, Some(cursor)) = (never_evicted, stored.meta.cursor) {
        let expected = live_view(
            broker
                .log
                .iter()
                .take_while(|entry| entry.revision <= cursor),
        );
        prop_assert_eq!(
            stored_live_view(&stored.entries),
            expected,
            "store inconsistent with its cursor {}",
            cursor
        );
    }
    Ok(())
}

fn schedules(allow_eviction: bool) -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(step(allow_eviction), 1..60)
}

proptest! {
    #![proptest_config(Config { cases: 400, ..Config::default() })]

    #[test]
    fn atomic_protocol_keeps_store_consistent_with_cursor(steps in schedules(false)) {
        run_schedule(CommitProtocol::Atomic, &steps)?;
    }

    #[test]
    fn atomic_protocol_converges_under_retention_and_replays(steps in schedules(true)) {
        run_schedule(CommitProtocol::Atomic, &steps)?;
    }
}

#[test]
fn property_catches_cursor_persisted_before_apply() {
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&schedules(false), |steps| {
        run_schedule(CommitProtocol::CursorBeforeApply, &steps)
    });
    let Err(failure) = outcome else {
        panic!("the property test did not catch the broken protocol");
    };
    let message = failure.to_string();
    assert!(
        message.contains("inconsistent with its cursor"),
        "caught, but for another reason: {message}"
    );
}
