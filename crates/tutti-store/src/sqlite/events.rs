//! The events projector: stores every agent event once (by stream sequence) and moves
//! targets: `received` → delivered, `started` → running, `gap_detected` → missed.
//!
//! A gap report names the commands-stream sequences the agent can never read. Every
//! queued or delivered target of that agent whose command sequence (the highest one that
//! reaches it, see `runs::set_run_command_seq`) lies inside the gap is marked `missed`,
//! so it does not stay pending forever.
//!
//! An event from an agent that is not enrolled is neither stored nor applied (see
//! `agents.rs`).

use std::collections::BTreeSet;

use rusqlite::{Connection, params};
use tutti_proto::catalog::EVENTS_STREAM;
use tutti_proto::event::{AgentEvent, EventKind};
use tutti_proto::{CommandId, RunId};

use super::agents;
use super::anomalies::{self, NewAnomaly};
use super::runs::{self, Move};
use super::sql;
use crate::error::StoreResult;
use crate::model::ingest::{AnomalyKind, ApplyOutcome, Sequenced};
use crate::state::TargetState;
use crate::time::to_ms;

/// Applies one batch of events; the caller runs it in one transaction.
pub(super) fn apply_events(
    conn: &Connection,
    batch: &[Sequenced<AgentEvent>],
) -> StoreResult<ApplyOutcome> {
    let mut outcome = ApplyOutcome::default();
    let mut touched_runs = BTreeSet::new();
    for item in batch {
        if !agents::is_enrolled(conn, &item.message.agent_id)? {
            outcome.unknown_agents.push(item.message.agent_id.clone());
            continue;
        }
        if !insert_event(conn, item)? {
            outcome.duplicates += 1;
            continue;
        }
        outcome.applied += 1;
        let moved_runs = apply_kind(conn, item, &mut outcome)?;
        outcome.transitions += moved_runs.len() as u64;
        touched_runs.extend(moved_runs);
    }
    for run_id in &touched_runs {
        runs::refresh_status(conn, run_id)?;
    }
    if let Some(max_seq) = sql::max_seq(batch) {
        sql::bump_position(conn, EVENTS_STREAM, max_seq)?;
    }
    Ok(outcome)
}

/// Stores the event; false when its stream sequence is already stored.
fn insert_event(conn: &Connection, item: &Sequenced<AgentEvent>) -> StoreResult<bool> {
    let detail = serde_json::to_value(&item.message.kind)?;
    let kind = detail
        .get("type")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("unknown")
        .to_string();
    let (run_id, command_id) = run_of(&item.message.kind);
    let inserted = conn
        .prepare_cached(
            "INSERT INTO run_events (stream_seq, agent_id, at, kind, run_id, command_id, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (stream_seq) DO NOTHING",
        )?
        .execute(params![
            item.stream_seq,
            item.message.agent_id.as_str(),
            to_ms(item.message.at),
            kind,
            run_id.map(|id| id.to_string()),
            command_id.map(|id| id.to_string()),
            detail.to_string(),
        ])?;
    Ok(inserted > 0)
}

fn run_of(kind: &EventKind) -> (Option<RunId>, Option<CommandId>) {
    match kind {
        EventKind::Received {
            run_id, command_id, ..
        }
        | EventKind::Started { run_id, command_id } => (Some(*run_id), Some(*command_id)),
        EventKind::Refused { command_id, .. } => (None, *command_id),
        EventKind::GapDetected { .. }
        | EventKind::FleetValueRefused { .. }
        | EventKind::Unknown => (None, None),
    }
}

/// Applies the event's effect on targets; returns the runs whose targets moved.
fn apply_kind(
    conn: &Connection,
    item: &Sequenced<AgentEvent>,
    outcome: &mut ApplyOutcome,
) -> StoreResult<Vec<String>> {
    let at = to_ms(item.message.at);
    let (to, run_id, delivered_at, started_at) = match &item.message.kind {
        EventKind::Received { run_id, .. } => (TargetState::Delivered, run_id, Some(at), None),
        EventKind::Started { run_id, .. } => (TargetState::Running, run_id, Some(at), Some(at)),
        EventKind::GapDetected { from_seq, to_seq } => {
            return mark_missed(conn, item, *from_seq, *to_seq);
        }
        EventKind::Refused { .. } | EventKind::FleetValueRefused { .. } | EventKind::Unknown => {
            return Ok(Vec::new());
        }
    };
    let run_id = run_id.to_string();
    let agent_id = item.message.agent_id.as_str();
    let kind = match runs::target_exists(conn, &run_id, agent_id)? {
        Some(true) => None,
        Some(false) => Some(AnomalyKind::NotTargeted),
        None => Some(AnomalyKind::UnknownRun),
    };
    if let Some(kind) = kind {
        record_anomaly(conn, item, kind, run_id)?;
        outcome.anomalies += 1;
        return Ok(Vec::new());
    }
    let change = Move {
        run_id: &run_id,
        agent_id,
        to,
        reason: None,
        exit_code: None,
        delivered_at,
        started_at,
        finished_at: None,
    };
    let moved = runs::move_target(conn, &change)?;
    Ok(if moved { vec![run_id] } else { Vec::new() })
}

fn record_anomaly(
    conn: &Connection,
    item: &Sequenced<AgentEvent>,
    kind: AnomalyKind,
    run_id: String,
) -> StoreResult<()> {
    let anomaly = NewAnomaly {
        stream: EVENTS_STREAM,
        stream_seq: item.stream_seq,
        kind,
        agent_id: item.message.agent_id.as_str(),
        run_id: Some(run_id),
        at: item.message.at,
        payload: sql::to_json(&item.message)?,
    };
    anomalies::record(conn, &anomaly)?;
    Ok(())
}

/// Marks `missed` every not-yet-started target of the agent whose command lies in the gap.
fn mark_missed(
    conn: &Connection,
    item: &Sequenced<AgentEvent>,
    from_seq: u64,
    to_seq: u64,
) -> StoreResult<Vec<String>> {
    let missable = crate::state::predecessors_sql(TargetState::Missed);
    let matching =
        format!("agent_id = ?1 AND state IN ({missable}) AND command_seq BETWEEN ?2 AND ?3");
    let agent_id = item.message.agent_id.as_str();
    let run_ids: Vec<String> = {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT DISTINCT run_id FROM run_targets WHERE {matching}"
        ))?;
        let rows = stmt.query_map(params![agent_id, from_seq, to_seq], |row| row.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    if run_ids.is_empty() {
        return Ok(run_ids);
    }
    let reason = format!("commands {from_seq}..={to_seq} expired before the agent read them");
    conn.prepare_cached(&format!(
        "UPDATE run_targets SET state = 'missed', reason = ?4, finished_at = ?5 WHERE {matching}"
    ))?
    .execute(params![
        agent_id,
        from_seq,
        to_seq,
        reason,
        to_ms(item.message.at)
    ])?;
    Ok(run_ids)
}
