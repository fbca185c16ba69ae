//! tutti's SQL projections: the only crate with SQL.
//!
//! The server turns JetStream streams into tables here (results, events, inventory,
//! audit, heartbeats), stores what the run engine decides (runs, per-target states,
//! kills, expiry), keeps operator accounts with their sessions and API tokens, and reads
//! everything the API and dashboard show. Callers hold a [`Store`], an enum over backends
//! (SQLite now, Postgres later), and see only typed values: wire types from `tutti-proto`
//! and the types in [`model`]. Errors are [`StoreError`] with the variants callers branch
//! on.
//!
//! Invariants kept here and pinned by tests: every `apply_*` batch is one transaction and
//! idempotent under redelivery; a target moves only forward through
//! [`TargetState::can_move`]; every timestamp is stored as unix milliseconds (`time.rs`
//! explains why); a shipped migration is never edited. The crate README documents each
//! table.

pub mod baseline;
mod error;
pub mod model;
mod page;
mod sqlite;
mod state;
mod store;
mod time;

pub use error::{BackendError, StoreError, StoreResult};
pub use model::accounts::{
    Account, AccountCredentials, AccountUpdate, ApiToken, NewAccount, NewApiToken, NewSession,
    SessionInfo, TokenAuth,
};
pub use model::agents::{Agent, AgentQuery, AgentSort, Group, HeartbeatStats, Liveness, NewAgent};
pub use model::audit::{AuditEntry, AuditQuery};
pub use model::coverage::{AgentCoverage, CoverageQuery};
pub use model::identities::{BrokerIdentity, KeyTrust};
pub use model::ingest::{Anomaly, AnomalyKind, ApplyOutcome, Sequenced};
pub use model::inventory::{
    AgentInventory, ChangeKind, InventoryChange, ItemType, PackageHit, PackageQuery,
};
pub use model::jobs::{Job, JobDraft, JobVersion, PutJobOutcome};
pub use model::overview::FleetOverview;
pub use model::rollouts::{
    HeldTargets, NewRollout, PendingRelease, Rollout, RolloutChange, RolloutState, WaveCounts,
};
pub use model::runs::{
    CommandPublished, Covers, NewRun, Run, RunDetail, RunQuery, StoredResult, Target, TargetQuery,
};
pub use model::schedules::{PutScheduleOutcome, Schedule, ScheduleDraft, ScheduleFire};
pub use model::tokens::{EnrollmentToken, NewEnrollmentToken};
pub use page::{MAX_PAGE_LIMIT, Page, Paged, SortDir};
pub use sqlite::SqliteStore;
pub use state::{RunCounts, RunStatus, TargetState};
pub use store::Store;
