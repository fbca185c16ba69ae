//! Unix (Linux, macOS) side of the executor's platform layer.
//!
//! Process groups are the unit of termination: every script runs as the leader of a new
//! group (`setpgid(0, 0)` through `process_group(0)`), and timeout, kill and the bounded
//! output drain signal the whole group with `killpg`. User switching uses std's safe
//! `uid`/`gid` settings; std clears the supplementary groups when it changes the uid, so a
//! script never keeps root's groups (it does not gain the target user's supplementary groups
//! either: std's `groups` is unstable and `initgroups` would need `pre_exec`, which is unsafe).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Pid, User, geteuid};
use tutti_proto::command::Shell;

use super::Interpreter;
use crate::exec::ExecStatus;

/// `PATH` given to every script unless its request sets one: the usual system directories.
pub(crate) const BASE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `LANG` given to every script unless its request sets one: UTF-8 without locale surprises.
pub(crate) const BASE_LANG: &str = "C.UTF-8";

/// The interpreter for `shell`, or why this platform cannot run it.
pub(crate) fn interpreter(shell: Shell) -> Result<Interpreter, String> {
    let (program, leading_args, script_name): (_, &'static [&'static str], _) = match shell {
        Shell::Sh => ("sh", &[], "script.sh"),
        Shell::Bash => ("bash", &[], "script.sh"),
        Shell::Python3 => ("python3", &[], "script.py"),
        Shell::Pwsh => (
            "pwsh",
            &["-NoLogo", "-NoProfile", "-NonInteractive", "-File"],
            "script.ps1",
        ),
        Shell::Powershell => (
            "powershell",
            &["-NoLogo", "-NoProfile", "-NonInteractive", "-File"],
            "script.ps1",
        ),
        Shell::Cmd => return Err("the cmd shell runs only on Windows agents".to_string()),
        Shell::Builtin | Shell::Unsupported => {
            return Err(format!("{shell:?} is not a process interpreter"));
        }
    };
    Ok(Interpreter {
        program,
        leading_args,
        script_name,
    })
}

/// The first executable file called `program` in the `PATH`-style list `path`.
pub(crate) fn find_program(program: &str, path: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

/// Creates `path` readable and writable by its owner only (0600) and writes `bytes` to it.
/// Refuses to overwrite, so a reused staging directory cannot swap a script under us.
pub(crate) fn write_private_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The account a script runs as when its request names a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunAs {
    pub(crate) name: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) home: PathBuf,
}

/// Resolves `user` for a switch, refusing when the agent is not root.
pub(crate) fn resolve_run_as(user: &str) -> Result<RunAs, String> {
    may_switch_user(geteuid().is_root())?;
    match User::from_name(user) {
        Ok(Some(found)) => Ok(run_as(found)),
        Ok(None) => Err(format!("user `{user}` does not exist on this machine")),
        Err(error) => Err(format!("looking up user `{user}` failed: {error}")),
    }
}

/// Only root can become another user; anything else would fail later with a vaguer error.
pub(crate) fn may_switch_user(agent_is_root: bool) -> Result<(), String> {
    if agent_is_root {
        Ok(())
    } else {
        Err("running as another user requires the agent to run as root".to_string())
    }
}

/// Gives the staging directory and the script to the target user, so the script can be read
/// and the default working directory written. The caller, as root, still removes them.
pub(crate) fn hand_over_staging(
    staging_dir: &Path,
    script: &Path,
    run_as: &RunAs,
) -> io::Result<()> {
    for path in [staging_dir, script] {
        std::os::unix::fs::chown(path, Some(run_as.uid), Some(run_as.gid))?;
    }
    Ok(())
}

/// The environment every script starts from: `PATH`, `HOME`, `LANG`, `USER` and `LOGNAME`
/// of the account it runs as. The request's own variables are applied on top.
pub(crate) fn base_env(run_as: Option<&RunAs>) -> BTreeMap<String, String> {
    let account = run_as.cloned().or_else(agent_account);
    let mut env = BTreeMap::from([
        ("PATH".to_string(), BASE_PATH.to_string()),
        ("LANG".to_string(), BASE_LANG.to_string()),
        ("HOME".to_string(), "/".to_string()),
    ]);
    if let Some(account) = account {
        env.insert("HOME".to_string(), account.home.display().to_string());
        env.insert("USER".to_string(), account.name.clone());
        env.insert("LOGNAME".to_string(), account.name);
    }
    env
}

/// The agent's own account from the user database (not from `$HOME`: libraries do not read
/// the agent's environment).
fn agent_account() -> Option<RunAs> {
    User::from_uid(geteuid()).ok().flatten().map(run_as)
}

fn run_as(user: User) -> RunAs {
    RunAs {
        name: user.name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        home: user.dir,
    }
}

/// Makes the child the leader of a new process group and, when asked, switches its user.
pub(crate) fn configure(command: &mut tokio::process::Command, run_as: Option<&RunAs>) {
    command.process_group(0);
    if let Some(run_as) = run_as {
        command.gid(run_as.gid).uid(run_as.uid);
    }
}

/// The process group a script leads; signalling it reaches every descendant that did not
/// start a session of its own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcessGroup {
    pgid: Pid,
}

impl ProcessGroup {
    /// The group of a child configured by [`configure`] (its pgid is its pid).
    pub(crate) fn of(child: &tokio::process::Child) -> Option<ProcessGroup> {
        let pid = i32::try_from(child.id()?).ok()?;
        Some(ProcessGroup {
            pgid: Pid::from_raw(pid),
        })
    }

    /// Asks every member to stop (SIGTERM).
    pub(crate) fn terminate(&self) {
        self.signal(Signal::SIGTERM);
    }

    /// Stops every member now (SIGKILL).
    pub(crate) fn kill(&self) {
        self.signal(Signal::SIGKILL);
    }

    fn signal(&self, signal: Signal) {
        if let Err(error) = killpg(self.pgid, signal) {
            // ESRCH: the group is already gone, which is what we wanted.
            if error != nix::errno::Errno::ESRCH {
                tracing::warn!(pgid = self.pgid.as_raw(), %signal, %error, "Signalling a script's process group failed");
            }
        }
    }

    /// Whether any member is still running. Zombies do not count: orphaned members are
    /// reaped by init, and an init that never reaps (common in containers) must not make
    /// every timeout wait out its whole grace period.
    pub(crate) fn has_live_members(&self) -> bool {
        #[cfg(target_os = "linux")]
        if let Some(live) = linux_group_has_live_members(self.pgid.as_raw()) {
            return live;
        }
        killpg(self.pgid, None).is_ok()
    }
}

/// Scans `/proc` for a non-zombie process in group `pgid`; `None` when `/proc` is unreadable.
#[cfg(target_os = "linux")]
fn linux_group_has_live_members(pgid: i32) -> Option<bool> {
    let entries = std::fs::read_dir("/proc").ok()?;
    let live = entries
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter_map(|stat| parse_proc_stat(&stat))
        .any(|(state, group)| group == pgid && state != 'Z' && state != 'X');
    Some(live)
}

/// `(state, pgrp)` from a `/proc/<pid>/stat` line. The command name sits in parentheses and
/// may itself contain spaces and parentheses, so fields are counted from the last `)`.
pub(crate) fn parse_proc_stat(stat: &str) -> Option<(char, i32)> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// How the direct child ended.
pub(crate) fn exit_status(status: ExitStatus) -> ExecStatus {
    match (status.code(), status.signal()) {
        (Some(code), _) => ExecStatus::Exited { code },
        (None, Some(signal)) => ExecStatus::Signalled { signal },
        (None, None) => ExecStatus::FailedToStart {
            reason: format!("the process ended in an unrecognised way ({status})"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_fields_are_counted_from_the_last_parenthesis() {
        let stat = "4242 (weird ) name) S 1 4240 4240 0 -1 4194560";
        assert_eq!(parse_proc_stat(stat), Some(('S', 4240)));
        assert_eq!(parse_proc_stat("garbage"), None);
        assert_eq!(parse_proc_stat("1 (x) Z"), None);
    }

    #[test]
    fn only_root_may_switch_users() {
        assert_eq!(may_switch_user(true), Ok(()));
        let refused = may_switch_user(false).unwrap_err();
        assert_eq!(
            refused,
            "running as another user requires the agent to run as root"
        );
    }

    #[test]
    fn cmd_is_refused_off_windows() {
        let reason = interpreter(Shell::Cmd).unwrap_err();
        assert!(reason.contains("Windows"), "{reason}");
    }

    #[test]
    fn program_lookup_skips_relative_path_entries() {
        assert!(find_program("sh", "relative/dir:/usr/bin:/bin").is_some());
        assert_eq!(find_program("sh", "relative/dir"), None);
        assert_eq!(find_program("no-such-program-tutti", BASE_PATH), None);
    }
}
