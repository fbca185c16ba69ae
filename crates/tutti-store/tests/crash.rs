//! Crash safety: a child process applying projector batches in a loop is SIGKILLed at
//! random points, twenty times. After each kill the database must be consistent: every
//! batch either fully present or absent, target states agreeing with the results and
//! events stored, the inventory diff agreeing with the current snapshot. Each child
//! resumes two batches behind what was committed, like a projector whose last acks were
//! lost, so redelivery after a crash is exercised too; at the end every row exists once.
//!
//! The child is this test binary re-executed with `CHILD_DB` set, running only
//! `crash_child_entry_point`, which does nothing in a normal test run.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use rand::Rng;
use tutti_proto::audit::{AuditOutcome, AuditRecord};
use tutti_proto::catalog::RESULTS_STREAM;
use tutti_proto::inventory::{InventorySnapshot, Package};
use tutti_proto::result::ResultStatus;
use tutti_store::{Sequenced, Store};

const CHILD_DB: &str = "TUTTI_STORE_CRASH_CHILD_DB";
const N_BATCHES: u64 = 400;
const BATCH: u64 = 50;
const N_KILLS: usize = 20;

#[test]
fn killed_projectors_leave_a_consistent_database() {
    let runtime = runtime();
    let db = runtime.block_on(TestDb::open());
    runtime.block_on(setup(&db.store));
    let mut rng = rand::thread_rng();
    let mut progress = Vec::new();
    for _ in 0..N_KILLS {
        let mut child = spawn_child(&db.path);
        std::thread::sleep(Duration::from_millis(rng.gen_range(20..200)));
        // SIGKILL; the child may have finished already, which is fine.
        let _ = child.kill();
        child.wait().expect("reap child");
        let conn = db.raw();
        check_consistent(&conn);
        progress.push(count(&conn, "SELECT COUNT(*) FROM results"));
    }
    eprintln!("results stored after each kill: {progress:?}");
    let mid_work = progress.iter().filter(|n| **n < N_BATCHES * BATCH).count();
    assert!(
        mid_work >= N_KILLS / 2,
        "too few kills landed mid-work: {progress:?}"
    );
    let status = spawn_child(&db.path).wait().expect("final child");
    assert!(status.success(), "final child failed: {status}");
    let conn = db.raw();
    check_consistent(&conn);
    let n = N_BATCHES * BATCH;
    for (table, rows) in [("results", n), ("run_events", n), ("audit_log", n)] {
        assert_eq!(
            count(&conn, &format!("SELECT COUNT(*) FROM {table}")),
            rows,
            "{table}"
        );
    }
    let status: String = conn
        .query_row("SELECT status FROM runs", [], |row| row.get(0))
        .unwrap();
    assert_eq!(status, "done");
}

/// The child's work; a no-op unless this binary was started by the test above.
#[test]
fn crash_child_entry_point() {
    let Some(path) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let runtime = runtime();
    runtime.block_on(async {
        let store = Store::open_sqlite(&path).await.expect("child opens store");
        let committed = store
            .projector_position(RESULTS_STREAM)
            .await
            .expect("position")
            / BATCH;
        for batch_idx in committed.saturating_sub(2)..N_BATCHES {
            apply_batch(&store, batch_idx).await;
        }
    });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn spawn_child(path: &Path) -> std::process::Child {
    let exe = std::env::current_exe().expect("test binary");
    Command::new(exe)
        .args([
            "--exact",
            "crash_child_entry_point",
            "--test-threads=1",
            "--quiet",
        ])
        .env(CHILD_DB, path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child")
}

fn agent_name(idx: u64) -> String {
    format!("a-{idx:05}")
}

async fn setup(store: &Store) {
    let agents: Vec<String> = (0..N_BATCHES * BATCH).map(agent_name).collect();
    let names: Vec<&str> = agents.iter().map(String::as_str).collect();
    start_run(store, run_id(1), "uptime", &names, 1).await;
}

/// Batch `batch_idx` of each stream: events, results and audit records with stream
/// sequences `batch_idx * BATCH + 1 ..= (batch_idx + 1) * BATCH`, and one inventory
/// snapshot (sequence `batch_idx + 1`) replacing the previous package with a new one.
async fn apply_batch(store: &Store, batch_idx: u64) {
    let seqs = batch_idx * BATCH + 1..=(batch_idx + 1) * BATCH;
    let events = seqs
        .clone()
        .map(|s| seq(s, received(run_id(1), &agent_name(s - 1), 1)))
        .collect();
    store.apply_events(events).await.expect("events");
    let results = seqs
        .clone()
        .map(|s| {
            seq(
                s,
                result(
                    run_id(1),
                    &agent_name(s - 1),
                    ResultStatus::Succeeded,
                    Some(0),
                ),
            )
        })
        .collect();
    store.apply_results(results).await.expect("results");
    let audit = seqs.map(|s| seq(s, audit_record(s))).collect();
    store.apply_audit(audit).await.expect("audit");
    store
        .apply_inventory(vec![inventory(batch_idx + 1)])
        .await
        .expect("inventory");
}

fn audit_record(n: u64) -> AuditRecord {
    AuditRecord {
        at: t(i64::try_from(n).unwrap_or_default()),
        actor: "projector-test".to_string(),
        role: "admin".to_string(),
        action: "run.create".to_string(),
        target: format!("run/{n}"),
        summary: serde_json::json!({ "n": n }),
        source: None,
        outcome: AuditOutcome::Succeeded,
    }
}

fn inventory(stream_seq: u64) -> Sequenced<InventorySnapshot> {
    let package = Package {
        name: format!("pkg-{stream_seq}"),
        version: "1".to_string(),
        arch: "amd64".to_string(),
        manager: "dpkg".to_string(),
    };
    let snapshot = InventorySnapshot {
        agent_id: agent("inv-01"),
        at: t(i64::try_from(stream_seq).unwrap_or_default()),
        facts: Default::default(),
        packages: vec![package],
    };
    seq(stream_seq, snapshot)
}

fn count(conn: &rusqlite::Connection, sql: &str) -> u64 {
    conn.query_row(sql, [], |row| row.get::<_, i64>(0))
        .map(|n| u64::try_from(n).unwrap_or(u64::MAX))
        .unwrap_or_else(|err| panic!("{sql}: {err}"))
}

fn check_consistent(conn: &rusqlite::Connection) {
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    check_batches_whole(conn);
    check_targets_agree(conn);
    check_inventory_agrees(conn);
}

/// Every batch of every stream is fully present or fully absent.
fn check_batches_whole(conn: &rusqlite::Connection) {
    for table in ["results", "run_events", "audit_log"] {
        let sql = format!(
            "SELECT (stream_seq - 1) / {BATCH} AS batch_idx, COUNT(*) FROM {table}
             GROUP BY batch_idx HAVING COUNT(*) <> {BATCH}"
        );
        assert_eq!(
            count(conn, &format!("SELECT COUNT(*) FROM ({sql})")),
            0,
            "partial batch in {table}"
        );
    }
}

/// Target states agree with the stored events and results, and the run status with both.
fn check_targets_agree(conn: &rusqlite::Connection) {
    let n_results = count(conn, "SELECT COUNT(*) FROM results");
    assert_eq!(
        count(
            conn,
            "SELECT COUNT(*) FROM run_targets WHERE state = 'succeeded'"
        ),
        n_results
    );
    let delivered_without_event = "SELECT COUNT(*) FROM run_targets t WHERE t.state = 'delivered'
        AND NOT EXISTS (SELECT 1 FROM run_events e WHERE e.agent_id = t.agent_id)";
    assert_eq!(count(conn, delivered_without_event), 0);
    let queued_with_event = "SELECT COUNT(*) FROM run_targets t WHERE t.state = 'queued'
        AND EXISTS (SELECT 1 FROM run_events e WHERE e.agent_id = t.agent_id)";
    assert_eq!(count(conn, queued_with_event), 0);
    let status: String = conn
        .query_row("SELECT status FROM runs", [], |row| row.get(0))
        .unwrap();
    let n_queued = count(
        conn,
        "SELECT COUNT(*) FROM run_targets WHERE state = 'queued'",
    );
    let expected = match (n_queued, n_results) {
        (_, n) if n == N_BATCHES * BATCH => "done",
        (q, _) if q == N_BATCHES * BATCH => "queued",
        _ => "running",
    };
    assert_eq!(status, expected);
}

/// The current snapshot, its packages and the change history describe the same sequence.
fn check_inventory_agrees(conn: &rusqlite::Connection) {
    let current: Option<u64> = conn
        .query_row("SELECT stream_seq FROM inventory_current", [], |row| {
            row.get(0)
        })
        .ok();
    let Some(current) = current else {
        assert_eq!(count(conn, "SELECT COUNT(*) FROM inventory_packages"), 0);
        return;
    };
    let package: String = conn
        .query_row("SELECT name FROM inventory_packages", [], |row| row.get(0))
        .unwrap();
    assert_eq!(package, format!("pkg-{current}"));
    assert_eq!(
        count(conn, "SELECT COUNT(*) FROM inventory_changes"),
        2 * (current - 1)
    );
}
