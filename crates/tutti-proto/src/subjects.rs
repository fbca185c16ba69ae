//! Subject builders: the only place in tutti where NATS subject strings are made.
//!
//! Every subject starts with `tutti.` so a broker can be shared. Builders take typed ids
//! from [`crate::ids`], so nothing unvalidated (no `.`, `*` or `>`) reaches a subject.
//! The layout lets NATS permissions pin an agent to its own id: an agent publishes only
//! under `tutti.agent.<id>.>` and subscribes to commands for `all`, its groups and
//! itself, plus `tutti.rpc.<id>.*`. `docs/protocol.md` lists who publishes and who
//! subscribes each subject; [`crate::catalog`] uses the wildcard builders here as the
//! subjects of its streams.

use std::fmt;

use crate::ids::{AgentId, GroupName, RunId};

/// The first token of every tutti subject.
pub const PREFIX: &str = "tutti";

/// Every command subject; the subjects of the `TUTTI_COMMANDS` stream.
pub fn all_commands() -> String {
    "tutti.cmd.>".to_string()
}

/// Commands for every agent.
pub fn cmd_all() -> String {
    "tutti.cmd.all".to_string()
}

/// Commands for the members of one group.
pub fn cmd_group(group: &GroupName) -> String {
    format!("tutti.cmd.group.{group}")
}

/// Commands for one agent.
pub fn cmd_agent(agent_id: &AgentId) -> String {
    format!("tutti.cmd.agent.{agent_id}")
}

/// The filter subjects of an agent's command consumer: `all`, each of its groups, and
/// itself. Duplicate groups are dropped; the order is stable (all, groups as given, agent).
pub fn agent_command_filters(agent_id: &AgentId, groups: &[GroupName]) -> Vec<String> {
    let mut filters = vec![cmd_all()];
    for group in groups {
        let subject = cmd_group(group);
        if !filters.contains(&subject) {
            filters.push(subject);
        }
    }
    filters.push(cmd_agent(agent_id));
    filters
}

/// Everything an agent may publish: `tutti.agent.<id>.>` (for NATS permissions).
pub fn agent_publish_scope(agent_id: &AgentId) -> String {
    format!("tutti.agent.{agent_id}.>")
}

/// Every subject agents publish on: `tutti.agent.>` (what the server's user may not publish).
pub fn all_agent_subjects() -> String {
    "tutti.agent.>".to_string()
}

/// `_INBOX.<id>`: the prefix of agent `<id>`'s reply subjects, so the broker can let it
/// subscribe to its own replies (`_INBOX.<id>.>`) and nobody else's.
pub fn agent_inbox_prefix(agent_id: &AgentId) -> String {
    format!("_INBOX.{agent_id}")
}

/// `_INBOX.tutti_server`: the prefix of the server's reply subjects. The `_` keeps it apart
/// from every agent's `_INBOX.<id>` (agent ids are `[a-z0-9-]`), so the broker can let the
/// server subscribe to its own replies and to no agent's.
pub fn server_inbox_prefix() -> String {
    "_INBOX.tutti_server".to_string()
}

/// An agent's run results (stream `TUTTI_RESULTS`).
pub fn agent_result(agent_id: &AgentId) -> String {
    format!("tutti.agent.{agent_id}.result")
}

/// An agent's events (stream `TUTTI_EVENTS`).
pub fn agent_event(agent_id: &AgentId) -> String {
    format!("tutti.agent.{agent_id}.event")
}

/// An agent's inventory snapshots (stream `TUTTI_INVENTORY`).
pub fn agent_inventory(agent_id: &AgentId) -> String {
    format!("tutti.agent.{agent_id}.inventory")
}

/// An agent's heartbeats (core NATS, not stored).
pub fn agent_heartbeat(agent_id: &AgentId) -> String {
    format!("tutti.agent.{agent_id}.heartbeat")
}

/// Live output of one run on one agent (core NATS, not stored).
pub fn agent_output(agent_id: &AgentId, run_id: &RunId) -> String {
    format!("tutti.agent.{agent_id}.output.{run_id}")
}

/// Results of every agent; the subjects of the `TUTTI_RESULTS` stream.
pub fn all_results() -> String {
    "tutti.agent.*.result".to_string()
}

/// Events of every agent; the subjects of the `TUTTI_EVENTS` stream.
pub fn all_events() -> String {
    "tutti.agent.*.event".to_string()
}

/// Inventory of every agent; the subjects of the `TUTTI_INVENTORY` stream.
pub fn all_inventory() -> String {
    "tutti.agent.*.inventory".to_string()
}

/// Heartbeats of every agent.
pub fn all_heartbeats() -> String {
    "tutti.agent.*.heartbeat".to_string()
}

/// Live output of one run from every agent.
pub fn run_output(run_id: &RunId) -> String {
    format!("tutti.agent.*.output.{run_id}")
}

/// Live output of every run from every agent: what the server subscribes to, one run at a
/// time ([`run_output`]).
pub fn all_output() -> String {
    "tutti.agent.*.output.*".to_string()
}

/// A request/reply method an agent answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RpcMethod {
    /// Liveness check; replies immediately.
    Ping,
    /// The tail of the agent's log.
    LogTail,
    /// A fresh inventory snapshot.
    Inventory,
}

impl RpcMethod {
    /// Every method, for tests and dispatch tables.
    pub const ALL: [RpcMethod; 3] = [RpcMethod::Ping, RpcMethod::LogTail, RpcMethod::Inventory];

    /// The subject token of the method.
    pub fn as_str(&self) -> &'static str {
        match self {
            RpcMethod::Ping => "ping",
            RpcMethod::LogTail => "log-tail",
            RpcMethod::Inventory => "inventory",
        }
    }

    /// The method named by the last token of an rpc subject, if known.
    pub fn from_token(token: &str) -> Option<RpcMethod> {
        RpcMethod::ALL
            .into_iter()
            .find(|method| method.as_str() == token)
    }
}

impl fmt::Display for RpcMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request to one agent.
pub fn agent_rpc(agent_id: &AgentId, method: RpcMethod) -> String {
    format!("tutti.rpc.{agent_id}.{method}")
}

/// Every request to one agent: what the agent subscribes to.
pub fn agent_rpc_all_methods(agent_id: &AgentId) -> String {
    format!("tutti.rpc.{agent_id}.*")
}

/// Every request to every agent: what only agents answer.
pub fn all_rpc() -> String {
    "tutti.rpc.>".to_string()
}

/// The audit trail (stream `TUTTI_AUDIT`); the server publishes.
pub fn audit() -> String {
    "tutti.audit".to_string()
}

/// Whether `subject` matches `pattern` under NATS rules: `*` matches one token,
/// a final `>` matches one or more tokens.
///
/// The agent uses this to drop a command whose subject is not one of its own
/// filters, since the broker cannot pin a multi-filter consumer's filters.
pub fn matches(pattern: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for pattern_token in pattern.split('.') {
        if pattern_token == ">" {
            return subject_tokens.next().is_some();
        }
        match subject_tokens.next() {
            Some(token) if pattern_token == "*" || pattern_token == token => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(text: &str) -> AgentId {
        AgentId::parse(text).unwrap()
    }

    fn group(text: &str) -> GroupName {
        GroupName::parse(text).unwrap()
    }

    fn run() -> RunId {
        RunId::from_parts(1_700_000_000_000, 7)
    }

    #[test]
    fn builders_render_the_documented_subjects() {
        let id = agent("web-01");
        let run_id = run();
        assert_eq!(cmd_all(), "tutti.cmd.all");
        assert_eq!(cmd_group(&group("ops")), "tutti.cmd.group.ops");
        assert_eq!(cmd_agent(&id), "tutti.cmd.agent.web-01");
        assert_eq!(agent_result(&id), "tutti.agent.web-01.result");
        assert_eq!(agent_event(&id), "tutti.agent.web-01.event");
        assert_eq!(agent_inventory(&id), "tutti.agent.web-01.inventory");
        assert_eq!(agent_heartbeat(&id), "tutti.agent.web-01.heartbeat");
        assert_eq!(
            agent_output(&id, &run_id),
            format!("tutti.agent.web-01.output.{run_id}")
        );
        assert_eq!(
            run_output(&run_id),
            format!("tutti.agent.*.output.{run_id}")
        );
        assert_eq!(
            agent_rpc(&id, RpcMethod::LogTail),
            "tutti.rpc.web-01.log-tail"
        );
        assert_eq!(agent_rpc_all_methods(&id), "tutti.rpc.web-01.*");
        assert_eq!(audit(), "tutti.audit");
    }

    #[test]
    fn command_filters_are_deduplicated_and_ordered() {
        let groups = [group("ops"), group("web"), group("OPS")];
        let filters = agent_command_filters(&agent("web-01"), &groups);
        assert_eq!(
            filters,
            [
                "tutti.cmd.all",
                "tutti.cmd.group.ops",
                "tutti.cmd.group.web",
                "tutti.cmd.agent.web-01"
            ]
        );
    }

    #[test]
    fn only_wildcard_builders_contain_wildcards() {
        let id = agent("web-01");
        let run_id = run();
        let mut concrete = vec![
            cmd_all(),
            cmd_group(&group("ops")),
            cmd_agent(&id),
            agent_result(&id),
            agent_event(&id),
            agent_inventory(&id),
            agent_heartbeat(&id),
            agent_output(&id, &run_id),
            audit(),
        ];
        concrete.extend(RpcMethod::ALL.map(|method| agent_rpc(&id, method)));
        concrete.extend(agent_command_filters(&id, &[group("ops")]));
        let wildcards = [
            all_commands(),
            agent_publish_scope(&id),
            all_results(),
            all_events(),
            all_inventory(),
            all_heartbeats(),
            run_output(&run_id),
            agent_rpc_all_methods(&id),
            all_agent_subjects(),
            all_output(),
            all_rpc(),
        ];
        for subject in concrete.iter().chain(&wildcards) {
            assert!(subject.starts_with("tutti."), "{subject}");
        }
        for subject in &concrete {
            assert!(!subject.contains(['*', '>']), "{subject}");
        }
        for subject in &wildcards {
            assert!(subject.contains(['*', '>']), "{subject}");
        }
    }

    #[test]
    fn agent_subjects_stay_inside_its_publish_scope() {
        let id = agent("web-01");
        let other = agent("web-02");
        let scope = agent_publish_scope(&id);
        let own = [
            agent_result(&id),
            agent_event(&id),
            agent_inventory(&id),
            agent_heartbeat(&id),
            agent_output(&id, &run()),
        ];
        for subject in &own {
            assert!(matches(&scope, subject), "{subject}");
            assert!(!matches(&agent_publish_scope(&other), subject), "{subject}");
        }
        for method in RpcMethod::ALL {
            assert!(matches(
                &agent_rpc_all_methods(&id),
                &agent_rpc(&id, method)
            ));
            assert!(!matches(
                &agent_rpc_all_methods(&other),
                &agent_rpc(&id, method)
            ));
        }
    }

    #[test]
    fn stream_wildcards_cover_every_agent() {
        let id = agent("db-7");
        assert!(matches(&all_commands(), &cmd_group(&group("ops"))));
        assert!(matches(&all_results(), &agent_result(&id)));
        assert!(matches(&all_events(), &agent_event(&id)));
        assert!(matches(&all_inventory(), &agent_inventory(&id)));
        assert!(matches(&all_heartbeats(), &agent_heartbeat(&id)));
        assert!(matches(&run_output(&run()), &agent_output(&id, &run())));
        assert!(matches(&all_output(), &run_output(&run())));
        assert!(matches(&all_output(), &agent_output(&id, &run())));
        assert!(!matches(&all_results(), &agent_event(&id)));
        assert!(matches(&all_rpc(), &agent_rpc_all_methods(&id)));
        for subject in [
            agent_result(&id),
            agent_heartbeat(&id),
            agent_publish_scope(&id),
        ] {
            assert!(matches(&all_agent_subjects(), &subject), "{subject}");
        }
    }

    #[test]
    fn matches_follows_nats_rules() {
        assert!(matches("a.>", "a.b.c"));
        assert!(!matches("a.>", "a"));
        assert!(matches("a.*.c", "a.b.c"));
        assert!(!matches("a.*", "a.b.c"));
        assert!(!matches("a.b", "a.b.c"));
        assert!(!matches("a.b.c", "a.b"));
    }

    #[test]
    fn the_server_inbox_is_no_agent_inbox() {
        let prefix = server_inbox_prefix();
        let token = prefix.strip_prefix("_INBOX.").expect("under _INBOX.");
        assert!(
            AgentId::parse(token).is_err(),
            "{token} is a valid agent id"
        );
        assert!(!prefix.contains(['*', '>']));
    }

    #[test]
    fn rpc_method_tokens_round_trip() {
        for method in RpcMethod::ALL {
            assert_eq!(RpcMethod::from_token(method.as_str()), Some(method));
        }
        assert_eq!(RpcMethod::from_token("reboot"), None);
    }
}
