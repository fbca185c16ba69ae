//! Memory and CPU time of processes, read from `/proc` (Linux): what `footprint` reports
//! per process and what `fanout` splits its CPU time by (broker, server, agents).

use std::time::Duration;

use anyhow::Context;

/// Memory and CPU time of one process, from `/proc/<pid>/status` and `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcSample {
    pub(crate) rss_kb: u64,
    cpu_ticks: u64,
}

impl ProcSample {
    /// Reads `/proc/<pid>`; `pid` may be `self`.
    pub(crate) fn read(pid: &str) -> anyhow::Result<ProcSample> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("read /proc/{pid}/status"))?;
        let rss_kb = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("read /proc/{pid}/stat"))?;
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let cpu_ticks = [11, 12]
            .iter()
            .filter_map(|&idx| fields.get(idx)?.parse::<u64>().ok())
            .sum();
        Ok(ProcSample { rss_kb, cpu_ticks })
    }
}

/// Samples of several processes, in order.
pub(crate) fn sample_all(pids: &[u32]) -> anyhow::Result<Vec<ProcSample>> {
    pids.iter()
        .map(|pid| ProcSample::read(&pid.to_string()))
        .collect()
}

/// CPU used between two samples, in percent of one core over `elapsed`.
pub(crate) fn cpu_percent(before: &ProcSample, after: &ProcSample, elapsed: Duration) -> f64 {
    100.0 * cpu_seconds(before, after) / elapsed.as_secs_f64().max(f64::EPSILON)
}

/// CPU seconds (user + system) used between two samples of one process.
pub(crate) fn cpu_seconds(before: &ProcSample, after: &ProcSample) -> f64 {
    let ticks_per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100)
        .max(1) as f64;
    after.cpu_ticks.saturating_sub(before.cpu_ticks) as f64 / ticks_per_second
}

/// CPU seconds used by several processes together between two sets of samples.
pub(crate) fn total_cpu_seconds(before: &[ProcSample], after: &[ProcSample]) -> f64 {
    // A fold from +0.0: `Sum` for floats starts at -0.0, which prints as "-0.0".
    before
        .iter()
        .zip(after)
        .map(|(before, after)| cpu_seconds(before, after))
        .fold(0.0, |total, seconds| total + seconds)
}
