//! Audit records on `tutti.audit` (stream `TUTTI_AUDIT`), published by the server for
//! every operator action; the server also projects them into its database.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// One audited action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct AuditRecord {
    /// When it happened.
    pub at: Timestamp,
    /// Who did it: an account name, or `system` for the scheduler.
    pub actor: String,
    /// The actor's role at the time.
    pub role: String,
    /// What was done, e.g. `run.create`, `job.revoke`, `fleet.freeze`.
    pub action: String,
    /// What it was done to, e.g. `job/rotate-logs`.
    pub target: String,
    /// Action-specific details.
    #[serde(default)]
    pub summary: serde_json::Value,
    /// Where the request came from (client address, `cli`, `api`), when known.
    #[serde(default)]
    pub source: Option<String>,
    /// Whether it took effect.
    pub outcome: AuditOutcome,
}

/// The outcome of an audited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// The action took effect.
    Succeeded,
    /// The actor lacked the permission.
    Denied,
    /// The action was allowed but failed.
    Failed,
    /// An outcome this version does not know.
    #[serde(other)]
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tolerates_newer_records() {
        let record = AuditRecord {
            at: "2024-05-01T12:00:00Z".parse().unwrap(),
            actor: "alice".to_string(),
            role: "operator".to_string(),
            action: "job.revoke".to_string(),
            target: "job/rotate-logs".to_string(),
            summary: serde_json::json!({"version": 3}),
            source: Some("203.0.113.9".to_string()),
            outcome: AuditOutcome::Succeeded,
        };
        let mut json = serde_json::to_value(&record).unwrap();
        assert_eq!(
            serde_json::from_value::<AuditRecord>(json.clone()).unwrap(),
            record
        );
        json["mfa"] = true.into();
        json["outcome"] = "pending_approval".into();
        let newer: AuditRecord = serde_json::from_value(json).unwrap();
        assert_eq!(newer.outcome, AuditOutcome::Unknown);
    }
}
