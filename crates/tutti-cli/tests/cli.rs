//! The `tutti` binary end to end against the real harness: a real broker, the real server
//! in-process and real agents enrolled over HTTP. Each test runs the binary the way an
//! operator would, with `TUTTI_SERVER` (or a profile from `tutti login`) and a temp
//! `XDG_CONFIG_HOME`, and parses its `--json` output.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use tempfile::TempDir;
use tutti_testkit::{SERVER_WAIT, TestAgent, TestNats, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_wait_json_on_two_agents_then_show_results_and_a_failure() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let _web = TestAgent::spawn(&server, "web-01").await;
    let _db = TestAgent::spawn(&server, "db-01").await;
    wait_online(&server, &["web-01", "db-01"]).await;
    let home = TempDir::new().unwrap();
    let cli = async |args: &[&str]| tutti(home.path(), Some(&server), args).await;

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

    // Groups set from the CLI address a run to one agent.
    let grouped = expect_code(&cli(&["agents", "groups", "web-01", "set", "web"]).await, 0);
    assert!(grouped.contains("web-01 is in web"), "{grouped}");
    let output = cli(&[
        "run", "--group", "web", "--wait", "--json", "--", "echo", "web",
    ])
    .await;
    let report = parse(&expect_code(&output, 0));
    let targets = report["run"]["targets"]["items"].as_array().unwrap();
    assert_eq!(
        (targets.len(), &targets[0]["agent_id"]),
        (1, &Value::from("web-01")),
        "{report:#}"
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

const ROTATE: &str = "# rotate logs everywhere\nkind: Job\nname: rotate-logs\nscript: logrotate -f /etc/logrotate.conf\ntimeout_secs: 60\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_shows_created_changed_unchanged_and_errors_at_file_line_column() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let home = TempDir::new().unwrap();
    let cli = async |args: &[&str]| tutti(home.path(), Some(&server), args).await;
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
    // A dry run shows the change and its diff but stores nothing.
    let planned = expect_code(
        &cli(&["apply", "-f", rotate.to_str().unwrap(), "--dry-run"]).await,
        0,
    );
    assert!(
        planned.contains("changed")
            && planned.contains("+timeout_secs: 90")
            && planned.contains("nothing was stored"),
        "{planned}"
    );
    let dry = parse(&expect_code(
        &cli(&["apply", "-f", dir, "--dry-run", "--json"]).await,
        0,
    ));
    assert_eq!(
        (&dry[0]["applied"][0]["result"], &dry[0]["dry_run"]),
        (&Value::from("changed"), &Value::from(true))
    );
    let stored = parse(&expect_code(
        &cli(&["jobs", "show", "rotate-logs", "--json"]).await,
        0,
    ));
    assert_eq!(
        stored["version"], 1,
        "the dry run stored nothing: {stored:#}"
    );
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
    let cli = async |args: &[&str]| tutti(home.path(), Some(&server), args).await;

    let created = expect_code(
        &cli(&["enroll-token", "create", "--uses", "2", "--expires", "2h"]).await,
        0,
    );
    let command = format!("tutti-agent enroll --server {} --token ", server.url());
    assert!(created.contains(&command), "{created}");
    let key_id = server.app().keys.current().key_id();
    assert!(
        created.contains(&format!(" --server-key-id {key_id}")),
        "{created}"
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeze_on_status_and_off() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let home = TempDir::new().unwrap();
    let cli = async |args: &[&str]| tutti(home.path(), Some(&server), args).await;

    let status = parse(&expect_code(&cli(&["freeze", "status", "--json"]).await, 0));
    assert_eq!(status["in_force"], false, "{status:#}");

    let on = cli(&["freeze", "on", "--reason", "release 4.2", "--for", "2h"]).await;
    let line = expect_code(&on, 0);
    assert!(
        line.starts_with("frozen since ")
            && line.contains(" until ")
            && line.contains("— release 4.2"),
        "{line}"
    );
    let status = parse(&expect_code(&cli(&["freeze", "status", "--json"]).await, 0));
    assert_eq!(
        (&status["frozen"], &status["in_force"], &status["reason"]),
        (
            &Value::Bool(true),
            &Value::Bool(true),
            &Value::from("release 4.2")
        ),
        "{status:#}"
    );
    let until: jiff::Timestamp = status["until"].as_str().unwrap().parse().unwrap();
    let ahead = until.duration_since(jiff::Timestamp::now());
    assert!(
        ahead > jiff::SignedDuration::from_mins(110)
            && ahead <= jiff::SignedDuration::from_hours(2),
        "--for 2h gave {until}"
    );
    let line = expect_code(&cli(&["freeze", "status"]).await, 0);
    assert!(line.contains("by admin/testkit until"), "{line}");

    // Mistakes are usage errors, caught before the server is asked.
    let both = cli(&[
        "freeze",
        "on",
        "--reason",
        "x",
        "--for",
        "1h",
        "--until",
        "2099-01-01T00:00:00Z",
    ])
    .await;
    expect_code(&both, 2);
    expect_code(
        &cli(&["freeze", "on", "--reason", "x", "--until", "soon"]).await,
        2,
    );

    let off = parse(&expect_code(&cli(&["freeze", "off", "--json"]).await, 0));
    assert_eq!(
        (&off["frozen"], &off["in_force"]),
        (&Value::Bool(false), &Value::Bool(false))
    );
    let line = expect_code(&cli(&["freeze", "status"]).await, 0);
    assert!(line.starts_with("not frozen (lifted "), "{line}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_applied_listed_previewed_and_switched() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let home = TempDir::new().unwrap();
    let cli = async |args: &[&str]| tutti(home.path(), Some(&server), args).await;
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("a-job.yaml"), ROTATE).unwrap();
    let schedule = "# nightly rotation\nkind: Schedule\nname: nightly\njob: rotate-logs\ntargets: {all: true}\ncron: \"0 3 * * *\"\ntimezone: Europe/Berlin\n";
    std::fs::write(dir.path().join("b-schedule.yaml"), schedule).unwrap();
    let applied = expect_code(
        &cli(&["apply", "-f", dir.path().to_str().unwrap()]).await,
        0,
    );
    assert!(
        applied.contains("schedule nightly") && applied.contains("created"),
        "{applied}"
    );

    let listed = parse(&expect_code(&cli(&["schedules", "--json"]).await, 0));
    assert_eq!(listed["total"], 1);
    assert!(listed["items"][0]["next_fire"].is_string(), "{listed:#}");
    let table = expect_code(&cli(&["schedules"]).await, 0);
    assert!(
        table.contains("cron 0 3 * * *") && table.contains("Europe/Berlin"),
        "{table}"
    );

    let args = [
        "schedules",
        "preview",
        "nightly",
        "--n",
        "2",
        "--after",
        "2026-03-28T00:00:00Z",
    ];
    let preview = expect_code(&cli(&args).await, 0);
    assert!(
        preview.contains("2026-03-28 03:00:00 +01:00")
            && preview.contains("2026-03-29 03:00:00 +02:00"),
        "{preview}"
    );
    expect_code(&cli(&["schedules", "disable", "nightly"]).await, 0);
    let listed = parse(&expect_code(&cli(&["schedules", "--json"]).await, 0));
    assert_eq!(
        (
            listed["items"][0]["enabled"].clone(),
            listed["items"][0]["next_fire"].clone()
        ),
        (Value::from(false), Value::Null)
    );
    let shown = expect_code(&cli(&["schedules", "show", "nightly"]).await, 0);
    assert!(
        shown.starts_with("# nightly rotation") && shown.contains("next fires: none"),
        "{shown}"
    );

    let mixed = dir.path().join("c-mixed.yaml");
    std::fs::write(&mixed, format!("{ROTATE}---\n{schedule}")).unwrap();
    let refused = cli(&["apply", "-f", mixed.to_str().unwrap()]).await;
    expect_code(&refused, 2);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("one kind of manifest"));
    let cron_coverage = cli(&["schedules", "coverage", "nightly"]).await;
    expect_code(&cron_coverage, 3);
    assert!(String::from_utf8_lossy(&cron_coverage.stderr).contains("desired-state"));
    let baseline = "kind: Schedule\nname: baseline\njob: rotate-logs\ntargets: {groups: [laptops]}\ndesired_state: {once_per_version: true}\n";
    let file = dir.path().join("d-baseline.yaml");
    std::fs::write(&file, baseline).unwrap();
    expect_code(&cli(&["apply", "-f", file.to_str().unwrap()]).await, 0);
    let coverage = parse(&expect_code(
        &cli(&["schedules", "coverage", "baseline", "--json"]).await,
        0,
    ));
    assert_eq!(
        coverage["totals"]["total"], 0,
        "nobody in the group yet: {coverage:#}"
    );
    expect_code(&cli(&["schedules", "delete", "nightly"]).await, 0);
    let missing = cli(&["schedules", "show", "nightly"]).await;
    expect_code(&missing, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_is_started_paused_and_resumed_from_the_cli() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let _a = TestAgent::spawn(&server, "a-01").await;
    let _b = TestAgent::spawn(&server, "b-01").await;
    wait_online(&server, &["a-01", "b-01"]).await;
    let home = TempDir::new().unwrap();
    let cli = async |args: &[&str]| tutti(home.path(), Some(&server), args).await;

    let args = [
        "run",
        "--all",
        "--waves",
        "1,100%",
        "--wave-wait",
        "1h",
        "--json",
        "--",
        "echo",
        "hi",
    ];
    let created = parse(&expect_code(&cli(&args).await, 0));
    let run_id = created["run_id"].as_str().unwrap().to_string();
    let paused = parse(&expect_code(
        &cli(&["runs", "pause", &run_id, "--json"]).await,
        0,
    ));
    assert_eq!(paused["state"], "paused", "{paused:#}");
    assert_eq!(paused["held"], 1, "the second wave is held: {paused:#}");
    let resumed = expect_code(&cli(&["runs", "resume", &run_id]).await, 0);
    assert!(
        resumed.contains("rollout of run") && !resumed.contains("paused"),
        "{resumed}"
    );
    let bad = cli(&["run", "--all", "--waves", "50%,10%", "--", "true"]).await;
    expect_code(&bad, 3);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("waves"),
        "the server says what is wrong"
    );
}
