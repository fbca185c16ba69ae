//! API tokens: long-lived credentials an account creates for scripts, authenticated by the
//! hash of their secret, listed and revoked. Enrollment tokens, which admit agents rather
//! than people, are in `tokens.rs`.
//!
//! Authentication returns the owner's current state with the token rather than refusing a
//! disabled owner here, so the server decides in one place what a token may do (refuse it,
//! or cap its role at the owner's).

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::accounts;
use super::sql::{self, Filter};
use crate::error::{StoreError, StoreResult};
use crate::model::accounts::{ApiToken, NewApiToken, TokenAuth};
use crate::page::{Page, Paged};
use crate::time::{from_ms, opt_from_ms, opt_to_ms, to_ms};

/// The columns [`decode`] reads, in order.
const TOKEN_COLUMNS: &str = "t.token_id, t.name, t.username, t.role, t.created_at,
    t.expires_at, t.last_used_at, t.revoked_at";

/// Stores a new token; `NotFound` without its owner, `Conflict` when its id or hash exists.
pub(super) fn create(conn: &Connection, token: &NewApiToken) -> StoreResult<()> {
    accounts::require(conn, &token.username)?;
    let inserted = conn.execute(
        "INSERT INTO api_tokens (token_id, token_hash, name, username, role, created_at,
             expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT DO NOTHING",
        params![
            token.token_id,
            token.token_hash,
            token.name,
            token.username,
            token.role.as_str(),
            to_ms(token.created_at),
            opt_to_ms(token.expires_at),
        ],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "API token {} already exists",
            token.token_id
        )));
    }
    Ok(())
}

/// The valid (not revoked, not expired) token with this hash, with its owner's state.
pub(super) fn find_valid(
    conn: &Connection,
    token_hash: &str,
    now: jiff::Timestamp,
) -> StoreResult<TokenAuth> {
    let found = conn
        .query_row(
            &format!(
                "SELECT {TOKEN_COLUMNS}, a.disabled, a.role
                 FROM api_tokens t JOIN accounts a ON a.username = t.username
                 WHERE t.token_hash = ?1 AND t.revoked_at IS NULL
                     AND (t.expires_at IS NULL OR t.expires_at > ?2)"
            ),
            params![token_hash, to_ms(now)],
            |row| Ok(decode_auth(row)),
        )
        .optional()?;
    found.ok_or_else(|| StoreError::NotFound("valid API token".to_string()))?
}

/// Records a use of a token.
pub(super) fn touch(conn: &Connection, token_id: &str, now: jiff::Timestamp) -> StoreResult<()> {
    conn.execute(
        "UPDATE api_tokens SET last_used_at = MAX(COALESCE(last_used_at, 0), ?2) WHERE token_id = ?1",
        params![token_id, to_ms(now)],
    )?;
    Ok(())
}

/// Tokens, newest first, of one owner or of everyone.
pub(super) fn list(
    conn: &Connection,
    username: Option<&str>,
    page: Page,
) -> StoreResult<Paged<ApiToken>> {
    let mut filter = Filter::default();
    if let Some(username) = username {
        filter.and("t.username = ?", username.to_string());
    }
    sql::paged(
        conn,
        TOKEN_COLUMNS,
        "FROM api_tokens t",
        "t.created_at DESC, t.token_id",
        &filter,
        page,
        decode,
    )
}

/// One token.
pub(super) fn get(conn: &Connection, token_id: &str) -> StoreResult<ApiToken> {
    conn.query_row(
        &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens t WHERE t.token_id = ?1"),
        [token_id],
        |row| Ok(decode(row)),
    )
    .optional()?
    .ok_or_else(|| not_found(token_id))?
}

/// Revokes a token; revoking twice keeps the first time.
pub(super) fn revoke(conn: &Connection, token_id: &str, now: jiff::Timestamp) -> StoreResult<()> {
    let changed = conn.execute(
        "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE token_id = ?1",
        params![token_id, to_ms(now)],
    )?;
    if changed == 0 {
        return Err(not_found(token_id));
    }
    Ok(())
}

fn not_found(token_id: &str) -> StoreError {
    StoreError::NotFound(format!("API token {token_id}"))
}

fn decode(row: &Row<'_>) -> StoreResult<ApiToken> {
    Ok(ApiToken {
        token_id: row.get(0)?,
        name: row.get(1)?,
        username: row.get(2)?,
        role: sql::parse_role(&row.get::<_, String>(3)?)?,
        created_at: from_ms(row.get(4)?)?,
        expires_at: opt_from_ms(row.get(5)?)?,
        last_used_at: opt_from_ms(row.get(6)?)?,
        revoked_at: opt_from_ms(row.get(7)?)?,
    })
}

fn decode_auth(row: &Row<'_>) -> StoreResult<TokenAuth> {
    Ok(TokenAuth {
        token: decode(row)?,
        owner_disabled: row.get(8)?,
        owner_role: sql::parse_role(&row.get::<_, String>(9)?)?,
    })
}
