//! Schedules: when a job runs without an operator asking each time.
//!
//! `spec.rs` parses `kind: Schedule` manifests as strictly as `manifest.rs` parses jobs
//! (unknown keys, wrong types and broken rules are errors with a line and column) into a
//! validated [`ScheduleSpec`] (its checked value types are in `values.rs`). A schedule fires either on a cron expression (`cron.rs`, a
//! small evaluator of our own with documented DST rules) or to keep a desired state
//! (`once_per_version`, `every_hours`). Fire times are filtered by the schedule's active
//! period, maintenance window and skip dates; [`ScheduleSpec::next_fires`] previews them.
//! `lease.rs` is the exception to "no bus here": a leader lease in the `tutti_leases` KV
//! bucket so that of several servers on one broker exactly one runs the scheduler.
//! Otherwise nothing here touches the store or the bus: firing runs is the engine's job.
//! The two drivers are the exception too: `scheduler.rs` (the leader's loop, which claims
//! cron fires) and `desired.rs` (which keeps desired-state schedules' agents covered).

pub mod cron;
pub mod desired;
pub mod lease;
pub mod plan;
pub mod scheduler;
pub mod spec;
pub mod stored;
pub mod values;

pub use cron::{Cron, CronError, preview};
pub use spec::{DesiredState, ParsedSchedule, ScheduleSpec, Trigger, parse_yaml};
pub use values::{MaintenanceWindow, ScheduleName, ZoneName};
