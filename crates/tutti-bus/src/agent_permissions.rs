//! The broker permissions of one agent's user: the table of `docs/protocol.md` ("Agent
//! permissions") filled in with the agent's id, as the server writes it into the agent's
//! user JWT at enrollment.
//!
//! An agent publishes only under `tutti.agent.<id>.>` and its own JetStream API calls,
//! subscribes only to its rpc subjects and its own inbox (`_INBOX.<id>`, which the agent
//! sets as its client's inbox prefix), and answers requests through `allow_responses`
//! instead of publish rights on anyone's inbox. The JetStream subjects are what async-nats
//! sends for the agent's operations; `tests/conformance.rs` in tutti-server runs the real
//! agent under these permissions and is the authority on whether the list is complete.

use tutti_proto::AgentId;
use tutti_proto::catalog::{
    COMMANDS_STREAM, FLEET_BUCKET, OUTPUT_STORE, RELEASES_STORE, SCRIPTS_STORE,
};
use tutti_proto::subjects;

use crate::auth::{UserLimits, UserPermissions};

/// The largest message an agent may publish (the streams' own cap is 1 MiB too).
pub const AGENT_MAX_PAYLOAD: u64 = 1 << 20;
/// Subscriptions an agent holds at most: its rpc subjects, inbox, consumers' deliveries.
pub const AGENT_MAX_SUBSCRIPTIONS: u64 = 1_000;

/// What agent `agent_id` may publish and subscribe to.
pub fn agent_permissions(agent_id: &AgentId) -> UserPermissions {
    let consumer = format!("cmd-{agent_id}");
    let mut publish = vec![
        subjects::agent_publish_scope(agent_id),
        format!("$JS.API.STREAM.INFO.{COMMANDS_STREAM}"),
        format!("$JS.API.CONSUMER.CREATE.{COMMANDS_STREAM}.{consumer}"),
        format!("$JS.API.CONSUMER.CREATE.{COMMANDS_STREAM}.{consumer}.>"),
        format!("$JS.API.CONSUMER.INFO.{COMMANDS_STREAM}.{consumer}"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{COMMANDS_STREAM}.{consumer}"),
        format!("$JS.API.CONSUMER.DELETE.{COMMANDS_STREAM}.{consumer}"),
        format!("$JS.ACK.{COMMANDS_STREAM}.{consumer}.>"),
    ];
    publish.extend(read_stream(&format!("KV_{FLEET_BUCKET}")));
    for bucket in [SCRIPTS_STORE, RELEASES_STORE] {
        publish.extend(read_stream(&format!("OBJ_{bucket}")));
    }
    publish.extend([
        format!("$JS.API.STREAM.INFO.OBJ_{OUTPUT_STORE}"),
        format!("$JS.API.DIRECT.GET.OBJ_{OUTPUT_STORE}.>"),
        format!("$JS.API.STREAM.MSG.GET.OBJ_{OUTPUT_STORE}"),
        format!("$O.{OUTPUT_STORE}.C.>"),
        format!("$O.{OUTPUT_STORE}.M.>"),
    ]);
    UserPermissions {
        publish_allow: publish,
        publish_deny: Vec::new(),
        subscribe_allow: vec![
            subjects::agent_rpc_all_methods(agent_id),
            format!("{}.>", subjects::agent_inbox_prefix(agent_id)),
        ],
        subscribe_deny: Vec::new(),
        allow_responses: Some(1),
    }
}

/// The per-connection limits of an agent's user.
pub fn agent_limits() -> UserLimits {
    UserLimits {
        subs: Some(AGENT_MAX_SUBSCRIPTIONS),
        payload: Some(AGENT_MAX_PAYLOAD),
        data: None,
    }
}

/// Reading a stream through ordered consumers and direct gets (KV watches, object reads):
/// any consumer on that stream, never a write.
fn read_stream(stream: &str) -> [String; 8] {
    [
        format!("$JS.API.STREAM.INFO.{stream}"),
        // An unnamed consumer (tutti-kv's ordered watches) is created on the bare subject.
        format!("$JS.API.CONSUMER.CREATE.{stream}"),
        format!("$JS.API.CONSUMER.CREATE.{stream}.>"),
        format!("$JS.API.CONSUMER.DELETE.{stream}.>"),
        format!("$JS.API.CONSUMER.INFO.{stream}.>"),
        format!("$JS.API.DIRECT.GET.{stream}.>"),
        format!("$JS.API.STREAM.MSG.GET.{stream}"),
        format!("$JS.FC.{stream}.>"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_may_touch_only_its_own_subjects() {
        let a = AgentId::parse("web-01").unwrap();
        let permissions = agent_permissions(&a);
        let mentions_other = |subject: &String| subject.contains("web-02");
        assert!(!permissions.publish_allow.iter().any(mentions_other));
        assert!(
            permissions
                .publish_allow
                .contains(&"tutti.agent.web-01.>".to_string())
        );
        assert_eq!(
            permissions.subscribe_allow,
            ["tutti.rpc.web-01.*", "_INBOX.web-01.>"]
        );
        // No wildcard that would reach another agent's consumer, a KV write or a purge.
        for subject in &permissions.publish_allow {
            assert!(!subject.starts_with("$KV."), "{subject}");
            assert!(
                !subject.contains("PURGE") && !subject.contains("STREAM.DELETE"),
                "{subject}"
            );
            assert_ne!(
                subject, "$JS.API.CONSUMER.CREATE.TUTTI_COMMANDS.>",
                "{subject}"
            );
        }
    }
}
