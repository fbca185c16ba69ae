//! Unit tests of the state database: idempotent intake, cursor monotonicity, the
//! queue → running → outbox path, kills that arrive before their run, and reopening.

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
