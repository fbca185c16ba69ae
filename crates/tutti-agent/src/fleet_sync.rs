//! Keeps the agent's [`FleetView`] current from a local replica of `tutti_fleet`.
//!
//! One `tutti-kv` replica (a redb file, `<state_dir>/fleet/tutti_fleet.redb`) selects what
//! concerns this agent: its own group membership and configuration layer, the global and
//! group layers, every revocation and the freeze. One replica is one ordered consumer on the
//! broker, whatever it selects; an agent that boots with the broker down follows its last
//! known groups, kills, freeze and configuration. The replica never moves a key backwards (a
//! replay of an old revision after a reconnect is ignored), which is what keeps a
//! configuration rollback from happening by accident.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;
use tutti_bus::Bus;
use tutti_kv::{Replica, ReplicaConfig, ReplicaHandle, ReplicaState, Selection};
use tutti_proto::catalog::FLEET_BUCKET;
use tutti_proto::config::AgentConfig;
use tutti_proto::fleet::{FleetFreeze, GroupMembership};
use tutti_proto::{AgentId, GroupName, kv_keys};

use crate::fleet::{FleetEntries, FleetView, config_key_concerns};

/// Replica files of versions that followed four buckets; removed at start. Their
/// `tutti_fleet.redb` stays: the replica notices its changed selection and resyncs.
const LEGACY_FILES: [&str; 3] = [
    "tutti_config.redb",
    "tutti_groups.redb",
    "tutti_revocations.redb",
];

/// Runs until `shutdown` fires, publishing every change of the view on `view_tx`.
pub async fn run(
    bus: Bus,
    agent_id: AgentId,
    fallback_groups: Vec<GroupName>,
    dir: PathBuf,
    view_tx: watch::Sender<FleetView>,
    mut shutdown: watch::Receiver<bool>,
) {
    // A replica loaded from disk reports the last sync of its previous life; only a sync at
    // or after this instant proves it has caught up since this start.
    let booted_at = std::time::SystemTime::now();
    let replica = match start_replica(&bus, &agent_id, &dir).await {
        Ok(replica) => replica,
        Err(err) => {
            tracing::error!(error = %err, dir = %dir.display(), "Cannot open the local fleet-state replica; following enrollment groups and defaults only.");
            return;
        }
    };
    tracing::debug!(dir = %dir.display(), "Fleet-state replica opened.");
    let mut state = replica.state();
    loop {
        let view = {
            let current = state.borrow();
            let mut view = entries(&current, &agent_id).view(&agent_id, &fallback_groups);
            view.synced = current.last_sync().is_some_and(|at| at >= booted_at);
            view
        };
        tracing::debug!(
            synced = view.synced,
            concurrency = view.config.concurrency,
            "Fleet view rebuilt."
        );
        view_tx.send_if_modified(|current| replace_if_changed(current, view));
        tokio::select! {
            _ = state.changed() => {}
            _ = shutdown.changed() => break,
        }
    }
    let _ = replica.shutdown().await;
}

fn replace_if_changed(current: &mut FleetView, view: FleetView) -> bool {
    if *current == view {
        return false;
    }
    *current = view;
    true
}

async fn start_replica(
    bus: &Bus,
    agent_id: &AgentId,
    dir: &std::path::Path,
) -> Result<ReplicaHandle, String> {
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|err| err.to_string())?;
    }
    for legacy in LEGACY_FILES {
        let path = dir.join(legacy);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "Removed a fleet-state replica of an older version.")
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "Cannot remove an old fleet-state replica.")
            }
        }
    }
    let mut config = ReplicaConfig::new(FLEET_BUCKET, selection(agent_id)?);
    config.request_timeout = bus.request_timeout();
    // A broker that is behind fails thousands of replicas at once: their retries start
    // after 0.5–1 s (jittered), not after the library's 125–250 ms.
    config.backoff_min = Duration::from_secs(1);
    config.backoff_max = Duration::from_secs(30);
    // The agent reads `last_sync` only to know it synced since start (set when the replica
    // goes live); the staleness clock needs no one-second tick on every endpoint.
    config.liveness_interval = Duration::from_secs(15);
    Replica::start(
        config,
        bus.jetstream().clone(),
        &dir.join(format!("{FLEET_BUCKET}.redb")),
    )
    .await
    .map_err(|err| err.to_string())
}

/// What this agent follows: exact keys for its own membership and layer, so each agent is
/// sent its own values only, not every agent's (at ten thousand agents that is one value
/// instead of ten thousand per start), and prefixes for what every agent shares.
fn selection(agent_id: &AgentId) -> Result<Selection, String> {
    let keys = [
        kv_keys::groups_agent(agent_id),
        kv_keys::config_global(),
        kv_keys::config_agent(agent_id),
        kv_keys::fleet_freeze(),
    ];
    let prefixes = [kv_keys::CONFIG_GROUP_PREFIX, kv_keys::REVOKED_PREFIX];
    Selection::keys_and_prefixes(keys, prefixes).map_err(|err| err.to_string())
}

fn entries(state: &ReplicaState, agent_id: &AgentId) -> FleetEntries {
    FleetEntries {
        membership: decode::<GroupMembership>(state, &kv_keys::groups_agent(agent_id)),
        revocation_keys: state
            .scan(kv_keys::REVOKED_PREFIX)
            .map(|(key, _)| key.to_string())
            .collect(),
        freeze: decode::<FleetFreeze>(state, &kv_keys::fleet_freeze()),
        config: state
            .scan(kv_keys::CONFIG_PREFIX)
            .filter(|(key, _)| config_key_concerns(key, agent_id))
            .filter_map(|(key, value)| Some((key.to_string(), parse_layer(key, value)?)))
            .collect(),
    }
}

fn decode<T: for<'de> serde::Deserialize<'de>>(state: &ReplicaState, key: &str) -> Option<T> {
    let value = state.get(key)?;
    match serde_json::from_slice(value) {
        Ok(decoded) => Some(decoded),
        Err(err) => {
            tracing::warn!(key, error = %err, "Ignoring an undecodable fleet-state value.");
            None
        }
    }
}

fn parse_layer(key: &str, value: &[u8]) -> Option<AgentConfig> {
    match serde_json::from_slice(value) {
        Ok(layer) => Some(layer),
        Err(err) => {
            tracing::warn!(key, error = %err, "Ignoring an undecodable configuration layer.");
            None
        }
    }
}
