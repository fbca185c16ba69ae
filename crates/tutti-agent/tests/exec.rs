//! The executor against real processes: shells, builtins, env and cwd, exit statuses,
//! timeout and kill of whole process groups, bounded output, user switching, live output.
//!
//! Every case stages into its own temporary directory and runs a real interpreter. Cases for
//! interpreters this machine lacks check the clear `FailedToStart` instead, and say so on
//! stderr. Process-group checks read `/proc`, so they are Linux-only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::sync::{mpsc, oneshot};
use tutti_agent::exec::{
    DEFAULT_OUTPUT_LIMIT_BYTES, ExecOutcome, ExecRequest, ExecStatus, ExecTimings, LiveChunk,
    execute, execute_with,
};
use tutti_proto::command::Shell;
use tutti_proto::result::truncation_marker;

/// The `PATH` scripts start with, to decide whether an interpreter is "present".
const BASE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Short termination timings, so group-kill cases take a second, not seven.
const FAST: ExecTimings = ExecTimings {
    kill_grace: Duration::from_millis(500),
    output_drain: Duration::from_millis(500),
};

/// One script to run, with its own staging directory.
struct Script {
    request: ExecRequest,
    staging: TempDir,
}

fn script(shell: Shell, body: &str) -> Script {
    let staging = tempfile::tempdir().expect("staging dir");
    let request = ExecRequest {
        shell,
        script: body.to_string(),
        env: BTreeMap::new(),
        cwd: None,
        user: None,
        timeout: Duration::from_secs(30),
        output_limit_bytes: DEFAULT_OUTPUT_LIMIT_BYTES,
        staging_dir: staging.path().to_path_buf(),
    };
    Script { request, staging }
}

impl Script {
    fn env(mut self, name: &str, value: &str) -> Script {
        self.request.env.insert(name.to_string(), value.to_string());
        self
    }

    fn cwd(mut self, cwd: &Path) -> Script {
        self.request.cwd = Some(cwd.to_path_buf());
        self
    }

    fn user(mut self, user: &str) -> Script {
        self.request.user = Some(user.to_string());
        self
    }

    fn timeout(mut self, timeout: Duration) -> Script {
        self.request.timeout = timeout;
        self
    }

    fn output_limit(mut self, bytes: u64) -> Script {
        self.request.output_limit_bytes = bytes;
        self
    }

    /// Runs to completion with [`FAST`] timings and no kill.
    async fn run(self) -> ExecOutcome {
        self.run_with(FAST, std::future::pending(), None).await
    }

    async fn run_with(
        self,
        timings: ExecTimings,
        kill: impl Future<Output = ()> + Send,
        live: Option<mpsc::Sender<LiveChunk>>,
    ) -> ExecOutcome {
        execute_with(self.request, timings, kill, live).await
    }
}

fn stdout(outcome: &ExecOutcome) -> String {
    String::from_utf8_lossy(&outcome.stdout.bytes).into_owned()
}

fn stderr(outcome: &ExecOutcome) -> String {
    String::from_utf8_lossy(&outcome.stderr.bytes).into_owned()
}

fn assert_exited(outcome: &ExecOutcome, code: i32) {
    let expected = ExecStatus::Exited { code };
    assert_eq!(outcome.status, expected, "stderr: {}", stderr(outcome));
}

fn failure_reason(outcome: &ExecOutcome) -> &str {
    match &outcome.status {
        ExecStatus::FailedToStart { reason } => reason,
        other => panic!(
            "expected FailedToStart, got {other:?} (stderr: {})",
            stderr(outcome)
        ),
    }
}

fn interpreter_present(program: &str) -> bool {
    std::env::split_paths(BASE_PATH).any(|dir| dir.join(program).is_file())
}

/// `(state, pgrp)` of a process, `None` once it is gone. Fields are counted from the last
/// `)` because the command name may contain spaces.
fn proc_state(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let pgrp = fields.nth(1)?.parse().ok()?;
    Some((state, pgrp))
}

/// Gone or a zombie: this machine's init does not reap orphans, so zombies stay around.
fn is_dead(pid: i32) -> bool {
    proc_state(pid).is_none_or(|(state, _)| state == 'Z')
}

fn live_members_of_group(pgid: i32) -> Vec<i32> {
    let entries = std::fs::read_dir("/proc").expect("/proc");
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| proc_state(pid).is_some_and(|(state, pgrp)| pgrp == pgid && state != 'Z'))
        .collect()
}

/// Reads the `<pgid> <grandchild pid>` line the group-kill scripts print first.
fn pids(line: &str) -> (i32, i32) {
    let mut numbers = line
        .split_whitespace()
        .map(|n| n.parse::<i32>().expect("pid"));
    (
        numbers.next().expect("pgid"),
        numbers.next().expect("grandchild pid"),
    )
}

fn assert_group_dead(pgid: i32, grandchild: i32) {
    assert!(
        is_dead(grandchild),
        "grandchild {grandchild} survived: {:?}",
        proc_state(grandchild)
    );
    let survivors = live_members_of_group(pgid);
    assert!(survivors.is_empty(), "group {pgid} still has {survivors:?}");
}

/// Prints `<pgid> <grandchild pid>`; the grandchild inherits stdout and sleeps for ten minutes.
const GRANDCHILD_HOLDS_STDOUT: &str = "sleep 600 &\necho $$ $!\n";

#[tokio::test]
async fn sh_runs_the_staged_script_in_a_minimal_env() {
    let run = script(Shell::Sh, "echo \"$0\"; pwd; stat -c %a \"$0\"; env").env("FOO", "bar baz");
    let staging = run.staging.path().to_path_buf();
    let outcome = run.run().await;
    assert_exited(&outcome, 0);
    let out = stdout(&outcome);
    let mut lines = out.lines();
    assert_eq!(
        lines.next().map(PathBuf::from),
        Some(staging.join("script.sh"))
    );
    assert_eq!(lines.next().map(PathBuf::from), Some(staging.clone()));
    assert_eq!(lines.next(), Some("600"), "the staged script is private");
    let env: BTreeMap<&str, &str> = lines.filter_map(|line| line.split_once('=')).collect();
    assert_eq!(env.get("FOO"), Some(&"bar baz"));
    assert_eq!(env.get("PATH"), Some(&BASE_PATH));
    assert_eq!(env.get("LANG"), Some(&"C.UTF-8"));
    assert!(env.contains_key("HOME"));
    let allowed = [
        "FOO", "PATH", "LANG", "HOME", "USER", "LOGNAME", "PWD", "OLDPWD", "SHLVL", "_",
    ];
    let leaked: Vec<_> = env.keys().filter(|key| !allowed.contains(key)).collect();
    assert!(
        leaked.is_empty(),
        "the agent's environment leaked: {leaked:?}"
    );
}

#[tokio::test]
async fn request_env_overrides_the_base_env_and_cwd_is_honoured() {
    let cwd = tempfile::tempdir().expect("cwd");
    let outcome = script(Shell::Sh, "pwd; echo \"$LANG $PATH\"")
        .env("LANG", "C")
        .env("PATH", "/bin:/usr/bin")
        .cwd(cwd.path())
        .run()
        .await;
    assert_exited(&outcome, 0);
    assert_eq!(
        stdout(&outcome),
        format!("{}\nC /bin:/usr/bin\n", cwd.path().display())
    );
}

#[tokio::test]
async fn bash_and_python3_run_when_present() {
    let cases = [
        (
            Shell::Bash,
            "bash",
            "echo \"bash ${BASH_VERSION:+yes} ${0##*.}\"",
        ),
        (
            Shell::Python3,
            "python3",
            "import sys\nprint('python', sys.argv[0].rsplit('.', 1)[1])",
        ),
    ];
    for (shell, program, body) in cases {
        if !interpreter_present(program) {
            eprintln!("{program} is not installed here; skipping its case");
            continue;
        }
        let outcome = script(shell, body).run().await;
        assert_exited(&outcome, 0);
        let expected = if shell == Shell::Bash {
            "bash yes sh\n"
        } else {
            "python py\n"
        };
        assert_eq!(stdout(&outcome), expected);
    }
}

#[tokio::test]
async fn powershell_runs_when_present_and_fails_clearly_when_absent() {
    for (shell, program) in [(Shell::Pwsh, "pwsh"), (Shell::Powershell, "powershell")] {
        let outcome = script(
            shell,
            "Write-Output \"ps $($PSVersionTable.PSVersion.Major -gt 0)\"",
        )
        .run()
        .await;
        if interpreter_present(program) {
            assert_exited(&outcome, 0);
            assert_eq!(stdout(&outcome).trim(), "ps True");
        } else {
            eprintln!("{program} is not installed here; checking its FailedToStart instead");
            let reason = failure_reason(&outcome);
            assert!(
                reason.contains(&format!("`{program}` was not found on PATH")),
                "{reason}"
            );
        }
    }
}

#[cfg(not(windows))]
#[tokio::test]
async fn cmd_fails_to_start_off_windows() {
    let outcome = script(Shell::Cmd, "echo hi").run().await;
    assert_eq!(
        failure_reason(&outcome),
        "the cmd shell runs only on Windows agents"
    );
}

#[tokio::test]
async fn builtins_answer_without_spawning_anything() {
    // A missing cwd and an unknown user would fail any spawn: builtins never look at them.
    let missing = Path::new("/nonexistent/tutti-builtin-cwd");
    let noop = script(Shell::Builtin, "noop")
        .cwd(missing)
        .user("no-such-user")
        .run()
        .await;
    assert_exited(&noop, 0);
    assert_eq!((noop.stdout.bytes.len(), noop.stderr.bytes.len()), (0, 0));

    let echo = script(Shell::Builtin, "echo hello fleet")
        .cwd(missing)
        .run()
        .await;
    assert_exited(&echo, 0);
    assert_eq!(stdout(&echo), "hello fleet\n");
    assert_eq!(echo.stdout.total_bytes, 12);
}

#[tokio::test]
async fn unknown_builtins_and_unsupported_shells_fail_to_start() {
    let unknown = script(Shell::Builtin, "reboot now").run().await;
    assert!(failure_reason(&unknown).contains("unknown builtin `reboot`"));
    let unsupported = script(Shell::Unsupported, "echo hi").run().await;
    assert!(failure_reason(&unsupported).contains("shell this agent version does not know"));
}

#[tokio::test]
async fn exit_codes_and_signals_are_reported() {
    assert_exited(&script(Shell::Sh, "exit 3").run().await, 3);
    assert_exited(&script(Shell::Sh, "true").run().await, 0);
    let killed = script(Shell::Sh, "kill -KILL $$").run().await;
    assert_eq!(killed.status, ExecStatus::Signalled { signal: 9 });
    let terminated = script(Shell::Sh, "kill -TERM $$").run().await;
    assert_eq!(terminated.status, ExecStatus::Signalled { signal: 15 });
}

#[tokio::test]
async fn a_missing_cwd_fails_to_start_naming_it() {
    let outcome = script(Shell::Sh, "echo hi")
        .cwd(Path::new("/nonexistent/tutti-cwd"))
        .run()
        .await;
    let reason = failure_reason(&outcome);
    assert!(reason.contains("`/nonexistent/tutti-cwd`"), "{reason}");
}

#[tokio::test]
async fn env_names_with_equals_or_nul_fail_to_start() {
    for (name, value) in [
        ("A=B", "x"),
        ("A\0B", "x"),
        ("", "x"),
        ("OK", "nul\0inside"),
    ] {
        let outcome = script(Shell::Sh, "echo hi").env(name, value).run().await;
        failure_reason(&outcome);
        assert!(outcome.stdout.bytes.is_empty());
    }
}

#[tokio::test]
async fn output_is_kept_as_raw_bytes_per_stream() {
    let outcome = script(Shell::Sh, "printf '\\377\\376\\000x'; printf 'err\\n' >&2")
        .run()
        .await;
    assert_exited(&outcome, 0);
    assert_eq!(outcome.stdout.bytes, b"\xff\xfe\0x");
    assert_eq!(outcome.stderr.bytes, b"err\n");
    assert_eq!(
        (outcome.stdout.total_bytes, outcome.stdout.dropped_bytes),
        (4, 0)
    );
}

#[tokio::test]
async fn a_small_cap_keeps_head_and_tail_around_the_marker() {
    let outcome = script(Shell::Sh, "printf 0123456789abcdefghij")
        .output_limit(10)
        .run()
        .await;
    let expected = format!("01234{}fghij", truncation_marker(10));
    assert_eq!(stdout(&outcome), expected);
    assert_eq!(
        (outcome.stdout.total_bytes, outcome.stdout.dropped_bytes),
        (20, 10)
    );
}

/// An earlier system went down on one job printing gigabytes: capture must stay bounded.
#[tokio::test]
async fn output_of_200_mb_is_capped_in_bounded_memory() {
    const TOTAL: u64 = 200_000_000;
    let rss_before = rss_bytes();
    let outcome = script(Shell::Sh, &format!("yes tutti | head -c {TOTAL}"))
        .run()
        .await;
    let rss_after = rss_bytes();
    assert_exited(&outcome, 0);
    let cap = DEFAULT_OUTPUT_LIMIT_BYTES;
    let marker = truncation_marker(TOTAL - cap);
    assert_eq!(outcome.stdout.total_bytes, TOTAL);
    assert_eq!(outcome.stdout.dropped_bytes, TOTAL - cap);
    assert_eq!(outcome.stdout.bytes.len() as u64, cap + marker.len() as u64);
    assert!(outcome.stdout.bytes.starts_with(b"tutti\ntutti\n"));
    // Rough: other tests share this process, but none comes near 100 MB.
    let growth = rss_after.saturating_sub(rss_before);
    assert!(growth < 100_000_000, "RSS grew by {growth} bytes");
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .expect("VmRSS");
    kib * 1024
}

/// Regression: an orphaned grandchild holding the stdout pipe kept killed jobs "running"
/// forever in an earlier system. Uses the production timings on purpose.
#[tokio::test]
async fn grandchild_holding_stdout_does_not_outlive_a_timeout() {
    let body = format!("{GRANDCHILD_HOLDS_STDOUT}sleep 600\n");
    let started = Instant::now();
    let outcome = execute(
        script(Shell::Sh, &body)
            .timeout(Duration::from_secs(1))
            .request,
        std::future::pending(),
        None,
    )
    .await;
    assert_eq!(outcome.status, ExecStatus::TimedOut);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let (pgid, grandchild) = pids(&stdout(&outcome));
    assert_group_dead(pgid, grandchild);
}

#[tokio::test]
async fn grandchild_holding_stdout_after_the_script_exits_is_bounded_by_the_drain() {
    let body = format!("{GRANDCHILD_HOLDS_STDOUT}( sleep 600 ) &\nexit 0\n");
    let outcome = script(Shell::Sh, &body).run().await;
    assert_exited(&outcome, 0);
    let (pgid, grandchild) = pids(&stdout(&outcome));
    assert_group_dead(pgid, grandchild);
}

#[tokio::test]
async fn background_processes_that_release_the_output_are_left_alone() {
    // A script may start a service on purpose; only holding our pipes makes it a leftover.
    let outcome = script(Shell::Sh, "sleep 30 >/dev/null 2>&1 &\necho $!")
        .run()
        .await;
    assert_exited(&outcome, 0);
    let service: i32 = stdout(&outcome).trim().parse().expect("pid");
    assert!(
        !is_dead(service),
        "a detached background process was killed"
    );
    let _ = std::process::Command::new("kill")
        .arg(service.to_string())
        .status();
}

#[tokio::test]
async fn processes_ignoring_sigterm_are_killed_after_the_grace() {
    let body = format!("trap '' TERM\n{GRANDCHILD_HOLDS_STDOUT}sleep 600\n");
    let outcome = script(Shell::Sh, &body)
        .timeout(Duration::from_millis(500))
        .run()
        .await;
    assert_eq!(outcome.status, ExecStatus::TimedOut);
    let (pgid, grandchild) = pids(&stdout(&outcome));
    assert_group_dead(pgid, grandchild);
}

#[tokio::test]
async fn the_kill_future_kills_the_whole_group() {
    let (live_tx, mut live_rx) = mpsc::channel(16);
    let (kill_tx, kill_rx) = oneshot::channel::<()>();
    let body = format!("{GRANDCHILD_HOLDS_STDOUT}sleep 600\n");
    let kill = async {
        let _ = kill_rx.await;
    };
    let running = tokio::spawn(script(Shell::Sh, &body).run_with(FAST, kill, Some(live_tx)));
    let first = live_rx.recv().await.expect("the script's first output");
    kill_tx.send(()).expect("executor waiting on kill");
    let outcome = running.await.expect("execution task");
    assert_eq!(outcome.status, ExecStatus::Killed);
    let (pgid, grandchild) = pids(&String::from_utf8_lossy(&first.bytes));
    assert_group_dead(pgid, grandchild);
}

#[tokio::test]
async fn dropping_the_execution_kills_the_group() {
    let (live_tx, mut live_rx) = mpsc::channel(16);
    let body = format!("{GRANDCHILD_HOLDS_STDOUT}sleep 600\n");
    let running = tokio::spawn(script(Shell::Sh, &body).run_with(
        FAST,
        std::future::pending(),
        Some(live_tx),
    ));
    let first = live_rx.recv().await.expect("the script's first output");
    running.abort();
    let _ = running.await;
    let (pgid, grandchild) = pids(&String::from_utf8_lossy(&first.bytes));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !live_members_of_group(pgid).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_group_dead(pgid, grandchild);
}

#[tokio::test]
async fn live_chunks_mirror_the_output_and_a_stalled_receiver_never_blocks() {
    let (live_tx, mut live_rx) = mpsc::channel(1024);
    let outcome = script(Shell::Sh, "echo one; echo two >&2; echo three")
        .run_with(FAST, std::future::pending(), Some(live_tx))
        .await;
    let mut live_stdout = Vec::new();
    while let Ok(chunk) = live_rx.try_recv() {
        if chunk.stream == tutti_agent::exec::LiveStream::Stdout {
            live_stdout.extend_from_slice(&chunk.bytes);
        }
    }
    assert_eq!(live_stdout, outcome.stdout.bytes);

    // Nobody reads this channel: the script must still run to completion at full speed.
    let (stalled_tx, _stalled_rx) = mpsc::channel(1);
    let outcome = script(Shell::Sh, "yes tutti | head -c 5000000")
        .run_with(FAST, std::future::pending(), Some(stalled_tx))
        .await;
    assert_exited(&outcome, 0);
    assert_eq!(outcome.stdout.total_bytes, 5_000_000);
}

#[tokio::test]
async fn runs_as_another_user_only_when_root() {
    let outcome = script(Shell::Sh, "id -u; id -g; id -G; echo \"$HOME $USER\"; cat \"$0\" >/dev/null && pwd >/dev/null && echo readable")
        .user("nobody")
        .run()
        .await;
    if !is_root() {
        eprintln!("not running as root; checking the refusal instead of the switch");
        assert_eq!(
            failure_reason(&outcome),
            "running as another user requires the agent to run as root"
        );
        return;
    }
    assert_exited(&outcome, 0);
    let uid = command_output("id", &["-u", "nobody"]);
    let gid = command_output("id", &["-g", "nobody"]);
    let home = command_output("sh", &["-c", "getent passwd nobody | cut -d: -f6"]);
    // Root's supplementary groups are dropped: `id -G` lists the primary group only.
    let expected = format!("{uid}\n{gid}\n{gid}\n{home} nobody\nreadable\n");
    assert_eq!(stdout(&outcome), expected);
}

#[tokio::test]
async fn an_unknown_user_fails_to_start() {
    let outcome = script(Shell::Sh, "echo hi")
        .user("no-such-user-tutti")
        .run()
        .await;
    let reason = failure_reason(&outcome);
    let expected = if is_root() {
        "user `no-such-user-tutti` does not exist on this machine"
    } else {
        "running as another user requires the agent to run as root"
    };
    assert_eq!(reason, expected);
}

fn is_root() -> bool {
    command_output("id", &["-u"]) == "0"
}

fn command_output(program: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .expect(program);
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}
