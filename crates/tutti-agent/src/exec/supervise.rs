//! Supervision of a running script: timeout, kill, and the bounded output drain.
//!
//! The script's output is pumped (`capture::pump`) during every wait below, so a chatty
//! script never blocks on a full pipe while we wait for it. Termination always targets the
//! whole process group: SIGTERM, up to `kill_grace` for the group to empty, then SIGKILL.
//! After the script exits by itself, its output may stay open only `output_drain` longer:
//! an earlier system kept killed jobs "running" forever because an orphaned grandchild held
//! the stdout pipe (pinned by the `grandchild_holding_stdout_*` tests in `tests/exec.rs`).

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::process::ExitStatus;
use std::time::Duration;

use tokio::process::Child;

use super::capture::{self, Capture, LiveSink};
use super::platform::{self, ProcessGroup};
use super::process::Spawned;
use super::{CapturedStream, ExecStatus, ExecTimings};

/// How often a terminated group is checked for surviving members.
const GROUP_POLL: Duration = Duration::from_millis(25);

/// What bounds one execution.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) timeout: Duration,
    pub(crate) output_limit_bytes: u64,
    pub(crate) timings: ExecTimings,
}

/// How a supervised script ended, with its output.
#[derive(Debug)]
pub(crate) struct Supervised {
    pub(crate) status: ExecStatus,
    pub(crate) stdout: CapturedStream,
    pub(crate) stderr: CapturedStream,
}

/// Waits for the script to exit, time out or be killed, terminates what must be, and
/// collects its output. Dropping this future kills the process group.
pub(crate) async fn supervise(
    spawned: Spawned,
    limits: Limits,
    kill: impl Future<Output = ()> + Send,
    live: &LiveSink,
) -> Supervised {
    let Spawned { mut child, group } = spawned;
    let guard = KillOnDrop(Some(group));
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let mut out = Capture::new(limits.output_limit_bytes);
    let mut err = Capture::new(limits.output_limit_bytes);
    let status = {
        let pumping = pin!(capture::pump(stdout, stderr, (&mut out, &mut err), live));
        let mut pump = Pump {
            future: pumping,
            done: false,
        };
        let ending = pump
            .alongside(wait_for_ending(&mut child, limits.timeout, kill))
            .await;
        let mut running = Running {
            child: &mut child,
            group,
            pump,
            timings: limits.timings,
        };
        running.settle(ending).await
    };
    guard.disarm();
    Supervised {
        status,
        stdout: out.finish(),
        stderr: err.finish(),
    }
}

/// What ended the first wait.
#[derive(Debug)]
enum Ending {
    Exited(io::Result<ExitStatus>),
    TimedOut,
    Killed,
}

async fn wait_for_ending(
    child: &mut Child,
    timeout: Duration,
    kill: impl Future<Output = ()>,
) -> Ending {
    // Biased towards the exit: a script that finished as the kill arrived did finish.
    tokio::select! {
        biased;
        status = child.wait() => Ending::Exited(status),
        () = kill => Ending::Killed,
        () = tokio::time::sleep(timeout) => Ending::TimedOut,
    }
}

/// The script's process state while its ending is settled.
struct Running<'a, F> {
    child: &'a mut Child,
    group: ProcessGroup,
    pump: Pump<'a, F>,
    timings: ExecTimings,
}

impl<F: Future<Output = ()>> Running<'_, F> {
    async fn settle(&mut self, ending: Ending) -> ExecStatus {
        let status = match ending {
            Ending::Exited(Ok(status)) => return self.settle_exit(status).await,
            Ending::Exited(Err(error)) => ExecStatus::FailedToStart {
                reason: format!("waiting for the script failed: {error}"),
            },
            Ending::TimedOut => ExecStatus::TimedOut,
            Ending::Killed => ExecStatus::Killed,
        };
        self.terminate_group().await;
        self.final_drain().await;
        status
    }

    /// The script exited by itself: give its output `output_drain` to close, then treat
    /// whatever still holds it open as a leftover to terminate.
    async fn settle_exit(&mut self, status: ExitStatus) -> ExecStatus {
        if !self.pump.finish_within(self.timings.output_drain).await {
            tracing::warn!(
                "A script exited but a process it started still holds its output open; terminating the script's process group"
            );
            self.terminate_group().await;
            self.final_drain().await;
        }
        platform::exit_status(status)
    }

    /// SIGTERM, up to `kill_grace` for the group to empty, then SIGKILL.
    async fn terminate_group(&mut self) {
        let (group, grace) = (self.group, self.timings.kill_grace);
        group.terminate();
        let emptied = tokio::time::timeout(grace, wait_until_gone(self.child, group));
        if self.pump.alongside(emptied).await.is_err() {
            group.kill();
            let _ = self.child.start_kill();
        }
        // Reaps the leader. Bounded: a process stuck in uninterruptible sleep ignores SIGKILL.
        let reaped = tokio::time::timeout(grace, self.child.wait());
        let _ = self.pump.alongside(reaped).await;
    }

    /// Once the group is dead its pipes close at once, unless a member escaped into a session
    /// of its own; then the rest of the output is abandoned rather than waited for.
    async fn final_drain(&mut self) {
        if !self.pump.finish_within(self.timings.output_drain).await {
            tracing::warn!(
                "A script's output is still open after its process group was killed (a process left the group); the rest of the output is dropped"
            );
        }
    }
}

/// Polls until no live process is left in `group`, reaping the leader on the way so its
/// zombie does not count.
async fn wait_until_gone(child: &mut Child, group: ProcessGroup) {
    loop {
        let _ = child.try_wait();
        if !group.has_live_members() {
            return;
        }
        tokio::time::sleep(GROUP_POLL).await;
    }
}

/// The output pump, driven alongside whatever the supervisor waits for.
struct Pump<'a, F> {
    future: Pin<&'a mut F>,
    done: bool,
}

impl<F: Future<Output = ()>> Pump<'_, F> {
    /// Runs `other` to completion while pumping output.
    async fn alongside<T>(&mut self, other: impl Future<Output = T>) -> T {
        let mut other = pin!(other);
        loop {
            tokio::select! {
                biased;
                value = &mut other => return value,
                () = self.future.as_mut(), if !self.done => self.done = true,
            }
        }
    }

    /// Whether all output reached end of file within `limit`.
    async fn finish_within(&mut self, limit: Duration) -> bool {
        if !self.done {
            self.done = tokio::time::timeout(limit, self.future.as_mut())
                .await
                .is_ok();
        }
        self.done
    }
}

/// SIGKILLs the group if supervision is abandoned (the execute future dropped, say at agent
/// shutdown), so no script outlives the code that was watching it.
struct KillOnDrop(Option<ProcessGroup>);

impl KillOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(group) = self.0.take() {
            group.kill();
        }
    }
}
