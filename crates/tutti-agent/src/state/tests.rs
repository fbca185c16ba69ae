//! Unit tests of the state database: idempotent intake, cursor monotonicity, the
//! queue → running → outbox path, kills that arrive before their run, reopening, pruning
//! of seen command ids and the refusal limit.

use tutti_proto::command::{Command, CommandBody, JobRef, KillCommand, RunCommand, Script, Shell};
use tutti_proto::{CommandId, JobId, RunId};

use super::*;

pub(crate) fn run_command(n: u64) -> QueuedCommand {
    let run_id = RunId::from_parts(1_700_000_000_000, u128::from(n));
    QueuedCommand {
        stream_seq: n,
        subject: "tutti.cmd.all".into(),
        command: Command {
            command_id: CommandId::from_parts(1_700_000_000_000, u128::from(n) + 1000),
            subject: "tutti.cmd.all".into(),
            issued_at: Timestamp::now(),
            expires_at: None,
            body: CommandBody::Run(RunCommand {
                run_id,
                job: JobRef {
                    job_id: JobId::parse("job").unwrap(),
                    version: 1,
                },
                script: Script::Inline {
                    body: "true".into(),
                },
                sha256: String::new(),
                shell: Shell::Sh,
                timeout_secs: 10,
                env: Default::default(),
                cwd: None,
                user: None,
                output_limit_bytes: 1024,
                deadline: None,
                scheduled: false,
            }),
        },
        received_at: Timestamp::now(),
    }
}

fn message(tag: &str) -> OutboxMessage {
    OutboxMessage {
        subject: "tutti.agent.a.event".into(),
        msg_id: tag.into(),
        payload: tag.into(),
        progress_of: None,
        result_of: None,
    }
}

fn open(dir: &tempfile::TempDir) -> AgentState {
    AgentState::open(&dir.path().join("state.redb")).unwrap()
}

#[test]
fn enqueue_is_idempotent_by_command_id() {
    let dir = tempfile::tempdir().unwrap();
    let state = open(&dir);
    let command = run_command(5);
    let first = state
        .enqueue(&command, &message("r5"), || message("skip"))
        .unwrap();
    assert_eq!(first, EnqueueOutcome::Queued);

    // The same command delivered again at a later sequence (a consumer switch).
    let replay = QueuedCommand {
        stream_seq: 9,
        ..command.clone()
    };
    let second = state
        .enqueue(&replay, &message("r5-again"), || message("skip"))
        .unwrap();
    assert_eq!(second, EnqueueOutcome::Duplicate);
    assert_eq!(state.queued().unwrap(), vec![command]);
    assert_eq!(state.cursor().unwrap(), Some(9));
    assert_eq!(
        state.outbox_depth().unwrap(),
        1,
        "only the first received event"
    );
}

#[test]
fn cursor_never_moves_backwards() {
    let dir = tempfile::tempdir().unwrap();
    let state = open(&dir);
    state.advance_cursor(10, None).unwrap();
    state.advance_cursor(4, None).unwrap();
    assert_eq!(state.cursor().unwrap(), Some(10));
}

#[test]
fn start_and_finish_move_a_command_through_to_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let state = open(&dir);
    let command = run_command(1);
    state
        .enqueue(&command, &message("received"), || message("skip"))
        .unwrap();
    state.start(&command, &message("started")).unwrap();
    assert!(state.queued().unwrap().is_empty());
    assert_eq!(state.running().unwrap(), vec![command.clone()]);

    state.finish(&command, &message("result")).unwrap();
    assert!(state.running().unwrap().is_empty());
    let outbox: Vec<String> = state
        .outbox_head(10)
        .unwrap()
        .into_iter()
        .map(|(_, m)| m.msg_id)
        .collect();
    assert_eq!(
        outbox,
        ["received", "started", "result"],
        "publish order is intake order"
    );
}

#[test]
fn a_run_killed_before_its_command_arrives_is_skipped_not_queued() {
    let dir = tempfile::tempdir().unwrap();
    let state = open(&dir);
    let command = run_command(3);
    let run_id = *command.command.run_id().unwrap();
    state.record_kill(&run_id, Timestamp::now()).unwrap();

    let outcome = state
        .enqueue(&command, &message("received"), || message("skipped"))
        .unwrap();
    assert_eq!(outcome, EnqueueOutcome::AlreadyKilled);
    assert!(state.queued().unwrap().is_empty());
    let outbox: Vec<String> = state
        .outbox_head(10)
        .unwrap()
        .into_iter()
        .map(|(_, m)| m.msg_id)
        .collect();
    assert_eq!(outbox, ["received", "skipped"]);
    let kill = KillCommand { run_id };
    assert!(state.is_killed(&kill.run_id).unwrap());
}

#[test]
fn everything_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let first = run_command(1);
    let second = run_command(2);
    {
        let state = open(&dir);
        state
            .enqueue(&first, &message("r1"), || message("s"))
            .unwrap();
        state
            .enqueue(&second, &message("r2"), || message("s"))
            .unwrap();
        state.start(&first, &message("started1")).unwrap();
    }
    let state = open(&dir);
    assert_eq!(state.cursor().unwrap(), Some(2));
    assert_eq!(state.queued().unwrap(), vec![second]);
    assert_eq!(state.running().unwrap(), vec![first]);
    assert_eq!(state.outbox_depth().unwrap(), 3);
    let bytes_before = state.outbox_bytes().unwrap();
    assert!(bytes_before > 0);
    let (key, _) = state.outbox_head(1).unwrap()[0].clone();
    state.outbox_remove(key).unwrap();
    assert_eq!(state.outbox_depth().unwrap(), 2);
    assert!(state.outbox_bytes().unwrap() < bytes_before);
    let keys: Vec<u64> = state
        .outbox_head(10)
        .unwrap()
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    state.outbox_remove_many(&keys).unwrap();
    assert_eq!(
        state.outbox_bytes().unwrap(),
        0,
        "the byte count returns to zero"
    );
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).unwrap()
}

/// A run command received at `at(0)`, expiring at `expires_at` when given.
fn received_command(n: u64, expires_at: Option<Timestamp>) -> QueuedCommand {
    let mut queued = run_command(n);
    queued.command.expires_at = expires_at;
    queued.received_at = at(0);
    queued
}

/// The invariant stated at `seen_prune_time`: an entry is kept until [`SEEN_MARGIN`] after
/// the last moment a delivery could still be taken in (its `expires_at`, or the commands
/// stream's retention after it was received), pruned after, and a pruned command is new to
/// the database again (`tests/replay.rs` shows intake refusing it as expired).
#[test]
fn seen_entries_are_pruned_only_after_their_expiry_and_margin() {
    let dir = tempfile::tempdir().unwrap();
    let state = open(&dir);
    let expiring = received_command(1, Some(at(3600)));
    let lasting = received_command(2, None);
    for queued in [&expiring, &lasting] {
        state
            .enqueue(queued, &message("received"), || message("skip"))
            .unwrap();
    }
    let expiring_due = at(3600) + SEEN_MARGIN;
    let lasting_due = at(0) + COMMANDS_RETENTION + SEEN_MARGIN;
    let one_ms = SignedDuration::from_millis(1);

    assert_eq!(state.prune_seen(expiring_due - one_ms, 100).unwrap(), 0);
    assert!(state.has_seen(&expiring.command.command_id).unwrap());
    assert_eq!(state.prune_seen(expiring_due, 100).unwrap(), 1);
    assert!(!state.has_seen(&expiring.command.command_id).unwrap());
    assert!(state.has_seen(&lasting.command.command_id).unwrap());
    assert_eq!(state.prune_seen(lasting_due - one_ms, 100).unwrap(), 0);
    assert_eq!(state.prune_seen(lasting_due, 100).unwrap(), 1);
    assert!(!state.has_seen(&lasting.command.command_id).unwrap());

    let replay = QueuedCommand {
        stream_seq: 9,
        ..expiring
    };
    let outcome = state
        .enqueue(&replay, &message("again"), || message("skip"))
        .unwrap();
    assert_eq!(
        outcome,
        EnqueueOutcome::Queued,
        "pruned: only verification's expiry check stands between it and a second run"
    );
}

#[test]
fn pruning_takes_at_most_a_batch_per_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let state = open(&dir);
    for n in 1..=5 {
        let queued = received_command(n, Some(at(n as i64)));
        state
            .enqueue(&queued, &message("received"), || message("skip"))
            .unwrap();
    }
    let later = at(10) + SEEN_MARGIN;
    assert_eq!(state.prune_seen(later, 2).unwrap(), 2);
    assert_eq!(state.prune_seen(later, 2).unwrap(), 2);
    assert_eq!(state.prune_seen(later, 2).unwrap(), 1);
    assert_eq!(state.prune_seen(later, 2).unwrap(), 0);
}

#[test]
fn the_commands_retention_is_the_catalogs() {
    use tutti_proto::catalog::{COMMANDS_STREAM, Catalog, CatalogConfig};
    let catalog = Catalog::tutti(&CatalogConfig::default());
    let stream = catalog.get(COMMANDS_STREAM).unwrap();
    assert_eq!(
        COMMANDS_RETENTION,
        SignedDuration::try_from(stream.max_age).unwrap()
    );
}

/// Outbox message ids, oldest first.
fn outbox_ids(state: &AgentState) -> Vec<String> {
    state
        .outbox_head(100)
        .unwrap()
        .into_iter()
        .map(|(_, m)| m.msg_id)
        .collect()
}

/// Refuses the message at `seq` at `at(secs)` under `limit`.
fn refuse(state: &AgentState, seq: u64, secs: i64, limit: RefusalLimit) -> Option<Timestamp> {
    state
        .refuse(
            seq,
            &message(&format!("r{seq}")),
            limit,
            at(secs),
            |n, last| message(&format!("summary {n} up to {last}")),
        )
        .unwrap()
}

#[test]
fn refusals_past_the_limit_are_counted_into_one_summary() {
    let dir = tempfile::tempdir().unwrap();
    let state = open(&dir);
    let limit = RefusalLimit {
        per_window: 3,
        window: SignedDuration::from_secs(60),
    };
    for seq in 1..=3 {
        assert_eq!(refuse(&state, seq, 0, limit), None, "reported");
    }
    for seq in 4..=10 {
        assert_eq!(refuse(&state, seq, 1, limit), Some(at(60)), "counted");
    }
    assert_eq!(
        state.cursor().unwrap(),
        Some(10),
        "every refusal moves the cursor"
    );
    assert_eq!(state.refusal_summary_due(limit).unwrap(), Some(at(60)));
    let summary = |n: u64, last: u64| message(&format!("summary {n} up to {last}"));
    assert!(!state.summarize_refusals(limit, at(59), summary).unwrap());
    assert!(state.summarize_refusals(limit, at(60), summary).unwrap());
    assert!(!state.summarize_refusals(limit, at(61), summary).unwrap());
    assert_eq!(state.refusal_summary_due(limit).unwrap(), None);
    assert_eq!(outbox_ids(&state), ["r1", "r2", "r3", "summary 7 up to 10"]);
}

/// Without a tick in between, the refusal that opens the next window writes the summary
/// first; and the count survives a restart, since the cursor already moved past them.
#[test]
fn a_pending_summary_survives_reopening_and_precedes_the_next_window() {
    let dir = tempfile::tempdir().unwrap();
    let limit = RefusalLimit {
        per_window: 1,
        window: SignedDuration::from_secs(60),
    };
    {
        let state = open(&dir);
        for seq in 1..=3 {
            refuse(&state, seq, 0, limit);
        }
    }
    let state = open(&dir);
    assert_eq!(state.refusal_summary_due(limit).unwrap(), Some(at(60)));
    assert_eq!(refuse(&state, 4, 61, limit), None);
    assert_eq!(outbox_ids(&state), ["r1", "summary 2 up to 3", "r4"]);
}
