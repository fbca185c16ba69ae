//! `tutti inventory AGENT` (facts and package count) and `tutti inventory search
//! NAME[@VERSION]` (which agents have a package).

use tutti_api::Paged;
use tutti_api::inventory::{InventoryView, PackageHit};

use crate::args::{InventoryAction, InventoryArgs};
use crate::client::{ApiClient, CliError, urlencode};
use crate::output::{print_json, print_page_footer, table};

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
    let view: InventoryView = client
        .get(&format!("agents/{}/inventory", urlencode(agent_id)))
        .await?;
    if json {
        print_json(&view);
        return Ok(());
    }
    let inventory = &view.inventory;
    let facts = &inventory.facts;
    let mut rows = table(&["FACT", "VALUE"]);
    let fields = [
        ("hostname", facts.hostname.clone()),
        ("os_name", facts.os_name.clone()),
        ("os_version", facts.os_version.clone()),
        ("kernel", facts.kernel.clone()),
        ("arch", facts.arch.clone()),
        ("cpu_model", facts.cpu_model.clone()),
        ("cpu_cores", facts.cpu_cores.to_string()),
        ("memory_bytes", facts.memory_bytes.to_string()),
        ("uptime_secs", facts.uptime_secs.to_string()),
        ("disks", facts.disks.len().to_string()),
        ("interfaces", facts.interfaces.len().to_string()),
        ("packages", inventory.n_packages.to_string()),
        ("reported at", inventory.at.to_string()),
    ];
    for (field, value) in fields {
        rows.add_row(vec![field.to_string(), value]);
    }
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
    let page: Paged<PackageHit> = client.get(&path).await?;
    if json {
        print_json(&page);
        return Ok(());
    }
    let mut rows = table(&["AGENT", "HOSTNAME", "PACKAGE", "VERSION", "ARCH", "MANAGER"]);
    for hit in &page.items {
        let package = &hit.package;
        rows.add_row(vec![
            hit.agent_id.to_string(),
            hit.hostname.clone(),
            package.name.clone(),
            package.version.clone(),
            package.arch.clone(),
            package.manager.clone(),
        ]);
    }
    println!("{rows}");
    print_page_footer(&page, offset, "agents with the package");
    Ok(())
}
