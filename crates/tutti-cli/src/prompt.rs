//! Asking the operator for secrets and answers: passwords without echo on the terminal
//! (`rpassword`), or one per line of standard input with `--password-stdin`, which is what
//! scripts and the tests use. `login`, `passwd` and `users create` read through here.
//!
//! Standard input is never read unless `--password-stdin` says so, and the terminal is
//! never asked when it does: a script that forgot a line fails with a message naming the
//! line or the flag instead of hanging on a prompt nobody sees.

use std::io::{BufRead, BufReader, Lines, StdinLock, Write};

use crate::client::CliError;

/// Where secrets come from.
#[derive(Debug)]
pub(crate) struct SecretInput {
    /// The lines of standard input with `--password-stdin`, else `None` (the terminal).
    stdin: Option<Lines<StdinLock<'static>>>,
}

impl SecretInput {
    /// Secrets from standard input when `from_stdin`, else from the terminal.
    pub(crate) fn new(from_stdin: bool) -> SecretInput {
        SecretInput {
            stdin: from_stdin.then(|| std::io::stdin().lines()),
        }
    }

    /// A password: the next line of standard input (`line` says which, for the error when
    /// it is missing), or asked without echo on the terminal.
    pub(crate) fn password(&mut self, prompt: &str, line: &str) -> Result<String, CliError> {
        match &mut self.stdin {
            Some(lines) => next_line(lines, line),
            None => ask_hidden(prompt),
        }
    }

    /// A new password: the next line of standard input, or asked twice on the terminal.
    pub(crate) fn new_password(&mut self, line: &str) -> Result<String, CliError> {
        if let Some(lines) = &mut self.stdin {
            return next_line(lines, line);
        }
        let first = ask_hidden("New password (at least 12 characters): ")?;
        let again = ask_hidden("The new password again: ")?;
        if first != again {
            return Err(CliError::Usage(
                "the two new passwords differ: run the command again".into(),
            ));
        }
        Ok(first)
    }

    /// A visible answer (a user name, a one-time code) asked on the terminal. Refused with
    /// `--password-stdin`, where `flag` is how to give it instead.
    pub(crate) fn answer(&self, prompt: &str, flag: &str) -> Result<String, CliError> {
        if self.stdin.is_some() {
            return Err(CliError::Usage(format!(
                "with --password-stdin nothing is asked on the terminal: pass {flag}"
            )));
        }
        ask_visible(prompt).map_err(|err| {
            CliError::Usage(format!("cannot ask on the terminal ({err}): pass {flag}"))
        })
    }
}

fn next_line(lines: &mut Lines<StdinLock<'static>>, which: &str) -> Result<String, CliError> {
    match lines.next() {
        Some(Ok(text)) => Ok(text.trim_end_matches('\r').to_string()),
        Some(Err(err)) => Err(CliError::Usage(format!(
            "cannot read standard input: {err}"
        ))),
        None => Err(CliError::Usage(format!(
            "standard input ended early: --password-stdin expects {which}"
        ))),
    }
}

fn ask_hidden(prompt: &str) -> Result<String, CliError> {
    rpassword::prompt_password(prompt).map_err(|err| {
        CliError::Usage(format!(
            "cannot ask for the password on the terminal ({err}): pass it on standard input with --password-stdin"
        ))
    })
}

/// Asks on the controlling terminal, like the password prompt, so a piped standard input
/// does not answer by accident.
fn ask_visible(prompt: &str) -> std::io::Result<String> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    (&tty).write_all(prompt.as_bytes())?;
    (&tty).flush()?;
    let mut answer = String::new();
    BufReader::new(&tty).read_line(&mut answer)?;
    Ok(answer.trim().to_string())
}
