//! Keeps the agent's [`FleetView`] current from local replicas of the fleet-state buckets.
//!
//! Four `tutti-kv` replicas (groups, revocations, fleet, config), each a redb file under
//! `<state_dir>/fleet/`, so an agent that boots with the broker down follows its last known
//! groups, kills, freeze and configuration. The replicas never move a key backwards (a replay
//! of an old revision after a reconnect is ignored), which is what keeps a configuration
//! rollback from happening by accident.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;
use tutti_bus::Bus;
use tutti_kv::{Replica, ReplicaConfig, ReplicaHandle, ReplicaState, Selection};
use tutti_proto::catalog::{CONFIG_BUCKET, FLEET_BUCKET, GROUPS_BUCKET, REVOCATIONS_BUCKET};
use tutti_proto::config::AgentConfig;
use tutti_proto::fleet::{FleetFreeze, GroupMembership};
use tutti_proto::{AgentId, GroupName, kv_keys};

use crate::fleet::{FleetEntries, FleetView, config_key_concerns};

/// The replicas behind a fleet view.
struct Replicas {
    groups: ReplicaHandle,
    revocations: ReplicaHandle,
    fleet: ReplicaHandle,
    config: ReplicaHandle,
}

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
    let replicas = match start_replicas(&bus, &agent_id, &dir).await {
        Ok(replicas) => replicas,
        Err(err) => {
            tracing::error!(error = %err, dir = %dir.display(), "Cannot open the local fleet-state replicas; following enrollment groups and defaults only.");
            return;
        }
    };
    tracing::debug!(dir = %dir.display(), "Fleet-state replicas opened.");
    let mut receivers = [
        replicas.groups.state(),
        replicas.revocations.state(),
        replicas.fleet.state(),
        replicas.config.state(),
    ];
    loop {
        let mut view = entries(&replicas, &agent_id).view(&agent_id, &fallback_groups);
        view.synced = receivers
            .iter()
            .all(|state| state.borrow().last_sync().is_some_and(|at| at >= booted_at));
        tracing::debug!(
            synced = view.synced,
            concurrency = view.config.concurrency,
            "Fleet view rebuilt."
        );
        view_tx.send_if_modified(|current| replace_if_changed(current, view));
        let [groups, revocations, fleet, config] = &mut receivers;
        tokio::select! {
            _ = groups.changed() => {}
            _ = revocations.changed() => {}
            _ = fleet.changed() => {}
            _ = config.changed() => {}
            _ = shutdown.changed() => break,
        }
    }
    for handle in [
        replicas.groups,
        replicas.revocations,
        replicas.fleet,
        replicas.config,
    ] {
        let _ = handle.shutdown().await;
    }
}

fn replace_if_changed(current: &mut FleetView, view: FleetView) -> bool {
    if *current == view {
        return false;
    }
    *current = view;
    true
}

async fn start_replicas(
    bus: &Bus,
    agent_id: &AgentId,
    dir: &std::path::Path,
) -> Result<Replicas, String> {
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|err| err.to_string())?;
    }
    // Exact keys, so each agent is sent its own membership and config layer only, not every
    // agent's: at ten thousand agents that is one value instead of ten thousand per start.
    let own_groups =
        Selection::keys_and_prefixes([kv_keys::groups_agent(agent_id)], Vec::<String>::new());
    let config_keys = [kv_keys::config_global(), kv_keys::config_agent(agent_id)];
    let config = Selection::keys_and_prefixes(config_keys, ["group."]);
    Ok(Replicas {
        groups: start_one(bus, dir, GROUPS_BUCKET, own_groups).await?,
        revocations: start_one(bus, dir, REVOCATIONS_BUCKET, Ok(Selection::WholeBucket)).await?,
        fleet: start_one(bus, dir, FLEET_BUCKET, Ok(Selection::WholeBucket)).await?,
        config: start_one(bus, dir, CONFIG_BUCKET, config).await?,
    })
}

async fn start_one(
    bus: &Bus,
    dir: &std::path::Path,
    bucket: &str,
    selection: Result<Selection, tutti_kv::KvError>,
) -> Result<ReplicaHandle, String> {
    let selection = selection.map_err(|err| err.to_string())?;
    let mut config = ReplicaConfig::new(bucket, selection);
    config.request_timeout = bus.request_timeout();
    config.backoff_max = Duration::from_secs(30);
    let path = dir.join(format!("{bucket}.redb"));
    Replica::start(config, bus.jetstream().clone(), &path)
        .await
        .map_err(|err| err.to_string())
}

fn entries(replicas: &Replicas, agent_id: &AgentId) -> FleetEntries {
    let groups = replicas.groups.state();
    let revocations = replicas.revocations.state();
    let fleet = replicas.fleet.state();
    let config = replicas.config.state();
    FleetEntries {
        membership: decode::<GroupMembership>(&groups.borrow(), &kv_keys::groups_agent(agent_id)),
        revocation_keys: revocations
            .borrow()
            .scan("")
            .map(|(key, _)| key.to_string())
            .collect(),
        freeze: decode::<FleetFreeze>(&fleet.borrow(), &kv_keys::fleet_freeze()),
        config: config
            .borrow()
            .scan("")
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
