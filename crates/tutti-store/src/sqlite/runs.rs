//! The run engine's storage: runs, their targets, the commands that carried them, and
//! every target state change.
//!
//! Targets move only through [`move_target`] and the bulk updates here, each a conditional
//! `UPDATE … WHERE state IN (predecessors)` built from [`TargetState::can_move`]. After any
//! change the run's stored status is recomputed by [`refresh_status`], one statement.

use std::sync::LazyLock;

use rusqlite::{Connection, OptionalExtension, Row, params};
use tutti_proto::{AgentId, RunId};

use super::sql::{self, Filter};
use crate::error::{StoreError, StoreResult};
use crate::model::runs::{
    CommandPublished, Covers, NewRun, Run, RunDetail, RunQuery, Target, TargetQuery,
};
use crate::page::{Page, Paged};
use crate::state::{RunCounts, RunStatus, TargetState};
use crate::time::{from_ms, opt_from_ms, opt_to_ms, to_ms};

/// Creates the run and one `queued` target per agent (duplicates collapse).
pub(super) fn create_run(conn: &Connection, run: &NewRun, targets: &[AgentId]) -> StoreResult<()> {
    ensure_job_version(conn, run)?;
    let inserted = conn.execute(
        "INSERT INTO runs (run_id, job_id, job_version, created_at, created_by, targets_spec,
             deadline, scheduled, schedule_name, during_freeze, status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'queued')
         ON CONFLICT (run_id) DO NOTHING",
        params![
            run.run_id.to_string(),
            run.job_id.as_str(),
            run.job_version,
            to_ms(run.created_at),
            run.created_by,
            sql::to_json(&run.targets_spec)?,
            opt_to_ms(run.deadline),
            run.scheduled,
            run.schedule_name,
            run.during_freeze,
        ],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "run {} already exists",
            run.run_id
        )));
    }
    let mut insert = conn.prepare_cached(
        "INSERT INTO run_targets (run_id, agent_id, state, queued_at) VALUES (?1, ?2, 'queued', ?3)
         ON CONFLICT (run_id, agent_id) DO NOTHING",
    )?;
    let run_id = run.run_id.to_string();
    for agent_id in targets {
        insert.execute(params![run_id, agent_id.as_str(), to_ms(run.created_at)])?;
    }
    refresh_status(conn, &run_id)
}

fn ensure_job_version(conn: &Connection, run: &NewRun) -> StoreResult<()> {
    let found: Option<i64> = conn
        .query_row(
            "SELECT version FROM job_versions WHERE job_id = ?1 AND version = ?2",
            params![run.job_id.as_str(), run.job_version],
            |row| row.get(0),
        )
        .optional()?;
    match found {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound(format!(
            "job {} version {}",
            run.job_id, run.job_version
        ))),
    }
}

/// Records a published command and the commands-stream sequence of the targets it reaches.
///
/// A target keeps the highest sequence of any command that reaches it: an agent reached
/// through two group subjects misses the run only if both messages fall inside its gap.
pub(super) fn set_run_command_seq(
    conn: &Connection,
    published: &CommandPublished,
) -> StoreResult<()> {
    let run_id = published.run_id.to_string();
    ensure_run(conn, &run_id)?;
    conn.execute(
        "INSERT INTO run_commands (run_id, subject, command_id, stream_seq, published_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (run_id, subject) DO UPDATE SET command_id = excluded.command_id,
             stream_seq = excluded.stream_seq, published_at = excluded.published_at",
        params![
            run_id,
            published.subject,
            published.command_id.to_string(),
            published.stream_seq,
            to_ms(published.published_at),
        ],
    )?;
    const SET_SEQ: &str = "UPDATE run_targets SET command_seq = MAX(COALESCE(command_seq, 0), ?2)
        WHERE run_id = ?1";
    match &published.covers {
        Covers::AllTargets => {
            conn.execute(SET_SEQ, params![run_id, published.stream_seq])?;
        }
        Covers::Agents(agent_ids) => {
            let mut stmt = conn.prepare_cached(&format!("{SET_SEQ} AND agent_id = ?3"))?;
            for agent_id in agent_ids {
                stmt.execute(params![run_id, published.stream_seq, agent_id.as_str()])?;
            }
        }
    }
    Ok(())
}

/// Marks the run killed and skips (reason `killed`) its queued and delivered targets;
/// running targets stay until the agent's result arrives. Returns the targets skipped.
/// Killing a killed run changes nothing.
pub(super) fn kill_run(
    conn: &Connection,
    run_id: &RunId,
    killed_by: &str,
    at: jiff::Timestamp,
) -> StoreResult<u64> {
    let run_id = run_id.to_string();
    ensure_run(conn, &run_id)?;
    let killed = conn.execute(
        "UPDATE runs SET killed_at = ?2, killed_by = ?3 WHERE run_id = ?1 AND killed_at IS NULL",
        params![run_id, to_ms(at), killed_by],
    )?;
    if killed == 0 {
        return Ok(0);
    }
    skip_unpicked(conn, &run_id, "killed", at)
}

/// Skips, with `reason`, the run's targets whose agent has not started it (queued or
/// delivered), then refreshes the run's status. Returns how many were skipped.
pub(super) fn skip_unpicked(
    conn: &Connection,
    run_id: &str,
    reason: &str,
    at: jiff::Timestamp,
) -> StoreResult<u64> {
    let skipped = conn.execute(
        &format!(
            "UPDATE run_targets SET state = 'skipped', reason = ?2, finished_at = ?3
             WHERE run_id = ?1 AND state IN ({})",
            unpicked_sql(TargetState::Skipped)
        ),
        params![run_id, reason, to_ms(at)],
    )?;
    refresh_status(conn, run_id)?;
    Ok(skipped as u64)
}

/// Excludes held rollout targets (a wave, not released): no command for them exists, so
/// their agent cannot be late. The rollout driver ends them when the deadline passes.
const NOT_HELD: &str = "(wave IS NULL OR released_at IS NOT NULL)";

/// Expires every `queued` target of a run whose deadline is before `now`; returns how many.
/// Held rollout targets are left to the rollout driver.
pub(super) fn expire_targets(conn: &Connection, now: jiff::Timestamp) -> StoreResult<u64> {
    let now_ms = to_ms(now);
    let expirable = crate::state::predecessors_sql(TargetState::Expired);
    let run_ids: Vec<String> = {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT DISTINCT t.run_id FROM runs r JOIN run_targets t ON t.run_id = r.run_id
             WHERE r.deadline IS NOT NULL AND r.deadline < ?1 AND t.state IN ({expirable})
                 AND {NOT_HELD}"
        ))?;
        let rows = stmt.query_map([now_ms], |row| row.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut n_expired = 0;
    for run_id in &run_ids {
        n_expired += conn.execute(
            &format!(
                "UPDATE run_targets SET state = 'expired', reason = 'deadline_passed',
                     finished_at = ?2
                 WHERE run_id = ?1 AND state IN ({expirable}) AND {NOT_HELD}"
            ),
            params![run_id, now_ms],
        )? as u64;
        refresh_status(conn, run_id)?;
    }
    Ok(n_expired)
}

/// `'queued','delivered'` filtered to those that may move to `to`: the states in which the
/// agent has not started the run.
fn unpicked_sql(to: TargetState) -> String {
    [TargetState::Queued, TargetState::Delivered]
        .into_iter()
        .filter(|from| TargetState::can_move(*from, to))
        .map(|from| format!("'{}'", from.as_str()))
        .collect::<Vec<_>>()
        .join(",")
}

/// One target state change, applied only if the transition table allows it.
#[derive(Debug)]
pub(super) struct Move<'a> {
    pub(super) run_id: &'a str,
    pub(super) agent_id: &'a str,
    pub(super) to: TargetState,
    pub(super) reason: Option<String>,
    pub(super) exit_code: Option<i32>,
    /// Kept when already set.
    pub(super) delivered_at: Option<i64>,
    /// Replaces the stored value when given.
    pub(super) started_at: Option<i64>,
    pub(super) finished_at: Option<i64>,
}

/// Applies `change` if the target's current state may move to `change.to`; returns whether
/// it did. The caller refreshes the run status.
pub(super) fn move_target(conn: &Connection, change: &Move<'_>) -> StoreResult<bool> {
    let sql = &MOVE_SQL[change.to as usize];
    let n_changed = conn.prepare_cached(sql)?.execute(params![
        change.run_id,
        change.agent_id,
        change.to.as_str(),
        change.reason,
        change.exit_code,
        change.delivered_at,
        change.started_at,
        change.finished_at,
    ])?;
    Ok(n_changed > 0)
}

/// The conditional UPDATE of [`move_target`] for each target state, indexed by the enum's
/// discriminant and built once, since results apply at tens of thousands per second.
static MOVE_SQL: LazyLock<Vec<String>> = LazyLock::new(|| {
    TargetState::ALL
        .into_iter()
        .enumerate()
        .map(|(idx, to)| {
            debug_assert_eq!(idx, to as usize);
            format!(
                "UPDATE run_targets SET state = ?3, reason = ?4, exit_code = ?5,
                     delivered_at = COALESCE(delivered_at, ?6),
                     started_at = COALESCE(?7, started_at), finished_at = ?8
                 WHERE run_id = ?1 AND agent_id = ?2 AND state IN ({})",
                crate::state::predecessors_sql(to)
            )
        })
        .collect()
});

/// Recomputes the run's stored status from its targets.
pub(super) fn refresh_status(conn: &Connection, run_id: &str) -> StoreResult<()> {
    let open = open_states_sql();
    let sql = format!(
        "UPDATE runs SET status = CASE
             WHEN killed_at IS NOT NULL THEN 'killed'
             WHEN NOT EXISTS (SELECT 1 FROM run_targets t
                 WHERE t.run_id = runs.run_id AND t.state IN ({open})) THEN 'done'
             WHEN EXISTS (SELECT 1 FROM run_targets t
                 WHERE t.run_id = runs.run_id AND t.state <> 'queued') THEN 'running'
             ELSE 'queued' END
         WHERE run_id = ?1"
    );
    conn.prepare_cached(&sql)?.execute([run_id])?;
    Ok(())
}

fn open_states_sql() -> String {
    TargetState::ALL
        .into_iter()
        .filter(|state| !state.is_final())
        .map(|state| format!("'{}'", state.as_str()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether (run, agent) is a target; `None` when the run itself does not exist.
pub(super) fn target_exists(
    conn: &Connection,
    run_id: &str,
    agent_id: &str,
) -> StoreResult<Option<bool>> {
    let mut stmt =
        conn.prepare_cached("SELECT 1 FROM run_targets WHERE run_id = ?1 AND agent_id = ?2")?;
    if stmt.exists(params![run_id, agent_id])? {
        return Ok(Some(true));
    }
    let mut stmt = conn.prepare_cached("SELECT 1 FROM runs WHERE run_id = ?1")?;
    Ok(stmt.exists([run_id])?.then_some(false))
}

fn ensure_run(conn: &Connection, run_id: &str) -> StoreResult<()> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM runs WHERE run_id = ?1")?;
    if stmt.exists([run_id])? {
        Ok(())
    } else {
        Err(StoreError::NotFound(format!("run {run_id}")))
    }
}

const RUN_COLUMNS: &str = "r.run_id, r.job_id, r.job_version, r.created_at, r.created_by,
    r.targets_spec, r.deadline, r.scheduled, r.status, r.killed_at, r.killed_by,
    r.schedule_name, r.during_freeze";

fn decode_run(row: &Row<'_>) -> StoreResult<Run> {
    let status: String = row.get(8)?;
    Ok(Run {
        run_id: sql::parse_id(&row.get::<_, String>(0)?)?,
        job_id: sql::parse_id(&row.get::<_, String>(1)?)?,
        job_version: sql::to_version(row.get(2)?)?,
        created_at: from_ms(row.get(3)?)?,
        created_by: row.get(4)?,
        targets_spec: sql::from_json(&row.get::<_, String>(5)?)?,
        deadline: opt_from_ms(row.get(6)?)?,
        scheduled: row.get(7)?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| StoreError::other(format!("stored run status {status:?} is unknown")))?,
        killed_at: opt_from_ms(row.get(9)?)?,
        killed_by: row.get(10)?,
        schedule_name: row.get(11)?,
        during_freeze: row.get(12)?,
    })
}

/// One run with its per-state counts.
pub(super) fn get_run(conn: &Connection, run_id: &RunId) -> StoreResult<RunDetail> {
    let run = conn
        .query_row(
            &format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.run_id = ?1"),
            [run_id.to_string()],
            |row| Ok(decode_run(row)),
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("run {run_id}")))??;
    let counts = run_counts(conn, &run_id.to_string())?;
    Ok(RunDetail { run, counts })
}

/// Targets per state, one query.
pub(super) fn run_counts(conn: &Connection, run_id: &str) -> StoreResult<RunCounts> {
    let mut stmt = conn.prepare_cached(
        "SELECT state, COUNT(*) FROM run_targets WHERE run_id = ?1 GROUP BY state",
    )?;
    let mut rows = stmt.query([run_id])?;
    let mut by_state = Vec::new();
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        let state = TargetState::parse(&name)
            .ok_or_else(|| StoreError::other(format!("stored target state {name:?} is unknown")))?;
        by_state.push((state, row.get::<_, u64>(1)?));
    }
    by_state.sort();
    Ok(RunCounts { by_state })
}

/// Runs matching `query`, newest first.
pub(super) fn list_runs(conn: &Connection, query: &RunQuery) -> StoreResult<Paged<Run>> {
    let mut filter = Filter::default();
    if let Some(job_id) = &query.job_id {
        filter.and("r.job_id = ?", job_id.as_str().to_string());
    }
    if let Some(status) = query.status {
        filter.and("r.status = ?", status.as_str().to_string());
    }
    if let Some(created_by) = &query.created_by {
        filter.and("r.created_by = ?", created_by.clone());
    }
    if let Some(agent_id) = &query.agent_id {
        filter.and(
            "r.run_id IN (SELECT run_id FROM run_targets WHERE agent_id = ?)",
            agent_id.as_str().to_string(),
        );
    }
    if let Some(scheduled) = query.scheduled {
        filter.and("r.scheduled = ?", scheduled);
    }
    if let Some(from) = query.created_from {
        filter.and("r.created_at >= ?", to_ms(from));
    }
    if let Some(until) = query.created_until {
        filter.and("r.created_at < ?", to_ms(until));
    }
    sql::paged(
        conn,
        RUN_COLUMNS,
        "FROM runs r",
        "r.created_at DESC, r.run_id DESC",
        &filter,
        query.page,
        decode_run,
    )
}

const TARGET_COLUMNS: &str = "run_id, agent_id, state, reason, exit_code, command_seq,
    queued_at, delivered_at, started_at, finished_at, wave, released_at";

fn decode_target(row: &Row<'_>) -> StoreResult<Target> {
    let state: String = row.get(2)?;
    Ok(Target {
        run_id: sql::parse_id(&row.get::<_, String>(0)?)?,
        agent_id: sql::parse_id(&row.get::<_, String>(1)?)?,
        state: TargetState::parse(&state).ok_or_else(|| {
            StoreError::other(format!("stored target state {state:?} is unknown"))
        })?,
        reason: row.get(3)?,
        exit_code: row.get(4)?,
        command_seq: row.get(5)?,
        queued_at: from_ms(row.get(6)?)?,
        delivered_at: opt_from_ms(row.get(7)?)?,
        started_at: opt_from_ms(row.get(8)?)?,
        finished_at: opt_from_ms(row.get(9)?)?,
        wave: row
            .get::<_, Option<i64>>(10)?
            .map(sql::to_version)
            .transpose()?,
        released_at: opt_from_ms(row.get(11)?)?,
    })
}

/// A run's targets, by agent id. `NotFound` for an unknown run.
pub(super) fn list_targets(
    conn: &Connection,
    run_id: &RunId,
    query: &TargetQuery,
) -> StoreResult<Paged<Target>> {
    let run_id = run_id.to_string();
    ensure_run(conn, &run_id)?;
    let mut filter = Filter::default();
    filter.and("run_id = ?", run_id);
    if let Some(state) = query.state {
        filter.and("state = ?", state.as_str().to_string());
    }
    sql::paged(
        conn,
        TARGET_COLUMNS,
        "FROM run_targets",
        "agent_id",
        &filter,
        query.page,
        decode_target,
    )
}

/// An agent's targets, most recent first: the "recent runs" of the agent detail.
pub(super) fn agent_targets(
    conn: &Connection,
    agent_id: &AgentId,
    page: Page,
) -> StoreResult<Paged<Target>> {
    let mut filter = Filter::default();
    filter.and("agent_id = ?", agent_id.as_str().to_string());
    sql::paged(
        conn,
        TARGET_COLUMNS,
        "FROM run_targets",
        "queued_at DESC, run_id DESC",
        &filter,
        page,
        decode_target,
    )
}
