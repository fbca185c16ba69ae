//! `/runs/{run_id}`: one run — header (job, status, who and when), counts per state with
//! a wide outcome bar, the operator's kill button, the rollout card when the run has
//! waves, then the target grid and output panel from `grid.rs`.
//!
//! The page is complete without script; `assets/run.js` keeps the status, counts, bar and
//! tiles current from the run's `progress` events.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use maud::{Markup, html};
use serde::Deserialize;
use tutti_proto::{AgentId, RunId};
use tutti_store::{
    Page, RolloutState, Run, RunCounts, RunDetail, RunStatus, TargetQuery, TargetState,
};

use super::grid::{self, GRID_LIMIT};
use super::{filled, query};
use crate::actor::{Actor, Role};
use crate::app::App;
use crate::engine::rollout::{self, RolloutView};
use crate::error::Error;
use crate::views::parse_id;
use crate::web::layout::{self, Nav, shell, target_tone, thousands};
use crate::web::tables::short_id;
use crate::web::{PageContext, PageError, PageResult};

/// `?state=&agent=&offset=` of a run page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct DetailParams {
    /// Only targets in this state.
    state: Option<String>,
    /// The target whose output is shown.
    agent: Option<String>,
    /// Targets to skip.
    offset: Option<u64>,
}

/// One run, live.
pub(crate) async fn detail(
    State(app): State<App>,
    actor: Actor,
    Path(run_id): Path<String>,
    params: Result<Query<DetailParams>, QueryRejection>,
) -> PageResult {
    let params = query(params)?;
    let run_id: RunId = parse_id(&run_id)?;
    let state = filled(&params.state).map(parse_state).transpose()?;
    let selected: Option<AgentId> = filled(&params.agent).map(parse_id).transpose()?;
    let ctx = PageContext::load(&app, actor).await;
    let detail = app.store.get_run(&run_id).await?;
    let page = Page::new(GRID_LIMIT, params.offset.unwrap_or(0));
    let targets = app
        .store
        .list_targets(&run_id, &TargetQuery { state, page })
        .await?;
    let rollout = rollout::view(&app, run_id).await?;
    let output = match &selected {
        Some(agent_id) => Some(grid::stored_output(&app, run_id, agent_id).await?),
        None => None,
    };
    let filter = grid::GridFilter {
        state,
        selected: selected.as_ref(),
        offset: page.offset,
    };
    let operator = ctx.can(Role::Operator);
    let content = html! {
        div.run-page data-run=(run_id) data-status=(detail.run.status.as_str()) data-open=(detail.counts.open()) {
            (header(&detail, operator))
            (counts_card(&detail.counts))
            @if let Some(view) = &rollout { (rollout_card(view, operator)) }
            div.run-split {
                (grid::targets_card(&detail, &targets, &filter, ctx.now))
                (grid::output_card(run_id, selected.as_ref(), output.as_ref()))
            }
        }
        script src="/assets/run.js" defer {}
    };
    let title = format!("Run {}", short_id(&run_id.to_string()));
    Ok(shell(&ctx, &title, Nav::Runs, content))
}

fn parse_state(text: &str) -> Result<TargetState, PageError> {
    TargetState::parse(text).ok_or_else(|| {
        PageError(Error::bad_request(format!(
            "invalid target state {text:?} (use one of: {})",
            TargetState::ALL.map(TargetState::as_str).join(", ")
        )))
    })
}

/// The class of a run status badge (the script swaps it when the status changes).
pub(super) fn status_class(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Done => "badge ok",
        RunStatus::Queued | RunStatus::Running => "badge busy",
        RunStatus::Killed => "badge bad",
    }
}

fn header(detail: &RunDetail, operator: bool) -> Markup {
    let run = &detail.run;
    let open = detail.counts.open() > 0;
    html! {
        section.card {
            div.card-head {
                h2 {
                    "Job " a href=(format!("/jobs/{}", run.job_id)) data-testid="run-job" { (run.job_id) }
                    " " span.muted { "v" (run.job_version) }
                    " "
                    span class=(status_class(run.status)) data-testid="run-status" { (run.status.as_str()) }
                    @if let Some(schedule) = &run.schedule_name {
                        " " a.badge.muted href=(format!("/schedules/{}", layout::url_encode(schedule))) title="Fired by a schedule" data-testid="run-schedule" { "schedule " (schedule) }
                    }
                    @if run.during_freeze { " " span.badge.warn data-testid="run-during-freeze" title="Started while the fleet was frozen" { "during freeze" } }
                }
                @if operator && (open || matches!(run.status, RunStatus::Queued | RunStatus::Running)) {
                    div.actions {
                        button.danger type="button" data-testid="kill-run"
                            data-api=(format!("POST /api/v1/runs/{}/kill", run.run_id))
                            data-confirm="Kill this run? Queued targets are skipped and running processes are killed."
                            data-message="Kill sent" data-then="reload" { "Kill run" }
                    }
                }
            }
            dl.facts {
                dt { "Run" } dd.mono { (run.run_id) }
                dt { "Created" } dd { (layout::time(run.created_at)) " by " strong { (run.created_by) } }
                dt { "Targets" } dd { (targets_spec(run)) }
                @if let Some(deadline) = run.deadline { dt { "Deadline" } dd { (layout::time(deadline)) } }
                @if let Some(killed_at) = run.killed_at {
                    dt { "Killed" } dd { (layout::time(killed_at)) @if let Some(by) = &run.killed_by { " by " (by) } }
                }
            }
        }
    }
}

/// `all agents`, `groups web, db`, `agents a, b` from the stored selection.
fn targets_spec(run: &Run) -> String {
    let spec = &run.targets_spec;
    let names = |key: &str| -> Vec<String> {
        spec.get(key)
            .and_then(|value| value.as_array())
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    if spec.get("all").and_then(|value| value.as_bool()) == Some(true) {
        return "all agents".into();
    }
    let mut parts = Vec::new();
    let groups = names("groups");
    if !groups.is_empty() {
        parts.push(format!("groups {}", groups.join(", ")));
    }
    let agents = names("agents");
    match agents.len() {
        0 => {}
        1..=5 => parts.push(format!("agents {}", agents.join(", "))),
        n => parts.push(format!("{n} agents")),
    }
    if parts.is_empty() {
        "—".into()
    } else {
        parts.join("; ")
    }
}

fn counts_card(counts: &RunCounts) -> Markup {
    html! {
        section.card {
            div.card-head {
                h2 { "Progress" }
                span.muted { span data-testid="run-total" { (thousands(counts.total())) } (if counts.total() == 1 { " target" } else { " targets" }) }
            }
            div.counts data-testid="run-counts" {
                (count_badges(counts))
            }
            div.outcome-wide { (layout::outcome_bar(counts)) }
        }
    }
}

/// One badge per state with targets, `succeeded 12` (rebuilt by the script from `counts`).
fn count_badges(counts: &RunCounts) -> Markup {
    html! {
        @if counts.total() == 0 { span.muted { "No targets." } }
        @for (state, n) in &counts.by_state {
            span class=(format!("badge {} state-{}", tone_name(target_tone(*state)), state.as_str())) data-state=(state.as_str()) data-count=(n) {
                (state.as_str().replace('_', " ")) " " (thousands(*n))
            }
        }
    }
}

/// `ok`, `busy`, `warn`, `bad` (also the `tone-*` classes of the tiles).
pub(super) fn tone_name(tone: layout::Tone) -> &'static str {
    match tone {
        layout::Tone::Ok => "ok",
        layout::Tone::Busy => "busy",
        layout::Tone::Warn => "warn",
        layout::Tone::Bad => "bad",
        layout::Tone::Muted => "muted",
    }
}

fn rollout_tone(state: RolloutState) -> layout::Tone {
    match state {
        RolloutState::Running | RolloutState::Waiting => layout::Tone::Busy,
        RolloutState::Paused => layout::Tone::Warn,
        RolloutState::Aborted => layout::Tone::Bad,
        RolloutState::Done => layout::Tone::Ok,
    }
}

fn rollout_card(view: &RolloutView, operator: bool) -> Markup {
    let rollout = &view.rollout;
    let state = rollout.state;
    let base = format!("POST /api/v1/runs/{}/rollout", rollout.run_id);
    let can_pause = matches!(state, RolloutState::Running | RolloutState::Waiting);
    let can_resume =
        state == RolloutState::Paused || (state == RolloutState::Aborted && rollout.resumable);
    let can_abort = matches!(
        state,
        RolloutState::Running | RolloutState::Waiting | RolloutState::Paused
    );
    html! {
        section.card data-testid="rollout" {
            div.card-head {
                h2 { "Rollout " span data-testid="rollout-state" { (layout::badge(state.as_str(), rollout_tone(state))) } }
                @if operator {
                    div.actions {
                        @if can_pause {
                            button type="button" data-testid="rollout-pause" data-api=(format!("{base}/pause")) data-then="reload" { "Pause" }
                        }
                        @if can_resume {
                            button.primary type="button" data-testid="rollout-resume" data-api=(format!("{base}/resume")) data-then="reload" { "Resume" }
                        }
                        @if can_abort {
                            button.danger type="button" data-testid="rollout-abort" data-api=(format!("{base}/abort")) data-confirm="Abort the rollout? Held targets are skipped; released ones finish." data-then="reload" { "Abort" }
                        }
                    }
                }
            }
            dl.facts {
                dt { "Wave" } dd { (rollout.current_wave) " of " (rollout.n_waves) " · started " (layout::time(rollout.wave_started_at)) }
                dt { "Released" } dd { (thousands(view.released)) " released, " (thousands(view.held)) " held, " (thousands(view.failures)) " failed" }
                @if let Some(next) = rollout.next_wave_at { dt { "Next wave" } dd { (layout::time(next)) } }
                @if let Some(reason) = &rollout.reason { dt { "Reason" } dd { (reason) } }
                @if let Some(waves) = rollout.plan.get("spec").and_then(|spec| spec.get("waves")).and_then(|waves| waves.as_array()) {
                    dt { "Plan" } dd { (plan_text(waves)) }
                }
            }
            div.table-wrap {
                table data-testid="rollout-waves" {
                    thead { tr {
                        th { "Wave" } th.num { "Targets" } th.num { "Held" } th.num { "Open" }
                        th.num { "Succeeded" } th.num { "Failed" } th.num { "Skipped" }
                    } }
                    tbody {
                        @for wave in &view.waves {
                            tr aria-current=[(wave.wave == rollout.current_wave).then_some("step")] {
                                td { (wave.wave) }
                                td.num { (thousands(wave.n_targets)) }
                                td.num { (thousands(wave.held)) }
                                td.num { (thousands(wave.open)) }
                                td.num { (thousands(wave.succeeded)) }
                                td.num { (thousands(wave.failed)) }
                                td.num { (thousands(wave.skipped)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `5%, 50%, 100%` from the stored waves.
fn plan_text(waves: &[serde_json::Value]) -> String {
    let sizes: Vec<String> = waves
        .iter()
        .map(|wave| match wave {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        })
        .collect();
    format!("waves {}", sizes.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with(spec: serde_json::Value) -> Run {
        Run {
            run_id: "01arz3ndektsv4rrffq69g5fav".parse().unwrap(),
            job_id: "hello".parse().unwrap(),
            job_version: 1,
            created_at: jiff::Timestamp::UNIX_EPOCH,
            created_by: "ada".into(),
            targets_spec: spec,
            deadline: None,
            scheduled: false,
            schedule_name: None,
            during_freeze: false,
            status: RunStatus::Running,
            killed_at: None,
            killed_by: None,
        }
    }

    #[test]
    fn target_selections_read_as_words() {
        let all = run_with(serde_json::json!({"all": true, "groups": [], "agents": []}));
        assert_eq!(targets_spec(&all), "all agents");
        let some =
            run_with(serde_json::json!({"all": false, "groups": ["web"], "agents": ["a", "b"]}));
        assert_eq!(targets_spec(&some), "groups web; agents a, b");
        let many = run_with(serde_json::json!({"agents": ["a", "b", "c", "d", "e", "f"]}));
        assert_eq!(targets_spec(&many), "6 agents");
        assert!(parse_state("finished").is_err());
        assert_eq!(parse_state("timed_out").unwrap(), TargetState::TimedOut);
    }
}
