//! Browser sessions: created at sign-in, read with their account's current state on every
//! request, touched, and deleted at sign-out, by "sign out everywhere" or by the sweeper.
//!
//! A session is keyed by the sha256 of its cookie; the cookie never reaches the store, and
//! neither the hash nor the cookie appears in an error message. Expiry is checked when a
//! session is read, against the caller's clock, so a row the sweeper has not removed yet
//! is already refused.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{accounts, sql};
use crate::error::{StoreError, StoreResult};
use crate::model::accounts::{NewSession, SessionInfo};
use crate::time::{from_ms, to_ms};

/// The columns [`decode`] reads, in order, from `sessions s JOIN accounts a`.
const SESSION_COLUMNS: &str = "s.username, a.role, a.disabled, a.must_change_password,
    a.totp_secret IS NOT NULL, s.created_at, s.expires_at, s.last_seen_at, s.mfa_passed";

/// Stores a new session; `NotFound` without its account, `Conflict` for a hash in use.
pub(super) fn create(conn: &Connection, session: &NewSession) -> StoreResult<()> {
    accounts::require(conn, &session.username)?;
    let inserted = conn.execute(
        "INSERT INTO sessions (session_hash, username, created_at, expires_at, last_seen_at,
             source, mfa_passed)
         VALUES (?1, ?2, ?3, ?4, ?3, ?5, ?6)
         ON CONFLICT DO NOTHING",
        params![
            session.session_hash,
            session.username,
            to_ms(session.created_at),
            to_ms(session.expires_at),
            session.source,
            session.mfa_passed,
        ],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict("session already exists".to_string()));
    }
    Ok(())
}

/// A session that has not reached `expires_at`, with its account's current state.
pub(super) fn get(
    conn: &Connection,
    session_hash: &str,
    now: jiff::Timestamp,
) -> StoreResult<SessionInfo> {
    conn.query_row(
        &format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s JOIN accounts a ON a.username = s.username
             WHERE s.session_hash = ?1 AND s.expires_at > ?2"
        ),
        params![session_hash, to_ms(now)],
        |row| Ok(decode(row)),
    )
    .optional()?
    .ok_or_else(not_found)?
}

/// Records a request at `now`; an older `now` (a slow concurrent request) is ignored.
pub(super) fn touch(
    conn: &Connection,
    session_hash: &str,
    now: jiff::Timestamp,
) -> StoreResult<()> {
    let changed = conn.execute(
        "UPDATE sessions SET last_seen_at = MAX(last_seen_at, ?2) WHERE session_hash = ?1",
        params![session_hash, to_ms(now)],
    )?;
    require_changed(changed)
}

/// Records that the second factor was checked for this session.
pub(super) fn set_mfa_passed(conn: &Connection, session_hash: &str) -> StoreResult<()> {
    let changed = conn.execute(
        "UPDATE sessions SET mfa_passed = 1 WHERE session_hash = ?1",
        [session_hash],
    )?;
    require_changed(changed)
}

/// Deletes one session; a missing one is fine, so sign-out is idempotent.
pub(super) fn delete(conn: &Connection, session_hash: &str) -> StoreResult<()> {
    conn.execute(
        "DELETE FROM sessions WHERE session_hash = ?1",
        [session_hash],
    )?;
    Ok(())
}

/// Deletes an account's sessions except `except_session_hash`; returns how many.
pub(super) fn delete_for_account(
    conn: &Connection,
    username: &str,
    except_session_hash: Option<&str>,
) -> StoreResult<u64> {
    let deleted = conn.execute(
        "DELETE FROM sessions WHERE username = ?1 AND (?2 IS NULL OR session_hash <> ?2)",
        params![username, except_session_hash],
    )?;
    Ok(deleted as u64)
}

/// Deletes sessions that reached `expires_at` by `now` or were last seen before
/// `idle_before`; returns how many.
pub(super) fn delete_expired(
    conn: &Connection,
    now: jiff::Timestamp,
    idle_before: jiff::Timestamp,
) -> StoreResult<u64> {
    let deleted = conn.execute(
        "DELETE FROM sessions WHERE expires_at <= ?1 OR last_seen_at < ?2",
        params![to_ms(now), to_ms(idle_before)],
    )?;
    Ok(deleted as u64)
}

fn require_changed(changed: usize) -> StoreResult<()> {
    if changed == 0 {
        return Err(not_found());
    }
    Ok(())
}

fn not_found() -> StoreError {
    StoreError::NotFound("session".to_string())
}

fn decode(row: &Row<'_>) -> StoreResult<SessionInfo> {
    Ok(SessionInfo {
        username: row.get(0)?,
        role: sql::parse_role(&row.get::<_, String>(1)?)?,
        disabled: row.get(2)?,
        must_change_password: row.get(3)?,
        mfa_enabled: row.get(4)?,
        created_at: from_ms(row.get(5)?)?,
        expires_at: from_ms(row.get(6)?)?,
        last_seen_at: from_ms(row.get(7)?)?,
        mfa_passed: row.get(8)?,
    })
}
