//! The projector batch functions: idempotency under redelivery, the state machine as
//! enforced in SQL, gap reports, anomalies and the inventory diff.

mod common;

use common::*;
use tutti_proto::audit::{AuditOutcome, AuditRecord};
use tutti_proto::event::EventKind;
use tutti_proto::inventory::{Disk, Facts, InventorySnapshot, Package};
use tutti_proto::result::{ResultStatus, SkipReason};
use tutti_proto::{ResultId, RunId};
use tutti_store::*;

#[tokio::test]
async fn every_apply_is_a_no_op_when_redelivered() {
    let db = TestDb::open().await;
    let store = &db.store;
    let run = run_id(1);
    start_run(store, run, "uptime", &["web-01", "web-02"], 10).await;

    let results = vec![
        seq(1, result(run, "web-01", ResultStatus::Succeeded, Some(0))),
        seq(2, result(run, "web-02", ResultStatus::Failed, Some(1))),
    ];
    let events = vec![
        seq(1, received(run, "web-01", 1)),
        seq(2, started(run, "web-01", 2)),
    ];
    let audit = vec![
        seq(1, audit_record("run.create")),
        seq(2, audit_record("run.kill")),
    ];
    let inventory = vec![
        seq(1, snapshot(1, &[("curl", "1")])),
        seq(2, snapshot(2, &[("curl", "2")])),
    ];
    let heartbeats = vec![heartbeat("web-01", 5), heartbeat("web-02", 5)];

    for round in 0..2 {
        let expect = |n: u64| if round == 0 { (n, 0) } else { (0, n) };
        let got = |o: ApplyOutcome| (o.applied, o.duplicates);
        assert_eq!(
            got(store.apply_events(events.clone()).await.unwrap()),
            expect(2)
        );
        assert_eq!(
            got(store.apply_results(results.clone()).await.unwrap()),
            expect(2)
        );
        assert_eq!(
            got(store.apply_audit(audit.clone()).await.unwrap()),
            expect(2)
        );
        assert_eq!(
            got(store.apply_inventory(inventory.clone()).await.unwrap()),
            expect(2)
        );
        assert_eq!(
            got(store.apply_heartbeats(heartbeats.clone()).await.unwrap()),
            (2, 0),
            "same time is not older"
        );
    }
    let raw = db.raw();
    for (table, rows) in [
        ("results", 2),
        ("run_events", 2),
        ("audit_log", 2),
        ("inventory_changes", 1),
        ("inventory_packages", 1),
    ] {
        let n: i64 = raw
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, rows, "{table}");
    }
    assert_eq!(store.projector_position("TUTTI_RESULTS").await.unwrap(), 2);
    let detail = store.get_run(&run).await.unwrap();
    assert_eq!(detail.run.status, RunStatus::Done);
}

#[tokio::test]
async fn an_older_heartbeat_never_moves_an_agent_back() {
    let db = TestDb::open().await;
    let store = &db.store;
    enroll(store, &["web-01"]).await;
    store
        .apply_heartbeats(vec![heartbeat("web-01", 100)])
        .await
        .unwrap();
    let mut old = heartbeat("web-01", 50);
    old.cursor = 1;
    let outcome = store.apply_heartbeats(vec![old]).await.unwrap();
    assert_eq!((outcome.applied, outcome.duplicates), (0, 1));
    let agent = store.get_agent(&agent("web-01"), t(0)).await.unwrap();
    assert_eq!(agent.last_heartbeat_at, Some(t(100)));
    assert_eq!(agent.last_heartbeat.unwrap().cursor, 7);
    assert_eq!(
        agent.hostname, "web-01.example.net",
        "from the newer heartbeat"
    );
}

/// Only enrollment creates an agent: a heartbeat, inventory snapshot, event or result
/// from an id that never enrolled, or whose agent was deleted, changes nothing (not even
/// the anomalies table) and is reported per message, while the projector positions still
/// move past it so it is never redelivered.
#[tokio::test]
async fn nothing_from_an_agent_that_is_not_enrolled_changes_anything() {
    let db = TestDb::open().await;
    let store = &db.store;
    let run = run_id(1);
    start_run(store, run, "uptime", &["web-01", "gone-01"], 10).await;
    store.delete_agent(&agent("gone-01")).await.unwrap();
    let ghosts = ["ghost-01", "gone-01"];
    let ghost_ids: Vec<_> = ghosts.iter().map(|name| agent(name)).collect();

    let beats = ghosts.iter().map(|name| heartbeat(name, 5)).collect();
    let outcome = store.apply_heartbeats(beats).await.unwrap();
    assert_eq!((outcome.applied, &outcome.unknown_agents), (0, &ghost_ids));
    let snapshots = ghosts
        .iter()
        .zip(1..)
        .map(|(name, n)| {
            let mut snapshot = snapshot(100, &[("curl", "8.5")]);
            snapshot.agent_id = agent(name);
            seq(n, snapshot)
        })
        .collect();
    let outcome = store.apply_inventory(snapshots).await.unwrap();
    assert_eq!((outcome.applied, &outcome.unknown_agents), (0, &ghost_ids));
    let events = ghosts
        .iter()
        .zip(1..)
        .map(|(name, n)| seq(n, started(run, name, 5)))
        .collect();
    let outcome = store.apply_events(events).await.unwrap();
    assert_eq!((outcome.applied, &outcome.unknown_agents), (0, &ghost_ids));
    let results = ghosts
        .iter()
        .zip(1..)
        .map(|(name, n)| seq(n, result(run, name, ResultStatus::Succeeded, Some(0))))
        .collect();
    let outcome = store.apply_results(results).await.unwrap();
    assert_eq!((outcome.applied, &outcome.unknown_agents), (0, &ghost_ids));

    for name in ghosts {
        let missing = store.get_agent(&agent(name), t(0)).await;
        assert!(matches!(missing, Err(StoreError::NotFound(_))), "{name}");
    }
    assert_eq!(
        target_state(store, run, "gone-01").await,
        TargetState::Queued
    );
    let raw = db.raw();
    for table in [
        "results",
        "run_events",
        "anomalies",
        "inventory_current",
        "inventory_packages",
    ] {
        let n: i64 = raw
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0, "{table}");
    }
    for stream in ["TUTTI_RESULTS", "TUTTI_EVENTS", "TUTTI_INVENTORY"] {
        assert_eq!(
            store.projector_position(stream).await.unwrap(),
            2,
            "{stream}"
        );
    }
}

/// Drives a fresh single-target run into `from`, then applies the message that asks for
/// `to`; the target must end in `to` exactly when [`TargetState::can_move`] allows it.
#[tokio::test]
async fn the_state_machine_holds_in_sql_for_every_message() {
    let db = TestDb::open().await;
    let store = &db.store;
    let mut case = 0;
    let mut stream_seq = 0;
    for from in TargetState::ALL {
        for to in TargetState::ALL
            .into_iter()
            .filter(|to| *to != TargetState::Queued)
        {
            case += 1;
            let run = run_id(case);
            let command_seq = case * 10;
            let mut new = new_run(run, "uptime", 0);
            new.deadline = Some(t(1000));
            start_run_with(store, new, &["web-01"], command_seq).await;
            drive(store, run, from, command_seq, &mut stream_seq).await;
            assert_eq!(
                target_state(store, run, "web-01").await,
                from,
                "setup {from:?}"
            );
            drive(store, run, to, command_seq, &mut stream_seq).await;
            let expected = if TargetState::can_move(from, to) {
                to
            } else {
                from
            };
            let actual = target_state(store, run, "web-01").await;
            assert_eq!(actual, expected, "{from:?} then a message for {to:?}");
        }
    }
}

/// Sends the message that moves a target of `run` on web-01 to `state`.
async fn drive(
    store: &Store,
    run: RunId,
    state: TargetState,
    command_seq: u64,
    stream_seq: &mut u64,
) {
    *stream_seq += 1;
    let next = *stream_seq;
    match state {
        TargetState::Queued => {}
        TargetState::Delivered => {
            store
                .apply_events(vec![seq(next, received(run, "web-01", 1))])
                .await
                .unwrap();
        }
        TargetState::Running => {
            store
                .apply_events(vec![seq(next, started(run, "web-01", 2))])
                .await
                .unwrap();
        }
        TargetState::Missed => {
            let gap = EventKind::GapDetected {
                from_seq: command_seq,
                to_seq: command_seq,
            };
            store
                .apply_events(vec![seq(next, event("web-01", 3, gap))])
                .await
                .unwrap();
        }
        // Every run of the state machine test has a deadline at t(1000), and each case
        // leaves no queued target behind, so this expires the current run only.
        TargetState::Expired => {
            store.expire_targets(t(2000)).await.unwrap();
        }
        reported => {
            let status = status_for(reported);
            store
                .apply_results(vec![seq(next, result(run, "web-01", status, None))])
                .await
                .unwrap();
        }
    }
}

fn status_for(state: TargetState) -> ResultStatus {
    match state {
        TargetState::Succeeded => ResultStatus::Succeeded,
        TargetState::Failed => ResultStatus::Failed,
        TargetState::TimedOut => ResultStatus::TimedOut,
        TargetState::Killed => ResultStatus::Killed,
        TargetState::Skipped => ResultStatus::Skipped {
            reason: SkipReason::Revoked,
        },
        TargetState::Interrupted => ResultStatus::Interrupted,
        other => panic!("{other:?} is not reported in a result"),
    }
}

#[tokio::test]
async fn a_gap_marks_missed_only_the_commands_inside_it() {
    let db = TestDb::open().await;
    let store = &db.store;
    start_run(store, run_id(1), "uptime", &["web-01", "web-02"], 10).await;
    start_run(store, run_id(2), "uptime", &["web-01"], 20).await;
    start_run(store, run_id(3), "uptime", &["web-01"], 30).await;
    start_run(store, run_id(4), "uptime", &["web-01"], 40).await;
    // Run 5 reaches web-01 twice (two group subjects): at 15 and at 45, outside the gap.
    start_run(store, run_id(5), "uptime", &["web-01"], 15).await;
    store
        .set_run_command_seq(CommandPublished {
            run_id: run_id(5),
            subject: "tutti.cmd.group.web".to_string(),
            command_id: command_id(45),
            stream_seq: 45,
            published_at: t(0),
            covers: Covers::Agents(vec![agent("web-01")]),
        })
        .await
        .unwrap();
    let events = vec![
        seq(1, received(run_id(2), "web-01", 1)),
        seq(2, started(run_id(3), "web-01", 1)),
        seq(
            3,
            event(
                "web-01",
                5,
                EventKind::GapDetected {
                    from_seq: 5,
                    to_seq: 35,
                },
            ),
        ),
    ];
    let outcome = store.apply_events(events).await.unwrap();
    assert_eq!(
        outcome.transitions, 4,
        "delivered, running, and two runs missed"
    );
    let expected = [
        (1, "web-01", TargetState::Missed),
        (1, "web-02", TargetState::Queued),
        (2, "web-01", TargetState::Missed),
        (3, "web-01", TargetState::Running),
        (4, "web-01", TargetState::Queued),
        (5, "web-01", TargetState::Queued),
    ];
    for (run, agent_name, state) in expected {
        assert_eq!(
            target_state(store, run_id(run), agent_name).await,
            state,
            "run {run} {agent_name}"
        );
    }
    assert_eq!(
        store.get_run(&run_id(2)).await.unwrap().run.status,
        RunStatus::Done
    );
    // The agent's own result is better evidence than the server's guess.
    let late = result(run_id(2), "web-01", ResultStatus::Succeeded, Some(0));
    store.apply_results(vec![seq(1, late)]).await.unwrap();
    assert_eq!(
        target_state(store, run_id(2), "web-01").await,
        TargetState::Succeeded
    );
}

#[tokio::test]
async fn anomalies_are_recorded_and_the_rest_of_the_batch_applies() {
    let db = TestDb::open().await;
    let store = &db.store;
    let run = run_id(1);
    start_run(store, run, "uptime", &["web-01"], 10).await;
    enroll(store, &["db-01"]).await;
    let unknown_run = result(run_id(404), "web-01", ResultStatus::Succeeded, Some(0));
    let not_targeted = result(run, "db-01", ResultStatus::Succeeded, Some(0));
    let mut inconsistent = result(run, "web-01", ResultStatus::Succeeded, Some(0));
    inconsistent.result_id = ResultId::new(&run, &agent("db-01"));
    let good = result(run, "web-01", ResultStatus::Succeeded, Some(0));
    let batch = vec![
        seq(1, unknown_run),
        seq(2, not_targeted),
        seq(3, inconsistent),
        seq(4, good),
    ];
    let first = store.apply_results(batch.clone()).await.unwrap();
    assert_eq!(
        (first.applied, first.anomalies, first.duplicates),
        (1, 3, 0)
    );
    let again = store.apply_results(batch).await.unwrap();
    assert_eq!(
        (again.applied, again.anomalies, again.duplicates),
        (0, 0, 4)
    );
    let event_for_unknown = seq(1, received(run_id(404), "web-01", 1));
    let outcome = store.apply_events(vec![event_for_unknown]).await.unwrap();
    assert_eq!((outcome.applied, outcome.anomalies), (1, 1));
    let anomalies = store.list_anomalies(Page::default()).await.unwrap();
    let mut kinds: Vec<(String, u64, String)> = anomalies
        .items
        .into_iter()
        .map(|a| (a.stream, a.stream_seq, a.kind))
        .collect();
    kinds.sort();
    let expected = [
        ("TUTTI_EVENTS", 1, "unknown_run"),
        ("TUTTI_RESULTS", 1, "unknown_run"),
        ("TUTTI_RESULTS", 2, "not_targeted"),
        ("TUTTI_RESULTS", 3, "inconsistent_ids"),
    ];
    let expected: Vec<(String, u64, String)> = expected
        .iter()
        .map(|(s, n, k)| (s.to_string(), *n, k.to_string()))
        .collect();
    assert_eq!(kinds, expected);
    assert_eq!(
        target_state(store, run, "web-01").await,
        TargetState::Succeeded
    );
}

#[tokio::test]
async fn a_result_with_an_unknown_status_is_kept_but_moves_nothing() {
    let db = TestDb::open().await;
    let store = &db.store;
    let run = run_id(1);
    start_run(store, run, "uptime", &["web-01"], 10).await;
    let unknown = result(run, "web-01", ResultStatus::Unknown, None);
    let outcome = store
        .apply_results(vec![seq(1, unknown.clone())])
        .await
        .unwrap();
    assert_eq!((outcome.applied, outcome.transitions), (1, 0));
    assert_eq!(
        target_state(store, run, "web-01").await,
        TargetState::Queued
    );
    let stored = store.get_result(&unknown.result_id).await.unwrap();
    assert_eq!(stored.result.status, ResultStatus::Unknown);
}

#[tokio::test]
async fn inventory_records_added_removed_changed_packages_and_facts() {
    let db = TestDb::open().await;
    let store = &db.store;
    enroll(store, &["web-01"]).await;
    let web = agent("web-01");
    let baseline = snapshot(100, &[("curl", "8.5"), ("vim", "9.0"), ("git", "2.43")]);
    let mut next = snapshot(200, &[("curl", "8.6"), ("git", "2.43"), ("htop", "3.3")]);
    next.facts.kernel = "6.9.0".to_string();
    next.facts.uptime_secs = 999;
    next.facts.disks[0].used_bytes = 77;
    let outcome = store
        .apply_inventory(vec![seq(1, baseline.clone())])
        .await
        .unwrap();
    assert_eq!(outcome.applied, 1);
    assert_eq!(
        store
            .list_inventory_changes(&web, Page::default())
            .await
            .unwrap()
            .total,
        0,
        "baseline"
    );
    store
        .apply_inventory(vec![seq(2, next.clone())])
        .await
        .unwrap();
    let changes = store
        .list_inventory_changes(&web, Page::default())
        .await
        .unwrap();
    let summary: Vec<ChangeRow<'_>> = changes
        .items
        .iter()
        .map(|c| {
            (
                c.kind,
                c.item_type,
                c.name.as_str(),
                c.old_value.as_deref(),
                c.new_value.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                ChangeKind::Changed,
                ItemType::Fact,
                "kernel",
                Some("\"6.8.0\""),
                Some("\"6.9.0\"")
            ),
            (
                ChangeKind::Changed,
                ItemType::Package,
                "dpkg/curl/amd64",
                Some("8.5"),
                Some("8.6")
            ),
            (
                ChangeKind::Added,
                ItemType::Package,
                "dpkg/htop/amd64",
                None,
                Some("3.3")
            ),
            (
                ChangeKind::Removed,
                ItemType::Package,
                "dpkg/vim/amd64",
                Some("9.0"),
                None
            ),
        ]
    );
    assert!(
        changes
            .items
            .iter()
            .all(|c| c.at == t(200) && c.stream_seq == 2)
    );
    // A replay and an older snapshot change nothing.
    let replay = store
        .apply_inventory(vec![seq(2, next), seq(1, baseline)])
        .await
        .unwrap();
    assert_eq!((replay.applied, replay.duplicates), (0, 2));
    let current = store.get_inventory(&web).await.unwrap();
    assert_eq!(
        (
            current.stream_seq,
            current.facts.kernel.as_str(),
            current.n_packages
        ),
        (2, "6.9.0", 3)
    );
    let packages = store
        .list_agent_packages(&web, Some("cur"), Page::default())
        .await
        .unwrap();
    assert_eq!(packages.items[0].version, "8.6");
    let agent_row = store.get_agent(&web, t(0)).await.unwrap();
    assert_eq!(
        (agent_row.os.as_str(), agent_row.os_version.as_str()),
        ("Ubuntu", "24.04")
    );
}

/// (kind, item type, name, old, new) of one recorded change.
type ChangeRow<'a> = (
    ChangeKind,
    ItemType,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
);

fn snapshot(at: i64, packages: &[(&str, &str)]) -> InventorySnapshot {
    InventorySnapshot {
        agent_id: agent("web-01"),
        at: t(at),
        facts: Facts {
            os_name: "Ubuntu".to_string(),
            os_version: "24.04".to_string(),
            kernel: "6.8.0".to_string(),
            uptime_secs: 10,
            disks: vec![Disk {
                mount: "/".to_string(),
                fs: "ext4".to_string(),
                total_bytes: 100,
                used_bytes: 10,
            }],
            ..Facts::default()
        },
        packages: packages
            .iter()
            .map(|(name, version)| Package {
                name: name.to_string(),
                version: version.to_string(),
                arch: "amd64".to_string(),
                manager: "dpkg".to_string(),
            })
            .collect(),
    }
}

fn audit_record(action: &str) -> AuditRecord {
    AuditRecord {
        at: t(1),
        actor: "alice".to_string(),
        role: "admin".to_string(),
        action: action.to_string(),
        target: "run/x".to_string(),
        summary: serde_json::Value::Null,
        source: None,
        outcome: AuditOutcome::Succeeded,
    }
}
