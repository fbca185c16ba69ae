//! Schedules and their fires. The server validates a schedule manifest; the store keeps its
//! JSON definition (which it does not interpret) and the YAML as written.

use jiff::Timestamp;
use serde::Serialize;
use tutti_proto::RunId;

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

/// A stored schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schedule {
    /// Its name.
    pub name: String,
    /// The definition the server validated.
    pub definition: serde_json::Value,
    /// The manifest as written.
    pub source_yaml: String,
    /// Whether it fires.
    pub enabled: bool,
    /// First applied.
    pub created_at: Timestamp,
    /// By whom.
    pub created_by: String,
    /// Last change of definition, text or enabled flag.
    pub updated_at: Timestamp,
}

/// One fire of a schedule: a run, or the reason there was none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleFire {
    /// The schedule.
    pub schedule_name: String,
    /// The fire time the schedule computed (unique per schedule).
    pub fire_at: Timestamp,
    /// When the scheduler acted on it.
    pub fired_at: Timestamp,
    /// The run it created, once created.
    pub run_id: Option<RunId>,
    /// Why no run was created (`frozen`, `missed`, `disabled job`, ...).
    pub skipped: Option<String>,
}
