//! Aggregates for the dashboard's overview: liveness counts, OS and version breakdowns,
//! recent failures, and the per-state counts of a page of runs in one statement.

use std::collections::BTreeMap;

use rusqlite::{Connection, params};

use crate::error::StoreResult;
use crate::model::overview::FleetOverview;
use crate::state::{RunCounts, TargetState};
use crate::time::to_ms;

/// How many breakdown rows are returned; the rest are summed into one count.
const BREAKDOWN_ROWS: usize = 8;

/// The overview, with `online_since` as the liveness cut-off and failures counted from
/// `failures_since`.
pub(super) fn fleet(
    conn: &Connection,
    online_since: jiff::Timestamp,
    failures_since: jiff::Timestamp,
) -> StoreResult<FleetOverview> {
    let (agents, online, never_seen): (u64, u64, u64) = conn
        .prepare_cached(
            "SELECT COUNT(*),
                    COALESCE(SUM(last_heartbeat_at >= ?1), 0),
                    COALESCE(SUM(last_heartbeat_at IS NULL), 0)
             FROM agents",
        )?
        .query_row(params![to_ms(online_since)], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
    let (by_os, os_other) = breakdown(conn, "os")?;
    let (by_version, version_other) = breakdown(conn, "version")?;
    let failed = [
        TargetState::Failed,
        TargetState::TimedOut,
        TargetState::Killed,
        TargetState::Interrupted,
    ]
    .map(TargetState::as_str);
    let (failed_targets, failed_agents): (u64, u64) = conn
        .prepare_cached(
            "SELECT COUNT(*), COUNT(DISTINCT agent_id) FROM run_targets
             WHERE finished_at >= ?1 AND state IN (?2, ?3, ?4, ?5)",
        )?
        .query_row(
            params![
                to_ms(failures_since),
                failed[0],
                failed[1],
                failed[2],
                failed[3]
            ],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
    Ok(FleetOverview {
        agents,
        online,
        offline: agents - online - never_seen,
        never_seen,
        by_os,
        os_other,
        by_version,
        version_other,
        failed_targets,
        failed_agents,
    })
}

/// `(value, agents)` of one agents column, largest first, and the sum of the tail.
fn breakdown(conn: &Connection, column: &'static str) -> StoreResult<(Vec<(String, u64)>, u64)> {
    // `column` is one of two constants above, never input.
    let sql = format!(
        "SELECT {column}, COUNT(*) AS n FROM agents GROUP BY {column} ORDER BY n DESC, {column}"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map([], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, u64>(1)?))
    })?;
    let mut out = Vec::new();
    let mut other = 0;
    for row in rows {
        let (name, count) = row?;
        if out.len() < BREAKDOWN_ROWS {
            out.push((name, count));
        } else {
            other += count;
        }
    }
    Ok((out, other))
}

/// Per-state counts of each run in `run_ids`, keyed by run id.
pub(super) fn run_counts(
    conn: &Connection,
    run_ids: &[String],
) -> StoreResult<BTreeMap<String, RunCounts>> {
    run_ids
        .iter()
        .map(|run_id| Ok((run_id.clone(), super::runs::run_counts(conn, run_id)?)))
        .collect()
}
