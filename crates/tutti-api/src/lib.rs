//! The HTTP API's bodies as types, shared by the server that sends them and the clients
//! that read them.
//!
//! Every type here derives `Serialize`, `Deserialize` and `utoipa::ToSchema`, so the
//! OpenAPI document describes exactly what is sent and a client fails loudly on a renamed
//! field instead of printing an empty column. The store's read queries return these types
//! directly (one definition, no copying between a row type and a response type); the
//! store depends on this crate, never the reverse, so a client links no SQL.
//!
//! Types with a little logic keep it here when it is pure (the target state machine in
//! [`state`], page bounds in [`page`]); how they become SQL stays in `tutti-store`.

pub mod accounts;
pub mod agents;
pub mod audit;
pub mod errors;
pub mod fleet;
pub mod inventory;
pub mod jobs;
pub mod keys;
pub mod page;
pub mod rollouts;
pub mod runs;
pub mod schedules;
pub mod state;
pub mod tokens;

pub use page::{MAX_PAGE_LIMIT, Page, Paged, SortDir};
pub use state::{RunCounts, RunStatus, TargetState};
