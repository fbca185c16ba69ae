//! `/agents`: the fleet as a searchable, filterable, sortable table, one page of 50 rows
//! per query (`Store::list_agents`), with the OS names for the filter taken from
//! `Store::fleet_overview`. The agent page is in `detail.rs`.
//!
//! Query strings are parsed here with [`parse_query`], shared by the other pages of this
//! group (audit, settings), so a malformed filter is a 400 page rather than a plain-text
//! rejection.

mod detail;

use axum::extract::State;
use axum::http::Uri;
use maud::{Markup, html};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tutti_proto::GroupName;
use tutti_store::{Agent, AgentQuery, AgentSort, Liveness, Page, SortDir};

pub(crate) use detail::detail;

use super::layout::{self, Nav, shell, sort_header, thousands};
use super::{PageContext, PageError, PageResult};
use crate::actor::{Actor, Role};
use crate::app::App;
use crate::error::Error;
use crate::views::{online_since, parse_id};

/// Rows per page of the agents list.
const PAGE_SIZE: u32 = 50;
/// Groups offered as suggestions in the group filter.
const GROUP_SUGGESTIONS: u32 = 100;

/// `?q=&status=&group=&os=&sort=&dir=&offset=` of `/agents`; empty values mean "any".
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListParams {
    q: Option<String>,
    status: Option<String>,
    group: Option<String>,
    os: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    offset: Option<u64>,
}

/// The agents list.
pub(crate) async fn list(State(app): State<App>, actor: Actor, uri: Uri) -> PageResult {
    let ctx = PageContext::load(&app, actor).await;
    let params: ListParams = parse_query(&uri)?;
    let query = agent_query(&app, &params)?;
    let agents = app.store.list_agents(&query).await?;
    let fleet = app
        .store
        .fleet_overview(query.online_since, ctx.now)
        .await?;
    let groups = app
        .store
        .list_groups(Page::first(GROUP_SUGGESTIONS))
        .await?;
    let pairs = filter_pairs(&params);
    let (sort, descending) = (sort_key(query.sort), query.dir == SortDir::Desc);
    let mut sorted_pairs = pairs.clone();
    sorted_pairs.push(("sort", sort.to_string()));
    if descending {
        sorted_pairs.push(("dir", "desc".into()));
    }
    let filtered = pairs.iter().any(|(_, value)| !value.is_empty());
    let content = html! {
        div.stats {
            div.stat {
                div.stat-label { @if filtered { "Matching" } @else { "Agents" } }
                div.stat-value data-testid="agents-matching" { (thousands(agents.total)) }
            }
            (super::tables::liveness_tiles(&fleet))
        }
        section.card {
            (toolbar(&params, &fleet.by_os, &groups.items))
            @if agents.items.is_empty() {
                (empty_state(&ctx, filtered))
            } @else {
                div.table-wrap {
                    table data-testid="agents-table" {
                        thead { tr {
                            th { "Status" }
                            (sort_header("Agent", "id", sort, descending, "/agents", &pairs))
                            (sort_header("Hostname", "hostname", sort, descending, "/agents", &pairs))
                            th { "OS" }
                            th.hide-narrow { "Agent version" }
                            th.hide-narrow { "Groups" }
                            (sort_header("Last seen", "last_heartbeat", sort, descending, "/agents", &pairs))
                        } }
                        tbody {
                            @for agent in &agents.items { (agent_row(agent)) }
                        }
                    }
                }
                (layout::pager("/agents", &sorted_pairs, query.page.offset, PAGE_SIZE, agents.total))
            }
        }
    };
    Ok(shell(&ctx, "Agents", Nav::Agents, content))
}

/// Decodes a page's query string; a malformed one is a 400 page naming the parameter.
pub(crate) fn parse_query<T: DeserializeOwned>(uri: &Uri) -> Result<T, PageError> {
    axum::extract::Query::<T>::try_from_uri(uri)
        .map(|query| query.0)
        .map_err(|rejection| {
            PageError(Error::bad_request(format!(
                "invalid query string: {}",
                rejection.body_text()
            )))
        })
}

/// An optional query value with empty meaning absent (what an "any" option sends).
pub(crate) fn given(value: &Option<String>) -> Option<&str> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

/// A status dot and its label.
pub(crate) fn liveness(liveness: Liveness) -> Markup {
    let (class, label) = match liveness {
        Liveness::Online => ("dot ok", "online"),
        Liveness::Offline => ("dot bad", "offline"),
        Liveness::Never => ("dot", "never seen"),
    };
    html! { span.liveness data-liveness=(label) { span class=(class) aria-hidden="true" {} (label) } }
}

fn agent_row(agent: &Agent) -> Markup {
    let id = agent.agent_id.as_str();
    html! {
        tr data-testid="agent-row" data-agent=(id) {
            td { (liveness(agent.liveness)) }
            td { a.mono href=(format!("/agents/{}", layout::url_encode(id))) { (id) } }
            td { (agent.hostname) }
            td {
                @if agent.os.is_empty() { span.muted { "not reported" } }
                @else { (agent.os) " " span.muted { (agent.os_version) } }
            }
            td.hide-narrow { (agent.version) }
            td.hide-narrow {
                div.badges {
                    @for group in &agent.groups {
                        a.badge.muted href=(layout::link("/agents", &[("group", group.to_string())])) { (group) }
                    }
                }
            }
            td { (layout::maybe_time(agent.last_heartbeat_at)) }
        }
    }
}

fn toolbar(params: &ListParams, by_os: &[(String, u64)], groups: &[tutti_store::Group]) -> Markup {
    let status = given(&params.status).unwrap_or("");
    let os = given(&params.os).unwrap_or("");
    html! {
        form.toolbar method="get" action="/agents" role="search" data-testid="agents-filter" {
            div.field {
                label for="agents-q" { "Search" }
                input id="agents-q" type="search" name="q" value=(given(&params.q).unwrap_or("")) placeholder="id or hostname";
            }
            div.field {
                label for="agents-status" { "Status" }
                select id="agents-status" name="status" data-autosubmit {
                    @for (value, label) in [("", "Any"), ("online", "Online"), ("offline", "Offline"), ("never", "Never seen")] {
                        option value=(value) selected[status == value] { (label) }
                    }
                }
            }
            div.field {
                label for="agents-group" { "Group" }
                input id="agents-group" name="group" list="agents-groups" value=(given(&params.group).unwrap_or("")) placeholder="any";
                datalist id="agents-groups" {
                    @for group in groups { option value=(group.group_name) {} }
                }
            }
            div.field {
                label for="agents-os" { "OS" }
                select id="agents-os" name="os" data-autosubmit {
                    option value="" selected[os.is_empty()] { "Any" }
                    @for (name, count) in by_os {
                        @if !name.is_empty() {
                            option value=(name) selected[os.eq_ignore_ascii_case(name)] { (name) " (" (thousands(*count)) ")" }
                        }
                    }
                }
            }
            @if let Some(sort) = given(&params.sort) { input type="hidden" name="sort" value=(sort); }
            @if let Some(dir) = given(&params.dir) { input type="hidden" name="dir" value=(dir); }
            button.primary type="submit" { "Filter" }
            a.button href="/agents" { "Reset" }
        }
    }
}

fn empty_state(ctx: &PageContext, filtered: bool) -> Markup {
    if filtered {
        return html! {
            p.empty { "No agents match these filters. " a href="/agents" { "Show all agents" } }
        };
    }
    html! {
        div.empty data-testid="agents-empty" {
            p { strong { "No agents enrolled yet." } }
            p {
                "Create an enrollment token, then run "
                code { "tutti-agent enroll --server URL --token TOKEN" }
                " on the machine and start it with "
                code { "tutti-agent run" } "."
            }
            @if ctx.can(Role::Admin) {
                p { a.button.primary href="/settings#enrollment" { "Create an enrollment token" } }
            } @else {
                p.hint { "Ask an admin for an enrollment token." }
            }
        }
    }
}

fn agent_query(app: &App, params: &ListParams) -> Result<AgentQuery, PageError> {
    let mut query = AgentQuery::all(online_since(app));
    query.search = given(&params.q).map(str::to_string);
    query.liveness = given(&params.status).map(parse_status).transpose()?;
    query.group = given(&params.group)
        .map(parse_id::<GroupName>)
        .transpose()?;
    query.os = given(&params.os).map(str::to_string);
    query.sort = given(&params.sort)
        .map(parse_sort)
        .transpose()?
        .unwrap_or_default();
    query.dir = match given(&params.dir) {
        None | Some("asc") => SortDir::Asc,
        Some("desc") => SortDir::Desc,
        Some(other) => {
            return Err(bad(format!("invalid dir {other:?}: use asc or desc")));
        }
    };
    query.page = Page::new(PAGE_SIZE, params.offset.unwrap_or(0));
    Ok(query)
}

/// The filters to keep in sort and page links.
fn filter_pairs(params: &ListParams) -> Vec<(&'static str, String)> {
    let value = |field: &Option<String>| given(field).unwrap_or("").to_string();
    vec![
        ("q", value(&params.q)),
        ("status", value(&params.status)),
        ("group", value(&params.group)),
        ("os", value(&params.os)),
    ]
}

fn parse_status(text: &str) -> Result<Liveness, PageError> {
    match text {
        "online" => Ok(Liveness::Online),
        "offline" => Ok(Liveness::Offline),
        "never" => Ok(Liveness::Never),
        other => Err(bad(format!(
            "invalid status {other:?}: use online, offline or never"
        ))),
    }
}

fn parse_sort(text: &str) -> Result<AgentSort, PageError> {
    match text {
        "id" => Ok(AgentSort::Id),
        "hostname" => Ok(AgentSort::Hostname),
        "last_heartbeat" => Ok(AgentSort::LastHeartbeat),
        "enrolled_at" => Ok(AgentSort::EnrolledAt),
        other => Err(bad(format!(
            "invalid sort {other:?}: use id, hostname, last_heartbeat or enrolled_at"
        ))),
    }
}

fn sort_key(sort: AgentSort) -> &'static str {
    match sort {
        AgentSort::Id => "id",
        AgentSort::Hostname => "hostname",
        AgentSort::LastHeartbeat => "last_heartbeat",
        AgentSort::EnrolledAt => "enrolled_at",
    }
}

/// A 400 page with `message`.
pub(crate) fn bad(message: String) -> PageError {
    PageError(Error::BadRequest(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_or_explain() {
        assert_eq!(parse_status("never").unwrap(), Liveness::Never);
        let err = parse_status("asleep").unwrap_err();
        assert!(
            err.0.to_string().contains("online, offline or never"),
            "{err:?}"
        );
        for key in ["id", "hostname", "last_heartbeat", "enrolled_at"] {
            assert_eq!(sort_key(parse_sort(key).unwrap()), key);
        }
        assert!(parse_sort("os").is_err());
        assert_eq!(given(&Some("  ".into())), None);
        assert_eq!(given(&Some(" web ".into())), Some("web"));
    }

    #[test]
    fn a_malformed_offset_is_a_bad_request() {
        let uri: Uri = "/agents?offset=x".parse().unwrap();
        assert!(parse_query::<ListParams>(&uri).is_err());
        let uri: Uri = "/agents?q=web&offset=50".parse().unwrap();
        let params: ListParams = parse_query(&uri).unwrap();
        assert_eq!(params.offset, Some(50));
    }
}
