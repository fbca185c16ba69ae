//! `/`: the fleet at a glance — agents online, offline and never seen, failures in the
//! last 24 hours, OS and agent-version breakdowns, and the latest runs with their outcome.

use axum::extract::State;
use jiff::SignedDuration;
use maud::html;
use tutti_store::{Page, RunQuery};

use super::layout::{Nav, shell, thousands};
use super::{PageContext, PageResult, charts, tables};
use crate::actor::{Actor, Role};
use crate::app::App;
use crate::views::online_since;

/// Recent runs shown.
const RECENT_RUNS: u32 = 10;

/// The overview page.
pub(crate) async fn page(State(app): State<App>, actor: Actor) -> PageResult {
    let ctx = PageContext::load(&app, actor).await;
    let day_ago = ctx
        .now
        .checked_sub(SignedDuration::from_hours(24))
        .unwrap_or(ctx.now);
    let fleet = app
        .store
        .fleet_overview(online_since(&app), day_ago)
        .await?;
    let recent = RunQuery {
        page: Page::new(RECENT_RUNS, 0),
        ..RunQuery::default()
    };
    let (runs, counts) = tables::load_runs(&app, &recent).await?;
    let content = html! {
        div.stats {
            a.stat href="/agents" {
                div.stat-label { "Agents" }
                div.stat-value data-testid="agents-total" { (thousands(fleet.agents)) }
            }
            (tables::liveness_tiles(&fleet))
            a.stat href="/runs" {
                div.stat-label { "Failed targets, 24 h" }
                div class=(if fleet.failed_targets > 0 { "stat-value bad" } else { "stat-value ok" }) data-testid="failures-24h" {
                    (thousands(fleet.failed_targets))
                }
                @if fleet.failed_agents > 0 {
                    div.muted { "on " (thousands(fleet.failed_agents)) " agents" }
                }
            }
        }
        section.card {
            div.card-head {
                h2 { "Liveness" }
                span.muted { (thousands(fleet.online)) " of " (thousands(fleet.agents)) " online" }
            }
            (charts::liveness(fleet.online, fleet.offline, fleet.never_seen))
        }
        div.grid {
            section.card {
                h2 { "Operating systems" }
                (charts::bars("Agents by operating system", &with_other(&fleet.by_os, fleet.os_other)))
            }
            section.card {
                h2 { "Agent versions" }
                (charts::bars("Agents by agent version", &with_other(&fleet.by_version, fleet.version_other)))
            }
        }
        section.card {
            div.card-head {
                h2 { "Recent runs" }
                div.actions {
                    a href="/runs" { "All runs →" }
                    @if ctx.can(Role::Operator) { a.button.primary.small href="/jobs" { "Run a job" } }
                }
            }
            (tables::runs(&runs.items, &counts))
        }
    };
    Ok(shell(&ctx, "Overview", Nav::Overview, content))
}

/// A breakdown with its tail as one last "other" bar.
fn with_other(rows: &[(String, u64)], other: u64) -> Vec<(String, u64)> {
    let mut all = rows.to_vec();
    if other > 0 {
        all.push(("other".into(), other));
    }
    all
}
