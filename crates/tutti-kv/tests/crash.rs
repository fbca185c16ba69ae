//! Crash safety of the local store: a child process applies batches to a redb store and is
//! SIGKILLed at random points; every reopen must show data exactly consistent with the stored
//! cursor (never ahead, never behind), and every commit the child reported must be there.
//!
//! The child is this test binary re-executed with `TUTTI_KV_CRASH_CHILD` set, running
//! `crash_child_process`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rand::Rng;
use tutti_kv::{
    Commit, LoadedState, LocalStore, Operation, RedbStore, StoreChange, StoreMeta, StoredEntry,
};

const CHILD_ENV: &str = "TUTTI_KV_CRASH_CHILD";
const ITERATIONS: usize = 50;

/// Batch `batch_idx` (1-based); its cursor is `batch_idx`. Deterministic so the parent can
/// replay what any cursor must correspond to.
fn batch(batch_idx: u64) -> Commit {
    let changes = (0..40u64)
        .map(|change_idx| {
            let key = format!("key-{:04}", (batch_idx * 37 + change_idx * 13) % 1000);
            let revision = batch_idx * 1000 + change_idx;
            match (batch_idx + change_idx) % 17 {
                0 => StoreChange::Remove { key },
                1 | 2 => StoreChange::Upsert {
                    key,
                    entry: StoredEntry {
                        revision,
                        operation: Operation::Delete,
                        value: Bytes::new(),
                    },
                },
                _ => {
                    let len = 64 + ((batch_idx * 31 + change_idx * 7) % 1500) as usize;
                    let value = Bytes::from(vec![(batch_idx % 251) as u8; len]);
                    StoreChange::Upsert {
                        key,
                        entry: StoredEntry {
                            revision,
                            operation: Operation::Put,
                            value,
                        },
                    }
                }
            }
        })
        .collect();
    Commit {
        changes,
        meta: StoreMeta {
            cursor: Some(batch_idx),
            fingerprint: Some("crash".into()),
            last_sync: None,
        },
    }
}

fn expected_at(cursor: u64) -> LoadedState {
    let mut model = LoadedState::default();
    for batch_idx in 1..=cursor {
        model.apply(&batch(batch_idx));
    }
    model
}

#[test]
fn crash_child_process() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut store = RedbStore::open(Path::new(&path)).expect("child opens store");
    let mut cursor = store
        .load()
        .expect("child loads store")
        .meta
        .cursor
        .unwrap_or(0);
    loop {
        cursor += 1;
        store.commit(&batch(cursor)).expect("child commits");
        println!("COMMITTED {cursor}");
    }
}

#[test]
fn sigkill_at_random_points_never_leaves_data_inconsistent_with_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.redb");
    let mut rng = rand::thread_rng();
    let mut highest_reported = 0;
    for iteration in 0..ITERATIONS {
        let reported = run_child_until_killed(
            &path,
            rng.gen_range(1..6),
            Duration::from_micros(rng.gen_range(0..4_000)),
        );
        highest_reported = highest_reported.max(reported);
        let loaded = RedbStore::open(&path)
            .and_then(|mut store| store.load())
            .expect("reopen after SIGKILL");
        let cursor = loaded.meta.cursor.unwrap_or(0);
        assert!(
            cursor >= highest_reported,
            "iteration {iteration}: commit {highest_reported} was reported durable but the cursor is {cursor}"
        );
        assert_eq!(
            loaded,
            expected_at(cursor),
            "iteration {iteration}: data inconsistent with cursor {cursor}"
        );
    }
    assert!(
        highest_reported >= ITERATIONS as u64,
        "the children made too little progress to mean anything"
    );
}

/// Starts a child, waits until it reported `commits` more commits, lets it run `extra`
/// longer (so the kill lands anywhere in a commit), kills it, and returns the last commit it
/// reported.
fn run_child_until_killed(path: &Path, commits: usize, extra: Duration) -> u64 {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "crash_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let mut last_reported = 0;
    let mut seen = 0;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("child output");
        if let Some(cursor) = line.strip_prefix("COMMITTED ") {
            last_reported = cursor.parse().expect("cursor");
            seen += 1;
            if seen >= commits {
                break;
            }
        }
    }
    std::thread::sleep(extra);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).expect("SIGKILL child");
    child.wait().expect("reap child");
    last_reported
}
