//! The target grid of a run page (one tile per target, coloured by state, filterable and
//! paged for big runs) and the output panel beside it.
//!
//! Without script, a tile is a submit button of a GET form, so clicking it reloads the
//! page with `?agent=` and the panel shows that target's stored output, rendered here.
//! With `assets/run.js`, clicking selects the tile in place and the panel follows the
//! target live.

use jiff::Timestamp;
use maud::{Markup, html};
use tutti_api::runs::ResolvedOutput;
use tutti_proto::{AgentId, ResultId, RunId};
use tutti_store::{Paged, RunDetail, StoreError, StoredResult, Target, TargetState};

use super::detail::tone_name;
use crate::app::App;
use crate::views::output::resolve;
use crate::web::PageError;
use crate::web::layout::{self, pager, target_badge, target_tone, thousands};

/// Tiles per page of the grid.
pub(super) const GRID_LIMIT: u32 = 500;

/// What the grid shows: its state filter, the selected target and the page.
#[derive(Debug, Clone, Copy)]
pub(super) struct GridFilter<'a> {
    /// Only targets in this state.
    pub state: Option<TargetState>,
    /// The target whose output is open.
    pub selected: Option<&'a AgentId>,
    /// Targets skipped.
    pub offset: u64,
}

/// A target's stored result with its full output, or `None` while it has none.
#[derive(Debug)]
pub(super) struct SelectedOutput {
    /// The result and its resolved stdout and stderr.
    pub result: Option<(StoredResult, ResolvedOutput, ResolvedOutput)>,
}

/// Loads the stored result of `agent_id` (with output objects resolved), if there is one.
pub(super) async fn stored_output(
    app: &App,
    run_id: RunId,
    agent_id: &AgentId,
) -> Result<SelectedOutput, PageError> {
    let stored = match app
        .store
        .get_result(&ResultId::new(&run_id, agent_id))
        .await
    {
        Ok(stored) => stored,
        Err(StoreError::NotFound(_)) => return Ok(SelectedOutput { result: None }),
        Err(err) => return Err(err.into()),
    };
    let stdout = resolve(app, &stored.result.stdout).await;
    let stderr = resolve(app, &stored.result.stderr).await;
    Ok(SelectedOutput {
        result: Some((stored, stdout, stderr)),
    })
}

/// The grid card: a state filter, the tiles, a pager.
pub(super) fn targets_card(
    detail: &RunDetail,
    targets: &Paged<Target>,
    filter: &GridFilter<'_>,
    now: Timestamp,
) -> Markup {
    let run_path = format!("/runs/{}", detail.run.run_id);
    let state_name = filter
        .state
        .map(|state| state.as_str().to_string())
        .unwrap_or_default();
    let selected = filter
        .selected
        .map(|agent| agent.to_string())
        .unwrap_or_default();
    let pairs = [("state", state_name.clone()), ("agent", selected.clone())];
    html! {
        section.card.targets-card {
            div.card-head {
                h2 { "Agents" }
                form.toolbar.compact method="get" action=(run_path) {
                    @if !selected.is_empty() { input type="hidden" name="agent" value=(selected); }
                    div.field {
                        label for="grid-state" { "State" }
                        select #grid-state name="state" data-autosubmit data-testid="grid-state" {
                            option value="" selected[filter.state.is_none()] { "Any (" (thousands(detail.counts.total())) ")" }
                            @for (state, n) in &detail.counts.by_state {
                                option value=(state.as_str()) selected[filter.state == Some(*state)] {
                                    (state.as_str().replace('_', " ")) " (" (thousands(*n)) ")"
                                }
                            }
                        }
                    }
                    noscript { button type="submit" { "Show" } }
                }
            }
            @if targets.items.is_empty() {
                (layout::empty(if filter.state.is_some() { "No targets in this state." } else { "This run has no targets." }))
            } @else {
                form method="get" action=(run_path) data-testid="target-grid" {
                    @if !state_name.is_empty() { input type="hidden" name="state" value=(state_name); }
                    @if filter.offset > 0 { input type="hidden" name="offset" value=(filter.offset); }
                    div.target-grid {
                        @for target in &targets.items {
                            (tile(target, filter.selected == Some(&target.agent_id), now))
                        }
                    }
                }
            }
            @if targets.total > u64::from(GRID_LIMIT) || filter.offset > 0 {
                (pager(&run_path, &pairs, filter.offset, GRID_LIMIT, targets.total))
            }
        }
    }
}

fn tile(target: &Target, selected: bool, now: Timestamp) -> Markup {
    let agent = target.agent_id.as_str();
    let state = target.state;
    let class = format!("target tone-{}", tone_name(target_tone(state)));
    let title = match &target.reason {
        Some(reason) => format!("{agent}: {} ({reason})", state.as_str()),
        None => format!("{agent}: {}", state.as_str()),
    };
    html! {
        button class=(class) type="submit" name="agent" value=(agent)
            data-testid=(format!("target-{agent}")) data-agent=(agent) data-state=(state.as_str())
            data-started=[target.started_at.map(|at| at.to_string())]
            aria-pressed=(if selected { "true" } else { "false" }) title=(title) {
            span.target-id { (agent) }
            span.target-meta {
                span.target-state { (state_text(state, target.reason.as_deref())) }
                span.target-exit { @if let Some(code) = target.exit_code { " · exit " (code) } }
                span.target-duration { (duration_text(target, now)) }
            }
        }
    }
}

/// `failed`, `skipped (killed)`: the state, and the reason when the server gave one.
fn state_text(state: TargetState, reason: Option<&str>) -> String {
    let name = state.as_str().replace('_', " ");
    match reason.filter(|reason| !reason.is_empty()) {
        Some(reason) => format!("{name} ({reason})"),
        None => name,
    }
}

/// ` · 1.2 s` for a finished target, ` · 4 s so far` for a running one, empty otherwise.
fn duration_text(target: &Target, now: Timestamp) -> String {
    match (target.started_at, target.finished_at) {
        (Some(started), Some(finished)) => format!(" · {}", layout::duration(started, finished)),
        (Some(started), None) if target.state == TargetState::Running => {
            format!(" · {} so far", layout::duration(started, now))
        }
        _ => String::new(),
    }
}

/// The output panel: the selected target's stored output (server-rendered for `?agent=`),
/// which the script replaces with live output or the stored result of another tile.
pub(super) fn output_card(
    run_id: RunId,
    selected: Option<&AgentId>,
    output: Option<&SelectedOutput>,
) -> Markup {
    let agent = selected.map(|agent| agent.to_string()).unwrap_or_default();
    let full_link = format!(
        "/runs/{run_id}?agent={}#output-panel",
        layout::url_encode(&agent)
    );
    let result = output.and_then(|output| output.result.as_ref());
    let stderr = result
        .map(|(_, _, stderr)| stderr.text.as_str())
        .unwrap_or_default();
    html! {
        section.card.output-card #output-panel data-testid="output-panel" {
            div.card-head {
                h2 { "Output " span.mono #output-agent data-testid="output-agent" { (agent) } }
                div.actions {
                    span #output-status data-testid="output-status" {
                        @if let Some((stored, _, _)) = result {
                            (result_summary(stored))
                        } @else if selected.is_some() {
                            span.muted { "no result yet" }
                        }
                    }
                    a.button.small #output-full href=(full_link) hidden[selected.is_none()] data-testid="output-full" { "Full output" }
                    button.small type="button" data-copy="output" { "Copy" }
                }
            }
            p.hint #output-hint hidden[selected.is_some()] { "Select an agent to see its output. Running agents stream it live." }
            pre.output.live #output data-testid="output" {
                @if let Some((_, stdout, _)) = result { (stdout.text) }
                @else if selected.is_some() { "The agent has not reported a result yet." }
            }
            div #output-stderr-box hidden[stderr.is_empty()] {
                h3.stderr-title { "stderr" }
                pre.output.stderr #output-stderr data-testid="output-stderr" { (stderr) }
            }
            @if let Some((_, stdout, stderr)) = result {
                @for error in [&stdout.object_error, &stderr.object_error].into_iter().flatten() {
                    p.hint { "The full output could not be loaded (" (error) "); this is the inline copy." }
                }
            }
        }
    }
}

fn result_summary(stored: &StoredResult) -> Markup {
    let result = &stored.result;
    let state = TargetState::parse(result.status.state());
    html! {
        @match state {
            Some(state) => (target_badge(state)),
            None => span.badge.muted { (result.status.state()) },
        }
        @if let Some(code) = result.exit_code { " " span.muted { "exit " (code) } }
        @if let Some(started) = result.started_at { " " span.muted { (layout::duration(started, result.finished_at)) } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_carry_their_state_and_escape_text() {
        let target = Target {
            run_id: "01arz3ndektsv4rrffq69g5fav".parse().unwrap(),
            agent_id: "web-01".parse().unwrap(),
            state: TargetState::TimedOut,
            reason: Some("<b>slow</b>".into()),
            exit_code: Some(137),
            command_seq: None,
            queued_at: Timestamp::UNIX_EPOCH,
            delivered_at: None,
            started_at: Some(Timestamp::UNIX_EPOCH),
            finished_at: Some(Timestamp::from_millisecond(1500).unwrap()),
            wave: None,
            released_at: None,
        };
        let html = tile(&target, true, Timestamp::UNIX_EPOCH).into_string();
        for needle in [
            "data-testid=\"target-web-01\"",
            "data-state=\"timed_out\"",
            "class=\"target tone-bad\"",
            "aria-pressed=\"true\"",
            "exit 137",
            "1.5 s",
            "&lt;b&gt;slow",
        ] {
            assert!(html.contains(needle), "{needle} in {html}");
        }
    }
}
