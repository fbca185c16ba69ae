//! The executor: runs one script to completion and says exactly how it ended.
//!
//! [`execute`] takes an [`ExecRequest`] (shell, verified script body, env, cwd, user,
//! timeout, output cap, private staging directory) and returns an [`ExecOutcome`]; it never
//! fails, a script that cannot start is [`ExecStatus::FailedToStart`] with the reason. The
//! caller (the agent's run loop) owns queueing, gates, results and the staging directory's
//! lifetime; this module owns processes.
//!
//! Module map: `builtin` answers the `builtin` shell in-process; `process` stages the script
//! and spawns it; `supervise` enforces timeout, kill and the bounded output drain on the whole
//! process group; `capture` bounds output memory; `platform` holds everything OS-specific.
//!
//! Scripts start from a small fixed environment, not the agent's: `PATH`
//! (`/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` on Unix), `HOME`, `USER` and
//! `LOGNAME` of the account the script runs as, and `LANG=C.UTF-8`. The request's variables
//! are applied on top and may override any of them, `PATH` included (the interpreter is looked
//! up on the resulting `PATH`).

mod builtin;
mod capture;
mod platform;
mod process;
mod supervise;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use tutti_proto::command::Shell;

use capture::{LiveSink, capture_bytes};

/// Default cap on captured output, per stream.
pub const DEFAULT_OUTPUT_LIMIT_BYTES: u64 = 8 * 1024 * 1024;

/// Default time between SIGTERM and SIGKILL when a script's process group is terminated.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(5);

/// Default time output may stay open after the script itself exited (a backgrounded
/// grandchild holding the pipe) before the process group is terminated.
pub const DEFAULT_OUTPUT_DRAIN: Duration = Duration::from_secs(2);

/// One script to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    /// The interpreter.
    pub shell: Shell,
    /// The script body, already verified against its sha256 by the caller.
    pub script: String,
    /// Variables set on top of the base environment (see the module docs).
    pub env: BTreeMap<String, String>,
    /// Working directory; the staging directory when absent. A missing directory fails the
    /// execution before anything is spawned.
    pub cwd: Option<PathBuf>,
    /// Run as this user. Only an agent running as root can; otherwise the execution fails
    /// to start. The primary group is set and root's supplementary groups are dropped.
    pub user: Option<String>,
    /// How long the script may run before its process group is terminated.
    pub timeout: Duration,
    /// Cap on captured output per stream: head and tail are kept around a marker.
    pub output_limit_bytes: u64,
    /// A private (0700) directory for this execution only. The script is written into it
    /// (0600); when running as another user, the directory and script are handed to that
    /// user. The caller creates it beforehand and removes it afterwards.
    pub staging_dir: PathBuf,
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecStatus {
    /// The script exited by itself with this code.
    Exited {
        /// Exit code.
        code: i32,
    },
    /// The script was ended by a signal nobody here sent (Unix).
    Signalled {
        /// Signal number.
        signal: i32,
    },
    /// The timeout expired and the process group was terminated.
    TimedOut,
    /// The kill future resolved (an operator kill) and the process group was terminated.
    Killed,
    /// Nothing ran: unknown shell or builtin, missing interpreter or cwd, bad env, user
    /// switching refused, spawn failure.
    FailedToStart {
        /// What went wrong, for the operator.
        reason: String,
    },
}

/// One stream's output, bounded by the request's cap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapturedStream {
    /// Everything when under the cap; otherwise head, `truncation_marker(dropped_bytes)` and
    /// tail. Raw bytes: output need not be UTF-8.
    pub bytes: Vec<u8>,
    /// Bytes the process wrote in total.
    pub total_bytes: u64,
    /// Bytes cut out of the middle.
    pub dropped_bytes: u64,
}

/// The result of one execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    /// How it ended.
    pub status: ExecStatus,
    /// Captured stdout.
    pub stdout: CapturedStream,
    /// Captured stderr.
    pub stderr: CapturedStream,
    /// When the executor began (before staging and spawning).
    pub started_at: jiff::Timestamp,
    /// When the outcome was settled.
    pub finished_at: jiff::Timestamp,
}

/// Which stream a live chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A piece of output sent while the script runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveChunk {
    /// Its stream.
    pub stream: LiveStream,
    /// The bytes as read from the pipe.
    pub bytes: bytes::Bytes,
}

/// How long termination may take; [`Default`] gives the production values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecTimings {
    /// Time between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// Time output may stay open after the script exited, and after the group was killed.
    pub output_drain: Duration,
}

impl Default for ExecTimings {
    fn default() -> ExecTimings {
        ExecTimings {
            kill_grace: DEFAULT_KILL_GRACE,
            output_drain: DEFAULT_OUTPUT_DRAIN,
        }
    }
}

/// Runs one script to completion with the default [`ExecTimings`].
///
/// `kill` resolving means "kill it now" (operator kill): the process group is terminated and
/// the status is [`ExecStatus::Killed`]. `live`, when given, receives output chunks while the
/// script runs, best effort: a full channel drops chunks rather than slowing the script.
/// Dropping the returned future kills the process group.
pub async fn execute(
    request: ExecRequest,
    kill: impl Future<Output = ()> + Send,
    live: Option<tokio::sync::mpsc::Sender<LiveChunk>>,
) -> ExecOutcome {
    execute_with(request, ExecTimings::default(), kill, live).await
}

/// [`execute`] with explicit termination timings.
pub async fn execute_with(
    request: ExecRequest,
    timings: ExecTimings,
    kill: impl Future<Output = ()> + Send,
    live: Option<tokio::sync::mpsc::Sender<LiveChunk>>,
) -> ExecOutcome {
    let started_at = jiff::Timestamp::now();
    let live = LiveSink::new(live);
    let outcome = match request.shell {
        Shell::Builtin => run_builtin(&request, &live, started_at),
        Shell::Unsupported => failed_to_start(
            "the command asks for a shell this agent version does not know".to_string(),
            started_at,
        ),
        _ => run_process(&request, timings, kill, &live, started_at).await,
    };
    log_outcome(&request, &outcome, &live);
    outcome
}

fn run_builtin(request: &ExecRequest, live: &LiveSink, started_at: jiff::Timestamp) -> ExecOutcome {
    let output = builtin::run(&request.script);
    ExecOutcome {
        status: output.status,
        stdout: capture_bytes(&output.stdout, request.output_limit_bytes, live),
        stderr: CapturedStream::default(),
        started_at,
        finished_at: jiff::Timestamp::now(),
    }
}

async fn run_process(
    request: &ExecRequest,
    timings: ExecTimings,
    kill: impl Future<Output = ()> + Send,
    live: &LiveSink,
    started_at: jiff::Timestamp,
) -> ExecOutcome {
    let spawned = match process::spawn(request) {
        Ok(spawned) => spawned,
        Err(reason) => return failed_to_start(reason, started_at),
    };
    let limits = supervise::Limits {
        timeout: request.timeout,
        output_limit_bytes: request.output_limit_bytes,
        timings,
    };
    let supervised = supervise::supervise(spawned, limits, kill, live).await;
    ExecOutcome {
        status: supervised.status,
        stdout: supervised.stdout,
        stderr: supervised.stderr,
        started_at,
        finished_at: jiff::Timestamp::now(),
    }
}

fn failed_to_start(reason: String, started_at: jiff::Timestamp) -> ExecOutcome {
    ExecOutcome {
        status: ExecStatus::FailedToStart { reason },
        stdout: CapturedStream::default(),
        stderr: CapturedStream::default(),
        started_at,
        finished_at: jiff::Timestamp::now(),
    }
}

fn log_outcome(request: &ExecRequest, outcome: &ExecOutcome, live: &LiveSink) {
    let shell = request.shell;
    let status = &outcome.status;
    if let ExecStatus::FailedToStart { reason } = status {
        tracing::info!(?shell, %reason, "Script failed to start");
        return;
    }
    tracing::debug!(
        ?shell,
        ?status,
        stdout_bytes = outcome.stdout.total_bytes,
        stderr_bytes = outcome.stderr.total_bytes,
        live_chunks_dropped = live.dropped_chunks(),
        "Script finished"
    );
}
