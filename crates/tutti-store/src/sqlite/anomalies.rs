//! Messages that could not be applied are kept here instead of failing the batch: a result
//! for a run that does not exist, from an agent the run did not target, or whose ids
//! disagree. A projector that crashed on such a message would stop every later one.

use rusqlite::{Connection, Row, params};

use super::sql::{self, Filter};
use crate::error::StoreResult;
use crate::model::ingest::{Anomaly, AnomalyKind};
use crate::page::{Page, Paged};
use crate::time::{from_ms, to_ms};

/// One anomaly to record.
#[derive(Debug)]
pub(super) struct NewAnomaly<'a> {
    pub(super) stream: &'a str,
    pub(super) stream_seq: u64,
    pub(super) kind: AnomalyKind,
    pub(super) agent_id: &'a str,
    pub(super) run_id: Option<String>,
    pub(super) at: jiff::Timestamp,
    pub(super) payload: String,
}

/// Records an anomaly once per (stream, sequence); returns false for a redelivery.
pub(super) fn record(conn: &Connection, anomaly: &NewAnomaly<'_>) -> StoreResult<bool> {
    tracing::warn!(
        stream = anomaly.stream,
        stream_seq = anomaly.stream_seq,
        kind = anomaly.kind.as_str(),
        agent_id = anomaly.agent_id,
        run_id = anomaly.run_id.as_deref(),
        "Message recorded as an anomaly instead of being applied."
    );
    let inserted = conn
        .prepare_cached(
            "INSERT INTO anomalies (stream, stream_seq, kind, agent_id, run_id, at, payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (stream, stream_seq) DO NOTHING",
        )?
        .execute(params![
            anomaly.stream,
            anomaly.stream_seq,
            anomaly.kind.as_str(),
            anomaly.agent_id,
            anomaly.run_id,
            to_ms(anomaly.at),
            anomaly.payload,
        ])?;
    Ok(inserted > 0)
}

/// Recorded anomalies, newest first.
pub(super) fn list(conn: &Connection, page: Page) -> StoreResult<Paged<Anomaly>> {
    sql::paged(
        conn,
        "stream, stream_seq, kind, agent_id, run_id, at, payload",
        "FROM anomalies",
        "at DESC, stream, stream_seq DESC",
        &Filter::default(),
        page,
        decode,
    )
}

fn decode(row: &Row<'_>) -> StoreResult<Anomaly> {
    Ok(Anomaly {
        stream: row.get(0)?,
        stream_seq: row.get(1)?,
        kind: row.get(2)?,
        agent_id: row.get(3)?,
        run_id: row.get(4)?,
        at: from_ms(row.get(5)?)?,
        payload: sql::from_json(&row.get::<_, String>(6)?)?,
    })
}
