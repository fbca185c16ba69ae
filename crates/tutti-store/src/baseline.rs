//! Benchmark support for `tutti bench`, never used by the server: the plain-SQLite baseline
//! that the `ingest` scenario compares the real projector with, and a read-only probe that
//! tells a benchmark which targets have been committed.
//!
//! [`PlainResultInserter`] writes the same rows into the same `results` table as
//! `apply_results`, one transaction of prepared `INSERT`s per batch and nothing else (no
//! target check, no de-duplication, no state move, no run status, no projector position),
//! with the store's own connection settings. The ratio of the two is what the projector's
//! bookkeeping costs. [`TargetProbe`] reads through its own read-only connection, so a
//! benchmark can watch the database without going through (and loading) the server.
//! [`enroll_agents`] enrolls a simulated fleet directly in the store, since the projectors
//! apply nothing from an agent that is not enrolled.

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{Connection, OpenFlags, params};
use tutti_proto::result::{Output, ResultStatus, RunResult};
use tutti_proto::{AgentId, CommandId, ResultId, RunId};

use crate::{NewAgent, NewEnrollmentToken, Sequenced, Store, StoreError, StoreResult};

/// Enrolls each of `agents` that is not enrolled yet, with one enrollment token good for
/// all of them, as if each had called the enrollment endpoint at `at`.
pub async fn enroll_agents(store: &Store, agents: &[AgentId], at: Timestamp) -> StoreResult<()> {
    let token_hash = format!("benchmark-{}", at.as_nanosecond());
    let token = NewEnrollmentToken {
        token_id: token_hash.clone(),
        token_hash: token_hash.clone(),
        name: "benchmark".to_string(),
        created_at: at,
        created_by: "tutti bench".to_string(),
        expires_at: at + jiff::SignedDuration::from_hours(24),
        uses: u32::try_from(agents.len()).unwrap_or(u32::MAX).max(1),
        groups: Vec::new(),
    };
    store.create_enrollment_token(token).await?;
    for agent_id in agents {
        let agent = NewAgent {
            agent_id: agent_id.clone(),
            hostname: agent_id.to_string(),
            os: String::new(),
            arch: String::new(),
            version: String::new(),
            enrolled_at: at,
            broker_public_key: None,
        };
        match store.enroll_agent(&token_hash, agent).await {
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// The result both ingest benchmarks (`tutti bench ingest` and the store's criterion bench)
/// push: what an agent reports for `uptime`, a small result with two lines of output.
pub fn uptime_result(
    run_id: RunId,
    agent_id: AgentId,
    command_id: CommandId,
    at: Timestamp,
) -> RunResult {
    RunResult {
        result_id: ResultId::new(&run_id, &agent_id),
        run_id,
        command_id,
        agent_id,
        status: ResultStatus::Succeeded,
        exit_code: Some(0),
        stdout: Output {
            inline: " 12:00:00 up 3 days,  2:04,  1 user,  load average: 0.08, 0.03, 0.01\n"
                .repeat(2),
            total_bytes: 142,
            truncated: None,
            object: None,
        },
        stderr: Output::default(),
        delivered_at: None,
        started_at: Some(at),
        finished_at: at,
    }
}

/// How long a baseline or probe statement waits for the server's writer.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The baseline: plain batched `INSERT`s into `results`.
#[derive(Debug)]
pub struct PlainResultInserter {
    conn: Connection,
}

impl PlainResultInserter {
    /// Opens a writing connection to the SQLite database at `path` (already migrated by
    /// the store), with the store's pragmas.
    pub fn open(path: &Path) -> StoreResult<PlainResultInserter> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(PlainResultInserter { conn })
    }

    /// Inserts `batch` in one transaction of prepared `INSERT`s.
    pub fn insert(&mut self, batch: &[Sequenced<RunResult>]) -> StoreResult<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO results (result_id, run_id, agent_id, stream_seq, command_id, status,
                     skip_reason, exit_code, stdout_inline, stdout_total_bytes, stdout_dropped_bytes,
                     stdout_object, stderr_inline, stderr_total_bytes, stderr_dropped_bytes,
                     stderr_object, started_at, finished_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7, ?8, ?9, NULL, NULL, ?10, ?11, NULL, NULL,
                     ?12, ?13)",
            )?;
            for item in batch {
                let result = &item.message;
                stmt.execute(params![
                    result.result_id.to_string(),
                    result.run_id.to_string(),
                    result.agent_id.as_str(),
                    item.stream_seq,
                    result.command_id.to_string(),
                    result.status.state(),
                    result.exit_code,
                    result.stdout.inline,
                    result.stdout.total_bytes,
                    result.stderr.inline,
                    result.stderr.total_bytes,
                    result.started_at.map(|at| at.as_millisecond()),
                    result.finished_at.as_millisecond(),
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// Read-only queries a benchmark polls while the server writes.
#[derive(Debug)]
pub struct TargetProbe {
    conn: Connection,
}

impl TargetProbe {
    /// Opens a read-only connection to the SQLite database at `path`.
    pub fn open(path: &Path) -> StoreResult<TargetProbe> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(TargetProbe { conn })
    }

    /// The agents whose target of `run_id` has reached a final state (its outcome is
    /// committed), in no particular order.
    pub fn finished_agents(&self, run_id: &RunId) -> StoreResult<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT agent_id FROM run_targets
             WHERE run_id = ?1 AND state NOT IN ('queued', 'delivered', 'running')",
        )?;
        let rows = stmt.query_map(params![run_id.to_string()], |row| row.get(0))?;
        Ok(rows.collect::<Result<Vec<String>, _>>()?)
    }

    /// How many of `agent_id`'s targets have reached a final state.
    pub fn finished_count_for_agent(&self, agent_id: &AgentId) -> StoreResult<u64> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT COUNT(*) FROM run_targets
             WHERE agent_id = ?1 AND state NOT IN ('queued', 'delivered', 'running')",
        )?;
        Ok(stmt.query_row(params![agent_id.as_str()], |row| row.get(0))?)
    }

    /// How many rows the `results` table holds.
    pub fn result_count(&self) -> StoreResult<u64> {
        let mut stmt = self.conn.prepare_cached("SELECT COUNT(*) FROM results")?;
        Ok(stmt.query_row([], |row| row.get(0))?)
    }
}
