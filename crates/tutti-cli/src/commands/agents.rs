//! `tutti agents`: list agents with their status, or show one.

use comfy_table::Cell;
use tutti_api::Paged;
use tutti_api::agents::{Agent, AgentDetail, Liveness};

use crate::args::{AgentsAction, AgentsArgs, GroupsAction};
use crate::client::{ApiClient, CliError, urlencode};
use crate::output::{or_empty, print_json, state_cell, table};

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
    let page: Paged<Agent> = client.get(&path).await?;
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
    for agent in &page.items {
        let groups: Vec<&str> = agent.groups.iter().map(|group| group.as_str()).collect();
        rows.add_row(vec![
            Cell::new(&agent.agent_id),
            state_cell(liveness(agent.liveness)),
            Cell::new(&agent.hostname),
            Cell::new(format!("{} {}", agent.os, agent.os_version).trim()),
            Cell::new(&agent.version),
            Cell::new(or_empty(agent.last_heartbeat_at)),
            Cell::new(groups.join(", ")),
        ]);
    }
    println!("{rows}");
    println!("{} of {} agents", page.items.len(), page.total);
    Ok(())
}

async fn set_groups(
    client: &ApiClient,
    agent_id: &str,
    groups: Vec<String>,
    json: bool,
) -> Result<(), CliError> {
    let path = format!("agents/{}/groups", crate::client::urlencode(agent_id));
    let answer: Agent = client
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
    let path = format!("agents/{}", urlencode(agent_id));
    let detail: AgentDetail = client.get(&path).await?;
    if json {
        print_json(&detail);
        return Ok(());
    }
    let agent = &detail.agent;
    let mut rows = table(&["FIELD", "VALUE"]);
    let fields = [
        ("agent_id", agent.agent_id.to_string()),
        ("hostname", agent.hostname.clone()),
        ("os", agent.os.clone()),
        ("os_version", agent.os_version.clone()),
        ("arch", agent.arch.clone()),
        ("version", agent.version.clone()),
        ("enrolled_at", or_empty(agent.enrolled_at)),
        ("last_heartbeat_at", or_empty(agent.last_heartbeat_at)),
        ("status", liveness(agent.liveness).to_string()),
    ];
    for (field, value) in fields {
        rows.add_row(vec![field.to_string(), value]);
    }
    println!("{rows}");
    Ok(())
}

fn liveness(liveness: Liveness) -> &'static str {
    match liveness {
        Liveness::Online => "online",
        Liveness::Offline => "offline",
        Liveness::Never => "never",
    }
}
