//! Rollouts: a run released in waves.

use jiff::Timestamp;
use tutti_proto::RunId;

use crate::state::RunCounts;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    /// Releasing the current wave (or waiting for its targets to finish).
    Running,
    /// The current wave finished; the next is released at `next_wave_at`.
    Waiting,
    /// Stopped by an operator; held targets stay held until resumed.
    Paused,
    /// Stopped for good (by the failure threshold, a kill, the deadline) or until an
    /// operator resumes it (`resumable`); held targets were skipped.
    Aborted,
    /// Every wave was released and finished.
    Done,
}

impl RolloutState {
    /// Every state.
    pub const ALL: [RolloutState; 5] = [
        RolloutState::Running,
        RolloutState::Waiting,
        RolloutState::Paused,
        RolloutState::Aborted,
        RolloutState::Done,
    ];

    /// The states the driver works on.
    pub const ACTIVE: [RolloutState; 2] = [RolloutState::Running, RolloutState::Waiting];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutState::Running => "running",
            RolloutState::Waiting => "waiting",
            RolloutState::Paused => "paused",
            RolloutState::Aborted => "aborted",
            RolloutState::Done => "done",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<RolloutState> {
        RolloutState::ALL
            .into_iter()
            .find(|state| state.as_str() == name)
    }
}

/// A stored rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Rollout {
    /// Its run.
    pub run_id: RunId,
    /// The plan as the server wrote it.
    pub plan: serde_json::Value,
    /// How many waves it has.
    pub n_waves: u32,
    /// Where it is.
    pub state: RolloutState,
    /// The wave being released (1-based).
    pub current_wave: u32,
    /// When the current wave was first released.
    pub wave_started_at: Timestamp,
    /// While waiting: when the next wave may be released.
    pub next_wave_at: Option<Timestamp>,
    /// Why it is paused, aborted or done.
    pub reason: Option<String>,
    /// Whether an operator may resume it.
    pub resumable: bool,
    /// When it was created.
    pub created_at: Timestamp,
    /// Its last change.
    pub updated_at: Timestamp,
}

/// One wave's targets, split into released and not released.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WaveCounts {
    /// The wave (1-based).
    pub wave: u32,
    /// Released targets per state.
    pub released: RunCounts,
    /// Targets never released, per state: `queued` ones are held; the others ended
    /// without a command (skipped by an abort, a kill or a revoked job).
    pub unreleased: RunCounts,
}

impl WaveCounts {
    /// Targets waiting for their release.
    pub fn held(&self) -> u64 {
        self.unreleased.get(crate::state::TargetState::Queued)
    }
}

/// A rollout as the run view shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RolloutView {
    /// Plan, state, current wave, reason and times, as stored.
    #[serde(flatten)]
    pub rollout: Rollout,
    /// Targets not released yet (stored `queued`; no command exists for them).
    pub held: u64,
    /// Targets released so far.
    pub released: u64,
    /// Released targets that count as failures.
    pub failures: u64,
    /// Per-wave counts.
    pub waves: Vec<WaveView>,
}

/// One wave's counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WaveView {
    /// The wave (1-based).
    pub wave: u32,
    /// Its targets.
    pub n_targets: u64,
    /// Not released yet.
    pub held: u64,
    /// Released and not final.
    pub open: u64,
    /// Succeeded.
    pub succeeded: u64,
    /// Failed, timed out, interrupted, missed or expired.
    pub failed: u64,
    /// Ended without running: skipped or killed, released or not.
    pub skipped: u64,
}
