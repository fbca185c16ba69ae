//! The server is SIGKILLed while results and events stream in, several times; after the
//! last restart every result is stored exactly once and every target is final.
//!
//! There is no server binary yet, so the server runs in a child process: this test binary
//! re-executed with `CHILD_CONFIG` set, running only `crash_child_entry_point`, which calls
//! `tutti_server::run` and does nothing in a normal test run. The parent publishes crafted
//! agent messages (a `started` event and a result per target) at a steady pace, kills the
//! child at random points, and finally runs the server in-process until the run is done.

use std::process::{Command, Stdio};
use std::time::Duration;

use async_nats::HeaderMap;
use rand::Rng;
use serde_json::{Value, json};
use tutti_server::{Server, ServerConfig};
use tutti_testkit::{TestNats, test_config};

const CHILD_CONFIG: &str = "TUTTI_SERVER_CRASH_CHILD_CONFIG";
const N_AGENTS: usize = 150;
const N_KILLS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_mid_batch_loses_and_duplicates_nothing() {
    let nats = TestNats::start();
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&nats, dir.path());
    let (run_id, agents) = prepare_run(&config).await;

    let creds = nats.admin_creds().expect("operator mode").to_string();
    let publisher = tokio::spawn(publish_reports(
        nats.url(),
        creds,
        run_id.clone(),
        agents.clone(),
    ));
    let mut progress = Vec::new();
    for _ in 0..N_KILLS {
        let mut child = spawn_child(&config);
        let pause = rand::thread_rng().gen_range(400..900);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        // SIGKILL: no shutdown path runs, unacknowledged batches stay unacknowledged.
        child.kill().expect("kill the server");
        child.wait().expect("reap the server");
        progress.push(committed_results(&config).await);
    }
    publisher.await.expect("publisher");
    eprintln!("results committed at each kill: {progress:?}");
    assert!(
        progress.iter().any(|n| *n > 0 && *n < N_AGENTS as u64),
        "no kill landed while results were being projected: {progress:?}"
    );

    let server = start_in_process(&config).await;
    let http = admin_client(&server).await;
    let view = wait_done(&http, &server.url(), &run_id).await;
    assert_eq!(
        view["count_by_state"]["succeeded"], N_AGENTS as u64,
        "{view:#}"
    );
    assert_eq!(view["run"]["status"], "done");
    let results = get(
        &http,
        &server.url(),
        &format!("/api/v1/runs/{run_id}/results?limit=1"),
    )
    .await;
    assert_eq!(
        results["total"], N_AGENTS as u64,
        "every result exactly once"
    );
    let anomalies = get(&http, &server.url(), "/api/v1/anomalies").await;
    assert_eq!(anomalies["total"], 0, "{anomalies:#}");
    let events = server
        .app()
        .store
        .projector_position(tutti_proto::catalog::EVENTS_STREAM)
        .await
        .unwrap();
    assert_eq!(events, N_AGENTS as u64, "every event projected");
    server.stop().await.unwrap();
}

/// The highest results-stream sequence the (dead) server committed.
async fn committed_results(config: &ServerConfig) -> u64 {
    let store = tutti_store::Store::open_sqlite(config.database_path())
        .await
        .unwrap();
    store
        .projector_position(tutti_proto::catalog::RESULTS_STREAM)
        .await
        .unwrap()
}

/// The child's work; a no-op unless this binary was started by the test above.
#[test]
fn crash_child_entry_point() {
    let Ok(config) = std::env::var(CHILD_CONFIG) else {
        return;
    };
    let config: ServerConfig = serde_json::from_str(&config).expect("child config");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        tutti_server::run(config, listener, std::future::pending())
            .await
            .unwrap();
    });
}

fn spawn_child(config: &ServerConfig) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_entry_point",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_CONFIG, serde_json::to_string(config).unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the server child")
}

/// Enrolls the agents (on paper: nothing runs them) and creates a run on all of them.
async fn prepare_run(config: &ServerConfig) -> (String, Vec<String>) {
    let server = start_in_process(config).await;
    let http = admin_client(&server).await;
    let url = server.url();
    let token = post(
        &http,
        &url,
        "/api/v1/enrollment-tokens",
        json!({"uses": N_AGENTS}),
    )
    .await;
    let mut agents = Vec::with_capacity(N_AGENTS);
    for index in 0..N_AGENTS {
        let agent = format!("agent-{index:04}");
        let body = json!({"token": token["token"], "hostname": agent, "requested_id": agent,
            "nats_public_key": nkeys::KeyPair::new_user().public_key()});
        post(&http, &url, "/api/v1/enroll", body).await;
        agents.push(agent);
    }
    let created = post(
        &http,
        &url,
        "/api/v1/runs",
        json!({"script": {"script": "true"}, "targets": {"all": true}}),
    )
    .await;
    server.stop().await.unwrap();
    (created["run_id"].as_str().unwrap().to_string(), agents)
}

/// Publishes a `started` event and a result per agent, ten messages every 60 ms.
async fn publish_reports(url: String, creds: String, run_id: String, agents: Vec<String>) {
    let client = async_nats::ConnectOptions::with_credentials(&creds)
        .unwrap()
        .connect(url)
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    for (index, agent) in agents.iter().enumerate() {
        let command_id = ulid::Ulid::new().to_string().to_lowercase();
        let event = json!({"agent_id": agent, "at": jiff::Timestamp::now(),
            "kind": {"type": "started", "run_id": run_id, "command_id": command_id}});
        let result_id = format!("{run_id}:{agent}");
        let result = json!({"result_id": result_id, "run_id": run_id, "command_id": command_id,
            "agent_id": agent, "status": {"state": "succeeded"}, "exit_code": 0,
            "stdout": {"inline": "ok\n", "total_bytes": 3}, "stderr": {"inline": "", "total_bytes": 0},
            "finished_at": jiff::Timestamp::now()});
        publish(
            &js,
            format!("tutti.agent.{agent}.event"),
            &format!("{result_id}:started"),
            &event,
        )
        .await;
        publish(
            &js,
            format!("tutti.agent.{agent}.result"),
            &result_id,
            &result,
        )
        .await;
        if index % 5 == 4 {
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
    }
}

async fn publish(
    js: &async_nats::jetstream::Context,
    subject: String,
    msg_id: &str,
    value: &Value,
) {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", msg_id);
    js.publish_with_headers(subject, headers, serde_json::to_vec(value).unwrap().into())
        .await
        .unwrap()
        .await
        .unwrap();
}

async fn start_in_process(config: &ServerConfig) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Server::start(config.clone(), listener).await.unwrap()
}

/// A client carrying a fresh admin API token of `server`.
async fn admin_client(server: &Server) -> reqwest::Client {
    let issued = server
        .issue_api_token("admin", "crash-test", tutti_proto::role::Role::Admin, None)
        .await
        .unwrap();
    tutti_testkit::client_with_token(&issued.token)
}

async fn wait_done(http: &reqwest::Client, url: &str, run_id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let view = get(http, url, &format!("/api/v1/runs/{run_id}?limit=1")).await;
        if view["count_by_state"]["succeeded"] == N_AGENTS as u64 {
            return view;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run did not finish: {view:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn get(http: &reqwest::Client, url: &str, path: &str) -> Value {
    let response = http.get(format!("{url}{path}")).send().await.unwrap();
    assert!(
        response.status().is_success(),
        "GET {path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

async fn post(http: &reqwest::Client, url: &str, path: &str, body: Value) -> Value {
    let response = http
        .post(format!("{url}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "POST {path}: {status} {body}");
    body
}
