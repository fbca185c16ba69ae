//! `/settings`: every signed-in role manages its own account here (password, two-factor
//! sign-in, API tokens, signing out everywhere, `account.rs`); admins also see accounts,
//! every API token, enrollment tokens and the fleet freeze (`admin.rs`).
//!
//! Secrets the API returns once (new API and enrollment tokens, generated passwords,
//! recovery codes, the TOTP key) never pass through the server-rendered page: the forms
//! call the API from `assets/settings.js`, which shows the answer in a reveal box with
//! `textContent`.

mod account;
mod admin;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use maud::{Markup, html};
use serde::Deserialize;
use tutti_store::{ApiToken, Page};

use super::agents::parse_query;
use super::layout::{self, Nav, Tone, badge, shell};
use super::{PageContext, PageResult};
use crate::actor::{Actor, Credential, Role};
use crate::app::App;

/// `?tokens_offset=&accounts_offset=&all_tokens_offset=&enrollment_offset=`: where each
/// list of the page is.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SettingsParams {
    tokens_offset: Option<u64>,
    accounts_offset: Option<u64>,
    all_tokens_offset: Option<u64>,
    enrollment_offset: Option<u64>,
}

/// The settings page.
pub(crate) async fn page(
    State(app): State<App>,
    actor: Actor,
    uri: Uri,
    headers: HeaderMap,
) -> PageResult {
    let ctx = PageContext::load(&app, actor).await;
    let params: SettingsParams = parse_query(&uri)?;
    let lists = Lists::new(&params);
    let own = account::load(&app, &ctx, lists.offset("tokens_offset")).await?;
    let admin = if ctx.can(Role::Admin) {
        Some(admin::load(&app, &ctx, &lists).await?)
    } else {
        None
    };
    let server_url = crate::public_url::base_url(&app.config, &headers)
        .unwrap_or_else(|| server_url(&headers, app.config.serves_https()));
    let enroll_base = format!(
        "tutti-agent enroll --server {server_url} --server-key-id {}",
        app.keys.current().key_id()
    );
    let content = html! {
        nav.settings-toc aria-label="Settings sections" {
            a href="#account" { "Your account" }
            a href="#api-tokens" { "API tokens" }
            @if admin.is_some() {
                a href="#accounts" { "Accounts" }
                a href="#all-tokens" { "All API tokens" }
                a href="#enrollment" { "Enrollment" }
                a href="#freeze" { "Fleet freeze" }
            }
        }
        (account::render(&app, &ctx, &own, &lists))
        @if let Some(admin) = &admin { (admin::render(&ctx, admin, &lists, &enroll_base)) }
        script src="/assets/settings.js" defer {}
    };
    Ok(shell(&ctx, "Settings", Nav::Settings, content))
}

/// The positions of the page's lists, for pagers that keep the others in place.
struct Lists {
    offsets: [(&'static str, u64); 4],
}

impl Lists {
    fn new(params: &SettingsParams) -> Lists {
        Lists {
            offsets: [
                ("tokens_offset", params.tokens_offset.unwrap_or(0)),
                ("accounts_offset", params.accounts_offset.unwrap_or(0)),
                ("all_tokens_offset", params.all_tokens_offset.unwrap_or(0)),
                ("enrollment_offset", params.enrollment_offset.unwrap_or(0)),
            ],
        }
    }

    /// Where the list `key` is.
    fn offset(&self, key: &str) -> u64 {
        self.offsets
            .iter()
            .find(|(name, _)| *name == key)
            .map_or(0, |(_, offset)| *offset)
    }

    /// `/settings` with `key` moved to `offset`, scrolled to `anchor`.
    fn with(&self, key: &str, offset: u64, anchor: &str) -> String {
        let pairs: Vec<(&str, String)> = self
            .offsets
            .iter()
            .map(|(name, current)| {
                let value = if *name == key { offset } else { *current };
                (
                    *name,
                    if value == 0 {
                        String::new()
                    } else {
                        value.to_string()
                    },
                )
            })
            .collect();
        format!("{}#{anchor}", layout::link("/settings", &pairs))
    }

    /// Previous/next links for one list.
    fn pager(&self, key: &str, anchor: &str, limit: u32, total: u64) -> Markup {
        let offset = self.offset(key);
        layout::pager_with(offset, limit, total, |offset| {
            self.with(key, offset, anchor)
        })
    }
}

/// The page of a list at `offset`.
fn page_at(limit: u32, offset: u64) -> Page {
    Page::new(limit, offset)
}

/// A table of API tokens with revoke buttons; `with_owner` adds the owner column.
fn token_table(ctx: &PageContext, tokens: &[ApiToken], with_owner: bool) -> Markup {
    let current = match &ctx.actor.credential {
        Credential::Token { token_id } => Some(token_id.as_str()),
        _ => None,
    };
    html! {
        div.table-wrap {
            table {
                thead { tr {
                    @if with_owner { th { "Owner" } }
                    th { "Name" } th.hide-narrow { "Id" } th { "Role" } th { "Status" }
                    th.hide-narrow { "Created" } th { "Expires" } th.hide-narrow { "Last used" } th { span.sr-only { "Actions" } }
                } }
                tbody {
                    @for token in tokens {
                        tr data-testid="token-row" data-token=(token.token_id) {
                            @if with_owner { td { (token.username) } }
                            td {
                                (token.name)
                                @if current == Some(token.token_id.as_str()) { " " (badge("this token", Tone::Busy)) }
                            }
                            td.hide-narrow.mono { (token.token_id) }
                            td { span class=(format!("role role-{}", token.role)) { (token.role) } }
                            td { (token_status(ctx, token)) }
                            td.hide-narrow { (layout::time(token.created_at)) }
                            td { @if let Some(at) = token.expires_at { (layout::time(at)) } @else { span.muted { "never" } } }
                            td.hide-narrow { (layout::maybe_time(token.last_used_at)) }
                            td {
                                @if token.revoked_at.is_none() {
                                    button.danger.small type="button"
                                        data-api=(format!("DELETE /api/v1/tokens/{}", layout::url_encode(&token.token_id)))
                                        data-confirm=(format!("Revoke the API token {:?}? Whatever uses it stops working.", token.name))
                                        data-then="reload" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn token_status(ctx: &PageContext, token: &ApiToken) -> Markup {
    if token.revoked_at.is_some() {
        badge("revoked", Tone::Muted)
    } else if token.expires_at.is_some_and(|at| at <= ctx.now) {
        badge("expired", Tone::Warn)
    } else {
        badge("active", Tone::Ok)
    }
}

/// A hidden box that `settings.js` fills with a secret shown once, with a copy button.
fn reveal(id: &str, testid: &str, title: &str, note: &str) -> Markup {
    html! {
        div.reveal id=(format!("{id}-box")) hidden {
            strong id=(format!("{id}-title")) { (title) }
            p.hint { (note) }
            div.copy-row {
                pre.code id=(id) data-testid=(testid) {}
                button.small type="button" data-copy=(id) { "Copy" }
            }
            button.small type="button" data-reload { "Done" }
        }
    }
}

/// The request's URL (`crate::public_url`), with a placeholder host when the request's
/// `Host` cannot go into a shell command.
fn server_url(headers: &HeaderMap, serves_https: bool) -> String {
    let host = crate::public_url::request_host(headers).unwrap_or("SERVER:8080");
    format!(
        "{}://{host}",
        crate::public_url::scheme(headers, serves_https)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;

    #[test]
    fn the_server_url_comes_from_the_request() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "tutti.example.com:8080".parse().unwrap());
        assert_eq!(server_url(&headers, false), "http://tutti.example.com:8080");
        assert_eq!(server_url(&headers, true), "https://tutti.example.com:8080");
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        assert_eq!(
            server_url(&headers, false),
            "https://tutti.example.com:8080"
        );
        headers.insert(header::HOST, "evil.com/`x`".parse().unwrap());
        assert_eq!(server_url(&headers, false), "https://SERVER:8080");
    }

    #[test]
    fn list_links_keep_the_other_lists() {
        let lists = Lists::new(&SettingsParams {
            tokens_offset: Some(20),
            ..SettingsParams::default()
        });
        assert_eq!(
            lists.with("accounts_offset", 50, "accounts"),
            "/settings?tokens_offset=20&accounts_offset=50#accounts"
        );
        assert_eq!(
            lists.with("tokens_offset", 0, "api-tokens"),
            "/settings#api-tokens"
        );
    }
}
