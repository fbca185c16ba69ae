//! `tutti inventory AGENT` (facts and package count) and `tutti inventory search
//! NAME[@VERSION]` (which agents have a package).

use serde_json::Value;

use crate::args::{InventoryAction, InventoryArgs};
use crate::client::{ApiClient, CliError, urlencode};
use crate::output::{print_json, print_page_footer, table, text};

/// Shows an agent's inventory, or searches the fleet for a package.
pub(crate) async fn inventory(
    client: &ApiClient,
    args: InventoryArgs,
    json: bool,
) -> Result<(), CliError> {
    match (args.action, args.agent_id) {
        (
            Some(InventoryAction::Search {
                package,
                limit,
                offset,
            }),
            _,
        ) => search(client, &package, limit, offset, json).await,
        (None, Some(agent_id)) => show(client, &agent_id, json).await,
        (None, None) => Err(CliError::Usage(
            "name an agent (`tutti inventory web-01`) or search (`tutti inventory search openssl`)"
                .into(),
        )),
    }
}

async fn show(client: &ApiClient, agent_id: &str, json: bool) -> Result<(), CliError> {
    let view: Value = client
        .get(&format!("agents/{}/inventory", urlencode(agent_id)))
        .await?;
    if json {
        print_json(&view);
        return Ok(());
    }
    let inventory = &view["inventory"];
    let facts = &inventory["facts"];
    let mut rows = table(&["FACT", "VALUE"]);
    for field in [
        "hostname",
        "os_name",
        "os_version",
        "kernel",
        "arch",
        "cpu_model",
        "cpu_cores",
        "memory_bytes",
        "uptime_secs",
    ] {
        rows.add_row(vec![field.to_string(), text(facts, field)]);
    }
    let n_disks = facts["disks"].as_array().map_or(0, Vec::len);
    let n_interfaces = facts["interfaces"].as_array().map_or(0, Vec::len);
    rows.add_row(vec!["disks".to_string(), n_disks.to_string()]);
    rows.add_row(vec!["interfaces".to_string(), n_interfaces.to_string()]);
    rows.add_row(vec!["packages".to_string(), text(inventory, "n_packages")]);
    rows.add_row(vec!["reported at".to_string(), text(inventory, "at")]);
    println!("{rows}");
    Ok(())
}

async fn search(
    client: &ApiClient,
    package: &str,
    limit: u32,
    offset: u64,
    json: bool,
) -> Result<(), CliError> {
    let path = format!(
        "inventory/packages?q={}&limit={limit}&offset={offset}",
        urlencode(package)
    );
    let page: Value = client.get(&path).await?;
    if json {
        print_json(&page);
        return Ok(());
    }
    let mut rows = table(&["AGENT", "HOSTNAME", "PACKAGE", "VERSION", "ARCH", "MANAGER"]);
    for hit in page["items"].as_array().into_iter().flatten() {
        let package = &hit["package"];
        rows.add_row(vec![
            text(hit, "agent_id"),
            text(hit, "hostname"),
            text(package, "name"),
            text(package, "version"),
            text(package, "arch"),
            text(package, "manager"),
        ]);
    }
    println!("{rows}");
    print_page_footer(&page, offset, "agents with the package");
    Ok(())
}
