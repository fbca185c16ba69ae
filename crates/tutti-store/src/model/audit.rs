//! The audit log as stored.

use jiff::Timestamp;

use crate::page::Page;
pub use tutti_api::audit::AuditEntry;

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
