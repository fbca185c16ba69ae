//! `/agents/{agent_id}`: one agent — liveness and version, facts from its inventory and
//! last heartbeat, groups (editable by operators through `PUT …/groups`), the effective
//! configuration with the layer each value comes from (`api::fleet_config::effective_view`),
//! its packages (searchable, paged), inventory history and recent run targets.
//!
//! Every list on the page has its own offset parameter (`pkg_offset`, `changes_offset`,
//! `runs_offset`) so paging one keeps the others where they are.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use axum::extract::{Path, State};
use axum::http::Uri;
use maud::{Markup, html};
use serde::Deserialize;
use tutti_proto::AgentId;
use tutti_store::{
    Agent, AgentInventory, ChangeKind, InventoryChange, Page, Paged, RunQuery, StoreError, Target,
};

use super::{given, liveness, parse_query};
use crate::actor::{Actor, Role};
use crate::app::App;
use crate::views::config::{EffectiveView, effective_view};
use crate::views::{online_since, parse_id};
use crate::web::layout::{self, Nav, Tone, badge, shell, target_badge, thousands};
use crate::web::{PageContext, PageResult, tables};

/// Packages per page.
const PACKAGES_PAGE: u32 = 25;
/// Inventory changes per page.
const CHANGES_PAGE: u32 = 20;
/// Run targets per page.
const RUNS_PAGE: u32 = 20;

/// `?pkg=&pkg_offset=&changes_offset=&runs_offset=` of the agent page.
#[derive(Debug, Default, Deserialize)]
struct DetailParams {
    pkg: Option<String>,
    pkg_offset: Option<u64>,
    changes_offset: Option<u64>,
    runs_offset: Option<u64>,
}

/// The agent page.
pub(crate) async fn detail(
    State(app): State<App>,
    actor: Actor,
    Path(agent_id): Path<String>,
    uri: Uri,
) -> PageResult {
    let ctx = PageContext::load(&app, actor).await;
    let agent_id: AgentId = parse_id(&agent_id)?;
    let params: DetailParams = parse_query(&uri)?;
    let agent = app.store.get_agent(&agent_id, online_since(&app)).await?;
    let inventory = match app.store.get_inventory(&agent_id).await {
        Ok(inventory) => Some(inventory),
        Err(StoreError::NotFound(_)) => None,
        Err(err) => return Err(err.into()),
    };
    let config = effective_view(&app, &agent).await?;
    let identities = app.store.broker_identities_of(&agent_id).await?;
    let search = given(&params.pkg);
    let packages = match inventory {
        Some(_) => {
            let page = Page::new(PACKAGES_PAGE, params.pkg_offset.unwrap_or(0));
            Some(
                app.store
                    .list_agent_packages(&agent_id, search, page)
                    .await?,
            )
        }
        None => None,
    };
    let changes_page = Page::new(CHANGES_PAGE, params.changes_offset.unwrap_or(0));
    let changes = app
        .store
        .list_inventory_changes(&agent_id, changes_page)
        .await?;
    let runs_page = Page::new(RUNS_PAGE, params.runs_offset.unwrap_or(0));
    let targets = app.store.agent_targets(&agent_id, runs_page).await?;
    let jobs = jobs_of(&app, &agent_id, runs_page, &targets.items).await?;
    let links = Links::new(&agent_id, &params);
    let content = html! {
        (header(&ctx, &agent))
        div.grid {
            (facts_card(&agent, inventory.as_ref(), &identities))
            div.stack {
                (groups_card(&ctx, &agent))
                (config_card(&config))
            }
        }
        (packages_card(&links, search, packages.as_ref(), params.pkg_offset.unwrap_or(0)))
        (changes_card(&links, &changes, changes_page.offset))
        (runs_card(&links, &targets, &jobs, runs_page.offset))
    };
    Ok(shell(&ctx, agent.agent_id.as_str(), Nav::Agents, content))
}

/// The job of each run on the page: one `list_runs` for the same page of this agent's
/// runs, and `get_run` for the few a race may have left out.
async fn jobs_of(
    app: &App,
    agent_id: &AgentId,
    page: Page,
    targets: &[Target],
) -> Result<BTreeMap<String, String>, crate::web::PageError> {
    if targets.is_empty() {
        return Ok(BTreeMap::new());
    }
    let query = RunQuery {
        agent_id: Some(agent_id.clone()),
        page,
        ..RunQuery::default()
    };
    let mut jobs: BTreeMap<String, String> = app
        .store
        .list_runs(&query)
        .await?
        .items
        .into_iter()
        .map(|run| (run.run_id.to_string(), run.job_id.to_string()))
        .collect();
    for target in targets {
        if let Entry::Vacant(slot) = jobs.entry(target.run_id.to_string()) {
            let detail = app.store.get_run(&target.run_id).await?;
            slot.insert(detail.run.job_id.to_string());
        }
    }
    Ok(jobs)
}

fn header(ctx: &PageContext, agent: &Agent) -> Markup {
    let id = agent.agent_id.as_str();
    html! {
        div.agent-head data-testid="agent-head" {
            (liveness(agent.liveness))
            span.muted { "last seen " (layout::maybe_time(agent.last_heartbeat_at)) }
            span.badge.muted title="Agent version" { "tutti-agent " (agent.version) }
            @if ctx.can(Role::Admin) {
                button.danger.small type="button" data-testid="delete-agent"
                    data-api=(format!("DELETE /api/v1/agents/{}", layout::url_encode(id)))
                    data-confirm=(format!("Delete agent {id}? Its run history stays; it must enroll again to come back."))
                    data-then="go:/agents" { "Delete agent" }
            }
        }
    }
}

fn facts_card(
    agent: &Agent,
    inventory: Option<&AgentInventory>,
    identities: &[tutti_store::BrokerIdentity],
) -> Markup {
    let facts = inventory.map(|inventory| &inventory.facts);
    html! {
        section.card data-testid="facts-card" {
            div.card-head {
                h2 { "Facts" }
                @if let Some(inventory) = inventory { span.muted { "inventory " (layout::time(inventory.at)) } }
            }
            dl.facts {
                dt { "Hostname" } dd { (agent.hostname) }
                dt { "OS" } dd { (agent.os) " " (agent.os_version) }
                dt { "Architecture" } dd { (agent.arch) }
                @if let Some(facts) = facts {
                    dt { "Kernel" } dd { (facts.kernel) }
                    dt { "CPU" } dd { (facts.cpu_model) " · " (facts.cpu_cores) " cores" }
                    dt { "Memory" } dd { (bytes(facts.memory_bytes)) }
                    dt { "System uptime" } dd { (uptime(facts.uptime_secs)) }
                    dt { "Addresses" } dd {
                        @for interface in &facts.interfaces {
                            @if !interface.addresses.is_empty() {
                                div { span.muted { (interface.name) " " } (interface.addresses.join(", ")) }
                            }
                        }
                    }
                    dt { "Disks" } dd {
                        @for disk in &facts.disks {
                            div { span.mono { (disk.mount) } " " span.muted { (bytes(disk.used_bytes)) " of " (bytes(disk.total_bytes)) " used" } }
                        }
                    }
                }
                @if let Some(stats) = &agent.last_heartbeat {
                    dt { "Agent uptime" } dd { (uptime(stats.uptime_secs)) }
                    dt { "Agent memory" } dd { (bytes(stats.rss_bytes)) }
                    dt { "Agent CPU" } dd { (format!("{:.1} %", stats.cpu_percent)) }
                    dt { "Queue / outbox" } dd { (stats.queue_depth) " / " (stats.outbox_depth) }
                    dt { "Command cursor" } dd.mono { (stats.cursor) }
                }
                dt { "Enrolled" } dd { (layout::maybe_time(agent.enrolled_at)) }
                dt { "First seen" } dd { (layout::time(agent.first_seen_at)) }
                dt { "Broker identity" } dd data-testid="broker-identity" {
                    @if identities.is_empty() { span.muted { "shared broker credentials" } }
                    @for identity in identities {
                        div {
                            span.mono title=(identity.public_key) { (short_key(&identity.public_key)) }
                            " " span.muted { "issued " (layout::time(identity.issued_at)) }
                            @if let Some(revoked_at) = identity.revoked_at { " " span.muted { "revoked " (layout::time(revoked_at)) } }
                        }
                    }
                }
            }
            @if inventory.is_none() { p.hint { "No inventory reported yet; it arrives shortly after the agent starts." } }
        }
    }
}

/// A NATS public key is 56 characters; the page shows its head and tail, the title the rest.
fn short_key(public_key: &str) -> String {
    match (
        public_key.get(..10),
        public_key.get(public_key.len().saturating_sub(6)..),
    ) {
        (Some(head), Some(tail)) if public_key.len() > 20 => format!("{head}…{tail}"),
        _ => public_key.to_string(),
    }
}

fn groups_card(ctx: &PageContext, agent: &Agent) -> Markup {
    let id = agent.agent_id.as_str();
    let current = agent
        .groups
        .iter()
        .map(|group| group.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    html! {
        section.card data-testid="groups-card" {
            h2 { "Groups" }
            @if agent.groups.is_empty() {
                p.muted { "In no group." }
            } @else {
                div.badges {
                    @for group in &agent.groups {
                        a.badge.busy href=(layout::link("/agents", &[("group", group.to_string())])) { (group) }
                    }
                }
            }
            @if ctx.can(Role::Operator) {
                form.inline-form data-testid="groups-form"
                    data-api=(format!("PUT /api/v1/agents/{}/groups", layout::url_encode(id)))
                    data-then="reload" {
                    div.field.grow {
                        label for="agent-groups" { "Groups, in configuration-layer order" }
                        input id="agent-groups" name="groups" data-type="list" value=(current) placeholder="web, eu-west";
                    }
                    button.primary type="submit" { "Save groups" }
                    p.form-error {}
                }
                p.hint { "Comma or space separated; later groups override earlier ones. Missing groups are created." }
            }
        }
    }
}

/// The keys of an effective configuration, with their labels.
const CONFIG_KEYS: [(&str, &str); 6] = [
    ("heartbeat_interval_secs", "Heartbeat interval (s)"),
    ("inventory_interval_secs", "Inventory interval (s)"),
    ("concurrency", "Concurrent runs"),
    ("log_level", "Log level"),
    ("output_limit_bytes", "Output cap per stream"),
    ("inline_output_limit_bytes", "Inline output limit"),
];

fn config_card(config: &EffectiveView) -> Markup {
    html! {
        section.card data-testid="config-card" {
            h2 { "Effective configuration" }
            div.table-wrap {
                table {
                    thead { tr { th { "Setting" } th { "Value" } th { "From" } } }
                    tbody {
                        @for (key, label) in CONFIG_KEYS {
                            tr {
                                td { (label) }
                                td.mono { (config_value(key, config.effective.get(key))) }
                                td { (config_source(config, key)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn config_value(key: &str, value: Option<&serde_json::Value>) -> String {
    match value {
        Some(serde_json::Value::Number(number)) if key.ends_with("_bytes") => number
            .as_u64()
            .map(bytes)
            .unwrap_or_else(|| number.to_string()),
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => "—".into(),
    }
}

/// Which layer sets `key`: the agent's own, else the last group that sets it, else the
/// global layer, else the built-in default (the order `tutti_proto::config::layered` merges).
fn config_source(config: &EffectiveView, key: &str) -> String {
    let sets = |layer: &Option<tutti_proto::config::AgentConfig>| {
        layer
            .as_ref()
            .and_then(|layer| serde_json::to_value(layer).ok())
            .and_then(|value| value.get(key).cloned())
            .is_some_and(|value| !value.is_null())
    };
    if sets(&config.agent) {
        return "agent".into();
    }
    if let Some((group, _)) = config.groups.iter().rev().find(|(_, layer)| sets(layer)) {
        return format!("group {group}");
    }
    if sets(&config.global) {
        return "global".into();
    }
    "default".into()
}

/// The agent page's own URL with the current list positions, for pagers and the search.
struct Links {
    path: String,
    pkg: String,
    pkg_offset: u64,
    changes_offset: u64,
    runs_offset: u64,
}

impl Links {
    fn new(agent_id: &AgentId, params: &DetailParams) -> Links {
        Links {
            path: format!("/agents/{}", layout::url_encode(agent_id.as_str())),
            pkg: given(&params.pkg).unwrap_or("").to_string(),
            pkg_offset: params.pkg_offset.unwrap_or(0),
            changes_offset: params.changes_offset.unwrap_or(0),
            runs_offset: params.runs_offset.unwrap_or(0),
        }
    }

    /// The page with `key` moved to `offset`, scrolled to `anchor`.
    fn with(&self, key: &str, offset: u64, anchor: &str) -> String {
        let number = |name: &str, current: u64| {
            let value = if name == key { offset } else { current };
            if value == 0 {
                String::new()
            } else {
                value.to_string()
            }
        };
        let pairs = [
            ("pkg", self.pkg.clone()),
            ("pkg_offset", number("pkg_offset", self.pkg_offset)),
            (
                "changes_offset",
                number("changes_offset", self.changes_offset),
            ),
            ("runs_offset", number("runs_offset", self.runs_offset)),
        ];
        format!("{}#{anchor}", layout::link(&self.path, &pairs))
    }

    /// Previous/next links for one list of the page.
    fn pager(&self, key: &str, anchor: &str, offset: u64, limit: u32, total: u64) -> Markup {
        layout::pager_with(offset, limit, total, |offset| {
            self.with(key, offset, anchor)
        })
    }
}

fn packages_card(
    links: &Links,
    search: Option<&str>,
    packages: Option<&Paged<tutti_proto::inventory::Package>>,
    offset: u64,
) -> Markup {
    html! {
        section.card id="packages" data-testid="packages-card" {
            div.card-head {
                h2 { "Packages" }
                @if let Some(packages) = packages {
                    span.muted data-testid="packages-total" { (thousands(packages.total)) @if search.is_some() { " matching" } }
                }
            }
            form.toolbar method="get" action=(format!("{}#packages", links.path)) role="search" {
                div.field {
                    label for="pkg" { "Package name contains" }
                    input id="pkg" type="search" name="pkg" value=(search.unwrap_or(""));
                }
                @if links.changes_offset > 0 { input type="hidden" name="changes_offset" value=(links.changes_offset); }
                @if links.runs_offset > 0 { input type="hidden" name="runs_offset" value=(links.runs_offset); }
                button type="submit" { "Search" }
            }
            @match packages {
                None => (layout::empty("No inventory reported yet.")),
                Some(packages) if packages.items.is_empty() => (layout::empty(if search.is_some() { "No package matches." } else { "No packages reported." })),
                Some(packages) => {
                    div.table-wrap {
                        table {
                            thead { tr { th { "Name" } th { "Version" } th.hide-narrow { "Arch" } th.hide-narrow { "Manager" } } }
                            tbody {
                                @for package in &packages.items {
                                    tr {
                                        td { (package.name) }
                                        td.mono { (package.version) }
                                        td.hide-narrow { (package.arch) }
                                        td.hide-narrow { (package.manager) }
                                    }
                                }
                            }
                        }
                    }
                    (links.pager("pkg_offset", "packages", offset, PACKAGES_PAGE, packages.total))
                }
            }
        }
    }
}

fn changes_card(links: &Links, changes: &Paged<InventoryChange>, offset: u64) -> Markup {
    html! {
        section.card id="changes" data-testid="changes-card" {
            div.card-head { h2 { "Inventory history" } span.muted { (thousands(changes.total)) " changes" } }
            @if changes.items.is_empty() {
                (layout::empty("No changes recorded yet."))
            } @else {
                div.table-wrap {
                    table {
                        thead { tr { th { "When" } th { "Change" } th.hide-narrow { "Kind" } th { "Item" } th { "Before" } th { "After" } } }
                        tbody {
                            @for change in &changes.items {
                                tr {
                                    td { (layout::time(change.at)) }
                                    td { (change_badge(change.kind)) }
                                    td.hide-narrow { (change.item_type.as_str()) }
                                    td.mono { (change.name) }
                                    td.mono.clip { (change.old_value.as_deref().unwrap_or("—")) }
                                    td.mono.clip { (change.new_value.as_deref().unwrap_or("—")) }
                                }
                            }
                        }
                    }
                }
                (links.pager("changes_offset", "changes", offset, CHANGES_PAGE, changes.total))
            }
        }
    }
}

fn change_badge(kind: ChangeKind) -> Markup {
    let tone = match kind {
        ChangeKind::Added => Tone::Ok,
        ChangeKind::Removed => Tone::Bad,
        ChangeKind::Changed => Tone::Warn,
    };
    badge(kind.as_str(), tone)
}

fn runs_card(
    links: &Links,
    targets: &Paged<Target>,
    jobs: &BTreeMap<String, String>,
    offset: u64,
) -> Markup {
    let agent = links.path.trim_start_matches("/agents/");
    html! {
        section.card id="runs" data-testid="agent-runs" {
            div.card-head {
                h2 { "Recent runs" }
                a href=(format!("/runs?agent={agent}")) { "All runs on this agent →" }
            }
            @if targets.items.is_empty() {
                (layout::empty("No runs have targeted this agent yet."))
            } @else {
                div.table-wrap {
                    table {
                        thead { tr {
                            th { "Run" } th { "Job" } th { "State" } th.num { "Exit" }
                            th.hide-narrow { "Duration" } th { "Finished" } th { "Output" }
                        } }
                        tbody {
                            @for target in &targets.items {
                                @let run_id = target.run_id.to_string();
                                tr data-testid="agent-run-row" {
                                    td { a.mono href=(format!("/runs/{run_id}")) title=(run_id) { (tables::short_id(&run_id)) } }
                                    td {
                                        @if let Some(job) = jobs.get(&run_id) { a href=(format!("/jobs/{}", layout::url_encode(job))) { (job) } }
                                    }
                                    td {
                                        (target_badge(target.state))
                                        @if let Some(reason) = &target.reason { " " span.muted { (reason) } }
                                    }
                                    td.num.mono { @if let Some(code) = target.exit_code { (code) } @else { span.muted { "—" } } }
                                    td.hide-narrow {
                                        @if let (Some(start), Some(end)) = (target.started_at, target.finished_at) { (layout::duration(start, end)) }
                                        @else { span.muted { "—" } }
                                    }
                                    td { (layout::maybe_time(target.finished_at)) }
                                    td { a href=(format!("/runs/{run_id}?agent={agent}")) { "Output →" } }
                                }
                            }
                        }
                    }
                }
                (links.pager("runs_offset", "runs", offset, RUNS_PAGE, targets.total))
            }
        }
    }
}

/// 1536 → `1.5 KiB`.
fn bytes(count: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = count as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{count} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// 93784 → `1 d 2 h`.
fn uptime(secs: u64) -> String {
    let (days, hours, minutes) = (secs / 86_400, (secs % 86_400) / 3600, (secs % 3600) / 60);
    if days > 0 {
        format!("{days} d {hours} h")
    } else if hours > 0 {
        format!("{hours} h {minutes} min")
    } else {
        format!("{minutes} min {} s", secs % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_uptimes_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(8 << 20), "8.0 MiB");
        assert_eq!(uptime(93_784), "1 d 2 h");
        assert_eq!(uptime(3_720), "1 h 2 min");
        assert_eq!(uptime(65), "1 min 5 s");
    }

    #[test]
    fn the_source_of_a_setting_is_the_last_layer_that_sets_it() {
        use tutti_proto::config::AgentConfig;
        let layer = |concurrency| AgentConfig {
            concurrency,
            ..AgentConfig::default()
        };
        let view = EffectiveView {
            global: Some(layer(Some(1))),
            groups: vec![
                ("a".parse().unwrap(), Some(layer(Some(2)))),
                ("b".parse().unwrap(), Some(layer(None))),
            ],
            agent: None,
            effective: serde_json::json!({}),
        };
        assert_eq!(config_source(&view, "concurrency"), "group a");
        assert_eq!(config_source(&view, "log_level"), "default");
    }

    #[test]
    fn pager_links_keep_the_other_lists() {
        let links = Links {
            path: "/agents/web-1".into(),
            pkg: "ssl".into(),
            pkg_offset: 50,
            changes_offset: 0,
            runs_offset: 20,
        };
        assert_eq!(
            links.with("runs_offset", 40, "runs"),
            "/agents/web-1?pkg=ssl&pkg_offset=50&runs_offset=40#runs"
        );
        assert_eq!(
            links.with("pkg_offset", 0, "packages"),
            "/agents/web-1?pkg=ssl&runs_offset=20#packages"
        );
    }
}
