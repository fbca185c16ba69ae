//! `/jobs` and `/jobs/{job_id}`: every job with its latest version and last run, and one
//! job's YAML source, version history and recent runs, with the operator's **Run now**
//! form (`run_form.rs`), edit and revoke. The editor of `/jobs/new` and
//! `/jobs/{job_id}/edit` is in `editor.rs`; `assets/jobs.js` shapes the run form and
//! drives the editor.

mod editor;
mod run_form;

pub(crate) use editor::{editor, editor_new};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use futures::{StreamExt, TryStreamExt};
use maud::{Markup, html};
use serde::Deserialize;
use tutti_proto::JobId;
use tutti_store::{Job, Page, Run, RunQuery};

use super::layout::{self, Nav, pager, run_badge, shell};
use super::runs::{PageQuery, query};
use super::{PageContext, PageResult, tables};
use crate::actor::{Actor, Role};
use crate::app::App;
use crate::views::parse_id;

/// Versions per page of a job's history.
const VERSIONS_LIMIT: u32 = 10;
/// Recent runs on a job's page.
const RECENT_RUNS: u32 = 10;

/// The jobs list.
pub(crate) async fn list(
    State(app): State<App>,
    actor: Actor,
    params: Result<Query<PageQuery>, QueryRejection>,
) -> PageResult {
    let params = query(params)?;
    let ctx = PageContext::load(&app, actor).await;
    let page = params.page();
    let jobs = app.store.list_jobs(false, page).await?;
    // One indexed query per job of this page (runs_job index), for its latest run.
    // Four at a time, so one page view does not take every reader connection at once.
    let ids: Vec<JobId> = jobs.items.iter().map(|job| job.job_id.clone()).collect();
    let last_runs: Vec<_> = futures::stream::iter(ids)
        .map(|job_id| {
            let app = app.clone();
            async move { last_run(&app, &job_id).await }
        })
        .buffered(4)
        .try_collect()
        .await?;
    let content = html! {
        section.card {
            div.card-head {
                h2 { "Jobs" }
                @if ctx.can(Role::Operator) {
                    a.button.primary.small href="/jobs/new" data-testid="new-job" { "New job" }
                }
            }
            @if jobs.items.is_empty() {
                (layout::empty("No jobs yet. A job is a script with a name, versioned each time it changes."))
            } @else {
                div.table-wrap {
                    table data-testid="jobs-table" {
                        thead { tr {
                            th { "Job" } th.num { "Version" } th.hide-narrow { "Description" }
                            th { "Updated" } th { "Last run" }
                        } }
                        tbody {
                            @for (job, last) in jobs.items.iter().zip(&last_runs) {
                                (job_row(job, last.as_ref()))
                            }
                        }
                    }
                }
            }
            (pager("/jobs", &[], page.offset, page.effective_limit(), jobs.total))
        }
    };
    Ok(shell(&ctx, "Jobs", Nav::Jobs, content))
}

async fn last_run(app: &App, job_id: &JobId) -> Result<Option<Run>, tutti_store::StoreError> {
    let runs = app
        .store
        .list_runs(&RunQuery {
            job_id: Some(job_id.clone()),
            page: Page::new(1, 0),
            ..RunQuery::default()
        })
        .await?;
    Ok(runs.items.into_iter().next())
}

fn job_row(job: &Job, last: Option<&Run>) -> Markup {
    html! {
        tr data-testid=(format!("job-{}", job.job_id)) {
            td {
                a href=(format!("/jobs/{}", job.job_id)) { strong { (job.job_id) } }
                @if job.revoked_at.is_some() { " " span.badge.bad { "revoked" } }
            }
            td.num { "v" (job.version) }
            td.hide-narrow.muted { (description(job)) }
            td { (layout::time(job.updated_at)) }
            td {
                @match last {
                    Some(run) => {
                        a href=(format!("/runs/{}", run.run_id)) { (run_badge(run.status)) }
                        " " span.muted { (layout::time(run.created_at)) }
                    }
                    None => span.muted { "never run" },
                }
            }
        }
    }
}

fn description(job: &Job) -> &str {
    job.definition
        .get("description")
        .and_then(|value| value.as_str())
        .unwrap_or_default()
}

/// `?version=&offset=` of a job page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct DetailParams {
    /// Show this version's source instead of the current one.
    version: Option<u32>,
    /// Versions to skip in the history.
    offset: Option<u64>,
}

/// One job.
pub(crate) async fn detail(
    State(app): State<App>,
    actor: Actor,
    Path(job_id): Path<String>,
    params: Result<Query<DetailParams>, QueryRejection>,
) -> PageResult {
    let params = query(params)?;
    let job_id: JobId = parse_id(&job_id)?;
    let ctx = PageContext::load(&app, actor).await;
    let job = app.store.get_job(&job_id).await?;
    let shown = match params.version.filter(|version| *version != job.version) {
        Some(version) => Some(app.store.get_job_version(&job_id, version).await?),
        None => None,
    };
    let version_page = Page::new(VERSIONS_LIMIT, params.offset.unwrap_or(0));
    let versions = app.store.list_job_versions(&job_id, version_page).await?;
    let recent = RunQuery {
        job_id: Some(job_id.clone()),
        page: Page::new(RECENT_RUNS, 0),
        ..RunQuery::default()
    };
    let (runs, counts) = tables::load_runs(&app, &recent).await?;
    let operator = ctx.can(Role::Operator);
    let path = format!("/jobs/{job_id}");
    let (source, source_version) = match &shown {
        Some(version) => (version.source_yaml.as_str(), version.version),
        None => (job.source_yaml.as_str(), job.version),
    };
    let content = html! {
        section.card {
            div.card-head {
                h2 {
                    (job.job_id) " " span.muted { "v" (job.version) }
                    @if job.revoked_at.is_some() { " " span.badge.bad data-testid="job-revoked" { "revoked" } }
                }
                @if operator {
                    div.actions {
                        a.button href=(format!("/jobs/{job_id}/edit")) data-testid="edit-job" { "Edit" }
                    }
                }
            }
            @let text = description(&job);
            @if !text.is_empty() { p data-testid="job-description" { (text) } }
            dl.facts {
                dt { "Created" } dd { (layout::time(job.created_at)) }
                dt { "Updated" } dd { (layout::time(job.updated_at)) }
                @if let Some(revoked) = job.revoked_at { dt { "Revoked" } dd { (layout::time(revoked)) } }
            }
        }
        @if operator && job.revoked_at.is_none() { (run_form::run_form(&job)) }
        div.grid.job-grid {
            section.card {
                div.card-head {
                    h2 { "Source" @if shown.is_some() { " " span.badge.warn { "version " (source_version) } } }
                    div.actions {
                        @if shown.is_some() { a href=(path.clone()) { "Current version →" } }
                        button.small type="button" data-copy="job-source" { "Copy" }
                    }
                }
                @if source.is_empty() {
                    (layout::empty("This version was applied as JSON; its definition is below."))
                    (layout::json_block(shown.as_ref().map_or(&job.definition, |version| &version.definition)))
                } @else {
                    pre.code #job-source data-testid="job-source" { (source) }
                }
            }
            section.card {
                h2 { "Versions" }
                div.table-wrap {
                    table data-testid="job-versions" {
                        thead { tr { th { "Version" } th { "Applied" } th { "By" } } }
                        tbody {
                            @for version in &versions.items {
                                tr aria-current=[(version.version == source_version).then_some("true")] {
                                    td { a href=(layout::link(&path, &[("version", version.version.to_string())])) { "v" (version.version) } }
                                    td { (layout::time(version.created_at)) }
                                    td { (version.created_by) }
                                }
                            }
                        }
                    }
                }
                @if versions.total > u64::from(VERSIONS_LIMIT) {
                    (pager(&path, &[], version_page.offset, VERSIONS_LIMIT, versions.total))
                }
            }
        }
        section.card {
            div.card-head {
                h2 { "Recent runs" }
                a href=(layout::link("/runs", &[("job", job_id.to_string())])) { "All " (layout::thousands(runs.total)) " runs →" }
            }
            (tables::runs(&runs.items, &counts))
        }
        @if operator && job.revoked_at.is_none() { (revoke_card(&job_id)) }
        @if operator { script src="/assets/jobs.js" defer {} }
    };
    Ok(shell(&ctx, &format!("Job {job_id}"), Nav::Jobs, content))
}

fn revoke_card(job_id: &JobId) -> Markup {
    html! {
        section.card.danger-zone {
            h2 { "Revoke" }
            p.hint { "Revoking skips every queued copy of this job on every agent, now and when offline agents come back. Running processes finish." }
            form.toolbar data-api=(format!("POST /api/v1/jobs/{job_id}/revoke")) data-testid="revoke-form"
                data-confirm=(format!("Revoke job {job_id}? Queued runs of it are skipped everywhere.")) data-then="reload" {
                div.field.grow {
                    label for="revoke-reason" { "Reason" }
                    input #revoke-reason type="text" name="reason" placeholder="why, for the audit log" data-optional;
                }
                button.danger type="submit" data-testid="revoke-job" { "Revoke" }
                p.form-error {}
            }
        }
    }
}
