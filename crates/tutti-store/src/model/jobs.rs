//! Jobs and their version history.

use serde::Serialize;
pub use tutti_api::jobs::{Job, JobVersion};
use tutti_proto::JobId;

/// A job definition as applied by an operator.
#[derive(Debug, Clone, PartialEq)]
pub struct JobDraft {
    /// Its id.
    pub job_id: JobId,
    /// The validated definition, as the server's JSON.
    pub definition: serde_json::Value,
    /// The manifest text as written, comments included; empty for JSON input.
    pub source_yaml: String,
    /// An ad-hoc script wrapped as a job; hidden from lists by default.
    pub anonymous: bool,
}

/// What applying a job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PutJobOutcome {
    /// The job's current version after the call.
    pub version: u32,
    /// Whether a new version was created (false when the definition was unchanged).
    pub changed: bool,
}
