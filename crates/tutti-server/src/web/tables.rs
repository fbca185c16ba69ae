//! Tables and tiles more than one page shows: a page of runs with their outcome bars
//! (overview, runs list, job page) and the fleet's liveness tiles (overview, agents list).

use std::collections::BTreeMap;

use maud::{Markup, html};
use tutti_store::{FleetOverview, Paged, Run, RunCounts, RunQuery};

use super::PageError;
use super::layout::{self, outcome_bar, run_badge, thousands};
use crate::app::App;

/// The runs `query` selects and their per-state counts, for [`runs`].
pub(crate) async fn load_runs(
    app: &App,
    query: &RunQuery,
) -> Result<(Paged<Run>, BTreeMap<String, RunCounts>), PageError> {
    let runs = app.store.list_runs(query).await?;
    let counts = app
        .store
        .counts_of_runs(runs.items.iter().map(|run| run.run_id).collect())
        .await?;
    Ok((runs, counts))
}

/// Online, offline and never-seen tiles, each a link to the agents with that status.
pub(crate) fn liveness_tiles(fleet: &FleetOverview) -> Markup {
    html! {
        a.stat href="/agents?status=online" {
            div.stat-label { "Online" }
            div.stat-value.ok data-testid="agents-online" { (thousands(fleet.online)) }
        }
        a.stat href="/agents?status=offline" {
            div.stat-label { "Offline" }
            div class=(if fleet.offline > 0 { "stat-value bad" } else { "stat-value" }) { (thousands(fleet.offline)) }
        }
        a.stat href="/agents?status=never" {
            div.stat-label { "Never seen" }
            div.stat-value { (thousands(fleet.never_seen)) }
        }
    }
}

/// Runs with status, outcome bar, job, who started them and when. `counts` comes from
/// `Store::counts_of_runs` for the same page.
pub(crate) fn runs(runs: &[Run], counts: &BTreeMap<String, RunCounts>) -> Markup {
    if runs.is_empty() {
        return layout::empty("No runs yet.");
    }
    let none = RunCounts::default();
    html! {
        div.table-wrap {
            table {
                thead { tr {
                    th { "Run" } th { "Job" } th { "Status" } th { "Outcome" }
                    th.num { "Targets" } th.hide-narrow { "Started by" } th { "Created" }
                } }
                tbody {
                    @for run in runs {
                        @let id = run.run_id.to_string();
                        @let run_counts = counts.get(&id).unwrap_or(&none);
                        tr {
                            td { a.mono href=(format!("/runs/{id}")) { (short_id(&id)) } }
                            td { a href=(format!("/jobs/{}", run.job_id)) { (run.job_id) } " " span.muted { "v" (run.job_version) } }
                            td {
                                (run_badge(run.status))
                                @if let Some(schedule) = &run.schedule_name { " " span.badge.muted title="Fired by a schedule" { "schedule " (schedule) } }
                                @if run.during_freeze { " " span.badge.warn { "during freeze" } }
                            }
                            td { (outcome_bar(run_counts)) }
                            td.num { (layout::thousands(run_counts.total())) }
                            td.hide-narrow { (run.created_by) }
                            td { (layout::time(run.created_at)) }
                        }
                    }
                }
            }
        }
    }
}

/// The last 10 characters of a ULID are enough to tell runs apart on one screen; the
/// full id is in the link and the title.
pub(crate) fn short_id(id: &str) -> String {
    let count = id.chars().count();
    if count > 10 {
        let tail: String = id.chars().skip(count - 10).collect();
        format!("…{tail}")
    } else {
        id.to_string()
    }
}
