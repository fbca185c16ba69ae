//! The per-target state machine and the run status derived from it.
//!
//! [`TargetState::can_move`] is the one place that says which transitions exist. The SQL
//! side never decides on its own: every state change is a conditional
//! `UPDATE … WHERE state IN (<predecessors>)` whose list comes from
//! `tutti_store`'s `predecessors_sql`, built from [`TargetState::predecessors`], so a late or replayed message can never move a target
//! backwards (a `received` after `succeeded` changes nothing). The test
//! `every_pair_of_states` pins the whole table.

use serde::{Deserialize, Serialize};
use tutti_proto::result::ResultStatus;
use utoipa::ToSchema;

/// Where one agent is with one run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    /// Created; the agent has not acknowledged the command (it may be offline).
    Queued,
    /// The agent received and verified the command (`received` event).
    Delivered,
    /// The process started (`started` event).
    Running,
    /// Exit code 0.
    Succeeded,
    /// Non-zero exit code or failure to start.
    Failed,
    /// Killed by its timeout.
    TimedOut,
    /// Killed by a kill command while running.
    Killed,
    /// Never started; `reason` on the target says why.
    Skipped,
    /// The agent stopped while the process ran.
    Interrupted,
    /// The agent reported a retention gap covering the run's command.
    Missed,
    /// The run's deadline passed while the agent never picked the command up.
    Expired,
}

impl TargetState {
    /// Every state, in lifecycle order.
    pub const ALL: [TargetState; 11] = [
        TargetState::Queued,
        TargetState::Delivered,
        TargetState::Running,
        TargetState::Succeeded,
        TargetState::Failed,
        TargetState::TimedOut,
        TargetState::Killed,
        TargetState::Skipped,
        TargetState::Interrupted,
        TargetState::Missed,
        TargetState::Expired,
    ];

    /// Whether a target in `from` may move to `to`. The only transition table.
    ///
    /// Agent-reported outcomes (see [`TargetState::is_reported`]) also override `missed`
    /// and `expired`: those are the server's guesses about a silent agent, and a result
    /// from the agent itself is better evidence. Nothing leaves an agent-reported outcome.
    pub fn can_move(from: TargetState, to: TargetState) -> bool {
        use TargetState::{Delivered, Expired, Missed, Queued, Running};
        match (from, to) {
            (Queued, Delivered | Running | Missed | Expired) => true,
            (Delivered, Running | Missed) => true,
            (Queued | Delivered | Running | Missed | Expired, to) => to.is_reported(),
            _ => false,
        }
    }

    /// States that may move to `to`.
    pub fn predecessors(to: TargetState) -> Vec<TargetState> {
        TargetState::ALL
            .into_iter()
            .filter(|from| TargetState::can_move(*from, to))
            .collect()
    }

    /// An outcome an agent reports in a result.
    pub fn is_reported(self) -> bool {
        use TargetState::{Failed, Interrupted, Killed, Skipped, Succeeded, TimedOut};
        matches!(
            self,
            Succeeded | Failed | TimedOut | Killed | Skipped | Interrupted
        )
    }

    /// Whether the target is done as far as the run is concerned.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            TargetState::Queued | TargetState::Delivered | TargetState::Running
        )
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Queued => "queued",
            TargetState::Delivered => "delivered",
            TargetState::Running => "running",
            TargetState::Succeeded => "succeeded",
            TargetState::Failed => "failed",
            TargetState::TimedOut => "timed_out",
            TargetState::Killed => "killed",
            TargetState::Skipped => "skipped",
            TargetState::Interrupted => "interrupted",
            TargetState::Missed => "missed",
            TargetState::Expired => "expired",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<TargetState> {
        TargetState::ALL
            .into_iter()
            .find(|state| state.as_str() == name)
    }

    /// The state a result moves its target to; `None` for a status this version does not
    /// know, which is stored but moves nothing.
    pub fn from_result(status: &ResultStatus) -> Option<TargetState> {
        match status {
            ResultStatus::Succeeded => Some(TargetState::Succeeded),
            ResultStatus::Failed => Some(TargetState::Failed),
            ResultStatus::TimedOut => Some(TargetState::TimedOut),
            ResultStatus::Killed => Some(TargetState::Killed),
            ResultStatus::Skipped { .. } => Some(TargetState::Skipped),
            ResultStatus::Interrupted => Some(TargetState::Interrupted),
            ResultStatus::Unknown => None,
        }
    }
}

/// A run's status, derived from its targets by one SQL statement after every change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// No target has left `queued` yet.
    Queued,
    /// Some target has moved and some are not final.
    Running,
    /// Every target is final (also a run with no targets).
    Done,
    /// The run was killed; running targets may still report.
    Killed,
}

impl RunStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Done => "done",
            RunStatus::Killed => "killed",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<RunStatus> {
        [
            RunStatus::Queued,
            RunStatus::Running,
            RunStatus::Done,
            RunStatus::Killed,
        ]
        .into_iter()
        .find(|status| status.as_str() == name)
    }
}

/// How many targets of a run are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunCounts {
    /// `(state, count)` for every state with at least one target, in lifecycle order.
    pub by_state: Vec<(TargetState, u64)>,
}

impl RunCounts {
    /// Targets in `state`.
    pub fn get(&self, state: TargetState) -> u64 {
        self.by_state
            .iter()
            .find(|(found, _)| *found == state)
            .map_or(0, |(_, count)| *count)
    }

    /// All targets.
    pub fn total(&self) -> u64 {
        self.by_state.iter().map(|(_, count)| count).sum()
    }

    /// Targets not yet final.
    pub fn open(&self) -> u64 {
        self.by_state
            .iter()
            .filter(|(state, _)| !state.is_final())
            .map(|(_, count)| count)
            .sum()
    }
}

#[cfg(test)]
mod tests;
