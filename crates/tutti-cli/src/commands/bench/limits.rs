//! The open-files limit. Every simulated agent holds a broker connection and a handful of
//! database files (its state and four fleet-state replicas), and the broker, a child of this
//! process that inherits the limit, holds one socket per agent. The soft limit is raised to
//! what the scenario needs, and the hard limit too when that is allowed (root or
//! `CAP_SYS_RESOURCE`); what was done is said on stderr.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Files one simulated agent may hold open, with room to spare.
const FILES_PER_AGENT: u64 = 16;
/// Files the broker, the server and the benchmark need besides the agents.
const FILES_BASE: u64 = 8192;

/// Raises `RLIMIT_NOFILE` for `n_agents` agents; returns a sentence saying what it did.
pub(crate) fn raise_open_files(n_agents: usize) -> anyhow::Result<String> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let needed = FILES_BASE + FILES_PER_AGENT * n_agents as u64;
    let target = needed.max(soft);
    if target <= soft {
        return Ok(format!("open-files limit {soft} is enough (hard {hard})"));
    }
    if target <= hard {
        setrlimit(Resource::RLIMIT_NOFILE, target, hard)?;
        return Ok(format!(
            "raised the open-files limit from {soft} to {target} (hard {hard})"
        ));
    }
    match setrlimit(Resource::RLIMIT_NOFILE, target, target) {
        Ok(()) => Ok(format!(
            "raised the open-files limit from {soft} to {target} (hard limit raised from {hard})"
        )),
        Err(err) => {
            setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
            Ok(format!(
                "raised the open-files limit from {soft} to the hard limit {hard}; {target} \
                 were wanted but raising the hard limit failed ({err}): large fleets may run \
                 out of files (raise it with `ulimit -Hn` as root)"
            ))
        }
    }
}
