//! Shared fixtures for the integration tests: a real SQLite file in a temp dir, fixed
//! timestamps, and builders for the wire messages the projectors consume.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the fixtures"
)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::{SignedDuration, Timestamp};
use tutti_proto::event::{AgentEvent, EventKind};
use tutti_proto::heartbeat::Heartbeat;
use tutti_proto::result::{Output, ResultStatus, RunResult};
use tutti_proto::{AgentId, CommandId, JobId, ResultId, RunId};
use tutti_store::{
    CommandPublished, Covers, JobDraft, NewAgent, NewEnrollmentToken, NewRun, Sequenced, Store,
    StoreError, TargetQuery, TargetState,
};

/// A store on a fresh database file, deleted on drop.
pub(crate) struct TestDb {
    pub(crate) store: Store,
    pub(crate) path: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestDb {
    pub(crate) async fn open() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("tutti.db");
        let store = Store::open_sqlite(&path).await.expect("open store");
        TestDb {
            store,
            path,
            _dir: dir,
        }
    }

    /// A raw connection for assertions on the stored form.
    pub(crate) fn raw(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.path).expect("raw connection")
    }
}

/// 2024-05-01T12:00:00Z plus `secs`.
pub(crate) fn t(secs: i64) -> Timestamp {
    let base: Timestamp = "2024-05-01T12:00:00Z".parse().expect("base time");
    base + SignedDuration::from_secs(secs)
}

pub(crate) fn agent(name: &str) -> AgentId {
    AgentId::parse(name).expect("agent id")
}

pub(crate) fn run_id(n: u64) -> RunId {
    RunId::from_parts(1_714_564_800_000 + n, u128::from(n))
}

pub(crate) fn command_id(n: u64) -> CommandId {
    CommandId::from_parts(1_714_564_800_000 + n, u128::from(n) + 1_000_000)
}

pub(crate) fn job_id(name: &str) -> JobId {
    JobId::parse(name).expect("job id")
}

pub(crate) fn seq<T>(stream_seq: u64, message: T) -> Sequenced<T> {
    Sequenced::new(stream_seq, message)
}

/// Applies a job with a one-line definition; returns its version.
pub(crate) async fn put_job(store: &Store, name: &str, script: &str) -> u32 {
    let draft = JobDraft {
        job_id: job_id(name),
        definition: serde_json::json!({ "shell": "sh", "script": script }),
        source_yaml: format!("# {name}\nkind: Job\nscript: {script}\n"),
        anonymous: false,
    };
    store
        .put_job(draft, "alice", t(0))
        .await
        .expect("put job")
        .version
}

/// A run of job `job` (version 1) created at `t(created)` on `agents`.
pub(crate) fn new_run(run: RunId, job: &str, created: i64) -> NewRun {
    NewRun {
        run_id: run,
        job_id: job_id(job),
        job_version: 1,
        created_at: t(created),
        created_by: "alice".to_string(),
        targets_spec: serde_json::json!({ "all": true }),
        deadline: None,
        scheduled: false,
        schedule_name: None,
        during_freeze: false,
    }
}

/// Creates job `job` if needed and a run of it on `agents`, published at `command_seq`.
pub(crate) async fn start_run(
    store: &Store,
    run: RunId,
    job: &str,
    agents: &[&str],
    command_seq: u64,
) {
    start_run_with(store, new_run(run, job, 0), agents, command_seq).await;
}

/// Enrolls every named agent at `t(0)` that is not enrolled yet, as the server's
/// enrollment endpoint would: the projectors apply nothing from any other agent.
pub(crate) async fn enroll(store: &Store, names: &[&str]) {
    static N_TOKENS: AtomicU64 = AtomicU64::new(0);
    let token_idx = N_TOKENS.fetch_add(1, Ordering::Relaxed);
    let token_hash = format!("fixture-hash-{token_idx}");
    let token = NewEnrollmentToken {
        token_id: format!("fixture-{token_idx}"),
        token_hash: token_hash.clone(),
        name: "fixture".to_string(),
        created_at: t(0),
        created_by: "alice".to_string(),
        expires_at: t(3600),
        uses: u32::try_from(names.len()).expect("few agents").max(1),
        groups: Vec::new(),
    };
    store.create_enrollment_token(token).await.expect("token");
    for name in names {
        let new_agent = NewAgent {
            agent_id: agent(name),
            hostname: name.to_string(),
            os: "Debian".to_string(),
            arch: "x86_64".to_string(),
            version: "0.1.0".to_string(),
            enrolled_at: t(0),
            broker_public_key: None,
        };
        match store.enroll_agent(&token_hash, new_agent).await {
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(err) => panic!("enroll {name}: {err}"),
        }
    }
}

/// Creates `new` (and its job at version 1 if needed) on `agents`, enrolled first,
/// published at `command_seq` on `tutti.cmd.all`.
pub(crate) async fn start_run_with(store: &Store, new: NewRun, agents: &[&str], command_seq: u64) {
    enroll(store, agents).await;
    if store.get_job(&new.job_id).await.is_err() {
        put_job(store, new.job_id.as_str(), "uptime").await;
    }
    let run = new.run_id;
    let targets = agents.iter().map(|name| agent(name)).collect();
    store.create_run(new, targets).await.expect("create run");
    store
        .set_run_command_seq(CommandPublished {
            run_id: run,
            subject: "tutti.cmd.all".to_string(),
            command_id: command_id(command_seq),
            stream_seq: command_seq,
            published_at: t(0),
            covers: Covers::AllTargets,
        })
        .await
        .expect("set command seq");
}

pub(crate) fn result(
    run: RunId,
    agent_name: &str,
    status: ResultStatus,
    exit_code: Option<i32>,
) -> RunResult {
    let agent_id = agent(agent_name);
    RunResult {
        result_id: ResultId::new(&run, &agent_id),
        run_id: run,
        command_id: command_id(1),
        agent_id,
        status,
        exit_code,
        stdout: Output {
            inline: format!("hello from {agent_name}\n"),
            total_bytes: 12,
            truncated: None,
            object: None,
        },
        stderr: Output::default(),
        delivered_at: None,
        started_at: Some(t(10)),
        finished_at: t(11),
    }
}

pub(crate) fn event(agent_name: &str, at: i64, kind: EventKind) -> AgentEvent {
    AgentEvent {
        agent_id: agent(agent_name),
        at: t(at),
        kind,
    }
}

pub(crate) fn received(run: RunId, agent_name: &str, at: i64) -> AgentEvent {
    event(
        agent_name,
        at,
        EventKind::Received {
            run_id: run,
            command_id: command_id(1),
            stream_seq: 1,
        },
    )
}

pub(crate) fn started(run: RunId, agent_name: &str, at: i64) -> AgentEvent {
    event(
        agent_name,
        at,
        EventKind::Started {
            run_id: run,
            command_id: command_id(1),
        },
    )
}

pub(crate) fn heartbeat(agent_name: &str, at: i64) -> Heartbeat {
    Heartbeat {
        agent_id: agent(agent_name),
        at: t(at),
        version: "0.1.0".to_string(),
        uptime_secs: 60,
        rss_bytes: 6 << 20,
        cpu_percent: 0.5,
        queue_depth: 0,
        outbox_depth: 0,
        cursor: 7,
        hostname: format!("{agent_name}.example.net"),
        trusted_keys: Vec::new(),
    }
}

/// The state of (run, agent).
pub(crate) async fn target_state(store: &Store, run: RunId, agent_name: &str) -> TargetState {
    let targets = store
        .list_targets(&run, &TargetQuery::default())
        .await
        .expect("targets");
    targets
        .items
        .into_iter()
        .find(|target| target.agent_id.as_str() == agent_name)
        .map(|target| target.state)
        .expect("target exists")
}
