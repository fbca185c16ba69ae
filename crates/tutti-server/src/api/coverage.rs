//! `GET /api/v1/schedules/{name}/coverage`: where each agent a desired-state schedule
//! targets stands with it, judged by the same rules the scheduler acts on
//! (`schedule/desired.rs`), plus whether the agent is online.
//!
//! Each agent gets one status: `done`; else `offline` when the agent is not online (its
//! command waits in the stream, or it will get one when it is back); else `in_flight`,
//! `failed` (retry limit reached) or `pending` (due, or waiting for its backoff). A cron
//! schedule has no coverage: 400.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, State};
use jiff::Timestamp;
use serde::Serialize;
use tutti_proto::{AgentId, RunId};
use tutti_store::{AgentQuery, Liveness, MAX_PAGE_LIMIT, Page, TargetState};

use crate::api::online_since;
use crate::api::schedules::parse_stored;
use crate::app::App;
use crate::error::Result;
use crate::schedule::desired::{self, AgentStanding, Hold, Standing};

/// One agent's place in a schedule's coverage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CoverageStatus {
    /// In the desired state.
    Done,
    /// Reached the retry limit; not retried at this version (or in this period).
    Failed,
    /// Due, or waiting for its retry backoff.
    Pending,
    /// Not done, and the agent is offline.
    Offline,
    /// Running (or about to: its command was delivered or is queued).
    InFlight,
}

/// Agents per status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CoverageTotals {
    /// Targeted agents.
    pub total: usize,
    /// `done` agents.
    pub done: usize,
    /// `failed` agents.
    pub failed: usize,
    /// `pending` agents.
    pub pending: usize,
    /// `offline` agents.
    pub offline: usize,
    /// `in_flight` agents.
    pub in_flight: usize,
}

/// One targeted agent.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgentCoverageView {
    /// The agent.
    #[schema(value_type = String)]
    pub agent_id: AgentId,
    /// Its status.
    pub status: CoverageStatus,
    /// The state of its latest target of this schedule (at this version), if any.
    #[schema(value_type = Option<String>)]
    pub state: Option<TargetState>,
    /// That target's run.
    #[schema(value_type = Option<String>)]
    pub run_id: Option<RunId>,
    /// When that target finished.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Timestamp>,
    /// Failed attempts since its last success.
    pub n_failed_attempts: u32,
    /// When a failed agent is retried (after its backoff).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub retry_at: Option<Timestamp>,
}

/// The answer of the coverage route.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Coverage {
    /// The schedule.
    pub schedule: String,
    /// Its job.
    #[schema(value_type = String)]
    pub job_id: tutti_proto::JobId,
    /// The version judged (`once_per_version`); `null` for `every_hours` (any version).
    pub job_version: Option<u32>,
    /// Why the scheduler starts nothing now (`disabled`, `outside_window`, `frozen`,
    /// `job_revoked`, `job_missing`), or `null`.
    #[schema(value_type = Option<String>)]
    pub held: Option<Hold>,
    /// Agents per status.
    pub totals: CoverageTotals,
    /// Every targeted agent, by id.
    pub agents: Vec<AgentCoverageView>,
}

#[utoipa::path(get, path = "/api/v1/schedules/{name}/coverage", responses((status = 200, body = Coverage), (status = 400, description = "A cron schedule", body = crate::api::error::ErrorBody), (status = 404, body = crate::api::error::ErrorBody)))]
/// Where each agent a desired-state schedule targets stands.
pub async fn coverage(State(app): State<App>, Path(name): Path<String>) -> Result<Json<Coverage>> {
    let schedule = app.store.get_schedule(&name).await?;
    let spec = parse_stored(&schedule)?;
    let now = Timestamp::now();
    let assessment = desired::assess(&app, &schedule.name, &spec, now).await?;
    let held = desired::hold(&app, &schedule, &spec, now).await?;
    let online = online_agents(&app).await?;
    let agents: Vec<AgentCoverageView> = assessment
        .agents
        .into_iter()
        .map(|agent| {
            let is_online = online.contains(&agent.agent_id);
            view(agent, is_online)
        })
        .collect();
    Ok(Json(Coverage {
        schedule: schedule.name,
        job_id: spec.job,
        job_version: assessment.judged_version,
        held,
        totals: totals(&agents),
        agents,
    }))
}

/// The status of one judged agent; see the module documentation for the order.
pub fn status(standing: Standing, is_online: bool) -> CoverageStatus {
    match standing {
        Standing::Done => CoverageStatus::Done,
        _ if !is_online => CoverageStatus::Offline,
        Standing::InFlight => CoverageStatus::InFlight,
        Standing::Failed => CoverageStatus::Failed,
        Standing::Waiting { .. } | Standing::Due => CoverageStatus::Pending,
    }
}

fn view(agent: AgentStanding, is_online: bool) -> AgentCoverageView {
    let retry_at = match agent.standing {
        Standing::Waiting { retry_at } => Some(retry_at),
        _ => None,
    };
    let coverage = agent.coverage.as_ref();
    AgentCoverageView {
        status: status(agent.standing, is_online),
        state: coverage.map(|c| c.state),
        run_id: coverage.map(|c| c.run_id),
        finished_at: coverage.and_then(|c| c.finished_at),
        n_failed_attempts: coverage.map_or(0, |c| c.n_failed_attempts),
        retry_at,
        agent_id: agent.agent_id,
    }
}

fn totals(agents: &[AgentCoverageView]) -> CoverageTotals {
    let mut totals = CoverageTotals {
        total: agents.len(),
        ..CoverageTotals::default()
    };
    for agent in agents {
        let slot = match agent.status {
            CoverageStatus::Done => &mut totals.done,
            CoverageStatus::Failed => &mut totals.failed,
            CoverageStatus::Pending => &mut totals.pending,
            CoverageStatus::Offline => &mut totals.offline,
            CoverageStatus::InFlight => &mut totals.in_flight,
        };
        *slot += 1;
    }
    totals
}

/// Every agent whose last heartbeat is recent enough, page by page.
async fn online_agents(app: &App) -> Result<BTreeSet<AgentId>> {
    let mut query = AgentQuery::all(online_since(app));
    query.liveness = Some(Liveness::Online);
    let mut online = BTreeSet::new();
    loop {
        query.page = Page::new(MAX_PAGE_LIMIT, online.len() as u64);
        let page = app.store.list_agents(&query).await?;
        let n_page = page.items.len();
        online.extend(page.items.into_iter().map(|agent| agent.agent_id));
        if n_page < MAX_PAGE_LIMIT as usize || online.len() as u64 >= page.total {
            return Ok(online);
        }
    }
}
