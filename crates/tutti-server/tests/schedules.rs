//! Schedules against a real broker, the real server and a real agent: manifests applied,
//! previewed across a DST change, switched and deleted; fires driven by the scheduler's
//! `tick` with a clock of the test's choosing (a run per fire, never two, skipped during a
//! freeze, missed after an outage); and two servers on one broker with one leader.

mod common;

use common::*;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use tutti_server::schedule::scheduler;
use tutti_testkit::{TestAgent, TestNats, TestServer};

const JOB: &str = "kind: Job\nname: rotate-logs\nscript: echo rotated\n";

fn schedule(name: &str, cron: &str, extra: &str) -> String {
    format!(
        "# {name}, applied by the test\nkind: Schedule\nname: {name}\njob: rotate-logs\ntargets: {{all: true}}\ncron: \"{cron}\"\n{extra}"
    )
}

async fn apply(server: &TestServer, path: &str, manifest: &str) -> (u16, Value) {
    server.post_text(path, "application/yaml", manifest).await
}

/// A server whose background scheduler is off, so the test's `tick` is the only clock.
async fn quiet_server(nats: &TestNats) -> TestServer {
    TestServer::start_with(nats, |config| config.scheduler.enabled = false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_applied_previewed_across_dst_switched_and_deleted() {
    let nats = TestNats::start();
    let server = quiet_server(&nats).await;
    assert_eq!(apply(&server, "/api/v1/jobs", JOB).await.0, 200);
    let nightly = schedule("nightly", "0 3 * * *", "timezone: Europe/Berlin\n");

    let (status, body) = apply(&server, "/api/v1/schedules?dry_run=true", &nightly).await;
    assert_eq!(
        (status, &body["applied"][0]["result"]),
        (200, &json!("created")),
        "{body}"
    );
    let listed: Value = server.get("/api/v1/schedules").await;
    assert_eq!(listed["total"], 0, "a dry run stores nothing");
    let (_, body) = apply(&server, "/api/v1/schedules", &nightly).await;
    assert_eq!(body["applied"][0]["result"], "created");
    let (_, body) = apply(&server, "/api/v1/schedules", &nightly).await;
    assert_eq!(body["applied"][0]["result"], "unchanged");

    let listed: Value = server.get("/api/v1/schedules").await;
    assert!(listed["items"][0]["next_fire"].is_string(), "{listed:#}");
    let detail: Value = server.get("/api/v1/schedules/nightly").await;
    assert_eq!(detail["next_fires"].as_array().unwrap().len(), 5);
    assert_eq!(
        detail["schedule"]["source_yaml"], nightly,
        "the manifest keeps its comment"
    );

    // 03:00 in Berlin is 02:00 UTC before the spring-forward on 2026-03-29, 01:00 after.
    let preview: Value = server
        .get("/api/v1/schedules/nightly/preview?n=3&after=2026-03-28T00:00:00Z")
        .await;
    assert_eq!(
        preview["fires"],
        json!([
            "2026-03-28T02:00:00Z",
            "2026-03-29T01:00:00Z",
            "2026-03-30T01:00:00Z"
        ])
    );
    assert_eq!(preview["local"][0], "2026-03-28 03:00:00 +01:00");
    assert_eq!(preview["local"][1], "2026-03-29 03:00:00 +02:00");

    let (status, body) = apply(
        &server,
        "/api/v1/schedules",
        &schedule("x", "0 3 * * *", "").replace("job: rotate-logs", "job: nope"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("job nope does not exist"),
        "{body}"
    );
    let (status, body) = apply(
        &server,
        "/api/v1/schedules",
        &schedule("x", "61 * * * *", ""),
    )
    .await;
    assert_eq!(status, 400);
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("line 6") && message.contains("minute"),
        "{message}"
    );

    let response = server
        .http()
        .patch(format!("{}/api/v1/schedules/nightly", server.url()))
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let listed: Value = server.get("/api/v1/schedules").await;
    assert_eq!(
        (
            listed["items"][0]["enabled"].clone(),
            listed["items"][0]["next_fire"].clone()
        ),
        (json!(false), Value::Null)
    );
    let response = server
        .http()
        .delete(format!("{}/api/v1/schedules/nightly", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    assert_eq!(server.try_get("/api/v1/schedules/nightly").await.0, 404);
    let audit = server
        .wait_for(
            "/api/v1/audit?target=schedule/nightly",
            "schedule audit",
            |page| page["total"] == 4,
        )
        .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["record"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "schedule.delete",
            "schedule.disable",
            "schedule.apply",
            "schedule.apply"
        ]
    );
}

/// The schedule's fires, oldest first: `(fire_at, run_id, skipped)`.
async fn fires(server: &TestServer, name: &str) -> Vec<(String, Option<String>, Option<String>)> {
    let detail: Value = server.get(&format!("/api/v1/schedules/{name}")).await;
    let mut fires: Vec<_> = detail["recent_fires"]
        .as_array()
        .unwrap()
        .iter()
        .map(|fire| {
            (
                fire["fire_at"].as_str().unwrap().to_string(),
                fire["run_id"].as_str().map(str::to_string),
                fire["skipped"].as_str().map(str::to_string),
            )
        })
        .collect();
    fires.reverse();
    fires
}

/// The first fire time of `name` after `after`.
async fn next_fire(server: &TestServer, name: &str, after: Timestamp) -> Timestamp {
    let preview: Value = server
        .get(&format!(
            "/api/v1/schedules/{name}/preview?n=1&after={after}"
        ))
        .await;
    preview["fires"][0].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fire_runs_once_is_skipped_during_a_freeze_and_missed_after_an_outage() {
    let nats = TestNats::start();
    let server = quiet_server(&nats).await;
    let _agent = TestAgent::spawn(&server, "web-01").await;
    wait_online(&server, &["web-01"]).await;
    assert_eq!(apply(&server, "/api/v1/jobs", JOB).await.0, 200);
    assert_eq!(
        apply(
            &server,
            "/api/v1/schedules",
            &schedule("every-five", "*/5 * * * *", "")
        )
        .await
        .0,
        200
    );
    let app = server.app();
    let second = SignedDuration::from_secs(1);

    let first = next_fire(&server, "every-five", Timestamp::now()).await;
    scheduler::tick(app, first - second).await.unwrap();
    assert!(
        fires(&server, "every-five").await.is_empty(),
        "nothing before its time"
    );
    scheduler::tick(app, first + second).await.unwrap();
    scheduler::tick(app, first + second * 2).await.unwrap();
    let recorded = fires(&server, "every-five").await;
    assert_eq!(
        recorded.len(),
        1,
        "one fire, however many ticks: {recorded:?}"
    );
    let run_id = recorded[0].1.clone().expect("the fire created a run");
    let view = wait_run_done(&server, &run_id).await;
    assert_eq!(
        target_states(&view),
        [("web-01".to_string(), "succeeded".to_string())]
    );
    let detail: Value = server.get("/api/v1/schedules/every-five").await;
    assert_eq!(
        detail["last_run"]["run"]["run_id"],
        run_id.as_str(),
        "{detail:#}"
    );
    assert_eq!(
        detail["last_run"]["counts"]["by_state"],
        json!([["succeeded", 1]]),
        "{detail:#}"
    );
    assert_eq!(
        (
            view["run"]["schedule_name"].clone(),
            view["run"]["scheduled"].clone()
        ),
        (json!("every-five"), json!(true))
    );

    // Frozen: the next fire is recorded as skipped, and no run is created.
    let _: Value = server
        .put("/api/v1/fleet/freeze", &json!({"reason": "release week"}))
        .await;
    let second_fire = next_fire(&server, "every-five", first).await;
    scheduler::tick(app, second_fire + second).await.unwrap();
    let response = server
        .http()
        .delete(format!("{}/api/v1/fleet/freeze", server.url()))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());

    // The server was away for 16 minutes: fires older than the grace are missed, the
    // latest one runs.
    let fifth = second_fire + SignedDuration::from_secs(3 * 300);
    scheduler::tick(app, fifth + SignedDuration::from_secs(60))
        .await
        .unwrap();
    let recorded = fires(&server, "every-five").await;
    let outcomes: Vec<(Option<&str>, bool)> = recorded
        .iter()
        .map(|(_, run, skipped)| (skipped.as_deref(), run.is_some()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (None, true),
            (Some("frozen"), false),
            (Some("missed"), false),
            (Some("missed"), false),
            (None, true)
        ],
        "{recorded:?}"
    );
    let runs: Value = server.get("/api/v1/runs").await;
    let scheduled = runs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|run| run["schedule_name"] == "every-five")
        .count();
    assert_eq!(scheduled, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_broker_elect_one_leader_and_never_fire_twice() {
    let nats = TestNats::start();
    let fast = |config: &mut tutti_server::ServerConfig| {
        config.scheduler.lease_ttl_secs = 2;
        config.scheduler.tick_ms = 200;
    };
    let mut first = TestServer::start_with(&nats, fast).await;
    let data_dir = first.data_dir().to_path_buf();
    let second = TestServer::start_with(&nats, |config| {
        fast(config);
        config.data_dir = data_dir;
    })
    .await;
    let leaders = || [first.scheduler_term(), second.scheduler_term()];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while leaders().iter().flatten().count() != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no single leader: {:?}",
            leaders()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for _ in 0..20 {
        assert!(
            leaders().iter().flatten().count() <= 1,
            "two leaders: {:?}",
            leaders()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Both servers share one database: whatever both do at one fire time, one run.
    let _agent = TestAgent::spawn(&first, "web-01").await;
    assert_eq!(apply(&first, "/api/v1/jobs", JOB).await.0, 200);
    assert_eq!(
        apply(
            &first,
            "/api/v1/schedules",
            &schedule("hourly", "0 * * * *", "")
        )
        .await
        .0,
        200
    );
    let fire = next_fire(&first, "hourly", Timestamp::now()).await + SignedDuration::from_secs(1);
    let (a, b) = tokio::join!(
        scheduler::tick(first.app(), fire),
        scheduler::tick(second.app(), fire)
    );
    a.unwrap();
    b.unwrap();
    let recorded = fires(&first, "hourly").await;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert!(recorded[0].1.is_some(), "{recorded:?}");

    // The leader stops: the other takes over with a higher term.
    let (old_term, first_led) = match leaders() {
        [Some(term), None] => (term, true),
        [None, Some(term)] => (term, false),
        other => panic!("no single leader: {other:?}"),
    };
    let mut second = second;
    if first_led {
        first.stop().await;
    } else {
        second.stop().await;
    }
    let follower = if first_led { &second } else { &first };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        if let Some(term) = follower.scheduler_term() {
            assert!(term > old_term, "{term} after {old_term}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "nobody took over");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
