//! The heartbeat: a small core-NATS message every `heartbeat_interval_secs` that tells the
//! server this agent is alive, what version it runs, what it costs (RSS, CPU) and how far
//! behind it is (queue and outbox depth, command cursor).
//!
//! Heartbeats are not stored by the broker: a missed one is simply late, and the server
//! marks an agent offline after several. Own-process figures come from `/proc/self` on
//! Linux; other platforms report zero until their readers exist.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tutti_proto::heartbeat::Heartbeat;
use tutti_proto::{AgentId, subjects};

use crate::state::StateHandle;
use crate::trust::TrustStore;

/// Builds heartbeats, tracking CPU time between two of them.
#[derive(Debug)]
pub struct HeartbeatBuilder {
    agent_id: AgentId,
    hostname: String,
    started: Instant,
    last_cpu: Option<(Instant, Duration)>,
    trust: Option<Arc<TrustStore>>,
}

impl HeartbeatBuilder {
    /// A builder for this agent.
    pub fn new(agent_id: AgentId) -> HeartbeatBuilder {
        HeartbeatBuilder {
            agent_id,
            hostname: hostname(),
            started: Instant::now(),
            last_cpu: None,
            trust: None,
        }
    }

    /// Reports the keys `trust` holds in every heartbeat.
    pub fn with_trust(mut self, trust: Arc<TrustStore>) -> HeartbeatBuilder {
        self.trust = Some(trust);
        self
    }

    /// The next heartbeat, with depths read from the state database.
    pub async fn build(&mut self, state: &StateHandle) -> Heartbeat {
        let depths = state
            .call(|state| Ok((state.queue_depth()?, state.outbox_depth()?, state.cursor()?)))
            .await
            .unwrap_or((0, 0, None));
        let at = Timestamp::now();
        Heartbeat {
            agent_id: self.agent_id.clone(),
            at,
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_secs: self.started.elapsed().as_secs(),
            rss_bytes: own_rss_bytes(),
            cpu_percent: self.cpu_percent(),
            queue_depth: u32::try_from(depths.0).unwrap_or(u32::MAX),
            outbox_depth: u32::try_from(depths.1).unwrap_or(u32::MAX),
            cursor: depths.2.unwrap_or(0),
            hostname: self.hostname.clone(),
            trusted_keys: self
                .trust
                .as_ref()
                .map(|trust| trust.key_ids(at))
                .unwrap_or_default(),
        }
    }

    fn cpu_percent(&mut self) -> f32 {
        let now = Instant::now();
        let cpu = own_cpu_time();
        let percent = match self.last_cpu {
            Some((then, cpu_then)) => {
                let wall = now.duration_since(then).as_secs_f64();
                let used = cpu.saturating_sub(cpu_then).as_secs_f64();
                if wall > 0.0 {
                    (used / wall * 100.0) as f32
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        self.last_cpu = Some((now, cpu));
        percent
    }
}

/// Publishes heartbeats until `shutdown` fires. The interval follows the fleet view (a
/// changed interval counts from the last beat), and a change of the trusted keys is
/// reported at once, so `tutti keys status` sees a rotation reach the fleet as it happens.
pub async fn run(
    client: async_nats::Client,
    state: StateHandle,
    agent_id: AgentId,
    trust: Arc<TrustStore>,
    mut fleet: tokio::sync::watch::Receiver<crate::fleet::FleetView>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let subject = subjects::agent_heartbeat(&agent_id);
    let mut builder = HeartbeatBuilder::new(agent_id).with_trust(Arc::clone(&trust));
    let mut send = true;
    let mut last = tokio::time::Instant::now();
    loop {
        if send {
            let heartbeat = builder.build(&state).await;
            if let Ok(payload) = serde_json::to_vec(&heartbeat) {
                // Core NATS: while disconnected the client buffers or drops; a late beat
                // is fine.
                let _ = client.publish(subject.clone(), payload.into()).await;
            }
            last = tokio::time::Instant::now();
        }
        let interval =
            Duration::from_secs(fleet.borrow_and_update().config.heartbeat_interval_secs);
        tokio::select! {
            _ = tokio::time::sleep_until(last + interval) => send = true,
            Ok(()) = fleet.changed() => send = false,
            () = trust.changed() => send = true,
            _ = shutdown.changed() => return,
        }
    }
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .unwrap_or_default()
}

#[cfg(target_os = "linux")]
fn own_rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .unwrap_or(0);
    pages * page_size()
}

#[cfg(target_os = "linux")]
fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map(|size| size as u64)
        .unwrap_or(4096)
}

#[cfg(target_os = "linux")]
fn own_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&idx| fields.get(idx)?.parse::<u64>().ok())
        .sum();
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as u64;
    Duration::from_secs_f64(ticks as f64 / per_second.max(1) as f64)
}

#[cfg(not(target_os = "linux"))]
fn own_rss_bytes() -> u64 {
    0
}

#[cfg(not(target_os = "linux"))]
fn own_cpu_time() -> Duration {
    Duration::ZERO
}
