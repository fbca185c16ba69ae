//! `tutti bench reconnect`: N agents connected, the broker restarted (graceful stop, start
//! on the same ports and store); timed from the broker being ready again until every agent
//! has heartbeated again.
//!
//! The fleet configuration sets a short heartbeat interval first (`--heartbeat-secs`,
//! through the HTTP API), because "heartbeating again" includes waiting for the next beat.
//! The broker's `/varz` is sampled every 100 ms: the peak connection rate is the largest
//! rise of `total_connections` within any one second, and "all connected" is when the
//! broker counts at least N connections again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::report::{Progress, Report, millis};
use super::rig::{BrokerAuthMode, Rig};
use super::{LaunchedFleet, launch_fleet, tear_down};
use crate::Env;
use crate::args::ReconnectArgs;

/// How often `/varz` is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// One `/varz` sample.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    connections: u64,
    total_connections: u64,
}

/// Runs the scenario.
pub(crate) async fn run(args: ReconnectArgs, env: &Env) -> anyhow::Result<Report> {
    if args.agents == 0 {
        bail!("--agents must be at least 1");
    }
    let progress = Progress::new();
    let mut rig = Rig::start(&args.common, env, &progress, BrokerAuthMode::Operator).await?;
    let mut launched = None;
    let outcome = measure(&mut rig, &args, &progress, &mut launched).await;
    tear_down(rig, launched, &progress).await;
    outcome
}

async fn measure(
    rig: &mut Rig,
    args: &ReconnectArgs,
    progress: &Progress,
    launched: &mut Option<LaunchedFleet>,
) -> anyhow::Result<Report> {
    let config = serde_json::json!({ "heartbeat_interval_secs": args.heartbeat_secs });
    rig.put("/api/v1/config/global", &config).await?;
    let fleet = launched.insert(launch_fleet(rig, args.agents, "sim", false, progress).await?);
    let agent_ids = fleet.fleet.agent_ids();
    // An agent's first heartbeat is sent before its fleet configuration has synced, so the
    // wait after it is the default interval; a second beat proves the short one applies.
    progress.say("waiting for a second heartbeat");
    let second_round = super::sim::startup_timeout(args.agents) + Duration::from_secs(35);
    fleet
        .heartbeats
        .wait_all(&agent_ids, Instant::now(), second_round, progress)
        .await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .context("build the monitoring client")?;
    let varz_url = format!("{}/varz", rig.broker.monitor_url());
    let before = varz(&http, &varz_url)
        .await
        .context("read the broker's /varz")?;

    progress.say("restarting the broker");
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = tokio::spawn(sample(http, varz_url, Arc::clone(&samples)));
    let restarted = restart_broker(rig).await?;
    let timeout =
        super::sim::startup_timeout(args.agents) + Duration::from_secs(2 * args.heartbeat_secs);
    let all_back = fleet
        .heartbeats
        .wait_all(&agent_ids, restarted, timeout, progress)
        .await;
    sampler.abort();
    let all_back = all_back?;
    let samples = samples
        .lock()
        .map_err(|_| anyhow::anyhow!("the sample lock is poisoned"))?
        .clone();
    let after: Vec<Sample> = samples.into_iter().filter(|s| s.at >= restarted).collect();
    let all_connected = after
        .iter()
        .find(|s| s.connections >= args.agents as u64)
        .map(|s| s.at.duration_since(restarted));

    let mut report = Report::new("reconnect", args.agents);
    report.metric("all_back_ms", millis(all_back));
    report.metric("peak_connects_per_s", peak_per_second(&after));
    report.metric("all_connected_ms", all_connected.map(millis));
    report.metric("connections_before", before.connections);
    report.metric("heartbeat_secs", args.heartbeat_secs);
    report.metric(
        "completed",
        fleet.heartbeats.count_since(&agent_ids, restarted),
    );
    Ok(report)
}

/// Stops the broker gracefully and starts it again; returns when it is ready.
async fn restart_broker(rig: &mut Rig) -> anyhow::Result<Instant> {
    let broker = &mut rig.broker;
    tokio::task::block_in_place(|| broker.start_again())?;
    Ok(Instant::now())
}

/// Samples `/varz` until aborted; a broker that is down is simply not sampled.
async fn sample(http: reqwest::Client, url: String, samples: Arc<Mutex<Vec<Sample>>>) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    loop {
        tick.tick().await;
        if let Ok(sample) = varz(&http, &url).await
            && let Ok(mut samples) = samples.lock()
        {
            samples.push(sample);
        }
    }
}

async fn varz(http: &reqwest::Client, url: &str) -> anyhow::Result<Sample> {
    let value: serde_json::Value = http.get(url).send().await?.json().await?;
    Ok(Sample {
        at: Instant::now(),
        connections: value["connections"].as_u64().unwrap_or(0),
        total_connections: value["total_connections"].as_u64().unwrap_or(0),
    })
}

/// The largest rise of `total_connections` within one second of samples.
fn peak_per_second(samples: &[Sample]) -> u64 {
    let mut peak = 0;
    for (idx, first) in samples.iter().enumerate() {
        let window_end = first.at + Duration::from_secs(1);
        let last = samples[idx..]
            .iter()
            .take_while(|s| s.at <= window_end)
            .last()
            .unwrap_or(first);
        peak = peak.max(
            last.total_connections
                .saturating_sub(first.total_connections),
        );
    }
    // Connections made before the first sample after the restart count too.
    if let Some(first) = samples.first() {
        peak = peak.max(first.total_connections);
    }
    peak
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_the_largest_rise_within_a_second() {
        let start = Instant::now();
        let sample = |ms: u64, total: u64| Sample {
            at: start + Duration::from_millis(ms),
            connections: total,
            total_connections: total,
        };
        let samples = [
            sample(0, 0),
            sample(500, 10),
            sample(1000, 100),
            sample(1500, 110),
            sample(2500, 120),
        ];
        assert_eq!(peak_per_second(&samples), 100);
    }
}
