//! Enrollment tokens: created with an expiry, a use count and the groups they assign,
//! consumed atomically by enrollment, listed and revoked. Only the hash of a token's secret
//! is stored; the groups are a JSON array (`migrations/0002_enrollment_token_groups.sql`).

use rusqlite::{Connection, OptionalExtension, Row, params};
use tutti_proto::GroupName;

use super::sql::{self, Filter};
use crate::error::{StoreError, StoreResult};
use crate::model::tokens::{EnrollmentToken, NewEnrollmentToken};
use crate::page::{Page, Paged};
use crate::time::{from_ms, opt_from_ms, to_ms};

/// Stores a new token; `Conflict` when its id or hash exists.
pub(super) fn create(conn: &Connection, token: &NewEnrollmentToken) -> StoreResult<()> {
    let inserted = conn.execute(
        "INSERT INTO enrollment_tokens (token_id, token_hash, name, created_at, created_by,
             expires_at, uses_left, groups)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT DO NOTHING",
        params![
            token.token_id,
            token.token_hash,
            token.name,
            to_ms(token.created_at),
            token.created_by,
            to_ms(token.expires_at),
            token.uses,
            serde_json::to_string(&token.groups)?,
        ],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "enrollment token {} already exists",
            token.token_id
        )));
    }
    Ok(())
}

/// Takes one use of a valid token and returns the groups it assigns, in one conditional
/// update so two enrollments racing for the last use cannot both win.
pub(super) fn consume(
    conn: &Connection,
    token_hash: &str,
    now: jiff::Timestamp,
) -> StoreResult<Vec<GroupName>> {
    let groups: Option<String> = conn
        .query_row(
            "UPDATE enrollment_tokens SET uses_left = uses_left - 1
             WHERE token_hash = ?1 AND revoked_at IS NULL AND expires_at > ?2 AND uses_left > 0
             RETURNING groups",
            params![token_hash, to_ms(now)],
            |row| row.get(0),
        )
        .optional()?;
    let Some(groups) = groups else {
        return Err(StoreError::NotFound("valid enrollment token".to_string()));
    };
    Ok(serde_json::from_str(&groups)?)
}

/// Revokes a token; revoking twice keeps the first time.
pub(super) fn revoke(conn: &Connection, token_id: &str, now: jiff::Timestamp) -> StoreResult<()> {
    let changed = conn.execute(
        "UPDATE enrollment_tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE token_id = ?1",
        params![token_id, to_ms(now)],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!("enrollment token {token_id}")));
    }
    Ok(())
}

/// Tokens, newest first.
pub(super) fn list(conn: &Connection, page: Page) -> StoreResult<Paged<EnrollmentToken>> {
    sql::paged(
        conn,
        "token_id, name, created_at, created_by, expires_at, uses_left, revoked_at, groups",
        "FROM enrollment_tokens",
        "created_at DESC, token_id",
        &Filter::default(),
        page,
        decode,
    )
}

fn decode(row: &Row<'_>) -> StoreResult<EnrollmentToken> {
    Ok(EnrollmentToken {
        token_id: row.get(0)?,
        name: row.get(1)?,
        created_at: from_ms(row.get(2)?)?,
        created_by: row.get(3)?,
        expires_at: from_ms(row.get(4)?)?,
        uses_left: row.get(5)?,
        revoked_at: opt_from_ms(row.get(6)?)?,
        groups: serde_json::from_str(&row.get::<_, String>(7)?)?,
    })
}
