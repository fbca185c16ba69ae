//! The admin sections of `/settings`: accounts (create, change role, disable, reset a
//! password), every account's API tokens, enrollment tokens with the agent's install
//! command, and the fleet freeze. Shown only to admins; the API refuses the rest anyway.

use maud::{Markup, html};
use tutti_api::fleet::{FreezeState, MAX_REASON_CHARS};
use tutti_store::{Account, ApiToken, EnrollmentToken, Paged};

use super::{Lists, page_at, reveal, token_table};
use crate::actor::Role;
use crate::app::App;
use crate::tokens::{MAX_TTL_SECS, MAX_USES};
use crate::web::layout::{self, Tone, badge};
use crate::web::{PageContext, PageError};

/// Accounts per page.
const ACCOUNTS_PAGE: u32 = 50;
/// API tokens per page.
const TOKENS_PAGE: u32 = 50;
/// Enrollment tokens per page.
const ENROLLMENT_PAGE: u32 = 20;

/// What the admin sections show.
pub(super) struct AdminData {
    accounts: Paged<Account>,
    tokens: Paged<ApiToken>,
    enrollment: Paged<EnrollmentToken>,
    freeze: FreezeState,
}

/// One page of each admin list and the freeze.
pub(super) async fn load(
    app: &App,
    ctx: &PageContext,
    lists: &Lists,
) -> Result<AdminData, PageError> {
    let store = &app.store;
    let accounts = store
        .list_accounts(page_at(ACCOUNTS_PAGE, lists.offset("accounts_offset")))
        .await?;
    let tokens = store
        .list_api_tokens(
            None,
            page_at(TOKENS_PAGE, lists.offset("all_tokens_offset")),
        )
        .await?;
    let enrollment = store
        .list_enrollment_tokens(page_at(ENROLLMENT_PAGE, lists.offset("enrollment_offset")))
        .await?;
    let freeze = app.kv.get_freeze().await?;
    Ok(AdminData {
        accounts,
        tokens,
        enrollment,
        freeze: FreezeState::of(freeze.as_ref(), ctx.now),
    })
}

/// The admin cards.
pub(super) fn render(
    ctx: &PageContext,
    data: &AdminData,
    lists: &Lists,
    enroll_base: &str,
) -> Markup {
    html! {
        (accounts(ctx, &data.accounts, lists))
        section.card id="all-tokens" data-testid="all-tokens-card" {
            div.card-head { h2 { "All API tokens" } span.muted { (layout::thousands(data.tokens.total)) " tokens, newest first" } }
            @if data.tokens.items.is_empty() {
                (layout::empty("No API tokens yet."))
            } @else {
                (token_table(ctx, &data.tokens.items, true))
                (lists.pager("all_tokens_offset", "all-tokens", TOKENS_PAGE, data.tokens.total))
            }
        }
        (enrollment(ctx, &data.enrollment, lists, enroll_base))
        (freeze(&data.freeze))
    }
}

fn accounts(ctx: &PageContext, accounts: &Paged<Account>, lists: &Lists) -> Markup {
    html! {
        section.card id="accounts" data-testid="accounts-card" {
            div.card-head { h2 { "Accounts" } span.muted { (layout::thousands(accounts.total)) " accounts" } }
            div.table-wrap {
                table {
                    thead { tr {
                        th { "Account" } th { "Role" } th { "Status" } th { "Two-factor" }
                        th.hide-narrow { "Password changed" } th.hide-narrow { "Created" } th { span.sr-only { "Actions" } }
                    } }
                    tbody { @for account in &accounts.items { (account_row(ctx, account)) } }
                }
            }
            (lists.pager("accounts_offset", "accounts", ACCOUNTS_PAGE, accounts.total))
            h3 { "New account" }
            form.toolbar data-testid="account-form" data-api="POST /api/v1/accounts" data-then="stay" data-reveal="account-password" {
                div.field {
                    label for="account-username" { "Username" }
                    input id="account-username" name="username" pattern="[a-z0-9._\\-]{1,64}" maxlength="64" required placeholder="a-z 0-9 . _ -";
                }
                div.field {
                    label for="account-role" { "Role" }
                    select id="account-role" name="role" {
                        @for role in Role::ALL { option value=(role) selected[role == Role::Viewer] { (role) } }
                    }
                }
                div.field {
                    label for="account-password" { "Initial password" }
                    input id="account-password" name="password" type="password" autocomplete="new-password" minlength="12" data-optional placeholder="leave empty to generate";
                }
                button.primary type="submit" { "Create account" }
                p.form-error {}
            }
            p.hint { "The new account must change its password at first sign-in." }
            (reveal("account-password", "initial-password", "Initial password",
                "Give it to the account's owner over a safe channel: it is not shown again."))
        }
    }
}

fn account_row(ctx: &PageContext, account: &Account) -> Markup {
    let name = &account.username;
    let path = format!("/api/v1/accounts/{}", layout::url_encode(name));
    let is_self = *name == ctx.actor.account;
    html! {
        tr data-testid="account-row" data-account=(name) {
            td { strong { (name) } @if is_self { " " span.muted { "(you)" } } }
            td {
                @if is_self {
                    span class=(format!("role role-{}", account.role)) { (account.role) }
                } @else {
                    form.inline-form data-api=(format!("PATCH {path}")) data-then="reload" data-testid="role-form" {
                        select name="role" aria-label=(format!("Role of {name}")) {
                            @for role in Role::ALL { option value=(role) selected[role == account.role] { (role) } }
                        }
                        button.small type="submit" { "Set" }
                    }
                }
            }
            td {
                @if account.disabled { (badge("disabled", Tone::Bad)) }
                @else if account.must_change_password { (badge("must change password", Tone::Warn)) }
                @else { (badge("active", Tone::Ok)) }
            }
            td { @if account.mfa_enabled { (badge("on", Tone::Ok)) } @else { (badge("off", Tone::Muted)) } }
            td.hide-narrow { (layout::time(account.password_changed_at)) }
            td.hide-narrow { (layout::time(account.created_at)) " " span.muted { "by " (account.created_by) } }
            td {
                div.actions {
                    @if !is_self {
                        @if account.disabled {
                            button.small type="button" data-api=(format!("PATCH {path}")) data-body=r#"{"disabled":false}"# data-then="reload" { "Enable" }
                        } @else {
                            button.danger.small type="button" data-api=(format!("PATCH {path}")) data-body=r#"{"disabled":true}"#
                                data-confirm=(format!("Disable {name}? Their sessions and API tokens stop working at once.")) data-then="reload" { "Disable" }
                        }
                    }
                    button.small type="button" data-reset-password=(name) data-testid="reset-password"
                        data-confirm=(format!("Reset the password of {name}? Their sessions end and they must pick a new password at next sign-in.")) { "Reset password" }
                }
            }
        }
    }
}

fn enrollment(
    ctx: &PageContext,
    tokens: &Paged<EnrollmentToken>,
    lists: &Lists,
    enroll_base: &str,
) -> Markup {
    let template = format!("{enroll_base} --token {{token}} && tutti-agent install");
    html! {
        section.card id="enrollment" data-testid="enrollment-card" {
            div.card-head { h2 { "Enrollment tokens" } span.muted { "An agent trades one for its identity" } }
            @if tokens.items.is_empty() {
                (layout::empty("No enrollment tokens yet. Create one below to add an agent."))
            } @else {
                div.table-wrap {
                    table {
                        thead { tr {
                            th { "Name" } th.hide-narrow { "Id" } th { "Groups" } th.num { "Uses left" }
                            th { "Status" } th { "Expires" } th.hide-narrow { "Created" } th { span.sr-only { "Actions" } }
                        } }
                        tbody {
                            @for token in &tokens.items {
                                tr data-testid="enrollment-row" data-token=(token.token_id) {
                                    td { @if token.name.is_empty() { span.muted { "unnamed" } } @else { (token.name) } }
                                    td.hide-narrow.mono { (token.token_id) }
                                    td { div.badges { @for group in &token.groups { span.badge.muted { (group) } } } }
                                    td.num { (token.uses_left) }
                                    td { (enrollment_status(ctx, token)) }
                                    td { (layout::time(token.expires_at)) }
                                    td.hide-narrow { (layout::time(token.created_at)) " " span.muted { "by " (token.created_by) } }
                                    td {
                                        @if token.revoked_at.is_none() && token.expires_at > ctx.now && token.uses_left > 0 {
                                            button.danger.small type="button"
                                                data-api=(format!("DELETE /api/v1/enrollment-tokens/{}", layout::url_encode(&token.token_id)))
                                                data-confirm="Revoke this enrollment token? Agents already enrolled stay." data-then="reload" { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                (lists.pager("enrollment_offset", "enrollment", ENROLLMENT_PAGE, tokens.total))
            }
            h3 { "New enrollment token" }
            form.toolbar data-testid="enrollment-form" data-api="POST /api/v1/enrollment-tokens" data-then="stay"
                data-reveal="enrollment-token" data-install-template=(template) {
                div.field {
                    label for="enroll-name" { "Name" }
                    input id="enroll-name" name="name" placeholder="e.g. web rollout";
                }
                div.field {
                    label for="enroll-groups" { "Groups" }
                    input id="enroll-groups" name="groups" data-type="list" placeholder="web, eu-west";
                }
                div.field {
                    label for="enroll-expiry" { "Expires in" }
                    select id="enroll-expiry" name="expires_in_secs" data-type="number" {
                        @for (secs, label) in [(3600, "1 hour"), (86_400, "1 day"), (604_800, "7 days"), (MAX_TTL_SECS, "30 days")] {
                            option value=(secs) selected[secs == 3600] { (label) }
                        }
                    }
                }
                div.field {
                    label for="enroll-uses" { "Uses" }
                    input id="enroll-uses" name="uses" type="number" data-type="number" min="1" max=(MAX_USES) value="1" required;
                }
                button.primary type="submit" { "Create token" }
                p.form-error {}
            }
            p.hint { "Agents enrolled with it join these groups. One use enrolls one agent." }
            div.reveal id="enrollment-token-box" hidden {
                strong { "Enrollment token" }
                p.hint { "Copy it now: it is not shown again." }
                div.copy-row {
                    pre.code id="enrollment-token" data-testid="enrollment-token" {}
                    button.small type="button" data-copy="enrollment-token" { "Copy" }
                }
                p { "On the machine, as root:" }
                div.copy-row {
                    pre.code id="install-command" data-testid="install-command" {}
                    button.small type="button" data-copy="install-command" { "Copy" }
                }
                p.hint { "The server URL is the one this page was opened with; change it if agents reach the server by another name." }
                button.small type="button" data-reload { "Done" }
            }
        }
    }
}

fn enrollment_status(ctx: &PageContext, token: &EnrollmentToken) -> Markup {
    if token.revoked_at.is_some() {
        badge("revoked", Tone::Muted)
    } else if token.expires_at <= ctx.now {
        badge("expired", Tone::Warn)
    } else if token.uses_left == 0 {
        badge("used up", Tone::Muted)
    } else {
        badge("active", Tone::Ok)
    }
}

fn freeze(state: &FreezeState) -> Markup {
    html! {
        section.card id="freeze" data-testid="freeze-card" {
            div.card-head {
                h2 { "Fleet freeze" }
                @if state.in_force { (badge("frozen", Tone::Warn)) } @else { (badge("not frozen", Tone::Ok)) }
            }
            p.hint { "While frozen, schedules fire nothing and agents hold scheduled commands. Manual runs still work and are marked." }
            dl.facts data-testid="freeze-status" {
                @if state.in_force {
                    dt { "Reason" } dd { (state.reason.as_deref().unwrap_or("—")) }
                    dt { "Until" } dd { @if let Some(until) = state.until { (layout::time(until)) } @else { "lifted by hand" } }
                }
                @if state.frozen && !state.in_force {
                    dt { "Last freeze" } dd { "ended " @if let Some(until) = state.until { (layout::time(until)) } }
                }
                dt { "Last change" } dd {
                    (layout::maybe_time(state.at))
                    @if let Some(actor) = &state.actor { " by " (actor) }
                }
            }
            form.toolbar data-testid="freeze-form" data-api="PUT /api/v1/fleet/freeze" data-then="reload"
                data-confirm="Freeze the fleet? Scheduled runs are held until the freeze ends." {
                div.field.grow {
                    label for="freeze-reason" { "Reason" }
                    input id="freeze-reason" name="reason" maxlength=(MAX_REASON_CHARS) required placeholder="e.g. release window, incident 42";
                }
                div.field {
                    label for="freeze-until" { "Until (your local time, optional)" }
                    input id="freeze-until" name="until" type="datetime-local" data-type="datetime" data-optional;
                }
                button.primary type="submit" { @if state.in_force { "Replace freeze" } @else { "Freeze fleet" } }
                @if state.in_force {
                    button.danger type="button" data-testid="lift-freeze" data-api="DELETE /api/v1/fleet/freeze"
                        data-confirm="Lift the freeze? Schedules fire again." data-then="reload" { "Lift freeze" }
                }
                p.form-error {}
            }
        }
    }
}
