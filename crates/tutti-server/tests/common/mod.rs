//! Helpers shared by the server's integration tests: creating runs, waiting for them,
//! reading live progress, and publishing crafted agent messages.

#![allow(
    dead_code,
    reason = "each test file uses a different part of the helpers"
)]
#![allow(unreachable_pub, reason = "a test-only module shared by test files")]

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use tutti_testkit::{SERVER_WAIT, TestNats, TestServer};

/// Creates a run and returns its id.
pub async fn create_run(server: &TestServer, body: Value) -> String {
    let created: Value = server.post("/api/v1/runs", &body).await;
    created["run_id"].as_str().expect("run id").to_string()
}

/// Waits until no target of the run is open; returns the run view.
pub async fn wait_run_done(server: &TestServer, run_id: &str) -> Value {
    server
        .wait_for(
            &format!("/api/v1/runs/{run_id}"),
            "the run to finish",
            |view| {
                let open = ["queued", "delivered", "running"];
                view["targets"]["items"].as_array().is_some_and(|targets| {
                    targets
                        .iter()
                        .all(|t| !open.contains(&t["state"].as_str().unwrap_or("")))
                })
            },
        )
        .await
}

/// `(agent, state)` of every target in a run view.
pub fn target_states(view: &Value) -> Vec<(String, String)> {
    view["targets"]["items"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| {
            (
                t["agent_id"].as_str().unwrap().to_string(),
                t["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The state of one agent's target in a run view ("" when absent).
pub fn state_of(view: &Value, agent: &str) -> String {
    target_states(view)
        .into_iter()
        .find(|(id, _)| id == agent)
        .map(|(_, state)| state)
        .unwrap_or_default()
}

/// Waits until every named agent has sent a heartbeat.
pub async fn wait_online(server: &TestServer, agents: &[&str]) {
    for agent in agents {
        server
            .wait_for(
                &format!("/api/v1/agents/{agent}"),
                "a heartbeat",
                |detail| detail["agent"]["liveness"] == "online",
            )
            .await;
    }
}

/// Follows `/runs/{id}/progress` until `done`; returns each agent's states in order.
pub async fn progress_states(server: &TestServer, run_id: &str) -> BTreeMap<String, Vec<String>> {
    let url = format!("{}/api/v1/runs/{run_id}/progress", server.url());
    let response = server
        .http()
        .get(&url)
        .send()
        .await
        .expect("progress stream");
    assert!(response.status().is_success(), "{}", response.status());
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut states: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + SERVER_WAIT;
    loop {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("progress finished in time")
            .expect("stream open")
            .expect("chunk");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if parse_event(&event, &mut states) {
                return states;
            }
        }
    }
}

/// Records a `target` event; true on `done`.
fn parse_event(event: &str, states: &mut BTreeMap<String, Vec<String>>) -> bool {
    let name = event
        .lines()
        .find_map(|line| line.strip_prefix("event: "))
        .unwrap_or("");
    let data = event
        .lines()
        .find_map(|line| line.strip_prefix("data: "))
        .unwrap_or("null");
    match name {
        "target" => {
            let change: Value = serde_json::from_str(data).expect("target event JSON");
            let agent = change["agent_id"].as_str().unwrap().to_string();
            states
                .entry(agent)
                .or_default()
                .push(change["state"].as_str().unwrap().to_string());
            false
        }
        "done" => true,
        _ => false,
    }
}

/// Publishes a crafted inventory snapshot for `agent` with the given packages.
pub async fn publish_inventory(nats: &TestNats, agent: &str, packages: &[(&str, &str)]) {
    let packages: Vec<Value> = packages
        .iter()
        .map(|(name, version)| json!({"name": name, "version": version, "arch": "amd64", "manager": "dpkg"}))
        .collect();
    let snapshot = json!({
        "agent_id": agent,
        "at": jiff::Timestamp::now(),
        "facts": {"hostname": format!("{agent}.test"), "os_name": "Debian"},
        "packages": packages,
    });
    let js = nats.jetstream().await;
    js.publish(
        format!("tutti.agent.{agent}.inventory"),
        serde_json::to_vec(&snapshot).unwrap().into(),
    )
    .await
    .expect("publish")
    .await
    .expect("ack");
    tokio::time::sleep(Duration::from_millis(10)).await;
}
