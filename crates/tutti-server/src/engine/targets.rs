//! Target selection: what an operator asks for (`all`, groups, agents), the agents it
//! resolves to, and the subjects the run's command is published on.
//!
//! Publishing rule (see the crate README): `all` is one message on `tutti.cmd.all`; a
//! single group is one message on its group subject; anything else (several groups,
//! explicit agents, or a mix) is one message per resolved agent on its own subject. An
//! agent in two targeted groups would otherwise receive two commands with different ids for
//! the same run and execute it twice, since agents de-duplicate by command id. The rule is
//! a pure function of the spec and the targets, so a kill re-derives the same subjects.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tutti_proto::{AgentId, GroupName, subjects};
use tutti_store::{AgentQuery, Covers, MAX_PAGE_LIMIT, Page, Store};

use crate::error::{Error, Result};

/// Which agents a run targets, as the operator wrote it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// Every known agent. Cannot be combined with groups or agents.
    #[serde(default)]
    pub all: bool,
    /// Members of these groups.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub groups: Vec<GroupName>,
    /// These agents.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub agents: Vec<AgentId>,
}

/// One command message to publish and the targets it reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outgoing {
    /// The subject.
    pub subject: String,
    /// Whom it reaches.
    pub covers: Covers,
}

/// The agents a spec resolved to and the messages that reach them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolution {
    /// Targeted agents, sorted.
    pub agents: Vec<AgentId>,
    /// Messages to publish.
    pub outgoing: Vec<Outgoing>,
}

impl TargetSpec {
    /// Rejects a spec that names nothing or mixes `all` with a list.
    pub fn check(&self) -> Result<()> {
        let has_lists = !self.groups.is_empty() || !self.agents.is_empty();
        match (self.all, has_lists) {
            (true, true) => Err(Error::bad_request(
                "targets: `all` cannot be combined with groups or agents",
            )),
            (false, false) => Err(Error::bad_request(
                "targets: name `all: true`, some groups or some agents",
            )),
            _ => Ok(()),
        }
    }

    fn is_single_group(&self) -> bool {
        !self.all && self.groups.len() == 1 && self.agents.is_empty()
    }
}

/// Resolves `spec` into known agents. Unknown agents and empty selections are errors.
pub(crate) async fn resolve(store: &Store, spec: &TargetSpec) -> Result<Resolution> {
    spec.check()?;
    let agents = if spec.all {
        all_agents(store, None).await?
    } else {
        listed_agents(store, spec).await?
    };
    if agents.is_empty() {
        return Err(Error::bad_request(
            "targets: the selection matches no known agent",
        ));
    }
    let outgoing = plan(spec, &agents);
    Ok(Resolution { agents, outgoing })
}

/// The messages that carry a run (or its kill) to `agents` under the rule above.
pub(crate) fn plan(spec: &TargetSpec, agents: &[AgentId]) -> Vec<Outgoing> {
    if spec.all {
        return vec![Outgoing {
            subject: subjects::cmd_all(),
            covers: Covers::AllTargets,
        }];
    }
    if spec.is_single_group() {
        return vec![Outgoing {
            subject: subjects::cmd_group(&spec.groups[0]),
            covers: Covers::AllTargets,
        }];
    }
    agents.iter().map(plan_agent).collect()
}

/// The message that reaches one agent on its own subject (a rollout's releases).
pub(crate) fn plan_agent(agent_id: &AgentId) -> Outgoing {
    Outgoing {
        subject: subjects::cmd_agent(agent_id),
        covers: Covers::Agents(vec![agent_id.clone()]),
    }
}

async fn listed_agents(store: &Store, spec: &TargetSpec) -> Result<Vec<AgentId>> {
    let mut agents = BTreeSet::new();
    for (index, group) in spec.groups.iter().enumerate() {
        let members = all_agents(store, Some(group)).await?;
        if members.is_empty() {
            return Err(Error::bad_request(format!(
                "targets.groups[{index}]: group {group} has no agents"
            )));
        }
        agents.extend(members);
    }
    for (index, agent_id) in spec.agents.iter().enumerate() {
        match store.get_agent(agent_id, Timestamp::now()).await {
            Ok(_) => {
                agents.insert(agent_id.clone());
            }
            Err(tutti_store::StoreError::NotFound(_)) => {
                return Err(Error::bad_request(format!(
                    "targets.agents[{index}]: agent {agent_id} is not known"
                )));
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(agents.into_iter().collect())
}

/// Every known agent, or every member of `group`, page by page.
async fn all_agents(store: &Store, group: Option<&GroupName>) -> Result<Vec<AgentId>> {
    let mut query = AgentQuery::all(Timestamp::now());
    query.group = group.cloned();
    let mut agents = Vec::new();
    loop {
        query.page = Page::new(MAX_PAGE_LIMIT, agents.len() as u64);
        let page = store.list_agents(&query).await?;
        let n_page = page.items.len();
        agents.extend(page.items.into_iter().map(|agent| agent.agent_id));
        if n_page < MAX_PAGE_LIMIT as usize || agents.len() as u64 >= page.total {
            return Ok(agents);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(name: &str) -> AgentId {
        AgentId::parse(name).unwrap()
    }

    fn group(name: &str) -> GroupName {
        GroupName::parse(name).unwrap()
    }

    #[test]
    fn all_and_single_groups_are_one_message() {
        let agents = [agent("a"), agent("b")];
        let all = TargetSpec {
            all: true,
            ..TargetSpec::default()
        };
        assert_eq!(plan(&all, &agents)[0].subject, "tutti.cmd.all");
        let one_group = TargetSpec {
            groups: vec![group("web")],
            ..TargetSpec::default()
        };
        let outgoing = plan(&one_group, &agents);
        assert_eq!(outgoing.len(), 1);
        assert_eq!(outgoing[0].subject, "tutti.cmd.group.web");
    }

    #[test]
    fn several_groups_go_per_agent_so_nobody_runs_twice() {
        let agents = [agent("a"), agent("b")];
        let spec = TargetSpec {
            groups: vec![group("web"), group("db")],
            ..TargetSpec::default()
        };
        let subjects: Vec<_> = plan(&spec, &agents)
            .into_iter()
            .map(|o| o.subject)
            .collect();
        assert_eq!(subjects, ["tutti.cmd.agent.a", "tutti.cmd.agent.b"]);
    }

    #[test]
    fn empty_and_mixed_specs_are_rejected() {
        assert!(TargetSpec::default().check().is_err());
        let mixed = TargetSpec {
            all: true,
            agents: vec![agent("a")],
            ..TargetSpec::default()
        };
        assert!(mixed.check().is_err());
    }
}
