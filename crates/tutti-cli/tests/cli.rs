//! The `tutti` binary end to end against the real harness: a real broker, the real server
//! in-process and real agents enrolled over HTTP. Each test runs the binary the way an
//! operator would, with `TUTTI_SERVER` (or a profile from `tutti login`) and a temp
//! `XDG_CONFIG_HOME`, and parses its `--json` output.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;
use tutti_testkit::{SERVER_WAIT, TestAgent, TestNats, TestServer};

/// The binary with a private config dir; `server` is passed as `TUTTI_SERVER` when given.
async fn tutti(config_home: &Path, server: Option<&str>, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tutti"));
    command
        .args(args)
        .env("XDG_CONFIG_HOME", config_home)
        .env_remove("TUTTI_SERVER")
        .env_remove("TUTTI_TOKEN");
    if let Some(server) = server {
        command.env("TUTTI_SERVER", server);
    }
    command.output().await.expect("run tutti")
}

/// Asserts the exit code and returns stdout.
fn expect_code(output: &Output, code: i32) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn parse(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|err| panic!("not JSON ({err}):\n{stdout}"))
}

async fn wait_online(server: &TestServer, agents: &[&str]) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_wait_json_on_two_agents_then_show_results_and_a_failure() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let _web = TestAgent::spawn(&server, "web-01").await;
    let _db = TestAgent::spawn(&server, "db-01").await;
    wait_online(&server, &["web-01", "db-01"]).await;
    let home = TempDir::new().unwrap();
    let url = server.url();
    let cli = async |args: &[&str]| tutti(home.path(), Some(&url), args).await;

    let output = cli(&["run", "--all", "--wait", "--json", "--", "echo", "hi"]).await;
    let report = parse(&expect_code(&output, 0));
    let targets = report["run"]["targets"]["items"].as_array().unwrap();
    assert_eq!(targets.len(), 2, "{report:#}");
    assert!(
        targets.iter().all(|t| t["state"] == "succeeded"),
        "{report:#}"
    );
    for item in report["results"]["items"].as_array().unwrap() {
        let result = item.get("result").unwrap_or(item);
        assert_eq!(result["stdout"]["inline"], "hi\n", "{report:#}");
    }
    let run_id = report["run"]["run"]["run_id"].as_str().unwrap().to_string();

    let shown = expect_code(&cli(&["runs", "show", &run_id]).await, 0);
    assert!(
        shown.contains("web-01") && shown.contains("db-01") && shown.contains("succeeded"),
        "{shown}"
    );
    let results = expect_code(
        &cli(&["runs", "results", &run_id, "--agent", "db-01"]).await,
        0,
    );
    assert!(
        results.contains("db-01") && results.contains("hi"),
        "{results}"
    );

    let failing = cli(&[
        "run",
        "--agent",
        "web-01",
        "--wait",
        "--",
        "echo bad; exit 3",
    ])
    .await;
    let table = expect_code(&failing, 1);
    assert!(table.contains("failed") && table.contains('3'), "{table}");

    let agents = parse(&expect_code(&cli(&["agents", "--json"]).await, 0));
    let mut ids: Vec<&str> = agents["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|agent| agent["agent_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["db-01", "web-01"], "{agents:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_stores_a_profile_that_later_commands_use() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let home = TempDir::new().unwrap();

    let output = tutti(home.path(), None, &["login", "--server", &server.url()]).await;
    expect_code(&output, 0);
    let agents = tutti(home.path(), None, &["agents", "--json"]).await;
    assert_eq!(parse(&expect_code(&agents, 0))["total"], 0);

    expect_code(&tutti(home.path(), None, &["logout"]).await, 0);
    let after = tutti(home.path(), None, &["agents"]).await;
    expect_code(&after, 2);
    assert!(String::from_utf8_lossy(&after.stderr).contains("tutti login"));
}

const ROTATE: &str = "# rotate logs everywhere\nkind: Job\nname: rotate-logs\nscript: logrotate -f /etc/logrotate.conf\ntimeout_secs: 60\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_shows_created_changed_unchanged_and_errors_at_file_line_column() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let home = TempDir::new().unwrap();
    let url = server.url();
    let cli = async |args: &[&str]| tutti(home.path(), Some(&url), args).await;
    let jobs = TempDir::new().unwrap();
    let rotate = jobs.path().join("rotate.yaml");
    let dir = jobs.path().to_str().unwrap();
    std::fs::write(&rotate, ROTATE).unwrap();
    std::fs::write(jobs.path().join("notes.txt"), "not a manifest").unwrap();

    let created = expect_code(&cli(&["apply", "-f", dir]).await, 0);
    assert!(
        created.contains("rotate-logs") && created.contains("created"),
        "{created}"
    );
    let unchanged = cli(&["apply", "-f", dir, "--json"]).await;
    let answer = parse(&expect_code(&unchanged, 0));
    assert_eq!(answer[0]["applied"][0]["result"], "unchanged", "{answer:#}");

    std::fs::write(
        &rotate,
        ROTATE.replace("timeout_secs: 60", "timeout_secs: 90"),
    )
    .unwrap();
    let changed = expect_code(&cli(&["apply", "-f", rotate.to_str().unwrap()]).await, 0);
    assert!(
        changed.contains("changed") && changed.contains("1 → 2"),
        "{changed}"
    );
    assert!(
        changed.contains("-timeout_secs: 60") && changed.contains("+timeout_secs: 90"),
        "{changed}"
    );

    // Line 4 of the second document is line 8 of the file.
    let bad = jobs.path().join("bad.yaml");
    let text =
        "kind: Job\nname: a\nscript: echo a\n---\nkind: Job\nname: b\nscript: echo b\nshel: bash\n";
    std::fs::write(&bad, text).unwrap();
    let refused = cli(&["apply", "-f", dir]).await;
    let stdout = expect_code(&refused, 2);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    let expected = format!("{}:8:1: ", bad.display());
    assert!(
        stderr.contains(&expected) && stderr.contains("shel"),
        "{stderr}"
    );
    assert!(
        stdout.contains("rotate-logs"),
        "the good file is still applied: {stdout}"
    );
    let listed = parse(&expect_code(&cli(&["jobs", "--json"]).await, 0));
    assert_eq!(
        listed["total"], 1,
        "nothing of bad.yaml is stored: {listed:#}"
    );

    let source = expect_code(&cli(&["jobs", "show", "rotate-logs"]).await, 0);
    assert!(source.starts_with("# rotate logs everywhere"), "{source}");
    let revoked = parse(&expect_code(
        &cli(&["jobs", "revoke", "rotate-logs", "--json"]).await,
        0,
    ));
    assert_eq!(revoked["n_skipped"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_tokens_config_inventory_and_audit() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let _web = TestAgent::spawn(&server, "web-01").await;
    let home = TempDir::new().unwrap();
    let url = server.url();
    let cli = async |args: &[&str]| tutti(home.path(), Some(&url), args).await;

    let created = expect_code(
        &cli(&["enroll-token", "create", "--uses", "2", "--expires", "2h"]).await,
        0,
    );
    let command = format!("tutti-agent enroll --server {url} --token ");
    assert!(created.contains(&command), "{created}");
    let tokens = parse(&expect_code(
        &cli(&["enroll-token", "list", "--json"]).await,
        0,
    ));
    let mine = tokens["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|token| token["uses_left"] == 2)
        .unwrap_or_else(|| panic!("{tokens:#}"));
    let token_id = mine["token_id"].as_str().unwrap().to_string();
    expect_code(&cli(&["enroll-token", "revoke", &token_id]).await, 0);

    let set = cli(&[
        "config",
        "set",
        "group",
        "web",
        "concurrency=4",
        "log_level=debug",
    ])
    .await;
    expect_code(&set, 0);
    expect_code(
        &cli(&["config", "set", "group", "web", "log_level="]).await,
        0,
    );
    let layer = parse(&expect_code(
        &cli(&["config", "get", "group", "web", "--json"]).await,
        0,
    ));
    assert_eq!(layer, serde_json::json!({"concurrency": 4}));
    let typo = cli(&["config", "set", "global", "concurency=4"]).await;
    expect_code(&typo, 2);

    server
        .wait_for_ok("/api/v1/agents/web-01/inventory", "an inventory")
        .await;
    let inventory = parse(&expect_code(
        &cli(&["inventory", "web-01", "--json"]).await,
        0,
    ));
    assert!(
        inventory["inventory"]["facts"]["hostname"].is_string(),
        "{inventory:#}"
    );
    let table = expect_code(&cli(&["inventory", "web-01"]).await, 0);
    assert!(table.contains("packages"), "{table}");
    let hits = parse(&expect_code(
        &cli(&["inventory", "search", "openssl@3", "--json"]).await,
        0,
    ));
    assert!(hits["total"].is_u64(), "{hits:#}");

    // The audit log is projected from a stream, so the entries arrive shortly after.
    let deadline = tokio::time::Instant::now() + SERVER_WAIT;
    loop {
        let audit = cli(&["audit", "--action", "config.set", "--json"]).await;
        let page = parse(&expect_code(&audit, 0));
        if page["total"] == 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{page:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bad_time = cli(&["audit", "--since", "yesterday"]).await;
    expect_code(&bad_time, 2);
}

#[tokio::test]
async fn completions_cover_the_command_tree() {
    let home = TempDir::new().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let script = expect_code(&tutti(home.path(), None, &["completions", shell]).await, 0);
        assert!(
            script.contains("enroll-token") && script.contains("apply"),
            "{shell}"
        );
    }
}
