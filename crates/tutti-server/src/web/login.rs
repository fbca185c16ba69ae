//! `/login`: sign-in in steps, driven by `assets/login.js` against the auth API: password,
//! then the TOTP or recovery code when the account has two-factor sign-in, then the
//! duties the server names in `required_action` (a new password, setting up two-factor
//! sign-in, showing the recovery codes once). The page itself is static; the exact
//! "code required" message is handed to the script so both sides compare one string.

use axum::extract::Query;
use maud::html;
use serde::Deserialize;

use super::PageResult;
use super::layout::bare;
use crate::auth::signin::CODE_REQUIRED;

/// `?next=/path` to return to after signing in.
#[derive(Debug, Deserialize)]
pub(crate) struct LoginParams {
    next: Option<String>,
}

/// The sign-in page.
pub(crate) async fn page(Query(params): Query<LoginParams>) -> PageResult {
    let next = params
        .next
        .filter(|next| super::safe_next(next).is_some())
        .unwrap_or_else(|| "/".into());
    Ok(bare(
        "Sign in",
        html! {
            main.bare {
                section.card.narrow data-login data-next=(next) data-code-required=(CODE_REQUIRED) {
                    div.login-brand {
                        img src="/assets/icon.svg" alt="" width="32" height="32";
                        span { "tutti" }
                    }
                    form.login-form data-step="password" novalidate {
                        h1 { "Sign in" }
                        div.field {
                            label for="username" { "Account" }
                            input id="username" name="username" autocomplete="username" required autofocus;
                        }
                        div.field {
                            label for="password" { "Password" }
                            input id="password" name="password" type="password" autocomplete="current-password" required;
                        }
                        div.field hidden data-code-field {
                            label for="code" { "Code from your authenticator app (or a recovery code)" }
                            input id="code" name="code" inputmode="numeric" autocomplete="one-time-code";
                        }
                        p.form-error role="alert" {}
                        button.primary type="submit" { "Sign in" }
                    }
                    form.login-form data-step="change-password" hidden novalidate {
                        h1 { "Choose a new password" }
                        p.muted { "Your password was set by an administrator or is the initial one. Choose your own to continue (at least 12 characters)." }
                        div.field {
                            label for="new-password" { "New password" }
                            input id="new-password" name="new_password" type="password" autocomplete="new-password" minlength="12" required;
                        }
                        div.field {
                            label for="new-password-again" { "Repeat it" }
                            input id="new-password-again" name="again" type="password" autocomplete="new-password" required;
                        }
                        p.form-error role="alert" {}
                        button.primary type="submit" { "Save and continue" }
                    }
                    form.login-form data-step="setup-mfa" hidden novalidate {
                        h1 { "Set up two-factor sign-in" }
                        p.muted { "Administrators must use a second factor. Add this key to an authenticator app, then enter the code it shows." }
                        div.field {
                            span.label { "Key" }
                            pre.code data-mfa-secret {}
                        }
                        div.field {
                            label for="mfa-code" { "Code" }
                            input id="mfa-code" name="code" inputmode="numeric" autocomplete="one-time-code" required;
                        }
                        p.form-error role="alert" {}
                        button.primary type="submit" { "Turn on" }
                    }
                    div.login-form data-step="recovery-codes" hidden {
                        h1 { "Save your recovery codes" }
                        p.muted { "Each code signs you in once if you lose your authenticator. They are shown only now." }
                        pre.code id="recovery-codes" data-recovery-codes {}
                        div.actions {
                            button type="button" data-copy="recovery-codes" { "Copy" }
                            button.primary type="button" data-continue { "Continue" }
                        }
                    }
                }
            }
            script src="/assets/login.js" defer {}
        },
    ))
}
