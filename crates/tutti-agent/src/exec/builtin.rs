//! The `builtin` shell: commands the agent answers itself, without spawning a process.
//!
//! They exist for connectivity checks and benchmarks (`tutti bench` measures the bus and the
//! agent, not `fork`): `noop` succeeds with no output, `echo <text>` prints the text and a
//! newline. The script body is the command line; env, cwd and user do not apply.

use super::ExecStatus;

/// What a builtin produced: its status and its stdout (builtins never write stderr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BuiltinOutput {
    pub(crate) status: ExecStatus,
    pub(crate) stdout: Vec<u8>,
}

/// Builtin names, for error messages.
const KNOWN: &str = "noop, echo";

/// Runs the builtin command line `script`.
pub(crate) fn run(script: &str) -> BuiltinOutput {
    let line = script.trim();
    let (name, argument) = line
        .split_once(char::is_whitespace)
        .map_or((line, ""), |(name, rest)| (name, rest.trim_start()));
    match name {
        "noop" => success(Vec::new()),
        "echo" => success(format!("{argument}\n").into_bytes()),
        "" => failure(format!(
            "the builtin command line is empty (known builtins: {KNOWN})"
        )),
        unknown => failure(format!(
            "unknown builtin `{unknown}` (known builtins: {KNOWN})"
        )),
    }
}

fn success(stdout: Vec<u8>) -> BuiltinOutput {
    BuiltinOutput {
        status: ExecStatus::Exited { code: 0 },
        stdout,
    }
}

fn failure(reason: String) -> BuiltinOutput {
    BuiltinOutput {
        status: ExecStatus::FailedToStart { reason },
        stdout: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(script: &str, expected_stdout: &str) {
        let output = run(script);
        assert_eq!(output.status, ExecStatus::Exited { code: 0 }, "{script:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            expected_stdout,
            "{script:?}"
        );
    }

    fn check_refused(script: &str, expected_reason: &str) {
        match run(script).status {
            ExecStatus::FailedToStart { reason } => {
                assert!(reason.contains(expected_reason), "{reason}")
            }
            other => panic!("{script:?} ran: {other:?}"),
        }
    }

    #[test]
    fn noop_and_echo() {
        check("noop", "");
        check("  noop\n", "");
        check("echo hello world", "hello world\n");
        check("echo   spaced  out \n", "spaced  out\n");
        check("echo", "\n");
        check("echo\tx", "x\n");
    }

    #[test]
    fn unknown_and_empty_builtins_are_refused() {
        check_refused("reboot now", "unknown builtin `reboot`");
        check_refused("NOOP", "unknown builtin `NOOP`");
        check_refused("  \n", "empty");
    }
}
