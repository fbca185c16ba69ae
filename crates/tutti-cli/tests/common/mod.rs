//! Helpers shared by the CLI's end-to-end tests: run the real `tutti` binary against a
//! test server, check its exit code, parse its JSON, wait for agents.

#![allow(
    dead_code,
    reason = "each test file uses a different part of the helpers"
)]
#![allow(unreachable_pub, reason = "a test-only module shared by test files")]

use std::path::Path;
use std::process::{Output, Stdio};

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tutti_testkit::TestServer;

/// The binary with a private config dir, as the test server's admin (`TUTTI_SERVER` and
/// `TUTTI_TOKEN`) when a server is given, else with the profiles in `config_home` only.
pub async fn tutti(config_home: &Path, server: Option<&TestServer>, args: &[&str]) -> Output {
    match server {
        Some(server) => {
            let env = [
                ("TUTTI_SERVER", server.url()),
                ("TUTTI_TOKEN", server.admin_token().to_string()),
            ];
            tutti_with(config_home, &env, "", args).await
        }
        None => tutti_with(config_home, &[], "", args).await,
    }
}

/// The binary with a private config dir, extra environment and `stdin` as its standard
/// input (none when empty, so a forgotten `--password-stdin` cannot hang on a prompt).
pub async fn tutti_with(
    config_home: &Path,
    env: &[(&str, String)],
    stdin: &str,
    args: &[&str],
) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tutti"));
    command
        .args(args)
        .env("XDG_CONFIG_HOME", config_home)
        .env_remove("TUTTI_SERVER")
        .env_remove("TUTTI_TOKEN")
        .envs(env.iter().map(|(key, value)| (key, value)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_empty() {
            Stdio::null()
        } else {
            Stdio::piped()
        });
    let mut child = command.spawn().expect("run tutti");
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(stdin.as_bytes()).await.expect("write stdin");
    }
    child.wait_with_output().await.expect("wait for tutti")
}

/// Asserts the exit code and returns stdout.
pub fn expect_code(output: &Output, code: i32) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

pub fn parse(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|err| panic!("not JSON ({err}):\n{stdout}"))
}

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
