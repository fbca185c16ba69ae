//! Rollouts: the run, its targets with their waves and the rollout row, created in one
//! transaction; releasing held targets; per-wave counts; conditional state changes.
//!
//! Releasing is the step that must survive a crash. [`release`] marks targets released and
//! gives each a fresh command id in one transaction; the server publishes afterwards and
//! records each publish with `set_run_command_seq`. A crash in between leaves targets that
//! are released but have no `command_seq`: [`pending`] returns them with their stored
//! command ids, and publishing them again is de-duplicated by the stream (`Nats-Msg-Id`)
//! and by the agent (it takes a command id in once). So a wave is never lost and never
//! run twice.

use rusqlite::{Connection, OptionalExtension, Row, params};
use tutti_proto::{AgentId, CommandId, RunId};

use super::{runs, sql};
use crate::error::{StoreError, StoreResult};
use crate::model::rollouts::{
    HeldTargets, NewRollout, PendingRelease, Rollout, RolloutChange, RolloutState, WaveCounts,
};
use crate::model::runs::NewRun;
use crate::state::{RunCounts, TargetState};
use crate::time::{from_ms, opt_from_ms, opt_to_ms, to_ms};

/// A target that has a wave and no command yet.
const HELD: &str = "wave IS NOT NULL AND released_at IS NULL AND state = 'queued'";

/// Creates the run, its `queued` targets with their waves (in agent id order) and the
/// rollout, `running` at wave 1 with nothing released yet.
pub(super) fn create(
    conn: &Connection,
    run: &NewRun,
    targets: &[AgentId],
    rollout: &NewRollout,
) -> StoreResult<()> {
    let mut agents: Vec<&AgentId> = targets.iter().collect();
    agents.sort();
    agents.dedup();
    check_wave_ends(&rollout.wave_ends, agents.len())?;
    runs::create_run(conn, run, targets)?;
    let run_id = run.run_id.to_string();
    let mut set_wave = conn
        .prepare_cached("UPDATE run_targets SET wave = ?3 WHERE run_id = ?1 AND agent_id = ?2")?;
    let mut wave = 1;
    for (index, agent_id) in agents.iter().enumerate() {
        while index as u64 >= rollout.wave_ends[wave - 1] {
            wave += 1;
        }
        set_wave.execute(params![run_id, agent_id.as_str(), wave])?;
    }
    conn.execute(
        "INSERT INTO rollouts (run_id, plan, n_waves, state, current_wave, wave_started_at,
             created_at, updated_at)
         VALUES (?1, ?2, ?3, 'running', 1, ?4, ?4, ?4)",
        params![
            run_id,
            sql::to_json(&rollout.plan)?,
            rollout.wave_ends.len(),
            to_ms(run.created_at)
        ],
    )?;
    Ok(())
}

fn check_wave_ends(wave_ends: &[u64], n_targets: usize) -> StoreResult<()> {
    let increasing = wave_ends.windows(2).all(|pair| pair[0] < pair[1]);
    let covers_all = wave_ends.last() == Some(&(n_targets as u64));
    if wave_ends.first().is_some_and(|first| *first > 0) && increasing && covers_all {
        Ok(())
    } else {
        Err(StoreError::other(format!(
            "wave ends {wave_ends:?} do not cover {n_targets} targets in increasing steps"
        )))
    }
}

const COLUMNS: &str = "run_id, plan, n_waves, state, current_wave, wave_started_at,
    next_wave_at, reason, resumable, created_at, updated_at";

fn decode(row: &Row<'_>) -> StoreResult<Rollout> {
    let state: String = row.get(3)?;
    Ok(Rollout {
        run_id: sql::parse_id(&row.get::<_, String>(0)?)?,
        plan: sql::from_json(&row.get::<_, String>(1)?)?,
        n_waves: sql::to_version(row.get(2)?)?,
        state: RolloutState::parse(&state).ok_or_else(|| {
            StoreError::other(format!("stored rollout state {state:?} is unknown"))
        })?,
        current_wave: sql::to_version(row.get(4)?)?,
        wave_started_at: from_ms(row.get(5)?)?,
        next_wave_at: opt_from_ms(row.get(6)?)?,
        reason: row.get(7)?,
        resumable: row.get(8)?,
        created_at: from_ms(row.get(9)?)?,
        updated_at: from_ms(row.get(10)?)?,
    })
}

/// The rollout of a run; `NotFound` when the run has none.
pub(super) fn get(conn: &Connection, run_id: &RunId) -> StoreResult<Rollout> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM rollouts WHERE run_id = ?1"),
        [run_id.to_string()],
        |row| Ok(decode(row)),
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("rollout of run {run_id}")))?
}

/// Rollouts in `running` or `waiting`, oldest first.
pub(super) fn list_active(conn: &Connection) -> StoreResult<Vec<Rollout>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM rollouts WHERE state IN ('running', 'waiting')
         ORDER BY created_at, run_id"
    ))?;
    let mut rows = stmt.query([])?;
    let mut rollouts = Vec::new();
    while let Some(row) = rows.next()? {
        rollouts.push(decode(row)?);
    }
    Ok(rollouts)
}

/// Per-wave counts of released and unreleased targets, for waves 1..=n_waves.
pub(super) fn wave_counts(conn: &Connection, run_id: &RunId) -> StoreResult<Vec<WaveCounts>> {
    let rollout = get(conn, run_id)?;
    let mut waves: Vec<WaveCounts> = (1..=rollout.n_waves)
        .map(|wave| WaveCounts {
            wave,
            ..WaveCounts::default()
        })
        .collect();
    let mut stmt = conn.prepare_cached(
        "SELECT wave, released_at IS NOT NULL, state, COUNT(*) FROM run_targets
         WHERE run_id = ?1 AND wave IS NOT NULL GROUP BY 1, 2, 3",
    )?;
    let mut rows = stmt.query([run_id.to_string()])?;
    while let Some(row) = rows.next()? {
        let wave = sql::to_version(row.get(0)?)?;
        let name: String = row.get(2)?;
        let state = TargetState::parse(&name)
            .ok_or_else(|| StoreError::other(format!("stored target state {name:?} is unknown")))?;
        let Some(counts) = waves.get_mut(wave.saturating_sub(1) as usize) else {
            return Err(StoreError::other(format!(
                "target in wave {wave} of {run_id}"
            )));
        };
        let side = if row.get::<_, bool>(1)? {
            &mut counts.released
        } else {
            &mut counts.unreleased
        };
        add(side, state, row.get(3)?);
    }
    Ok(waves)
}

fn add(counts: &mut RunCounts, state: TargetState, n: u64) {
    counts.by_state.push((state, n));
    counts.by_state.sort();
}

/// Releases held targets of waves up to the current one, in wave and agent id order, while
/// the rollout is `running`; with `batch_size`, only as many as keep the run's released
/// and unfinished targets at or under it. Each gets a fresh command id. Returns how many.
pub(super) fn release(
    conn: &Connection,
    run_id: &RunId,
    batch_size: Option<u64>,
    now: jiff::Timestamp,
) -> StoreResult<u64> {
    let rollout = get(conn, run_id)?;
    if rollout.state != RolloutState::Running {
        return Ok(0);
    }
    let run_id = run_id.to_string();
    let budget = match batch_size {
        None => i64::MAX,
        Some(batch_size) => {
            let open = open_released(conn, &run_id)?;
            i64::try_from(batch_size.saturating_sub(open)).unwrap_or(i64::MAX)
        }
    };
    let agents: Vec<String> = {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT agent_id FROM run_targets WHERE run_id = ?1 AND {HELD} AND wave <= ?2
             ORDER BY wave, agent_id LIMIT ?3"
        ))?;
        let rows = stmt.query_map(params![run_id, rollout.current_wave, budget], |row| {
            row.get(0)
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let mut mark = conn.prepare_cached(
        "UPDATE run_targets SET released_at = ?3, release_command_id = ?4
         WHERE run_id = ?1 AND agent_id = ?2",
    )?;
    for agent_id in &agents {
        let command_id = CommandId::new(ulid::Ulid::new());
        mark.execute(params![
            run_id,
            agent_id,
            to_ms(now),
            command_id.to_string()
        ])?;
    }
    Ok(agents.len() as u64)
}

/// Released targets whose agent has not finished (the batch size counts these).
fn open_released(conn: &Connection, run_id: &str) -> StoreResult<u64> {
    let open: Vec<String> = TargetState::ALL
        .into_iter()
        .filter(|state| !state.is_final())
        .map(|state| format!("'{}'", state.as_str()))
        .collect();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT COUNT(*) FROM run_targets WHERE run_id = ?1 AND released_at IS NOT NULL
             AND state IN ({})",
        open.join(",")
    ))?;
    Ok(stmt.query_row([run_id], |row| row.get(0))?)
}

/// Released, still `queued` targets without a recorded publish, with their command ids.
pub(super) fn pending(conn: &Connection, run_id: &RunId) -> StoreResult<Vec<PendingRelease>> {
    let mut stmt = conn.prepare_cached(
        "SELECT agent_id, release_command_id FROM run_targets
         WHERE run_id = ?1 AND released_at IS NOT NULL AND command_seq IS NULL
             AND state = 'queued'
         ORDER BY agent_id",
    )?;
    let mut rows = stmt.query([run_id.to_string()])?;
    let mut pending = Vec::new();
    while let Some(row) = rows.next()? {
        pending.push(PendingRelease {
            agent_id: sql::parse_id(&row.get::<_, String>(0)?)?,
            command_id: sql::parse_id(&row.get::<_, String>(1)?)?,
        });
    }
    Ok(pending)
}

/// Applies `change` when the rollout is in one of its `from` states at its `from_wave`.
/// Returns `None` when it was not, otherwise how many held targets were skipped or
/// restored.
pub(super) fn set_state(
    conn: &Connection,
    run_id: &RunId,
    change: &RolloutChange,
    now: jiff::Timestamp,
) -> StoreResult<Option<u64>> {
    let rollout = get(conn, run_id)?;
    if !change.from.contains(&rollout.state) || rollout.current_wave != change.from_wave {
        return Ok(None);
    }
    let wave_started_at = if change.to_wave == rollout.current_wave {
        rollout.wave_started_at
    } else {
        now
    };
    let run_id = run_id.to_string();
    conn.execute(
        "UPDATE rollouts SET state = ?2, current_wave = ?3, wave_started_at = ?4,
             next_wave_at = ?5, reason = ?6, resumable = ?7, updated_at = ?8
         WHERE run_id = ?1",
        params![
            run_id,
            change.to.as_str(),
            change.to_wave,
            to_ms(wave_started_at),
            opt_to_ms(change.next_wave_at),
            change.reason,
            change.resumable,
            to_ms(now),
        ],
    )?;
    let n_targets = match &change.held {
        HeldTargets::Keep => 0,
        HeldTargets::Skip(reason) => conn.execute(
            &format!(
                "UPDATE run_targets SET state = 'skipped', reason = ?2, finished_at = ?3
                 WHERE run_id = ?1 AND {HELD}"
            ),
            params![run_id, reason, to_ms(now)],
        )?,
        // The one move back to `queued`: only for targets no command was ever made for.
        HeldTargets::Restore(reason) => conn.execute(
            "UPDATE run_targets SET state = 'queued', reason = NULL, finished_at = NULL
             WHERE run_id = ?1 AND wave IS NOT NULL AND released_at IS NULL
                 AND state = 'skipped' AND reason = ?2",
            params![run_id, reason],
        )?,
    };
    runs::refresh_status(conn, &run_id)?;
    Ok(Some(n_targets as u64))
}
