//! The access table: for every route of the router, who may call it. One table, one
//! mechanism (`guard.rs` looks every request up here), so a route cannot be forgotten: a
//! route without a row is refused for everybody, and the test
//! `tests/access.rs::every_route_has_a_rule_and_each_role_gets_exactly_its_rights` walks
//! every row with every role and fails when the router and this table disagree.

use axum::http::Method;
use tutti_proto::role::Role;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without credentials (health, login, enrollment with its own token).
    Public,
    /// Any signed-in account, even one that must still change its password or set up
    /// MFA: the routes that let it do so.
    SignedIn,
    /// At least this role.
    Role(Role),
}

use Access::{Public, SignedIn};

const VIEWER: Access = Access::Role(Role::Viewer);
const OPERATOR: Access = Access::Role(Role::Operator);
const ADMIN: Access = Access::Role(Role::Admin);

/// Every route: method, path template as the router matches it, access.
/// (`tests/access.rs` fills `{name}` with a schedule name that does not exist.)
pub const RULES: &[(&str, &str, Access)] = &[
    ("GET", "/healthz", Public),
    ("GET", "/readyz", Public),
    ("GET", "/metrics", VIEWER),
    ("GET", "/api/openapi.json", Public),
    ("POST", "/api/v1/enroll", Public),
    // Installing an agent: the script and the binaries carry no secret beyond the token
    // the operator put in the URL, and a machine being installed has no credentials.
    ("GET", "/install.sh", Public),
    ("GET", "/downloads/{file}", Public),
    // Signing in and managing one's own sign-in.
    ("POST", "/api/v1/auth/login", Public),
    ("POST", "/api/v1/auth/token", Public),
    ("GET", "/api/v1/auth/me", SignedIn),
    ("POST", "/api/v1/auth/logout", SignedIn),
    ("POST", "/api/v1/auth/logout-all", SignedIn),
    ("POST", "/api/v1/auth/password", SignedIn),
    ("POST", "/api/v1/auth/mfa/setup", SignedIn),
    ("POST", "/api/v1/auth/mfa/confirm", SignedIn),
    ("POST", "/api/v1/auth/mfa/disable", SignedIn),
    // API tokens: everyone manages their own; admins see and revoke all.
    ("GET", "/api/v1/tokens", VIEWER),
    ("POST", "/api/v1/tokens", VIEWER),
    ("DELETE", "/api/v1/tokens/{token_id}", VIEWER),
    // Accounts.
    ("GET", "/api/v1/accounts", ADMIN),
    ("POST", "/api/v1/accounts", ADMIN),
    ("PATCH", "/api/v1/accounts/{username}", ADMIN),
    ("POST", "/api/v1/accounts/{username}/password-reset", ADMIN),
    // The fleet.
    ("GET", "/api/v1/agents", VIEWER),
    ("GET", "/api/v1/agents/{agent_id}", VIEWER),
    ("DELETE", "/api/v1/agents/{agent_id}", ADMIN),
    ("PUT", "/api/v1/agents/{agent_id}/groups", OPERATOR),
    ("GET", "/api/v1/agents/{agent_id}/inventory", VIEWER),
    ("GET", "/api/v1/agents/{agent_id}/inventory/changes", VIEWER),
    ("GET", "/api/v1/agents/{agent_id}/config", VIEWER),
    ("GET", "/api/v1/groups", VIEWER),
    ("POST", "/api/v1/groups", OPERATOR),
    ("DELETE", "/api/v1/groups/{group}", OPERATOR),
    ("GET", "/api/v1/inventory/packages", VIEWER),
    // The fleet freeze holds every scheduled run, so changing it is for admins.
    ("GET", "/api/v1/fleet/freeze", VIEWER),
    ("PUT", "/api/v1/fleet/freeze", ADMIN),
    ("DELETE", "/api/v1/fleet/freeze", ADMIN),
    // Jobs and runs.
    ("GET", "/api/v1/jobs", VIEWER),
    ("POST", "/api/v1/jobs", OPERATOR),
    ("GET", "/api/v1/jobs/{job_id}", VIEWER),
    ("DELETE", "/api/v1/jobs/{job_id}", OPERATOR),
    ("GET", "/api/v1/jobs/{job_id}/versions", VIEWER),
    ("POST", "/api/v1/jobs/{job_id}/revoke", OPERATOR),
    ("GET", "/api/v1/schedules", VIEWER),
    ("POST", "/api/v1/schedules", OPERATOR),
    ("GET", "/api/v1/schedules/{name}", VIEWER),
    ("PATCH", "/api/v1/schedules/{name}", OPERATOR),
    ("DELETE", "/api/v1/schedules/{name}", OPERATOR),
    ("GET", "/api/v1/schedules/{name}/preview", VIEWER),
    ("GET", "/api/v1/schedules/{name}/coverage", VIEWER),
    ("GET", "/api/v1/runs", VIEWER),
    ("POST", "/api/v1/runs", OPERATOR),
    ("GET", "/api/v1/runs/{run_id}", VIEWER),
    ("GET", "/api/v1/runs/{run_id}/results", VIEWER),
    ("GET", "/api/v1/runs/{run_id}/results/{agent_id}", VIEWER),
    ("POST", "/api/v1/runs/{run_id}/kill", OPERATOR),
    ("POST", "/api/v1/runs/{run_id}/rollout/abort", OPERATOR),
    ("POST", "/api/v1/runs/{run_id}/rollout/pause", OPERATOR),
    ("POST", "/api/v1/runs/{run_id}/rollout/resume", OPERATOR),
    ("GET", "/api/v1/runs/{run_id}/progress", VIEWER),
    ("GET", "/api/v1/runs/{run_id}/output", VIEWER),
    // Configuration layers.
    ("GET", "/api/v1/config/global", VIEWER),
    ("PUT", "/api/v1/config/global", OPERATOR),
    ("DELETE", "/api/v1/config/global", OPERATOR),
    ("GET", "/api/v1/config/groups/{group}", VIEWER),
    ("PUT", "/api/v1/config/groups/{group}", OPERATOR),
    ("DELETE", "/api/v1/config/groups/{group}", OPERATOR),
    ("GET", "/api/v1/config/agents/{agent_id}", VIEWER),
    ("PUT", "/api/v1/config/agents/{agent_id}", OPERATOR),
    ("DELETE", "/api/v1/config/agents/{agent_id}", OPERATOR),
    // Administration.
    ("GET", "/api/v1/enrollment-tokens", ADMIN),
    ("POST", "/api/v1/enrollment-tokens", ADMIN),
    ("DELETE", "/api/v1/enrollment-tokens/{token_id}", ADMIN),
    // Signing keys: who may rotate them may decide which key every agent obeys.
    ("GET", "/api/v1/keys", VIEWER),
    ("POST", "/api/v1/keys/rotate", ADMIN),
    ("GET", "/api/v1/audit", VIEWER),
    ("GET", "/api/v1/anomalies", VIEWER),
];

/// The dashboard's pages (all `GET`; their actions call the API routes above). A browser
/// without a session is sent to `/login` rather than answered 401 (`guard.rs`).
pub const PAGES: &[(&str, &str, Access)] = &[
    ("GET", "/login", Public),
    ("GET", "/assets/{file}", Public),
    ("GET", "/", VIEWER),
    ("GET", "/agents", VIEWER),
    ("GET", "/agents/{agent_id}", VIEWER),
    ("GET", "/jobs", VIEWER),
    ("GET", "/jobs/new", OPERATOR),
    ("GET", "/jobs/{job_id}", VIEWER),
    ("GET", "/jobs/{job_id}/edit", OPERATOR),
    ("GET", "/runs", VIEWER),
    ("GET", "/runs/{run_id}", VIEWER),
    ("GET", "/schedules", VIEWER),
    ("GET", "/schedules/{name}", VIEWER),
    ("GET", "/audit", VIEWER),
    ("GET", "/settings", VIEWER),
];

/// Whether a matched route is a dashboard page.
pub fn is_page(path: &str) -> bool {
    PAGES.iter().any(|(_, page, _)| *page == path)
}

/// The rule for a request, `None` when the table has no row (refused for everybody).
/// `HEAD` follows the rule of `GET`, which answers it.
pub fn rule(method: &Method, path: &str) -> Option<Access> {
    let method = if method == Method::HEAD {
        Method::GET.as_str()
    } else {
        method.as_str()
    };
    RULES
        .iter()
        .chain(PAGES)
        .find(|(rule_method, rule_path, _)| *rule_method == method && *rule_path == path)
        .map(|(_, _, access)| *access)
}

/// The methods the table has for `path`, as an `Allow` header lists them (`HEAD` with
/// `GET`); empty for a path with no rule at all.
pub fn allowed_methods(path: &str) -> String {
    let mut methods: Vec<&str> = RULES
        .iter()
        .chain(PAGES)
        .filter(|(_, rule_path, _)| *rule_path == path)
        .map(|(method, _, _)| *method)
        .collect();
    if methods.contains(&"GET") {
        methods.push("HEAD");
    }
    methods.join(", ")
}

/// Whether a method changes state (and so needs a CSRF token from a browser session and
/// an audit record when refused).
pub fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_is_unique_and_well_formed() {
        let mut seen = std::collections::BTreeSet::new();
        for (method, path, _) in RULES.iter().chain(PAGES) {
            assert!(seen.insert((method, path)), "{method} {path} has two rules");
            assert!(path.starts_with('/'), "{path}");
            assert!(
                ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(method),
                "{method}"
            );
        }
        assert_eq!(rule(&Method::GET, "/api/v1/runs"), Some(VIEWER));
        assert_eq!(rule(&Method::POST, "/api/v1/runs"), Some(OPERATOR));
        assert_eq!(rule(&Method::PUT, "/api/v1/runs"), None);
    }
}
