//! `/audit`: the audit log, newest first, 50 entries a page (`Store::query_audit`),
//! filtered by exact actor, action and target and by a time range. The range comes from
//! `datetime-local` inputs, which carry no zone: the page reads them as UTC and says so.

use axum::extract::State;
use axum::http::Uri;
use jiff::Timestamp;
use jiff::civil::DateTime;
use maud::{Markup, html};
use serde::Deserialize;
use tutti_proto::audit::AuditOutcome;
use tutti_store::{AuditEntry, AuditQuery, Page};

use super::agents::{bad, given, parse_query};
use super::layout::{self, Nav, Tone, badge, shell, thousands};
use super::{PageContext, PageError, PageResult};
use crate::actor::Actor;
use crate::app::App;

/// Entries per page.
const PAGE_SIZE: u32 = 50;
/// Summaries longer than this many characters are cut, with the full text one click away.
const SUMMARY_CHARS: usize = 120;

/// `?actor=&action=&target=&from=&until=&offset=` of `/audit`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuditParams {
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    from: Option<String>,
    until: Option<String>,
    offset: Option<u64>,
}

/// The audit log.
pub(crate) async fn list(State(app): State<App>, actor: Actor, uri: Uri) -> PageResult {
    let ctx = PageContext::load(&app, actor).await;
    let params: AuditParams = parse_query(&uri)?;
    let query = AuditQuery {
        actor: given(&params.actor).map(str::to_string),
        action: given(&params.action).map(str::to_string),
        target: given(&params.target).map(str::to_string),
        from: given(&params.from)
            .map(|text| parse_time("from", text))
            .transpose()?,
        until: given(&params.until)
            .map(|text| parse_time("until", text))
            .transpose()?,
        page: Page::new(PAGE_SIZE, params.offset.unwrap_or(0)),
    };
    let entries = app.store.query_audit(&query).await?;
    let pairs = filter_pairs(&params);
    let content = html! {
        section.card {
            div.card-head {
                h2 { "Entries" }
                span.muted data-testid="audit-total" { (thousands(entries.total)) " matching" }
            }
            (toolbar(&params))
            @if entries.items.is_empty() {
                (layout::empty("No audit entries match these filters."))
            } @else {
                div.table-wrap {
                    table data-testid="audit-table" {
                        thead { tr {
                            th { "Time" } th { "Actor" } th { "Action" } th { "Target" }
                            th { "Outcome" } th { "Summary" } th.hide-narrow { "Source" }
                        } }
                        tbody { @for entry in &entries.items { (entry_row(entry)) } }
                    }
                }
                (layout::pager("/audit", &pairs, query.page.offset, PAGE_SIZE, entries.total))
            }
        }
    };
    Ok(shell(&ctx, "Audit log", Nav::Audit, content))
}

fn toolbar(params: &AuditParams) -> Markup {
    let value = |field: &Option<String>| given(field).unwrap_or("").to_string();
    html! {
        form.toolbar method="get" action="/audit" role="search" data-testid="audit-filter" {
            div.field {
                label for="audit-actor" { "Actor" }
                input id="audit-actor" name="actor" value=(value(&params.actor)) placeholder="e.g. alice";
            }
            div.field {
                label for="audit-action" { "Action" }
                input id="audit-action" name="action" value=(value(&params.action)) placeholder="e.g. run.create";
            }
            div.field {
                label for="audit-target" { "Target" }
                input id="audit-target" name="target" value=(value(&params.target)) placeholder="e.g. job/uptime";
            }
            div.field {
                label for="audit-from" { "From (UTC)" }
                input id="audit-from" type="datetime-local" name="from" value=(input_time(&params.from)) aria-describedby="audit-time-hint";
            }
            div.field {
                label for="audit-until" { "Until (UTC)" }
                input id="audit-until" type="datetime-local" name="until" value=(input_time(&params.until)) aria-describedby="audit-time-hint";
            }
            button.primary type="submit" { "Filter" }
            a.button href="/audit" { "Reset" }
            p.hint id="audit-time-hint" { "Times are UTC, as YYYY-MM-DDTHH:MM (an RFC 3339 timestamp also works). Actor, action and target match exactly." }
        }
    }
}

fn entry_row(entry: &AuditEntry) -> Markup {
    let record = &entry.record;
    let (summary, cut) = summary_text(&record.summary);
    html! {
        tr data-testid="audit-row" data-seq=(entry.stream_seq) {
            td { (layout::time(record.at)) }
            td {
                a href=(layout::link("/audit", &[("actor", record.actor.clone())])) { (record.actor) }
                " " span class=(format!("role role-{}", record.role)) { (record.role) }
            }
            td { a.mono href=(layout::link("/audit", &[("action", record.action.clone())])) { (record.action) } }
            td { a.mono href=(layout::link("/audit", &[("target", record.target.clone())])) { (record.target) } }
            td { (outcome_badge(record.outcome)) }
            td.summary {
                @match cut {
                    None => code { (summary) },
                    Some(short) => details {
                        summary { code { (short) } }
                        pre.code { (summary) }
                    },
                }
            }
            td.hide-narrow.mono { (record.source.as_deref().unwrap_or("—")) }
        }
    }
}

fn outcome_badge(outcome: AuditOutcome) -> Markup {
    match outcome {
        AuditOutcome::Succeeded => badge("succeeded", Tone::Ok),
        AuditOutcome::Denied => badge("denied", Tone::Bad),
        AuditOutcome::Failed => badge("failed", Tone::Bad),
        AuditOutcome::Unknown => badge("unknown", Tone::Muted),
    }
}

/// The summary as compact JSON, and a shortened form when it is too long to show inline.
fn summary_text(summary: &serde_json::Value) -> (String, Option<String>) {
    if summary.is_null() {
        return ("—".into(), None);
    }
    let text = summary.to_string();
    if text.chars().count() <= SUMMARY_CHARS {
        return (text, None);
    }
    let short: String = text.chars().take(SUMMARY_CHARS).collect();
    (text, Some(format!("{short}…")))
}

/// A time filter: `2026-05-01T12:30` (a `datetime-local` value, read as UTC), with
/// optional seconds, or a full RFC 3339 timestamp.
fn parse_time(name: &str, text: &str) -> Result<Timestamp, PageError> {
    if let Ok(timestamp) = text.parse::<Timestamp>() {
        return Ok(timestamp);
    }
    text.parse::<DateTime>()
        .and_then(|civil| civil.to_zoned(jiff::tz::TimeZone::UTC))
        .map(|zoned| zoned.timestamp())
        .map_err(|_| {
            bad(format!(
                "invalid {name} {text:?}: use YYYY-MM-DDTHH:MM (UTC) or an RFC 3339 timestamp"
            ))
        })
}

/// A filter value as the `datetime-local` input shows it (UTC, minutes).
fn input_time(value: &Option<String>) -> String {
    match given(value).and_then(|text| parse_time("time", text).ok()) {
        Some(timestamp) => timestamp.strftime("%Y-%m-%dT%H:%M").to_string(),
        None => String::new(),
    }
}

fn filter_pairs(params: &AuditParams) -> Vec<(&'static str, String)> {
    let value = |field: &Option<String>| given(field).unwrap_or("").to_string();
    vec![
        ("actor", value(&params.actor)),
        ("action", value(&params.action)),
        ("target", value(&params.target)),
        ("from", value(&params.from)),
        ("until", value(&params.until)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_filters_are_utc_minutes_or_rfc3339() {
        let at = parse_time("from", "2026-05-01T12:30").unwrap();
        assert_eq!(at.to_string(), "2026-05-01T12:30:00Z");
        let at = parse_time("from", "2026-05-01T12:30:00+02:00").unwrap();
        assert_eq!(at.to_string(), "2026-05-01T10:30:00Z");
        let err = parse_time("until", "yesterday").unwrap_err();
        assert!(err.0.to_string().contains("invalid until"), "{err:?}");
        assert_eq!(
            input_time(&Some("2026-05-01T12:30".into())),
            "2026-05-01T12:30"
        );
    }

    #[test]
    fn long_summaries_are_cut_and_kept_whole() {
        assert_eq!(summary_text(&serde_json::Value::Null).0, "—");
        let small = serde_json::json!({ "groups": ["web"] });
        assert_eq!(
            summary_text(&small),
            (r#"{"groups":["web"]}"#.to_string(), None)
        );
        let big = serde_json::json!({ "reason": "x".repeat(300) });
        let (full, short) = summary_text(&big);
        assert!(full.len() > 300);
        assert_eq!(short.unwrap().chars().count(), SUMMARY_CHARS + 1);
    }
}
