//! Small helpers shared by the SQLite modules: dynamic filters, paging, JSON, id and role
//! decoding, and the projector position bookkeeping.

use std::str::FromStr;

use rusqlite::types::Value;
use rusqlite::{Connection, Row, params, params_from_iter};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tutti_proto::role::Role;

use crate::error::{StoreError, StoreResult};
use crate::page::{Page, Paged};

/// `AND`-joined conditions with their positional (`?`) parameters, built from a query
/// struct. Clauses are constants of the calling module; only values are parameters.
#[derive(Debug, Default)]
pub(super) struct Filter {
    clauses: Vec<&'static str>,
    params: Vec<Value>,
}

impl Filter {
    /// Adds `clause`, which holds exactly one `?`, bound to `value`.
    pub(super) fn and(&mut self, clause: &'static str, value: impl Into<Value>) {
        self.clauses.push(clause);
        self.params.push(value.into());
    }

    /// Adds `clause` with `?`s bound to `values`, in order.
    pub(super) fn and_many(&mut self, clause: &'static str, values: Vec<Value>) {
        self.clauses.push(clause);
        self.params.extend(values);
    }

    /// `WHERE …`, or nothing.
    pub(super) fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// Counts the rows of `from` (a `FROM … ` clause, joins allowed) matching `filter`, then
/// reads one page of `select` ordered by `order`, decoding each row with `decode`.
pub(super) fn paged<T>(
    conn: &Connection,
    select: &str,
    from: &str,
    order: &str,
    filter: &Filter,
    page: Page,
    decode: impl Fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Paged<T>> {
    let where_sql = filter.where_sql();
    let count_sql = format!("SELECT COUNT(*) {from} {where_sql}");
    let total: u64 = conn.query_row(&count_sql, params_from_iter(filter.params.iter()), |row| {
        row.get(0)
    })?;
    let (limit, offset) = crate::page::page_sql(page);
    let page_sql = format!(
        "SELECT {select} {from} {where_sql} ORDER BY {order} LIMIT {limit} OFFSET {offset}"
    );
    let mut stmt = conn.prepare_cached(&page_sql)?;
    let mut rows = stmt.query(params_from_iter(filter.params.iter()))?;
    let mut items = Vec::new();
    while let Some(row) = rows.next()? {
        items.push(decode(row)?);
    }
    Ok(Paged { items, total })
}

/// A `LIKE` pattern matching `needle` anywhere, with `%`, `_` and `\` escaped; use with
/// `ESCAPE '\'`.
pub(super) fn contains_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Serialises a value for a JSON column.
pub(super) fn to_json<T: Serialize>(value: &T) -> StoreResult<String> {
    Ok(serde_json::to_string(value)?)
}

/// Decodes a JSON column.
pub(super) fn from_json<T: DeserializeOwned>(text: &str) -> StoreResult<T> {
    Ok(serde_json::from_str(text)?)
}

/// Decodes a stored id; a failure means a corrupt row.
pub(super) fn parse_id<T>(text: &str) -> StoreResult<T>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    text.parse()
        .map_err(|err| StoreError::other_with(format!("stored id {text:?} is invalid"), err))
}

/// Decodes a stored role; a failure means a corrupt row.
pub(super) fn parse_role(text: &str) -> StoreResult<Role> {
    text.parse()
        .map_err(|err| StoreError::other_with(format!("stored role {text:?} is invalid"), err))
}

/// Reads a stored `BIGINT` version as a `u32`.
pub(super) fn to_version(version: i64) -> StoreResult<u32> {
    u32::try_from(version)
        .map_err(|err| StoreError::other_with(format!("stored version {version} is invalid"), err))
}

/// Records that a projector has committed up to `stream_seq` on `stream`.
pub(super) fn bump_position(conn: &Connection, stream: &str, stream_seq: u64) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO projector_positions (stream, stream_seq, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (stream) DO UPDATE SET stream_seq = MAX(projector_positions.stream_seq, excluded.stream_seq),
             updated_at = excluded.updated_at",
    )?
    .execute(params![stream, stream_seq, jiff::Timestamp::now().as_millisecond()])?;
    Ok(())
}

/// The highest committed sequence of `stream`, or 0.
pub(super) fn position(conn: &Connection, stream: &str) -> StoreResult<u64> {
    let mut stmt =
        conn.prepare_cached("SELECT stream_seq FROM projector_positions WHERE stream = ?1")?;
    let mut rows = stmt.query([stream])?;
    match rows.next()? {
        Some(row) => Ok(row.get(0)?),
        None => Ok(0),
    }
}

/// The largest stream sequence of a batch.
pub(super) fn max_seq<T>(batch: &[crate::model::ingest::Sequenced<T>]) -> Option<u64> {
    batch.iter().map(|item| item.stream_seq).max()
}
