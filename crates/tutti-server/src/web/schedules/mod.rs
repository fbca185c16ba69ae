//! `/schedules` and `/schedules/{name}`: every schedule with its trigger, zone, switch
//! and next fire, and one schedule's spec, upcoming and past fires, last run and — for a
//! desired-state schedule — its coverage (`detail.rs`, `coverage.rs`).
//!
//! Fire times come from the same code the API and the scheduler use: the stored manifest
//! text parsed again (`api::schedules::parse_stored`), then `ScheduleSpec::next_fires`.

mod coverage;
mod detail;

pub(crate) use detail::detail;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use jiff::Timestamp;
use maud::{Markup, html};
use serde_json::Value;
use tutti_store::Schedule;

use super::layout::{self, Nav, Tone, badge, pager, shell};
use super::runs::{PageQuery, query};
use super::{PageContext, PageResult};
use crate::actor::{Actor, Role};
use crate::app::App;
use crate::schedule::stored::parse_stored;

/// The schedules list.
pub(crate) async fn list(
    State(app): State<App>,
    actor: Actor,
    params: Result<Query<PageQuery>, QueryRejection>,
) -> PageResult {
    let params = query(params)?;
    let ctx = PageContext::load(&app, actor).await;
    let page = params.page();
    let schedules = app.store.list_schedules(false, page).await?;
    let operator = ctx.can(Role::Operator);
    let content = html! {
        section.card {
            div.card-head {
                h2 { "Schedules" }
                span.muted { "Apply schedules with " code { "tutti apply -f schedule.yaml" } }
            }
            @if schedules.items.is_empty() {
                (layout::empty("No schedules yet. A schedule runs a job on a cron timetable, or keeps agents in a desired state."))
            } @else {
                div.table-wrap {
                    table data-testid="schedules-table" {
                        thead { tr {
                            th { "Schedule" } th { "Job" } th { "Trigger" } th.hide-narrow { "Zone" }
                            th { "State" } th { "Next fire" }
                            @if operator { th { span.muted { "Switch" } } }
                        } }
                        tbody {
                            @for schedule in &schedules.items {
                                (row(schedule, operator, ctx.now))
                            }
                        }
                    }
                }
            }
            (pager("/schedules", &[], page.offset, page.effective_limit(), schedules.total))
        }
    };
    Ok(shell(&ctx, "Schedules", Nav::Schedules, content))
}

fn row(schedule: &Schedule, operator: bool, now: Timestamp) -> Markup {
    let definition = &schedule.definition;
    let job = text(definition, &["job"]);
    let next = next_fires(schedule, now, 1).first().copied();
    html! {
        tr data-testid=(format!("schedule-{}", schedule.name)) {
            td { a href=(detail_path(&schedule.name)) { strong { (schedule.name) } } }
            td { a href=(format!("/jobs/{job}")) { (job) } (version_pin(definition)) }
            td { (trigger(definition)) }
            td.hide-narrow { (text(definition, &["timezone"])) }
            td { (enabled_badge(schedule.enabled)) }
            td { @if let Some(at) = next { (layout::time(at)) } @else { span.muted { "—" } } }
            @if operator { td { (switch_button(schedule, true)) } }
        }
    }
}

/// `/schedules/<name>` (names are `[a-z0-9-]`, encoded anyway).
pub(crate) fn detail_path(name: &str) -> String {
    format!("/schedules/{}", layout::url_encode(name))
}

/// The text at `path` in a JSON value, or empty.
fn text(value: &Value, path: &[&str]) -> String {
    let mut node = value;
    for key in path {
        match node.get(key) {
            Some(next) => node = next,
            None => return String::new(),
        }
    }
    match node {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn version_pin(definition: &Value) -> Markup {
    let version = text(definition, &["job_version"]);
    html! { @if !version.is_empty() { " " span.muted title="Pinned version" { "v" (version) } } }
}

/// `cron 0 3 * * *`, `once per version`, `every 24 h`.
fn trigger(definition: &Value) -> Markup {
    let cron = text(definition, &["trigger", "cron"]);
    let hours = text(definition, &["trigger", "desired_state", "every_hours"]);
    let once = text(
        definition,
        &["trigger", "desired_state", "once_per_version"],
    );
    html! {
        @if !cron.is_empty() {
            span.badge.muted { "cron" } " " code data-testid="schedule-cron" { (cron) }
        } @else if !hours.is_empty() {
            span.badge.busy { "desired state" } " every " (hours) " h"
        } @else if !once.is_empty() {
            span.badge.busy { "desired state" } " once per version"
        } @else {
            span.muted { "—" }
        }
    }
}

fn enabled_badge(enabled: bool) -> Markup {
    html! {
        span data-testid="schedule-enabled" {
            @if enabled { (badge("enabled", Tone::Ok)) } @else { (badge("disabled", Tone::Muted)) }
        }
    }
}

/// Enable or disable through `PATCH /api/v1/schedules/{name}`.
fn switch_button(schedule: &Schedule, small: bool) -> Markup {
    let (label, body) = if schedule.enabled {
        ("Disable", r#"{"enabled":false}"#)
    } else {
        ("Enable", r#"{"enabled":true}"#)
    };
    html! {
        button class=(if small { "small" } else { "" }) type="button"
            data-testid=(format!("toggle-schedule-{}", schedule.name))
            data-api=(format!("PATCH /api/v1/schedules/{}", layout::url_encode(&schedule.name)))
            data-body=(body) data-then="reload" { (label) }
    }
}

/// The next `n` fires of an enabled schedule (none when disabled, desired-state, or no
/// longer parsable — the detail page says which).
fn next_fires(schedule: &Schedule, after: Timestamp, n: usize) -> Vec<Timestamp> {
    match (schedule.enabled, parse_stored(schedule)) {
        (true, Ok(spec)) => spec.next_fires(after, n),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_read_as_words() {
        let cron =
            serde_json::json!({"trigger": {"cron": "0 3 * * *"}, "timezone": "Europe/Paris"});
        assert!(trigger(&cron).into_string().contains("0 3 * * *"));
        assert_eq!(text(&cron, &["timezone"]), "Europe/Paris");
        let hours = serde_json::json!({"trigger": {"desired_state": {"every_hours": 24}}});
        assert!(trigger(&hours).into_string().contains("every 24 h"));
        let once = serde_json::json!({"trigger": {"desired_state": {"once_per_version": true}}});
        assert!(trigger(&once).into_string().contains("once per version"));
        assert_eq!(text(&once, &["job_version"]), "");
    }
}
