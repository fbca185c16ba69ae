//! Windows side of the executor's platform layer: the same names as `unix.rs`.
//!
//! Not compiled on the Linux machines this project is built on, so it stays deliberately
//! small. What a full port still needs: a private ACL on the staging directory, a job object
//! per execution (the Windows equivalent of a process group, so grandchildren die with it),
//! and user switching through a service logon token. Until then, user switching is refused
//! and termination goes through `taskkill /T`, which walks the child's process tree.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use tutti_proto::command::Shell;

use super::Interpreter;
use crate::exec::ExecStatus;

/// `CREATE_NEW_PROCESS_GROUP`, so console control events do not reach the agent.
const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;

/// `PATH` given to every script unless its request sets one.
pub(crate) const BASE_PATH: &str = r"C:\Windows\System32;C:\Windows;C:\Windows\System32\WindowsPowerShell\v1.0;C:\Program Files\PowerShell\7";

/// `LANG` given to every script unless its request sets one.
pub(crate) const BASE_LANG: &str = "C.UTF-8";

/// The interpreter for `shell`, or why this platform cannot run it.
pub(crate) fn interpreter(shell: Shell) -> Result<Interpreter, String> {
    let (program, leading_args, script_name): (_, &'static [&'static str], _) = match shell {
        Shell::Cmd => ("cmd.exe", &["/D", "/C"], "script.cmd"),
        Shell::Pwsh => (
            "pwsh.exe",
            &["-NoLogo", "-NoProfile", "-NonInteractive", "-File"],
            "script.ps1",
        ),
        Shell::Powershell => (
            "powershell.exe",
            &[
                "-NoLogo",
                "-NoProfile",
                "-NonInteractive",
                "-ExecutionPolicy",
                "Bypass",
                "-File",
            ],
            "script.ps1",
        ),
        Shell::Python3 => ("python.exe", &[], "script.py"),
        Shell::Sh => ("sh.exe", &[], "script.sh"),
        Shell::Bash => ("bash.exe", &[], "script.sh"),
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

/// The first file called `program` in the `PATH`-style list `path`.
pub(crate) fn find_program(program: &str, path: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Creates `path` (refusing to overwrite) and writes `bytes` to it.
pub(crate) fn write_private_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The account a script runs as when its request names a user (never, on Windows yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunAs {
    pub(crate) name: String,
    pub(crate) home: PathBuf,
}

/// User switching is not implemented on Windows.
pub(crate) fn resolve_run_as(_user: &str) -> Result<RunAs, String> {
    Err("running as another user is not supported on Windows agents yet".to_string())
}

/// Nothing to hand over: [`resolve_run_as`] never succeeds.
pub(crate) fn hand_over_staging(_dir: &Path, _script: &Path, _run_as: &RunAs) -> io::Result<()> {
    Ok(())
}

/// The environment every script starts from.
pub(crate) fn base_env(_run_as: Option<&RunAs>) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("PATH".to_string(), BASE_PATH.to_string()),
        ("LANG".to_string(), BASE_LANG.to_string()),
        ("SystemRoot".to_string(), r"C:\Windows".to_string()),
    ])
}

/// Starts the child in a new process group.
pub(crate) fn configure(command: &mut tokio::process::Command, _run_as: Option<&RunAs>) {
    command.creation_flags(CREATE_NEW_PROCESS_GROUP);
}

/// The child's process tree, terminated through `taskkill /T`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcessGroup {
    pid: u32,
}

impl ProcessGroup {
    /// The tree rooted at `child`.
    pub(crate) fn of(child: &tokio::process::Child) -> Option<ProcessGroup> {
        Some(ProcessGroup { pid: child.id()? })
    }

    /// Stops the tree. Console programs have no SIGTERM to honour, so this is already the
    /// forced kill; the grace period does not apply on Windows.
    pub(crate) fn terminate(&self) {
        self.kill();
    }

    /// Stops the tree now.
    pub(crate) fn kill(&self) {
        let mut command = std::process::Command::new("taskkill");
        command.args(["/T", "/F", "/PID", &self.pid.to_string()]);
        if let Err(error) = command.output() {
            tracing::warn!(pid = self.pid, %error, "Running taskkill on a script's process tree failed");
        }
    }

    /// Without a job object the tree cannot be enumerated; [`ProcessGroup::terminate`] has
    /// already forced it, so report it gone.
    pub(crate) fn has_live_members(&self) -> bool {
        false
    }
}

/// How the direct child ended.
pub(crate) fn exit_status(status: ExitStatus) -> ExecStatus {
    match status.code() {
        Some(code) => ExecStatus::Exited { code },
        None => ExecStatus::FailedToStart {
            reason: format!("the process ended in an unrecognised way ({status})"),
        },
    }
}
