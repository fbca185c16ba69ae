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

/// A run, its counts and a page of its targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunView {
    /// The run and its counts.
    #[serde(flatten)]
    pub detail: RunDetail,
    /// Per-state counts by name, e.g. `{"succeeded": 3, "queued": 1}`. Held rollout
    /// targets (stored `queued`, no command sent) are counted as `held`, not `queued`, so
    /// `queued` means "waiting for the agent".
    pub count_by_state: std::collections::BTreeMap<String, u64>,
    /// The rollout, for a run released in waves.
    pub rollout: Option<crate::rollouts::RolloutView>,
    /// A page of targets, by agent id.
    pub targets: crate::page::Paged<Target>,
}

/// One result with its output resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResultView {
    /// The stored result, as the agent sent it.
    #[serde(flatten)]
    pub stored: StoredResult,
    /// Full stdout: the object's text when uploaded and verified, the inline text otherwise.
    pub stdout_full: ResolvedOutput,
    /// Full stderr, resolved the same way.
    pub stderr_full: ResolvedOutput,
}

/// Output text and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResolvedOutput {
    /// The text (lossy UTF-8).
    pub text: String,
    /// `object` or `inline`.
    pub source: OutputSource,
    /// Why the object could not be used, when it could not.
    pub object_error: Option<String>,
}

/// What a kill did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KillOutcome {
    /// The run.
    pub run_id: RunId,
    /// Queued or delivered targets skipped at once.
    pub n_skipped: u64,
    /// Kill messages published.
    pub n_messages: usize,
}

/// Where a result's output text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutputSource {
    /// The full output, uploaded to the object store and verified.
    Object,
    /// What the result carried inline (all of it, or head and tail).
    Inline,
}

/// What a created run looks like to the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedRun {
    /// The run.
    pub run_id: RunId,
    /// The job it runs.
    pub job_id: JobId,
    /// The job version.
    pub job_version: u32,
    /// Targeted agents.
    pub n_targets: usize,
    /// Subjects the command was published on.
    pub subjects: Vec<String>,
    /// Created while a fleet freeze was in force (allowed for manual runs, and marked).
    pub during_freeze: bool,
}
