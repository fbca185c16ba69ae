//! The web dashboard: server-rendered HTML (maud templates, escaped by construction), one
//! stylesheet and one small script embedded in the binary, and the API's own server-sent
//! events for live views. No build step, nothing loaded from elsewhere.
//!
//! Pages only read. Every action a page offers (run, kill, abort, edit groups, freeze,
//! accounts, tokens) is a `fetch` of the JSON API from `assets/app.js`, with the session
//! cookie and the `x-csrf-token` header the page carries in a `<meta>` tag, so the API's
//! handlers, role checks and audit records are the only path for a change. Pages hide the
//! buttons a role may not use; the API refuses them anyway when forged.
//!
//! Page routes are ruled in `auth/policy.rs` (`PAGES`) and pass the same guard as the API;
//! the guard sends a browser without a session to `/login` instead of answering 401.

pub(crate) mod agents;
pub(crate) mod audit;
pub(crate) mod charts;
pub(crate) mod jobs;
pub(crate) mod layout;
pub(crate) mod login;
pub(crate) mod overview;
pub(crate) mod runs;
pub(crate) mod schedules;
pub(crate) mod settings;
pub(crate) mod tables;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use jiff::Timestamp;
use tutti_api::fleet::FreezeState;

use crate::actor::{Actor, Credential};
use crate::app::App;
use crate::error::Error;

/// How the access guard refuses a page: to the sign-in page, or an error page.
pub(crate) const PAGE_REFUSALS: crate::auth::guard::PageRefusals =
    crate::auth::guard::PageRefusals {
        sign_in: login_redirect,
        error: error_page,
    };

/// The dashboard's routes (merged with the API's by `crate::http`, under the same guard).
pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/", get(overview::page))
        .route("/login", get(login::page))
        .route("/assets/{file}", get(asset))
        .route("/agents", get(agents::list))
        .route("/agents/{agent_id}", get(agents::detail))
        .route("/jobs", get(jobs::list))
        .route("/jobs/new", get(jobs::editor_new))
        .route("/jobs/{job_id}", get(jobs::detail))
        .route("/jobs/{job_id}/edit", get(jobs::editor))
        .route("/runs", get(runs::list))
        .route("/runs/{run_id}", get(runs::detail))
        .route("/schedules", get(schedules::list))
        .route("/schedules/{name}", get(schedules::detail))
        .route("/audit", get(audit::list))
        .route("/settings", get(settings::page))
        .layer(axum::middleware::map_response(security_headers))
}

/// Pages run only our own script and style: no inline script, no framing, no foreign
/// origins; live updates and actions go to this origin only.
async fn security_headers(response: Response) -> Response {
    with_security_headers(response)
}

/// [`security_headers`] for responses made outside the page router (the guard's refusals).
fn with_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// What every page knows about the request: who asks, the CSRF token for its actions, and
/// whether the fleet is frozen (the banner).
#[derive(Debug, Clone)]
pub(crate) struct PageContext {
    /// The signed-in caller.
    pub actor: Actor,
    /// The CSRF token of a browser session (`None` for API-token callers, who need none).
    pub csrf: Option<String>,
    /// The fleet freeze, when one is in force.
    pub freeze: Option<FreezeState>,
    /// When the page was rendered (relative times are computed against it).
    pub now: Timestamp,
}

impl PageContext {
    /// Builds the context for `actor`. A freeze that cannot be read is shown as unknown
    /// rather than failing the page.
    pub(crate) async fn load(app: &App, actor: Actor) -> PageContext {
        let csrf = match &actor.credential {
            Credential::Session { session_hash } => Some(app.auth.csrf_token(session_hash)),
            _ => None,
        };
        let now = Timestamp::now();
        let freeze = match app.kv.get_freeze().await {
            Ok(freeze) => Some(FreezeState::of(freeze.as_ref(), now)).filter(|f| f.in_force),
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the fleet freeze for a page");
                None
            }
        };
        PageContext {
            actor,
            csrf,
            freeze,
            now,
        }
    }

    /// Whether the caller may take actions that need `role`.
    pub(crate) fn can(&self, role: crate::actor::Role) -> bool {
        self.actor.role.allows(role)
    }
}

/// A page handler's result: HTML, or an error page with the error's status.
pub(crate) type PageResult = Result<Html<String>, PageError>;

/// An error shown as a page.
#[derive(Debug)]
pub(crate) struct PageError(pub Error);

impl From<Error> for PageError {
    fn from(error: Error) -> PageError {
        PageError(error)
    }
}

impl From<tutti_store::StoreError> for PageError {
    fn from(error: tutti_store::StoreError) -> PageError {
        PageError(Error::from(error))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        error_page(&self.0)
    }
}

/// A standalone error page (no navigation: it may be shown to someone not signed in).
pub(crate) fn error_page(error: &Error) -> Response {
    let (status, _) = error.status();
    let message = match error {
        Error::Internal(_) => {
            "something went wrong on the server; the log has the details".to_string()
        }
        other => other.to_string(),
    };
    if let Error::Internal(err) = error {
        tracing::error!(error = format!("{err:#}"), "A dashboard page failed.");
    }
    let body = layout::bare(
        &format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ),
        maud::html! {
            main.bare {
                section.card.narrow {
                    h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                    p.error-text { (message) }
                    p { a href="/" { "Back to the overview" } }
                }
            }
        },
    );
    with_security_headers((status, body).into_response())
}

/// Where the guard sends a browser that is not signed in.
pub(crate) fn login_redirect(path_and_query: &str) -> Response {
    let next = safe_next(path_and_query).unwrap_or("/");
    let target = format!("/login?next={}", layout::url_encode(next));
    with_security_headers(Redirect::to(&target).into_response())
}

/// `next` when it is a path on this site, `None` otherwise. Browsers read `\` as `/` and drop
/// tabs and newlines, so `/\evil.example` or `/<tab>/evil.example` would leave the site;
/// only a plain path (letters, digits and URL punctuation, no backslash or whitespace) whose
/// second character is not a slash is accepted.
pub(crate) fn safe_next(next: &str) -> Option<&str> {
    let plain = next
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || b"/-_.~%?&=+,:@".contains(&byte));
    (plain && next.starts_with('/') && next.as_bytes().get(1) != Some(&b'/')).then_some(next)
}

/// Every embedded asset: name, body, media type. Page scripts are separate files because
/// the content security policy allows no inline script.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.css",
        include_str!("assets/app.css"),
        "text/css; charset=utf-8",
    ),
    (
        "app.js",
        include_str!("assets/app.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "login.js",
        include_str!("assets/login.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "run.js",
        include_str!("assets/run.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "jobs.js",
        include_str!("assets/jobs.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "settings.js",
        include_str!("assets/settings.js"),
        "text/javascript; charset=utf-8",
    ),
    ("icon.svg", include_str!("assets/icon.svg"), "image/svg+xml"),
];

/// The embedded stylesheet, scripts and icon.
async fn asset(Path(file): Path<String>) -> Response {
    let Some((_, body, content_type)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let mut response = (*body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_paths_on_this_site_are_followed_after_sign_in() {
        for good in ["/", "/jobs/hello", "/runs?status=done&offset=50", "/a%20b"] {
            assert_eq!(safe_next(good), Some(good), "{good}");
        }
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "evil",
            "",
            "/<script>",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
    }
}
