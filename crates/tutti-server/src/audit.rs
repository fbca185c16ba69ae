//! Audit records for every state-changing API call, published to `TUTTI_AUDIT` and
//! projected back into the store by the audit projector.
//!
//! Publishing goes through the stream rather than straight into the table so that several
//! server replicas produce one ordered log, and so the same path serves actions that do
//! not come from HTTP (the scheduler, later). A record that cannot be published is logged
//! at ERROR with its content: the action already took effect, and failing the request
//! would make the client retry an action that succeeded.

use std::time::Duration;

use async_nats::jetstream;
use jiff::Timestamp;
use tutti_proto::audit::{AuditOutcome, AuditRecord};
use tutti_proto::subjects;

use crate::actor::Actor;

/// Publishes audit records.
#[derive(Debug, Clone)]
pub struct Auditor {
    js: jetstream::Context,
    timeout: Duration,
}

impl Auditor {
    /// An auditor publishing through `js`, each publish bounded by `timeout`.
    pub fn new(js: jetstream::Context, timeout: Duration) -> Auditor {
        Auditor { js, timeout }
    }

    /// Records that `actor` did `action` to `target` successfully.
    pub async fn succeeded(
        &self,
        actor: &Actor,
        action: &str,
        target: String,
        summary: serde_json::Value,
    ) {
        self.record(actor, action, target, summary, AuditOutcome::Succeeded)
            .await;
    }

    /// Records an action by `actor` with any outcome (a refusal, a failure).
    pub async fn record(
        &self,
        actor: &Actor,
        action: &str,
        target: String,
        summary: serde_json::Value,
        outcome: AuditOutcome,
    ) {
        let record = AuditRecord {
            at: Timestamp::now(),
            actor: actor.name.clone(),
            role: actor.role.to_string(),
            action: action.to_string(),
            target,
            summary,
            source: actor.source.clone(),
            outcome,
        };
        self.publish(record).await;
    }

    /// Records an action by someone not signed in, with role `none`: a failed login
    /// (named after the account it tried), an agent enrolling with its token.
    pub async fn unauthenticated(
        &self,
        name: &str,
        source: Option<String>,
        action: &str,
        target: String,
        summary: serde_json::Value,
        outcome: AuditOutcome,
    ) {
        let record = AuditRecord {
            at: Timestamp::now(),
            actor: name.to_string(),
            role: "none".to_string(),
            action: action.to_string(),
            target,
            summary,
            source,
            outcome,
        };
        self.publish(record).await;
    }

    async fn publish(&self, record: AuditRecord) {
        let payload = match serde_json::to_vec(&record) {
            Ok(payload) => payload,
            Err(err) => {
                tracing::error!(error = %err, action = %record.action, "Could not encode an audit record.");
                return;
            }
        };
        let result = tutti_bus::bounded("audit publish", self.timeout, async {
            self.js
                .publish(subjects::audit(), payload.into())
                .await?
                .await
        })
        .await;
        if let Err(err) = result {
            tracing::error!(
                error = %err,
                actor = %record.actor,
                action = %record.action,
                target = %record.target,
                "An audit record was lost: the broker did not accept it."
            );
        }
    }
}
