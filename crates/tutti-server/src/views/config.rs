//! An agent's configuration layers and what they merge to, for its API answer and its
//! dashboard page.

use serde::Serialize;
use tutti_proto::GroupName;
use tutti_proto::config::{AgentConfig, layered};
use tutti_store::Agent;

use crate::app::App;
use crate::error::Result;
use crate::fleet_kv::ConfigScope;

/// An agent's layers and the configuration they merge to.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EffectiveView {
    /// The global layer.
    #[schema(value_type = Option<tutti_api::fleet::ConfigLayer>)]
    pub global: Option<AgentConfig>,
    /// The group layers, in the agent's group order: `[group, layer or null]` pairs.
    #[schema(schema_with = group_layers_schema)]
    pub groups: Vec<(GroupName, Option<AgentConfig>)>,
    /// The agent's own layer.
    #[schema(value_type = Option<tutti_api::fleet::ConfigLayer>)]
    pub agent: Option<AgentConfig>,
    /// The merged result with defaults filled in.
    #[schema(value_type = tutti_api::fleet::ConfigLayer)]
    pub effective: serde_json::Value,
}

/// `EffectiveView::groups`: pairs of a group name and its layer (null when unset).
fn group_layers_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    let pair = serde_json::json!({
        "type": "array",
        "prefixItems": [
            {"type": "string", "pattern": tutti_proto::ids::NAME_PATTERN},
            {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/ConfigLayer"}]},
        ],
        "minItems": 2,
        "maxItems": 2,
    });
    let schema = serde_json::json!({"type": "array", "items": pair});
    serde_json::from_value(schema).expect("the group layers schema is a valid schema")
}

/// The layers that apply to `agent` and what they merge to (also the dashboard's agent
/// page). One KV read per layer: global, each of the agent's groups, its own.
pub async fn effective_view(app: &App, agent: &Agent) -> Result<EffectiveView> {
    let global = app.kv.get_config(&ConfigScope::Global).await?;
    let mut groups = Vec::with_capacity(agent.groups.len());
    for group in &agent.groups {
        let layer = app
            .kv
            .get_config(&ConfigScope::Group(group.clone()))
            .await?;
        groups.push((group.clone(), layer));
    }
    let own = app
        .kv
        .get_config(&ConfigScope::Agent(agent.agent_id.clone()))
        .await?;
    let group_layers: Vec<AgentConfig> = groups
        .iter()
        .map(|(_, layer)| layer.clone().unwrap_or_default())
        .collect();
    let merged = layered(
        &global.clone().unwrap_or_default(),
        &group_layers,
        &own.clone().unwrap_or_default(),
    );
    let effective = serde_json::json!({
        "heartbeat_interval_secs": merged.heartbeat_interval_secs,
        "inventory_interval_secs": merged.inventory_interval_secs,
        "concurrency": merged.concurrency,
        "log_level": merged.log_level,
        "output_limit_bytes": merged.output_limit_bytes,
        "inline_output_limit_bytes": merged.inline_output_limit_bytes,
    });
    Ok(EffectiveView {
        global,
        groups,
        agent: own,
        effective,
    })
}
