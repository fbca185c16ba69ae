//! The runner: takes queued commands in stream order, applies the gates, executes, and
//! turns every outcome into a result in the outbox.
//!
//! Gates, checked just before a command starts, each answered with `skipped` and a reason:
//! the run was killed (locally recorded or revoked in KV), the job was revoked, the run's
//! deadline passed, the command was fired by a schedule while a fleet freeze is in force
//! (judged at the gate's `now`, so a freeze whose `until` has passed no longer holds), or
//! it asks for a shell or user this machine's [`Allowlist`] does not allow (`not_allowed`,
//! with the value in the result's stderr: the server's signature says who sent a command,
//! the allowlist what this machine lets anyone run).
//! Execution is bounded by the layered `concurrency` and paused while the outbox is over
//! its bound (results are never dropped; new work waits instead).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{Notify, mpsc, oneshot};
use tracing::Instrument;
use tutti_proto::command::{CommandBody, RunCommand, Script};
use tutti_proto::result::{Output, ResultStatus, RunResult, SkipReason, Truncation};
use tutti_proto::{AgentId, CommandId, ResultId, RunId, digest, subjects};

pub use crate::allowlist::Allowlist;
use crate::exec::{self, CapturedStream, ExecRequest, ExecStatus, ExecTimings, LiveChunk};
use crate::fleet::FleetView;
use crate::report;
use crate::state::{QueuedCommand, StateError, StateHandle};

/// Largest serialised result the agent publishes; the stream's message cap is 1 MiB.
const MAX_RESULT_BYTES: usize = 900 * 1024;

/// What the runner needs.
#[derive(Debug, Clone)]
pub struct RunnerContext {
    /// This agent.
    pub agent_id: AgentId,
    /// Queue and outbox.
    pub state: StateHandle,
    /// Poked when the outbox gains messages.
    pub outbox: Arc<Notify>,
    /// Where per-execution staging directories are made.
    pub staging_root: PathBuf,
    /// Process termination timings.
    pub timings: ExecTimings,
    /// Outbox bound: no new command starts at or above this many waiting messages.
    pub outbox_max_messages: u64,
    /// Outbox bound: no new command starts at or above this many waiting bytes.
    pub outbox_max_bytes: u64,
    /// For live output (core NATS, best effort) and large-output uploads.
    pub client: Option<async_nats::Client>,
    /// Bound on the large-output upload.
    pub request_timeout: Duration,
    /// The shells and users commands may ask for.
    pub allowlist: Allowlist,
}

/// An execution in flight.
#[derive(Debug)]
struct InFlight {
    run_id: RunId,
    kill: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::AbortHandle>,
}

/// The runner's state: which commands are executing, and a channel their tasks report on.
#[derive(Debug)]
pub struct Runner {
    context: RunnerContext,
    in_flight: HashMap<CommandId, InFlight>,
    finished_tx: mpsc::UnboundedSender<CommandId>,
    /// Completion reports from execution tasks; the agent's main loop selects on it.
    pub finished_rx: mpsc::UnboundedReceiver<CommandId>,
    paused_for_outbox: bool,
    /// The last dispatch found the queue empty (nothing can wait on a deadline or capacity).
    queue_seen_empty: bool,
}

impl Runner {
    /// A runner with nothing in flight.
    pub fn new(context: RunnerContext) -> Runner {
        let (finished_tx, finished_rx) = mpsc::unbounded_channel();
        Runner {
            context,
            in_flight: HashMap::new(),
            finished_tx,
            finished_rx,
            paused_for_outbox: false,
            queue_seen_empty: false,
        }
    }

    /// Number of executions in flight.
    pub fn running(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether a dispatch without a prompt would find nothing to do: the queue was empty at
    /// the last dispatch, nothing executes and the outbox has room. Every way work appears
    /// (a command queued, an execution finished, a kill, a fleet change) prompts a
    /// dispatch, so the main loop's periodic tick skips an idle runner instead of reading
    /// the state database every two seconds.
    pub fn is_idle(&self) -> bool {
        self.queue_seen_empty && self.in_flight.is_empty() && !self.paused_for_outbox
    }

    /// Stops every execution without recording a result (the agent is shutting down).
    /// Dropping an execution kills its process group; the next start reports those
    /// commands `interrupted`, exactly as after a crash, so nothing runs twice.
    pub fn abort_all(&mut self) {
        for in_flight in self.in_flight.values_mut() {
            if let Some(task) = in_flight.task.take() {
                task.abort();
            }
        }
    }

    /// An execution task finished (its result is already in the outbox).
    pub fn on_finished(&mut self, command_id: &CommandId) {
        self.in_flight.remove(command_id);
    }

    /// Kills every running execution of `run_id` (queued copies were already skipped by
    /// intake in the same transaction that recorded the kill).
    pub fn kill_run(&mut self, run_id: &RunId) {
        for in_flight in self.in_flight.values_mut().filter(|f| &f.run_id == run_id) {
            if let Some(kill) = in_flight.kill.take() {
                let _ = kill.send(());
            }
        }
    }

    /// Starts (or skips) queued commands in stream order while capacity allows.
    pub async fn dispatch(&mut self, fleet: &FleetView) -> Result<(), StateError> {
        for run_id in &fleet.revoked_runs {
            self.kill_run(run_id);
        }
        let capacity = fleet.config.concurrency as usize;
        self.queue_seen_empty = false;
        if self.in_flight.len() >= capacity || self.outbox_full().await? {
            return Ok(());
        }
        let queued = self.context.state.call(|state| state.queued()).await?;
        self.queue_seen_empty = queued.is_empty();
        for command in queued {
            if self.in_flight.len() >= capacity {
                break;
            }
            if self.in_flight.contains_key(&command.command.command_id) {
                continue;
            }
            self.admit(command, fleet).await?;
        }
        Ok(())
    }

    async fn outbox_full(&mut self) -> Result<bool, StateError> {
        let (depth, bytes) = self
            .context
            .state
            .call(|state| Ok((state.outbox_depth()?, state.outbox_bytes()?)))
            .await?;
        let full =
            depth >= self.context.outbox_max_messages || bytes >= self.context.outbox_max_bytes;
        if full && !self.paused_for_outbox {
            tracing::warn!(
                depth,
                bytes,
                max_messages = self.context.outbox_max_messages,
                max_bytes = self.context.outbox_max_bytes,
                "Results outbox is full (is the broker reachable?); new commands wait in the queue until it drains."
            );
        }
        self.paused_for_outbox = full;
        Ok(full)
    }

    async fn admit(&mut self, queued: QueuedCommand, fleet: &FleetView) -> Result<(), StateError> {
        let CommandBody::Run(run) = queued.command.body.clone() else {
            return Ok(());
        };
        let agent_id = self.context.agent_id.clone();
        let killed = {
            let run_id = run.run_id;
            self.context
                .state
                .call(move |state| state.is_killed(&run_id))
                .await?
        };
        let skipped = if let Some(reason) = gate(&run, fleet, killed, Timestamp::now()) {
            tracing::info!(run_id = %run.run_id, ?reason, "Skipping a command.");
            Some(report::skipped(&agent_id, &queued, &run.run_id, reason))
        } else if let Some(refusal) = self
            .context
            .allowlist
            .refusal(run.shell, run.user.as_deref())
        {
            tracing::warn!(run_id = %run.run_id, %refusal, "Not running a command that asks for what this agent does not allow.");
            Some(report::not_allowed(
                &agent_id,
                &queued,
                &run.run_id,
                &refusal,
            ))
        } else {
            None
        };
        if let Some(skipped) = skipped {
            self.context
                .state
                .call(move |state| state.finish(&queued, &skipped))
                .await?;
            self.context.outbox.notify_one();
            return Ok(());
        }
        let started = report::started(&agent_id, &queued, &run.run_id);
        let starting = queued.clone();
        self.context
            .state
            .call(move |state| state.start(&starting, &started))
            .await?;
        self.context.outbox.notify_one();
        let (kill_tx, kill_rx) = oneshot::channel();
        let command_id = queued.command.command_id;
        self.in_flight.insert(
            command_id,
            InFlight {
                run_id: run.run_id,
                kill: Some(kill_tx),
                task: None,
            },
        );
        let context = self.context.clone();
        let finished_tx = self.finished_tx.clone();
        let max_output = fleet.config.output_limit_bytes;
        let inline_limit = fleet.config.inline_output_limit_bytes;
        let command_id = queued.command.command_id;
        // Every line about this command, from the runner and below, carries its ids.
        let span = tracing::info_span!("command", command_id = %command_id, run_id = %run.run_id);
        let task = tokio::spawn(
            async move {
                execute_and_record(context, queued, run, kill_rx, max_output, inline_limit).await;
                let _ = finished_tx.send(command_id);
            }
            .instrument(span),
        );
        if let Some(in_flight) = self.in_flight.get_mut(&command_id) {
            in_flight.task = Some(task.abort_handle());
        }
        Ok(())
    }
}

/// The first gate a command fails, if any.
pub fn gate(
    run: &RunCommand,
    fleet: &FleetView,
    killed: bool,
    now: Timestamp,
) -> Option<SkipReason> {
    if killed || fleet.revoked_runs.contains(&run.run_id) {
        return Some(SkipReason::Killed);
    }
    if fleet.revoked_jobs.contains(&run.job.job_id) {
        return Some(SkipReason::Revoked);
    }
    if run.deadline.is_some_and(|deadline| deadline < now) {
        return Some(SkipReason::DeadlinePassed);
    }
    if run.scheduled && fleet.frozen_at(now) {
        return Some(SkipReason::Frozen);
    }
    None
}

async fn execute_and_record(
    context: RunnerContext,
    queued: QueuedCommand,
    run: RunCommand,
    kill_rx: oneshot::Receiver<()>,
    max_output: u64,
    inline_limit: u64,
) {
    let result = execute_command(&context, &queued, &run, kill_rx, max_output, inline_limit).await;
    let message = report::result(&result);
    let mut delay = Duration::from_millis(100);
    // The process has finished; its result must reach the outbox. A failing disk is retried
    // (with a loud log) rather than dropping the result.
    loop {
        let (queued, message) = (queued.clone(), message.clone());
        match context
            .state
            .call(move |state| state.finish(&queued, &message))
            .await
        {
            Ok(()) => {
                tracing::info!(
                    status = result.status.state(),
                    exit_code = ?result.exit_code,
                    "Result recorded in the outbox."
                );
                break;
            }
            Err(err) => {
                tracing::error!(run_id = %run.run_id, error = %err, "Cannot record a result in the outbox; retrying.");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
    context.outbox.notify_one();
}

async fn execute_command(
    context: &RunnerContext,
    queued: &QueuedCommand,
    run: &RunCommand,
    kill_rx: oneshot::Receiver<()>,
    max_output: u64,
    inline_limit: u64,
) -> RunResult {
    let staging_dir = context
        .staging_root
        .join(&*queued.command.command_id.to_string());
    let outcome = match prepare(context, run, &staging_dir).await {
        Ok(script) => {
            let request = ExecRequest {
                shell: run.shell,
                script,
                env: run.env.clone(),
                cwd: run.cwd.as_ref().map(PathBuf::from),
                user: run.user.clone(),
                timeout: Duration::from_secs(run.timeout_secs.max(1)),
                output_limit_bytes: run.output_limit_bytes.min(max_output).max(1024),
                staging_dir: staging_dir.clone(),
            };
            let live = live_output(context, &run.run_id);
            exec::execute_with(request, context.timings, kill_signal(kill_rx), live).await
        }
        Err(reason) => failed_outcome(reason),
    };
    let _ = std::fs::remove_dir_all(&staging_dir);
    build_result(context, queued, run, outcome, inline_limit).await
}

/// Resolves only on an explicit kill. A dropped sender (the agent shutting down) must not
/// kill the process and report `killed`: the restarted agent reports it `interrupted`.
async fn kill_signal(kill_rx: oneshot::Receiver<()>) {
    if kill_rx.await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Largest script fetched from the object store.
const MAX_SCRIPT_BYTES: u64 = tutti_proto::command::MAX_SCRIPT_OBJECT_BYTES;

/// The script text, from the command or the `tutti_scripts` object store, checked against
/// the sha256 the signed command pins, and a fresh private staging directory.
async fn prepare(
    context: &RunnerContext,
    run: &RunCommand,
    staging_dir: &std::path::Path,
) -> Result<String, String> {
    let script = match &run.script {
        Script::Inline { body } => body.clone(),
        Script::Object { name, size } => fetch_script(context, name, *size).await?,
    };
    let actual = digest::sha256_hex(script.as_bytes());
    // An object-store script is only as trustworthy as its pinned hash: never run one
    // without it. Inline scripts are covered by the command's signature already.
    let must_match = matches!(run.script, Script::Object { .. }) || !run.sha256.is_empty();
    if must_match && actual != run.sha256 {
        return Err(format!(
            "script sha256 mismatch: the command pins {:?} but the script hashes to {actual}",
            run.sha256
        ));
    }
    create_private_dir(staging_dir).map_err(|err| {
        format!(
            "cannot create staging directory {}: {err}",
            staging_dir.display()
        )
    })?;
    Ok(script)
}

async fn fetch_script(context: &RunnerContext, name: &str, size: u64) -> Result<String, String> {
    if size > MAX_SCRIPT_BYTES {
        return Err(format!(
            "script object {name:?} is {size} bytes; the limit is {MAX_SCRIPT_BYTES}"
        ));
    }
    let Some(client) = context.client.clone() else {
        return Err(format!(
            "script object {name:?}: no broker connection to fetch it"
        ));
    };
    let js = async_nats::jetstream::new(client);
    let fetch = async {
        let store = js
            .get_object_store(tutti_proto::catalog::SCRIPTS_STORE)
            .await
            .map_err(|err| err.to_string())?;
        let object = store.get(name).await.map_err(|err| err.to_string())?;
        let mut bytes = Vec::new();
        let mut limited = tokio::io::AsyncReadExt::take(object, MAX_SCRIPT_BYTES + 1);
        tokio::io::AsyncReadExt::read_to_end(&mut limited, &mut bytes)
            .await
            .map_err(|err| err.to_string())?;
        Ok::<_, String>(bytes)
    };
    let bytes = tokio::time::timeout(context.request_timeout * 6, fetch)
        .await
        .map_err(|_| format!("script object {name:?}: fetching it timed out"))?
        .map_err(|err| format!("script object {name:?}: {err}"))?;
    String::from_utf8(bytes).map_err(|_| format!("script object {name:?} is not UTF-8 text"))
}

fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn failed_outcome(reason: String) -> exec::ExecOutcome {
    let now = Timestamp::now();
    exec::ExecOutcome {
        status: ExecStatus::FailedToStart { reason },
        stdout: CapturedStream::default(),
        stderr: CapturedStream::default(),
        started_at: now,
        finished_at: now,
    }
}

/// Live output is coalesced and published at most every [`LIVE_OUTPUT_INTERVAL`] (or when
/// [`LIVE_OUTPUT_MAX_BYTES`] are waiting), so a chatty script costs the broker a few messages
/// a second, not one per write.
const LIVE_OUTPUT_INTERVAL: Duration = Duration::from_millis(200);
const LIVE_OUTPUT_MAX_BYTES: usize = 64 * 1024;

fn live_output(context: &RunnerContext, run_id: &RunId) -> Option<mpsc::Sender<LiveChunk>> {
    let client = context.client.clone()?;
    let subject = subjects::agent_output(&context.agent_id, run_id);
    let (tx, mut rx) = mpsc::channel::<LiveChunk>(64);
    tokio::spawn(async move {
        let mut pending = Vec::new();
        let mut tick = tokio::time::interval(LIVE_OUTPUT_INTERVAL);
        loop {
            let flush_and_stop = tokio::select! {
                chunk = rx.recv() => match chunk {
                    Some(chunk) => {
                        pending.extend_from_slice(&chunk.bytes);
                        if pending.len() < LIVE_OUTPUT_MAX_BYTES {
                            continue;
                        }
                        false
                    }
                    None => true,
                },
                _ = tick.tick() => false,
            };
            if !pending.is_empty() {
                // Best effort: live output is a convenience; the stored result is the record.
                let _ = client
                    .publish(subject.clone(), std::mem::take(&mut pending).into())
                    .await;
            }
            if flush_and_stop {
                return;
            }
        }
    });
    Some(tx)
}

async fn build_result(
    context: &RunnerContext,
    queued: &QueuedCommand,
    run: &RunCommand,
    outcome: exec::ExecOutcome,
    inline_limit: u64,
) -> RunResult {
    let (status, exit_code, stderr_note) = status_of(&outcome.status);
    let mut stderr = outcome.stderr;
    if let Some(note) = stderr_note {
        stderr.bytes.extend_from_slice(note.as_bytes());
        stderr.total_bytes += note.len() as u64;
    }
    let stdout = output_of(context, run, "stdout", outcome.stdout, inline_limit).await;
    let stderr = output_of(context, run, "stderr", stderr, inline_limit).await;
    let mut result = RunResult {
        result_id: ResultId::new(&run.run_id, &context.agent_id),
        run_id: run.run_id,
        command_id: queued.command.command_id,
        agent_id: context.agent_id.clone(),
        status,
        exit_code,
        stdout,
        stderr,
        delivered_at: Some(queued.received_at),
        started_at: Some(outcome.started_at),
        finished_at: outcome.finished_at,
    };
    fit_into_message(&mut result);
    result
}

fn status_of(status: &ExecStatus) -> (ResultStatus, Option<i32>, Option<String>) {
    match status {
        ExecStatus::Exited { code: 0 } => (ResultStatus::Succeeded, Some(0), None),
        ExecStatus::Exited { code } => (ResultStatus::Failed, Some(*code), None),
        ExecStatus::Signalled { signal } => (
            ResultStatus::Failed,
            None,
            Some(format!("\n[tutti: process ended by signal {signal}]\n")),
        ),
        ExecStatus::TimedOut => (ResultStatus::TimedOut, None, None),
        ExecStatus::Killed => (ResultStatus::Killed, None, None),
        ExecStatus::FailedToStart { reason } => (
            ResultStatus::Failed,
            None,
            Some(format!("[tutti: did not start: {reason}]\n")),
        ),
    }
}

/// Inline output up to the inline limit; the whole captured stream goes to the output
/// object store when larger, and the result carries the reference. When the upload is not
/// possible (no broker), the inline part is cut with a marker instead: the result is still
/// reported, with less output.
async fn output_of(
    context: &RunnerContext,
    run: &RunCommand,
    stream_name: &str,
    captured: CapturedStream,
    inline_limit: u64,
) -> Output {
    let inline_limit = inline_limit as usize;
    let truncated = (captured.dropped_bytes > 0).then_some(Truncation {
        dropped_bytes: captured.dropped_bytes,
    });
    if captured.bytes.len() <= inline_limit {
        return Output {
            inline: String::from_utf8_lossy(&captured.bytes).into_owned(),
            total_bytes: captured.total_bytes,
            truncated,
            object: None,
        };
    }
    let object = upload_output(context, run, stream_name, &captured.bytes).await;
    let head = &captured.bytes[..inline_limit];
    let cut = (captured.bytes.len() - inline_limit) as u64;
    let mut inline = String::from_utf8_lossy(head).into_owned();
    inline.push_str(&tutti_proto::result::truncation_marker(cut));
    Output {
        inline,
        total_bytes: captured.total_bytes,
        truncated: Some(Truncation {
            dropped_bytes: captured.dropped_bytes + if object.is_some() { 0 } else { cut },
        }),
        object,
    }
}

async fn upload_output(
    context: &RunnerContext,
    run: &RunCommand,
    stream_name: &str,
    bytes: &[u8],
) -> Option<tutti_proto::result::ObjectRef> {
    let client = context.client.clone()?;
    let js = async_nats::jetstream::new(client);
    let bucket = tutti_proto::catalog::OUTPUT_STORE;
    let name = format!("{}/{}/{stream_name}", run.run_id, context.agent_id);
    let upload = async {
        let store = js.get_object_store(bucket).await.ok()?;
        let mut reader = bytes;
        store.put(name.as_str(), &mut reader).await.ok()
    };
    match tokio::time::timeout(context.request_timeout * 4, upload).await {
        Ok(Some(_)) => Some(tutti_proto::result::ObjectRef {
            bucket: bucket.to_string(),
            name,
            size: bytes.len() as u64,
            sha256: digest::sha256_hex(bytes),
        }),
        _ => {
            tracing::warn!(run_id = %run.run_id, "Could not upload large output to the object store; reporting the inline part only.");
            None
        }
    }
}

/// JSON escaping can inflate odd bytes six-fold; shrink inline output until the result fits
/// one message, so a result is never refused by the broker for its size.
fn fit_into_message(result: &mut RunResult) {
    for _ in 0..16 {
        let size = serde_json::to_vec(result)
            .map(|bytes| bytes.len())
            .unwrap_or(usize::MAX);
        if size <= MAX_RESULT_BYTES {
            return;
        }
        for output in [&mut result.stdout, &mut result.stderr] {
            let keep = floor_char_boundary(&output.inline, output.inline.len() / 2);
            let dropped = (output.inline.len() - keep) as u64;
            output.inline.truncate(keep);
            if dropped > 0 {
                output
                    .inline
                    .push_str(&tutti_proto::result::truncation_marker(dropped));
                let previous = output.truncated.map(|t| t.dropped_bytes).unwrap_or(0);
                output.truncated = Some(Truncation {
                    dropped_bytes: previous + dropped,
                });
            }
        }
    }
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while index > 0 && !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;
    use tutti_proto::command::{JobRef, Shell};
    use tutti_proto::fleet::FleetFreeze;
    use tutti_proto::{GroupName, JobId};

    fn run_command() -> RunCommand {
        RunCommand {
            run_id: RunId::from_parts(1_700_000_000_000, 1),
            job: JobRef {
                job_id: JobId::parse("patch").unwrap(),
                version: 1,
            },
            script: Script::Inline {
                body: "true".into(),
            },
            sha256: String::new(),
            shell: Shell::Sh,
            timeout_secs: 5,
            env: Default::default(),
            cwd: None,
            user: None,
            output_limit_bytes: 1024,
            deadline: None,
            scheduled: false,
        }
    }

    #[test]
    fn gates_apply_in_order_and_pass_a_plain_command() {
        let now = Timestamp::now();
        let mut fleet = FleetView::initial(vec![GroupName::parse("web").unwrap()]);
        let run = run_command();
        assert_eq!(gate(&run, &fleet, false, now), None);
        assert_eq!(gate(&run, &fleet, true, now), Some(SkipReason::Killed));

        let late = RunCommand {
            deadline: Some(now - jiff::SignedDuration::from_secs(1)),
            ..run.clone()
        };
        assert_eq!(
            gate(&late, &fleet, false, now),
            Some(SkipReason::DeadlinePassed)
        );

        let scheduled = RunCommand {
            scheduled: true,
            ..run.clone()
        };
        assert_eq!(gate(&scheduled, &fleet, false, now), None);
        fleet.freeze = Some(freeze(None));
        assert_eq!(
            gate(&scheduled, &fleet, false, now),
            Some(SkipReason::Frozen)
        );
        assert_eq!(
            gate(&run, &fleet, false, now),
            None,
            "manual runs pass a freeze"
        );

        fleet.revoked_jobs.insert(run.job.job_id.clone());
        assert_eq!(gate(&run, &fleet, false, now), Some(SkipReason::Revoked));
        fleet.revoked_runs.insert(run.run_id);
        assert_eq!(gate(&run, &fleet, false, now), Some(SkipReason::Killed));
    }

    fn freeze(until: Option<Timestamp>) -> FleetFreeze {
        FleetFreeze {
            frozen: true,
            until,
            at: Timestamp::UNIX_EPOCH,
            actor: "alice".into(),
            reason: "incident".into(),
        }
    }

    /// The freeze is judged with the gate's `now`, not when the value arrived: the same
    /// view stops freezing once `until` has passed.
    #[test]
    fn a_freeze_with_until_holds_scheduled_commands_only_before_it() {
        let now = Timestamp::now();
        let hour = jiff::SignedDuration::from_hours(1);
        let manual = run_command();
        let scheduled = RunCommand {
            scheduled: true,
            ..run_command()
        };
        let mut fleet = FleetView::initial(Vec::new());
        let check =
            |fleet: &FleetView, run: &RunCommand, at: Timestamp| gate(run, fleet, false, at);

        fleet.freeze = Some(freeze(Some(now + hour)));
        assert_eq!(check(&fleet, &scheduled, now), Some(SkipReason::Frozen));
        assert_eq!(check(&fleet, &scheduled, now + hour), None, "ends at until");
        assert_eq!(check(&fleet, &manual, now), None);

        fleet.freeze = Some(freeze(Some(now - hour)));
        assert_eq!(check(&fleet, &scheduled, now), None, "until has passed");
        assert_eq!(check(&fleet, &manual, now), None);

        fleet.freeze = Some(FleetFreeze {
            frozen: false,
            ..freeze(None)
        });
        assert_eq!(check(&fleet, &scheduled, now), None, "lifted");
    }

    #[test]
    fn oversized_results_shrink_to_fit_one_message() {
        let agent_id = AgentId::parse("a").unwrap();
        let run = run_command();
        let noisy = "\u{1}".repeat(400 * 1024);
        let mut result = RunResult {
            result_id: ResultId::new(&run.run_id, &agent_id),
            run_id: run.run_id,
            command_id: CommandId::from_parts(1, 1),
            agent_id,
            status: ResultStatus::Succeeded,
            exit_code: Some(0),
            stdout: Output {
                inline: noisy.clone(),
                total_bytes: noisy.len() as u64,
                ..Output::default()
            },
            stderr: Output::default(),
            delivered_at: None,
            started_at: None,
            finished_at: Timestamp::now(),
        };
        fit_into_message(&mut result);
        assert!(serde_json::to_vec(&result).unwrap().len() <= MAX_RESULT_BYTES);
        assert!(result.stdout.truncated.unwrap().dropped_bytes > 0);
        assert!(result.stdout.inline.contains("bytes dropped"));
    }
}
