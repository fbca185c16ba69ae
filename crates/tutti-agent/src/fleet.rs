//! What the fleet's shared state says about this agent: its groups, revoked jobs and runs,
//! the freeze, and its layered configuration.
//!
//! The values come from the `tutti_fleet` KV bucket, kept as a local replica, so an agent
//! that boots with the broker down still follows its last known configuration. This module is the pure part: it folds
//! bucket entries into a [`FleetView`]; `crate::fleet_sync` feeds it.

use std::collections::{BTreeMap, HashSet};

use jiff::Timestamp;
use tutti_proto::config::{AgentConfig, EffectiveConfig, layered};
use tutti_proto::fleet::{FleetFreeze, GroupMembership};
use tutti_proto::kv_keys::{self, ConfigKey, RevocationKey};
use tutti_proto::{AgentId, GroupName, JobId, RunId};

/// The agent's current view of fleet state.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetView {
    /// Groups this agent belongs to, sorted.
    pub groups: Vec<GroupName>,
    /// Jobs whose queued copies must be skipped.
    pub revoked_jobs: HashSet<JobId>,
    /// Runs killed or aborted.
    pub revoked_runs: HashSet<RunId>,
    /// The fleet freeze as last written, if any. Whether it is in force depends on the
    /// time, so it is kept whole and asked at the gate ([`FleetView::frozen_at`]).
    pub freeze: Option<FleetFreeze>,
    /// The layered configuration in effect.
    pub config: EffectiveConfig,
    /// Whether every bucket behind the view has been confirmed in sync with the broker at
    /// least once since start. Until then the runner waits (boundedly), so a job revoked
    /// while the agent was off is not run in the moment before the revocation is read.
    pub synced: bool,
}

impl FleetView {
    /// The view before any bucket has been read: groups from enrollment, defaults.
    pub fn initial(groups: Vec<GroupName>) -> FleetView {
        let none = AgentConfig::default();
        FleetView {
            groups: sorted(groups),
            revoked_jobs: HashSet::new(),
            revoked_runs: HashSet::new(),
            freeze: None,
            config: layered(&none, &[], &none),
            synced: false,
        }
    }

    /// Whether scheduled commands are frozen at `now`: a freeze with an `until` in the past
    /// has ended even if no newer value has arrived.
    pub fn frozen_at(&self, now: Timestamp) -> bool {
        self.freeze
            .as_ref()
            .is_some_and(|freeze| freeze.in_force(now))
    }
}

/// Raw bucket contents relevant to one agent, folded into a [`FleetView`] on demand.
#[derive(Debug, Clone, Default)]
pub struct FleetEntries {
    /// `groups.<id>` value for this agent, if any.
    pub membership: Option<GroupMembership>,
    /// `revoked.*` keys present.
    pub revocation_keys: Vec<String>,
    /// `freeze` value.
    pub freeze: Option<FleetFreeze>,
    /// `config.*` key → value.
    pub config: BTreeMap<String, AgentConfig>,
}

impl FleetEntries {
    /// Folds the entries into the view of `agent_id`; `fallback_groups` apply while the
    /// groups bucket has no value for it.
    pub fn view(&self, agent_id: &AgentId, fallback_groups: &[GroupName]) -> FleetView {
        let groups = match &self.membership {
            Some(membership) => sorted(membership.groups.clone()),
            None => sorted(fallback_groups.to_vec()),
        };
        let (revoked_jobs, revoked_runs) = self.revocations();
        FleetView {
            config: self.effective_config(agent_id, &groups),
            groups,
            revoked_jobs,
            revoked_runs,
            freeze: self.freeze.clone(),
            synced: false,
        }
    }

    fn revocations(&self) -> (HashSet<JobId>, HashSet<RunId>) {
        let mut jobs = HashSet::new();
        let mut runs = HashSet::new();
        for key in &self.revocation_keys {
            match kv_keys::parse_revocation_key(key) {
                Some(RevocationKey::Job(job_id)) => {
                    jobs.insert(job_id);
                }
                Some(RevocationKey::Run(run_id)) => {
                    runs.insert(run_id);
                }
                None => {}
            }
        }
        (jobs, runs)
    }

    /// Global, then each of the agent's groups in sorted order, then the agent's own layer:
    /// later layers win field by field. The stable group order makes the result the same
    /// on every agent with the same groups.
    fn effective_config(&self, agent_id: &AgentId, groups: &[GroupName]) -> EffectiveConfig {
        let empty = AgentConfig::default();
        let layer = |key: String| self.config.get(&key).cloned().unwrap_or_default();
        let global = layer(kv_keys::config_global());
        let group_layers: Vec<AgentConfig> = groups
            .iter()
            .map(|group| layer(kv_keys::config_group(group)))
            .collect();
        let agent = self
            .config
            .get(&kv_keys::config_agent(agent_id))
            .unwrap_or(&empty);
        layered(&global, &group_layers, agent)
    }
}

/// Whether a configuration key concerns this agent.
pub fn config_key_concerns(key: &str, agent_id: &AgentId) -> bool {
    match kv_keys::parse_config_key(key) {
        Some(ConfigKey::Global) | Some(ConfigKey::Group(_)) => true,
        Some(ConfigKey::Agent(id)) => &id == agent_id,
        None => false,
    }
}

fn sorted(mut groups: Vec<GroupName>) -> Vec<GroupName> {
    groups.sort();
    groups.dedup();
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> AgentId {
        AgentId::parse("web-01").unwrap()
    }

    fn group(name: &str) -> GroupName {
        GroupName::parse(name).unwrap()
    }

    #[test]
    fn later_layers_win_and_groups_apply_in_sorted_order() {
        let mut entries = FleetEntries::default();
        let set = |concurrency| AgentConfig {
            concurrency: Some(concurrency),
            ..Default::default()
        };
        entries.config.insert("config.global".into(), set(2));
        entries.config.insert("config.group.alpha".into(), set(3));
        entries.config.insert("config.group.beta".into(), set(5));
        entries.membership = Some(GroupMembership {
            groups: vec![group("beta"), group("alpha")],
        });

        let view = entries.view(&agent(), &[]);
        assert_eq!(view.groups, vec![group("alpha"), group("beta")]);
        assert_eq!(
            view.config.concurrency, 5,
            "beta sorts after alpha and wins"
        );

        entries.config.insert("config.agent.web-01".into(), set(9));
        assert_eq!(entries.view(&agent(), &[]).config.concurrency, 9);
        entries.config.insert("config.agent.other".into(), set(1));
        assert_eq!(
            entries.view(&agent(), &[]).config.concurrency,
            9,
            "another agent's layer"
        );
    }

    #[test]
    fn fallback_groups_apply_until_the_bucket_has_a_value() {
        let entries = FleetEntries::default();
        assert_eq!(
            entries.view(&agent(), &[group("ops")]).groups,
            vec![group("ops")]
        );
    }

    #[test]
    fn revocation_keys_fold_into_sets_and_unknown_keys_are_ignored() {
        let run = RunId::from_parts(1_700_000_000_000, 7);
        let entries = FleetEntries {
            revocation_keys: vec![
                "revoked.job.patch".into(),
                format!("revoked.run.{run}"),
                "revoked.bogus.key".into(),
            ],
            ..FleetEntries::default()
        };
        let view = entries.view(&agent(), &[]);
        assert!(view.revoked_jobs.contains(&JobId::parse("patch").unwrap()));
        assert!(view.revoked_runs.contains(&run));
    }
}
