//! The replica loop against a real broker: cursor-after-apply across restarts, resync on
//! expiry, never-regress, offline boot, store failures and supervision.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::Scenario;
use tokio::sync::mpsc;
use tutti_kv::{
    AppliedBatch, BatchKind, Commit, LoadedState, MemoryStore, Replica, ReplicaConfig,
    ReplicaHandle, ReplicaPhase, Selection, StoreChange, StoreMeta, StoredEntry,
};

const WAIT: Duration = Duration::from_secs(10);

fn value(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn config(scenario: &Scenario) -> ReplicaConfig {
    let mut config = ReplicaConfig::new(scenario.bucket.name(), Selection::WholeBucket);
    config.deliver_batches = true;
    config.backoff_min = Duration::from_millis(50);
    config.backoff_max = Duration::from_millis(500);
    config.request_timeout = Duration::from_secs(2);
    config
}

async fn wait_for_value(replica: &ReplicaHandle, key: &str, expected: Option<&str>) {
    let expected = expected.map(value);
    let reached = replica
        .wait_until(WAIT, |state| state.get(key) == expected.as_ref())
        .await;
    assert!(
        reached,
        "{key} never became {expected:?}; it is {:?}",
        replica.get(key)
    );
}

async fn wait_live(replica: &ReplicaHandle) {
    assert!(
        replica
            .wait_until(WAIT, |state| *state.phase() == ReplicaPhase::Live)
            .await,
        "never live: {:?}",
        replica.phase()
    );
}

/// Drains every batch already sent (the loop sends before it publishes the next state).
fn drain(batches: &mut mpsc::Receiver<AppliedBatch>) -> Vec<AppliedBatch> {
    std::iter::from_fn(|| batches.try_recv().ok()).collect()
}

#[tokio::test]
async fn follows_live_updates_and_resumes_with_only_the_delta_after_restart() {
    let scenario = Scenario::start("resume").await;
    for key_idx in 0..10 {
        scenario
            .bucket
            .put(&format!("cfg.k{key_idx}"), value("v1"))
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.redb");
    let replica = Replica::start(config(&scenario), scenario.js.clone(), &path)
        .await
        .unwrap();
    wait_for_value(&replica, "cfg.k9", Some("v1")).await;
    scenario.bucket.put("cfg.k0", value("v2")).await.unwrap();
    wait_for_value(&replica, "cfg.k0", Some("v2")).await;
    replica.shutdown().await.unwrap();

    scenario.bucket.put("cfg.k1", value("v2")).await.unwrap();
    scenario.bucket.delete("cfg.k2").await.unwrap();
    let mut replica = Replica::start(config(&scenario), scenario.js.clone(), &path)
        .await
        .unwrap();
    assert_eq!(
        replica.get("cfg.k0"),
        Some(value("v2")),
        "the local copy is there before any sync"
    );
    let mut batches = replica.take_batches().unwrap();
    wait_for_value(&replica, "cfg.k2", None).await;
    assert_eq!(replica.get("cfg.k1"), Some(value("v2")));
    let applied: Vec<StoreChange> = drain(&mut batches)
        .into_iter()
        .flat_map(|batch| {
            assert_eq!(
                batch.kind,
                BatchKind::Live,
                "a valid cursor must not resync"
            );
            batch.changes
        })
        .collect();
    assert_eq!(applied.len(), 2, "exactly the delta: {applied:?}");
    assert_eq!(replica.state().borrow().len(), 9);
    replica.shutdown().await.unwrap();
}

/// After retention dropped the gap (including delete markers), the restarted replica must
/// remove the deleted key, converge on the deleted-then-recreated one, and report removals
/// before values.
#[tokio::test]
async fn expired_cursor_resyncs_removing_keys_deleted_during_the_gap() {
    let scenario = Scenario::start("gap").await;
    for key in ["g.deleted", "g.recreated", "g.kept"] {
        scenario.bucket.put(key, value("v1")).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.redb");
    let replica = Replica::start(config(&scenario), scenario.js.clone(), &path)
        .await
        .unwrap();
    wait_for_value(&replica, "g.kept", Some("v1")).await;
    replica.shutdown().await.unwrap();

    scenario.bucket.delete("g.deleted").await.unwrap();
    scenario.bucket.delete("g.recreated").await.unwrap();
    scenario
        .bucket
        .put("g.recreated", value("v2"))
        .await
        .unwrap();
    let last = scenario.bucket.put("g.new", value("v1")).await.unwrap();
    // Keep only the newest message: every delete marker of the gap is gone.
    scenario.evict_before(last).await;
    scenario
        .bucket
        .put("g.recreated", value("v3"))
        .await
        .unwrap();

    let mut replica = Replica::start(config(&scenario), scenario.js.clone(), &path)
        .await
        .unwrap();
    let mut batches = replica.take_batches().unwrap();
    wait_for_value(&replica, "g.recreated", Some("v3")).await;
    wait_for_value(&replica, "g.deleted", None).await;
    assert_eq!(replica.get("g.new"), Some(value("v1")));
    assert_eq!(
        replica.get("g.kept"),
        None,
        "g.kept's only revision was evicted, so it is gone from the bucket too"
    );
    let resync = drain(&mut batches)
        .into_iter()
        .find(|batch| batch.kind == BatchKind::Resync)
        .expect("a resync batch");
    let first_upsert = resync
        .changes
        .iter()
        .position(|change| matches!(change, StoreChange::Upsert { .. }));
    let last_remove = resync
        .changes
        .iter()
        .rposition(|change| matches!(change, StoreChange::Remove { .. }));
    assert!(
        last_remove.is_some() && last_remove < first_upsert,
        "removals come first: {:?}",
        resync.changes
    );
    replica.shutdown().await.unwrap();
}

/// Regression guard for the downgrade an earlier system shipped: re-applying old revisions
/// after a reconnect moved agents backwards. Here the persisted cursor lags the data, so the
/// resumed watch replays older revisions of a key the copy already has in a newer revision.
#[tokio::test]
async fn replayed_old_revision_does_not_regress() {
    let scenario = Scenario::start("replay").await;
    let old = scenario
        .bucket
        .put("agent.version", value("1.0"))
        .await
        .unwrap();
    scenario
        .bucket
        .put("agent.version", value("1.1"))
        .await
        .unwrap();
    let newest = scenario
        .bucket
        .put("agent.version", value("2.0"))
        .await
        .unwrap();
    let store = MemoryStore::new();
    let mut seeded = store.clone();
    tutti_kv::LocalStore::commit(
        &mut seeded,
        &Commit {
            changes: vec![StoreChange::Upsert {
                key: "agent.version".into(),
                entry: StoredEntry {
                    revision: newest,
                    operation: tutti_kv::Operation::Put,
                    value: value("2.0"),
                },
            }],
            meta: StoreMeta {
                cursor: Some(old - 1),
                fingerprint: Some("replay|*".to_string()),
                last_sync: None,
            },
        },
    )
    .unwrap();

    let mut replica =
        Replica::start_with_store(config(&scenario), scenario.js.clone(), store.clone())
            .await
            .unwrap();
    let mut seen = replica.state();
    let mut batches = replica.take_batches().unwrap();
    let mut observed = Vec::new();
    let caught_up = tokio::time::timeout(WAIT, async {
        loop {
            observed.push(seen.borrow_and_update().get("agent.version").cloned());
            if seen.borrow().cursor() >= Some(newest) {
                break;
            }
            seen.changed().await.unwrap();
        }
    })
    .await;
    assert!(caught_up.is_ok(), "the replica never caught up");
    assert!(
        observed.iter().all(|seen| *seen == Some(value("2.0"))),
        "the copy went backwards: {observed:?}"
    );
    assert_eq!(
        seen.borrow().stale_deliveries_ignored(),
        3,
        "1.0, 1.1 and 2.0 were replayed and ignored"
    );
    assert!(
        drain(&mut batches)
            .iter()
            .all(|batch| batch.changes.is_empty()),
        "a replay changes nothing"
    );
    let LoadedState { entries, meta } = store.snapshot();
    assert_eq!(entries["agent.version"].revision, newest);
    assert_eq!(meta.cursor, Some(newest));
    replica.shutdown().await.unwrap();
}

#[tokio::test]
async fn boots_offline_from_the_local_copy_and_catches_up_when_the_broker_returns() {
    let mut scenario = Scenario::start("offline").await;
    scenario.bucket.put("o.k", value("v1")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.redb");
    let replica = Replica::start(config(&scenario), scenario.js.clone(), &path)
        .await
        .unwrap();
    wait_for_value(&replica, "o.k", Some("v1")).await;
    replica.shutdown().await.unwrap();

    scenario.nats.stop();
    let started = std::time::Instant::now();
    let replica = Replica::start(config(&scenario), scenario.js.clone(), &path)
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "start must not wait for the broker"
    );
    assert_eq!(replica.get("o.k"), Some(value("v1")));
    assert_eq!(replica.phase(), ReplicaPhase::Offline);
    let stale_at_boot = replica.staleness().expect("a synced copy has a staleness");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        replica.staleness().unwrap() > stale_at_boot,
        "staleness grows while the broker is away"
    );

    scenario.nats.start_again();
    let writer = scenario.nats.jetstream().await;
    let bucket = tutti_kv::Bucket::open(&writer, "offline", common::TIMEOUT)
        .await
        .unwrap();
    bucket.put("o.k", value("v2")).await.unwrap();
    wait_for_value(&replica, "o.k", Some("v2")).await;
    wait_live(&replica).await;
    assert!(replica.staleness().unwrap() < Duration::from_secs(2));
    replica.shutdown().await.unwrap();
}

/// The local file is a cache of the broker's truth: when it is damaged the replica sets it
/// aside (kept for inspection, never silently reused) and rebuilds the copy by a state-sync.
#[tokio::test]
async fn a_corrupted_local_file_is_set_aside_and_rebuilt_from_the_broker() {
    let scenario = Scenario::start("corrupt").await;
    scenario.bucket.put("c.k", value("v1")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.redb");
    let replica = Replica::start(config(&scenario), scenario.js.clone(), &path)
        .await
        .unwrap();
    wait_for_value(&replica, "c.k", Some("v1")).await;
    replica.shutdown().await.unwrap();

    let length = std::fs::metadata(&path).unwrap().len() as usize;
    std::fs::write(&path, vec![0xA5; length]).unwrap();
    scenario.bucket.put("c.k", value("v2")).await.unwrap();
    let mut replica = Replica::start(config(&scenario), scenario.js.clone(), &path)
        .await
        .expect("a damaged cache is not a fatal error");
    assert_eq!(
        replica.get("c.k"),
        None,
        "nothing is read from the damaged file"
    );
    let mut batches = replica.take_batches().unwrap();
    wait_for_value(&replica, "c.k", Some("v2")).await;
    assert_eq!(drain(&mut batches)[0].kind, BatchKind::Resync);
    let set_aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("replica.redb.corrupt-"))
        .collect();
    assert_eq!(
        set_aside.len(),
        1,
        "the damaged file is kept: {set_aside:?}"
    );
    replica.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_broker_restart_is_survived_by_restarting_the_watch_from_the_cursor() {
    let mut scenario = Scenario::start("restart").await;
    scenario.bucket.put("r.k", value("v1")).await.unwrap();
    let replica =
        Replica::start_with_store(config(&scenario), scenario.js.clone(), MemoryStore::new())
            .await
            .unwrap();
    wait_for_value(&replica, "r.k", Some("v1")).await;
    scenario.nats.restart();
    let writer = scenario.nats.jetstream().await;
    let bucket = tutti_kv::Bucket::open(&writer, "restart", common::TIMEOUT)
        .await
        .unwrap();
    bucket.put("r.k", value("v2")).await.unwrap();
    wait_for_value(&replica, "r.k", Some("v2")).await;
    replica.shutdown().await.unwrap();
}

#[tokio::test]
async fn transient_store_failures_requeue_the_batch_and_skip_nothing() {
    let scenario = Scenario::start("transient").await;
    let store = MemoryStore::new();
    let replica = Replica::start_with_store(config(&scenario), scenario.js.clone(), store.clone())
        .await
        .unwrap();
    wait_live(&replica).await;
    store.fail_next_commits(3);
    for key_idx in 0..20 {
        scenario
            .bucket
            .put(&format!("t.k{key_idx}"), value("v"))
            .await
            .unwrap();
    }
    wait_for_value(&replica, "t.k19", Some("v")).await;
    let committed = store.snapshot();
    assert_eq!(
        committed.entries.len(),
        20,
        "every update survived the failed commits"
    );
    assert_eq!(replica.phase(), ReplicaPhase::Live);
    replica.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_streak_of_store_failures_stops_the_replica() {
    let scenario = Scenario::start("streak").await;
    let store = MemoryStore::new();
    let mut config = config(&scenario);
    config.max_store_failures = 3;
    let replica = Replica::start_with_store(config, scenario.js.clone(), store.clone())
        .await
        .unwrap();
    wait_live(&replica).await;
    store.fail_next_commits(100);
    scenario.bucket.put("s.k", value("v")).await.unwrap();
    let failed = replica
        .wait_until(WAIT, |state| {
            matches!(state.phase(), ReplicaPhase::Failed(_))
        })
        .await;
    assert!(failed, "phase is {:?}", replica.phase());
    assert_eq!(
        replica.get("s.k"),
        None,
        "nothing is applied in memory that the store did not take"
    );
    assert!(replica.shutdown().await.is_err());
}

#[tokio::test]
async fn a_changed_selection_resyncs_and_drops_keys_no_longer_selected() {
    let scenario = Scenario::start("reselect").await;
    scenario.bucket.put("a.k", value("1")).await.unwrap();
    scenario.bucket.put("b.k", value("1")).await.unwrap();
    let store = MemoryStore::new();
    let replica = Replica::start_with_store(config(&scenario), scenario.js.clone(), store.clone())
        .await
        .unwrap();
    wait_for_value(&replica, "b.k", Some("1")).await;
    replica.shutdown().await.unwrap();

    let mut narrowed = config(&scenario);
    narrowed.selection = Selection::prefixes(["a."]).unwrap();
    let replica = Replica::start_with_store(narrowed, scenario.js.clone(), store.clone())
        .await
        .unwrap();
    wait_for_value(&replica, "b.k", None).await;
    assert_eq!(replica.get("a.k"), Some(value("1")));
    assert!(!store.snapshot().entries.contains_key("b.k"));
    replica.shutdown().await.unwrap();
}
