//! Desired-state schedules against a real broker, the real server and real agents: every
//! laptop runs a job once per version (an offline one catches up when it starts, one that
//! enrolls later gets its own run, nobody runs twice, a new version re-arms everyone); a
//! failing job is retried with backoff until the limit; a freeze holds the schedule. The
//! background scheduler is off; the test drives `reconcile` and `tick` with its own clock.

mod common;

use common::*;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use tutti_proto::{AgentId, JobId};
use tutti_server::api::schedules::parse_stored;
use tutti_server::schedule::desired::{self, Hold, MAX_FAILED_ATTEMPTS, ReconcileOutcome};
use tutti_server::schedule::scheduler;
use tutti_store::{Page, RunQuery};
use tutti_testkit::{TestAgent, TestNats, TestServer};

const ONCE: &str = "kind: Schedule\nname: laptops-patch\njob: patch\ntargets: {groups: [laptops]}\ndesired_state: {once_per_version: true}\n";

fn job(name: &str, script: &str) -> String {
    format!("kind: Job\nname: {name}\nscript: {script}\n")
}

async fn apply(server: &TestServer, path: &str, manifest: &str) {
    let (status, body) = server.post_text(path, "application/yaml", manifest).await;
    assert_eq!(status, 200, "{body}");
}

/// A server whose background scheduler is off, so the test's calls are the only clock.
async fn quiet_server(nats: &TestNats) -> TestServer {
    TestServer::start_with(nats, |config| config.scheduler.enabled = false).await
}

/// One reconcile of schedule `name` as if the time were `now`.
async fn reconcile(server: &TestServer, name: &str, now: Timestamp) -> ReconcileOutcome {
    let schedule = server.app().store.get_schedule(name).await.unwrap();
    let spec = parse_stored(&schedule).unwrap();
    desired::reconcile(server.app(), &schedule, &spec, now)
        .await
        .expect("reconcile")
}

/// The run a reconcile started and its targets; panics on anything else.
fn started(outcome: ReconcileOutcome) -> (String, Vec<String>) {
    match outcome {
        ReconcileOutcome::Started { run_id, agents, .. } => (
            run_id.to_string(),
            agents.iter().map(ToString::to_string).collect(),
        ),
        other => panic!("expected a run, got {other:?}"),
    }
}

async fn coverage(server: &TestServer, name: &str) -> Value {
    server
        .get(&format!("/api/v1/schedules/{name}/coverage"))
        .await
}

/// `agent → status` of a coverage answer.
fn statuses(coverage: &Value) -> Vec<(String, String)> {
    coverage["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .map(|agent| {
            let id = agent["agent_id"].as_str().unwrap().to_string();
            (id, agent["status"].as_str().unwrap().to_string())
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(agent, status)| (agent.to_string(), status.to_string()))
        .collect()
}

/// How many times `agent` was targeted by, and ran, `job` at `version`: (targets, results).
async fn executions(server: &TestServer, job: &str, agent: &str, version: u32) -> (usize, usize) {
    let store = &server.app().store;
    let query = RunQuery {
        job_id: Some(JobId::parse(job).unwrap()),
        agent_id: Some(AgentId::parse(agent).unwrap()),
        page: Page::new(100, 0),
        ..RunQuery::default()
    };
    let runs = store.list_runs(&query).await.unwrap().items;
    let mut n_targets = 0;
    let mut n_results = 0;
    for run in runs.iter().filter(|run| run.job_version == version) {
        n_targets += 1;
        let agent_id = AgentId::parse(agent).unwrap();
        let results = store
            .list_results(&run.run_id, Some(&agent_id), Page::new(10, 0))
            .await
            .unwrap();
        n_results += results.items.len();
    }
    (n_targets, n_results)
}

/// Enrolls `names` into group `laptops` with one token; none started.
async fn enroll_laptops(server: &TestServer, names: &[&str]) -> Vec<TestAgent> {
    let created: Value = server
        .post(
            "/api/v1/enrollment-tokens",
            &json!({"name": "laptops", "uses": names.len(), "groups": ["laptops"]}),
        )
        .await;
    let token = created["token"].as_str().unwrap();
    let mut agents = Vec::new();
    for name in names {
        agents.push(TestAgent::enroll_with_token(server, name, token).await);
    }
    agents
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_laptop_runs_each_version_once_including_late_and_offline_ones() {
    let nats = TestNats::start();
    let server = quiet_server(&nats).await;
    let mut laptops = enroll_laptops(&server, &["lap-1", "lap-2", "lap-3"]).await;
    laptops[0].start();
    laptops[1].start();
    wait_online(&server, &["lap-1", "lap-2"]).await;
    apply(&server, "/api/v1/jobs", &job("patch", "echo v1")).await;
    apply(&server, "/api/v1/schedules", ONCE).await;

    // One run for all three; lap-3 is offline, so its command waits in the stream.
    let (run_id, agents) = started(reconcile(&server, "laptops-patch", Timestamp::now()).await);
    assert_eq!(agents, ["lap-1", "lap-2", "lap-3"]);
    server
        .wait_for(
            &format!("/api/v1/runs/{run_id}"),
            "two laptops to succeed",
            |view| state_of(view, "lap-1") == "succeeded" && state_of(view, "lap-2") == "succeeded",
        )
        .await;
    let seen = coverage(&server, "laptops-patch").await;
    assert_eq!(
        statuses(&seen),
        pairs(&[("lap-1", "done"), ("lap-2", "done"), ("lap-3", "offline")]),
        "{seen:#}"
    );
    assert_eq!(seen["job_version"], 1);
    assert_eq!(
        seen["totals"],
        json!({"total": 3, "done": 2, "failed": 0, "pending": 0, "offline": 1, "in_flight": 0})
    );
    // lap-3 holds an open target, so it is not targeted again however often we tick.
    assert_eq!(
        reconcile(&server, "laptops-patch", Timestamp::now()).await,
        ReconcileOutcome::Idle
    );

    // lap-3 starts and catches up on the waiting command.
    laptops[2].start();
    let view = wait_run_done(&server, &run_id).await;
    assert_eq!(state_of(&view, "lap-3"), "succeeded", "{view:#}");
    let seen = coverage(&server, "laptops-patch").await;
    assert_eq!(seen["totals"]["done"], 3, "{seen:#}");

    // A laptop that joins later gets a run of its own at the next tick (through the
    // scheduler's tick, as the leader's loop calls it).
    laptops.extend(enroll_laptops(&server, &["lap-4"]).await);
    laptops[3].start();
    scheduler::tick(server.app(), Timestamp::now())
        .await
        .unwrap();
    let seen = coverage(&server, "laptops-patch").await;
    let lap_4 = &seen["agents"][3];
    assert_eq!(lap_4["agent_id"], "lap-4", "{seen:#}");
    let run_4 = lap_4["run_id"]
        .as_str()
        .expect("lap-4 was targeted")
        .to_string();
    assert_ne!(run_4, run_id);
    wait_run_done(&server, &run_4).await;

    // Ticking again changes nothing: every laptop ran version 1 exactly once.
    scheduler::tick(server.app(), Timestamp::now())
        .await
        .unwrap();
    assert_eq!(
        reconcile(&server, "laptops-patch", Timestamp::now()).await,
        ReconcileOutcome::Idle
    );
    for laptop in ["lap-1", "lap-2", "lap-3", "lap-4"] {
        assert_eq!(
            executions(&server, "patch", laptop, 1).await,
            (1, 1),
            "{laptop}"
        );
    }

    // A new version of the job re-arms every laptop.
    apply(&server, "/api/v1/jobs", &job("patch", "echo v2")).await;
    let (run_v2, agents) = started(reconcile(&server, "laptops-patch", Timestamp::now()).await);
    assert_eq!(agents, ["lap-1", "lap-2", "lap-3", "lap-4"]);
    wait_run_done(&server, &run_v2).await;
    let seen = coverage(&server, "laptops-patch").await;
    assert_eq!(
        (&seen["job_version"], &seen["totals"]["done"]),
        (&json!(2), &json!(4)),
        "{seen:#}"
    );
    for laptop in ["lap-1", "lap-2", "lap-3", "lap-4"] {
        assert_eq!(
            executions(&server, "patch", laptop, 2).await,
            (1, 1),
            "{laptop}"
        );
    }
    let audit: Value = server
        .wait_for(
            "/api/v1/audit?action=schedule.reconcile",
            "reconcile audits",
            |page| page["total"] == 3,
        )
        .await;
    assert_eq!(
        audit["items"][0]["record"]["actor"], "schedule:laptops-patch",
        "{audit:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_is_retried_with_backoff_until_the_limit() {
    let nats = TestNats::start();
    let server = quiet_server(&nats).await;
    let _laptop = {
        let mut laptops = enroll_laptops(&server, &["lap-1"]).await;
        laptops[0].start();
        laptops.remove(0)
    };
    wait_online(&server, &["lap-1"]).await;
    apply(&server, "/api/v1/jobs", &job("fix", "exit 1")).await;
    apply(
        &server,
        "/api/v1/schedules",
        &ONCE
            .replace("laptops-patch", "fix")
            .replace("job: patch", "job: fix"),
    )
    .await;

    // The first failure waits a minute before the retry.
    let (run_id, _) = started(reconcile(&server, "fix", Timestamp::now()).await);
    wait_run_done(&server, &run_id).await;
    assert_eq!(
        reconcile(&server, "fix", Timestamp::now()).await,
        ReconcileOutcome::Idle
    );
    let seen = coverage(&server, "fix").await;
    let agent = &seen["agents"][0];
    assert_eq!(
        (&agent["status"], &agent["n_failed_attempts"]),
        (&json!("pending"), &json!(1)),
        "{seen:#}"
    );
    let retry_at: Timestamp = agent["retry_at"].as_str().unwrap().parse().unwrap();
    let waited = retry_at.duration_since(agent["finished_at"].as_str().unwrap().parse().unwrap());
    assert_eq!(waited, desired::FIRST_BACKOFF);

    // Later clocks pass every backoff: retried until the limit, then left alone.
    let later = || Timestamp::now() + SignedDuration::from_hours(2);
    for _ in 1..MAX_FAILED_ATTEMPTS {
        let (run_id, _) = started(reconcile(&server, "fix", later()).await);
        wait_run_done(&server, &run_id).await;
    }
    assert_eq!(
        reconcile(&server, "fix", later()).await,
        ReconcileOutcome::Idle
    );
    let seen = coverage(&server, "fix").await;
    assert_eq!(statuses(&seen), pairs(&[("lap-1", "failed")]), "{seen:#}");
    assert_eq!(seen["agents"][0]["n_failed_attempts"], MAX_FAILED_ATTEMPTS);

    // A fixed version starts over.
    apply(&server, "/api/v1/jobs", &job("fix", "echo fixed")).await;
    let (run_id, _) = started(reconcile(&server, "fix", Timestamp::now()).await);
    wait_run_done(&server, &run_id).await;
    let seen = coverage(&server, "fix").await;
    assert_eq!(statuses(&seen), pairs(&[("lap-1", "done")]), "{seen:#}");

    // A fleet freeze holds the schedule: the next version stays pending.
    apply(&server, "/api/v1/jobs", &job("fix", "echo again")).await;
    let _: Value = server
        .put("/api/v1/fleet/freeze", &json!({"reason": "test"}))
        .await;
    assert_eq!(
        reconcile(&server, "fix", Timestamp::now()).await,
        ReconcileOutcome::Held(Hold::Frozen)
    );
    let seen = coverage(&server, "fix").await;
    assert_eq!(seen["held"], "frozen", "{seen:#}");
    assert_eq!(statuses(&seen), pairs(&[("lap-1", "pending")]), "{seen:#}");

    // Coverage is only for desired-state schedules.
    apply(
        &server,
        "/api/v1/schedules",
        "kind: Schedule\nname: nightly\njob: fix\ntargets: {all: true}\ncron: \"0 3 * * *\"\n",
    )
    .await;
    let (status, body) = server.try_get("/api/v1/schedules/nightly/coverage").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("desired-state"),
        "{body}"
    );
}
