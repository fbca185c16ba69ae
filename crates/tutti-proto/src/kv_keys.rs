//! Keys of tutti's KV buckets, built from typed ids like the subjects in [`crate::subjects`].
//!
//! NATS KV keys allow `[-/_=.a-zA-Z0-9]`; our ids are a subset, so every key built here
//! is valid. The buckets themselves are defined in [`crate::catalog`]; the value types
//! live in [`crate::config`] and [`crate::fleet`]. The `parse_*` functions turn a key seen
//! by a watcher back into what it addresses and return `None` for keys a newer server
//! may add, so old readers skip them.
//!
//! `tutti_fleet` holds every kind of state agents follow, each under its own first token
//! (`config.`, `groups.`, `revoked.`, `freeze`), so one watcher with a few subject filters
//! selects exactly what concerns one agent.

use crate::ids::{AgentId, GroupName, JobId, RunId};

/// `tutti_fleet`: the prefix of every configuration layer.
pub const CONFIG_PREFIX: &str = "config.";
/// `tutti_fleet`: the prefix of group configuration layers.
pub const CONFIG_GROUP_PREFIX: &str = "config.group.";
/// `tutti_fleet`: the prefix of revocations.
pub const REVOKED_PREFIX: &str = "revoked.";

/// `tutti_fleet`: the fleet-wide layer of agent configuration.
pub fn config_global() -> String {
    "config.global".to_string()
}

/// `tutti_fleet`: the configuration layer of one group.
pub fn config_group(group: &GroupName) -> String {
    format!("{CONFIG_GROUP_PREFIX}{group}")
}

/// `tutti_fleet`: the configuration layer of one agent.
pub fn config_agent(agent_id: &AgentId) -> String {
    format!("config.agent.{agent_id}")
}

/// `tutti_fleet`: the group membership of one agent.
pub fn groups_agent(agent_id: &AgentId) -> String {
    format!("groups.{agent_id}")
}

/// `tutti_fleet`: a revoked job (queued copies are skipped).
pub fn revocation_job(job_id: &JobId) -> String {
    format!("{REVOKED_PREFIX}job.{job_id}")
}

/// `tutti_fleet`: a killed or aborted run.
pub fn revocation_run(run_id: &RunId) -> String {
    format!("{REVOKED_PREFIX}run.{run_id}")
}

/// `tutti_fleet`: the fleet-wide freeze of scheduled runs.
pub fn fleet_freeze() -> String {
    "freeze".to_string()
}

/// `tutti_fleet`: the key ring, the keys agents trust (see [`crate::trust`]).
pub fn key_ring() -> String {
    "keys".to_string()
}

/// `tutti_leases`: the scheduler leader's lease.
pub fn lease_scheduler() -> String {
    "scheduler".to_string()
}

/// What a configuration key of `tutti_fleet` addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigKey {
    /// `config.global`.
    Global,
    /// `config.group.<g>`.
    Group(GroupName),
    /// `config.agent.<id>`.
    Agent(AgentId),
}

/// Parses a configuration key; `None` for other keys and kinds this version does not know.
pub fn parse_config_key(key: &str) -> Option<ConfigKey> {
    let rest = key.strip_prefix(CONFIG_PREFIX)?;
    if rest == "global" {
        return Some(ConfigKey::Global);
    }
    let (kind, id) = rest.split_once('.')?;
    match kind {
        "group" => strict_name::<GroupName>(id).map(ConfigKey::Group),
        "agent" => strict_name::<AgentId>(id).map(ConfigKey::Agent),
        _ => None,
    }
}

/// What a revocation key of `tutti_fleet` addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationKey {
    /// `revoked.job.<job>`.
    Job(JobId),
    /// `revoked.run.<run>`.
    Run(RunId),
}

/// Parses a revocation key; `None` for other keys and kinds this version does not know.
pub fn parse_revocation_key(key: &str) -> Option<RevocationKey> {
    let (kind, id) = key.strip_prefix(REVOKED_PREFIX)?.split_once('.')?;
    match kind {
        "job" => strict_name::<JobId>(id).map(RevocationKey::Job),
        "run" => RunId::parse(id).ok().map(RevocationKey::Run),
        _ => None,
    }
}

/// Parses an id taken from a key, accepting only its normalised form, so `agent.WEB`
/// written by hand is not mistaken for the key `agent.web`.
fn strict_name<T>(text: &str) -> Option<T>
where
    T: std::str::FromStr + AsRef<str>,
{
    let id = text.parse::<T>().ok()?;
    (id.as_ref() == text).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// KV key rule from the NATS docs: `[-/_=.a-zA-Z0-9]+`, no leading or trailing `.`.
    fn is_valid_kv_key(key: &str) -> bool {
        !key.is_empty()
            && !key.starts_with('.')
            && !key.ends_with('.')
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-/_=.".contains(c))
    }

    #[test]
    fn keys_are_valid_and_parse_back() {
        let agent_id = AgentId::parse("web-01").unwrap();
        let group = GroupName::parse("ops").unwrap();
        let job_id = JobId::parse("rotate-logs").unwrap();
        let run_id = RunId::from_parts(1_700_000_000_000, 9);
        let keys = [
            config_global(),
            config_group(&group),
            config_agent(&agent_id),
            groups_agent(&agent_id),
            revocation_job(&job_id),
            revocation_run(&run_id),
            fleet_freeze(),
            lease_scheduler(),
        ];
        for key in &keys {
            assert!(is_valid_kv_key(key), "{key}");
        }
        assert_eq!(config_group(&group), "config.group.ops");
        assert!(config_group(&group).starts_with(CONFIG_PREFIX));
        assert!(revocation_job(&job_id).starts_with(REVOKED_PREFIX));
        assert_eq!(parse_config_key("config.global"), Some(ConfigKey::Global));
        assert_eq!(
            parse_config_key("config.group.ops"),
            Some(ConfigKey::Group(group))
        );
        assert_eq!(
            parse_config_key("config.agent.web-01"),
            Some(ConfigKey::Agent(agent_id.clone()))
        );
        assert_eq!(groups_agent(&agent_id), "groups.web-01");
        assert_eq!(
            parse_revocation_key(&revocation_run(&run_id)),
            Some(RevocationKey::Run(run_id))
        );
        assert_eq!(
            parse_revocation_key("revoked.job.rotate-logs"),
            Some(RevocationKey::Job(job_id))
        );
    }

    #[test]
    fn unknown_or_unnormalised_keys_are_skipped() {
        for key in [
            "config.site.berlin",
            "config.agent.WEB-01",
            "config.agent.",
            "config.agent",
            "config.group.a.b",
            "global",
            "group.ops",
            "groups.web-01",
            "freeze",
        ] {
            assert_eq!(parse_config_key(key), None, "{key}");
        }
        for key in [
            "revoked.schedule.x",
            "revoked.run.nope",
            "revoked.job.A",
            "job.patch",
            "config.global",
        ] {
            assert_eq!(parse_revocation_key(key), None, "{key}");
        }
    }
}
