//! Per-agent coverage of a schedule: one read over the schedule's runs (the
//! `runs_schedule` index) and their targets, folded per agent in queue order.
//!
//! With a `since`, only recent runs are joined with their targets, plus runs that are not
//! `done` (their open targets count whatever their age): the scheduler reads this every
//! tick, so an `every_hours` schedule must not scan its whole history each time.

use std::collections::BTreeMap;

use rusqlite::{Connection, params};

use super::sql;
use crate::error::{StoreError, StoreResult};
use crate::model::coverage::{AgentCoverage, CoverageQuery};
use crate::state::TargetState;
use crate::time::{from_ms, opt_from_ms, opt_to_ms};

/// One target row of a selected run.
struct Row {
    agent_id: String,
    run_id: String,
    state: TargetState,
    queued_at: i64,
    finished_at: Option<i64>,
}

/// Each agent's coverage by the runs `query` selects, by agent id.
pub(super) fn coverage(
    conn: &Connection,
    query: &CoverageQuery,
) -> StoreResult<Vec<AgentCoverage>> {
    let rows = rows(conn, query)?;
    let mut by_agent: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for row in rows {
        by_agent.entry(row.agent_id.clone()).or_default().push(row);
    }
    by_agent.into_values().map(|rows| fold(&rows)).collect()
}

fn rows(conn: &Connection, query: &CoverageQuery) -> StoreResult<Vec<Row>> {
    let open = open_states_sql();
    // The `r.status` term is on the run alone, so SQLite drops old finished runs before
    // it joins their targets.
    let sql = format!(
        "SELECT t.agent_id, t.run_id, t.state, t.queued_at, t.finished_at
         FROM runs r JOIN run_targets t ON t.run_id = r.run_id
         WHERE r.schedule_name = ?1 AND r.job_id = ?2
           AND (?3 IS NULL OR r.job_version = ?3)
           AND (?4 IS NULL OR r.created_at >= ?4 OR r.status <> 'done')
           AND (?4 IS NULL OR r.created_at >= ?4 OR t.state IN ({open}))
         ORDER BY t.agent_id, t.queued_at, t.run_id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            query.schedule_name,
            query.job_id.as_str(),
            query.job_version,
            opt_to_ms(query.since)
        ],
        |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, Option<i64>>(4)?,
            ))
        },
    )?;
    let mut decoded = Vec::new();
    for row in rows {
        let (agent_id, run_id, state, queued_at, finished_at) = row?;
        let state = TargetState::parse(&state).ok_or_else(|| {
            StoreError::other(format!("stored target state {state:?} is unknown"))
        })?;
        decoded.push(Row {
            agent_id,
            run_id,
            state,
            queued_at,
            finished_at,
        });
    }
    Ok(decoded)
}

/// One agent's rows, oldest first, into its coverage.
fn fold(rows: &[Row]) -> StoreResult<AgentCoverage> {
    let Some(latest) = rows.last() else {
        return Err(StoreError::other("coverage of an agent without rows"));
    };
    let mut succeeded_at = None;
    let mut n_failed_attempts = 0;
    let mut failed_at = None;
    let mut n_open = 0;
    for row in rows {
        match row.state {
            TargetState::Succeeded => {
                succeeded_at = Some(row.queued_at);
                n_failed_attempts = 0;
            }
            state if is_failed_attempt(state) => {
                n_failed_attempts += 1;
                let ended = row.finished_at.unwrap_or(row.queued_at);
                failed_at = Some(failed_at.map_or(ended, |at: i64| at.max(ended)));
            }
            state if !state.is_final() => n_open += 1,
            _ => {}
        }
    }
    Ok(AgentCoverage {
        agent_id: sql::parse_id(&latest.agent_id)?,
        run_id: sql::parse_id(&latest.run_id)?,
        state: latest.state,
        queued_at: from_ms(latest.queued_at)?,
        finished_at: opt_from_ms(latest.finished_at)?,
        succeeded_at: opt_from_ms(succeeded_at)?,
        n_failed_attempts,
        failed_at: opt_from_ms(failed_at)?,
        n_open,
    })
}

/// Whether a final state is a failed attempt (see `AgentCoverage::n_failed_attempts`).
fn is_failed_attempt(state: TargetState) -> bool {
    matches!(
        state,
        TargetState::Failed
            | TargetState::TimedOut
            | TargetState::Interrupted
            | TargetState::Missed
            | TargetState::Expired
    )
}

fn open_states_sql() -> String {
    TargetState::ALL
        .into_iter()
        .filter(|state| !state.is_final())
        .map(|state| format!("'{}'", state.as_str()))
        .collect::<Vec<_>>()
        .join(",")
}
