//! Jobs and their version history.

use jiff::Timestamp;
use serde::Serialize;
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

/// A job at its current version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    /// Its id.
    pub job_id: JobId,
    /// Current version, starting at 1.
    pub version: u32,
    /// Current definition.
    pub definition: serde_json::Value,
    /// Current manifest text.
    pub source_yaml: String,
    /// Ad-hoc job.
    pub anonymous: bool,
    /// First applied.
    pub created_at: Timestamp,
    /// Last new version.
    pub updated_at: Timestamp,
    /// When it was revoked, if it is.
    pub revoked_at: Option<Timestamp>,
}

/// One version of a job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobVersion {
    /// The job.
    pub job_id: JobId,
    /// The version.
    pub version: u32,
    /// Definition at that version.
    pub definition: serde_json::Value,
    /// Manifest text at that version.
    pub source_yaml: String,
    /// When the version was created.
    pub created_at: Timestamp,
    /// Who applied it.
    pub created_by: String,
}
