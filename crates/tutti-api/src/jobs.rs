//! Jobs and their versions.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tutti_proto::JobId;
use utoipa::ToSchema;

/// A job at its current version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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

/// What a revocation did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RevokeResponse {
    /// Queued or delivered targets skipped at once.
    pub n_skipped: u64,
}

/// What applying one manifest did (or, on a dry run, would do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApplyResult {
    /// A new job or schedule (or one deleted before).
    Created,
    /// Its definition (or a schedule's enabled flag) changed.
    Changed,
    /// Nothing but perhaps its comments changed.
    Unchanged,
}

impl ApplyResult {
    /// `created`, `changed` or `unchanged`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyResult::Created => "created",
            ApplyResult::Changed => "changed",
            ApplyResult::Unchanged => "unchanged",
        }
    }
}

/// What applying one job document did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Applied {
    /// The job.
    pub job_id: JobId,
    /// Its current version (the next one on a dry run that changes it).
    pub version: u32,
    /// What applying it did.
    pub result: ApplyResult,
}

/// The answer of `POST /api/v1/jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApplyResponse {
    /// One entry per document, in order.
    pub applied: Vec<Applied>,
}
