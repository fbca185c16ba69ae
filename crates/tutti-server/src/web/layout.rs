//! The page shell (navigation, signed-in user, theme switch, freeze banner) and the small
//! pieces every page uses: state badges, relative times, pagers, sortable headers, query
//! strings. maud escapes every interpolated value, so text from agents and operators is
//! shown as text wherever it lands.

use axum::response::Html;
use jiff::Timestamp;
use maud::{DOCTYPE, Markup, html};
use tutti_store::{RunCounts, RunStatus, TargetState};

use super::PageContext;

/// The sections of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    /// `/`
    Overview,
    /// `/agents`
    Agents,
    /// `/jobs`
    Jobs,
    /// `/runs`
    Runs,
    /// `/schedules`
    Schedules,
    /// `/audit`
    Audit,
    /// `/settings` (one's own account; admin sections for admins)
    Settings,
}

const SECTIONS: [(Nav, &str, &str); 7] = [
    (Nav::Overview, "/", "Overview"),
    (Nav::Agents, "/agents", "Agents"),
    (Nav::Jobs, "/jobs", "Jobs"),
    (Nav::Runs, "/runs", "Runs"),
    (Nav::Schedules, "/schedules", "Schedules"),
    (Nav::Audit, "/audit", "Audit"),
    (Nav::Settings, "/settings", "Settings"),
];

fn head(title: &str, csrf: Option<&str>) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="color-scheme" content="light dark";
            @if let Some(token) = csrf { meta name="csrf-token" content=(token); }
            title { (title) " · tutti" }
            link rel="icon" href="/assets/icon.svg" type="image/svg+xml";
            link rel="stylesheet" href="/assets/app.css";
            script src="/assets/app.js" defer {}
        }
    }
}

/// A full page: navigation, header with the signed-in user, the freeze banner, `content`.
pub(crate) fn shell(ctx: &PageContext, title: &str, active: Nav, content: Markup) -> Html<String> {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, ctx.csrf.as_deref()))
            body {
                a.skip href="#main" { "Skip to content" }
                div.app {
                    header.topbar {
                        a.brand href="/" aria-label="tutti overview" {
                            img src="/assets/icon.svg" alt="" width="22" height="22";
                            span { "tutti" }
                        }
                        nav.nav aria-label="Sections" {
                            @for (nav, href, label) in SECTIONS {
                                a href=(href) aria-current=[(nav == active).then_some("page")] { (label) }
                            }
                        }
                        div.who {
                            button.icon-button type="button" data-theme-toggle aria-label="Switch between light and dark theme" title="Theme" { "◐" }
                            span.user data-testid="signed-in-user" {
                                span.user-name { (ctx.actor.name) }
                                " "
                                span class=(format!("role role-{}", ctx.actor.role)) { (ctx.actor.role) }
                            }
                            @if ctx.csrf.is_some() {
                                button.link-button type="button" data-logout { "Sign out" }
                            }
                        }
                    }
                    @if let Some(freeze) = &ctx.freeze {
                        div.banner.banner-freeze role="status" data-testid="freeze-banner" {
                            strong { "Fleet frozen" }
                            " — scheduled runs are held"
                            @if let Some(reason) = &freeze.reason { ": " (reason) }
                            @if let Some(until) = freeze.until { " · until " (time(until)) }
                            @if let Some(actor) = &freeze.actor { " · by " (actor) }
                        }
                    }
                    main id="main" tabindex="-1" {
                        h1.page-title { (title) }
                        (content)
                    }
                }
                div.toast role="status" aria-live="polite" data-toast {}
            }
        }
    };
    Html(page.into_string())
}

/// A page without navigation (sign-in, errors).
pub(crate) fn bare(title: &str, content: Markup) -> Html<String> {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, None))
            body.bare-body { (content) div.toast role="status" aria-live="polite" data-toast {} }
        }
    };
    Html(page.into_string())
}

/// The colour family of a badge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    /// Success.
    Ok,
    /// In progress.
    Busy,
    /// Needs a look.
    Warn,
    /// Failure.
    Bad,
    /// Neutral.
    Muted,
}

impl Tone {
    fn class(self) -> &'static str {
        match self {
            Tone::Ok => "badge ok",
            Tone::Busy => "badge busy",
            Tone::Warn => "badge warn",
            Tone::Bad => "badge bad",
            Tone::Muted => "badge muted",
        }
    }
}

/// A coloured label.
pub(crate) fn badge(text: &str, tone: Tone) -> Markup {
    html! { span class=(tone.class()) { (text) } }
}

/// The tone of a target state (also used by the live grid's script through the class
/// names `state-<name>`).
pub(crate) fn target_tone(state: TargetState) -> Tone {
    match state {
        TargetState::Succeeded => Tone::Ok,
        TargetState::Queued | TargetState::Delivered | TargetState::Running => Tone::Busy,
        TargetState::Skipped | TargetState::Expired | TargetState::Missed => Tone::Warn,
        TargetState::Failed
        | TargetState::TimedOut
        | TargetState::Killed
        | TargetState::Interrupted => Tone::Bad,
    }
}

/// The badge of a target state.
pub(crate) fn target_badge(state: TargetState) -> Markup {
    html! { span class=(format!("{} state-{}", target_tone(state).class(), state.as_str())) data-state=(state.as_str()) { (state.as_str().replace('_', " ")) } }
}

/// The badge of a run status.
pub(crate) fn run_badge(status: RunStatus) -> Markup {
    let tone = match status {
        RunStatus::Done => Tone::Ok,
        RunStatus::Queued | RunStatus::Running => Tone::Busy,
        RunStatus::Killed => Tone::Bad,
    };
    badge(status.as_str(), tone)
}

/// A stacked bar of a run's targets by outcome (succeeded, failed, open, other), as SVG
/// so it needs no inline style.
pub(crate) fn outcome_bar(counts: &RunCounts) -> Markup {
    let total = counts.total();
    let mut parts = [
        ("seg-ok", 0u64),
        ("seg-bad", 0),
        ("seg-warn", 0),
        ("seg-busy", 0),
    ];
    for (state, count) in &counts.by_state {
        let slot = match target_tone(*state) {
            Tone::Ok => 0,
            Tone::Bad => 1,
            Tone::Warn | Tone::Muted => 2,
            Tone::Busy => 3,
        };
        parts[slot].1 += count;
    }
    let label = format!(
        "{} succeeded, {} failed, {} skipped or expired, {} open of {}",
        parts[0].1, parts[1].1, parts[2].1, parts[3].1, total
    );
    let segments = segments(&parts, total);
    html! {
        svg.outcome viewBox="0 0 100 8" preserveAspectRatio="none" role="img" aria-label=(label) {
            title { (label) }
            rect.seg-empty x="0" y="0" width="100" height="8" {}
            @for (class, x, width) in segments {
                rect class=(class) x=(format!("{x:.2}")) y="0" width=(format!("{width:.2}")) height="8" {}
            }
        }
    }
}

/// Left edge and width (in percent) of each non-empty part of a stacked bar.
pub(crate) fn segments(parts: &[(&'static str, u64)], total: u64) -> Vec<(&'static str, f64, f64)> {
    let total = total.max(1) as f64;
    let mut x = 0.0;
    let mut out = Vec::new();
    for (class, count) in parts {
        if *count > 0 {
            let width = 100.0 * *count as f64 / total;
            out.push((*class, x, width));
            x += width;
        }
    }
    out
}

/// A timestamp as `<time>`, shown relative to now by the script and absolute on hover.
pub(crate) fn time(at: Timestamp) -> Markup {
    let iso = at.to_string();
    html! { time datetime=(iso) title=(iso) data-relative { (short_time(at)) } }
}

/// An optional timestamp; `—` when absent.
pub(crate) fn maybe_time(at: Option<Timestamp>) -> Markup {
    match at {
        Some(at) => time(at),
        None => html! { span.muted { "—" } },
    }
}

/// `2026-11-30 14:03:12 UTC`, the server-side text of a time (the script localises it).
pub(crate) fn short_time(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A duration between two instants, e.g. `1.2 s`, `3 min 4 s`.
pub(crate) fn duration(from: Timestamp, to: Timestamp) -> String {
    let millis = to.as_millisecond() - from.as_millisecond();
    if millis < 0 {
        return "—".into();
    }
    if millis < 1_000 {
        format!("{millis} ms")
    } else if millis < 60_000 {
        format!("{:.1} s", millis as f64 / 1000.0)
    } else if millis < 3_600_000 {
        format!("{} min {} s", millis / 60_000, (millis % 60_000) / 1000)
    } else {
        format!(
            "{} h {} min",
            millis / 3_600_000,
            (millis % 3_600_000) / 60_000
        )
    }
}

/// Percent-encodes a query value (RFC 3986's unreserved characters and `/` stay).
pub(crate) fn url_encode(text: &str) -> String {
    const KEPT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'/');
    percent_encoding::utf8_percent_encode(text, KEPT).to_string()
}

/// `path?k=v&…` from the pairs whose value is not empty.
pub(crate) fn link(path: &str, pairs: &[(&str, String)]) -> String {
    let query: Vec<String> = pairs
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| format!("{key}={}", url_encode(value)))
        .collect();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// Previous/next links and "41–60 of 10,000" for a list; `pairs` are the filters to keep.
pub(crate) fn pager(
    path: &str,
    pairs: &[(&str, String)],
    offset: u64,
    limit: u32,
    total: u64,
) -> Markup {
    pager_with(offset, limit, total, |offset| {
        let mut all = pairs.to_vec();
        if offset > 0 {
            all.push(("offset", offset.to_string()));
        }
        link(path, &all)
    })
}

/// [`pager`] with the address of another offset made by `href` (for pages with several
/// lists, each with its own offset parameter).
pub(crate) fn pager_with(
    offset: u64,
    limit: u32,
    total: u64,
    href: impl Fn(u64) -> String,
) -> Markup {
    if total == 0 {
        // An empty list says so itself; "0–0 of 0" adds nothing.
        return html! {};
    }
    let limit = u64::from(limit.max(1));
    let first = offset.saturating_add(1).min(total);
    let last = offset.saturating_add(limit).min(total);
    html! {
        nav.pager aria-label="Pages" {
            span.pager-range { (thousands(first)) "–" (thousands(last)) " of " (thousands(total)) }
            @if offset > 0 {
                a.button.small href=(href(offset.saturating_sub(limit))) rel="prev" { "← Previous" }
            }
            @if last < total {
                a.button.small href=(href(offset.saturating_add(limit))) rel="next" { "Next →" }
            }
        }
    }
}

/// 12345 → `12,345`.
pub(crate) fn thousands(number: u64) -> String {
    let digits = number.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A table header that sorts by `key`, toggling direction when it is the current key.
pub(crate) fn sort_header(
    label: &str,
    key: &str,
    current: &str,
    descending: bool,
    path: &str,
    pairs: &[(&str, String)],
) -> Markup {
    let active = key == current;
    let next_desc = active && !descending;
    let mut all = pairs.to_vec();
    all.push(("sort", key.to_string()));
    if next_desc {
        all.push(("dir", "desc".into()));
    }
    let aria = match (active, descending) {
        (false, _) => None,
        (true, false) => Some("ascending"),
        (true, true) => Some("descending"),
    };
    html! {
        th aria-sort=[aria] {
            a.sort href=(link(path, &all)) {
                (label)
                @if active { span.sort-mark aria-hidden="true" { @if descending { " ▾" } @else { " ▴" } } }
            }
        }
    }
}

/// A friendly empty state.
pub(crate) fn empty(message: &str) -> Markup {
    html! { p.empty { (message) } }
}

/// A JSON value shown as indented text.
pub(crate) fn json_block(value: &serde_json::Value) -> Markup {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    html! { pre.code { (text) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_links_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(
            link(
                "/agents",
                &[("q", "web 01&x".into()), ("group", String::new())]
            ),
            "/agents?q=web%2001%26x"
        );
        let from = Timestamp::from_millisecond(0).unwrap();
        assert_eq!(
            duration(from, Timestamp::from_millisecond(250).unwrap()),
            "250 ms"
        );
        assert_eq!(
            duration(from, Timestamp::from_millisecond(1500).unwrap()),
            "1.5 s"
        );
        assert_eq!(
            duration(from, Timestamp::from_millisecond(184_000).unwrap()),
            "3 min 4 s"
        );
    }

    #[test]
    fn text_is_escaped() {
        let markup = badge("<script>alert(1)</script>", Tone::Bad).into_string();
        assert!(markup.contains("&lt;script&gt;"), "{markup}");
        assert!(!markup.contains("<script>"), "{markup}");
    }
}
