//! Migration guards: shipped files stay byte-identical, every file is listed, and opening
//! an existing database is idempotent.

use std::collections::BTreeSet;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{MIGRATIONS, migrate};
use crate::sqlite::SqliteStore;

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A shipped migration is never edited; add a new one instead. If this fails, revert the
/// change to the named file and put it in a new migration.
#[test]
fn shipped_migrations_are_never_edited() {
    for migration in MIGRATIONS {
        assert_eq!(
            sha256_hex(migration.sql.as_bytes()),
            migration.sha256,
            "{} changed after it shipped",
            migration.name
        );
    }
}

#[test]
fn every_migration_file_is_listed_in_order() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let listed: BTreeSet<String> = MIGRATIONS.iter().map(|m| m.name.to_string()).collect();
    assert_eq!(on_disk, listed);
    for (idx, migration) in MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(idx + 1).unwrap();
        assert_eq!(migration.version, version);
        assert!(migration.name.starts_with(&format!("{version:04}_")));
    }
}

#[test]
fn reopening_applies_nothing_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tutti.db");
    drop(SqliteStore::open_blocking(&path).unwrap());
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO groups (group_name, created_at) VALUES ('kept', 0)",
        [],
    )
    .unwrap();
    assert_eq!(migrate(&mut conn).unwrap(), 0);
    drop(conn);
    drop(SqliteStore::open_blocking(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let n_rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM schema_migrations", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(n_rows, i64::try_from(MIGRATIONS.len()).unwrap());
    let kept: i64 = conn
        .query_row("SELECT COUNT(*) FROM groups", [], |row| row.get(0))
        .unwrap();
    assert_eq!(kept, 1);
}

#[test]
fn a_database_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tutti.db");
    drop(SqliteStore::open_blocking(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO schema_migrations VALUES (999, '0999_future.sql', 'x', 0)",
        [],
    )
    .unwrap();
    drop(conn);
    let err = SqliteStore::open_blocking(&path).unwrap_err().to_string();
    assert!(err.contains("newer tutti"), "{err}");
}

#[test]
fn an_edited_migration_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tutti.db");
    drop(SqliteStore::open_blocking(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE schema_migrations SET sha256 = 'edited'", [])
        .unwrap();
    drop(conn);
    let err = SqliteStore::open_blocking(&path).unwrap_err().to_string();
    assert!(err.contains("was applied with sha256 edited"), "{err}");
}

/// A database written before `0002` (tokens without groups) is upgraded in place: the
/// existing token stays and assigns no groups.
#[test]
fn a_database_from_before_token_groups_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tutti.db");
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(super::CREATE_TABLE).unwrap();
    let first = &MIGRATIONS[0];
    conn.execute_batch(first.sql).unwrap();
    conn.execute(
        "INSERT INTO schema_migrations VALUES (1, ?1, ?2, 0)",
        [first.name, first.sha256],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO enrollment_tokens (token_id, token_hash, name, created_at, created_by,
             expires_at, uses_left)
         VALUES ('old', 'hash', 'before 0002', 0, 'alice', 1, 1)",
        [],
    )
    .unwrap();
    assert_eq!(migrate(&mut conn).unwrap(), MIGRATIONS.len() - 1);
    let groups: String = conn
        .query_row(
            "SELECT groups FROM enrollment_tokens WHERE token_id = 'old'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(groups, "[]");
}
