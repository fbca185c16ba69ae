//! An agent's local allowlist (`[execution] allowed_shells` in `agent.toml`) as the
//! operator sees it through the real server: a command asking for another shell ends
//! `skipped` with reason `not_allowed` and says which shell in its stderr, while a command
//! in an allowed shell runs.

mod common;

use common::{create_run, wait_run_done};
use serde_json::{Value, json};
use tutti_testkit::{TestAgent, TestNats, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_the_agent_does_not_allow_is_skipped_with_the_reason_shown() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let mut agent = TestAgent::enroll(&server, "box-01").await;
    agent.start_with(|config| config.execution.allowed_shells = vec!["sh".into()]);

    let check = |shell: &'static str| {
        let server = &server;
        async move {
            let body = json!({"script": {"shell": shell, "script": "echo hello"}, "targets": {"all": true}});
            let run_id = create_run(server, body).await;
            let view = wait_run_done(server, &run_id).await;
            let results: Value = server
                .get(&format!("/api/v1/runs/{run_id}/results?agent_id=box-01"))
                .await;
            (
                view["targets"]["items"][0].clone(),
                results["items"][0]["result"].clone(),
            )
        }
    };
    let (target, result) = check("bash").await;
    assert_eq!(target["state"], "skipped", "{target:#}");
    assert_eq!(target["reason"], "not_allowed", "{target:#}");
    let stderr = result["stderr"]["inline"].as_str().unwrap_or_default();
    assert!(stderr.contains("shell bash is not allowed"), "{result:#}");

    let (target, result) = check("sh").await;
    assert_eq!(target["state"], "succeeded", "{target:#}");
    assert_eq!(result["stdout"]["inline"], "hello\n", "{result:#}");
}
