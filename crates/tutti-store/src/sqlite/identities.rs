//! `broker_identities`: the NATS user key issued to each agent at enrollment, and its
//! revocation. The server rebuilds the account JWT the broker enforces from
//! [`revoked_identities`], so a revoked key stays listed after its agent is gone. The
//! async methods of [`SqliteStore`] for them are here too, beside their SQL.

use rusqlite::{Connection, OptionalExtension, params};
use tutti_proto::{AgentId, KeyId};

use jiff::Timestamp;

use super::SqliteStore;
use crate::error::{StoreError, StoreResult};
use crate::model::identities::{BrokerIdentity, KeyTrust};
use crate::time::{from_ms, to_ms};

impl SqliteStore {
    /// See [`crate::Store::record_broker_identity`].
    pub async fn record_broker_identity(
        &self,
        agent_id: &AgentId,
        public_key: &str,
        issued_at: Timestamp,
    ) -> StoreResult<()> {
        let (agent_id, public_key) = (agent_id.clone(), public_key.to_string());
        self.write(move |tx| record_identity(tx, &agent_id, &public_key, issued_at))
            .await
    }

    /// See [`crate::Store::revoke_broker_identities`].
    pub async fn revoke_broker_identities(
        &self,
        agent_id: &AgentId,
        at: Timestamp,
    ) -> StoreResult<Vec<String>> {
        let agent_id = agent_id.clone();
        self.write(move |tx| revoke_identities(tx, &agent_id, at))
            .await
    }

    /// See [`crate::Store::agents_trusting_key`].
    pub async fn agents_trusting_key(&self, key_id: &KeyId) -> StoreResult<KeyTrust> {
        let key_id = key_id.to_string();
        let (trusting, enrolled) = self
            .read(move |tx| super::agents::count_trusting(tx, &key_id))
            .await?;
        Ok(KeyTrust { trusting, enrolled })
    }

    /// See [`crate::Store::revoked_broker_identities`].
    pub async fn revoked_broker_identities(&self) -> StoreResult<Vec<BrokerIdentity>> {
        self.read(|tx| revoked_identities(tx)).await
    }

    /// See [`crate::Store::broker_identities_of`].
    pub async fn broker_identities_of(
        &self,
        agent_id: &AgentId,
    ) -> StoreResult<Vec<BrokerIdentity>> {
        let agent_id = agent_id.clone();
        self.read(move |tx| identities_of(tx, &agent_id)).await
    }
}

/// Records a newly issued key; a key issued before (to any agent) is a conflict, so one
/// key pair cannot stand for two agents.
pub(super) fn record_identity(
    conn: &Connection,
    agent_id: &AgentId,
    public_key: &str,
    issued_at: jiff::Timestamp,
) -> StoreResult<()> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM broker_identities WHERE public_key = ?1")?
        .query_row([public_key], |_| Ok(()))
        .optional()?
        .is_some();
    if exists {
        return Err(StoreError::Conflict(format!(
            "the broker key {public_key} was issued before; an agent must bring a new key"
        )));
    }
    conn.prepare_cached(
        "INSERT INTO broker_identities (public_key, agent_id, issued_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![public_key, agent_id.as_str(), to_ms(issued_at)])?;
    Ok(())
}

/// Revokes every key of `agent_id` not revoked yet; returns the keys revoked now.
pub(super) fn revoke_identities(
    conn: &Connection,
    agent_id: &AgentId,
    at: jiff::Timestamp,
) -> StoreResult<Vec<String>> {
    let keys: Vec<String> = conn
        .prepare_cached(
            "SELECT public_key FROM broker_identities WHERE agent_id = ?1 AND revoked_at IS NULL",
        )?
        .query_map([agent_id.as_str()], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    conn.prepare_cached(
        "UPDATE broker_identities SET revoked_at = ?2 WHERE agent_id = ?1 AND revoked_at IS NULL",
    )?
    .execute(params![agent_id.as_str(), to_ms(at)])?;
    Ok(keys)
}

/// Every revoked key with its revocation time, oldest first.
pub(super) fn revoked_identities(conn: &Connection) -> StoreResult<Vec<BrokerIdentity>> {
    select(
        conn,
        "SELECT public_key, agent_id, issued_at, revoked_at FROM broker_identities
         WHERE revoked_at IS NOT NULL ORDER BY revoked_at, public_key",
        [],
    )
}

/// The keys issued to `agent_id`, newest first.
pub(super) fn identities_of(
    conn: &Connection,
    agent_id: &AgentId,
) -> StoreResult<Vec<BrokerIdentity>> {
    select(
        conn,
        "SELECT public_key, agent_id, issued_at, revoked_at FROM broker_identities
         WHERE agent_id = ?1 ORDER BY issued_at DESC, public_key",
        [agent_id.as_str()],
    )
}

fn select<P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
) -> StoreResult<Vec<BrokerIdentity>> {
    let rows: Vec<(String, String, i64, Option<i64>)> = conn
        .prepare_cached(sql)?
        .query_map(params, |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(public_key, agent_id, issued_at, revoked_at)| {
            Ok(BrokerIdentity {
                public_key,
                agent_id: AgentId::parse(&agent_id).map_err(|err| {
                    StoreError::other(format!("stored agent id {agent_id:?}: {err}"))
                })?,
                issued_at: from_ms(issued_at)?,
                revoked_at: revoked_at.map(from_ms).transpose()?,
            })
        })
        .collect()
}
