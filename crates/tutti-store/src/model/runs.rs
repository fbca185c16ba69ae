//! Runs, their targets and the commands that carried them.

use jiff::Timestamp;
use tutti_proto::{AgentId, CommandId, JobId, RunId};

use crate::page::Page;
use crate::state::{RunStatus, TargetState};
pub use tutti_api::runs::{Run, RunDetail, StoredResult, Target};

/// A run to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    /// Its id.
    pub run_id: RunId,
    /// The job.
    pub job_id: JobId,
    /// The job version it runs; must exist.
    pub job_version: u32,
    /// When it was created.
    pub created_at: Timestamp,
    /// Who created it (account, token or `system`).
    pub created_by: String,
    /// The target selection as the operator wrote it (all / groups / agents).
    pub targets_spec: serde_json::Value,
    /// Agents receiving it later skip it; queued targets expire after it.
    pub deadline: Option<Timestamp>,
    /// Fired by a schedule.
    pub scheduled: bool,
    /// The schedule that fired it; `None` for a manual run.
    pub schedule_name: Option<String>,
    /// A manual run created while a fleet freeze was in force (allowed, but marked).
    pub during_freeze: bool,
}

/// Which targets a published command reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Covers {
    /// Every target of the run (a broadcast on `tutti.cmd.all`).
    AllTargets,
    /// These agents (members of a group subject, or one agent subject).
    Agents(Vec<AgentId>),
}

/// A command message the server published for a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandPublished {
    /// The run.
    pub run_id: RunId,
    /// The subject it went to.
    pub subject: String,
    /// The command id.
    pub command_id: CommandId,
    /// The `TUTTI_COMMANDS` sequence the broker acknowledged.
    pub stream_seq: u64,
    /// When it was published.
    pub published_at: Timestamp,
    /// The targets it reaches.
    pub covers: Covers,
}

/// Filter and page of the runs list, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunQuery {
    /// Only runs of this job.
    pub job_id: Option<JobId>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// Only runs created by this actor.
    pub created_by: Option<String>,
    /// Only runs targeting this agent.
    pub agent_id: Option<AgentId>,
    /// Only scheduled (true) or manual (false) runs.
    pub scheduled: Option<bool>,
    /// Created at or after.
    pub created_from: Option<Timestamp>,
    /// Created before.
    pub created_until: Option<Timestamp>,
    /// Which rows.
    pub page: Page,
}

/// Filter and page of a run's targets, ordered by agent id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetQuery {
    /// Only targets in this state.
    pub state: Option<TargetState>,
    /// Which rows.
    pub page: Page,
}
