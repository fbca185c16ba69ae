//! `/runs` and `/runs/{run_id}`: every run with filters, and one run live — its status,
//! counts, rollout and a tile per target whose output opens beside the grid
//! (`detail.rs`, `grid.rs`, with `assets/run.js` for the live part).
//!
//! Also the small helpers the jobs and schedules pages share with these: strict query
//! parsing that answers a 400 page, and page limits.

mod detail;
mod grid;

pub(crate) use detail::detail;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use maud::html;
use serde::Deserialize;
use tutti_proto::{AgentId, JobId};
use tutti_store::{Page, RunQuery, RunStatus};

use super::layout::{Nav, pager, shell};
use super::{PageContext, PageError, PageResult, tables};
use crate::actor::{Actor, Role};
use crate::app::App;
use crate::error::Error;
use crate::views::parse_id;

/// Rows per list page unless asked otherwise.
pub(crate) const DEFAULT_LIMIT: u32 = 50;
/// The most rows a list page shows.
pub(crate) const MAX_LIMIT: u32 = 100;

/// A query string, or a 400 page naming the bad parameter.
pub(crate) fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, PageError> {
    query.map(|Query(params)| params).map_err(|rejection| {
        PageError(Error::bad_request(format!(
            "invalid query string: {}",
            rejection.body_text()
        )))
    })
}

/// `?limit=&offset=` of a plain paged list (jobs, schedules).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PageQuery {
    limit: Option<u32>,
    offset: Option<u64>,
}

impl PageQuery {
    /// The page it asks for, clamped like every dashboard list.
    pub(crate) fn page(&self) -> Page {
        list_page(self.limit, self.offset)
    }
}

/// `?limit=&offset=` as a store page, the limit clamped to 1..=[`MAX_LIMIT`].
pub(crate) fn list_page(limit: Option<u32>, offset: Option<u64>) -> Page {
    Page::new(
        limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
        offset.unwrap_or(0),
    )
}

/// An optional text filter: blank means absent.
pub(crate) fn filled(value: &Option<String>) -> Option<&str> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

/// Filters of `/runs`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListParams {
    /// Job id.
    job: Option<String>,
    /// `queued`, `running`, `done`, `killed`.
    status: Option<String>,
    /// `scheduled` or `manual`.
    origin: Option<String>,
    /// Account or token name.
    created_by: Option<String>,
    /// Only runs that target this agent.
    agent: Option<String>,
    limit: Option<u32>,
    offset: Option<u64>,
}

const STATUSES: [&str; 4] = ["queued", "running", "done", "killed"];

/// The runs list.
pub(crate) async fn list(
    State(app): State<App>,
    actor: Actor,
    params: Result<Query<ListParams>, QueryRejection>,
) -> PageResult {
    let params = query(params)?;
    let ctx = PageContext::load(&app, actor).await;
    let run_query = run_query(&params)?;
    let (runs, counts) = tables::load_runs(&app, &run_query).await?;
    let pairs = filter_pairs(&params);
    let content = html! {
        section.card {
            div.card-head {
                h2 { "Runs" }
                @if ctx.can(Role::Operator) { a.button.primary.small href="/jobs" { "Run a job" } }
            }
            (filters(&params))
            (tables::runs(&runs.items, &counts))
            (pager("/runs", &pairs, run_query.page.offset, run_query.page.effective_limit(), runs.total))
        }
    };
    Ok(shell(&ctx, "Runs", Nav::Runs, content))
}

fn run_query(params: &ListParams) -> Result<RunQuery, PageError> {
    let job_id = filled(&params.job).map(parse_id::<JobId>).transpose()?;
    let agent_id = filled(&params.agent).map(parse_id::<AgentId>).transpose()?;
    let status = match filled(&params.status) {
        None => None,
        Some(text) => Some(RunStatus::parse(text).ok_or_else(|| {
            Error::bad_request(format!(
                "invalid status {text:?} (use queued, running, done or killed)"
            ))
        })?),
    };
    let scheduled = match filled(&params.origin) {
        None => None,
        Some("scheduled") => Some(true),
        Some("manual") => Some(false),
        Some(other) => {
            return Err(PageError(Error::bad_request(format!(
                "invalid origin {other:?} (use scheduled or manual)"
            ))));
        }
    };
    Ok(RunQuery {
        job_id,
        status,
        created_by: filled(&params.created_by).map(str::to_string),
        agent_id,
        scheduled,
        created_from: None,
        created_until: None,
        page: list_page(params.limit, params.offset),
    })
}

fn filter_pairs(params: &ListParams) -> Vec<(&'static str, String)> {
    let text = |value: &Option<String>| filled(value).unwrap_or_default().to_string();
    let mut pairs = vec![
        ("job", text(&params.job)),
        ("status", text(&params.status)),
        ("origin", text(&params.origin)),
        ("created_by", text(&params.created_by)),
        ("agent", text(&params.agent)),
    ];
    if let Some(limit) = params.limit.filter(|limit| *limit != DEFAULT_LIMIT) {
        pairs.push(("limit", limit.to_string()));
    }
    pairs
}

fn filters(params: &ListParams) -> maud::Markup {
    let text = |value: &Option<String>| filled(value).unwrap_or_default().to_string();
    let status = text(&params.status);
    let origin = text(&params.origin);
    html! {
        form.toolbar method="get" action="/runs" role="search" data-testid="runs-filters" {
            div.field {
                label for="filter-job" { "Job" }
                input #filter-job type="search" name="job" value=(text(&params.job)) placeholder="job id";
            }
            div.field {
                label for="filter-status" { "Status" }
                select #filter-status name="status" data-autosubmit {
                    option value="" selected[status.is_empty()] { "Any" }
                    @for name in STATUSES {
                        option value=(name) selected[status == name] { (name) }
                    }
                }
            }
            div.field {
                label for="filter-origin" { "Started" }
                select #filter-origin name="origin" data-autosubmit {
                    option value="" selected[origin.is_empty()] { "Scheduled or manual" }
                    option value="scheduled" selected[origin == "scheduled"] { "By a schedule" }
                    option value="manual" selected[origin == "manual"] { "Manually" }
                }
            }
            div.field {
                label for="filter-created-by" { "Created by" }
                input #filter-created-by type="search" name="created_by" value=(text(&params.created_by)) placeholder="account";
            }
            div.field.hide-narrow {
                label for="filter-agent" { "Agent" }
                input #filter-agent type="search" name="agent" value=(text(&params.agent)) placeholder="agent id";
            }
            button type="submit" { "Filter" }
            @if !filter_pairs(params).iter().all(|(_, value)| value.is_empty()) {
                a.button href="/runs" { "Clear" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_filters_are_refused_and_blank_ones_ignored() {
        let params = ListParams {
            job: Some("  ".into()),
            status: Some("done".into()),
            origin: Some("manual".into()),
            ..ListParams::default()
        };
        let query = run_query(&params).unwrap();
        assert_eq!(query.job_id, None);
        assert_eq!(query.status, Some(RunStatus::Done));
        assert_eq!(query.scheduled, Some(false));
        assert_eq!(query.page.limit, DEFAULT_LIMIT);
        for bad in [
            ListParams {
                status: Some("finished".into()),
                ..ListParams::default()
            },
            ListParams {
                origin: Some("robot".into()),
                ..ListParams::default()
            },
            ListParams {
                limit: Some(0),
                job: Some("no spaces".into()),
                ..ListParams::default()
            },
        ] {
            assert!(run_query(&bad).is_err(), "{bad:?}");
        }
        assert_eq!(list_page(Some(10_000), None).limit, MAX_LIMIT);
    }
}
