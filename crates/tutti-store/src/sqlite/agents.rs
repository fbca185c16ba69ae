//! Agents, heartbeats, enrollment, groups and membership.
//!
//! Heartbeats arrive over core NATS and are applied in micro-batches by
//! [`apply_heartbeats`]: one conditional update per heartbeat that never moves
//! `last_heartbeat_at` backwards, so a late heartbeat from a batch that was retried
//! changes nothing.
//!
//! Only enrollment ([`enroll_agent`]) creates an agent row. A heartbeat, result, event or
//! inventory snapshot from an id without an enrolled row ([`is_enrolled`]: never enrolled,
//! or deleted) changes nothing and is reported in `ApplyOutcome::unknown_agents`, so a
//! credential that may publish as any id cannot add machines that `--all` then targets.
//! Rows with no enrollment time exist only in databases written by older servers, which
//! created agents from heartbeats; they are listed but receive nothing until the agent
//! enrolls (which completes the row) or an operator deletes them.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params};
use tutti_proto::heartbeat::Heartbeat;
use tutti_proto::inventory::Facts;
use tutti_proto::{AgentId, GroupName};

use super::sql::{self, Filter};
use super::tokens;
use crate::error::{StoreError, StoreResult};
use crate::model::agents::{
    Agent, AgentQuery, AgentSort, Group, HeartbeatStats, Liveness, NewAgent,
};
use crate::model::ingest::ApplyOutcome;
use crate::page::{Page, Paged};
use crate::time::{from_ms, opt_from_ms, to_ms};

/// Applies a micro-batch of heartbeats; the caller runs it in one transaction.
pub(super) fn apply_heartbeats(
    conn: &Connection,
    batch: &[Heartbeat],
) -> StoreResult<ApplyOutcome> {
    let mut stmt = conn.prepare_cached(
        "UPDATE agents SET
             hostname = CASE WHEN ?2 <> '' THEN ?2 ELSE hostname END,
             version = CASE WHEN ?3 <> '' THEN ?3 ELSE version END,
             last_heartbeat_at = ?4, uptime_secs = ?5, rss_bytes = ?6, cpu_percent = ?7,
             queue_depth = ?8, outbox_depth = ?9, command_cursor = ?10,
             trusted_keys = CASE WHEN ?11 <> '' THEN ?11 ELSE trusted_keys END
         WHERE agent_id = ?1 AND enrolled_at IS NOT NULL
             AND (last_heartbeat_at IS NULL OR last_heartbeat_at <= ?4)",
    )?;
    let mut outcome = ApplyOutcome::default();
    for heartbeat in batch {
        let changed = stmt.execute(params![
            heartbeat.agent_id.as_str(),
            heartbeat.hostname,
            heartbeat.version,
            to_ms(heartbeat.at),
            heartbeat.uptime_secs,
            heartbeat.rss_bytes,
            f64::from(heartbeat.cpu_percent),
            heartbeat.queue_depth,
            heartbeat.outbox_depth,
            heartbeat.cursor,
            trusted_keys_text(heartbeat),
        ])?;
        if changed > 0 {
            outcome.applied += 1;
        } else if is_enrolled(conn, &heartbeat.agent_id)? {
            outcome.duplicates += 1;
        } else {
            outcome.unknown_agents.push(heartbeat.agent_id.clone());
        }
    }
    Ok(outcome)
}

/// The key ids of a heartbeat as stored: separated by spaces (ids are hex).
fn trusted_keys_text(heartbeat: &Heartbeat) -> String {
    let ids: Vec<String> = heartbeat
        .trusted_keys
        .iter()
        .map(|id| id.to_string())
        .collect();
    ids.join(" ")
}

/// Enrolled agents, and how many of them listed `key_id` as trusted in their last
/// heartbeat.
pub(super) fn count_trusting(conn: &Connection, key_id: &str) -> StoreResult<(u64, u64)> {
    let pattern = format!("% {key_id} %");
    let (trusting, enrolled) = conn.query_row(
        "SELECT COALESCE(SUM(' ' || trusted_keys || ' ' LIKE ?1), 0), COUNT(*)
         FROM agents WHERE enrolled_at IS NOT NULL",
        [pattern],
        |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
    )?;
    Ok((
        u64::try_from(trusting).unwrap_or(0),
        u64::try_from(enrolled).unwrap_or(0),
    ))
}

/// Whether an enrolled agent has this id: the one condition every projector checks before
/// a message may change anything.
pub(super) fn is_enrolled(conn: &Connection, agent_id: &AgentId) -> StoreResult<bool> {
    let mut stmt = conn
        .prepare_cached("SELECT 1 FROM agents WHERE agent_id = ?1 AND enrolled_at IS NOT NULL")?;
    Ok(stmt.exists([agent_id.as_str()])?)
}

/// Refreshes what inventory facts say about an agent; the caller checked that it is
/// enrolled, and an empty fact keeps the stored value.
pub(super) fn update_from_facts(
    conn: &Connection,
    agent_id: &AgentId,
    facts: &Facts,
) -> StoreResult<()> {
    conn.prepare_cached(
        "UPDATE agents SET
             hostname = CASE WHEN ?2 <> '' THEN ?2 ELSE hostname END,
             os = CASE WHEN ?3 <> '' THEN ?3 ELSE os END,
             os_version = CASE WHEN ?4 <> '' THEN ?4 ELSE os_version END,
             arch = CASE WHEN ?5 <> '' THEN ?5 ELSE arch END
         WHERE agent_id = ?1",
    )?
    .execute(params![
        agent_id.as_str(),
        facts.hostname,
        facts.os_name,
        facts.os_version,
        facts.arch,
    ])?;
    Ok(())
}

/// Consumes one use of the enrollment token with hash `token_hash` and enrolls the agent,
/// atomically, making it a member of the token's groups; returns the agent's groups. An
/// invalid, expired, revoked or used-up token is `NotFound` (the caller must not tell
/// which); an agent that is already enrolled is `Conflict`.
///
/// A token without groups leaves the membership alone: a row an older server created from
/// heartbeats (not yet enrolled) may already have been put in groups by an operator.
pub(super) fn enroll_agent(
    conn: &Connection,
    token_hash: &str,
    agent: &NewAgent,
) -> StoreResult<Vec<GroupName>> {
    let token_groups = tokens::consume(conn, token_hash, agent.enrolled_at)?;
    let changed = conn.execute(
        "INSERT INTO agents (agent_id, hostname, os, arch, version, enrolled_at, first_seen_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT (agent_id) DO UPDATE SET hostname = excluded.hostname, os = excluded.os,
             arch = excluded.arch, version = excluded.version, enrolled_at = excluded.enrolled_at
         WHERE agents.enrolled_at IS NULL",
        params![
            agent.agent_id.as_str(),
            agent.hostname,
            agent.os,
            agent.arch,
            agent.version,
            to_ms(agent.enrolled_at)
        ],
    )?;
    if changed == 0 {
        return Err(StoreError::Conflict(format!(
            "agent {} is already enrolled",
            agent.agent_id
        )));
    }
    if let Some(public_key) = &agent.broker_public_key {
        super::identities::record_identity(conn, &agent.agent_id, public_key, agent.enrolled_at)?;
    }
    if !token_groups.is_empty() {
        set_agent_groups(conn, &agent.agent_id, &token_groups, agent.enrolled_at)?;
    }
    groups_of(conn, &agent.agent_id)
}

const AGENT_COLUMNS: &str = "a.agent_id, a.hostname, a.os, a.os_version, a.arch, a.version,
    a.enrolled_at, a.first_seen_at, a.last_heartbeat_at, a.uptime_secs, a.rss_bytes,
    a.cpu_percent, a.queue_depth, a.outbox_depth, a.command_cursor";

fn decode_agent(
    conn: &Connection,
    row: &Row<'_>,
    online_since: jiff::Timestamp,
) -> StoreResult<Agent> {
    let agent_id: AgentId = sql::parse_id(&row.get::<_, String>(0)?)?;
    let last_heartbeat_at = opt_from_ms(row.get(8)?)?;
    let last_heartbeat = match last_heartbeat_at {
        None => None,
        Some(_) => Some(HeartbeatStats {
            uptime_secs: row.get::<_, Option<u64>>(9)?.unwrap_or_default(),
            rss_bytes: row.get::<_, Option<u64>>(10)?.unwrap_or_default(),
            cpu_percent: row.get::<_, Option<f64>>(11)?.unwrap_or_default(),
            queue_depth: row.get::<_, Option<u64>>(12)?.unwrap_or_default(),
            outbox_depth: row.get::<_, Option<u64>>(13)?.unwrap_or_default(),
            cursor: row.get::<_, Option<u64>>(14)?.unwrap_or_default(),
        }),
    };
    Ok(Agent {
        groups: groups_of(conn, &agent_id)?,
        agent_id,
        hostname: row.get(1)?,
        os: row.get(2)?,
        os_version: row.get(3)?,
        arch: row.get(4)?,
        version: row.get(5)?,
        enrolled_at: opt_from_ms(row.get(6)?)?,
        first_seen_at: from_ms(row.get(7)?)?,
        liveness: Liveness::judge(last_heartbeat_at, online_since),
        last_heartbeat_at,
        last_heartbeat,
    })
}

fn groups_of(conn: &Connection, agent_id: &AgentId) -> StoreResult<Vec<GroupName>> {
    let mut stmt = conn.prepare_cached(
        "SELECT group_name FROM agent_groups WHERE agent_id = ?1 ORDER BY position",
    )?;
    let names = stmt.query_map([agent_id.as_str()], |row| row.get::<_, String>(0))?;
    let mut groups = Vec::new();
    for name in names {
        groups.push(sql::parse_id(&name?)?);
    }
    Ok(groups)
}

/// One agent with its groups.
pub(super) fn get_agent(
    conn: &Connection,
    agent_id: &AgentId,
    online_since: jiff::Timestamp,
) -> StoreResult<Agent> {
    conn.query_row(
        &format!("SELECT {AGENT_COLUMNS} FROM agents a WHERE a.agent_id = ?1"),
        [agent_id.as_str()],
        |row| Ok(decode_agent(conn, row, online_since)),
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("agent {agent_id}")))?
}

/// Agents matching `query`.
pub(super) fn list_agents(conn: &Connection, query: &AgentQuery) -> StoreResult<Paged<Agent>> {
    let filter = agent_filter(query);
    let column = match query.sort {
        AgentSort::Id => "a.agent_id",
        AgentSort::Hostname => "a.hostname",
        AgentSort::LastHeartbeat => "a.last_heartbeat_at",
        AgentSort::EnrolledAt => "a.enrolled_at",
    };
    let dir = crate::page::dir_sql(query.dir);
    let order = format!("{column} {dir} NULLS LAST, a.agent_id {dir}");
    sql::paged(
        conn,
        AGENT_COLUMNS,
        "FROM agents a",
        &order,
        &filter,
        query.page,
        |row| decode_agent(conn, row, query.online_since),
    )
}

fn agent_filter(query: &AgentQuery) -> Filter {
    let mut filter = Filter::default();
    let online_since = to_ms(query.online_since);
    match query.liveness {
        Some(Liveness::Online) => filter.and("a.last_heartbeat_at >= ?", online_since),
        Some(Liveness::Offline) => filter.and("a.last_heartbeat_at < ?", online_since),
        Some(Liveness::Never) => filter.and_many("a.last_heartbeat_at IS NULL", Vec::new()),
        None => {}
    }
    if let Some(group) = &query.group {
        filter.and(
            "a.agent_id IN (SELECT agent_id FROM agent_groups WHERE group_name = ?)",
            group.as_str().to_string(),
        );
    }
    if let Some(os) = &query.os {
        filter.and("a.os = ? COLLATE NOCASE", os.clone());
    }
    if let Some(search) = query
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let pattern = sql::contains_pattern(search);
        filter.and_many(
            "(a.agent_id LIKE ? ESCAPE '\\' OR a.hostname LIKE ? ESCAPE '\\')",
            vec![Value::from(pattern.clone()), Value::from(pattern)],
        );
    }
    filter
}

/// Deletes the agent, its membership and inventory. Its run history stays.
pub(super) fn delete_agent(conn: &Connection, agent_id: &AgentId) -> StoreResult<()> {
    let deleted = conn.execute(
        "DELETE FROM agents WHERE agent_id = ?1",
        [agent_id.as_str()],
    )?;
    if deleted == 0 {
        return Err(StoreError::NotFound(format!("agent {agent_id}")));
    }
    Ok(())
}

/// Replaces the agent's groups, in order, creating groups that do not exist.
pub(super) fn set_agent_groups(
    conn: &Connection,
    agent_id: &AgentId,
    groups: &[GroupName],
    now: jiff::Timestamp,
) -> StoreResult<()> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM agents WHERE agent_id = ?1")?;
    if !stmt.exists([agent_id.as_str()])? {
        return Err(StoreError::NotFound(format!("agent {agent_id}")));
    }
    conn.execute(
        "DELETE FROM agent_groups WHERE agent_id = ?1",
        [agent_id.as_str()],
    )?;
    let mut ensure = conn.prepare_cached(
        "INSERT INTO groups (group_name, created_at) VALUES (?1, ?2) ON CONFLICT (group_name) DO NOTHING",
    )?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO agent_groups (agent_id, group_name, position) VALUES (?1, ?2, ?3)
         ON CONFLICT (agent_id, group_name) DO NOTHING",
    )?;
    for (position, group) in groups.iter().enumerate() {
        ensure.execute(params![group.as_str(), to_ms(now)])?;
        insert.execute(params![agent_id.as_str(), group.as_str(), position as i64])?;
    }
    Ok(())
}

/// Creates a group; `Conflict` when it exists.
pub(super) fn create_group(
    conn: &Connection,
    group: &GroupName,
    description: &str,
    now: jiff::Timestamp,
) -> StoreResult<()> {
    let inserted = conn.execute(
        "INSERT INTO groups (group_name, description, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (group_name) DO NOTHING",
        params![group.as_str(), description, to_ms(now)],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "group {group} already exists"
        )));
    }
    Ok(())
}

/// Deletes a group and its memberships.
pub(super) fn delete_group(conn: &Connection, group: &GroupName) -> StoreResult<()> {
    let deleted = conn.execute("DELETE FROM groups WHERE group_name = ?1", [group.as_str()])?;
    if deleted == 0 {
        return Err(StoreError::NotFound(format!("group {group}")));
    }
    Ok(())
}

/// Groups by name, with their member counts.
pub(super) fn list_groups(conn: &Connection, page: Page) -> StoreResult<Paged<Group>> {
    sql::paged(
        conn,
        "g.group_name, g.description, g.created_at,
         (SELECT COUNT(*) FROM agent_groups m WHERE m.group_name = g.group_name)",
        "FROM groups g",
        "g.group_name",
        &Filter::default(),
        page,
        |row| {
            Ok(Group {
                group_name: sql::parse_id(&row.get::<_, String>(0)?)?,
                description: row.get(1)?,
                created_at: from_ms(row.get(2)?)?,
                n_agents: row.get(3)?,
            })
        },
    )
}
