//! Only enrolled agents exist: heartbeats, results, events and inventory published on the
//! real broker under an id that never enrolled, or whose agent was deleted, create no
//! agent, are never targeted, and are counted on `/metrics`, while an enrolled agent's
//! heartbeat still updates it.

use std::time::Duration;

use async_nats::HeaderMap;
use serde_json::{Value, json};
use tutti_proto::catalog::{EVENTS_STREAM, INVENTORY_STREAM, RESULTS_STREAM};
use tutti_proto::event::{AgentEvent, EventKind};
use tutti_proto::heartbeat::Heartbeat;
use tutti_proto::inventory::InventorySnapshot;
use tutti_proto::result::{Output, ResultStatus, RunResult};
use tutti_proto::{AgentId, CommandId, ResultId, RunId, subjects};
use tutti_testkit::{SERVER_WAIT, TestAgent, TestNats, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_from_agents_that_are_not_enrolled_create_nothing() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let client = nats.client().await;
    // Enrolled but not running: only the crafted heartbeats below speak for it.
    let _web = TestAgent::enroll(&server, "web-01").await;
    let _gone = TestAgent::enroll(&server, "gone-01").await;
    let deleted = server
        .http()
        .delete(format!("{}/api/v1/agents/gone-01", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);

    // The enrolled agent's heartbeat is applied, which also proves the server listens
    // (heartbeats are core NATS: one published before the subscription would be lost).
    let detail = wait_for_heartbeat(&server, &client, "web-01", 4242).await;
    assert_eq!(detail["agent"]["liveness"], "online", "{detail:#}");

    let (ghost, gone) = (agent("ghost-01"), agent("gone-01"));
    for agent_id in [&ghost, &gone] {
        publish_heartbeat(&client, agent_id, 1).await;
        publish_stored(
            &nats,
            INVENTORY_STREAM,
            &subjects::agent_inventory(agent_id),
            &snapshot(agent_id),
        )
        .await;
    }
    let created: Value = server
        .post(
            "/api/v1/runs",
            &json!({"script": {"script": "true"}, "targets": {"all": true}}),
        )
        .await;
    assert_eq!(created["n_targets"], 1, "{created:#}");
    let run_id: RunId = serde_json::from_value(created["run_id"].clone()).unwrap();
    let result = succeeded(run_id, &ghost);
    publish_stored(
        &nats,
        RESULTS_STREAM,
        &subjects::agent_result(&ghost),
        &result,
    )
    .await;
    let started = AgentEvent {
        agent_id: ghost.clone(),
        at: jiff::Timestamp::now(),
        kind: EventKind::Started {
            run_id,
            command_id: result.command_id,
        },
    };
    publish_stored(
        &nats,
        EVENTS_STREAM,
        &subjects::agent_event(&ghost),
        &started,
    )
    .await;

    let expected = [
        ("heartbeat", 2),
        ("result", 1),
        ("event", 1),
        ("inventory", 2),
    ];
    for (kind, n_messages) in expected {
        wait_for_count(&server, kind, n_messages).await;
    }
    for id in ["ghost-01", "gone-01"] {
        let (status, body) = server.try_get(&format!("/api/v1/agents/{id}")).await;
        assert_eq!(status, 404, "{id}: {body}");
    }
    let agents: Value = server.get("/api/v1/agents").await;
    let ids: Vec<&str> = agents["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|agent| agent["agent_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["web-01"]);
    let view: Value = server.get(&format!("/api/v1/runs/{run_id}")).await;
    let targets: Vec<&str> = view["targets"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|target| target["agent_id"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["web-01"], "{view:#}");
    for (kind, n_messages) in expected {
        assert_eq!(unknown_count(&server, kind).await, n_messages, "{kind}");
    }
}

fn agent(name: &str) -> AgentId {
    AgentId::parse(name).unwrap()
}

/// Publishes heartbeats of `name` (with `uptime_secs` as a mark) until the agent shows it;
/// returns the agent's detail.
async fn wait_for_heartbeat(
    server: &TestServer,
    client: &async_nats::Client,
    name: &str,
    uptime_secs: u64,
) -> Value {
    let deadline = tokio::time::Instant::now() + SERVER_WAIT;
    loop {
        publish_heartbeat(client, &agent(name), uptime_secs).await;
        let detail: Value = server.get(&format!("/api/v1/agents/{name}")).await;
        if detail["agent"]["last_heartbeat"]["uptime_secs"] == uptime_secs {
            return detail;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no heartbeat applied: {detail:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn publish_heartbeat(client: &async_nats::Client, agent_id: &AgentId, uptime_secs: u64) {
    let heartbeat = Heartbeat {
        agent_id: agent_id.clone(),
        at: jiff::Timestamp::now(),
        version: "0.1.0".to_string(),
        uptime_secs,
        rss_bytes: 1 << 20,
        cpu_percent: 0.1,
        queue_depth: 0,
        outbox_depth: 0,
        cursor: 0,
        hostname: format!("{agent_id}.example.net"),
        trusted_keys: Vec::new(),
    };
    let payload = serde_json::to_vec(&heartbeat).unwrap();
    client
        .publish(subjects::agent_heartbeat(agent_id), payload.into())
        .await
        .unwrap();
    client.flush().await.unwrap();
}

/// Publishes into `stream` and waits for the broker's acknowledgement; the expected-stream
/// header makes the broker refuse it if the subject were not the stream's.
async fn publish_stored(
    nats: &TestNats,
    stream: &str,
    subject: &str,
    message: &impl serde::Serialize,
) {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Expected-Stream", stream);
    nats.jetstream()
        .await
        .publish_with_headers(
            subject.to_string(),
            headers,
            serde_json::to_vec(message).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

fn snapshot(agent_id: &AgentId) -> InventorySnapshot {
    let mut snapshot: InventorySnapshot = serde_json::from_value(json!({
        "agent_id": agent_id, "at": jiff::Timestamp::now(), "facts": {}, "packages": []
    }))
    .unwrap();
    snapshot.facts.hostname = format!("{agent_id}.example.net");
    snapshot
}

fn succeeded(run_id: RunId, agent_id: &AgentId) -> RunResult {
    RunResult {
        result_id: ResultId::new(&run_id, agent_id),
        run_id,
        command_id: CommandId::new(ulid::Ulid::new()),
        agent_id: agent_id.clone(),
        status: ResultStatus::Succeeded,
        exit_code: Some(0),
        stdout: Output::default(),
        stderr: Output::default(),
        delivered_at: None,
        started_at: None,
        finished_at: jiff::Timestamp::now(),
    }
}

/// Waits until the counter of `kind` reaches `n_messages` (the positive signal that the
/// server saw and dropped them).
async fn wait_for_count(server: &TestServer, kind: &str, n_messages: u64) {
    let deadline = tokio::time::Instant::now() + SERVER_WAIT;
    loop {
        let count = unknown_count(server, kind).await;
        if count >= n_messages {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{kind}: {count} of {n_messages} messages from unknown agents counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `tutti_messages_from_unknown_agents_total{kind="<kind>"}` from `/metrics`.
async fn unknown_count(server: &TestServer, kind: &str) -> u64 {
    let text = server
        .http()
        .get(format!("{}/metrics", server.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("tutti_messages_from_unknown_agents_total{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in\n{text}"))
        .parse()
        .unwrap()
}
