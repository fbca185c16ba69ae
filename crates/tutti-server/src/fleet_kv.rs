//! Writes to `tutti_fleet`, the KV bucket agents follow: group membership, revocations,
//! configuration layers and the fleet freeze, each under its own key prefix.
//!
//! The store holds the server's view for queries; the bucket is what agents act on,
//! so every change is written to both, store first (so a failed KV write can be retried by
//! repeating the request, which is idempotent). Keys come from `tutti_proto::kv_keys` only.

use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use tutti_kv::{Bucket, KvError};
use tutti_proto::catalog::{FLEET_BUCKET, REVOCATION_TTL};
use tutti_proto::config::AgentConfig;
use tutti_proto::fleet::{FleetFreeze, GroupMembership, Revocation};
use tutti_proto::{AgentId, GroupName, JobId, RunId, kv_keys};

use crate::error::{Error, Result};

/// The fleet-state bucket, opened once at start.
#[derive(Debug, Clone)]
pub struct FleetKv {
    fleet: Bucket,
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
    pub async fn open(js: &jetstream::Context, timeout: Duration) -> anyhow::Result<FleetKv> {
        let fleet = Box::pin(Bucket::open(js, FLEET_BUCKET, timeout)).await?;
        Box::pin(migrate_legacy_buckets(js, &fleet, timeout)).await?;
        Ok(FleetKv { fleet })
    }

    /// Writes an agent's group membership, which its command consumer follows.
    pub async fn put_groups(&self, agent_id: &AgentId, groups: &[GroupName]) -> Result<()> {
        let membership = GroupMembership {
            groups: groups.to_vec(),
        };
        let key = kv_keys::groups_agent(agent_id);
        self.fleet.put(&key, to_json(&membership)?).await?;
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
            .put_with_ttl(key, to_json(revocation)?, REVOCATION_TTL)
            .await?;
        Ok(())
    }

    /// One configuration layer; `None` when the scope sets nothing.
    pub async fn get_config(&self, scope: &ConfigScope) -> Result<Option<AgentConfig>> {
        let Some(bytes) = self.fleet.get(&scope.key()).await? else {
            return Ok(None);
        };
        // Layers are written by this server, but an operator may have written one by
        // hand; an undecodable layer is reported rather than silently treated as empty.
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|err| Error::internal(&format!("config layer {}", scope.key()), err))
    }

    /// Replaces one configuration layer.
    pub async fn put_config(&self, scope: &ConfigScope, layer: &AgentConfig) -> Result<()> {
        self.fleet.put(&scope.key(), to_json(layer)?).await?;
        Ok(())
    }

    /// Deletes one configuration layer.
    pub async fn delete_config(&self, scope: &ConfigScope) -> Result<()> {
        Ok(self.fleet.delete(&scope.key()).await?)
    }

    /// The fleet freeze as last written; `None` when it never was. Whether it is in force
    /// is the caller's question ([`FleetFreeze::in_force`]), asked with its own clock.
    pub async fn get_freeze(&self) -> Result<Option<FleetFreeze>> {
        let key = kv_keys::fleet_freeze();
        let Some(bytes) = self.fleet.get(&key).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|err| Error::internal(&format!("fleet value {key}"), err))
    }

    /// Writes the fleet freeze (lifting it writes `frozen: false`, keeping who and when).
    pub async fn put_freeze(&self, freeze: &FleetFreeze) -> Result<()> {
        self.fleet
            .put(&kv_keys::fleet_freeze(), to_json(freeze)?)
            .await?;
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
pub async fn migrate_legacy_buckets(
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

/// The `tutti_fleet` key of a legacy key: `tutti_groups` keyed agents as `agent.<id>`.
fn legacy_key(bucket: &str, prefix: &str, key: &str) -> String {
    match (bucket, key.strip_prefix("agent.")) {
        ("tutti_groups", Some(agent)) => format!("{prefix}{agent}"),
        _ => format!("{prefix}{key}"),
    }
}

fn to_json(value: &impl serde::Serialize) -> Result<Bytes> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|err| Error::internal("encode KV value", err))
}
