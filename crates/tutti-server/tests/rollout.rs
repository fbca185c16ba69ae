//! Rollouts end to end: a real broker, the real server and real agents. A run released in
//! waves stops when the first wave fails too often, survives a server restart between
//! waves without running anything twice, can be aborted and resumed by an operator, and
//! rejects malformed rollout requests with messages that say what is wrong.
//!
//! Scripts run in `<agent state dir>/staging/<command id>`, so `../../` is the agent's own
//! state directory: a marker file there makes one agent fail, and a counter file there
//! records how many times the agent really ran the script.

mod common;

use std::path::Path;

use common::*;
use serde_json::{Value, json};
use tutti_testkit::{TestAgent, TestNats, TestServer};

/// Fails where `../../fail` exists; counts every execution in `../../ran`.
const SCRIPT: &str = "echo ran >> ../../ran; if [ -e ../../fail ]; then exit 1; fi; echo ok";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_first_wave_aborts_the_rollout_and_later_waves_never_run() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let agents = spawn_agents(&server, 20).await;
    // r-00 is in the first wave (10% of 20 = r-00, r-01); r-15 would fail later.
    for failing in [0, 15] {
        std::fs::write(agents[failing].state_dir().join("fail"), "").unwrap();
    }

    let run_id = create_run(
        &server,
        json!({
            "script": {"script": SCRIPT},
            "targets": {"all": true},
            "rollout": {"waves": ["10%", "50%", "100%"], "max_failure_ratio": 0.1}
        }),
    )
    .await;
    let view = wait_rollout(&server, &run_id, "aborted").await;

    let rollout = &view["rollout"];
    assert_eq!(rollout["current_wave"], 1, "{rollout:#}");
    assert!(
        rollout["reason"].as_str().unwrap().contains("1 of 2"),
        "{rollout:#}"
    );
    assert_eq!(rollout["resumable"], false);
    assert_eq!(state_of(&view, "r-00"), "failed");
    assert_eq!(state_of(&view, "r-01"), "succeeded");
    for target in &view["targets"]["items"].as_array().unwrap()[2..] {
        assert_eq!(target["state"], "skipped", "{target}");
        assert_eq!(target["reason"], "rollout_aborted", "{target}");
    }
    let results: Value = server.get(&format!("/api/v1/runs/{run_id}/results")).await;
    assert_eq!(results["total"], 2, "{results:#}");
    assert_eq!(runs_per_agent(&agents)[..2], [1, 1]);
    assert!(runs_per_agent(&agents)[2..].iter().all(|n| *n == 0));
    wait_audit(&server, "rollout.auto_abort", 1).await;
    // An automatic abort is final: resuming it is a conflict.
    let (status, body) = post_status(&server, &rollout_path(&run_id, "resume"), &json!({})).await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_between_waves_continues_the_rollout_and_runs_each_agent_once() {
    let nats = TestNats::start();
    let mut server = TestServer::start(&nats).await;
    let agents = spawn_agents(&server, 10).await;

    let run_id = create_run(
        &server,
        json!({
            "script": {"script": SCRIPT},
            "targets": {"all": true},
            "rollout": {"waves": ["20%", "60%", "100%"], "wait_secs": 2, "max_failures": 0}
        }),
    )
    .await;
    let view = wait_rollout(&server, &run_id, "waiting").await;
    assert_eq!(view["rollout"]["current_wave"], 1);
    assert_eq!(view["count_by_state"]["held"], 8, "{view:#}");
    assert_eq!(view["count_by_state"]["succeeded"], 2, "{view:#}");

    server.restart().await;
    let view = wait_rollout(&server, &run_id, "done").await;

    assert_eq!(view["count_by_state"], json!({"succeeded": 10}), "{view:#}");
    let waves: Vec<u64> = view["rollout"]["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|wave| wave["succeeded"].as_u64().unwrap())
        .collect();
    assert_eq!(waves, [2, 4, 4]);
    assert_eq!(runs_per_agent(&agents), [1; 10]);
    let results: Value = server.get(&format!("/api/v1/runs/{run_id}/results")).await;
    assert_eq!(results["total"], 10);
    wait_audit(&server, "rollout.wave", 2).await;
    wait_audit(&server, "rollout.done", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_aborts_a_waiting_rollout_and_resumes_it() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let agents = spawn_agents(&server, 4).await;

    let run_id = create_run(
        &server,
        json!({
            "script": {"script": SCRIPT},
            "targets": {"all": true},
            "rollout": {"waves": [1, "100%"], "wait_secs": 600}
        }),
    )
    .await;
    wait_rollout(&server, &run_id, "waiting").await;

    let aborted: Value = server
        .post(&rollout_path(&run_id, "abort"), &json!({}))
        .await;
    assert_eq!(aborted["state"], "aborted", "{aborted:#}");
    assert_eq!(aborted["resumable"], true);
    let view: Value = server.get(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(view["run"]["status"], "done", "{view:#}");
    assert_eq!(
        view["count_by_state"],
        json!({"succeeded": 1, "skipped": 3}),
        "{view:#}"
    );

    let resumed: Value = server
        .post(&rollout_path(&run_id, "resume"), &json!({}))
        .await;
    assert_eq!(resumed["state"], "waiting", "{resumed:#}");
    assert_eq!(resumed["held"], 3, "{resumed:#}");
    // The finished first wave waits its 600 s again; a second resume is a conflict.
    let (status, body) = post_status(&server, &rollout_path(&run_id, "resume"), &json!({})).await;
    assert_eq!(status, 409, "{body}");
    wait_audit(&server, "rollout.abort", 1).await;
    wait_audit(&server, "rollout.resume", 1).await;
    assert_eq!(runs_per_agent(&agents), [1, 0, 0, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_rollout_releases_the_rest() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let agents = spawn_agents(&server, 3).await;

    let run_id = create_run(
        &server,
        json!({
            "script": {"script": SCRIPT},
            "targets": {"agents": ["r-00", "r-01", "r-02"]},
            "rollout": {"waves": [1, 3], "batch_size": 1}
        }),
    )
    .await;
    let _: Value = server
        .post(&rollout_path(&run_id, "pause"), &json!({}))
        .await;
    let _: Value = server
        .post(&rollout_path(&run_id, "resume"), &json!({}))
        .await;
    let view = wait_rollout(&server, &run_id, "done").await;
    assert_eq!(view["count_by_state"], json!({"succeeded": 3}), "{view:#}");
    assert_eq!(runs_per_agent(&agents), [1, 1, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_rollouts_are_rejected_with_what_is_wrong() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let _agents = spawn_agents(&server, 2).await;

    let cases = [
        (
            json!({"waves": []}),
            "rollout.waves: give at least one wave",
        ),
        (json!({"waves": ["50%", "10%", "100%"]}), "rollout.waves[1]"),
        (json!({"waves": ["10%", "50%"]}), "must cover every target"),
        (
            json!({"waves": [1]}),
            "the last wave covers 1 targets but the selection has 2",
        ),
        (json!({"waves": ["5"]}), "rollout.waves[0]"),
        (json!({"waves": ["150%"]}), "at most 100%"),
        (
            json!({"waves": ["100%"], "max_failure_ratio": 1.5}),
            "not between 0 and 1",
        ),
        (
            json!({"waves": ["100%"], "batch_size": 0}),
            "rollout.batch_size",
        ),
        (
            json!({"waves": ["100%"], "wait_secs": 10_000_000}),
            "rollout.wait_secs",
        ),
        (
            json!({"waves": ["100%"], "canary": true}),
            "unknown field `canary`",
        ),
    ];
    for (rollout, expected) in cases {
        let body =
            json!({"script": {"script": "true"}, "targets": {"all": true}, "rollout": rollout});
        let (status, answer) = post_status(&server, "/api/v1/runs", &body).await;
        assert_eq!(status, 400, "{rollout}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{rollout}: {message}");
    }
    let runs: Value = server.get("/api/v1/runs").await;
    assert_eq!(runs["total"], 0, "nothing stored: {runs:#}");
}

/// Enrolls and starts `n` agents `r-00`, `r-01`, …, and waits for their heartbeats.
async fn spawn_agents(server: &TestServer, n: usize) -> Vec<TestAgent> {
    let mut agents = Vec::with_capacity(n);
    for index in 0..n {
        agents.push(TestAgent::spawn(server, &format!("r-{index:02}")).await);
    }
    let names: Vec<String> = agents.iter().map(|a| a.agent_id().to_string()).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    wait_online(server, &names).await;
    agents
}

/// How many times each agent ran the script, from its counter file.
fn runs_per_agent(agents: &[TestAgent]) -> Vec<usize> {
    agents
        .iter()
        .map(|agent| count_runs(agent.state_dir()))
        .collect()
}

fn count_runs(state_dir: &Path) -> usize {
    std::fs::read_to_string(state_dir.join("ran")).map_or(0, |text| text.lines().count())
}

async fn wait_rollout(server: &TestServer, run_id: &str, state: &str) -> Value {
    server
        .wait_for(
            &format!("/api/v1/runs/{run_id}"),
            &format!("the rollout to be {state}"),
            |view| {
                let open = ["queued", "delivered", "running"];
                let settled = state == "waiting"
                    || view["targets"]["items"].as_array().is_some_and(|targets| {
                        targets
                            .iter()
                            .all(|t| !open.contains(&t["state"].as_str().unwrap_or("")))
                    });
                view["rollout"]["state"] == state && settled
            },
        )
        .await
}

async fn wait_audit(server: &TestServer, action: &str, n: u64) {
    server
        .wait_for(
            &format!("/api/v1/audit?action={action}"),
            &format!("{n} {action} audit records"),
            |page| page["total"] == n,
        )
        .await;
}

fn rollout_path(run_id: &str, action: &str) -> String {
    format!("/api/v1/runs/{run_id}/rollout/{action}")
}

async fn post_status(server: &TestServer, path: &str, body: &Value) -> (u16, Value) {
    let response = server
        .http()
        .post(format!("{}{path}", server.url()))
        .json(body)
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}
