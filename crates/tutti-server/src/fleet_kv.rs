//! Writes to the KV buckets agents follow: group membership (`tutti_groups`), revocations
//! (`tutti_revocations`), configuration layers (`tutti_config`) and the fleet freeze
//! (`tutti_fleet`).
//!
//! The store holds the server's view for queries; these buckets are what agents act on,
//! so every change is written to both, store first (so a failed KV write can be retried by
//! repeating the request, which is idempotent). Keys come from `tutti_proto::kv_keys` only.

use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use tutti_kv::Bucket;
use tutti_proto::catalog::{CONFIG_BUCKET, FLEET_BUCKET, GROUPS_BUCKET, REVOCATIONS_BUCKET};
use tutti_proto::config::AgentConfig;
use tutti_proto::fleet::{FleetFreeze, GroupMembership, Revocation};
use tutti_proto::{AgentId, GroupName, JobId, RunId, kv_keys};

use crate::error::{Error, Result};

/// The fleet-state buckets, opened once at start.
#[derive(Debug, Clone)]
pub struct FleetKv {
    groups: Bucket,
    revocations: Bucket,
    config: Bucket,
    fleet: Bucket,
}

/// A configuration layer's scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigScope {
    /// `global`.
    Global,
    /// `group.<g>`.
    Group(GroupName),
    /// `agent.<id>`.
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
    /// Opens the buckets (they exist once `ensure_resources` ran).
    pub async fn open(js: &jetstream::Context, timeout: Duration) -> anyhow::Result<FleetKv> {
        // Boxed one by one: inline, the opens made the server's start future large enough
        // for clippy's `large_futures`.
        let open = move |name| Box::pin(Bucket::open(js, name, timeout));
        Ok(FleetKv {
            groups: open(GROUPS_BUCKET).await?,
            revocations: open(REVOCATIONS_BUCKET).await?,
            config: open(CONFIG_BUCKET).await?,
            fleet: open(FLEET_BUCKET).await?,
        })
    }

    /// Writes an agent's group membership, which its command consumer follows.
    pub async fn put_groups(&self, agent_id: &AgentId, groups: &[GroupName]) -> Result<()> {
        let membership = GroupMembership {
            groups: groups.to_vec(),
        };
        let key = kv_keys::groups_agent(agent_id);
        self.groups.put(&key, to_json(&membership)?).await?;
        Ok(())
    }

    /// Removes an agent's membership (a deleted agent).
    pub async fn delete_groups(&self, agent_id: &AgentId) -> Result<()> {
        Ok(self.groups.delete(&kv_keys::groups_agent(agent_id)).await?)
    }

    /// Revokes a run: agents that catch up later skip it.
    pub async fn revoke_run(&self, run_id: &RunId, revocation: &Revocation) -> Result<()> {
        let key = kv_keys::revocation_run(run_id);
        self.revocations.put(&key, to_json(revocation)?).await?;
        Ok(())
    }

    /// Revokes a job: queued copies of every run of it are skipped.
    pub async fn revoke_job(&self, job_id: &JobId, revocation: &Revocation) -> Result<()> {
        let key = kv_keys::revocation_job(job_id);
        self.revocations.put(&key, to_json(revocation)?).await?;
        Ok(())
    }

    /// One configuration layer; `None` when the scope sets nothing.
    pub async fn get_config(&self, scope: &ConfigScope) -> Result<Option<AgentConfig>> {
        let Some(bytes) = self.config.get(&scope.key()).await? else {
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
        self.config.put(&scope.key(), to_json(layer)?).await?;
        Ok(())
    }

    /// Deletes one configuration layer.
    pub async fn delete_config(&self, scope: &ConfigScope) -> Result<()> {
        Ok(self.config.delete(&scope.key()).await?)
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

fn to_json(value: &impl serde::Serialize) -> Result<Bytes> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|err| Error::internal("encode KV value", err))
}
