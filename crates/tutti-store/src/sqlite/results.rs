//! The results projector and the result queries.
//!
//! [`apply_results`] stores each result once, keyed by its result id (`<run>:<agent>`),
//! and moves the target to the reported state when the transition table allows it. A
//! redelivered result is a no-op. Output is stored as received: the inline text, its
//! truncation, and the object-store reference, which the server resolves when it shows
//! the detail (the store never talks to NATS).

use std::collections::BTreeSet;
use std::sync::LazyLock;

use rusqlite::{Connection, OptionalExtension, Row, Statement, params};
use tutti_proto::catalog::RESULTS_STREAM;
use tutti_proto::result::{ObjectRef, Output, ResultStatus, RunResult, SkipReason, Truncation};
use tutti_proto::{AgentId, ResultId, RunId};

use super::anomalies::{self, NewAnomaly};
use super::sql::{self, Filter};
use super::{agents, runs};
use crate::error::{StoreError, StoreResult};
use crate::model::ingest::{AnomalyKind, ApplyOutcome, Sequenced};
use crate::model::runs::StoredResult;
use crate::page::{Page, Paged};
use crate::state::TargetState;
use crate::time::{from_ms, opt_from_ms, opt_to_ms, to_ms};

#[cfg(test)]
mod tests;

/// Applies one batch of results; the caller runs it in one transaction.
///
/// The hot path is two statements per result, both prepared once per batch: the target's
/// conditional UPDATE ([`MOVE_TARGET`]), which also proves the target exists and its agent
/// is enrolled, then a plain INSERT. Only when the target does not move (a redelivery, a
/// late result, an unknown status, an agent that is not enrolled, or no such target) does
/// the slower path find out which, so the common case pays no extra lookup (see
/// `benches/ingest.rs`). Each touched run's status is refreshed once, after the whole batch.
pub(super) fn apply_results(
    conn: &Connection,
    batch: &[Sequenced<RunResult>],
) -> StoreResult<ApplyOutcome> {
    let mut outcome = ApplyOutcome::default();
    let mut touched_runs = BTreeSet::new();
    // Prepared once per batch: the statement cache's lookup hashes the whole SQL text.
    let mut move_target = conn.prepare_cached(&MOVE_TARGET)?;
    let mut insert = conn.prepare_cached(&INSERT_RESULT)?;
    let mut insert_if_targeted = conn.prepare_cached(&INSERT_RESULT_IF_TARGETED)?;
    for item in batch {
        let run_id = item.message.run_id.to_string();
        let consistent = item.message.ids_are_consistent();
        if consistent && move_for_result(&mut move_target, &item.message, &run_id)? {
            outcome.transitions += 1;
            if insert_result(&mut insert, item, &run_id)? {
                outcome.applied += 1;
            }
            touched_runs.insert(run_id);
        } else if consistent && insert_result(&mut insert_if_targeted, item, &run_id)? {
            outcome.applied += 1;
        } else {
            match unapplied(conn, &item.message, &run_id)? {
                Unapplied::Duplicate => outcome.duplicates += 1,
                Unapplied::UnknownAgent => {
                    outcome.unknown_agents.push(item.message.agent_id.clone());
                }
                Unapplied::Anomaly(kind) => record_anomaly(conn, item, kind, &mut outcome)?,
            }
        }
    }
    for run_id in &touched_runs {
        runs::refresh_status(conn, run_id)?;
    }
    if let Some(max_seq) = sql::max_seq(batch) {
        sql::bump_position(conn, RESULTS_STREAM, max_seq)?;
    }
    Ok(outcome)
}

/// A result's conditional target UPDATE: `runs::move_target` for the states a result
/// reports, with the state condition as a `CASE` on the new state (`?3`) rather than one
/// `IN` list per new state, so that one statement serves every status.
///
/// `CASE state WHEN <predecessor> THEN 1 … ELSE 0 END` is `state IN (<predecessors>)`
/// spelled so that SQLite compares in place: for an `IN` list of more than two constants
/// it builds a temporary index at every execution. That and a statement-cache lookup per
/// result were about 1.8 µs of the ~3 µs each UPDATE took (README, Benchmark).
/// `delivered_at` is only filled when still empty: an agent that folded its `received`
/// event into the result sends the delivery time with it. A deleted agent's targets stay
/// (its history), so the target's existence does not prove the agent is enrolled:
/// [`ENROLLED`] does.
static MOVE_TARGET: LazyLock<String> = LazyLock::new(|| {
    let cases: String = TargetState::ALL
        .into_iter()
        .filter(|to| to.is_reported())
        .map(|to| {
            let predecessors: String = TargetState::predecessors(to)
                .into_iter()
                .map(|from| format!(" WHEN '{}' THEN 1", from.as_str()))
                .collect();
            format!(
                " WHEN '{}' THEN CASE state{predecessors} ELSE 0 END",
                to.as_str()
            )
        })
        .collect();
    format!(
        "UPDATE run_targets SET state = ?3, reason = ?4, exit_code = ?5,
             started_at = COALESCE(?6, started_at), finished_at = ?7,
             delivered_at = COALESCE(delivered_at, ?8)
         WHERE run_id = ?1 AND agent_id = ?2 AND CASE ?3{cases} ELSE 0 END
             AND {ENROLLED}"
    )
});

/// Why a result changed nothing.
enum Unapplied {
    /// Stored already, or its target is past the reported state.
    Duplicate,
    /// No enrolled agent has its id: dropped without a trace in the database.
    UnknownAgent,
    /// Recorded in `anomalies`.
    Anomaly(AnomalyKind),
}

fn unapplied(conn: &Connection, result: &RunResult, run_id: &str) -> StoreResult<Unapplied> {
    if !agents::is_enrolled(conn, &result.agent_id)? {
        return Ok(Unapplied::UnknownAgent);
    }
    if !result.ids_are_consistent() {
        return Ok(Unapplied::Anomaly(AnomalyKind::InconsistentIds));
    }
    Ok(
        match runs::target_exists(conn, run_id, result.agent_id.as_str())? {
            Some(true) => Unapplied::Duplicate,
            Some(false) => Unapplied::Anomaly(AnomalyKind::NotTargeted),
            None => Unapplied::Anomaly(AnomalyKind::UnknownRun),
        },
    )
}

fn record_anomaly(
    conn: &Connection,
    item: &Sequenced<RunResult>,
    kind: AnomalyKind,
    outcome: &mut ApplyOutcome,
) -> StoreResult<()> {
    let anomaly = NewAnomaly {
        stream: RESULTS_STREAM,
        stream_seq: item.stream_seq,
        kind,
        agent_id: item.message.agent_id.as_str(),
        run_id: Some(item.message.run_id.to_string()),
        at: item.message.finished_at,
        payload: sql::to_json(&item.message)?,
    };
    if anomalies::record(conn, &anomaly)? {
        outcome.anomalies += 1;
    } else {
        outcome.duplicates += 1;
    }
    Ok(())
}

const INSERT_COLUMNS: &str = "INSERT INTO results (result_id, run_id, agent_id, stream_seq,
    command_id, status, skip_reason, exit_code, stdout_inline, stdout_total_bytes,
    stdout_dropped_bytes, stdout_object, stderr_inline, stderr_total_bytes,
    stderr_dropped_bytes, stderr_object, started_at, finished_at)";

/// Inserts a result whose target is known to exist.
const VALUES_TAIL: &str = "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,
    ?14, ?15, ?16, ?17, ?18)
    ON CONFLICT (result_id) DO NOTHING";

/// Inserts a result only if (run, agent) is a target and the agent is enrolled.
const IF_TARGETED_TAIL: &str = "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,
    ?12, ?13, ?14, ?15, ?16, ?17, ?18
    WHERE EXISTS (SELECT 1 FROM run_targets WHERE run_id = ?2 AND agent_id = ?3)
        AND EXISTS (SELECT 1 FROM agents WHERE agent_id = ?3 AND enrolled_at IS NOT NULL)
    ON CONFLICT (result_id) DO NOTHING";

/// The condition, on [`MOVE_TARGET`]'s parameters, that the reporting agent is enrolled
/// (see `agents::is_enrolled`).
const ENROLLED: &str =
    "EXISTS (SELECT 1 FROM agents WHERE agent_id = ?2 AND enrolled_at IS NOT NULL)";

static INSERT_RESULT: LazyLock<String> =
    LazyLock::new(|| format!("{INSERT_COLUMNS} {VALUES_TAIL}"));
static INSERT_RESULT_IF_TARGETED: LazyLock<String> =
    LazyLock::new(|| format!("{INSERT_COLUMNS} {IF_TARGETED_TAIL}"));

/// Inserts the result row with `stmt` (one of the two statements above); false when
/// nothing was inserted (the result id exists, or the conditional insert found no target).
fn insert_result(
    stmt: &mut Statement<'_>,
    item: &Sequenced<RunResult>,
    run_id: &str,
) -> StoreResult<bool> {
    let result = &item.message;
    let skip_reason = skip_reason(&result.status)?;
    let inserted = stmt.execute(params![
        result.result_id.to_string(),
        run_id,
        result.agent_id.as_str(),
        item.stream_seq,
        result.command_id.to_string(),
        result.status.state(),
        skip_reason,
        result.exit_code,
        result.stdout.inline,
        result.stdout.total_bytes,
        result.stdout.truncated.map(|cut| cut.dropped_bytes),
        object_json(&result.stdout)?,
        result.stderr.inline,
        result.stderr.total_bytes,
        result.stderr.truncated.map(|cut| cut.dropped_bytes),
        object_json(&result.stderr)?,
        opt_to_ms(result.started_at),
        to_ms(result.finished_at),
    ])?;
    Ok(inserted > 0)
}

/// Moves the result's target with [`MOVE_TARGET`]; false when it did not move (the
/// status is unknown, the transition table forbids it, or there is no such target).
fn move_for_result(
    stmt: &mut Statement<'_>,
    result: &RunResult,
    run_id: &str,
) -> StoreResult<bool> {
    let Some(to) = TargetState::from_result(&result.status) else {
        return Ok(false);
    };
    let n_changed = stmt.execute(params![
        run_id,
        result.agent_id.as_str(),
        to.as_str(),
        skip_reason(&result.status)?,
        result.exit_code,
        opt_to_ms(result.started_at),
        to_ms(result.finished_at),
        opt_to_ms(result.delivered_at),
    ])?;
    Ok(n_changed > 0)
}

/// The stored text of a skip reason: its wire name, or the unknown reason verbatim.
fn skip_reason(status: &ResultStatus) -> StoreResult<Option<String>> {
    let ResultStatus::Skipped { reason } = status else {
        return Ok(None);
    };
    match serde_json::to_value(reason)? {
        serde_json::Value::String(text) => Ok(Some(text)),
        other => Ok(Some(other.to_string())),
    }
}

fn object_json(output: &Output) -> StoreResult<Option<String>> {
    output.object.as_ref().map(sql::to_json).transpose()
}

const RESULT_COLUMNS: &str = "result_id, run_id, agent_id, stream_seq, command_id, status,
    skip_reason, exit_code, stdout_inline, stdout_total_bytes, stdout_dropped_bytes,
    stdout_object, stderr_inline, stderr_total_bytes, stderr_dropped_bytes, stderr_object,
    started_at, finished_at";

fn decode(row: &Row<'_>) -> StoreResult<StoredResult> {
    let result = RunResult {
        result_id: sql::parse_id(&row.get::<_, String>(0)?)?,
        run_id: sql::parse_id(&row.get::<_, String>(1)?)?,
        agent_id: sql::parse_id(&row.get::<_, String>(2)?)?,
        command_id: sql::parse_id(&row.get::<_, String>(4)?)?,
        status: decode_status(&row.get::<_, String>(5)?, row.get(6)?)?,
        exit_code: row.get(7)?,
        stdout: decode_output(row, 8)?,
        stderr: decode_output(row, 12)?,
        delivered_at: None,
        started_at: opt_from_ms(row.get(16)?)?,
        finished_at: from_ms(row.get(17)?)?,
    };
    Ok(StoredResult {
        stream_seq: row.get(3)?,
        result,
    })
}

fn decode_status(state: &str, reason: Option<String>) -> StoreResult<ResultStatus> {
    Ok(match state {
        "succeeded" => ResultStatus::Succeeded,
        "failed" => ResultStatus::Failed,
        "timed_out" => ResultStatus::TimedOut,
        "killed" => ResultStatus::Killed,
        "interrupted" => ResultStatus::Interrupted,
        "skipped" => {
            let text = reason.unwrap_or_default();
            let reason: SkipReason = serde_json::from_value(serde_json::Value::String(text))?;
            ResultStatus::Skipped { reason }
        }
        _ => ResultStatus::Unknown,
    })
}

/// Reads the four output columns starting at `first`.
fn decode_output(row: &Row<'_>, first: usize) -> StoreResult<Output> {
    let object: Option<String> = row.get(first + 3)?;
    Ok(Output {
        inline: row.get(first)?,
        total_bytes: row.get(first + 1)?,
        truncated: row
            .get::<_, Option<u64>>(first + 2)?
            .map(|dropped_bytes| Truncation { dropped_bytes }),
        object: object
            .as_deref()
            .map(sql::from_json::<ObjectRef>)
            .transpose()?,
    })
}

/// A run's results, by agent id, optionally of one agent.
pub(super) fn list_results(
    conn: &Connection,
    run_id: &RunId,
    agent_id: Option<&AgentId>,
    page: Page,
) -> StoreResult<Paged<StoredResult>> {
    // A run's results are the primary-key range `<run>:` up to `<run>;` (';' follows ':').
    let mut filter = Filter::default();
    filter.and("result_id > ?", format!("{run_id}:"));
    filter.and("result_id < ?", format!("{run_id};"));
    if let Some(agent_id) = agent_id {
        filter.and("result_id = ?", ResultId::new(run_id, agent_id).to_string());
    }
    sql::paged(
        conn,
        RESULT_COLUMNS,
        "FROM results",
        "result_id",
        &filter,
        page,
        decode,
    )
}

/// One result by id.
pub(super) fn get_result(conn: &Connection, result_id: &ResultId) -> StoreResult<StoredResult> {
    conn.query_row(
        &format!("SELECT {RESULT_COLUMNS} FROM results WHERE result_id = ?1"),
        [result_id.to_string()],
        |row| Ok(decode(row)),
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("result {result_id}")))?
}
