//! Writes to `tutti_fleet`, the KV bucket agents follow: group membership, revocations,
//! configuration layers and the fleet freeze, each under its own key prefix.
//!
//! The store holds the server's view for queries; the bucket is what agents act on,
//! so every change is written to both, store first (so a failed KV write can be retried by
//! repeating the request, which is idempotent). Keys come from `tutti_proto::kv_keys` only.
//!
//! Every value is written as a `tutti_proto::signed_value::SignedValue`, signed with the
//! command key for its KV key, and agents apply nothing else: fleet state decides which
//! signed commands run, so it must be as hard to forge as the commands. Values that older
//! servers wrote unsigned are signed once at start, and after a key switch every value is
//! signed again with the new key ([`resign`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use tutti_kv::{Bucket, KvError};
use tutti_proto::catalog::{FLEET_BUCKET, REVOCATION_TTL};
use tutti_proto::config::AgentConfig;
use tutti_proto::fleet::{FleetFreeze, GroupMembership, Revocation};
use tutti_proto::signed_value::SignedValue;
use tutti_proto::trust::{KeyRing, TrustedKeys};
use tutti_proto::{AgentId, GroupName, JobId, KeyId, RunId, kv_keys};

use crate::error::{Error, Result};
use crate::keyring::Keyring;
use crate::keys::ServerKey;

/// The fleet-state bucket, opened once at start.
#[derive(Debug, Clone)]
pub struct FleetKv {
    fleet: Bucket,
    keys: Keyring,
    /// What this server last made sure of, so the rotation clock's tick asks the broker
    /// nothing while the keys stay as they are.
    settled: Arc<Mutex<Settled>>,
}

/// The ring this server last saw in the bucket and the key it last re-signed it with.
#[derive(Debug, Default)]
struct Settled {
    ring: Option<KeyRing>,
    signed_by: Option<KeyId>,
}

/// A configuration layer's scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigScope {
    /// `config.global`.
    Global,
    /// `config.group.<g>`.
    Group(GroupName),
    /// `config.agent.<id>`.
    Agent(AgentId),
}

impl ConfigScope {
    fn key(&self) -> String {
        match self {
            ConfigScope::Global => kv_keys::config_global(),
            ConfigScope::Group(group) => kv_keys::config_group(group),
            ConfigScope::Agent(agent_id) => kv_keys::config_agent(agent_id),
        }
    }
}

impl FleetKv {
    /// Opens the bucket (it exists once `ensure_resources` ran) and moves what older
    /// versions kept in separate buckets into it.
    pub async fn open(
        js: &jetstream::Context,
        timeout: Duration,
        keys: Keyring,
    ) -> anyhow::Result<FleetKv> {
        let fleet = Box::pin(Bucket::open(js, FLEET_BUCKET, timeout)).await?;
        Box::pin(migrate_legacy_buckets(js, &fleet, timeout)).await?;
        let kv = FleetKv {
            fleet,
            keys,
            settled: Arc::default(),
        };
        // The ring first: an agent reading values re-signed by a new key learns the key in
        // the same pass.
        kv.publish_ring().await?;
        Box::pin(kv.resign_all(js, timeout)).await?;
        Ok(kv)
    }

    /// Writes the key ring (`keys`) unless the bucket holds this ring already.
    pub async fn publish_ring(&self) -> Result<()> {
        let ring = self.keys.ring();
        if self.settled().ring.as_ref() == Some(&ring) {
            return Ok(());
        }
        let key = kv_keys::key_ring();
        let current = self.keys.current();
        let stored = self.fleet.get(&key).await?.and_then(|bytes| {
            SignedValue::verify_as::<KeyRing>(&bytes, &key, &current.verifying()).ok()
        });
        if stored.as_ref() != Some(&ring) {
            self.fleet.put(&key, self.signed(&key, &ring)?).await?;
        }
        self.settled().ring = Some(ring);
        Ok(())
    }

    /// Signs every value again with the current key, after a key switch, and records that
    /// it did (as a start after a key change would).
    pub async fn resign_all(
        &self,
        js: &jetstream::Context,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let key_id = self.keys.current().key_id();
        if self.settled().signed_by == Some(key_id) {
            return Ok(());
        }
        resign_once(js, &self.fleet, &self.keys, timeout).await?;
        self.settled().signed_by = Some(key_id);
        Ok(())
    }

    fn settled(&self) -> std::sync::MutexGuard<'_, Settled> {
        // Two plain fields written whole: a panic cannot leave them half-changed.
        self.settled
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `value` signed for `kv_key`, as the bucket stores it.
    fn signed(&self, kv_key: &str, value: &impl serde::Serialize) -> Result<Bytes> {
        SignedValue::sign(kv_key, value, self.keys.current().signing())
            .map(|signed| Bytes::from(signed.to_bytes()))
            .map_err(|err| Error::internal("encode KV value", err))
    }

    /// The value of `kv_key` if present and signed by a key agents trust now (the current
    /// one, or a retiring one: right after a key switch the values are being re-signed);
    /// anything else in the bucket is not what agents act on, so it is an error, not a
    /// value.
    async fn get_verified<T: for<'de> serde::Deserialize<'de>>(
        &self,
        kv_key: &str,
    ) -> Result<Option<T>> {
        let Some(bytes) = self.fleet.get(kv_key).await? else {
            return Ok(None);
        };
        self.keys
            .trusted()
            .verify_value(&bytes, kv_key, jiff::Timestamp::now())
            .map(Some)
            .map_err(|err| Error::internal(&format!("fleet value {kv_key}"), err))
    }

    /// Writes an agent's group membership, which its command consumer follows.
    pub async fn put_groups(&self, agent_id: &AgentId, groups: &[GroupName]) -> Result<()> {
        let membership = GroupMembership {
            groups: groups.to_vec(),
        };
        let key = kv_keys::groups_agent(agent_id);
        self.fleet
            .put(&key, self.signed(&key, &membership)?)
            .await?;
        Ok(())
    }

    /// Removes an agent's membership (a deleted agent).
    pub async fn delete_groups(&self, agent_id: &AgentId) -> Result<()> {
        Ok(self.fleet.delete(&kv_keys::groups_agent(agent_id)).await?)
    }

    /// Revokes a run: agents that catch up later skip it.
    pub async fn revoke_run(&self, run_id: &RunId, revocation: &Revocation) -> Result<()> {
        let key = kv_keys::revocation_run(run_id);
        self.put_revocation(&key, revocation).await
    }

    /// Revokes a job: queued copies of every run of it are skipped.
    pub async fn revoke_job(&self, job_id: &JobId, revocation: &Revocation) -> Result<()> {
        let key = kv_keys::revocation_job(job_id);
        self.put_revocation(&key, revocation).await
    }

    async fn put_revocation(&self, key: &str, revocation: &Revocation) -> Result<()> {
        self.fleet
            .put_with_ttl(key, self.signed(key, revocation)?, REVOCATION_TTL)
            .await?;
        Ok(())
    }

    /// One configuration layer; `None` when the scope sets nothing.
    pub async fn get_config(&self, scope: &ConfigScope) -> Result<Option<AgentConfig>> {
        // A layer written by hand, unsigned, is reported rather than silently treated as
        // empty: agents ignore it, and the operator should see why.
        self.get_verified(&scope.key()).await
    }

    /// Replaces one configuration layer.
    pub async fn put_config(&self, scope: &ConfigScope, layer: &AgentConfig) -> Result<()> {
        let key = scope.key();
        self.fleet.put(&key, self.signed(&key, layer)?).await?;
        Ok(())
    }

    /// Deletes one configuration layer.
    pub async fn delete_config(&self, scope: &ConfigScope) -> Result<()> {
        Ok(self.fleet.delete(&scope.key()).await?)
    }

    /// The fleet freeze as last written; `None` when it never was. Whether it is in force
    /// is the caller's question ([`FleetFreeze::in_force`]), asked with its own clock.
    pub async fn get_freeze(&self) -> Result<Option<FleetFreeze>> {
        self.get_verified(&kv_keys::fleet_freeze()).await
    }

    /// Writes the fleet freeze (lifting it writes `frozen: false`, keeping who and when).
    pub async fn put_freeze(&self, freeze: &FleetFreeze) -> Result<()> {
        let key = kv_keys::fleet_freeze();
        self.fleet.put(&key, self.signed(&key, freeze)?).await?;
        Ok(())
    }
}

/// Buckets of versions before 2026-11-30, and how their keys map into `tutti_fleet`.
const LEGACY_BUCKETS: [(&str, &str); 3] = [
    ("tutti_config", kv_keys::CONFIG_PREFIX),
    ("tutti_groups", "groups."),
    ("tutti_revocations", kv_keys::REVOKED_PREFIX),
];

/// Copies the live keys of the buckets older versions used into `tutti_fleet`, then deletes
/// those buckets, so agents of this version find the fleet's configuration, groups and
/// revocations where they look. A key already present in `tutti_fleet` is never
/// overwritten (a create, not a put), so a migration interrupted half-way and run again
/// copies only what is missing; the old bucket goes only after every key is across.
pub(crate) async fn migrate_legacy_buckets(
    js: &jetstream::Context,
    fleet: &Bucket,
    timeout: Duration,
) -> anyhow::Result<()> {
    for (name, prefix) in LEGACY_BUCKETS {
        let Ok(legacy) = Bucket::open(js, name, timeout).await else {
            continue;
        };
        let entries = legacy.scan("").await?;
        for entry in &entries {
            let key = legacy_key(name, prefix, &entry.key);
            let copied = if prefix == kv_keys::REVOKED_PREFIX {
                fleet
                    .put_with_ttl(&key, entry.value.clone(), REVOCATION_TTL)
                    .await
            } else {
                fleet.create(&key, entry.value.clone()).await
            };
            match copied {
                Ok(_) | Err(KvError::AlreadyExists) => {}
                Err(err) => {
                    return Err(anyhow::anyhow!(
                        "cannot move {name}/{} into {FLEET_BUCKET}: {err}",
                        entry.key
                    ));
                }
            }
        }
        js.delete_key_value(name)
            .await
            .map_err(|err| anyhow::anyhow!("cannot delete the old bucket {name}: {err}"))?;
        tracing::info!(
            bucket = name,
            keys = entries.len(),
            "Moved an old fleet-state bucket into {FLEET_BUCKET}."
        );
    }
    Ok(())
}

/// The `tutti_catalog` key that records which signing key last signed the whole bucket.
const SIGNED_MARKER: &str = "fleet-signed-by";

/// Re-signs the bucket unless a server with this key already did: checking every value's
/// signature at every start costs a verification per agent, for a step that happens once
/// per key. Without a marker at all the bucket predates signed fleet state, and plain JSON
/// values are signed too ([`Resign::Legacy`]); after a key switch only values that verify
/// with a key agents still trust are re-signed ([`Resign::Rotation`]).
async fn resign_once(
    js: &jetstream::Context,
    fleet: &Bucket,
    keys: &Keyring,
    timeout: Duration,
) -> anyhow::Result<()> {
    let catalog = Bucket::open(js, tutti_proto::catalog::CATALOG_BUCKET, timeout).await?;
    let key = keys.current();
    let key_id = key.key_id().to_string();
    let marker = catalog.get(SIGNED_MARKER).await?;
    if marker.as_deref() == Some(key_id.as_bytes()) {
        return Ok(());
    }
    let mode = match marker {
        None => Resign::Legacy,
        Some(_) => Resign::Rotation,
    };
    resign(fleet, &key, &keys.trusted(), mode).await?;
    catalog.put(SIGNED_MARKER, Bytes::from(key_id)).await?;
    Ok(())
}

/// Which values [`resign`] may sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resign {
    /// The first start on a bucket written before fleet state was signed: plain JSON
    /// values are the servers' own and are signed as they are.
    Legacy,
    /// After a key switch: only values signed by a key agents trust are signed again (their
    /// inner value, never the envelope). Anything else is left alone and logged: signing it
    /// would turn a value nobody can vouch for into one every agent obeys.
    Rotation,
}

/// Signs every value not yet signed by `key` that `mode` allows, keeping revocations'
/// time to live.
pub(crate) async fn resign(
    fleet: &Bucket,
    key: &ServerKey,
    trusted: &TrustedKeys,
    mode: Resign,
) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now();
    let mut resigned = 0;
    for entry in fleet.scan("").await? {
        if SignedValue::verify(&entry.value, &entry.key, &key.verifying()).is_ok() {
            continue;
        }
        let json = match SignedValue::unverified_value(&entry.value) {
            Ok(_) => match SignedValue::verify_with(&entry.value, &entry.key, |key_id| {
                trusted.lookup(key_id, now)
            }) {
                Ok(inner) => inner.to_string(),
                Err(err) => {
                    tracing::warn!(key = %entry.key, error = %err, "A fleet value is signed by a key agents do not trust; left as it is (agents ignore it).");
                    continue;
                }
            },
            Err(_) if mode == Resign::Legacy => {
                let Some(json) = std::str::from_utf8(&entry.value)
                    .ok()
                    .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
                    .map(|value| value.to_string())
                else {
                    tracing::warn!(key = %entry.key, "A fleet value is not JSON; agents ignore it.");
                    continue;
                };
                json
            }
            Err(_) => {
                tracing::warn!(key = %entry.key, "A fleet value is not signed; left as it is (agents ignore it).");
                continue;
            }
        };
        let signed = SignedValue::sign_json(&entry.key, json, key.signing())?;
        let bytes = Bytes::from(signed.to_bytes());
        if entry.key.starts_with(kv_keys::REVOKED_PREFIX) {
            fleet
                .put_with_ttl(&entry.key, bytes, REVOCATION_TTL)
                .await?;
        } else {
            fleet.put(&entry.key, bytes).await?;
        }
        resigned += 1;
    }
    if resigned > 0 {
        tracing::info!(
            n_values = resigned,
            ?mode,
            "Signed fleet values with the current key."
        );
    }
    Ok(())
}

/// The `tutti_fleet` key of a legacy key: `tutti_groups` keyed agents as `agent.<id>`.
fn legacy_key(bucket: &str, prefix: &str, key: &str) -> String {
    match (bucket, key.strip_prefix("agent.")) {
        ("tutti_groups", Some(agent)) => format!("{prefix}{agent}"),
        _ => format!("{prefix}{key}"),
    }
}
