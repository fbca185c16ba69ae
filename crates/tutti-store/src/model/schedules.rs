//! Schedules and their fires. The server validates a schedule manifest; the store keeps its
//! JSON definition (which it does not interpret) and the YAML as written.

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

/// What storing a schedule did: the API's [`tutti_api::jobs::ApplyResult`].
pub use tutti_api::jobs::ApplyResult as PutScheduleOutcome;
