//! Rollouts: a run released to its targets wave by wave.
//!
//! The server plans the waves and decides when to release, wait, abort or finish; the store
//! keeps the plan (as JSON it does not interpret), the rollout's state, each target's wave
//! and which targets were released, so that everything survives a restart. A target of a
//! rollout that is not released yet is *held*: stored `queued` with a wave and no
//! `released_at`, and no command exists for it.

use jiff::Timestamp;
use tutti_proto::{AgentId, CommandId};

pub use tutti_api::rollouts::{Rollout, RolloutState, WaveCounts};

/// A rollout to create with its run.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRollout {
    /// The plan as the server wants it shown and read back.
    pub plan: serde_json::Value,
    /// Cumulative target counts at the end of each wave, strictly increasing, the last
    /// equal to the number of targets. Targets are assigned to waves in agent id order.
    pub wave_ends: Vec<u64>,
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
