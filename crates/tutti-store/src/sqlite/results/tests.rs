//! `apply_results` on batches the projector tests do not build: the SQL state condition
//! against the transition table, one target reported twice in a batch, and a batch that
//! mixes new results, redeliveries and anomalies.

use jiff::Timestamp;
use rusqlite::Connection;
use tutti_proto::result::{Output, ResultStatus, RunResult, SkipReason};
use tutti_proto::{AgentId, CommandId, ResultId, RunId};

use super::{MOVE_TARGET, apply_results};
use crate::model::ingest::{ApplyOutcome, Sequenced};
use crate::sqlite::SqliteStore;
use crate::state::TargetState;

/// A migrated database and a plain connection to it, with the store kept open beside it.
struct Db {
    conn: Connection,
    _store: SqliteStore,
    _dir: tempfile::TempDir,
}

impl Db {
    fn open() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tutti.db");
        let store = SqliteStore::open_blocking(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        Db {
            conn,
            _store: store,
            _dir: dir,
        }
    }

    /// Enrolled agents (rows as enrollment leaves them, minus what results never read).
    fn enroll(&self, agents: &[&str]) {
        for agent in agents {
            self.conn
                .execute(
                    "INSERT INTO agents (agent_id, enrolled_at, first_seen_at) VALUES (?1, 0, 0)
                     ON CONFLICT (agent_id) DO NOTHING",
                    [agent],
                )
                .unwrap();
        }
    }

    /// A run with `agents`, enrolled, as queued targets (of a job that does not exist:
    /// foreign keys are off while it is created).
    fn run(&self, run: RunId, agents: &[&str]) {
        self.enroll(agents);
        self.conn
            .pragma_update(None, "foreign_keys", "OFF")
            .unwrap();
        self.conn
            .execute(
                "INSERT INTO runs (run_id, job_id, job_version, created_at, created_by,
                     targets_spec, status)
                 VALUES (?1, 'uptime', 1, 0, 'test', '{}', 'queued')",
                [run.to_string()],
            )
            .unwrap();
        for agent in agents {
            self.conn
                .execute(
                    "INSERT INTO run_targets (run_id, agent_id, state, queued_at)
                     VALUES (?1, ?2, 'queued', 0)",
                    [run.to_string(), agent.to_string()],
                )
                .unwrap();
        }
        self.conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    }

    /// Applies `batch` in one transaction, as the store does.
    fn apply(&mut self, batch: &[Sequenced<RunResult>]) -> ApplyOutcome {
        let tx = self.conn.transaction().unwrap();
        let outcome = apply_results(&tx, batch).unwrap();
        tx.commit().unwrap();
        outcome
    }

    fn target_state(&self, run: RunId, agent: &str) -> String {
        self.conn
            .query_row(
                "SELECT state FROM run_targets WHERE run_id = ?1 AND agent_id = ?2",
                [run.to_string(), agent.to_string()],
                |row| row.get(0),
            )
            .unwrap()
    }

    fn count(&self, sql: &str) -> i64 {
        self.conn.query_row(sql, [], |row| row.get(0)).unwrap()
    }

    fn run_status(&self, run: RunId) -> String {
        self.conn
            .query_row(
                "SELECT status FROM runs WHERE run_id = ?1",
                [run.to_string()],
                |row| row.get(0),
            )
            .unwrap()
    }
}

fn run_id(n: u64) -> RunId {
    RunId::from_parts(1_714_564_800_000 + n, u128::from(n))
}

fn result(run: RunId, agent: &str, status: ResultStatus) -> RunResult {
    let agent_id = AgentId::parse(agent).unwrap();
    RunResult {
        result_id: ResultId::new(&run, &agent_id),
        run_id: run,
        command_id: CommandId::from_parts(1_714_564_800_000, 7),
        agent_id,
        status,
        exit_code: Some(0),
        stdout: Output {
            inline: format!("{agent}\n"),
            total_bytes: 7,
            truncated: None,
            object: None,
        },
        stderr: Output::default(),
        delivered_at: None,
        started_at: Some(Timestamp::from_millisecond(1_000).unwrap()),
        finished_at: Timestamp::from_millisecond(2_000).unwrap(),
    }
}

fn outcome(applied: u64, duplicates: u64, anomalies: u64, transitions: u64) -> ApplyOutcome {
    ApplyOutcome {
        applied,
        duplicates,
        anomalies,
        transitions,
        unknown_agents: Vec::new(),
    }
}

/// The `CASE` in [`MOVE_TARGET`] is `state IN (<predecessors>)` for every state a result
/// reports, and moves nothing towards any other state.
#[test]
fn the_move_condition_is_the_transition_table() {
    let db = Db::open();
    let run = run_id(1);
    db.run(run, &["web-01"]);
    let mut stmt = db.conn.prepare(&MOVE_TARGET).unwrap();
    for from in TargetState::ALL {
        for to in TargetState::ALL {
            db.conn
                .execute("UPDATE run_targets SET state = ?1", [from.as_str()])
                .unwrap();
            let n_changed = stmt
                .execute(rusqlite::params![
                    run.to_string(),
                    "web-01",
                    to.as_str(),
                    None::<String>,
                    Some(0),
                    None::<i64>,
                    0,
                    None::<i64>,
                ])
                .unwrap();
            let expected = to.is_reported() && TargetState::can_move(from, to);
            assert_eq!(n_changed == 1, expected, "{from:?} -> {to:?}");
        }
    }
}

/// Later reports of a target in the same batch see the earlier ones: an unknown status is
/// stored without a move, the next report moves the target (its row exists already), and
/// a third finds the target final and the id stored.
#[test]
fn one_target_reported_three_times_in_a_batch() {
    let mut db = Db::open();
    let run = run_id(1);
    db.run(run, &["web-01", "web-02"]);
    let batch = vec![
        Sequenced::new(1, result(run, "web-01", ResultStatus::Unknown)),
        Sequenced::new(2, result(run, "web-01", ResultStatus::Succeeded)),
        Sequenced::new(3, result(run, "web-01", ResultStatus::Failed)),
        Sequenced::new(4, result(run, "web-02", ResultStatus::Succeeded)),
        Sequenced::new(5, result(run, "web-02", ResultStatus::Succeeded)),
    ];
    assert_eq!(db.apply(&batch), outcome(2, 2, 0, 2));
    assert_eq!(db.target_state(run, "web-01"), "succeeded");
    assert_eq!(db.target_state(run, "web-02"), "succeeded");
    let stored: String = db
        .conn
        .query_row(
            "SELECT status FROM results WHERE agent_id = 'web-01'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(
        stored, "unknown",
        "the first report of an id is the one stored"
    );
    assert_eq!(db.run_status(run), "done");
    assert_eq!(db.apply(&batch), outcome(0, 5, 0, 0));
}

/// New results, redeliveries, a late report for a final target, anomalies and a result
/// from an agent that is not enrolled in one batch: each counted once, the position is
/// the batch's highest sequence.
#[test]
fn a_batch_of_new_results_redeliveries_and_anomalies() {
    let mut db = Db::open();
    let (run, other_run) = (run_id(1), run_id(2));
    db.run(run, &["web-01", "web-02", "web-03", "web-04"]);
    db.run(other_run, &["db-01"]);
    db.enroll(&["web-99"]);
    let first = vec![
        Sequenced::new(1, result(run, "web-01", ResultStatus::Succeeded)),
        Sequenced::new(2, result(run, "web-02", ResultStatus::Failed)),
    ];
    assert_eq!(db.apply(&first), outcome(2, 0, 0, 2));
    assert_eq!(db.run_status(run), "running");

    let mut inconsistent = result(run, "web-04", ResultStatus::Succeeded);
    inconsistent.agent_id = AgentId::parse("web-03").unwrap();
    let skipped = ResultStatus::Skipped {
        reason: SkipReason::Other("maintenance".to_string()),
    };
    let second = vec![
        first[0].clone(),
        Sequenced::new(3, result(run, "web-03", skipped)),
        Sequenced::new(4, result(run, "web-99", ResultStatus::Succeeded)),
        Sequenced::new(5, result(run_id(9), "web-01", ResultStatus::Succeeded)),
        first[1].clone(),
        Sequenced::new(6, inconsistent),
        Sequenced::new(7, result(other_run, "db-01", ResultStatus::TimedOut)),
        Sequenced::new(8, result(run, "ghost-01", ResultStatus::Succeeded)),
    ];
    let mut expected = outcome(2, 2, 3, 2);
    expected.unknown_agents = vec![AgentId::parse("ghost-01").unwrap()];
    assert_eq!(db.apply(&second), expected);
    assert_eq!(db.target_state(run, "web-03"), "skipped");
    assert_eq!(db.target_state(run, "web-04"), "queued");
    assert_eq!(db.target_state(other_run, "db-01"), "timed_out");
    let reason: String = db
        .conn
        .query_row(
            "SELECT reason FROM run_targets WHERE agent_id = 'web-03'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(reason, "maintenance");
    assert_eq!(db.run_status(run), "running");
    assert_eq!(db.run_status(other_run), "done");
    assert_eq!(db.count("SELECT COUNT(*) FROM results"), 4);
    let kinds: String = db
        .conn
        .query_row(
            "SELECT group_concat(stream_seq || ' ' || kind, ', ')
             FROM (SELECT stream_seq, kind FROM anomalies ORDER BY stream_seq)",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(kinds, "4 not_targeted, 5 unknown_run, 6 inconsistent_ids");
    assert_eq!(
        db.count("SELECT stream_seq FROM projector_positions WHERE stream = 'TUTTI_RESULTS'"),
        8
    );
    expected = outcome(0, 7, 0, 0);
    expected.unknown_agents = vec![AgentId::parse("ghost-01").unwrap()];
    assert_eq!(db.apply(&second), expected);
}

/// A result carries the delivery time when the agent folded its `received` event into it:
/// it fills an empty `delivered_at` and never replaces one an event already set.
#[test]
fn a_result_fills_the_delivery_time_only_when_it_is_missing() {
    let mut db = Db::open();
    let run = run_id(3);
    db.run(run, &["web-01", "web-02"]);
    db.conn
        .execute(
            "UPDATE run_targets SET state = 'delivered', delivered_at = 5 WHERE agent_id = 'web-02'",
            [],
        )
        .unwrap();
    let folded_at: Timestamp = "2026-11-30T10:00:00Z".parse().unwrap();
    let batch: Vec<Sequenced<RunResult>> = ["web-01", "web-02"]
        .into_iter()
        .enumerate()
        .map(|(idx, agent)| {
            let mut folded = result(run, agent, ResultStatus::Succeeded);
            folded.delivered_at = Some(folded_at);
            Sequenced::new(idx as u64 + 1, folded)
        })
        .collect();
    assert_eq!(db.apply(&batch), outcome(2, 0, 0, 2));
    let delivered_at = |agent: &str| -> Option<i64> {
        db.conn
            .query_row(
                "SELECT delivered_at FROM run_targets WHERE agent_id = ?1",
                [agent],
                |row| row.get(0),
            )
            .unwrap()
    };
    assert_eq!(delivered_at("web-01"), Some(folded_at.as_millisecond()));
    assert_eq!(delivered_at("web-02"), Some(5), "an event's time stays");
    assert_eq!(db.target_state(run, "web-01"), "succeeded");
}
