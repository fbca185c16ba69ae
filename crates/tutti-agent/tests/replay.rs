//! Replay hygiene against a real broker: a command whose seen entry was pruned is refused
//! as expired when it is delivered again, never run twice; and a flood of forged commands
//! is reported within the refusal limit, the rest in one summary that accounts for them.

mod common;

use std::time::Duration;

use common::{Fleet, TestAgentSpec, WAIT, all, test_options};
use ed25519_dalek::SigningKey;
use jiff::{SignedDuration, Timestamp};
use tutti_agent::state::{AgentState, RefusalLimit, SEEN_MARGIN};
use tutti_proto::catalog::EVENTS_STREAM;
use tutti_proto::event::{AgentEvent, EventKind};
use tutti_proto::result::ResultStatus;
use tutti_proto::sign::SignedCommand;

/// Pins the invariant stated at `tutti_agent::state::seen_prune_time`: once a command's
/// seen entry is pruned, only its expiry keeps it from running again, and that holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pruned_command_delivered_again_is_refused_not_run() {
    let fleet = Fleet::start().await;
    let spec = fleet.enroll("box-1", &[]).await;
    let running = spec.start();
    let (run_id, mut command) = fleet.run_command(all(), "echo once");
    let expires_at = Timestamp::now() + SignedDuration::from_secs(3);
    command.expires_at = Some(expires_at);
    let signed = SignedCommand::sign(&command, &fleet.key).to_bytes();
    fleet
        .publish_raw(&all(), &command.command_id.to_string(), signed.clone())
        .await;
    let results = fleet.results(1).await;
    assert_eq!(results[0].run_id, run_id);
    assert_eq!(results[0].status, ResultStatus::Succeeded);
    running.stop().await;

    // What the agent's hourly prune does once the margin after the expiry has passed.
    {
        let state = AgentState::open(&spec.state_dir().join("state.redb")).unwrap();
        assert!(state.has_seen(&command.command_id).unwrap());
        assert_eq!(state.prune_seen(expires_at + SEEN_MARGIN, 100).unwrap(), 1);
        assert!(!state.has_seen(&command.command_id).unwrap());
    }
    // The replay must reach the agent after the expiry on its clock, as it would a day later:
    // waited for on the clock itself (the condition is the time, not another task).
    while Timestamp::now() <= expires_at {
        let left = expires_at.duration_since(Timestamp::now());
        tokio::time::sleep(Duration::try_from(left).unwrap_or_default() + Duration::from_millis(1))
            .await;
    }

    let running = spec.start();
    // The same signed bytes again, under another message id than the stream de-duplicates.
    let replay_seq = fleet
        .publish_raw(&all(), &format!("replay-{}", command.command_id), signed)
        .await;
    let (barrier, barrier_command) = fleet.run_command(all(), "echo barrier");
    fleet.publish(&barrier_command).await;
    let results = fleet.results(2).await;
    let refusal = wait_for_event(
        &fleet,
        |kind| matches!(kind, EventKind::Refused { stream_seq, .. } if *stream_seq == replay_seq),
    )
    .await;
    running.stop().await;

    let run_ids: Vec<_> = results.iter().map(|result| result.run_id).collect();
    assert_eq!(
        run_ids,
        [run_id, barrier],
        "ran once; the barrier proves the replay was read"
    );
    let EventKind::Refused { reason, .. } = refusal else {
        unreachable!()
    };
    assert!(reason.contains("expired"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_forged_commands_is_reported_within_the_limit() {
    const N_FORGED: u64 = 50;
    let fleet = Fleet::start().await;
    let spec = fleet.enroll("box-1", &[]).await;
    // A short window, so that its summary comes within the test; the flood itself takes
    // far less than the window, so it falls into one.
    let limit = RefusalLimit {
        per_window: 10,
        window: SignedDuration::from_secs(5),
    };
    let running = start_with_limit(&spec, limit);
    let forger = SigningKey::from_bytes(&[9u8; 32]);
    let mut last_seq = 0;
    for n in 0..N_FORGED {
        let (_, forged) = fleet.run_command(all(), &format!("echo forged {n}"));
        let signed = SignedCommand::sign(&forged, &forger).to_bytes();
        last_seq = fleet
            .publish_raw(&all(), &forged.command_id.to_string(), signed)
            .await;
    }
    wait_for_event(
        &fleet,
        |kind| matches!(kind, EventKind::Refused { suppressed, .. } if *suppressed > 0),
    )
    .await;
    running.stop().await;

    let refusals: Vec<(u64, u64)> = refusals(&fleet).await;
    let singles = refusals
        .iter()
        .filter(|(_, suppressed)| *suppressed == 0)
        .count();
    let summaries: Vec<(u64, u64)> = refusals
        .iter()
        .copied()
        .filter(|(_, suppressed)| *suppressed > 0)
        .collect();
    assert_eq!(singles as u64, limit.per_window, "{refusals:?}");
    assert_eq!(
        summaries,
        [(last_seq, N_FORGED - limit.per_window)],
        "{refusals:?}"
    );
}

fn start_with_limit(spec: &TestAgentSpec, limit: RefusalLimit) -> common::RunningAgent {
    let options = tutti_agent::AgentOptions {
        refusal_limit: limit,
        ..test_options()
    };
    spec.start_with(spec.config(), options)
}

/// `(stream_seq, suppressed)` of every refusal in `TUTTI_EVENTS`.
async fn refusals(fleet: &Fleet) -> Vec<(u64, u64)> {
    let events: Vec<AgentEvent> = fleet.snapshot(EVENTS_STREAM).await;
    events
        .into_iter()
        .filter_map(|event| match event.kind {
            EventKind::Refused {
                stream_seq,
                suppressed,
                ..
            } => Some((stream_seq, suppressed)),
            _ => None,
        })
        .collect()
}

/// Waits until `TUTTI_EVENTS` holds an event whose kind matches; returns that kind.
async fn wait_for_event(fleet: &Fleet, matches: impl Fn(&EventKind) -> bool) -> EventKind {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let events: Vec<AgentEvent> = fleet.snapshot(EVENTS_STREAM).await;
        if let Some(event) = events.into_iter().find(|event| matches(&event.kind)) {
            return event.kind;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no such event in {EVENTS_STREAM}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
