//! Schedules (create, replace, enable, delete, list) and their fires, keyed by (schedule,
//! fire time) so that a fire claimed once is never claimed again, by this server or by the
//! next leader after a takeover.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::sql::{self, Filter};
use crate::error::{StoreError, StoreResult};
use crate::model::schedules::{PutScheduleOutcome, Schedule, ScheduleDraft, ScheduleFire};
use crate::page::{Page, Paged};
use crate::time::{from_ms, to_ms};

const COLUMNS: &str = "name, definition, source_yaml, enabled, created_at, created_by, updated_at";

/// Creates a schedule, or replaces its definition, text and enabled flag.
pub(super) fn put(
    conn: &Connection,
    draft: &ScheduleDraft,
    actor: &str,
    now: jiff::Timestamp,
) -> StoreResult<PutScheduleOutcome> {
    let current: Option<(String, String, bool, Option<i64>)> = conn
        .query_row(
            "SELECT definition, source_yaml, enabled, deleted_at FROM schedules WHERE name = ?1",
            [&draft.name],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .optional()?;
    let definition = sql::to_json(&draft.definition)?;
    let outcome = match current {
        None => {
            conn.execute(
                "INSERT INTO schedules (name, definition, source_yaml, enabled, created_at,
                     created_by, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5)",
                params![
                    draft.name,
                    definition,
                    draft.source_yaml,
                    draft.enabled,
                    to_ms(now),
                    actor
                ],
            )?;
            return Ok(PutScheduleOutcome::Created);
        }
        Some((_, _, _, Some(_))) => PutScheduleOutcome::Created,
        Some((stored, text, enabled, None)) => {
            let same = sql::from_json::<serde_json::Value>(&stored)? == draft.definition
                && enabled == draft.enabled;
            match (same, text == draft.source_yaml) {
                (true, true) => return Ok(PutScheduleOutcome::Unchanged),
                (true, false) => PutScheduleOutcome::Unchanged,
                (false, _) => PutScheduleOutcome::Changed,
            }
        }
    };
    conn.execute(
        "UPDATE schedules SET definition = ?2, source_yaml = ?3, enabled = ?4, updated_at = ?5,
             deleted_at = NULL
         WHERE name = ?1",
        params![
            draft.name,
            definition,
            draft.source_yaml,
            draft.enabled,
            to_ms(now)
        ],
    )?;
    Ok(outcome)
}

/// A live schedule; `NotFound` when absent or deleted.
pub(super) fn get(conn: &Connection, name: &str) -> StoreResult<Schedule> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM schedules WHERE name = ?1 AND deleted_at IS NULL"),
        [name],
        |row| Ok(decode(row)),
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("schedule {name}")))?
}

/// Live schedules by name; only enabled ones when asked.
pub(super) fn list(
    conn: &Connection,
    only_enabled: bool,
    page: Page,
) -> StoreResult<Paged<Schedule>> {
    let mut filter = Filter::default();
    filter.and_many("deleted_at IS NULL", Vec::new());
    if only_enabled {
        filter.and_many("enabled", Vec::new());
    }
    sql::paged(
        conn,
        COLUMNS,
        "FROM schedules",
        "name",
        &filter,
        page,
        decode,
    )
}

/// Turns a schedule on or off; `NotFound` when absent or deleted.
pub(super) fn set_enabled(
    conn: &Connection,
    name: &str,
    enabled: bool,
    now: jiff::Timestamp,
) -> StoreResult<()> {
    let changed = conn.execute(
        "UPDATE schedules SET enabled = ?2, updated_at = ?3 WHERE name = ?1 AND deleted_at IS NULL",
        params![name, enabled, to_ms(now)],
    )?;
    match changed {
        0 => Err(StoreError::NotFound(format!("schedule {name}"))),
        _ => Ok(()),
    }
}

/// Deletes a schedule (its fires and runs stay); `NotFound` when absent or deleted.
pub(super) fn delete(conn: &Connection, name: &str, now: jiff::Timestamp) -> StoreResult<()> {
    let changed = conn.execute(
        "UPDATE schedules SET deleted_at = ?2 WHERE name = ?1 AND deleted_at IS NULL",
        params![name, to_ms(now)],
    )?;
    match changed {
        0 => Err(StoreError::NotFound(format!("schedule {name}"))),
        _ => Ok(()),
    }
}

/// Claims a fire: `true` when this (schedule, fire time) was not claimed before.
pub(super) fn claim_fire(
    conn: &Connection,
    name: &str,
    fire_at: jiff::Timestamp,
    now: jiff::Timestamp,
) -> StoreResult<bool> {
    let inserted = conn.execute(
        "INSERT INTO schedule_fires (schedule_name, fire_at, fired_at) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
        params![name, to_ms(fire_at), to_ms(now)],
    )?;
    Ok(inserted == 1)
}

/// Records what a claimed fire became: its run, or why it was skipped.
pub(super) fn settle_fire(
    conn: &Connection,
    name: &str,
    fire_at: jiff::Timestamp,
    run_id: Option<&str>,
    skipped: Option<&str>,
) -> StoreResult<()> {
    let changed = conn.execute(
        "UPDATE schedule_fires SET run_id = ?3, skipped = ?4
         WHERE schedule_name = ?1 AND fire_at = ?2",
        params![name, to_ms(fire_at), run_id, skipped],
    )?;
    match changed {
        0 => Err(StoreError::NotFound(format!("fire of {name} at {fire_at}"))),
        _ => Ok(()),
    }
}

/// A schedule's fires, newest first.
pub(super) fn list_fires(
    conn: &Connection,
    name: &str,
    page: Page,
) -> StoreResult<Paged<ScheduleFire>> {
    let mut filter = Filter::default();
    filter.and("schedule_name = ?", name.to_string());
    sql::paged(
        conn,
        "schedule_name, fire_at, fired_at, run_id, skipped",
        "FROM schedule_fires",
        "fire_at DESC",
        &filter,
        page,
        decode_fire,
    )
}

fn decode(row: &Row<'_>) -> StoreResult<Schedule> {
    Ok(Schedule {
        name: row.get(0)?,
        definition: sql::from_json(&row.get::<_, String>(1)?)?,
        source_yaml: row.get(2)?,
        enabled: row.get(3)?,
        created_at: from_ms(row.get(4)?)?,
        created_by: row.get(5)?,
        updated_at: from_ms(row.get(6)?)?,
    })
}

fn decode_fire(row: &Row<'_>) -> StoreResult<ScheduleFire> {
    let run_id: Option<String> = row.get(3)?;
    Ok(ScheduleFire {
        schedule_name: row.get(0)?,
        fire_at: from_ms(row.get(1)?)?,
        fired_at: from_ms(row.get(2)?)?,
        run_id: run_id.map(|id| sql::parse_id(&id)).transpose()?,
        skipped: row.get(4)?,
    })
}
