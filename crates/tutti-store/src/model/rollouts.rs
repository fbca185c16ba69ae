//! Rollouts: a run released to its targets wave by wave.
//!
//! The server plans the waves and decides when to release, wait, abort or finish; the store
//! keeps the plan (as JSON it does not interpret), the rollout's state, each target's wave
//! and which targets were released, so that everything survives a restart. A target of a
//! rollout that is not released yet is *held*: stored `queued` with a wave and no
//! `released_at`, and no command exists for it.

use jiff::Timestamp;
use serde::Serialize;
use tutti_proto::{AgentId, CommandId, RunId};

use crate::state::RunCounts;

/// Where a rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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

/// A rollout to create with its run.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRollout {
    /// The plan as the server wants it shown and read back.
    pub plan: serde_json::Value,
    /// Cumulative target counts at the end of each wave, strictly increasing, the last
    /// equal to the number of targets. Targets are assigned to waves in agent id order.
    pub wave_ends: Vec<u64>,
}

/// A stored rollout.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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

/// What happens to held targets when a rollout's state changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeldTargets {
    /// They stay held.
    Keep,
    /// They are skipped with this reason (an abort).
    Skip(String),
    /// Targets skipped with this reason without ever being released become held again
    /// (resuming an abort). Safe because no command for them exists, so no agent can have
    /// reported on them.
    Restore(String),
}

/// A conditional change of a rollout: applied only when the rollout is in one of `from`
/// at wave `from_wave`, so two servers (or a stale tick) cannot both make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutChange {
    /// Required current states.
    pub from: Vec<RolloutState>,
    /// Required current wave.
    pub from_wave: u32,
    /// New state.
    pub to: RolloutState,
    /// New current wave (`wave_started_at` is reset when it differs).
    pub to_wave: u32,
    /// New `next_wave_at`.
    pub next_wave_at: Option<Timestamp>,
    /// New reason.
    pub reason: Option<String>,
    /// Whether an operator may resume it afterwards.
    pub resumable: bool,
    /// What happens to held targets.
    pub held: HeldTargets,
}

/// A released target whose command has not been recorded as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRelease {
    /// The agent.
    pub agent_id: AgentId,
    /// The command id chosen when it was released; reused by every publish attempt.
    pub command_id: CommandId,
}
