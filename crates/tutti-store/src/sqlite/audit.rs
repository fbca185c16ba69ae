//! The audit projector and the audit query. Each record is stored once, keyed by its
//! `TUTTI_AUDIT` stream sequence, so replays after a restart add nothing.

use rusqlite::{Connection, Row, params};
use tutti_proto::audit::{AuditOutcome, AuditRecord};
use tutti_proto::catalog::AUDIT_STREAM;

use super::sql::{self, Filter};
use crate::error::StoreResult;
use crate::model::audit::{AuditEntry, AuditQuery};
use crate::model::ingest::{ApplyOutcome, Sequenced};
use crate::page::Paged;
use crate::time::{from_ms, to_ms};

/// Applies one batch of audit records; the caller runs it in one transaction.
pub(super) fn apply_audit(
    conn: &Connection,
    batch: &[Sequenced<AuditRecord>],
) -> StoreResult<ApplyOutcome> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO audit_log (stream_seq, at, actor, role, action, target, summary, source, outcome)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (stream_seq) DO NOTHING",
    )?;
    let mut outcome = ApplyOutcome::default();
    for item in batch {
        let record = &item.message;
        let inserted = stmt.execute(params![
            item.stream_seq,
            to_ms(record.at),
            record.actor,
            record.role,
            record.action,
            record.target,
            record.summary.to_string(),
            record.source,
            outcome_name(record.outcome)?,
        ])?;
        if inserted > 0 {
            outcome.applied += 1;
        } else {
            outcome.duplicates += 1;
        }
    }
    if let Some(max_seq) = sql::max_seq(batch) {
        sql::bump_position(conn, AUDIT_STREAM, max_seq)?;
    }
    Ok(outcome)
}

fn outcome_name(outcome: AuditOutcome) -> StoreResult<String> {
    Ok(match serde_json::to_value(outcome)? {
        serde_json::Value::String(name) => name,
        other => other.to_string(),
    })
}

/// Audit entries matching `query`, newest first.
pub(super) fn query_audit(conn: &Connection, query: &AuditQuery) -> StoreResult<Paged<AuditEntry>> {
    let mut filter = Filter::default();
    if let Some(actor) = &query.actor {
        filter.and("actor = ?", actor.clone());
    }
    if let Some(action) = &query.action {
        filter.and("action = ?", action.clone());
    }
    if let Some(target) = &query.target {
        filter.and("target = ?", target.clone());
    }
    if let Some(from) = query.from {
        filter.and("at >= ?", to_ms(from));
    }
    if let Some(until) = query.until {
        filter.and("at < ?", to_ms(until));
    }
    sql::paged(
        conn,
        "stream_seq, at, actor, role, action, target, summary, source, outcome",
        "FROM audit_log",
        "at DESC, stream_seq DESC",
        &filter,
        query.page,
        decode,
    )
}

fn decode(row: &Row<'_>) -> StoreResult<AuditEntry> {
    let outcome: String = row.get(8)?;
    Ok(AuditEntry {
        stream_seq: row.get(0)?,
        record: AuditRecord {
            at: from_ms(row.get(1)?)?,
            actor: row.get(2)?,
            role: row.get(3)?,
            action: row.get(4)?,
            target: row.get(5)?,
            summary: sql::from_json(&row.get::<_, String>(6)?)?,
            source: row.get(7)?,
            outcome: serde_json::from_value(serde_json::Value::String(outcome))?,
        },
    })
}
