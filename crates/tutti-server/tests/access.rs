//! Authorisation from one table: every route of `auth/policy.rs` is called by nobody, a
//! viewer, an operator and an admin (each with an API token of its role), and each answer
//! must be exactly what the table allows. The OpenAPI test in `validation.rs` keeps the
//! table and the documented routes equal, so a new route without a rule fails there, and
//! the guard refuses an unruled route for everybody.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tutti_proto::role::Role;
use tutti_server::auth::policy::{Access, PAGES, RULES};
use tutti_testkit::{TestNats, TestServer, client_with_token};

/// Path parameters filled with values that exist nowhere (a route that is allowed answers
/// 400 or 404 then, never 401 or 403).
fn concrete(path: &str) -> String {
    path.replace("{agent_id}", "no-such-agent")
        .replace("{run_id}", "01J00000000000000000000000")
        .replace("{job_id}", "no-such-job")
        .replace("{group}", "no-such-group")
        .replace("{token_id}", "0000000000000000")
        .replace("{username}", "nobody")
        .replace("{name}", "no-such-schedule")
        .replace("{file}", "tutti-agent-no-such-platform")
}

/// The status of one call; a redirect to the sign-in page counts as 401 (what a page
/// answers a browser without a session).
async fn call(client: &reqwest::Client, base: &str, method: &str, path: &str) -> u16 {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = client
        .request(method.clone(), format!("{base}{}", concrete(path)))
        .timeout(Duration::from_secs(10));
    if method != Method::GET {
        request = request.json(&json!({}));
    }
    let response = request.send().await.expect("request");
    let to_login = response
        .headers()
        .get("location")
        .and_then(|location| location.to_str().ok())
        .is_some_and(|location| location.starts_with("/login?next="));
    if response.status().is_redirection() && to_login {
        return 401;
    }
    response.status().as_u16()
}

/// Whether `caller` (None = no credentials) may call a route with `access`.
fn allowed(access: Access, caller: Option<Role>) -> bool {
    match (access, caller) {
        (Access::Public, _) => true,
        (_, None) => false,
        (Access::SignedIn, Some(_)) => true,
        (Access::Role(required), Some(role)) => role.allows(required),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_has_a_rule_and_each_role_gets_exactly_its_rights() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let base = server.url();
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut callers: Vec<(Option<Role>, reqwest::Client)> = vec![(None, no_redirects)];
    for role in Role::ALL {
        let name = format!("a-{role}");
        let created: Value = server
            .post(
                "/api/v1/accounts",
                &json!({"username": name, "role": role, "password": "correct horse battery staple"}),
            )
            .await;
        assert_eq!(created["account"]["role"], role.as_str());
        let token = server.app().store.get_account(&name).await.unwrap();
        let issued =
            tutti_server::auth::signin::issue_api_token(server.app(), &token, "access", role, None)
                .await
                .unwrap();
        callers.push((Some(role), client_with_token(&issued.token)));
    }

    let mut wrong = Vec::new();
    for (method, path, access) in RULES.iter().chain(PAGES) {
        for (caller, client) in &callers {
            let status = call(client, &base, method, path).await;
            let expected_allowed = allowed(*access, *caller);
            let denied = match caller {
                None => status == 401,
                Some(_) => status == 403,
            };
            let ok = if expected_allowed {
                status != 401 && status != 403
            } else {
                denied
            };
            if !ok {
                wrong.push(format!(
                    "{method} {path} as {}: {status} (expected {})",
                    caller.map_or("nobody".to_string(), |role| role.to_string()),
                    if expected_allowed {
                        "allowed"
                    } else {
                        "denied"
                    }
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong answers:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(RULES.len() >= 60, "the table lost rows: {}", RULES.len());

    // A route the router does not have is 404 for everybody, not a hole.
    assert_eq!(
        call(&callers[3].1, &base, "GET", "/api/v1/nothing-here").await,
        404
    );
    assert_eq!(
        call(&callers[0].1, &base, "GET", "/api/v1/nothing-here").await,
        404
    );
}
