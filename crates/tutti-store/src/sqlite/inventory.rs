//! The inventory projector and inventory queries.
//!
//! Each snapshot is diffed against the agent's current one: packages (keyed by manager,
//! name and arch) added, removed or changed version, and facts that changed, are written
//! to `inventory_changes` with the snapshot's time. The agent's first snapshot is the
//! baseline and records no changes. Volatile facts (`uptime_secs`, disks' `used_bytes`)
//! are kept current but not diffed, or every snapshot would be a change. A snapshot whose
//! stream sequence is not above the stored one is a replay and changes nothing, and so
//! does a snapshot from an agent that is not enrolled (see `agents.rs`).

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::Value;
use tutti_proto::AgentId;
use tutti_proto::catalog::INVENTORY_STREAM;
use tutti_proto::inventory::{Facts, InventorySnapshot, Package};

use super::agents;
use super::sql::{self, Filter};
use crate::error::{StoreError, StoreResult};
use crate::model::ingest::{ApplyOutcome, Sequenced};
use crate::model::inventory::{
    AgentInventory, ChangeKind, InventoryChange, ItemType, PackageHit, PackageQuery,
};
use crate::page::{Page, Paged};
use crate::time::{from_ms, to_ms};

/// (manager, name, arch) → version.
type PackageMap = BTreeMap<(String, String, String), String>;

/// Applies one batch of snapshots; the caller runs it in one transaction.
pub(super) fn apply_inventory(
    conn: &Connection,
    batch: &[Sequenced<InventorySnapshot>],
) -> StoreResult<ApplyOutcome> {
    let mut outcome = ApplyOutcome::default();
    for item in batch {
        if !agents::is_enrolled(conn, &item.message.agent_id)? {
            outcome.unknown_agents.push(item.message.agent_id.clone());
        } else if apply_snapshot(conn, item)? {
            outcome.applied += 1;
        } else {
            outcome.duplicates += 1;
        }
    }
    if let Some(max_seq) = sql::max_seq(batch) {
        sql::bump_position(conn, INVENTORY_STREAM, max_seq)?;
    }
    Ok(outcome)
}

/// Diffs and stores one snapshot; false when it is not newer than the stored one.
fn apply_snapshot(conn: &Connection, item: &Sequenced<InventorySnapshot>) -> StoreResult<bool> {
    let snapshot = &item.message;
    let agent_id = snapshot.agent_id.as_str();
    let current: Option<(u64, String)> = conn
        .prepare_cached("SELECT stream_seq, facts FROM inventory_current WHERE agent_id = ?1")?
        .query_row([agent_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    if current
        .as_ref()
        .is_some_and(|(seq, _)| *seq >= item.stream_seq)
    {
        return Ok(false);
    }
    agents::update_from_facts(conn, &snapshot.agent_id, &snapshot.facts)?;
    let new_packages = package_map(&snapshot.packages);
    let old_packages = load_packages(conn, agent_id)?;
    if let Some((_, old_facts)) = &current {
        let old_facts: Facts = sql::from_json(old_facts)?;
        record_fact_changes(conn, item, &old_facts)?;
        record_package_changes(conn, item, &old_packages, &new_packages)?;
    }
    replace_packages(conn, agent_id, &old_packages, &new_packages)?;
    conn.prepare_cached(
        "INSERT INTO inventory_current (agent_id, stream_seq, at, facts) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (agent_id) DO UPDATE SET stream_seq = excluded.stream_seq,
             at = excluded.at, facts = excluded.facts",
    )?
    .execute(params![
        agent_id,
        item.stream_seq,
        to_ms(snapshot.at),
        sql::to_json(&snapshot.facts)?
    ])?;
    Ok(true)
}

fn package_map(packages: &[Package]) -> PackageMap {
    packages
        .iter()
        .map(|package| {
            let key = (
                package.manager.clone(),
                package.name.clone(),
                package.arch.clone(),
            );
            (key, package.version.clone())
        })
        .collect()
}

fn load_packages(conn: &Connection, agent_id: &str) -> StoreResult<PackageMap> {
    let mut stmt = conn.prepare_cached(
        "SELECT manager, name, arch, version FROM inventory_packages WHERE agent_id = ?1",
    )?;
    let rows = stmt.query_map([agent_id], |row| {
        Ok(((row.get(0)?, row.get(1)?, row.get(2)?), row.get(3)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Writes only the package rows that differ.
fn replace_packages(
    conn: &Connection,
    agent_id: &str,
    old: &PackageMap,
    new: &PackageMap,
) -> StoreResult<()> {
    let mut delete = conn.prepare_cached(
        "DELETE FROM inventory_packages WHERE agent_id = ?1 AND manager = ?2 AND name = ?3 AND arch = ?4",
    )?;
    for (manager, name, arch) in old.keys().filter(|key| !new.contains_key(*key)) {
        delete.execute(params![agent_id, manager, name, arch])?;
    }
    let mut upsert = conn.prepare_cached(
        "INSERT INTO inventory_packages (agent_id, manager, name, arch, version) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (agent_id, manager, name, arch) DO UPDATE SET version = excluded.version",
    )?;
    for ((manager, name, arch), version) in new {
        if old.get(&(manager.clone(), name.clone(), arch.clone())) != Some(version) {
            upsert.execute(params![agent_id, manager, name, arch, version])?;
        }
    }
    Ok(())
}

fn record_package_changes(
    conn: &Connection,
    item: &Sequenced<InventorySnapshot>,
    old: &PackageMap,
    new: &PackageMap,
) -> StoreResult<()> {
    for (key, old_version) in old {
        let name = format!("{}/{}/{}", key.0, key.1, key.2);
        match new.get(key) {
            None => record_change(
                conn,
                item,
                ChangeKind::Removed,
                ItemType::Package,
                &name,
                Some(old_version),
                None,
            )?,
            Some(new_version) if new_version != old_version => record_change(
                conn,
                item,
                ChangeKind::Changed,
                ItemType::Package,
                &name,
                Some(old_version),
                Some(new_version),
            )?,
            Some(_) => {}
        }
    }
    for (key, new_version) in new.iter().filter(|(key, _)| !old.contains_key(*key)) {
        let name = format!("{}/{}/{}", key.0, key.1, key.2);
        record_change(
            conn,
            item,
            ChangeKind::Added,
            ItemType::Package,
            &name,
            None,
            Some(new_version),
        )?;
    }
    Ok(())
}

fn record_fact_changes(
    conn: &Connection,
    item: &Sequenced<InventorySnapshot>,
    old: &Facts,
) -> StoreResult<()> {
    let old = comparable_facts(old)?;
    let new = comparable_facts(&item.message.facts)?;
    for (field, new_value) in &new {
        let old_value = old.get(field);
        if old_value != Some(new_value) {
            let old_text = old_value.map(Value::to_string);
            let new_text = new_value.to_string();
            let kind = if old_value.is_some() {
                ChangeKind::Changed
            } else {
                ChangeKind::Added
            };
            record_change(
                conn,
                item,
                kind,
                ItemType::Fact,
                field,
                old_text.as_deref(),
                Some(&new_text),
            )?;
        }
    }
    Ok(())
}

/// Facts as a field → JSON map, without the fields that change on every snapshot.
fn comparable_facts(facts: &Facts) -> StoreResult<BTreeMap<String, Value>> {
    let Value::Object(mut fields) = serde_json::to_value(facts)? else {
        return Err(StoreError::other("facts did not serialise to an object"));
    };
    fields.remove("uptime_secs");
    if let Some(Value::Array(disks)) = fields.get_mut("disks") {
        for disk in disks.iter_mut() {
            if let Value::Object(disk) = disk {
                disk.remove("used_bytes");
            }
        }
    }
    Ok(fields.into_iter().collect())
}

fn record_change(
    conn: &Connection,
    item: &Sequenced<InventorySnapshot>,
    kind: ChangeKind,
    item_type: ItemType,
    name: &str,
    old_value: Option<&str>,
    new_value: Option<&str>,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO inventory_changes (agent_id, stream_seq, at, kind, item_type, name, old_value, new_value)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (agent_id, stream_seq, item_type, name) DO NOTHING",
    )?
    .execute(params![
        item.message.agent_id.as_str(),
        item.stream_seq,
        to_ms(item.message.at),
        kind.as_str(),
        item_type.as_str(),
        name,
        old_value,
        new_value,
    ])?;
    Ok(())
}

/// The agent's current inventory; `NotFound` before its first snapshot.
pub(super) fn get_inventory(conn: &Connection, agent_id: &AgentId) -> StoreResult<AgentInventory> {
    let row: Option<(u64, i64, String)> = conn
        .query_row(
            "SELECT stream_seq, at, facts FROM inventory_current WHERE agent_id = ?1",
            [agent_id.as_str()],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    let (stream_seq, at, facts) =
        row.ok_or_else(|| StoreError::NotFound(format!("inventory of agent {agent_id}")))?;
    let n_packages: u64 = conn.query_row(
        "SELECT COUNT(*) FROM inventory_packages WHERE agent_id = ?1",
        [agent_id.as_str()],
        |row| row.get(0),
    )?;
    Ok(AgentInventory {
        agent_id: agent_id.clone(),
        at: from_ms(at)?,
        stream_seq,
        facts: sql::from_json(&facts)?,
        n_packages,
    })
}

/// An agent's packages by name, optionally those whose name contains `search`.
pub(super) fn list_agent_packages(
    conn: &Connection,
    agent_id: &AgentId,
    search: Option<&str>,
    page: Page,
) -> StoreResult<Paged<Package>> {
    let mut filter = Filter::default();
    filter.and("agent_id = ?", agent_id.as_str().to_string());
    if let Some(search) = search {
        filter.and("name LIKE ? ESCAPE '\\'", sql::contains_pattern(search));
    }
    sql::paged(
        conn,
        "name, version, arch, manager",
        "FROM inventory_packages",
        "name, manager, arch",
        &filter,
        page,
        decode_package,
    )
}

fn decode_package(row: &Row<'_>) -> StoreResult<Package> {
    Ok(Package {
        name: row.get(0)?,
        version: row.get(1)?,
        arch: row.get(2)?,
        manager: row.get(3)?,
    })
}

/// An agent's inventory changes, newest first.
pub(super) fn list_inventory_changes(
    conn: &Connection,
    agent_id: &AgentId,
    page: Page,
) -> StoreResult<Paged<InventoryChange>> {
    let mut filter = Filter::default();
    filter.and("agent_id = ?", agent_id.as_str().to_string());
    sql::paged(
        conn,
        "agent_id, at, stream_seq, kind, item_type, name, old_value, new_value",
        "FROM inventory_changes",
        "stream_seq DESC, item_type, name",
        &filter,
        page,
        decode_change,
    )
}

fn decode_change(row: &Row<'_>) -> StoreResult<InventoryChange> {
    let kind: String = row.get(3)?;
    let item_type: String = row.get(4)?;
    Ok(InventoryChange {
        agent_id: sql::parse_id(&row.get::<_, String>(0)?)?,
        at: from_ms(row.get(1)?)?,
        stream_seq: row.get(2)?,
        kind: ChangeKind::parse(&kind)
            .ok_or_else(|| StoreError::other(format!("stored change kind {kind:?} is unknown")))?,
        item_type: ItemType::parse(&item_type).ok_or_else(|| {
            StoreError::other(format!("stored item type {item_type:?} is unknown"))
        })?,
        name: row.get(5)?,
        old_value: row.get(6)?,
        new_value: row.get(7)?,
    })
}

/// Agents that have a package, fleet-wide.
pub(super) fn search_packages(
    conn: &Connection,
    query: &PackageQuery,
) -> StoreResult<Paged<PackageHit>> {
    let mut filter = Filter::default();
    filter.and("p.name = ?", query.name.clone());
    if let Some(version) = &query.version {
        filter.and("p.version = ?", version.clone());
    }
    sql::paged(
        conn,
        "p.agent_id, a.hostname, p.name, p.version, p.arch, p.manager",
        "FROM inventory_packages p JOIN agents a ON a.agent_id = p.agent_id",
        "p.agent_id, p.manager, p.arch",
        &filter,
        query.page,
        |row| {
            Ok(PackageHit {
                agent_id: sql::parse_id(&row.get::<_, String>(0)?)?,
                hostname: row.get(1)?,
                package: Package {
                    name: row.get(2)?,
                    version: row.get(3)?,
                    arch: row.get(4)?,
                    manager: row.get(5)?,
                },
            })
        },
    )
}
