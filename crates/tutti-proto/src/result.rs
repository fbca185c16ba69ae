//! What one agent reports for one run: [`RunResult`], published on
//! `tutti.agent.<id>.result` into `TUTTI_RESULTS`.
//!
//! The agent writes the result to its outbox before publishing and publishes with
//! `Nats-Msg-Id` = [`ResultId`], so retries after a crash are de-duplicated by the stream.
//! Output is capped: head and tail are kept inline around [`truncation_marker`], and the
//! whole output may be stored in the `tutti_output` object store ([`ObjectRef`]).
//! Status and skip reasons from a newer agent decode to fallbacks instead of failing.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, CommandId, ResultId, RunId};

/// The final state of one run on one agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct RunResult {
    /// `<run>:<agent>`; the de-duplication key.
    pub result_id: ResultId,
    /// The run.
    pub run_id: RunId,
    /// The command that carried it.
    pub command_id: CommandId,
    /// The reporting agent; must match the subject's agent id.
    pub agent_id: AgentId,
    /// How it ended.
    pub status: ResultStatus,
    /// Process exit code, when a process ran and exited.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Captured standard output.
    #[serde(default)]
    pub stdout: Output,
    /// Captured standard error.
    #[serde(default)]
    pub stderr: Output,
    /// When the agent took the command in (its `received` event's time); absent from
    /// older agents. An agent whose outbox holds a command's `received` and `started`
    /// events together with its result publishes the result alone, so this is where the
    /// delivery time then travels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<Timestamp>,
    /// When the process started; absent when it never started.
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    /// When the agent decided the outcome.
    pub finished_at: Timestamp,
}

impl RunResult {
    /// Whether `result_id` is the one derived from `run_id` and `agent_id`.
    /// Readers drop results where it is not.
    pub fn ids_are_consistent(&self) -> bool {
        self.result_id == ResultId::new(&self.run_id, &self.agent_id)
    }
}

/// How a run ended on one agent, tagged by `"state"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ResultStatus {
    /// Exit code 0 (or a builtin that succeeded).
    Succeeded,
    /// Non-zero exit code or failure to start.
    Failed,
    /// Killed after `timeout_secs`.
    TimedOut,
    /// Killed by a kill command.
    Killed,
    /// Never started, for `reason`.
    Skipped {
        /// Why it was skipped.
        reason: SkipReason,
    },
    /// The agent stopped (crash, reboot) while the process ran.
    Interrupted,
    /// A state this version does not know.
    #[serde(other)]
    Unknown,
}

impl ResultStatus {
    /// The `state` name, as stored in the server's tables.
    pub fn state(&self) -> &'static str {
        match self {
            ResultStatus::Succeeded => "succeeded",
            ResultStatus::Failed => "failed",
            ResultStatus::TimedOut => "timed_out",
            ResultStatus::Killed => "killed",
            ResultStatus::Skipped { .. } => "skipped",
            ResultStatus::Interrupted => "interrupted",
            ResultStatus::Unknown => "unknown",
        }
    }
}

/// Why a run was skipped. An unknown reason keeps its text in [`SkipReason::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The job was revoked.
    Revoked,
    /// The run's deadline passed before the agent got to it.
    DeadlinePassed,
    /// The run was killed before it started.
    Killed,
    /// A scheduled run arrived during a fleet freeze.
    Frozen,
    /// The command's `expires_at` passed.
    Expired,
    /// The agent's local allowlist (`allowed_shells`, `allowed_users` in `agent.toml`)
    /// does not allow the command's shell or user; the result's stderr names the value.
    /// Readers older than this variant keep it as `Other("not_allowed")`.
    NotAllowed,
    /// A reason this version does not know, kept verbatim.
    #[serde(untagged)]
    Other(String),
}

/// With the `schema` feature: a skip reason is a string, because [`SkipReason::Other`]
/// carries reasons newer agents send; the known ones are listed as examples.
#[cfg(feature = "schema")]
impl utoipa::PartialSchema for SkipReason {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let known = [
            "revoked",
            "deadline_passed",
            "killed",
            "frozen",
            "expired",
            "not_allowed",
        ];
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "Why a run was skipped; a reason this version does not know is kept verbatim.",
            ))
            .examples(known)
            .into()
    }
}

#[cfg(feature = "schema")]
impl utoipa::ToSchema for SkipReason {}

/// Captured output of one stream (stdout or stderr).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Output {
    /// What fits inline: all of it, or head + [`truncation_marker`] + tail.
    #[serde(default)]
    pub inline: String,
    /// Bytes the process wrote in total.
    #[serde(default)]
    pub total_bytes: u64,
    /// Present when bytes were dropped from `inline`.
    #[serde(default)]
    pub truncated: Option<Truncation>,
    /// The full (capped) output in the `tutti_output` object store, when uploaded.
    #[serde(default)]
    pub object: Option<ObjectRef>,
}

/// How much was cut out of the middle of an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Truncation {
    /// Bytes dropped between head and tail.
    pub dropped_bytes: u64,
}

/// A reference to an object in an object store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ObjectRef {
    /// Object store bucket.
    pub bucket: String,
    /// Object name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex sha256 of the object bytes.
    pub sha256: String,
}

/// The marker placed between head and tail of capped output.
pub fn truncation_marker(dropped_bytes: u64) -> String {
    format!("\n[… tutti: {dropped_bytes} bytes dropped …]\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_result(status: ResultStatus) -> RunResult {
        let run_id = RunId::from_parts(1_700_000_000_000, 2);
        let agent_id = AgentId::parse("web-01").unwrap();
        RunResult {
            result_id: ResultId::new(&run_id, &agent_id),
            run_id,
            command_id: CommandId::from_parts(1_700_000_000_000, 1),
            agent_id,
            status,
            exit_code: Some(0),
            stdout: Output {
                inline: format!("head{}tail", truncation_marker(10)),
                total_bytes: 18,
                truncated: Some(Truncation { dropped_bytes: 10 }),
                object: Some(ObjectRef {
                    bucket: "tutti_output".to_string(),
                    name: "x".to_string(),
                    size: 18,
                    sha256: crate::digest::sha256_hex(b"x"),
                }),
            },
            stderr: Output::default(),
            delivered_at: None,
            started_at: Some("2024-05-01T12:00:00Z".parse().unwrap()),
            finished_at: "2024-05-01T12:00:01Z".parse().unwrap(),
        }
    }

    #[test]
    fn every_status_round_trips() {
        let statuses = [
            ResultStatus::Succeeded,
            ResultStatus::Failed,
            ResultStatus::TimedOut,
            ResultStatus::Killed,
            ResultStatus::Interrupted,
            ResultStatus::Skipped {
                reason: SkipReason::DeadlinePassed,
            },
            ResultStatus::Skipped {
                reason: SkipReason::Other("disk-full".to_string()),
            },
            ResultStatus::Skipped {
                reason: SkipReason::NotAllowed,
            },
        ];
        for status in statuses {
            let result = sample_result(status);
            let json = serde_json::to_string(&result).unwrap();
            assert_eq!(serde_json::from_str::<RunResult>(&json).unwrap(), result);
            assert!(result.ids_are_consistent());
        }
    }

    #[test]
    fn skipped_status_encoding() {
        let status = ResultStatus::Skipped {
            reason: SkipReason::Revoked,
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"state": "skipped", "reason": "revoked"})
        );
        assert_eq!(
            serde_json::to_value(ResultStatus::TimedOut).unwrap(),
            serde_json::json!({"state": "timed_out"})
        );
        let not_allowed = ResultStatus::Skipped {
            reason: SkipReason::NotAllowed,
        };
        assert_eq!(
            serde_json::to_value(&not_allowed).unwrap(),
            serde_json::json!({"state": "skipped", "reason": "not_allowed"})
        );
    }

    #[test]
    fn newer_agent_results_still_decode() {
        let mut json = serde_json::to_value(sample_result(ResultStatus::Succeeded)).unwrap();
        json["cgroup_peak_bytes"] = 1234.into();
        json["stdout"]["encoding"] = "utf-8".into();
        json["status"] = serde_json::json!({"state": "quarantined", "by": "edr"});
        let result: RunResult = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(result.status, ResultStatus::Unknown);

        json["status"] = serde_json::json!({"state": "skipped", "reason": "on-battery"});
        let result: RunResult = serde_json::from_value(json).unwrap();
        let reason = SkipReason::Other("on-battery".to_string());
        assert_eq!(result.status, ResultStatus::Skipped { reason });
    }

    #[test]
    fn minimal_result_decodes_with_defaults() {
        let json = r#"{"result_id": "01hwjsd2r0000000000000000r:web-01",
            "run_id": "01hwjsd2r0000000000000000r", "command_id": "01hwjsd2r0000000000000000q",
            "agent_id": "web-01", "status": {"state": "interrupted"},
            "finished_at": "2024-05-01T12:00:01Z"}"#;
        let result: RunResult = serde_json::from_str(json).unwrap();
        assert_eq!(result.stdout, Output::default());
        assert!(result.ids_are_consistent());
    }

    #[test]
    fn marker_names_the_dropped_bytes() {
        assert_eq!(
            truncation_marker(1234),
            "\n[… tutti: 1234 bytes dropped …]\n"
        );
    }
}
