//! tutti-kv: restart-safe local replicas of JetStream KV buckets, and the bounded reads,
//! compare-and-set writes and gap-free watches they are built from.
//!
//! The agent uses it for its configuration, group membership, revocations and the fleet
//! freeze; the server for catalogs. It takes a ready `async_nats::jetstream::Context` from its
//! caller (connections and bucket creation belong to tutti-bus) and depends on nothing else of
//! ours.
//!
//! # Map
//! - [`Bucket`] (`bucket.rs`, `scan.rs`): `get`, `entry`, `keys`, `scan`, `put`, `create`,
//!   `update`, `delete`, `delete_if_revision`, `purge`. Every await is bounded by the request
//!   timeout; failures are a [`KvError`].
//! - [`Watch`] (`watch.rs`): state-sync or resume-from-cursor on one ordered consumer, with
//!   expiry detection at creation and the live overrun guard. The module docs say exactly
//!   which watch shapes the guard covers.
//! - [`Replica`] (`replica/`): the supervised loop callers actually use. It keeps a local
//!   copy in a [`LocalStore`], publishes it as a `tokio::sync::watch` of [`ReplicaState`],
//!   optionally hands over each [`AppliedBatch`], and reports staleness.
//! - [`RedbStore`] (`store/`): the durable local store.
//!
//! # Design decisions
//! - **Ordered consumers, never explicit-ack ones**, for scans and watches: no
//!   `max_ack_pending` stall on large buckets, and a disconnected replica costs the broker
//!   nothing. Several prefixes share one consumer through `filter_subjects` (NATS ≥ 2.10).
//! - **The cursor is a stream sequence, persisted with the data in one redb transaction**
//!   (cursor-after-apply). Memory and the caller see a batch only after it is durable.
//! - **Expiry is detected, not assumed away**: `first_sequence` is read before and after
//!   creating a resumed consumer, and a live watch checks it whenever delivered sequences jump.
//!   Detection is conservative: a false alarm costs a resync, a missed one would cost silent
//!   divergence.
//! - **A resync snapshot is authoritative** (it is the broker's current state), so it may
//!   lower a revision, e.g. after the bucket was recreated; live updates never do.
//! - **Tombstones are kept locally** with their revision, so a replayed older put cannot
//!   resurrect a deleted key. They are hidden from reads.
//! - **redb over a hand-written append log**: see `store/redb_store.rs` for the trade and the
//!   fsync policy (every commit is fsynced before it is applied).
//! - **The replica holds its selection in memory**, ordered as loaded (for boot and prefix
//!   scans) with a lazily filled hash index over updated keys for the per-update lookup
//!   (`replica/entries.rs`); it is meant for configuration and catalog buckets up to a few
//!   million keys, not for bulk data.

mod bucket;
mod consumer;
mod entry;
mod error;
mod message;
mod replica;
mod scan;
mod selection;
mod store;
mod watch;

pub use bucket::Bucket;
pub use entry::{Entry, Operation};
pub use error::KvError;
pub use replica::{
    AppliedBatch, BatchKind, Replica, ReplicaConfig, ReplicaError, ReplicaHandle, ReplicaPhase,
    ReplicaState,
};
pub use selection::{Selection, validate_key, validate_prefix};
pub use store::{
    Commit, LoadedState, LocalStore, MemoryStore, RedbStore, StoreChange, StoreError, StoreMeta,
    StoredEntry,
};
pub use watch::{BatchLimits, Watch, WatchBatch, WatchStart};

/// Internals exposed for this crate's benchmarks only; not a stable API.
#[doc(hidden)]
pub mod bench_support {
    pub use crate::replica::bench_support::InMemoryReplica;
}
