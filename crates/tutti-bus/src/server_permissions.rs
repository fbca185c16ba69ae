//! The broker permissions of the server's own user: the table of `docs/protocol.md`
//! ("Server permissions"), as `tutti-server` writes it into the user it mints for itself at
//! each start.
//!
//! The server is the control plane, not an agent. It administers JetStream (bootstrap,
//! reconciliation, projector consumers), writes the KV buckets and object stores of the
//! catalog, publishes commands, rpc requests and audit records, and listens to heartbeats,
//! live output and its own inbox (`_INBOX.tutti_server`, which it sets as its client's
//! inbox prefix). It may not speak as an agent: no publish under `tutti.agent.>`, no
//! subscription to the rpc subjects agents answer, no taking or acknowledging commands
//! from the commands stream, and no agent's inbox, to read or to write. The denials are
//! stated even where
//! the allow list already leaves the subject out, because the broker applies a deny over
//! any allow, so they keep holding if an allow is widened later. Neighbour:
//! [`crate::agent_permissions`] is the other side of the same protocol; `tests/conformance.rs`
//! in tutti-server checks this role against a real broker, and every other test of the
//! server runs under it.

use tutti_proto::catalog::{
    AUDIT_STREAM, COMMANDS_STREAM, Catalog, CatalogConfig, EVENTS_STREAM, INVENTORY_STREAM,
    RESULTS_STREAM, ResourceKind,
};
use tutti_proto::subjects;

use crate::auth::{UserLimits, UserPermissions};

/// The streams the server's projectors consume with acknowledgements.
const PROJECTED_STREAMS: [&str; 4] = [
    RESULTS_STREAM,
    EVENTS_STREAM,
    INVENTORY_STREAM,
    AUDIT_STREAM,
];

/// What the server may publish and subscribe to.
pub fn server_permissions() -> UserPermissions {
    let mut publish = vec![
        subjects::all_commands(),
        subjects::all_rpc(),
        subjects::audit(),
        // Every JetStream API call: the server creates and reconciles the catalog, moves
        // old buckets, runs the projectors' consumers and reads streams, KV and objects.
        "$JS.API.>".to_string(),
        // Flow-control replies of the ordered consumers behind KV scans, watches and
        // object reads.
        "$JS.FC.>".to_string(),
    ];
    publish.extend(
        PROJECTED_STREAMS
            .iter()
            .map(|stream| format!("$JS.ACK.{stream}.>")),
    );
    publish.extend(catalog_writes());
    UserPermissions {
        publish_allow: publish,
        publish_deny: not_an_agent_publish(),
        subscribe_allow: vec![
            subjects::all_heartbeats(),
            subjects::all_output(),
            format!("{}.>", subjects::server_inbox_prefix()),
        ],
        // Agents' inboxes stay out through the allow list alone: a deny of `_INBOX.*.>`
        // would cover the server's own inbox too.
        subscribe_deny: vec![subjects::all_rpc(), subjects::all_commands()],
        allow_responses: None,
    }
}

/// The per-connection limits of the server's user: none beyond the account's and the
/// broker's. Its subscriptions grow with the dashboards following live output, and its
/// largest message is bounded by each stream's `max_msg_size`; a user payload cap would
/// close the control plane's connection instead of refusing one message.
pub fn server_limits() -> UserLimits {
    UserLimits::unlimited()
}

/// Writes into the catalog's KV buckets and object stores (`$KV.<bucket>.>`,
/// `$O.<store>.>`). The names come from the catalog, so a new bucket is writable without
/// an edit here; the budget does not change names.
fn catalog_writes() -> Vec<String> {
    let catalog = Catalog::tutti(&CatalogConfig::default());
    catalog
        .resources
        .iter()
        .filter_map(|resource| match resource.kind {
            ResourceKind::KeyValue => Some(format!("$KV.{}.>", resource.name)),
            ResourceKind::ObjectStore => Some(format!("$O.{}.>", resource.name)),
            ResourceKind::Stream => None,
        })
        .collect()
}

/// What only an agent publishes: its reports, and the JetStream calls that take commands
/// off the commands stream (an agent's consumer, its pulls and its acks). The server
/// writes commands and never reads them back, so a stolen server credential cannot take
/// an agent's commands or acknowledge them in its place.
fn not_an_agent_publish() -> Vec<String> {
    vec![
        subjects::all_agent_subjects(),
        format!("$JS.API.CONSUMER.CREATE.{COMMANDS_STREAM}"),
        format!("$JS.API.CONSUMER.CREATE.{COMMANDS_STREAM}.>"),
        format!("$JS.API.CONSUMER.DURABLE.CREATE.{COMMANDS_STREAM}.>"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{COMMANDS_STREAM}.>"),
        format!("$JS.ACK.{COMMANDS_STREAM}.>"),
        "_INBOX.>".to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use tutti_proto::AgentId;

    /// One row of the table: may the server do this?
    fn allowed(list_allow: &[String], list_deny: &[String], subject: &str) -> bool {
        let matches = |pattern: &String| subjects::matches(pattern, subject);
        list_allow.iter().any(matches) && !list_deny.iter().any(matches)
    }

    #[test]
    fn the_server_publishes_what_it_needs_and_never_as_an_agent() {
        let permissions = server_permissions();
        let agent = AgentId::parse("web-01").unwrap();
        let may_publish = |subject: &str| {
            allowed(
                &permissions.publish_allow,
                &permissions.publish_deny,
                subject,
            )
        };
        let allowed_subjects = [
            "tutti.cmd.all",
            "tutti.cmd.group.ops",
            "tutti.cmd.agent.web-01",
            "tutti.rpc.web-01.ping",
            "tutti.audit",
            "$JS.API.STREAM.CREATE.TUTTI_RESULTS",
            "$JS.API.STREAM.UPDATE.TUTTI_COMMANDS",
            "$JS.API.STREAM.INFO.TUTTI_COMMANDS",
            "$JS.API.STREAM.DELETE.KV_tutti_config",
            "$JS.API.CONSUMER.CREATE.TUTTI_RESULTS.tutti-results",
            "$JS.API.CONSUMER.MSG.NEXT.TUTTI_AUDIT.tutti-audit",
            "$JS.ACK.TUTTI_RESULTS.tutti-results.1.2.3.4.5.6",
            "$JS.ACK.TUTTI_AUDIT.tutti-audit.1.2.3.4.5.6",
            "$KV.tutti_fleet.groups.web-01",
            "$KV.tutti_leases.scheduler",
            "$KV.tutti_catalog.fleet-signed-by",
            "$O.tutti_scripts.C.abc",
            "$O.tutti_releases.M.abc",
            "$JS.FC.KV_tutti_fleet.abc",
        ];
        for subject in allowed_subjects {
            assert!(may_publish(subject), "the server may not publish {subject}");
        }
        let denied_subjects = [
            subjects::agent_result(&agent),
            subjects::agent_event(&agent),
            subjects::agent_heartbeat(&agent),
            subjects::agent_inventory(&agent),
            "$JS.API.CONSUMER.CREATE.TUTTI_COMMANDS".to_string(),
            "$JS.API.CONSUMER.CREATE.TUTTI_COMMANDS.cmd-web-01".to_string(),
            "$JS.API.CONSUMER.CREATE.TUTTI_COMMANDS.cmd-web-01.tutti.cmd.all".to_string(),
            "$JS.API.CONSUMER.DURABLE.CREATE.TUTTI_COMMANDS.cmd-web-01".to_string(),
            "$JS.API.CONSUMER.MSG.NEXT.TUTTI_COMMANDS.cmd-web-01".to_string(),
            "$JS.ACK.TUTTI_COMMANDS.cmd-web-01.1.2.3.4.5.6".to_string(),
            "_INBOX.web-01.abc".to_string(),
            "$SYS.REQ.CLAIMS.UPDATE".to_string(),
            "$KV.another_bucket.key".to_string(),
        ];
        for subject in &denied_subjects {
            assert!(!may_publish(subject), "the server may publish {subject}");
        }
    }

    #[test]
    fn the_server_hears_heartbeats_output_and_its_inbox_and_answers_no_rpc() {
        let permissions = server_permissions();
        let may_subscribe = |subject: &str| {
            allowed(
                &permissions.subscribe_allow,
                &permissions.subscribe_deny,
                subject,
            )
        };
        for subject in [
            "tutti.agent.*.heartbeat",
            "tutti.agent.*.output.01J0000000000000000000000",
            "_INBOX.tutti_server.abc.1",
        ] {
            assert!(may_subscribe(subject), "the server may not hear {subject}");
        }
        for subject in [
            "tutti.rpc.web-01.*",
            "tutti.rpc.web-01.ping",
            "tutti.cmd.agent.web-01",
            "tutti.agent.web-01.result",
            "_INBOX.web-01.abc",
            "_INBOX.abc",
        ] {
            assert!(!may_subscribe(subject), "the server may hear {subject}");
        }
        assert_eq!(permissions.allow_responses, None);
    }

    #[test]
    fn protocol_doc_lists_every_subject_of_the_role() {
        let doc = include_str!("../../../docs/protocol.md");
        let section = doc
            .split("\n## Server permissions\n")
            .nth(1)
            .expect("docs/protocol.md has a Server permissions section");
        let section = section.split("\n## ").next().unwrap_or(section);
        let permissions = server_permissions();
        let every_subject = [
            &permissions.publish_allow,
            &permissions.publish_deny,
            &permissions.subscribe_allow,
            &permissions.subscribe_deny,
        ];
        for subject in every_subject.into_iter().flatten() {
            assert!(
                section.contains(&format!("`{subject}`")),
                "docs/protocol.md (Server permissions) does not list `{subject}`"
            );
        }
    }
}
