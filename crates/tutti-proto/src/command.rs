//! The command the server sends to agents on `tutti.cmd.*`: run a script, or kill a run.
//!
//! A [`Command`] never travels bare: [`crate::sign::SignedCommand`] carries its exact
//! JSON bytes and an ed25519 signature over them, and agents execute only what verifies.
//! Unknown command types and shells from a newer server decode to a fallback variant so
//! the agent can refuse them with a reason instead of failing to parse.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ids::{CommandId, JobId, RunId};

/// One command message. `expires_at` bounds how late an agent may still accept it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Unique per message; the JetStream `Nats-Msg-Id` when publishing.
    pub command_id: CommandId,
    /// The subject the command is published on (from [`crate::subjects`]). Signed with
    /// the rest, so a captured command cannot be replayed to a wider audience; agents
    /// drop a command whose delivered subject differs ([`Command::is_addressed_to`]).
    pub subject: String,
    /// When the server issued the command.
    pub issued_at: Timestamp,
    /// After this instant agents must not accept the command.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    /// What to do.
    pub body: CommandBody,
}

impl Command {
    /// The run the command is about; `None` for an unknown command type.
    pub fn run_id(&self) -> Option<&RunId> {
        match &self.body {
            CommandBody::Run(run) => Some(&run.run_id),
            CommandBody::Kill(kill) => Some(&kill.run_id),
            CommandBody::Unknown => None,
        }
    }

    /// Whether the command was delivered on the subject it was signed for.
    pub fn is_addressed_to(&self, delivered_subject: &str) -> bool {
        self.subject == delivered_subject
    }

    /// Whether `now` is past `expires_at`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|expires_at| expires_at < now)
    }
}

/// What a command asks for, tagged by `"type"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(
    clippy::large_enum_variant,
    reason = "commands are decoded one at a time; boxing would only add noise at every match"
)]
pub enum CommandBody {
    /// Run a script.
    Run(RunCommand),
    /// Kill a run: running processes are killed, queued copies skipped.
    Kill(KillCommand),
    /// A command type this version does not know; agents refuse it.
    #[serde(other)]
    Unknown,
}

/// Run one job's script as part of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCommand {
    /// The run this execution belongs to.
    pub run_id: RunId,
    /// The job and its version.
    pub job: JobRef,
    /// The script, inline or in the `tutti_scripts` object store.
    pub script: Script,
    /// Lowercase hex sha256 of the script bytes; agents compare before running.
    pub sha256: String,
    /// The interpreter.
    pub shell: Shell,
    /// Seconds before the process group is killed and the result is `timed_out`.
    pub timeout_secs: u64,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory; the agent's default when absent.
    #[serde(default)]
    pub cwd: Option<String>,
    /// User to run as; the agent's own user when absent.
    #[serde(default)]
    pub user: Option<String>,
    /// Cap on captured output per stream; head and tail are kept around a marker.
    pub output_limit_bytes: u64,
    /// An agent that receives the command after this instant skips it.
    #[serde(default)]
    pub deadline: Option<Timestamp>,
    /// Fired by a schedule; agents skip it during a fleet freeze.
    #[serde(default)]
    pub scheduled: bool,
}

/// A job at a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRef {
    /// The job.
    pub job_id: JobId,
    /// Its version; increases on every change.
    pub version: u32,
}

/// Where the script text comes from, tagged by `"source"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Script {
    /// The script travels in the command.
    Inline {
        /// The script text.
        body: String,
    },
    /// The script is an object in the `tutti_scripts` object store, pinned by
    /// [`RunCommand::sha256`].
    Object {
        /// Object name.
        name: String,
        /// Size in bytes.
        size: u64,
    },
}

/// The largest script an agent fetches from the object store; the server refuses a job
/// whose `script_object` is larger before storing it.
pub const MAX_SCRIPT_OBJECT_BYTES: u64 = 16 * 1024 * 1024;

/// The interpreter that runs a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shell {
    /// POSIX `sh`.
    Sh,
    /// `bash`.
    Bash,
    /// `python3`.
    Python3,
    /// PowerShell 7+ (`pwsh`).
    Pwsh,
    /// Windows PowerShell 5 (`powershell`).
    Powershell,
    /// Windows `cmd`.
    Cmd,
    /// A builtin command run inside the agent, no process (`noop`, `echo hi`).
    Builtin,
    /// A shell this version does not know; the run fails with a clear reason.
    #[serde(other)]
    Unsupported,
}

/// Kill a run on every agent that has it running or queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillCommand {
    /// The run to kill.
    pub run_id: RunId,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample_command() -> Command {
        let body = "echo hello\n".to_string();
        Command {
            command_id: CommandId::from_parts(1_700_000_000_000, 1),
            subject: crate::subjects::cmd_all(),
            issued_at: "2024-05-01T12:00:00Z".parse().unwrap(),
            expires_at: Some("2024-05-08T12:00:00Z".parse().unwrap()),
            body: CommandBody::Run(RunCommand {
                run_id: RunId::from_parts(1_700_000_000_000, 2),
                job: JobRef {
                    job_id: JobId::parse("hello").unwrap(),
                    version: 3,
                },
                sha256: crate::digest::sha256_hex(body.as_bytes()),
                script: Script::Inline { body },
                shell: Shell::Sh,
                timeout_secs: 60,
                env: BTreeMap::from([("LANG".to_string(), "C".to_string())]),
                cwd: None,
                user: None,
                output_limit_bytes: 8 << 20,
                deadline: None,
                scheduled: false,
            }),
        }
    }

    #[test]
    fn run_command_round_trips() {
        let command = sample_command();
        let json = serde_json::to_string(&command).unwrap();
        assert!(json.contains(r#""type":"run""#), "{json}");
        assert!(json.contains(r#""source":"inline""#), "{json}");
        assert_eq!(serde_json::from_str::<Command>(&json).unwrap(), command);
        assert!(command.is_addressed_to("tutti.cmd.all"));
        assert!(!command.is_addressed_to("tutti.cmd.group.ops"));
    }

    #[test]
    fn kill_command_round_trips() {
        let run_id = RunId::from_parts(1_700_000_000_000, 2);
        let command = Command {
            body: CommandBody::Kill(KillCommand { run_id }),
            ..sample_command()
        };
        let json = serde_json::to_string(&command).unwrap();
        assert_eq!(serde_json::from_str::<Command>(&json).unwrap(), command);
        assert_eq!(command.run_id(), Some(&run_id));
    }

    #[test]
    fn newer_server_fields_and_variants_still_decode() {
        let json = r#"{
            "command_id": "01hwjsd2r0000000000000000q",
            "subject": "tutti.cmd.all",
            "issued_at": "2024-05-01T12:00:00Z",
            "priority": 5,
            "body": {
                "type": "run", "run_id": "01hwjsd2r0000000000000000r",
                "job": {"job_id": "hello", "version": 1, "owner": "ops"},
                "script": {"source": "object", "name": "hello-v1", "size": 12},
                "sha256": "00", "shell": "zsh", "timeout_secs": 5,
                "output_limit_bytes": 1024, "sandbox": true
            }
        }"#;
        let command: Command = serde_json::from_str(json).unwrap();
        let CommandBody::Run(run) = &command.body else {
            panic!("expected a run command");
        };
        assert_eq!(run.shell, Shell::Unsupported);
        assert!(run.env.is_empty() && !run.scheduled && command.expires_at.is_none());

        let json = r#"{"command_id": "01hwjsd2r0000000000000000q", "subject": "tutti.cmd.all",
            "issued_at": "2024-05-01T12:00:00Z", "body": {"type": "reboot", "delay": 5}}"#;
        let command: Command = serde_json::from_str(json).unwrap();
        assert_eq!(command.body, CommandBody::Unknown);
        assert_eq!(command.run_id(), None);
    }

    #[test]
    fn expiry_is_strictly_after_expires_at() {
        let command = sample_command();
        let expires_at = command.expires_at.unwrap();
        assert!(!command.is_expired(expires_at));
        assert!(command.is_expired(expires_at + jiff::SignedDuration::from_secs(1)));
    }
}
