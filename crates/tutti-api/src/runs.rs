//! Runs, their targets and results.

use jiff::Timestamp;
use tutti_proto::{AgentId, JobId, RunId};

use crate::state::{RunCounts, RunStatus, TargetState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One stored run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Run {
    /// Its id.
    pub run_id: RunId,
    /// The job.
    pub job_id: JobId,
    /// The job version.
    pub job_version: u32,
    /// When it was created.
    pub created_at: Timestamp,
    /// Who created it.
    pub created_by: String,
    /// The target selection as written.
    pub targets_spec: serde_json::Value,
    /// Its deadline.
    pub deadline: Option<Timestamp>,
    /// Fired by a schedule.
    pub scheduled: bool,
    /// The schedule that fired it; `None` for a manual run.
    pub schedule_name: Option<String>,
    /// Created while a fleet freeze was in force.
    pub during_freeze: bool,
    /// Derived status.
    pub status: RunStatus,
    /// When it was killed.
    pub killed_at: Option<Timestamp>,
    /// Who killed it.
    pub killed_by: Option<String>,
}

/// A run with its per-state counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunDetail {
    /// The run.
    pub run: Run,
    /// Targets per state.
    pub counts: RunCounts,
}

/// One (run, agent) row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Target {
    /// The run.
    pub run_id: RunId,
    /// The agent.
    pub agent_id: AgentId,
    /// Where it is.
    pub state: TargetState,
    /// Skip reason, or why the server decided `missed` / `expired`.
    pub reason: Option<String>,
    /// Exit code from the result.
    pub exit_code: Option<i32>,
    /// Commands-stream sequence of the command that reaches this agent.
    pub command_seq: Option<u64>,
    /// When the target was created.
    pub queued_at: Timestamp,
    /// When the agent received the command.
    pub delivered_at: Option<Timestamp>,
    /// When the process started.
    pub started_at: Option<Timestamp>,
    /// When the outcome was decided.
    pub finished_at: Option<Timestamp>,
    /// Its rollout wave (1-based); `None` for a run without a rollout.
    pub wave: Option<u32>,
    /// When a rollout released it to its agent; `None` while held (and for a run without
    /// a rollout, whose targets are all sent at creation).
    pub released_at: Option<Timestamp>,
}

/// A stored result with its stream sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StoredResult {
    /// `TUTTI_RESULTS` sequence it arrived with.
    pub stream_seq: u64,
    /// The result as the agent sent it. Output object references are stored as received;
    /// the server resolves them from the object store when it shows the detail.
    pub result: tutti_proto::result::RunResult,
}
