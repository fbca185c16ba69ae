//! Accounts: created, read, listed and updated, with their password and their TOTP second
//! factor and its recovery codes. Sessions (`sessions.rs`) and API tokens
//! (`api_tokens.rs`) belong to an account and use [`require`] to check that it exists.
//!
//! Every secret arrives hashed by the server except the TOTP secret
//! (`migrations/0003_accounts.sql` says why). A recovery code is spent by one conditional
//! `UPDATE`, so two sign-ins racing with the same code cannot both succeed.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::sql::{self, Filter};
use crate::error::{StoreError, StoreResult};
use crate::model::accounts::{Account, AccountCredentials, AccountUpdate, NewAccount};
use crate::page::{Page, Paged};
use crate::time::{from_ms, to_ms};

/// The columns [`decode`] reads, in order.
const ACCOUNT_COLUMNS: &str = "username, role, disabled, must_change_password,
    totp_secret IS NOT NULL, created_at, created_by, updated_at, password_changed_at";

/// How many accounts exist.
pub(super) fn count(conn: &Connection) -> StoreResult<u64> {
    Ok(conn.query_row("SELECT COUNT(*) FROM accounts", [], |row| row.get(0))?)
}

/// Stores a new account; `Conflict` when the username exists.
pub(super) fn create(conn: &Connection, account: &NewAccount) -> StoreResult<()> {
    let inserted = conn.execute(
        "INSERT INTO accounts (username, password_hash, role, must_change_password,
             created_at, created_by, updated_at, password_changed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5, ?5)
         ON CONFLICT DO NOTHING",
        params![
            account.username,
            account.password_hash,
            account.role.as_str(),
            account.must_change_password,
            to_ms(account.created_at),
            account.created_by,
        ],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "account {} already exists",
            account.username
        )));
    }
    Ok(())
}

/// `NotFound` unless the account exists.
pub(super) fn require(conn: &Connection, username: &str) -> StoreResult<()> {
    let found: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM accounts WHERE username = ?1",
            [username],
            |row| row.get(0),
        )
        .optional()?;
    found.map(|_| ()).ok_or_else(|| not_found(username))
}

/// One account.
pub(super) fn get(conn: &Connection, username: &str) -> StoreResult<Account> {
    conn.query_row(
        &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE username = ?1"),
        [username],
        |row| Ok(decode(row)),
    )
    .optional()?
    .ok_or_else(|| not_found(username))?
}

/// One account with its password hash and TOTP secrets.
pub(super) fn credentials(conn: &Connection, username: &str) -> StoreResult<AccountCredentials> {
    conn.query_row(
        &format!(
            "SELECT {ACCOUNT_COLUMNS}, password_hash, totp_secret, totp_pending
             FROM accounts WHERE username = ?1"
        ),
        [username],
        |row| Ok(decode_credentials(row)),
    )
    .optional()?
    .ok_or_else(|| not_found(username))?
}

/// Accounts by username.
pub(super) fn list(conn: &Connection, page: Page) -> StoreResult<Paged<Account>> {
    sql::paged(
        conn,
        ACCOUNT_COLUMNS,
        "FROM accounts",
        "username",
        &Filter::default(),
        page,
        decode,
    )
}

/// Applies the fields of `update` that are set and returns the account as stored.
pub(super) fn update(
    conn: &Connection,
    username: &str,
    update: &AccountUpdate,
    now: jiff::Timestamp,
) -> StoreResult<Account> {
    conn.query_row(
        &format!(
            "UPDATE accounts SET role = COALESCE(?2, role), disabled = COALESCE(?3, disabled),
                 updated_at = ?4
             WHERE username = ?1
             RETURNING {ACCOUNT_COLUMNS}"
        ),
        params![
            username,
            update.role.map(|role| role.as_str()),
            update.disabled,
            to_ms(now)
        ],
        |row| Ok(decode(row)),
    )
    .optional()?
    .ok_or_else(|| not_found(username))?
}

/// Replaces the password hash and the must-change flag.
pub(super) fn set_password(
    conn: &Connection,
    username: &str,
    password_hash: &str,
    must_change: bool,
    now: jiff::Timestamp,
) -> StoreResult<()> {
    let changed = conn.execute(
        "UPDATE accounts SET password_hash = ?2, must_change_password = ?3,
             password_changed_at = ?4, updated_at = ?4
         WHERE username = ?1",
        params![username, password_hash, must_change, to_ms(now)],
    )?;
    require_changed(changed, username)
}

/// Sets or clears the TOTP secret being enrolled.
pub(super) fn set_totp_pending(
    conn: &Connection,
    username: &str,
    secret: Option<&str>,
    now: jiff::Timestamp,
) -> StoreResult<()> {
    let changed = conn.execute(
        "UPDATE accounts SET totp_pending = ?2, updated_at = ?3 WHERE username = ?1",
        params![username, secret, to_ms(now)],
    )?;
    require_changed(changed, username)
}

/// Turns TOTP on with `secret` and replaces the recovery codes; the caller's write
/// transaction makes both one change.
pub(super) fn enable_totp(
    conn: &Connection,
    username: &str,
    secret: &str,
    recovery_code_hashes: &[String],
    now: jiff::Timestamp,
) -> StoreResult<()> {
    let changed = conn.execute(
        "UPDATE accounts SET totp_secret = ?2, totp_pending = NULL, updated_at = ?3
         WHERE username = ?1",
        params![username, secret, to_ms(now)],
    )?;
    require_changed(changed, username)?;
    replace_recovery_codes(conn, username, recovery_code_hashes)
}

/// Turns TOTP off: no secret, nothing pending, no recovery codes.
pub(super) fn disable_totp(
    conn: &Connection,
    username: &str,
    now: jiff::Timestamp,
) -> StoreResult<()> {
    let changed = conn.execute(
        "UPDATE accounts SET totp_secret = NULL, totp_pending = NULL, updated_at = ?2
         WHERE username = ?1",
        params![username, to_ms(now)],
    )?;
    require_changed(changed, username)?;
    replace_recovery_codes(conn, username, &[])
}

/// Marks one unused recovery code used; false when there is no such unused code.
pub(super) fn use_recovery_code(
    conn: &Connection,
    username: &str,
    code_hash: &str,
    now: jiff::Timestamp,
) -> StoreResult<bool> {
    let changed = conn.execute(
        "UPDATE recovery_codes SET used_at = ?3
         WHERE username = ?1 AND code_hash = ?2 AND used_at IS NULL",
        params![username, code_hash, to_ms(now)],
    )?;
    Ok(changed == 1)
}

/// How many recovery codes the account has left.
pub(super) fn unused_recovery_codes(conn: &Connection, username: &str) -> StoreResult<u64> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM recovery_codes WHERE username = ?1 AND used_at IS NULL",
        [username],
        |row| row.get(0),
    )?)
}

fn replace_recovery_codes(
    conn: &Connection,
    username: &str,
    code_hashes: &[String],
) -> StoreResult<()> {
    conn.execute("DELETE FROM recovery_codes WHERE username = ?1", [username])?;
    let mut insert =
        conn.prepare_cached("INSERT INTO recovery_codes (username, code_hash) VALUES (?1, ?2)")?;
    for code_hash in code_hashes {
        insert.execute(params![username, code_hash])?;
    }
    Ok(())
}

/// `NotFound` when an update by username changed no row.
fn require_changed(changed: usize, username: &str) -> StoreResult<()> {
    if changed == 0 {
        return Err(not_found(username));
    }
    Ok(())
}

fn not_found(username: &str) -> StoreError {
    StoreError::NotFound(format!("account {username}"))
}

fn decode(row: &Row<'_>) -> StoreResult<Account> {
    Ok(Account {
        username: row.get(0)?,
        role: sql::parse_role(&row.get::<_, String>(1)?)?,
        disabled: row.get(2)?,
        must_change_password: row.get(3)?,
        mfa_enabled: row.get(4)?,
        created_at: from_ms(row.get(5)?)?,
        created_by: row.get(6)?,
        updated_at: from_ms(row.get(7)?)?,
        password_changed_at: from_ms(row.get(8)?)?,
    })
}

fn decode_credentials(row: &Row<'_>) -> StoreResult<AccountCredentials> {
    Ok(AccountCredentials {
        account: decode(row)?,
        password_hash: row.get(9)?,
        totp_secret: row.get(10)?,
        totp_pending: row.get(11)?,
    })
}
