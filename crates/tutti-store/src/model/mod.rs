//! The store's own types: what callers pass in and what queries give back.
//!
//! They are backend-neutral (no SQL, no rusqlite), so a Postgres backend returns the same
//! values. Wire types from `tutti-proto` are reused wherever the stored thing is a wire
//! message (a `RunResult`, an `AuditRecord`); the types here add what only the server
//! knows: stream sequences, derived states, enrollment, accounts and pagination.

pub mod accounts;
pub mod agents;
pub mod audit;
pub mod coverage;
pub mod identities;
pub mod ingest;
pub mod inventory;
pub mod jobs;
pub mod overview;
pub mod rollouts;
pub mod runs;
pub mod schedules;
pub mod tokens;
