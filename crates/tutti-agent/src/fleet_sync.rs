//! Keeps the agent's [`FleetView`] current from a local replica of `tutti_fleet`.
//!
//! One `tutti-kv` replica (a redb file, `<state_dir>/fleet/tutti_fleet.redb`) selects what
//! concerns this agent: its own group membership and configuration layer, the global and
//! group layers, every revocation and the freeze. One replica is one ordered consumer on the
//! broker, whatever it selects; an agent that boots with the broker down follows its last
//! known groups, kills, freeze and configuration. The replica never moves a key backwards (a
//! replay of an old revision after a reconnect is ignored), which is what keeps a
//! configuration rollback from happening by accident.
//!
//! Only values signed by a trusted key for their own KV key are applied
//! (`tutti_proto::signed_value`): fleet state widens or narrows which signed commands run,
//! so a value anyone else wrote is ignored, logged and reported once as a
//! `fleet_value_refused` event. The view then behaves as if the key were absent. The key
//! ring (`keys`) is read before everything else in each pass and updates the trusted keys
//! ([`crate::trust`]), so values re-signed by a rotation's new key verify at once.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tutti_bus::Bus;
use tutti_kv::{Replica, ReplicaConfig, ReplicaHandle, ReplicaState, Selection};
use tutti_proto::catalog::FLEET_BUCKET;
use tutti_proto::config::AgentConfig;
use tutti_proto::fleet::{FleetFreeze, Revocation};
use tutti_proto::trust::TrustedKeys;
use tutti_proto::{AgentId, GroupName, kv_keys};

use crate::fleet::{FleetEntries, FleetView, config_key_concerns};
use crate::state::StateHandle;
use crate::trust::TrustStore;

/// What the fleet-state task needs besides the bus.
#[derive(Debug)]
pub struct FleetSyncContext {
    /// This agent.
    pub agent_id: AgentId,
    /// Groups from enrollment, until the bucket has this agent's membership.
    pub fallback_groups: Vec<GroupName>,
    /// Where the replica lives.
    pub dir: PathBuf,
    /// The signing keys every applied value must be signed with; the key ring read here
    /// updates them.
    pub trust: Arc<TrustStore>,
    /// For reporting refused values through the outbox.
    pub state: StateHandle,
    /// Wakes the outbox.
    pub outbox: Arc<Notify>,
}

/// A value that was not applied.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Refusal {
    key: String,
    reason: String,
    value_digest: String,
}

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
    context: FleetSyncContext,
    view_tx: watch::Sender<FleetView>,
    mut shutdown: watch::Receiver<bool>,
) {
    // A replica loaded from disk reports the last sync of its previous life; only a sync at
    // or after this instant proves it has caught up since this start.
    let booted_at = std::time::SystemTime::now();
    let dir = &context.dir;
    let replica = match start_replica(&bus, &context.agent_id, dir).await {
        Ok(replica) => replica,
        Err(err) => {
            tracing::error!(error = %err, dir = %dir.display(), "Cannot open the local fleet-state replica; following enrollment groups and defaults only.");
            return;
        }
    };
    tracing::debug!(dir = %dir.display(), "Fleet-state replica opened.");
    let mut state = replica.state();
    let mut reported = HashSet::new();
    loop {
        let (view, refusals) = {
            let current = state.borrow();
            let ring_refusal = adopt_key_ring(&current, &context.trust);
            let trusted = context.trust.snapshot();
            let verified = Verified::new(&current, &trusted);
            verified.refusals.borrow_mut().extend(ring_refusal);
            let entries = verified.entries(&context.agent_id);
            let mut view = entries.view(&context.agent_id, &context.fallback_groups);
            view.synced = current.last_sync().is_some_and(|at| at >= booted_at);
            (view, verified.refusals.into_inner())
        };
        report_new(&context, &mut reported, refusals).await;
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

/// Reads the key ring first, so values signed by a key it introduces verify in the same
/// pass; a refused ring is reported like any refused value.
fn adopt_key_ring(state: &ReplicaState, trust: &TrustStore) -> Option<Refusal> {
    let key = kv_keys::key_ring();
    let bytes = state.get(&key)?;
    match trust.adopt_ring(bytes, &key, jiff::Timestamp::now()) {
        Ok(_) => None,
        Err(reason) => Some(Refusal {
            key,
            reason,
            value_digest: tutti_proto::digest::sha256_hex(bytes),
        }),
    }
}

/// Logs and reports each refused value once (per key and content) in this agent's life.
async fn report_new(
    context: &FleetSyncContext,
    reported: &mut HashSet<Refusal>,
    refusals: Vec<Refusal>,
) {
    for refusal in refusals {
        if !reported.insert(refusal.clone()) {
            continue;
        }
        tracing::warn!(key = %refusal.key, reason = %refusal.reason, "Refused a fleet-state value (unsigned, wrongly signed, or out of range and clamped).");
        let message = crate::report::fleet_value_refused(
            &context.agent_id,
            &refusal.key,
            &refusal.value_digest,
            refusal.reason,
        );
        let pushed = context
            .state
            .call(move |state| state.push_outbox(&message))
            .await;
        match pushed {
            Ok(()) => context.outbox.notify_one(),
            Err(err) => {
                tracing::warn!(error = %err, "Cannot queue the report of a refused fleet value.")
            }
        }
    }
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
        kv_keys::key_ring(),
    ];
    let prefixes = [kv_keys::CONFIG_GROUP_PREFIX, kv_keys::REVOKED_PREFIX];
    Selection::keys_and_prefixes(keys, prefixes).map_err(|err| err.to_string())
}

/// The replica's values, verified as they are read; what fails is collected in
/// `refusals` instead of being applied.
struct Verified<'a> {
    state: &'a ReplicaState,
    trusted: &'a TrustedKeys,
    now: jiff::Timestamp,
    refusals: std::cell::RefCell<Vec<Refusal>>,
}

impl<'a> Verified<'a> {
    fn new(state: &'a ReplicaState, trusted: &'a TrustedKeys) -> Verified<'a> {
        Verified {
            state,
            trusted,
            now: jiff::Timestamp::now(),
            refusals: std::cell::RefCell::new(Vec::new()),
        }
    }

    fn entries(&self, agent_id: &AgentId) -> FleetEntries {
        let revocation_keys = self
            .state
            .scan(kv_keys::REVOKED_PREFIX)
            .filter(|(key, value)| self.decode::<Revocation>(key, value).is_some())
            .map(|(key, _)| key.to_string())
            .collect();
        FleetEntries {
            membership: self.get(&kv_keys::groups_agent(agent_id)),
            revocation_keys,
            freeze: self.get::<FleetFreeze>(&kv_keys::fleet_freeze()),
            config: self
                .state
                .scan(kv_keys::CONFIG_PREFIX)
                .filter(|(key, _)| config_key_concerns(key, agent_id))
                .filter_map(|(key, value)| {
                    let config = self.decode::<AgentConfig>(key, value)?;
                    self.report_out_of_range(key, value, &config);
                    Some((key.to_string(), config))
                })
                .collect(),
        }
    }

    /// A signed layer with values outside their range is applied clamped
    /// (`tutti_proto::config::layered`) and reported like a refused value: one report per
    /// layer, naming every value out of range.
    fn report_out_of_range(&self, key: &str, value: &[u8], config: &AgentConfig) {
        let errors: Vec<String> = config.check().iter().map(ToString::to_string).collect();
        if errors.is_empty() {
            return;
        }
        self.refusals.borrow_mut().push(Refusal {
            key: key.to_string(),
            reason: format!(
                "{}; the nearest values in range are used instead",
                errors.join("; ")
            ),
            value_digest: tutti_proto::digest::sha256_hex(value),
        });
    }

    fn get<T: for<'de> serde::Deserialize<'de>>(&self, key: &str) -> Option<T> {
        let value = self.state.get(key)?;
        self.decode(key, value)
    }

    fn decode<T: for<'de> serde::Deserialize<'de>>(&self, key: &str, value: &[u8]) -> Option<T> {
        match self.trusted.verify_value(value, key, self.now) {
            Ok(decoded) => Some(decoded),
            Err(err) => {
                self.refusals.borrow_mut().push(Refusal {
                    key: key.to_string(),
                    reason: describe(&err),
                    value_digest: tutti_proto::digest::sha256_hex(value),
                });
                None
            }
        }
    }
}

/// The refusal in fleet-value words (`VerifyError` speaks of commands).
fn describe(err: &tutti_proto::sign::VerifyError) -> String {
    use tutti_proto::sign::VerifyError;
    match err {
        VerifyError::UnknownKey { .. } | VerifyError::KeyRetired { .. } => err.to_string(),
        VerifyError::BadSignature => "the signature does not verify for this key".into(),
        VerifyError::Malformed(detail) => detail.split(':').next().unwrap_or(detail).to_string(),
        VerifyError::Expired { .. } => err.to_string(),
    }
}
