//! Keys of tutti's KV buckets, built from typed ids like the subjects in [`crate::subjects`].
//!
//! NATS KV keys allow `[-/_=.a-zA-Z0-9]`; our ids are a subset, so every key built here
//! is valid. The buckets themselves are defined in [`crate::catalog`]; the value types
//! live in [`crate::config`] and [`crate::fleet`]. The `parse_*` functions turn a key seen
//! by a watcher back into what it addresses and return `None` for keys a newer server
//! may add, so old readers skip them.

use crate::ids::{AgentId, GroupName, JobId, RunId};

/// `tutti_config`: the fleet-wide layer of agent configuration.
pub fn config_global() -> String {
    "global".to_string()
}

/// `tutti_config`: the layer of one group.
pub fn config_group(group: &GroupName) -> String {
    format!("group.{group}")
}

/// `tutti_config`: the layer of one agent.
pub fn config_agent(agent_id: &AgentId) -> String {
    format!("agent.{agent_id}")
}

/// `tutti_groups`: the group membership of one agent.
pub fn groups_agent(agent_id: &AgentId) -> String {
    format!("agent.{agent_id}")
}

/// `tutti_revocations`: a revoked job (queued copies are skipped).
pub fn revocation_job(job_id: &JobId) -> String {
    format!("job.{job_id}")
}

/// `tutti_revocations`: a killed or aborted run.
pub fn revocation_run(run_id: &RunId) -> String {
    format!("run.{run_id}")
}

/// `tutti_fleet`: the fleet-wide freeze of scheduled runs.
pub fn fleet_freeze() -> String {
    "freeze".to_string()
}

/// `tutti_leases`: the scheduler leader's lease.
pub fn lease_scheduler() -> String {
    "scheduler".to_string()
}

/// What a key of the `tutti_config` bucket addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigKey {
    /// `global`.
    Global,
    /// `group.<g>`.
    Group(GroupName),
    /// `agent.<id>`.
    Agent(AgentId),
}

/// Parses a `tutti_config` key; `None` for keys this version does not know.
pub fn parse_config_key(key: &str) -> Option<ConfigKey> {
    if key == "global" {
        return Some(ConfigKey::Global);
    }
    let (kind, id) = key.split_once('.')?;
    match kind {
        "group" => strict_name::<GroupName>(id).map(ConfigKey::Group),
        "agent" => strict_name::<AgentId>(id).map(ConfigKey::Agent),
        _ => None,
    }
}

/// What a key of the `tutti_revocations` bucket addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationKey {
    /// `job.<job>`.
    Job(JobId),
    /// `run.<run>`.
    Run(RunId),
}

/// Parses a `tutti_revocations` key; `None` for keys this version does not know.
pub fn parse_revocation_key(key: &str) -> Option<RevocationKey> {
    let (kind, id) = key.split_once('.')?;
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
        assert_eq!(config_group(&group), "group.ops");
        assert_eq!(parse_config_key("global"), Some(ConfigKey::Global));
        assert_eq!(parse_config_key("group.ops"), Some(ConfigKey::Group(group)));
        assert_eq!(
            parse_config_key("agent.web-01"),
            Some(ConfigKey::Agent(agent_id))
        );
        assert_eq!(
            parse_revocation_key(&revocation_run(&run_id)),
            Some(RevocationKey::Run(run_id))
        );
        assert_eq!(
            parse_revocation_key("job.rotate-logs"),
            Some(RevocationKey::Job(job_id))
        );
    }

    #[test]
    fn unknown_or_unnormalised_keys_are_skipped() {
        for key in [
            "site.berlin",
            "agent.WEB-01",
            "agent.",
            "agent",
            "group.a.b",
        ] {
            assert_eq!(parse_config_key(key), None, "{key}");
        }
        for key in ["schedule.x", "run.nope", "job.A"] {
            assert_eq!(parse_revocation_key(key), None, "{key}");
        }
    }
}
