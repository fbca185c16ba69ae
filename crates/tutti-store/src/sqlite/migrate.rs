//! Versioned schema migrations, embedded in the binary and applied at open.
//!
//! Each file in `migrations/` is applied once, in order, inside the same transaction as
//! its row in `schema_migrations`, so a crash mid-migration leaves the old schema intact.
//! A shipped migration is never edited: [`MIGRATIONS`] pins the sha256 of each file, the
//! test `shipped_migrations_are_never_edited` fails when a file changes, and opening a
//! database whose recorded hash differs is refused. A database migrated by a newer build
//! (a version this build does not know) is refused too, instead of being misread.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::error::{StoreError, StoreResult};

/// One embedded migration.
#[derive(Debug)]
pub(crate) struct Migration {
    /// Applied in increasing order, starting at 1.
    pub(crate) version: i64,
    /// File name under `migrations/`.
    pub(crate) name: &'static str,
    /// The SQL.
    pub(crate) sql: &'static str,
    /// sha256 of the file as shipped.
    pub(crate) sha256: &'static str,
}

/// Every migration, in order. Append only.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init.sql",
        sql: include_str!("../../migrations/0001_init.sql"),
        sha256: "4c538af90bf328d7196fab13cf107508e8439d743607c7e76a389b8ed073006e",
    },
    Migration {
        version: 2,
        name: "0002_enrollment_token_groups.sql",
        sql: include_str!("../../migrations/0002_enrollment_token_groups.sql"),
        sha256: "e750db8e757d13504522ccd44e5f5ed34f07eb3b1274ea2567b4e642fef2c2ac",
    },
    Migration {
        version: 3,
        name: "0003_accounts.sql",
        sql: include_str!("../../migrations/0003_accounts.sql"),
        sha256: "424e67377f236091f4c887fa5e30fff04e2892392ad51fe9c08b5d352ce8da15",
    },
    Migration {
        version: 4,
        name: "0004_schedules_and_freeze.sql",
        sql: include_str!("../../migrations/0004_schedules_and_freeze.sql"),
        sha256: "51bf6e33675f4e1f59269b44a418634784bdd81d306d9a9e5f351d478f348215",
    },
    Migration {
        version: 5,
        name: "0005_rollouts.sql",
        sql: include_str!("../../migrations/0005_rollouts.sql"),
        sha256: "14c9d6df8e2d9aac9c122fb7e19edf83fb4766c3f78161b68d4de4686bbb2670",
    },
    Migration {
        version: 6,
        name: "0006_broker_identities.sql",
        sql: include_str!("../../migrations/0006_broker_identities.sql"),
        sha256: "277b842c7823d045d779c3a0b931b9a316af81fff9d163daf101ae2d059389d6",
    },
    Migration {
        version: 7,
        name: "0007_agent_trusted_keys.sql",
        sql: include_str!("../../migrations/0007_agent_trusted_keys.sql"),
        sha256: "f1529d43de257b0e21464e83e9f49df179c13dd8ce840780a779ee611f8c387a",
    },
];

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT PRIMARY KEY,
    name       TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";

/// Applies every pending migration in one transaction; returns how many ran.
pub(crate) fn migrate(conn: &mut Connection) -> StoreResult<usize> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(CREATE_TABLE)?;
    check_applied(&tx)?;
    let mut n_applied = 0;
    for migration in MIGRATIONS {
        if is_applied(&tx, migration.version)? {
            continue;
        }
        tx.execute_batch(migration.sql).map_err(|err| {
            StoreError::other_with(format!("migration {} failed", migration.name), err)
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, sha256, applied_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                migration.version,
                migration.name,
                migration.sha256,
                jiff::Timestamp::now().as_millisecond()
            ],
        )?;
        n_applied += 1;
    }
    tx.commit()?;
    Ok(n_applied)
}

/// Refuses a database with a migration this build does not know or whose hash differs.
fn check_applied(conn: &Connection) -> StoreResult<()> {
    let mut stmt = conn.prepare("SELECT version, name, sha256 FROM schema_migrations")?;
    let rows = stmt.query_map([], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (version, name, sha256) = row?;
        let known = MIGRATIONS.iter().find(|m| m.version == version);
        match known {
            None => {
                return Err(StoreError::other(format!(
                    "database has migration {version} ({name}), which this build does not know; \
                     it was written by a newer tutti"
                )));
            }
            Some(migration) if migration.sha256 != sha256 => {
                return Err(StoreError::other(format!(
                    "migration {name} was applied with sha256 {sha256} but this build ships {}",
                    migration.sha256
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn is_applied(conn: &Connection, version: i64) -> StoreResult<bool> {
    let found: Option<i64> = conn
        .query_row(
            "SELECT version FROM schema_migrations WHERE version = ?1",
            [version],
            |row| row.get(0),
        )
        .optional()?;
    Ok(found.is_some())
}

#[cfg(test)]
mod tests;
