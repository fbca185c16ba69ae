//! The coverage card of a desired-state schedule: every agent it targets, judged by the
//! scheduler's own rules (`schedule::desired::assess`), with totals per standing, a
//! filter and a paged table. The assessment reads the store once
//! (`Store::schedule_coverage`) plus the target resolution; only the table is paged.

use jiff::Timestamp;
use maud::{Markup, html};
use tutti_store::Schedule;

use crate::app::App;
use crate::error::Error;
use crate::schedule::ScheduleSpec;
use crate::schedule::desired::{self, AgentStanding, Assessment, Hold, Standing};
use crate::web::PageError;
use crate::web::layout::{self, Tone, badge, pager, target_badge, thousands};
use crate::web::runs::{DEFAULT_LIMIT, list_page};

/// Standings in the order the totals show them.
const STANDINGS: [&str; 5] = ["done", "in_flight", "waiting", "due", "failed"];

/// The table's filter and page.
#[derive(Debug, Clone)]
pub(super) struct CoverageParams {
    standing: Option<&'static str>,
    offset: u64,
}

impl CoverageParams {
    /// `?standing=&offset=`; an unknown standing is a 400 page.
    pub(super) fn parse(
        standing: Option<&str>,
        offset: Option<u64>,
    ) -> Result<CoverageParams, PageError> {
        let standing = match standing.map(str::trim).filter(|text| !text.is_empty()) {
            None => None,
            Some(text) => Some(
                STANDINGS
                    .into_iter()
                    .find(|name| *name == text)
                    .ok_or_else(|| {
                        PageError(Error::bad_request(format!(
                            "invalid standing {text:?} (use one of: {})",
                            STANDINGS.join(", ")
                        )))
                    })?,
            ),
        };
        Ok(CoverageParams {
            standing,
            offset: offset.unwrap_or(0),
        })
    }
}

/// A schedule's assessment and why it starts nothing now, if it does not.
#[derive(Debug)]
pub(super) struct Coverage {
    assessment: Assessment,
    hold: Option<Hold>,
}

/// Judges every targeted agent now.
pub(super) async fn load(
    app: &App,
    schedule: &Schedule,
    spec: &ScheduleSpec,
    now: Timestamp,
) -> Result<Coverage, PageError> {
    let assessment = desired::assess(app, &schedule.name, spec, now).await?;
    let hold = desired::hold(app, schedule, spec, now).await?;
    Ok(Coverage { assessment, hold })
}

/// The run of the most recently queued target the coverage saw.
pub(super) fn latest_run(coverage: &Coverage) -> Option<tutti_proto::RunId> {
    coverage
        .assessment
        .agents
        .iter()
        .filter_map(|agent| agent.coverage.as_ref())
        .max_by_key(|coverage| coverage.queued_at)
        .map(|coverage| coverage.run_id)
}

fn standing_name(standing: Standing) -> &'static str {
    match standing {
        Standing::Done => "done",
        Standing::InFlight => "in_flight",
        Standing::Waiting { .. } => "waiting",
        Standing::Due => "due",
        Standing::Failed => "failed",
    }
}

fn standing_tone(name: &str) -> Tone {
    match name {
        "done" => Tone::Ok,
        "in_flight" => Tone::Busy,
        "waiting" | "due" => Tone::Warn,
        "failed" => Tone::Bad,
        _ => Tone::Muted,
    }
}

fn hold_text(hold: Hold) -> &'static str {
    match hold {
        Hold::Disabled => "the schedule is disabled",
        Hold::OutsideWindow => "outside its active period or maintenance window",
        Hold::Frozen => "the fleet is frozen",
        Hold::JobRevoked => "its job is revoked",
        Hold::JobMissing => "its job was deleted",
    }
}

/// The coverage card.
pub(super) fn card(name: &str, coverage: &Coverage, params: &CoverageParams) -> Markup {
    let agents = &coverage.assessment.agents;
    let totals: Vec<(&str, usize)> = STANDINGS
        .iter()
        .map(|name| {
            (
                *name,
                agents
                    .iter()
                    .filter(|agent| standing_name(agent.standing) == *name)
                    .count(),
            )
        })
        .collect();
    let shown: Vec<&AgentStanding> = agents
        .iter()
        .filter(|agent| {
            params
                .standing
                .is_none_or(|name| standing_name(agent.standing) == name)
        })
        .collect();
    let page = list_page(Some(DEFAULT_LIMIT), Some(params.offset));
    let start = usize::try_from(page.offset)
        .unwrap_or(usize::MAX)
        .min(shown.len());
    let end = (start + page.limit as usize).min(shown.len());
    let path = super::detail_path(name);
    let pairs = [("standing", params.standing.unwrap_or_default().to_string())];
    html! {
        section.card data-testid="coverage" {
            div.card-head {
                h2 { "Coverage" }
                span.muted {
                    @match coverage.assessment.judged_version {
                        Some(version) => { "judged at job version " (version) }
                        None => { "any job version within the period" }
                    }
                }
            }
            @if let Some(hold) = coverage.hold {
                p.hint data-testid="coverage-hold" { "Starting nothing now: " (hold_text(hold)) "." }
            }
            div.stats data-testid="coverage-totals" {
                a.stat href=(path.clone()) {
                    div.stat-label { "Targeted" }
                    div.stat-value data-testid="coverage-total" { (thousands(agents.len() as u64)) }
                }
                @for (standing, n) in &totals {
                    a.stat href=(layout::link(&path, &[("standing", standing.to_string())])) aria-current=[(params.standing == Some(*standing)).then_some("true")] {
                        div.stat-label { (standing.replace('_', " ")) }
                        div class=(stat_class(standing, *n)) data-testid=(format!("coverage-{standing}")) { (thousands(*n as u64)) }
                    }
                }
            }
            @if shown.is_empty() {
                (layout::empty(if agents.is_empty() { "The schedule targets no agent yet." } else { "No agent in this standing." }))
            } @else {
                div.table-wrap {
                    table data-testid="coverage-table" {
                        thead { tr {
                            th { "Agent" } th { "Standing" } th { "Latest target" } th.hide-narrow { "Run" }
                            th.hide-narrow { "Finished" } th.num { "Failed attempts" } th.hide-narrow { "Retry" }
                        } }
                        tbody {
                            @for agent in &shown[start..end] { (agent_row(agent)) }
                        }
                    }
                }
            }
            (pager(&path, &pairs, page.offset, page.limit, shown.len() as u64))
        }
    }
}

fn stat_class(standing: &str, n: usize) -> &'static str {
    match (standing, n) {
        (_, 0) => "stat-value",
        ("done", _) => "stat-value ok",
        ("failed", _) => "stat-value bad",
        ("waiting" | "due", _) => "stat-value warn",
        _ => "stat-value",
    }
}

fn agent_row(agent: &AgentStanding) -> Markup {
    let name = standing_name(agent.standing);
    let coverage = agent.coverage.as_ref();
    html! {
        tr data-testid=(format!("coverage-agent-{}", agent.agent_id)) {
            td { a href=(format!("/agents/{}", agent.agent_id)) { (agent.agent_id) } }
            td { (badge(&name.replace('_', " "), standing_tone(name))) }
            td { @match coverage { Some(c) => (target_badge(c.state)), None => span.muted { "never targeted" } } }
            td.hide-narrow { @if let Some(c) = coverage {
                a.mono href=(format!("/runs/{}?agent={}", c.run_id, agent.agent_id)) { (crate::web::tables::short_id(&c.run_id.to_string())) }
            } }
            td.hide-narrow { (layout::maybe_time(coverage.and_then(|c| c.finished_at))) }
            td.num { (coverage.map_or(0, |c| c.n_failed_attempts)) }
            td.hide-narrow { @if let Standing::Waiting { retry_at } = agent.standing { (layout::time(retry_at)) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standings_are_checked() {
        assert!(CoverageParams::parse(Some("done"), None).is_ok());
        assert!(
            CoverageParams::parse(Some(" "), Some(3))
                .unwrap()
                .standing
                .is_none()
        );
        assert!(CoverageParams::parse(Some("great"), None).is_err());
    }
}
