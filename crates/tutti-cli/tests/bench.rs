//! Smoke tests of `tutti bench`: every scenario runs with the real binary at a tiny size
//! (five agents, a few commands, results or seconds), prints exactly one JSON object on
//! stdout with the documented keys, and reports that every target completed. No timing is
//! asserted: figures on a shared CI machine mean nothing; BENCHMARKS.md records real ones.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

const AGENTS: &str = "5";

/// Runs `tutti bench <args> --json` and returns its one JSON object.
fn check(args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .arg("bench")
        .args(args)
        .arg("--json")
        .output()
        .expect("run tutti bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "tutti bench {args:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let mut documents = serde_json::Deserializer::from_str(&stdout).into_iter::<Value>();
    let report = documents
        .next()
        .expect("one JSON document on stdout")
        .unwrap_or_else(|err| panic!("stdout is not JSON ({err}):\n{stdout}"));
    assert!(
        documents.next().is_none(),
        "more than one document:\n{stdout}"
    );
    assert!(report.is_object(), "{report}");
    for key in ["scenario", "agents", "metrics", "baseline", "ratio"] {
        assert!(report.get(key).is_some(), "no `{key}` in {report:#}");
    }
    report
}

fn assert_metrics(report: &Value, keys: &[&str]) {
    for key in keys {
        assert!(
            report["metrics"][key].is_number(),
            "metric `{key}` is not a number in {report:#}"
        );
    }
}

#[test]
fn fanout_reaches_every_agent_and_compares_with_raw_nats() {
    let report = check(&["fanout", "--agents", AGENTS]);
    assert_eq!(report["scenario"], "fanout");
    assert_eq!(report["agents"], 5);
    assert_metrics(
        &report,
        &["p50_ms", "p95_ms", "p99_ms", "max_ms", "all_done_ms"],
    );
    assert_eq!(report["metrics"]["completed"], 5, "{report:#}");
    assert!(report["baseline"]["all_done_ms"].is_number(), "{report:#}");
    assert_eq!(report["baseline"]["completed"], 5, "{report:#}");
    assert!(report["ratio"].is_number(), "{report:#}");
}

#[test]
fn fanout_with_real_processes_completes() {
    let report = check(&["fanout", "--agents", "2", "--exec", "process"]);
    assert_eq!(report["metrics"]["exec"], "process");
    assert_eq!(report["metrics"]["completed"], 2, "{report:#}");
}

#[test]
fn ingest_commits_every_result_and_compares_with_plain_sqlite() {
    let report = check(&["ingest", "--agents", AGENTS, "--results", "1000"]);
    assert_eq!(report["scenario"], "ingest");
    assert_metrics(&report, &["rows_per_s"]);
    assert_eq!(report["metrics"]["completed"], 1000, "{report:#}");
    assert!(report["baseline"]["rows_per_s"].is_number(), "{report:#}");
    assert!(report["ratio"].is_number(), "{report:#}");
}

#[test]
fn catchup_executes_every_command_sent_while_offline() {
    let report = check(&["catchup", "--agents", "2", "--commands", "10"]);
    assert_eq!(report["scenario"], "catchup");
    assert_metrics(&report, &["all_done_ms"]);
    assert_eq!(report["metrics"]["completed"], 10, "{report:#}");
    assert!(report["baseline"].is_null() && report["ratio"].is_null());
}

#[test]
fn reconnect_brings_every_agent_back() {
    let report = check(&["reconnect", "--agents", AGENTS, "--heartbeat-secs", "1"]);
    assert_eq!(report["scenario"], "reconnect");
    assert_metrics(&report, &["all_back_ms", "peak_connects_per_s"]);
    assert_eq!(report["metrics"]["completed"], 5, "{report:#}");
    assert!(report["baseline"].is_null() && report["ratio"].is_null());
}

#[test]
fn footprint_measures_real_agents_and_the_server() {
    ensure_agent_binary();
    let report = check(&[
        "footprint",
        "--agents",
        "2",
        "--sim-agents",
        AGENTS,
        "--seconds",
        "1",
    ]);
    assert_eq!(report["scenario"], "footprint");
    assert_metrics(
        &report,
        &[
            "agent_rss_kb",
            "agent_cpu_pct",
            "server_rss_kb",
            "server_cpu_pct",
        ],
    );
    assert_eq!(report["metrics"]["completed"], 2, "{report:#}");
    assert!(report["metrics"]["agent_rss_kb"].as_f64().unwrap() > 0.0);
}

/// `footprint` runs the `tutti-agent` binary next to `tutti`; Cargo builds it only when a
/// test of its own package is built, so build it here when it is missing.
fn ensure_agent_binary() {
    let agent = PathBuf::from(env!("CARGO_BIN_EXE_tutti")).with_file_name("tutti-agent");
    if agent.is_file() {
        return;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "tutti-agent", "--bin", "tutti-agent"])
        .status()
        .expect("run cargo build -p tutti-agent");
    assert!(status.success(), "cargo build -p tutti-agent failed");
}
