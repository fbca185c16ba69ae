//! Jobs and their version history.
//!
//! A new version is created only when the definition changes. A change of the manifest
//! text alone (a comment, formatting) updates the stored source of the current version
//! without bumping it: schedules that run "job X at version V once per agent" must not
//! re-run the fleet because someone fixed a typo in a comment.

use rusqlite::{Connection, OptionalExtension, Row, params};
use tutti_proto::JobId;

use super::runs;
use super::sql::{self, Filter};
use crate::error::{StoreError, StoreResult};
use crate::model::jobs::{Job, JobDraft, JobVersion, PutJobOutcome};
use crate::page::{Page, Paged};
use crate::time::{from_ms, opt_from_ms, to_ms};

/// Creates the job or a new version of it when the definition changed.
pub(super) fn put_job(
    conn: &Connection,
    draft: &JobDraft,
    actor: &str,
    now: jiff::Timestamp,
) -> StoreResult<PutJobOutcome> {
    let current: Option<(i64, String, Option<i64>)> = conn
        .query_row(
            "SELECT version, definition, deleted_at FROM jobs WHERE job_id = ?1",
            [draft.job_id.as_str()],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    let definition = sql::to_json(&draft.definition)?;
    let Some((version, stored, deleted_at)) = current else {
        insert_job(conn, draft, &definition, actor, now)?;
        return Ok(PutJobOutcome {
            version: 1,
            changed: true,
        });
    };
    let same = sql::from_json::<serde_json::Value>(&stored)? == draft.definition;
    if same && deleted_at.is_none() {
        update_source(conn, draft, version)?;
        return Ok(PutJobOutcome {
            version: sql::to_version(version)?,
            changed: false,
        });
    }
    let next = version + 1;
    conn.execute(
        "UPDATE jobs SET version = ?2, definition = ?3, source_yaml = ?4, anonymous = ?5,
             updated_at = ?6, deleted_at = NULL
         WHERE job_id = ?1",
        params![
            draft.job_id.as_str(),
            next,
            definition,
            draft.source_yaml,
            draft.anonymous,
            to_ms(now)
        ],
    )?;
    insert_version(conn, draft, next, &definition, actor, now)?;
    Ok(PutJobOutcome {
        version: sql::to_version(next)?,
        changed: true,
    })
}

fn insert_job(
    conn: &Connection,
    draft: &JobDraft,
    definition: &str,
    actor: &str,
    now: jiff::Timestamp,
) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO jobs (job_id, version, definition, source_yaml, anonymous, created_at, updated_at)
         VALUES (?1, 1, ?2, ?3, ?4, ?5, ?5)",
        params![draft.job_id.as_str(), definition, draft.source_yaml, draft.anonymous, to_ms(now)],
    )?;
    insert_version(conn, draft, 1, definition, actor, now)
}

fn insert_version(
    conn: &Connection,
    draft: &JobDraft,
    version: i64,
    definition: &str,
    actor: &str,
    now: jiff::Timestamp,
) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO job_versions (job_id, version, definition, source_yaml, created_at, created_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![draft.job_id.as_str(), version, definition, draft.source_yaml, to_ms(now), actor],
    )?;
    Ok(())
}

fn update_source(conn: &Connection, draft: &JobDraft, version: i64) -> StoreResult<()> {
    conn.execute(
        "UPDATE jobs SET source_yaml = ?2 WHERE job_id = ?1",
        params![draft.job_id.as_str(), draft.source_yaml],
    )?;
    conn.execute(
        "UPDATE job_versions SET source_yaml = ?3 WHERE job_id = ?1 AND version = ?2",
        params![draft.job_id.as_str(), version, draft.source_yaml],
    )?;
    Ok(())
}

const JOB_COLUMNS: &str =
    "job_id, version, definition, source_yaml, anonymous, created_at, updated_at, revoked_at";

fn decode_job(row: &Row<'_>) -> StoreResult<Job> {
    Ok(Job {
        job_id: sql::parse_id(&row.get::<_, String>(0)?)?,
        version: sql::to_version(row.get(1)?)?,
        definition: sql::from_json(&row.get::<_, String>(2)?)?,
        source_yaml: row.get(3)?,
        anonymous: row.get(4)?,
        created_at: from_ms(row.get(5)?)?,
        updated_at: from_ms(row.get(6)?)?,
        revoked_at: opt_from_ms(row.get(7)?)?,
    })
}

/// The job at its current version; deleted jobs are `NotFound`.
pub(super) fn get_job(conn: &Connection, job_id: &JobId) -> StoreResult<Job> {
    conn.query_row(
        &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ?1 AND deleted_at IS NULL"),
        [job_id.as_str()],
        |row| Ok(decode_job(row)),
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("job {job_id}")))?
}

/// Jobs by id, without deleted ones, and without anonymous ones unless asked.
pub(super) fn list_jobs(
    conn: &Connection,
    include_anonymous: bool,
    page: Page,
) -> StoreResult<Paged<Job>> {
    let mut filter = Filter::default();
    filter.and_many("deleted_at IS NULL", Vec::new());
    if !include_anonymous {
        filter.and("anonymous = ?", false);
    }
    sql::paged(
        conn,
        JOB_COLUMNS,
        "FROM jobs",
        "job_id",
        &filter,
        page,
        decode_job,
    )
}

fn decode_version(row: &Row<'_>) -> StoreResult<JobVersion> {
    Ok(JobVersion {
        job_id: sql::parse_id(&row.get::<_, String>(0)?)?,
        version: sql::to_version(row.get(1)?)?,
        definition: sql::from_json(&row.get::<_, String>(2)?)?,
        source_yaml: row.get(3)?,
        created_at: from_ms(row.get(4)?)?,
        created_by: row.get(5)?,
    })
}

const VERSION_COLUMNS: &str = "job_id, version, definition, source_yaml, created_at, created_by";

/// A job's versions, newest first.
pub(super) fn list_job_versions(
    conn: &Connection,
    job_id: &JobId,
    page: Page,
) -> StoreResult<Paged<JobVersion>> {
    let mut filter = Filter::default();
    filter.and("job_id = ?", job_id.as_str().to_string());
    sql::paged(
        conn,
        VERSION_COLUMNS,
        "FROM job_versions",
        "version DESC",
        &filter,
        page,
        decode_version,
    )
}

/// One version of a job (also of a deleted job: runs refer to it).
pub(super) fn get_job_version(
    conn: &Connection,
    job_id: &JobId,
    version: u32,
) -> StoreResult<JobVersion> {
    conn.query_row(
        &format!("SELECT {VERSION_COLUMNS} FROM job_versions WHERE job_id = ?1 AND version = ?2"),
        params![job_id.as_str(), version],
        |row| Ok(decode_version(row)),
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("job {job_id} version {version}")))?
}

/// Hides the job; its versions stay for the runs that used them.
pub(super) fn delete_job(
    conn: &Connection,
    job_id: &JobId,
    now: jiff::Timestamp,
) -> StoreResult<()> {
    let deleted = conn.execute(
        "UPDATE jobs SET deleted_at = ?2 WHERE job_id = ?1 AND deleted_at IS NULL",
        params![job_id.as_str(), to_ms(now)],
    )?;
    if deleted == 0 {
        return Err(StoreError::NotFound(format!("job {job_id}")));
    }
    Ok(())
}

/// Marks the job revoked and skips (reason `revoked`) every queued or delivered target of
/// its runs, like a kill; returns the targets skipped. Revoking twice changes nothing more.
pub(super) fn revoke_job(
    conn: &Connection,
    job_id: &JobId,
    actor: &str,
    now: jiff::Timestamp,
) -> StoreResult<u64> {
    let changed = conn.execute(
        "UPDATE jobs SET revoked_at = COALESCE(revoked_at, ?2), revoked_by = COALESCE(revoked_by, ?3)
         WHERE job_id = ?1",
        params![job_id.as_str(), to_ms(now), actor],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!("job {job_id}")));
    }
    let run_ids: Vec<String> = {
        let mut stmt = conn.prepare(
            "SELECT run_id FROM runs WHERE job_id = ?1 AND status IN ('queued', 'running')",
        )?;
        let rows = stmt.query_map([job_id.as_str()], |row| row.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut n_skipped = 0;
    for run_id in &run_ids {
        n_skipped += runs::skip_unpicked(conn, run_id, "revoked", now)?;
    }
    Ok(n_skipped)
}
