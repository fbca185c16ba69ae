//! Coverage: what the runs of one schedule did on each agent, which is what a
//! desired-state schedule decides on ("has every laptop run version 4 once?").
//!
//! The store only reports history; the server judges it (done, in flight, failed, due).

use jiff::Timestamp;
use serde::Serialize;
use tutti_proto::{AgentId, JobId, RunId};

use crate::state::TargetState;

/// Which runs [`crate::Store::schedule_coverage`] looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoverageQuery {
    /// Runs created by this schedule.
    pub schedule_name: String,
    /// Of this job.
    pub job_id: JobId,
    /// At this version; `None` for any version.
    pub job_version: Option<u32>,
    /// Only runs created at or after this instant (`None`: all), except that open
    /// targets (queued, delivered, running) are reported whatever their age, so an agent
    /// that has been offline for long still counts as in flight.
    pub since: Option<Timestamp>,
}

/// One agent's history with the runs a [`CoverageQuery`] selects. Agents the schedule
/// never targeted are absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentCoverage {
    /// The agent.
    pub agent_id: AgentId,
    /// The run of its latest target (latest by queue time).
    pub run_id: RunId,
    /// The state of its latest target.
    pub state: TargetState,
    /// When its latest target was queued (its run was created).
    pub queued_at: Timestamp,
    /// When its latest target finished, if it has.
    pub finished_at: Option<Timestamp>,
    /// When its most recent succeeded target was queued. Queue time rather than finish
    /// time, so agents that ran in one run keep falling due together.
    pub succeeded_at: Option<Timestamp>,
    /// Failed attempts after its most recent success (or ever, without one): targets
    /// that ended `failed`, `timed_out`, `interrupted`, `missed` or `expired`. `killed`
    /// and `skipped` are an operator's or a freeze's doing, not the job's, and do not
    /// count.
    pub n_failed_attempts: u32,
    /// When its most recent failed attempt ended (its queue time if no end is recorded).
    pub failed_at: Option<Timestamp>,
    /// Its targets that are still open (queued, delivered or running).
    pub n_open: u32,
}
