//! The database story: the whole lifecycle through the public API only, written against
//! `&Store` so every backend runs the same story (SQLite always; Postgres when it exists,
//! by adding one `#[tokio::test]` that opens it and calls [`run_story`]).
//!
//! Enroll three agents, heartbeats, groups, a job with versions, a run on all three with
//! one offline agent catching up later, a late event that must not move a finished target,
//! a killed run, inventory with a package change, audit, an anomaly, and deletion.

mod common;

use common::*;
use tutti_proto::audit::{AuditOutcome, AuditRecord};
use tutti_proto::inventory::{Facts, InventorySnapshot, Package};
use tutti_proto::result::{ObjectRef, ResultStatus};
use tutti_proto::{GroupName, RunId};
use tutti_store::*;

#[tokio::test]
async fn story_on_sqlite() {
    let db = TestDb::open().await;
    run_story(&db.store).await;
    assert_one_timestamp_format(&db.raw());
}

/// The story, backend-independent.
async fn run_story(store: &Store) {
    enroll(store).await;
    heartbeats_and_groups(store).await;
    jobs(store).await;
    run_on_all_with_an_offline_agent(store).await;
    killed_run(store).await;
    inventory(store).await;
    audit(store).await;
    anomalies_and_deletion(store).await;
}

async fn enroll(store: &Store) {
    let token = NewEnrollmentToken {
        token_id: "tok-1".to_string(),
        token_hash: "hash-1".to_string(),
        name: "office".to_string(),
        created_at: t(0),
        created_by: "alice".to_string(),
        expires_at: t(3600),
        uses: 3,
        groups: Vec::new(),
    };
    store.create_enrollment_token(token).await.unwrap();
    for name in ["web-01", "web-02", "db-01"] {
        let groups = store.enroll_agent("hash-1", new_agent(name)).await.unwrap();
        assert_eq!(
            groups,
            [] as [GroupName; 0],
            "a token without groups assigns none"
        );
    }
    let used_up = store.enroll_agent("hash-1", new_agent("web-03")).await;
    assert!(
        matches!(used_up, Err(StoreError::NotFound(_))),
        "{used_up:?}"
    );
    let wrong = store.enroll_agent("nope", new_agent("web-03")).await;
    assert!(matches!(wrong, Err(StoreError::NotFound(_))), "{wrong:?}");
    let tokens = store.list_enrollment_tokens(Page::default()).await.unwrap();
    assert_eq!(tokens.items[0].uses_left, 0);
}

fn new_agent(name: &str) -> NewAgent {
    NewAgent {
        agent_id: agent(name),
        hostname: name.to_string(),
        os: "Ubuntu".to_string(),
        arch: "x86_64".to_string(),
        version: "0.1.0".to_string(),
        enrolled_at: t(0),
        broker_public_key: None,
    }
}

async fn heartbeats_and_groups(store: &Store) {
    let batch = vec![heartbeat("web-01", 100), heartbeat("web-02", 10)];
    store.apply_heartbeats(batch).await.unwrap();
    let mut query = AgentQuery::all(t(60));
    query.liveness = Some(Liveness::Online);
    assert_eq!(ids(&store.list_agents(&query).await.unwrap()), ["web-01"]);
    query.liveness = Some(Liveness::Offline);
    assert_eq!(ids(&store.list_agents(&query).await.unwrap()), ["web-02"]);
    query.liveness = Some(Liveness::Never);
    assert_eq!(ids(&store.list_agents(&query).await.unwrap()), ["db-01"]);

    let web = GroupName::parse("web").unwrap();
    for name in ["web-01", "web-02"] {
        store
            .set_agent_groups(&agent(name), vec![web.clone()], t(0))
            .await
            .unwrap();
    }
    let mut query = AgentQuery::all(t(60));
    query.group = Some(web);
    assert_eq!(
        ids(&store.list_agents(&query).await.unwrap()),
        ["web-01", "web-02"]
    );
    let detail = store.get_agent(&agent("web-01"), t(60)).await.unwrap();
    assert_eq!(detail.hostname, "web-01.example.net");
    assert_eq!(detail.liveness, Liveness::Online);
    assert_eq!(detail.last_heartbeat.unwrap().cursor, 7);
    let groups = store.list_groups(Page::default()).await.unwrap();
    assert_eq!(
        (
            groups.items[0].group_name.as_str(),
            groups.items[0].n_agents
        ),
        ("web", 2)
    );
}

fn ids(page: &Paged<Agent>) -> Vec<&str> {
    page.items
        .iter()
        .map(|agent| agent.agent_id.as_str())
        .collect()
}

async fn jobs(store: &Store) {
    assert_eq!(put_job(store, "uptime", "uptime").await, 1);
    assert_eq!(
        put_job(store, "uptime", "uptime").await,
        1,
        "same definition, same version"
    );
    assert_eq!(put_job(store, "uptime", "uptime -p").await, 2);
    let job = store.get_job(&job_id("uptime")).await.unwrap();
    assert_eq!(job.version, 2);
    assert!(
        job.source_yaml.starts_with("# uptime\n"),
        "comments are kept"
    );
    let versions = store
        .list_job_versions(&job_id("uptime"), Page::default())
        .await
        .unwrap();
    let numbers: Vec<u32> = versions.items.iter().map(|v| v.version).collect();
    assert_eq!(numbers, [2, 1]);
}

async fn run_on_all_with_an_offline_agent(store: &Store) {
    let run = run_id(1);
    let mut new = new_run(run, "uptime", 0);
    new.job_version = 2;
    let targets = vec![agent("web-01"), agent("web-02"), agent("db-01")];
    store
        .create_run(new.clone(), targets.clone())
        .await
        .unwrap();
    let again = store.create_run(new, targets).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_status(store, run, RunStatus::Queued, &[(TargetState::Queued, 3)]).await;

    let events = vec![
        seq(1, received(run, "web-01", 1)),
        seq(2, started(run, "web-01", 2)),
        seq(3, received(run, "web-02", 1)),
    ];
    store.apply_events(events).await.unwrap();
    assert_status(
        store,
        run,
        RunStatus::Running,
        &[
            (TargetState::Queued, 1),
            (TargetState::Delivered, 1),
            (TargetState::Running, 1),
        ],
    )
    .await;

    let mut ok = result(run, "web-01", ResultStatus::Succeeded, Some(0));
    ok.stdout.object = Some(ObjectRef {
        bucket: "tutti_output".to_string(),
        name: format!("{run}/web-01/stdout"),
        size: 300_000,
        sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_string(),
    });
    let failed = result(run, "web-02", ResultStatus::Failed, Some(3));
    store
        .apply_results(vec![seq(1, ok.clone()), seq(2, failed)])
        .await
        .unwrap();
    // A late `received` for a finished target changes nothing.
    store
        .apply_events(vec![seq(4, received(run, "web-01", 30))])
        .await
        .unwrap();
    assert_eq!(
        target_state(store, run, "web-01").await,
        TargetState::Succeeded
    );
    assert_status(
        store,
        run,
        RunStatus::Running,
        &[
            (TargetState::Queued, 1),
            (TargetState::Succeeded, 1),
            (TargetState::Failed, 1),
        ],
    )
    .await;

    // The offline agent wakes up and catches up.
    store
        .apply_events(vec![
            seq(5, received(run, "db-01", 500)),
            seq(6, started(run, "db-01", 501)),
        ])
        .await
        .unwrap();
    let late = result(run, "db-01", ResultStatus::Succeeded, Some(0));
    store.apply_results(vec![seq(3, late)]).await.unwrap();
    assert_status(
        store,
        run,
        RunStatus::Done,
        &[(TargetState::Succeeded, 2), (TargetState::Failed, 1)],
    )
    .await;

    let stored = store.get_result(&ok.result_id).await.unwrap();
    assert_eq!(
        stored.result, ok,
        "output and object reference stored as received"
    );
    let web_02 = store
        .list_results(&run, Some(&agent("web-02")), Page::default())
        .await
        .unwrap();
    assert_eq!(web_02.items[0].result.exit_code, Some(3));
    let targets = store
        .list_targets(&run, &TargetQuery::default())
        .await
        .unwrap();
    let failed_target = targets
        .items
        .iter()
        .find(|t| t.agent_id.as_str() == "web-02")
        .unwrap();
    assert_eq!(failed_target.exit_code, Some(3));
}

async fn assert_status(
    store: &Store,
    run: RunId,
    status: RunStatus,
    counts: &[(TargetState, u64)],
) {
    let detail = store.get_run(&run).await.unwrap();
    assert_eq!(detail.run.status, status);
    assert_eq!(detail.counts.by_state, counts);
}

async fn killed_run(store: &Store) {
    let run = run_id(2);
    let mut new = new_run(run, "uptime", 1000);
    new.job_version = 2;
    store
        .create_run(new, vec![agent("web-01"), agent("web-02")])
        .await
        .unwrap();
    store
        .apply_events(vec![seq(7, started(run, "web-01", 1001))])
        .await
        .unwrap();
    assert_eq!(store.kill_run(&run, "bob", t(1002)).await.unwrap(), 1);
    assert_eq!(
        store.kill_run(&run, "bob", t(1003)).await.unwrap(),
        0,
        "idempotent"
    );
    let detail = store.get_run(&run).await.unwrap();
    assert_eq!(detail.run.status, RunStatus::Killed);
    assert_eq!(detail.run.killed_by.as_deref(), Some("bob"));
    assert_eq!(
        target_state(store, run, "web-02").await,
        TargetState::Skipped
    );
    assert_eq!(
        target_state(store, run, "web-01").await,
        TargetState::Running
    );
    // The running process reports its kill; the queued copy that catches up later reports
    // skipped, which is already its state.
    let killed = result(run, "web-01", ResultStatus::Killed, None);
    let skipped = result(
        run,
        "web-02",
        ResultStatus::Skipped {
            reason: tutti_proto::result::SkipReason::Killed,
        },
        None,
    );
    let outcome = store
        .apply_results(vec![seq(4, killed), seq(5, skipped)])
        .await
        .unwrap();
    assert_eq!((outcome.applied, outcome.transitions), (2, 1));
    assert_eq!(
        target_state(store, run, "web-01").await,
        TargetState::Killed
    );
    let killed_runs = store
        .list_runs(&RunQuery {
            status: Some(RunStatus::Killed),
            ..RunQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(killed_runs.items.len(), 1);
    assert_eq!(killed_runs.items[0].run_id, run);
}

async fn inventory(store: &Store) {
    let web = agent("web-01");
    let first = snapshot("web-01", 100, &[("curl", "8.5.0"), ("vim", "9.1")], "6.8.0");
    let second = snapshot(
        "web-01",
        200,
        &[("curl", "8.6.0"), ("htop", "3.3")],
        "6.8.1",
    );
    store
        .apply_inventory(vec![seq(1, first), seq(2, second)])
        .await
        .unwrap();
    let current = store.get_inventory(&web).await.unwrap();
    assert_eq!(
        (current.facts.kernel.as_str(), current.n_packages),
        ("6.8.1", 2)
    );
    let changes = store
        .list_inventory_changes(&web, Page::default())
        .await
        .unwrap();
    let summary: Vec<(ChangeKind, &str)> = changes
        .items
        .iter()
        .map(|c| (c.kind, c.name.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (ChangeKind::Changed, "kernel"),
            (ChangeKind::Changed, "dpkg/curl/amd64"),
            (ChangeKind::Added, "dpkg/htop/amd64"),
            (ChangeKind::Removed, "dpkg/vim/amd64"),
        ]
    );
    let query = PackageQuery {
        name: "curl".to_string(),
        version: Some("8.6.0".to_string()),
        page: Page::default(),
    };
    let hits = store.search_packages(&query).await.unwrap();
    assert_eq!(hits.items.len(), 1);
    assert_eq!(hits.items[0].agent_id, web);
}

fn snapshot(
    agent_name: &str,
    at: i64,
    packages: &[(&str, &str)],
    kernel: &str,
) -> InventorySnapshot {
    InventorySnapshot {
        agent_id: agent(agent_name),
        at: t(at),
        facts: Facts {
            os_name: "Ubuntu".to_string(),
            kernel: kernel.to_string(),
            uptime_secs: at as u64,
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

async fn audit(store: &Store) {
    let record = |at: i64, action: &str| AuditRecord {
        at: t(at),
        actor: "alice".to_string(),
        role: "operator".to_string(),
        action: action.to_string(),
        target: "run/1".to_string(),
        summary: serde_json::json!({ "n": at }),
        source: Some("203.0.113.9".to_string()),
        outcome: AuditOutcome::Succeeded,
    };
    let batch = vec![
        seq(1, record(1, "run.create")),
        seq(2, record(2, "run.kill")),
    ];
    store.apply_audit(batch.clone()).await.unwrap();
    let query = AuditQuery {
        action: Some("run.kill".to_string()),
        ..AuditQuery::default()
    };
    let found = store.query_audit(&query).await.unwrap();
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].record, batch[1].message);
}

async fn anomalies_and_deletion(store: &Store) {
    let stray = result(run_id(99), "web-01", ResultStatus::Succeeded, Some(0));
    let outcome = store.apply_results(vec![seq(6, stray)]).await.unwrap();
    assert_eq!(outcome.anomalies, 1);
    let anomalies = store.list_anomalies(Page::default()).await.unwrap();
    assert_eq!(anomalies.items[0].kind, "unknown_run");

    store.delete_agent(&agent("db-01")).await.unwrap();
    assert!(matches!(
        store.get_agent(&agent("db-01"), t(0)).await,
        Err(StoreError::NotFound(_))
    ));
    let runs = store
        .list_runs(&RunQuery {
            agent_id: Some(agent("db-01")),
            ..RunQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(runs.total, 1, "a deleted agent's run history stays");
}

/// Every `*_at` column of every table holds integers (unix ms) or NULL, never text.
fn assert_one_timestamp_format(conn: &rusqlite::Connection) {
    let mut columns = Vec::new();
    let mut tables = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap();
    let names: Vec<String> = tables
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for table in names {
        let mut info = conn
            .prepare(&format!("PRAGMA table_info({table})"))
            .unwrap();
        let cols: Vec<String> = info
            .query_map([], |row| row.get(1))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        columns.extend(
            cols.into_iter()
                .filter(|c| c.ends_with("_at") || c == "deadline")
                .map(|c| (table.clone(), c)),
        );
    }
    assert!(columns.len() > 20, "{columns:?}");
    for (table, column) in columns {
        let bad: i64 = conn
            .query_row(
                &format!(
                    "SELECT COUNT(*) FROM {table} WHERE typeof({column}) NOT IN ('integer', 'null')"
                ),
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(bad, 0, "{table}.{column} holds a non-integer timestamp");
    }
}
