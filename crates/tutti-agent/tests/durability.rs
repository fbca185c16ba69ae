//! Nothing is lost: results survive a broker outage and an agent SIGKILL, an execution cut
//! short by SIGKILL is reported `interrupted`, and a retention gap is reported. These tests
//! run the real `tutti-agent` binary where a process must die.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Fleet, TestAgentSpec, all};
use tutti_proto::catalog::COMMANDS_STREAM;
use tutti_proto::event::EventKind;
use tutti_proto::result::ResultStatus;

/// Waits for a file to exist (a script's marker), within the harness bound.
async fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + common::WAIT;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the agent's log contains `needle`.
async fn wait_for_log(spec: &TestAgentSpec, needle: &str) {
    let log = spec.state_dir().join("agent.log");
    let deadline = Instant::now() + common::WAIT;
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains(needle) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "agent log never said {needle:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for_started(fleet: &Fleet, run_id: &tutti_proto::RunId) {
    let deadline = Instant::now() + common::WAIT;
    loop {
        let events: Vec<tutti_proto::event::AgentEvent> =
            fleet.snapshot(tutti_proto::catalog::EVENTS_STREAM).await;
        let started = events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::Started { run_id: r, .. } if r == run_id));
        if started {
            return;
        }
        assert!(Instant::now() < deadline, "run never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sigkill(child: &mut std::process::Child) {
    child.kill().expect("SIGKILL agent");
    child.wait().expect("reap agent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_execution_is_reported_interrupted_after_restart() {
    let fleet = Fleet::start().await;
    let spec = fleet.enroll("worker-1", &[]).await;
    let mut child = spec.spawn_process();
    let (run_id, command) = fleet.run_command(all(), "sleep 60");
    fleet.publish(&command).await;
    wait_for_started(&fleet, &run_id).await;
    sigkill(&mut child);

    let mut child = spec.spawn_process();
    let results = fleet.results(1).await;
    sigkill(&mut child);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].run_id, run_id);
    assert_eq!(results[0].status, ResultStatus::Interrupted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_finished_during_a_broker_outage_and_an_agent_sigkill_is_delivered_once() {
    let mut fleet = Fleet::start().await;
    let spec = fleet.enroll("worker-2", &[]).await;
    let mut child = spec.spawn_process();
    let go = spec.state_dir().join("go");
    let script = format!(
        "while [ ! -f {go} ]; do sleep 0.05; done; echo finished",
        go = go.display()
    );
    let (run_id, command) = fleet.run_command(all(), &script);
    fleet.publish(&command).await;
    wait_for_started(&fleet, &run_id).await;

    // The broker goes away; the script finishes; the result can only go to the outbox.
    fleet.nats.stop();
    std::fs::write(&go, b"").unwrap();
    wait_for_log(&spec, "Result recorded in the outbox").await;
    // The agent dies before it could publish; the broker comes back.
    sigkill(&mut child);
    fleet.nats.start_again();

    let mut child = spec.spawn_process();
    let results = fleet.results(1).await;
    // A second restart must not publish it again.
    sigkill(&mut child);
    let mut child = spec.spawn_process();
    let (barrier, command) = fleet.run_command(all(), "echo barrier");
    fleet.publish(&command).await;
    let all_results = fleet.results(2).await;
    sigkill(&mut child);

    assert_eq!(results[0].run_id, run_id);
    assert_eq!(results[0].status, ResultStatus::Succeeded);
    assert_eq!(results[0].stdout.inline, "finished\n");
    assert_eq!(all_results.len(), 2, "{all_results:#?}");
    assert_eq!(all_results[1].run_id, barrier);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_run_gives_exactly_one_result() {
    let mut fleet = Fleet::start().await;
    let spec = fleet.enroll("worker-3", &[]).await;
    let running = spec.start();
    let marker = spec.state_dir().join("halfway");
    let script = format!("touch {}; sleep 1; echo done", marker.display());
    let (run_id, command) = fleet.run_command(all(), &script);
    fleet.publish(&command).await;
    wait_for_file(&marker).await;
    fleet.nats.restart();
    let results = fleet.results(1).await;
    let (_, barrier) = fleet.run_command(all(), "echo barrier");
    fleet.publish(&barrier).await;
    let results_after = fleet.results(2).await;
    running.stop().await;
    assert_eq!(results[0].run_id, run_id);
    assert_eq!(results[0].status, ResultStatus::Succeeded);
    assert_eq!(results_after.len(), 2, "{results_after:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_removed_by_retention_are_reported_as_a_gap() {
    let fleet = Fleet::start().await;
    let spec = fleet.enroll("sleepy-1", &[]).await;
    let running = spec.start();
    let (_, warmup) = fleet.run_command(all(), "echo warm");
    fleet.publish(&warmup).await;
    fleet.results(1).await;
    running.stop().await;

    let mut published = Vec::new();
    for n in 0..3 {
        let (_, command) = fleet.run_command(all(), &format!("echo lost-{n}"));
        published.push(fleet.publish(&command).await);
    }
    let stream = fleet
        .bus
        .jetstream()
        .get_stream(COMMANDS_STREAM)
        .await
        .unwrap();
    stream.purge().await.unwrap();

    let running = spec.start();
    let (barrier, command) = fleet.run_command(all(), "echo after-gap");
    fleet.publish(&command).await;
    let results = fleet.results(2).await;
    let gaps: Vec<(u64, u64)> = fleet
        .events(1)
        .await
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::GapDetected { from_seq, to_seq } => Some((from_seq, to_seq)),
            _ => None,
        })
        .collect();
    running.stop().await;
    assert_eq!(
        results.len(),
        2,
        "the lost commands never ran: {results:#?}"
    );
    assert_eq!(results[1].run_id, barrier);
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    let (from_seq, to_seq) = gaps[0];
    assert!(
        from_seq <= published[0] && to_seq >= published[2],
        "gap {gaps:?} covers {published:?}"
    );
}
