//! "Your account" on `/settings`: who is signed in, the password form, two-factor sign-in
//! (set up through `settings.js`, or turned off with the password), one's own API tokens
//! and "sign out everywhere". Every role sees it.

use maud::{Markup, html};
use tutti_store::{Account, ApiToken, Paged};

use super::{Lists, page_at, reveal, token_table};
use crate::actor::{Credential, Role};
use crate::app::App;
use crate::web::layout::{self, Tone, badge};
use crate::web::{PageContext, PageError};

/// Own API tokens per page.
const TOKENS_PAGE: u32 = 20;

/// What the section shows.
pub(super) struct Own {
    account: Account,
    tokens: Paged<ApiToken>,
}

/// The account and a page of its tokens.
pub(super) async fn load(
    app: &App,
    ctx: &PageContext,
    tokens_offset: u64,
) -> Result<Own, PageError> {
    let account = app.store.get_account(&ctx.actor.account).await?;
    let tokens = app
        .store
        .list_api_tokens(
            Some(&ctx.actor.account),
            page_at(TOKENS_PAGE, tokens_offset),
        )
        .await?;
    Ok(Own { account, tokens })
}

/// The "Your account" and "API tokens" cards.
pub(super) fn render(app: &App, ctx: &PageContext, own: &Own, lists: &Lists) -> Markup {
    let max_days = app.auth.config().api_token_max_days;
    html! {
        section.card id="account" data-testid="account-card" {
            div.card-head {
                h2 { "Your account" }
                button.danger.small type="button" data-testid="logout-all"
                    data-api="POST /api/v1/auth/logout-all"
                    data-confirm="Sign out of every browser session of this account, including this one?"
                    data-then="go:/login" { "Sign out everywhere" }
            }
            (who(ctx, &own.account))
            div.grid {
                (password_form(&own.account.username))
                (mfa(&own.account))
            }
        }
        section.card id="api-tokens" data-testid="tokens-card" {
            div.card-head {
                h2 { "Your API tokens" }
                span.muted { "For the CLI and automation: send as " code { "Authorization: Bearer TOKEN" } }
            }
            @if own.tokens.items.is_empty() {
                (layout::empty("You have no API tokens."))
            } @else {
                (token_table(ctx, &own.tokens.items, false))
                (lists.pager("tokens_offset", "api-tokens", TOKENS_PAGE, own.tokens.total))
            }
            (token_form(ctx.actor.role, max_days))
        }
    }
}

fn who(ctx: &PageContext, account: &Account) -> Markup {
    let via = match ctx.actor.credential {
        Credential::Session { .. } => "a browser session",
        Credential::Token { .. } => "an API token",
        Credential::System => "the server",
    };
    html! {
        dl.facts data-testid="who" {
            dt { "Account" } dd { strong { (account.username) } }
            dt { "Role" } dd {
                span class=(format!("role role-{}", ctx.actor.role)) { (ctx.actor.role) }
                @if ctx.actor.role != account.role { " " span.muted { "(account: " (account.role) ")" } }
            }
            dt { "Signed in with" } dd { (via) }
            dt { "Two-factor sign-in" } dd {
                @if account.mfa_enabled { (badge("on", Tone::Ok)) } @else { (badge("off", Tone::Muted)) }
            }
            dt { "Password changed" } dd { (layout::time(account.password_changed_at)) }
            dt { "Account created" } dd { (layout::time(account.created_at)) " by " (account.created_by) }
        }
        @if account.must_change_password {
            p.form-error { "You must change your password before anything else: use the form below." }
        }
    }
}

fn password_form(username: &str) -> Markup {
    html! {
        form.form-stack data-testid="password-form" data-api="POST /api/v1/auth/password"
            data-then="stay" data-message="Password changed; your other sessions were signed out." {
            h3 { "Change password" }
            // For password managers; it has no name, so it is not sent.
            input type="text" autocomplete="username" value=(username) hidden readonly;
            div.field {
                label for="current-password" { "Current password" }
                input id="current-password" type="password" name="current_password" autocomplete="current-password" required;
            }
            div.field {
                label for="new-password" { "New password" }
                input id="new-password" type="password" name="new_password" autocomplete="new-password" minlength="12" required aria-describedby="new-password-hint";
            }
            div.field {
                label for="repeat-password" { "Repeat the new password" }
                input id="repeat-password" type="password" data-repeat-of="new-password" autocomplete="new-password" required;
            }
            p.hint id="new-password-hint" { "At least 12 characters. Your other sessions end when it changes." }
            p.form-error {}
            div { button.primary type="submit" { "Change password" } }
        }
    }
}

fn mfa(account: &Account) -> Markup {
    html! {
        div.form-stack data-testid="mfa" {
            h3 { "Two-factor sign-in" }
            @if account.mfa_enabled {
                p { "On: signing in asks for a code from your authenticator app (or a recovery code)." }
                form.form-stack data-testid="mfa-disable-form" data-api="POST /api/v1/auth/mfa/disable"
                    data-confirm="Turn two-factor sign-in off?" data-then="reload" {
                    div.field {
                        label for="mfa-disable-password" { "Your password" }
                        input id="mfa-disable-password" type="password" name="password" autocomplete="current-password" required;
                    }
                    p.form-error {}
                    div { button.danger type="submit" { "Turn off" } }
                }
            } @else {
                p { "Off. With it on, signing in also asks for a code from an authenticator app." }
                div { button.primary type="button" data-mfa-setup data-testid="mfa-setup" { "Set up" } }
                div.form-stack id="mfa-setup-panel" hidden {
                    p { "Add this key to your authenticator app, then enter the code it shows." }
                    div.copy-row {
                        pre.code id="mfa-secret" data-testid="mfa-secret" {}
                        button.small type="button" data-copy="mfa-secret" { "Copy" }
                    }
                    details {
                        summary { "otpauth:// link (for apps that import one)" }
                        pre.code id="mfa-url" {}
                    }
                    form.form-stack id="mfa-confirm-form" data-testid="mfa-confirm-form"
                        data-api="POST /api/v1/auth/mfa/confirm" data-then="stay" {
                        div.field {
                            label for="mfa-code" { "Code from the app" }
                            input id="mfa-code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,8}" required;
                        }
                        p.form-error {}
                        div { button.primary type="submit" { "Turn on" } }
                    }
                }
                (reveal("recovery-codes", "recovery-codes", "Two-factor sign-in is on. Your recovery codes:",
                    "Each works once when the authenticator is lost. Store them now: they are not shown again."))
            }
        }
    }
}

fn token_form(role: Role, max_days: u32) -> Markup {
    let roles: Vec<Role> = Role::ALL.into_iter().filter(|r| role.allows(*r)).collect();
    html! {
        h3 { "New API token" }
        form.toolbar data-testid="token-form" data-api="POST /api/v1/tokens" data-then="stay" data-reveal="api-token" {
            div.field {
                label for="token-name" { "Name" }
                input id="token-name" name="name" maxlength="100" placeholder="e.g. laptop CLI" required;
            }
            div.field {
                label for="token-role" { "Role" }
                select id="token-role" name="role" {
                    @for option in &roles { option value=(option) selected[*option == role] { (option) } }
                }
            }
            div.field {
                label for="token-days" { "Expires in days" }
                @if max_days > 0 {
                    input id="token-days" name="expires_in_days" type="number" data-type="number" min="1" max=(max_days) value=(max_days.min(30)) required;
                } @else {
                    input id="token-days" name="expires_in_days" type="number" data-type="number" min="1" value="30" placeholder="never";
                }
            }
            button.primary type="submit" { "Create token" }
            p.form-error {}
        }
        p.hint {
            "A token never has more rights than you. "
            @if max_days > 0 { "The server allows at most " (max_days) " days." } @else { "Leave the days empty for a token that never expires." }
        }
        (reveal("api-token", "new-api-token", "Your new API token",
            "Copy it now: it is not shown again. Sign the CLI in with it, or send it as a bearer token."))
    }
}
