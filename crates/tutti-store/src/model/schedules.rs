//! Schedules and their fires. The server validates a schedule manifest; the store keeps its
//! JSON definition (which it does not interpret) and the YAML as written.

use serde::Serialize;
pub use tutti_api::schedules::{Schedule, ScheduleFire};

/// A schedule to create or replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleDraft {
    /// Its name (validated by the server).
    pub name: String,
    /// The validated definition, as JSON.
    pub definition: serde_json::Value,
    /// The manifest as written, comments included.
    pub source_yaml: String,
    /// Whether it fires.
    pub enabled: bool,
}

/// What storing a schedule did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PutScheduleOutcome {
    /// A new schedule (or one deleted before).
    Created,
    /// Its definition or enabled flag changed.
    Changed,
    /// Nothing but perhaps its comments changed.
    Unchanged,
}
