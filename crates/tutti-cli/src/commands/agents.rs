//! `tutti agents`: list agents with their status, or show one.

use serde_json::Value;

use crate::args::{AgentsAction, AgentsArgs, GroupsAction};
use crate::client::{ApiClient, CliError, urlencode};
use crate::output::{print_json, state_cell, table, text};

/// Lists agents, or shows one.
pub(crate) async fn agents(
    client: &ApiClient,
    args: AgentsArgs,
    json: bool,
) -> Result<(), CliError> {
    match args.action {
        Some(AgentsAction::Show { agent_id }) => show(client, &agent_id, json).await,
        Some(AgentsAction::Groups {
            agent_id,
            action: GroupsAction::Set { groups },
        }) => set_groups(client, &agent_id, groups, json).await,
        None => list(client, args.search.as_deref(), args.limit, json).await,
    }
}

async fn list(
    client: &ApiClient,
    search: Option<&str>,
    limit: u32,
    json: bool,
) -> Result<(), CliError> {
    let mut path = format!("agents?limit={limit}");
    if let Some(search) = search {
        path.push_str(&format!("&search={}", urlencode(search)));
    }
    let page: Value = client.get(&path).await?;
    if json {
        print_json(&page);
        return Ok(());
    }
    let mut rows = table(&[
        "AGENT",
        "STATUS",
        "HOSTNAME",
        "OS",
        "VERSION",
        "LAST SEEN",
        "GROUPS",
    ]);
    for agent in page["items"].as_array().into_iter().flatten() {
        let groups: Vec<String> = agent["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g.as_str().map(String::from))
            .collect();
        rows.add_row(vec![
            comfy_table::Cell::new(text(agent, "agent_id")),
            state_cell(&liveness(agent)),
            comfy_table::Cell::new(text(agent, "hostname")),
            comfy_table::Cell::new(
                format!("{} {}", text(agent, "os"), text(agent, "os_version"))
                    .trim()
                    .to_string(),
            ),
            comfy_table::Cell::new(text(agent, "version")),
            comfy_table::Cell::new(text(agent, "last_heartbeat_at")),
            comfy_table::Cell::new(groups.join(", ")),
        ]);
    }
    println!("{rows}");
    println!(
        "{} of {} agents",
        page["items"].as_array().map_or(0, Vec::len),
        page["total"]
    );
    Ok(())
}

async fn set_groups(
    client: &ApiClient,
    agent_id: &str,
    groups: Vec<String>,
    json: bool,
) -> Result<(), CliError> {
    let path = format!("agents/{}/groups", crate::client::urlencode(agent_id));
    let answer: serde_json::Value = client
        .put(&path, &serde_json::json!({ "groups": groups }))
        .await?;
    match json {
        true => print_json(&answer),
        false if groups.is_empty() => println!("{agent_id} is in no group now"),
        false => println!("{agent_id} is in {} now", groups.join(", ")),
    }
    Ok(())
}

async fn show(client: &ApiClient, agent_id: &str, json: bool) -> Result<(), CliError> {
    let agent: Value = client.get(&format!("agents/{agent_id}")).await?;
    if json {
        print_json(&agent);
        return Ok(());
    }
    let summary = agent.get("agent").unwrap_or(&agent);
    let mut rows = table(&["FIELD", "VALUE"]);
    for field in [
        "agent_id",
        "hostname",
        "os",
        "os_version",
        "arch",
        "version",
        "enrolled_at",
        "last_heartbeat_at",
    ] {
        rows.add_row(vec![field.to_string(), text(summary, field)]);
    }
    rows.add_row(vec!["status".to_string(), liveness(summary)]);
    println!("{rows}");
    Ok(())
}

fn liveness(agent: &Value) -> String {
    match &agent["liveness"] {
        Value::String(state) => state.clone(),
        other => other.to_string(),
    }
}
