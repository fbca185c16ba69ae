//! The audit log as stored.

use jiff::Timestamp;
use serde::Serialize;
use tutti_proto::audit::AuditRecord;

use crate::page::Page;

/// One audit record with its stream sequence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// `TUTTI_AUDIT` sequence; unique.
    pub stream_seq: u64,
    /// The record.
    pub record: AuditRecord,
}

/// Filter and page of the audit log, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Exact actor.
    pub actor: Option<String>,
    /// Exact action, e.g. `job.revoke`.
    pub action: Option<String>,
    /// Exact target, e.g. `job/uptime`.
    pub target: Option<String>,
    /// At or after.
    pub from: Option<Timestamp>,
    /// Before.
    pub until: Option<Timestamp>,
    /// Which rows.
    pub page: Page,
}
