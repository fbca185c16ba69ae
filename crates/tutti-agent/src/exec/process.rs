//! Staging and spawning: from an [`ExecRequest`] to a running child in its own process group.
//!
//! Every check that can fail runs before anything is spawned, in the order an operator would
//! fix them (env, shell, user, working directory, interpreter), and each failure is a sentence
//! naming the offending value; `exec::execute` turns it into `FailedToStart`. What happens
//! after the spawn is `exec::supervise`'s job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::ExecRequest;
use super::platform::{self, Interpreter, ProcessGroup, RunAs};

/// A script that is running.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub(crate) child: tokio::process::Child,
    pub(crate) group: ProcessGroup,
}

/// Stages the script and spawns its interpreter, or says why it cannot.
pub(crate) fn spawn(request: &ExecRequest) -> Result<Spawned, String> {
    validate_env(&request.env)?;
    let interpreter = platform::interpreter(request.shell)?;
    let run_as = request
        .user
        .as_deref()
        .map(platform::resolve_run_as)
        .transpose()?;
    let cwd = working_dir(request)?;
    let mut env = platform::base_env(run_as.as_ref());
    env.extend(request.env.clone());
    let program = find_interpreter(&interpreter, &env)?;
    let script = stage_script(request, &interpreter, run_as.as_ref())?;
    let mut command = tokio::process::Command::new(&program);
    command
        .args(interpreter.leading_args)
        .arg(&script)
        .env_clear()
        .envs(&env)
        .current_dir(&cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    platform::configure(&mut command, run_as.as_ref());
    let child = command.spawn().map_err(|error| {
        format!(
            "starting `{}` in `{}` failed: {error}",
            program.display(),
            cwd.display()
        )
    })?;
    into_spawned(child)
}

/// Refuses variables the OS could not represent: a name with `=` would be split differently
/// by the child, and NUL cannot cross `execve` at all.
pub(crate) fn validate_env(env: &BTreeMap<String, String>) -> Result<(), String> {
    for (name, value) in env {
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(format!(
                "environment variable name {name:?} is invalid (empty, or contains `=` or NUL)"
            ));
        }
        if value.contains('\0') {
            return Err(format!(
                "environment variable `{name}` has a NUL byte in its value"
            ));
        }
    }
    Ok(())
}

fn working_dir(request: &ExecRequest) -> Result<PathBuf, String> {
    let cwd = request.cwd.as_ref().unwrap_or(&request.staging_dir);
    if cwd.is_dir() {
        Ok(cwd.clone())
    } else {
        Err(format!(
            "working directory `{}` does not exist or is not a directory",
            cwd.display()
        ))
    }
}

fn find_interpreter(
    interpreter: &Interpreter,
    env: &BTreeMap<String, String>,
) -> Result<PathBuf, String> {
    let path = env.get("PATH").map_or("", String::as_str);
    platform::find_program(interpreter.program, path).ok_or_else(|| {
        format!(
            "interpreter `{}` was not found on PATH ({path})",
            interpreter.program
        )
    })
}

fn stage_script(
    request: &ExecRequest,
    interpreter: &Interpreter,
    run_as: Option<&RunAs>,
) -> Result<PathBuf, String> {
    let staging_dir = &request.staging_dir;
    let script = staging_dir.join(interpreter.script_name);
    platform::write_private_file(&script, request.script.as_bytes())
        .map_err(|error| staging_failed(&script, &error))?;
    if let Some(run_as) = run_as {
        platform::hand_over_staging(staging_dir, &script, run_as)
            .map_err(|error| staging_failed(staging_dir, &error))?;
    }
    Ok(script)
}

fn staging_failed(path: &Path, error: &std::io::Error) -> String {
    format!("staging the script at `{}` failed: {error}", path.display())
}

fn into_spawned(mut child: tokio::process::Child) -> Result<Spawned, String> {
    match ProcessGroup::of(&child) {
        Some(group) => Ok(Spawned { child, group }),
        None => {
            // Unreachable in practice (the pid is known until the child is reaped), but a
            // child whose group we cannot name must not run unsupervised.
            let _ = child.start_kill();
            Err("the script's process id was unavailable right after spawning".to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_env(pairs: &[(&str, &str)], expected: Result<(), &str>) {
        let env = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let result = validate_env(&env);
        match expected {
            Ok(()) => assert_eq!(result, Ok(()), "{pairs:?}"),
            Err(fragment) => {
                let reason = result.unwrap_err();
                assert!(reason.contains(fragment), "{pairs:?}: {reason}");
            }
        }
    }

    #[test]
    fn env_names_and_values_the_os_cannot_carry_are_refused() {
        check_env(&[("FOO", "bar"), ("EMPTY", ""), ("UNICODE_✓", "✓")], Ok(()));
        check_env(&[("A=B", "c")], Err("\"A=B\" is invalid"));
        check_env(&[("A\0B", "c")], Err("is invalid"));
        check_env(&[("", "c")], Err("\"\" is invalid"));
        check_env(&[("A", "b\0c")], Err("`A` has a NUL byte"));
    }
}
