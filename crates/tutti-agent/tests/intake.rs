//! Command intake against a real broker: catch-up exactly once and in order, new agents do
//! not replay history, only correctly signed and addressed commands run, and the gates.

mod common;

use common::{Fleet, agent, all, group, results_for};
use ed25519_dalek::SigningKey;
use tutti_proto::event::EventKind;
use tutti_proto::result::{ResultStatus, SkipReason};
use tutti_proto::sign::SignedCommand;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_sent_while_stopped_run_once_each_in_order_after_restart() {
    let fleet = Fleet::start().await;
    let laptop = fleet.enroll("laptop-1", &[]).await;
    let running = laptop.start();
    let (_, warmup) = fleet.run_command(all(), "echo ready");
    fleet.publish(&warmup).await;
    fleet.results(1).await;
    running.stop().await;

    let mut runs = Vec::new();
    for word in ["one", "two", "three"] {
        let (run_id, command) = fleet.run_command(all(), &format!("echo {word}"));
        fleet.publish(&command).await;
        runs.push(run_id);
    }
    let running = laptop.start();
    let results = fleet.results(4).await;
    running.stop().await;

    for (run_id, word) in runs.iter().zip(["one", "two", "three"]) {
        let result = results
            .iter()
            .find(|r| &r.run_id == run_id)
            .expect("result for run");
        assert_eq!(result.status, ResultStatus::Succeeded);
        assert_eq!(result.stdout.inline, format!("{word}\n"));
    }
    // Started in publish order. The results' own start times say it: a command that
    // finished before the outbox drained reports no separate `started` event.
    let mut by_start = runs.clone();
    by_start.sort_by_key(|run_id| {
        results
            .iter()
            .find(|r| &r.run_id == run_id)
            .and_then(|r| r.started_at)
            .expect("an executed result has a start time")
    });
    assert_eq!(by_start, runs, "started in publish order");

    // The state directory and its files are private to the agent's user.
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(laptop.state_dir()), 0o700);
    for file in ["identity.json", "state.redb"] {
        assert_eq!(mode(&laptop.state_dir().join(file)), 0o600, "{file}");
    }

    // A restart replays nothing; a fresh agent does not run old broadcasts.
    let running = laptop.start();
    let newcomer = fleet.enroll("laptop-2", &[]).await;
    let newcomer_running = newcomer.start();
    let (barrier, command) = fleet.run_command(all(), "echo barrier");
    fleet.publish(&command).await;
    let results = fleet.results(6).await;
    running.stop().await;
    newcomer_running.stop().await;
    assert_eq!(results.len(), 6, "no duplicates: {results:#?}");
    let newcomer_results = results_for(&results, "laptop-2");
    assert_eq!(newcomer_results.len(), 1);
    assert_eq!(newcomer_results[0].run_id, barrier);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_signed_and_correctly_addressed_commands_run() {
    let fleet = Fleet::start().await;
    let web = fleet.enroll("web-1", &["web"]).await;
    let running = web.start();

    fleet
        .publish_raw(&all(), "garbage", b"not a command".to_vec())
        .await;
    let (_, forged) = fleet.run_command(all(), "echo forged");
    let other_key = SigningKey::from_bytes(&[9u8; 32]);
    let signed = SignedCommand::sign(&forged, &other_key);
    fleet
        .publish_raw(&all(), &forged.command_id.to_string(), signed.to_bytes())
        .await;
    // Signed for the db group, replayed onto `all`.
    let (_, replayed) = fleet.run_command(group("db"), "echo replayed");
    let signed = SignedCommand::sign(&replayed, &fleet.key);
    fleet
        .publish_raw(&all(), &replayed.command_id.to_string(), signed.to_bytes())
        .await;
    // Properly signed for another group: never delivered to this agent at all.
    let (_, other_group) = fleet.run_command(group("db"), "echo other-group");
    fleet.publish(&other_group).await;

    let (web_run, for_web) = fleet.run_command(group("web"), "echo web");
    fleet.publish(&for_web).await;
    let (own_run, for_agent) = fleet.run_command(agent("web-1"), "echo own");
    fleet.publish(&for_agent).await;
    let results = fleet.results(2).await;
    let refusals: Vec<String> = fleet
        .events(3)
        .await
        .into_iter()
        .filter_map(|event| match event.kind {
            EventKind::Refused { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    running.stop().await;

    let run_ids: Vec<_> = results.iter().map(|r| r.run_id).collect();
    assert_eq!(run_ids.len(), 2, "{results:#?}");
    assert!(run_ids.contains(&web_run) && run_ids.contains(&own_run));
    assert_eq!(refusals.len(), 3, "{refusals:#?}");
    assert!(
        refusals
            .iter()
            .any(|r| r.contains("signed for tutti.cmd.group.db")),
        "{refusals:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_command_is_skipped_when_its_run_is_killed_and_running_ones_are_killed() {
    let fleet = Fleet::start().await;
    let box_ = fleet.enroll("box-1", &[]).await;
    let running = box_.start();
    let mut sleepers = Vec::new();
    for _ in 0..4 {
        let (run_id, command) = fleet.run_command(all(), "sleep 60");
        fleet.publish(&command).await;
        sleepers.push(run_id);
    }
    let (queued_run, queued) = fleet.run_command(all(), "echo should-not-run");
    fleet.publish(&queued).await;
    fleet.publish(&fleet.kill_command(all(), &queued_run)).await;
    for run_id in &sleepers {
        fleet.publish(&fleet.kill_command(all(), run_id)).await;
    }
    let results = fleet.results(5).await;
    running.stop().await;

    let skipped = results.iter().find(|r| r.run_id == queued_run).unwrap();
    assert_eq!(
        skipped.status,
        ResultStatus::Skipped {
            reason: SkipReason::Killed
        }
    );
    for run_id in &sleepers {
        let result = results.iter().find(|r| &r.run_id == run_id).unwrap();
        assert_eq!(result.status, ResultStatus::Killed, "{result:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_passed_and_failed_exit_codes_are_reported() {
    let fleet = Fleet::start().await;
    let node = fleet.enroll("node-1", &[]).await;
    let running = node.start();
    let (late_run, late) = fleet.command_with(all(), "echo late", |run| {
        run.deadline = Some(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(5));
    });
    fleet.publish(&late).await;
    let (failing_run, failing) = fleet.run_command(all(), "echo oops >&2; exit 3");
    fleet.publish(&failing).await;
    let results = fleet.results(2).await;
    running.stop().await;

    let late = results.iter().find(|r| r.run_id == late_run).unwrap();
    assert_eq!(
        late.status,
        ResultStatus::Skipped {
            reason: SkipReason::DeadlinePassed
        }
    );
    let failed = results.iter().find(|r| r.run_id == failing_run).unwrap();
    assert_eq!(failed.status, ResultStatus::Failed);
    assert_eq!(failed.exit_code, Some(3));
    assert_eq!(failed.stderr.inline, "oops\n");
}
