//! The middleware every request passes: find the route's rule in `policy.rs`, resolve
//! the credentials into an [`Actor`], check the role, the CSRF token of browser sessions
//! and the account's pending duties (a password to change, MFA to set up), then hand the
//! actor to the handler through the request's extensions.
//!
//! Refusals: no or bad credentials are 401; a known caller without the right is 403, and
//! a refused state-changing request is audited with outcome `denied`. A state-changing
//! request that was allowed but failed (4xx/5xx from its handler) is audited here with
//! outcome `failed`; handlers audit their successes under their own action names.
//! Dashboard pages (`policy::PAGES`) are refused the way a browser expects: no session, or
//! a duty still to do, redirects to `/login?next=…`; a missing role is an HTML error page.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tutti_proto::audit::AuditOutcome;
use tutti_proto::role::Role;

use super::policy::{self, Access};
use super::signin;
use super::{CSRF_HEADER, SESSION_COOKIE, secret};
use crate::actor::{Actor, ClientAddr};
use crate::app::App;
use crate::error::{Error, Result};

/// How a refused dashboard page looks: the dashboard supplies these when the routers are
/// assembled (`crate::http`), so the guard decides and the dashboard renders.
#[derive(Debug, Clone, Copy)]
pub struct PageRefusals {
    /// To the sign-in page, coming back to `path_and_query` afterwards.
    pub sign_in: fn(path_and_query: &str) -> Response,
    /// An error page for a refusal the caller cannot fix by signing in.
    pub error: fn(&Error) -> Response,
}

/// Authenticates and authorises one request (installed with `route_layer`, so the
/// matched route is known).
pub async fn guard(
    State((app, pages)): State<(App, PageRefusals)>,
    mut request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let Some(path) = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
    else {
        return Error::Forbidden("no access rule for this route".into()).into_response();
    };
    let Some(access) = policy::rule(&method, &path) else {
        let allow = policy::allowed_methods(&path);
        if !allow.is_empty() {
            // A client's wrong method, not a server bug.
            tracing::debug!(%method, %path, "Refused a method the route does not have.");
            let method = method.to_string();
            return Error::MethodNotAllowed { method, allow }.into_response();
        }
        tracing::error!(%method, %path, "A route has no access rule; refusing it for everybody.");
        return Error::Forbidden("no access rule for this route".into()).into_response();
    };
    if access == Access::Public {
        return next.run(request).await;
    }
    let page = policy::is_page(&path);
    let (parts, body) = request.into_parts();
    let source = ClientAddr::of(&parts).0;
    match authorise(&app, &parts.headers, &method, access, source).await {
        Ok(actor) => {
            request = Request::from_parts(parts, body);
            request.extensions_mut().insert(actor.clone());
            let response = next.run(request).await;
            let status = response.status();
            if policy::changes_state(&method)
                && (status.is_client_error() || status.is_server_error())
            {
                // Handlers audit what succeeded, by name; what failed is audited here, once
                // for every route, so no failed action goes unrecorded.
                let target = format!("route/{method} {path}");
                let summary = serde_json::json!({ "status": status.as_u16() });
                app.auditor
                    .record(
                        &actor,
                        "request.failed",
                        target,
                        summary,
                        AuditOutcome::Failed,
                    )
                    .await;
            }
            response
        }
        Err(Refusal { error, actor, duty }) => {
            if let Some(actor) = actor.filter(|_| policy::changes_state(&method)) {
                let target = format!("route/{method} {path}");
                let summary = serde_json::json!({ "reason": error.to_string() });
                app.auditor
                    .record(
                        &actor,
                        "access.denied",
                        target,
                        summary,
                        AuditOutcome::Denied,
                    )
                    .await;
            }
            if page {
                return page_refusal(pages, &error, duty, &parts.uri);
            }
            error.into_response()
        }
    }
}

/// A refused page: a browser without a session (or with a duty to do first, such as a
/// password to change) goes to the sign-in page; a role refusal is an error page.
fn page_refusal(pages: PageRefusals, error: &Error, duty: bool, uri: &axum::http::Uri) -> Response {
    if duty || matches!(error, Error::Unauthorized(_)) {
        let back = uri.path_and_query().map_or("/", |pq| pq.as_str());
        return (pages.sign_in)(back);
    }
    (pages.error)(error)
}

struct Refusal {
    error: Error,
    /// The caller, when it was identified (a refusal of a known caller is audited).
    actor: Option<Box<Actor>>,
    /// The caller must first change its password or set up two-factor sign-in.
    duty: bool,
}

impl From<Error> for Refusal {
    fn from(error: Error) -> Refusal {
        Refusal {
            error,
            actor: None,
            duty: false,
        }
    }
}

async fn authorise(
    app: &App,
    headers: &HeaderMap,
    method: &Method,
    access: Access,
    source: Option<String>,
) -> Result<Actor, Refusal> {
    if let Some(token) = bearer(headers)? {
        let actor = signin::actor_from_token(app, token, source).await?;
        return check_role(actor, access);
    }
    let Some(cookie) = cookie(headers, SESSION_COOKIE) else {
        return Err(Error::Unauthorized(
            "sign in first: send a session cookie or `Authorization: Bearer <API token>`".into(),
        )
        .into());
    };
    let (actor, session) = signin::actor_from_session(app, cookie, source).await?;
    let refuse = |error: Error| Refusal {
        error,
        actor: Some(Box::new(actor.clone())),
        duty: false,
    };
    let duty = |error: Error| Refusal {
        duty: true,
        ..refuse(error)
    };
    if policy::changes_state(method) {
        let Some(session_hash) = session_hash(&actor) else {
            return Err(refuse(Error::Forbidden("no session".into())));
        };
        let expected = app.auth.csrf_token(session_hash);
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !secret::equal_in_constant_time(sent, &expected) {
            return Err(refuse(Error::Forbidden(format!(
                "missing or wrong CSRF token: send the `{CSRF_HEADER}` header from GET /api/v1/auth/me"
            ))));
        }
    }
    if access != Access::SignedIn {
        if session.must_change_password {
            return Err(duty(Error::Forbidden(
                "change your password first: POST /api/v1/auth/password".into(),
            )));
        }
        if app.auth.config().require_mfa_for_admins
            && session.role == Role::Admin
            && !session.mfa_enabled
        {
            return Err(duty(Error::Forbidden(
                "admins must set up two-factor sign-in first: POST /api/v1/auth/mfa/setup".into(),
            )));
        }
    }
    check_role(actor, access)
}

fn check_role(actor: Actor, access: Access) -> Result<Actor, Refusal> {
    match access {
        Access::Role(required) if !actor.role.allows(required) => Err(Refusal {
            error: Error::Forbidden(format!(
                "this needs the {required} role; {} has {}",
                actor.name, actor.role
            )),
            actor: Some(Box::new(actor)),
            duty: false,
        }),
        _ => Ok(actor),
    }
}

fn session_hash(actor: &Actor) -> Option<&str> {
    match &actor.credential {
        crate::actor::Credential::Session { session_hash } => Some(session_hash),
        _ => None,
    }
}

/// The bearer token, if the request has an `Authorization` header; a malformed one is 401.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("");
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(Error::Unauthorized(
            "the Authorization header must be `Bearer <API token>`".into(),
        )),
    }
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}
