//! `/schedules/{name}`: one schedule — its spec in words, the next five fires (in UTC
//! and in the schedule's zone), the last fires with their runs or skip reasons, the last
//! run, the manifest, and for a desired-state schedule its coverage (`coverage.rs`).

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use tutti_store::{Page, Schedule, ScheduleFire};

use super::coverage::{self, CoverageParams};
use super::{enabled_badge, next_fires, switch_button, text, trigger, version_pin};
use crate::actor::{Actor, Role};
use crate::app::App;
use crate::error::Error;
use crate::schedule::stored::parse_stored;
use crate::schedule::{ScheduleSpec, Trigger};
use crate::web::layout::{self, Nav, shell};
use crate::web::runs::query;
use crate::web::{PageContext, PageError, PageResult, tables};

/// Fires listed.
const RECENT_FIRES: u32 = 20;
/// Upcoming fires listed.
const NEXT_FIRES: usize = 5;

/// `?standing=&offset=` of the coverage table.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct DetailParams {
    /// Only agents with this standing.
    standing: Option<String>,
    /// Coverage rows to skip.
    offset: Option<u64>,
}

/// One schedule.
pub(crate) async fn detail(
    State(app): State<App>,
    actor: Actor,
    Path(name): Path<String>,
    params: Result<Query<DetailParams>, QueryRejection>,
) -> PageResult {
    let params = query(params)?;
    let coverage_params = CoverageParams::parse(params.standing.as_deref(), params.offset)?;
    let ctx = PageContext::load(&app, actor).await;
    let schedule = app.store.get_schedule(&name).await?;
    let spec = parse_stored(&schedule);
    let fires = app
        .store
        .list_schedule_fires(&name, Page::new(RECENT_FIRES, 0))
        .await?;
    let mut job_missing = false;
    let coverage = match &spec {
        Ok(spec) if matches!(spec.trigger, Trigger::DesiredState(_)) => {
            match coverage::load(&app, &schedule, spec, ctx.now).await {
                Ok(coverage) => Some(coverage),
                // Its job was deleted: the page still renders, so it can be disabled or
                // deleted.
                Err(PageError(Error::NotFound(_))) => {
                    job_missing = true;
                    None
                }
                Err(err) => return Err(err),
            }
        }
        _ => None,
    };
    // Cron runs are recorded as fires; desired-state runs are not, so their latest run is
    // the newest one the coverage saw.
    let last_run_id = fires
        .items
        .iter()
        .find_map(|fire| fire.run_id)
        .or_else(|| coverage.as_ref().and_then(coverage::latest_run));
    let last_run = match last_run_id {
        Some(run_id) => Some(app.store.get_run(&run_id).await?),
        None => None,
    };
    let is_cron = spec
        .as_ref()
        .is_ok_and(|spec| matches!(spec.trigger, Trigger::Cron(_)));
    let operator = ctx.can(Role::Operator);
    let content = html! {
        (summary(&schedule, spec.as_ref().ok(), operator))
        @if spec.is_err() {
            p.form-error { "The stored manifest no longer parses on this server version; the scheduler skips it. Apply it again to fix it." }
        }
        @if is_cron || !fires.items.is_empty() {
            div.grid.schedule-grid {
                @if let Ok(spec) = &spec {
                    @if is_cron { (upcoming(&schedule, spec, ctx.now)) }
                }
                (fires_card(&fires.items))
            }
        }
        @if job_missing {
            section.card data-testid="schedule-job-missing" {
                h2 { "Coverage" }
                p.error-text { "The job this schedule runs no longer exists, so nothing can run. Apply the job again, or disable or delete this schedule." }
            }
        }
        @if let Some(coverage) = &coverage { (coverage::card(&schedule.name, coverage, &coverage_params)) }
        section.card {
            div.card-head {
                h2 { "Last run" }
                a href=(layout::link("/runs", &[("origin", "scheduled".into())])) { "Scheduled runs →" }
            }
            @match &last_run {
                Some(detail) => {
                    @let counts = BTreeMap::from([(detail.run.run_id.to_string(), detail.counts.clone())]);
                    (tables::runs(std::slice::from_ref(&detail.run), &counts))
                }
                None => (layout::empty("This schedule has not started a run yet.")),
            }
        }
        section.card {
            details {
                summary { h2.inline { "Manifest" } }
                pre.code data-testid="schedule-source" { (schedule.source_yaml) }
            }
        }
    };
    Ok(shell(
        &ctx,
        &format!("Schedule {}", schedule.name),
        Nav::Schedules,
        content,
    ))
}

fn summary(schedule: &Schedule, spec: Option<&ScheduleSpec>, operator: bool) -> Markup {
    let definition = &schedule.definition;
    let job = text(definition, &["job"]);
    let targets = &definition["targets"];
    html! {
        section.card {
            div.card-head {
                h2 { (schedule.name) " " (enabled_badge(schedule.enabled)) }
                @if operator {
                    div.actions {
                        (switch_button(schedule, false))
                        button.danger type="button" data-testid="delete-schedule"
                            data-api=(format!("DELETE /api/v1/schedules/{}", layout::url_encode(&schedule.name)))
                            data-confirm=(format!("Delete schedule {}? Its past fires and runs stay.", schedule.name))
                            data-then="go:/schedules" { "Delete" }
                    }
                }
            }
            dl.facts data-testid="schedule-spec" {
                dt { "Job" } dd { a href=(format!("/jobs/{job}")) { (job) } (version_pin(definition)) @if spec.is_some_and(|spec| spec.job_version.is_none()) { " " span.muted { "(current version at each fire)" } } }
                dt { "Trigger" } dd { (trigger(definition)) }
                dt { "Targets" } dd { (targets_text(targets)) }
                dt { "Time zone" } dd { (text(definition, &["timezone"])) }
                (optional_fact("Jitter", &text(definition, &["jitter_secs"]), " s", "0"))
                (optional_fact("Deadline", &text(definition, &["deadline_secs"]), " s", ""))
                (optional_fact("Maintenance window", &text(definition, &["maintenance_window"]), "", ""))
                (optional_fact("Max concurrent targets", &text(definition, &["max_concurrent_targets"]), "", ""))
                @if let Some(from) = spec.and_then(|spec| spec.active_from) { dt { "Active from" } dd { (layout::time(from)) } }
                @if let Some(until) = spec.and_then(|spec| spec.active_until) { dt { "Active until" } dd { (layout::time(until)) } }
                @if let Some(dates) = definition["skip_dates"].as_array().filter(|dates| !dates.is_empty()) {
                    dt { "Skip dates" } dd { (dates.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")) }
                }
                @if !definition["rollout"].is_null() { dt { "Rollout" } dd.mono { (definition["rollout"]) } }
                dt { "Applied" } dd { (layout::time(schedule.created_at)) " by " (schedule.created_by) " · changed " (layout::time(schedule.updated_at)) }
            }
        }
    }
}

fn optional_fact(label: &str, value: &str, unit: &str, default: &str) -> Markup {
    html! { @if !value.is_empty() && value != default { dt { (label) } dd { (value) (unit) } } }
}

/// `all agents`, `groups web, db; agents a`.
fn targets_text(targets: &Value) -> String {
    if targets["all"].as_bool() == Some(true) {
        return "all agents".into();
    }
    let list = |key: &str| -> Vec<&str> {
        targets[key]
            .as_array()
            .map(|items| items.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    let mut parts = Vec::new();
    for (key, label) in [("groups", "groups"), ("agents", "agents")] {
        let names = list(key);
        if !names.is_empty() {
            parts.push(format!("{label} {}", names.join(", ")));
        }
    }
    if parts.is_empty() {
        "—".into()
    } else {
        parts.join("; ")
    }
}

fn upcoming(schedule: &Schedule, spec: &ScheduleSpec, now: jiff::Timestamp) -> Markup {
    let fires = next_fires(schedule, now, NEXT_FIRES);
    let zone = spec.time_zone().clone();
    html! {
        section.card {
            h2 { "Next fires" }
            @if fires.is_empty() {
                (layout::empty(if schedule.enabled { "No fire within the search horizon (or the active period has ended)." } else { "Disabled: it does not fire." }))
            } @else {
                ol.fire-list data-testid="next-fires" {
                    @for fire in &fires {
                        li {
                            (layout::time(*fire))
                            " " span.muted { (fire.to_zoned(zone.clone()).strftime("%a %Y-%m-%d %H:%M %Z").to_string()) }
                        }
                    }
                }
                @let jitter = text(&schedule.definition, &["jitter_secs"]);
                @if !jitter.is_empty() && jitter != "0" {
                    p.hint { "Without jitter; each fire is delayed by up to " (jitter) " s." }
                }
            }
        }
    }
}

fn fires_card(fires: &[ScheduleFire]) -> Markup {
    html! {
        section.card {
            h2 { "Last fires" }
            @if fires.is_empty() {
                (layout::empty("No fires yet."))
            } @else {
                div.table-wrap {
                    table data-testid="recent-fires" {
                        thead { tr { th { "Fire time" } th.hide-narrow { "Acted" } th { "Outcome" } } }
                        tbody {
                            @for fire in fires {
                                tr {
                                    td { (layout::time(fire.fire_at)) }
                                    td.hide-narrow { (layout::time(fire.fired_at)) }
                                    td {
                                        @if let Some(run_id) = fire.run_id {
                                            a.mono href=(format!("/runs/{run_id}")) { (tables::short_id(&run_id.to_string())) }
                                        } @else if let Some(reason) = &fire.skipped {
                                            (layout::badge("skipped", layout::Tone::Warn)) " " span.muted { (reason) }
                                        } @else {
                                            span.muted { "starting…" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_read_as_words() {
        assert_eq!(
            targets_text(&serde_json::json!({"all": true})),
            "all agents"
        );
        assert_eq!(
            targets_text(
                &serde_json::json!({"all": false, "groups": ["web", "db"], "agents": ["a"]})
            ),
            "groups web, db; agents a"
        );
        assert_eq!(targets_text(&Value::Null), "—");
    }
}
