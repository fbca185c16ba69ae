//! The read side: pagination is exact and bounded, filters select what they say, runs keep
//! their schedule name and freeze mark, and the run engine's kill, revoke and expiry show
//! up in run lists.

mod common;

use std::collections::BTreeSet;

use common::*;
use tutti_proto::GroupName;
use tutti_proto::audit::{AuditOutcome, AuditRecord};
use tutti_store::*;

#[tokio::test]
async fn pages_cover_every_agent_once_in_order() {
    let db = TestDb::open().await;
    let store = &db.store;
    let names: Vec<String> = (0..23).map(|n| format!("host-{n:02}")).collect();
    enroll(store, &names.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let batch: Vec<_> = (0..23)
        .map(|n| heartbeat(&format!("host-{n:02}"), n))
        .collect();
    store.apply_heartbeats(batch).await.unwrap();
    for dir in [SortDir::Asc, SortDir::Desc] {
        let mut seen = Vec::new();
        for page_idx in 0..6 {
            let mut query = AgentQuery::all(t(0));
            query.sort = AgentSort::LastHeartbeat;
            query.dir = dir;
            query.page = Page::new(5, page_idx * 5);
            let page = store.list_agents(&query).await.unwrap();
            assert_eq!(page.total, 23);
            assert_eq!(
                page.items.len(),
                if page_idx < 4 {
                    5
                } else if page_idx == 4 {
                    3
                } else {
                    0
                }
            );
            seen.extend(
                page.items
                    .into_iter()
                    .map(|agent| agent.agent_id.to_string()),
            );
        }
        let mut expected: Vec<String> = (0..23).map(|n| format!("host-{n:02}")).collect();
        if dir == SortDir::Desc {
            expected.reverse();
        }
        assert_eq!(seen, expected);
    }
    let mut huge = AgentQuery::all(t(0));
    huge.page = Page::new(u32::MAX, 0);
    assert_eq!(huge.page.effective_limit(), MAX_PAGE_LIMIT);
    assert_eq!(store.list_agents(&huge).await.unwrap().items.len(), 23);
}

#[tokio::test]
async fn agent_filters_select_what_they_say() {
    let db = TestDb::open().await;
    let store = &db.store;
    enroll(store, &["web-01", "web-02", "db-01"]).await;
    store
        .apply_heartbeats(vec![
            heartbeat("web-01", 100),
            heartbeat("web-02", 0),
            heartbeat("db-01", 100),
        ])
        .await
        .unwrap();
    let db_group = GroupName::parse("db").unwrap();
    store
        .set_agent_groups(&agent("db-01"), vec![db_group.clone()], t(0))
        .await
        .unwrap();
    let check = |query: AgentQuery, expected: &'static [&'static str]| async move {
        let page = store.list_agents(&query).await.unwrap();
        let got: Vec<String> = page.items.iter().map(|a| a.agent_id.to_string()).collect();
        assert_eq!(got, expected, "{query:?}");
    };
    let base = AgentQuery::all(t(50));
    check(
        AgentQuery {
            search: Some("WEB".to_string()),
            ..base.clone()
        },
        &["web-01", "web-02"],
    )
    .await;
    check(
        AgentQuery {
            search: Some("example.net".to_string()),
            ..base.clone()
        },
        &["db-01", "web-01", "web-02"],
    )
    .await;
    check(
        AgentQuery {
            search: Some("%".to_string()),
            ..base.clone()
        },
        &[],
    )
    .await;
    check(
        AgentQuery {
            search: Some("b_0".to_string()),
            ..base.clone()
        },
        &[],
    )
    .await;
    check(
        AgentQuery {
            liveness: Some(Liveness::Offline),
            ..base.clone()
        },
        &["web-02"],
    )
    .await;
    check(
        AgentQuery {
            group: Some(db_group),
            ..base.clone()
        },
        &["db-01"],
    )
    .await;
    check(
        AgentQuery {
            os: Some("ubuntu".to_string()),
            ..base.clone()
        },
        &[],
    )
    .await;
    let mut by_host = base.clone();
    by_host.sort = AgentSort::Hostname;
    by_host.dir = SortDir::Desc;
    check(by_host, &["web-02", "web-01", "db-01"]).await;
}

#[tokio::test]
async fn runs_list_filters_and_pages_newest_first() {
    let db = TestDb::open().await;
    let store = &db.store;
    put_job(store, "uptime", "uptime").await;
    put_job(store, "backup", "backup").await;
    for n in 1..=12 {
        let job = if n % 3 == 0 { "backup" } else { "uptime" };
        let mut new = new_run(run_id(n), job, i64::try_from(n).unwrap() * 10);
        new.scheduled = n % 2 == 0;
        let agents = if n <= 6 {
            vec![agent("web-01")]
        } else {
            vec![agent("web-02")]
        };
        store.create_run(new, agents).await.unwrap();
    }
    let mut seen = BTreeSet::new();
    let mut previous = None;
    for offset in (0..12).step_by(5) {
        let page = store
            .list_runs(&RunQuery {
                page: Page::new(5, offset),
                ..RunQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(page.total, 12);
        for run in page.items {
            assert!(
                previous.is_none_or(|at| run.created_at < at),
                "newest first"
            );
            previous = Some(run.created_at);
            assert!(seen.insert(run.run_id));
        }
    }
    assert_eq!(seen.len(), 12);
    let count = |query: RunQuery| async move { store.list_runs(&query).await.unwrap().total };
    assert_eq!(
        count(RunQuery {
            job_id: Some(job_id("backup")),
            ..RunQuery::default()
        })
        .await,
        4
    );
    assert_eq!(
        count(RunQuery {
            scheduled: Some(true),
            ..RunQuery::default()
        })
        .await,
        6
    );
    assert_eq!(
        count(RunQuery {
            agent_id: Some(agent("web-02")),
            ..RunQuery::default()
        })
        .await,
        6
    );
    let window = RunQuery {
        created_from: Some(t(30)),
        created_until: Some(t(60)),
        ..RunQuery::default()
    };
    assert_eq!(count(window).await, 3);
    store.kill_run(&run_id(1), "bob", t(500)).await.unwrap();
    assert_eq!(
        count(RunQuery {
            status: Some(RunStatus::Killed),
            ..RunQuery::default()
        })
        .await,
        1
    );
    assert_eq!(
        count(RunQuery {
            status: Some(RunStatus::Queued),
            ..RunQuery::default()
        })
        .await,
        11
    );
}

#[tokio::test]
async fn a_run_keeps_its_schedule_name_and_freeze_mark() {
    let db = TestDb::open().await;
    let store = &db.store;
    put_job(store, "uptime", "uptime").await;
    let mut fired = new_run(run_id(1), "uptime", 10);
    fired.scheduled = true;
    fired.schedule_name = Some("nightly-uptime".to_string());
    let mut frozen = new_run(run_id(2), "uptime", 20);
    frozen.during_freeze = true;
    let plain = new_run(run_id(3), "uptime", 30);
    for new in [fired, frozen, plain] {
        store.create_run(new, vec![agent("web-01")]).await.unwrap();
    }

    let run = |n| async move { store.get_run(&run_id(n)).await.unwrap().run };
    let fired = run(1).await;
    assert_eq!(fired.schedule_name.as_deref(), Some("nightly-uptime"));
    assert!(!fired.during_freeze);
    let frozen = run(2).await;
    assert_eq!((frozen.schedule_name, frozen.during_freeze), (None, true));
    let plain = run(3).await;
    assert_eq!((plain.schedule_name, plain.during_freeze), (None, false));

    // The list decodes the same columns, and the API serialises both fields.
    let listed = store.list_runs(&RunQuery::default()).await.unwrap();
    let json = serde_json::to_value(&listed.items).unwrap();
    let marks: Vec<_> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|run| (run["schedule_name"].clone(), run["during_freeze"].clone()))
        .collect();
    assert_eq!(
        marks,
        [
            (serde_json::Value::Null, false.into()),
            (serde_json::Value::Null, true.into()),
            ("nightly-uptime".into(), false.into()),
        ],
        "newest first"
    );
}

#[tokio::test]
async fn expiry_revocation_and_unknown_ids() {
    let db = TestDb::open().await;
    let store = &db.store;
    let mut with_deadline = new_run(run_id(1), "uptime", 0);
    with_deadline.deadline = Some(t(100));
    start_run_with(store, with_deadline, &["web-01", "web-02"], 10).await;
    start_run(store, run_id(2), "uptime", &["web-01", "web-02"], 20).await;
    store
        .apply_events(vec![seq(1, started(run_id(1), "web-01", 5))])
        .await
        .unwrap();
    assert_eq!(
        store.expire_targets(t(99)).await.unwrap(),
        0,
        "before the deadline"
    );
    assert_eq!(
        store.expire_targets(t(101)).await.unwrap(),
        1,
        "only the queued one"
    );
    assert_eq!(
        target_state(store, run_id(1), "web-02").await,
        TargetState::Expired
    );
    assert_eq!(
        target_state(store, run_id(1), "web-01").await,
        TargetState::Running
    );
    assert_eq!(
        store
            .revoke_job(&job_id("uptime"), "bob", t(200))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store.get_run(&run_id(2)).await.unwrap().run.status,
        RunStatus::Done
    );
    assert!(
        store
            .get_job(&job_id("uptime"))
            .await
            .unwrap()
            .revoked_at
            .is_some()
    );
    let missing = store.get_run(&run_id(3)).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(ref what)) if what.starts_with("run ")),
        "{missing:?}"
    );
    let no_job = store
        .create_run(new_run(run_id(4), "nope", 0), vec![])
        .await;
    assert!(matches!(no_job, Err(StoreError::NotFound(_))), "{no_job:?}");
    let no_kill = store.kill_run(&run_id(5), "bob", t(0)).await;
    assert!(
        matches!(no_kill, Err(StoreError::NotFound(_))),
        "{no_kill:?}"
    );
}

#[tokio::test]
async fn jobs_hide_anonymous_and_deleted_and_keep_versions() {
    let db = TestDb::open().await;
    let store = &db.store;
    put_job(store, "uptime", "uptime").await;
    let adhoc = JobDraft {
        job_id: job_id("adhoc-1"),
        definition: serde_json::json!({ "script": "id" }),
        source_yaml: String::new(),
        anonymous: true,
    };
    store.put_job(adhoc, "alice", t(0)).await.unwrap();
    assert_eq!(
        store.list_jobs(false, Page::default()).await.unwrap().total,
        1
    );
    assert_eq!(
        store.list_jobs(true, Page::default()).await.unwrap().total,
        2
    );
    // A comment-only edit keeps the version and the new text.
    let edited = JobDraft {
        job_id: job_id("uptime"),
        definition: serde_json::json!({ "shell": "sh", "script": "uptime" }),
        source_yaml: "# reworded comment\n".to_string(),
        anonymous: false,
    };
    let outcome = store.put_job(edited, "alice", t(1)).await.unwrap();
    assert_eq!((outcome.version, outcome.changed), (1, false));
    assert_eq!(
        store
            .get_job_version(&job_id("uptime"), 1)
            .await
            .unwrap()
            .source_yaml,
        "# reworded comment\n"
    );
    store.delete_job(&job_id("uptime"), t(2)).await.unwrap();
    assert!(matches!(
        store.get_job(&job_id("uptime")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        store.get_job_version(&job_id("uptime"), 1).await.is_ok(),
        "runs still refer to it"
    );
    assert_eq!(
        put_job(store, "uptime", "uptime").await,
        2,
        "re-applying a deleted job is a new version"
    );
}

#[tokio::test]
async fn audit_query_filters_by_actor_action_target_and_time() {
    let db = TestDb::open().await;
    let store = &db.store;
    let batch: Vec<_> = (0..30u64)
        .map(|n| {
            let record = AuditRecord {
                at: t(i64::try_from(n).unwrap()),
                actor: if n % 2 == 0 { "alice" } else { "bob" }.to_string(),
                role: "operator".to_string(),
                action: if n % 3 == 0 { "run.kill" } else { "run.create" }.to_string(),
                target: format!("run/{}", n % 5),
                summary: serde_json::json!({ "n": n }),
                source: None,
                outcome: AuditOutcome::Succeeded,
            };
            seq(n + 1, record)
        })
        .collect();
    store.apply_audit(batch).await.unwrap();
    let total = |query: AuditQuery| async move { store.query_audit(&query).await.unwrap().total };
    assert_eq!(total(AuditQuery::default()).await, 30);
    assert_eq!(
        total(AuditQuery {
            actor: Some("alice".to_string()),
            ..AuditQuery::default()
        })
        .await,
        15
    );
    assert_eq!(
        total(AuditQuery {
            action: Some("run.kill".to_string()),
            ..AuditQuery::default()
        })
        .await,
        10
    );
    assert_eq!(
        total(AuditQuery {
            target: Some("run/0".to_string()),
            ..AuditQuery::default()
        })
        .await,
        6
    );
    let window = AuditQuery {
        from: Some(t(10)),
        until: Some(t(20)),
        ..AuditQuery::default()
    };
    assert_eq!(total(window).await, 10);
    let page = store
        .query_audit(&AuditQuery {
            page: Page::new(7, 7),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let seqs: Vec<u64> = page.items.iter().map(|entry| entry.stream_seq).collect();
    assert_eq!(
        seqs,
        [23, 22, 21, 20, 19, 18, 17],
        "newest first, second page"
    );
}

/// A token's groups are stored with it, listed, and given to every agent it enrolls
/// (groups created on the way); a token without groups keeps an agent's existing ones.
#[tokio::test]
async fn enrollment_tokens_assign_their_groups() {
    let db = TestDb::open().await;
    let store = &db.store;
    let web_edge: Vec<GroupName> = ["web", "edge"]
        .iter()
        .map(|g| GroupName::parse(g).unwrap())
        .collect();
    store
        .create_enrollment_token(token("tok-web", "hash-web", web_edge.clone()))
        .await
        .unwrap();
    store
        .create_enrollment_token(token("tok-none", "hash-none", Vec::new()))
        .await
        .unwrap();
    let listed = store.list_enrollment_tokens(Page::default()).await.unwrap();
    let with_groups = listed
        .items
        .iter()
        .find(|t| t.token_id == "tok-web")
        .unwrap();
    assert_eq!(with_groups.groups, web_edge);

    let groups = store
        .enroll_agent("hash-web", enrolling("web-01"))
        .await
        .unwrap();
    assert_eq!(groups, web_edge, "in the token's order");
    let stored = store.get_agent(&agent("web-01"), t(0)).await.unwrap();
    assert_eq!(stored.groups, web_edge);
    let names: Vec<String> = store
        .list_groups(Page::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|g| g.group_name.to_string())
        .collect();
    assert_eq!(names, ["edge", "web"]);

    // A row an older server created from a heartbeat, put in a group by an operator
    // before the agent enrolled.
    db.raw()
        .execute(
            "INSERT INTO agents (agent_id, first_seen_at) VALUES ('db-01', 0)",
            [],
        )
        .unwrap();
    let db_group = vec![GroupName::parse("db").unwrap()];
    store
        .set_agent_groups(&agent("db-01"), db_group.clone(), t(6))
        .await
        .unwrap();
    let groups = store
        .enroll_agent("hash-none", enrolling("db-01"))
        .await
        .unwrap();
    assert_eq!(groups, db_group);
}

fn token(token_id: &str, token_hash: &str, groups: Vec<GroupName>) -> NewEnrollmentToken {
    NewEnrollmentToken {
        token_id: token_id.to_string(),
        token_hash: token_hash.to_string(),
        name: token_id.to_string(),
        created_at: t(0),
        created_by: "alice".to_string(),
        expires_at: t(3600),
        uses: 5,
        groups,
    }
}

fn enrolling(name: &str) -> NewAgent {
    NewAgent {
        agent_id: agent(name),
        hostname: name.to_string(),
        os: "Debian".to_string(),
        arch: "x86_64".to_string(),
        version: "0.1.0".to_string(),
        enrolled_at: t(10),
        broker_public_key: None,
    }
}
