//! Schedules and their fires.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tutti_proto::RunId;
use utoipa::ToSchema;

/// A stored schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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

/// A schedule with its next fire time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleView {
    /// The stored schedule.
    #[serde(flatten)]
    pub schedule: Schedule,
    /// The next time it fires (cron schedules that are enabled and still active).
    pub next_fire: Option<Timestamp>,
}

/// One schedule with what it will do and what it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleDetail {
    /// The stored schedule.
    pub schedule: Schedule,
    /// Its next five fire times.
    pub next_fires: Vec<Timestamp>,
    /// Its last twenty fires, newest first.
    pub recent_fires: Vec<ScheduleFire>,
    /// The run of its latest fire that created one, with counts per target state.
    pub last_run: Option<crate::runs::RunDetail>,
}

/// The answer of the preview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Preview {
    /// The zone the schedule is read in.
    pub timezone: String,
    /// Fire times, in UTC.
    pub fires: Vec<Timestamp>,
    /// The same in the schedule's zone, as local wall-clock times with their offset.
    pub local: Vec<String>,
}

/// What applying one schedule document did (or would do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AppliedSchedule {
    /// The schedule.
    pub name: String,
    /// What applying it did.
    pub result: crate::jobs::ApplyResult,
}

/// The answer of `POST /api/v1/schedules`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleApplyResponse {
    /// One entry per document, in order.
    pub applied: Vec<AppliedSchedule>,
}
