//! Bad input never yields a 500 and never stores anything: the router is driven as a value
//! (`oneshot`) with tables of malformed requests and manifests, each asserting the status,
//! a piece of the message, and afterwards that no job, run, group, token or agent
//! appeared. The router runs against a real broker and a real SQLite file.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::{Value, json};
use tower::ServiceExt;
use tutti_server::App;
use tutti_testkit::{TestNats, test_config};

/// One malformed request: method, path, content type, body, expected status, and a piece
/// of the expected message.
struct Case {
    method: Method,
    path: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    message: &'static str,
}

fn json_case(
    method: Method,
    path: &'static str,
    body: Value,
    status: u16,
    message: &'static str,
) -> Case {
    Case {
        method,
        path,
        content_type: Some("application/json"),
        body: body.to_string().into_bytes(),
        status,
        message,
    }
}

fn raw_case(
    method: Method,
    path: &'static str,
    content_type: Option<&'static str>,
    body: &[u8],
    status: u16,
    message: &'static str,
) -> Case {
    Case {
        method,
        path,
        content_type,
        body: body.to_vec(),
        status,
        message,
    }
}

fn yaml_case(manifest: &str, status: u16, message: &'static str) -> Case {
    raw_case(
        Method::POST,
        "/api/v1/jobs",
        Some("application/yaml"),
        manifest.as_bytes(),
        status,
        message,
    )
}

async fn send(router: &Router, case: &Case) -> (u16, Value) {
    let mut request = Request::builder()
        .method(case.method.clone())
        .uri(case.path);
    if let Some(content_type) = case.content_type {
        request = request.header("content-type", content_type);
    }
    let request = request.body(Body::from(case.body.clone())).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Sends every case and collects the mismatches, so one run shows all of them.
async fn check(router: &Router, cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        let (status, body) = send(router, case).await;
        let message = body["message"].as_str().unwrap_or_default();
        if status != case.status || !message.contains(case.message) || body["error"].is_null() {
            failures.push(format!(
                "{} {}: expected {} containing {:?}, got {status} {body}",
                case.method, case.path, case.status, case.message
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

struct Fixture {
    _nats: TestNats,
    _dir: tempfile::TempDir,
    app: App,
    router: Router,
}

/// The router with every request signed in as the first admin (an API token).
async fn signed_in(router: Router, app: &App) -> Router {
    let admin = app.store.get_account("admin").await.unwrap();
    let issued = tutti_server::auth::signin::issue_api_token(
        app,
        &admin,
        "validation",
        tutti_proto::role::Role::Admin,
        None,
    )
    .await
    .unwrap();
    let bearer = format!("Bearer {}", issued.token);
    router.layer(axum::middleware::map_request(
        move |mut request: Request<Body>| {
            let bearer = bearer.clone();
            async move {
                request
                    .headers_mut()
                    .insert("authorization", bearer.parse().unwrap());
                request
            }
        },
    ))
}

/// A server state with one enrolled agent (`web-01`) and one group (`existing`).
async fn fixture() -> Fixture {
    let nats = TestNats::start();
    let dir = tempfile::tempdir().unwrap();
    let app = App::open(test_config(&nats, dir.path())).await.unwrap();
    let router = signed_in(tutti_server::api::router(app.clone()), &app).await;
    let token = create_token(&router).await;
    let enroll = json_case(
        Method::POST,
        "/api/v1/enroll",
        json!({"token": token, "hostname": "web-01", "nats_public_key": agent_key()}),
        200,
        "",
    );
    assert_eq!(send(&router, &enroll).await.0, 200);
    let group = json_case(
        Method::POST,
        "/api/v1/groups",
        json!({"name": "existing"}),
        201,
        "",
    );
    assert_eq!(send(&router, &group).await.0, 201);
    Fixture {
        _nats: nats,
        _dir: dir,
        app,
        router,
    }
}

async fn create_token(router: &Router) -> String {
    let case = json_case(
        Method::POST,
        "/api/v1/enrollment-tokens",
        json!({"uses": 10}),
        201,
        "",
    );
    let (status, body) = send(router, &case).await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_string()
}

/// How many jobs, runs, groups, tokens and agents the store holds.
async fn counts(app: &App) -> [u64; 5] {
    let page = tutti_store::Page::first(1);
    let now = jiff::Timestamp::now();
    [
        app.store.list_jobs(true, page).await.unwrap().total,
        app.store
            .list_runs(&tutti_store::RunQuery::default())
            .await
            .unwrap()
            .total,
        app.store.list_groups(page).await.unwrap().total,
        app.store.list_enrollment_tokens(page).await.unwrap().total,
        app.store
            .list_agents(&tutti_store::AgentQuery::all(now))
            .await
            .unwrap()
            .total,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_client_errors_and_store_nothing() {
    let fixture = fixture().await;
    let before = counts(&fixture.app).await;
    let run = |body: Value, status: u16, message: &'static str| {
        json_case(Method::POST, "/api/v1/runs", body, status, message)
    };
    let script = json!({"script": "echo hi"});
    let cases = vec![
        raw_case(
            Method::POST,
            "/api/v1/runs",
            Some("application/json"),
            b"{",
            400,
            "invalid JSON",
        ),
        raw_case(
            Method::POST,
            "/api/v1/runs",
            None,
            b"{}",
            415,
            "application/json",
        ),
        raw_case(
            Method::POST,
            "/api/v1/runs",
            Some("application/json"),
            b"",
            400,
            "body is empty",
        ),
        run(json!({"targets": {"all": true}}), 400, "missing job_id"),
        run(
            json!({"script": script, "targets": {"agents": ["Bad Id!"]}}),
            400,
            "targets.agents[0]",
        ),
        run(
            json!({"script": script, "targets": {}}),
            400,
            "name `all: true`",
        ),
        run(
            json!({"script": script, "targets": {"all": true, "agents": ["web-01"]}}),
            400,
            "cannot be combined",
        ),
        run(
            json!({"script": script, "targets": {"all": true}, "priority": 1}),
            400,
            "unknown field `priority`",
        ),
        run(
            json!({"script": script, "targets": {"all": "yes"}}),
            400,
            "targets.all",
        ),
        run(
            json!({"job_id": "nope", "targets": {"all": true}}),
            404,
            "not found",
        ),
        run(
            json!({"script": {"script": "x", "timeout_secs": 0}, "targets": {"all": true}}),
            400,
            "timeout_secs must be between",
        ),
        run(
            json!({"script": script, "targets": {"agents": ["ghost"]}}),
            400,
            "agent ghost is not known",
        ),
        run(
            json!({"script": script, "targets": {"groups": ["existing"]}}),
            400,
            "has no agents",
        ),
        run(
            json!({"script": script, "targets": {"all": true}, "deadline": "2001-01-01T00:00:00Z"}),
            400,
            "in the past",
        ),
        run(
            json!({"script": {"script": "x", "shell": "zsh"}, "targets": {"all": true}}),
            400,
            "script.shell",
        ),
        run(
            json!({"script": {"script": "x", "env": {"1X": "y"}}, "targets": {"all": true}}),
            400,
            "invalid environment variable name",
        ),
        run(
            json!({"script": {"script": "   "}, "targets": {"all": true}}),
            400,
            "script must not be empty",
        ),
        run(
            json!({"script": {"description": "no script"}, "targets": {"all": true}}),
            400,
            "missing script",
        ),
        raw_case(
            Method::POST,
            "/api/v1/runs",
            Some("application/json"),
            &vec![b' '; 2 << 20],
            413,
            "larger than",
        ),
        raw_case(
            Method::GET,
            "/api/v1/runs/not-a-ulid",
            None,
            b"",
            400,
            "invalid run id",
        ),
        raw_case(
            Method::GET,
            "/api/v1/runs/01hwjsd2r4z9q0c6y8m3t5v7xa",
            None,
            b"",
            404,
            "not found",
        ),
        raw_case(
            Method::POST,
            "/api/v1/runs/01hwjsd2r4z9q0c6y8m3t5v7xa/kill",
            None,
            b"",
            404,
            "not found",
        ),
        raw_case(
            Method::GET,
            "/api/v1/runs?status=finished",
            None,
            b"",
            400,
            "invalid status",
        ),
        raw_case(
            Method::GET,
            "/api/v1/agents?limit=abc",
            None,
            b"",
            400,
            "invalid query string",
        ),
        raw_case(
            Method::GET,
            "/api/v1/agents?colour=red",
            None,
            b"",
            400,
            "colour",
        ),
        raw_case(
            Method::GET,
            "/api/v1/agents?sort=colour",
            None,
            b"",
            400,
            "invalid sort",
        ),
        raw_case(
            Method::GET,
            "/api/v1/agents/ghost",
            None,
            b"",
            404,
            "not found",
        ),
        raw_case(
            Method::GET,
            "/api/v1/agents/UPPER..dots",
            None,
            b"",
            400,
            "invalid agent id",
        ),
        json_case(
            Method::PUT,
            "/api/v1/agents/web-01/groups",
            json!({"groups": ["a.b"]}),
            400,
            "groups[0]",
        ),
        json_case(
            Method::PUT,
            "/api/v1/agents/ghost/groups",
            json!({"groups": ["web"]}),
            404,
            "not found",
        ),
        json_case(
            Method::POST,
            "/api/v1/groups",
            json!({"name": "existing"}),
            409,
            "existing",
        ),
        json_case(
            Method::POST,
            "/api/v1/enroll",
            json!({"token": "wrong", "hostname": "x", "nats_public_key": agent_key()}),
            401,
            "token is invalid",
        ),
        json_case(
            Method::POST,
            "/api/v1/enroll",
            json!({"hostname": "x"}),
            400,
            "missing field `token`",
        ),
        json_case(
            Method::POST,
            "/api/v1/enrollment-tokens",
            json!({"uses": 0}),
            400,
            "uses must be between",
        ),
        json_case(
            Method::POST,
            "/api/v1/enrollment-tokens",
            json!({"expires_in_secs": -5}),
            400,
            "expires_in_secs",
        ),
        json_case(
            Method::POST,
            "/api/v1/enrollment-tokens",
            json!({"groups": ["web", "Web Tier!"]}),
            400,
            "invalid JSON at groups[1]",
        ),
        json_case(
            Method::POST,
            "/api/v1/enrollment-tokens",
            json!({"groups": (0..65).map(|n| format!("g{n}")).collect::<Vec<_>>()}),
            400,
            "groups: at most 64 groups per token",
        ),
        json_case(
            Method::PUT,
            "/api/v1/config/global",
            json!({"concurency": 2}),
            400,
            "unknown field `concurency`",
        ),
        json_case(
            Method::PUT,
            "/api/v1/config/agents/Not%20Valid",
            json!({}),
            400,
            "invalid agent id",
        ),
        raw_case(
            Method::GET,
            "/api/v1/inventory/packages?q=@1",
            None,
            b"",
            400,
            "name@version",
        ),
        raw_case(
            Method::GET,
            "/api/v1/no-such-route",
            None,
            b"",
            404,
            "no such route",
        ),
        raw_case(
            Method::DELETE,
            "/api/v1/jobs/ghost",
            None,
            b"",
            404,
            "not found",
        ),
        json_case(
            Method::POST,
            "/api/v1/jobs/ghost/revoke",
            json!({}),
            404,
            "not found",
        ),
        raw_case(
            Method::DELETE,
            "/api/v1/enrollment-tokens/ghost",
            None,
            b"",
            404,
            "not found",
        ),
    ];
    assert!(cases.len() >= 20);
    check(&fixture.router, &cases).await;
    assert_eq!(
        counts(&fixture.app).await,
        before,
        "a malformed request stored something"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_manifests_name_the_line_and_store_nothing() {
    let fixture = fixture().await;
    let before = counts(&fixture.app).await;
    let sha = "a".repeat(64);
    let both = format!(
        "kind: Job\nname: a\nscript: x\nscript_object: {{name: s, size: 1, sha256: {sha}}}\n"
    );
    let big = format!(
        "kind: Job\nname: a\nscript: |\n  {}\n",
        "x".repeat(300 << 10)
    );
    let cases = vec![
        yaml_case("kind: Job\nname: a\nscript: x\nshel: sh\n", 400, "line 4"),
        yaml_case("kind: Job\nname: a\nscript: x\nshel: sh\n", 400, "shel"),
        yaml_case(
            "kind: Job\nname: a\nscript: x\ntimeout_secs: soon\n",
            400,
            "line 4",
        ),
        yaml_case(
            "kind: Job\nname: a\nscript: x\ntimeout_secs: 0\n",
            400,
            "timeout_secs must be between",
        ),
        yaml_case("kind: Schedule\nname: a\nscript: x\n", 400, "line 1"),
        yaml_case("name: a\nscript: x\n", 400, "kind"),
        yaml_case("kind: Job\nscript: x\n", 400, "name"),
        yaml_case(
            "kind: Job\nname: Bad_Name\nscript: x\n",
            400,
            "invalid job id",
        ),
        yaml_case(
            "kind: Job\nname: a\nscript: '   '\n",
            400,
            "script must not be empty",
        ),
        yaml_case(&both, 400, "not both"),
        yaml_case("kind: Job\nname: a\n", 400, "missing script"),
        yaml_case(
            "kind: Job\nname: a\nscript: x\nenv:\n  1X: y\n",
            400,
            "invalid environment variable name",
        ),
        yaml_case("kind: Job\nname: a\nscript: x\nshell: zsh\n", 400, "line 4"),
        yaml_case(
            "kind: Job\nname: a\nscript: x\noutput_limit_bytes: 10\n",
            400,
            "output_limit_bytes must be between",
        ),
        yaml_case(
            "kind: Job\nname: a\nscript_object: {name: s, size: 1, sha256: XYZ}\n",
            400,
            "sha256 must be",
        ),
        yaml_case("kind: Job\nname: a\nscript: [unclosed\n", 400, "line"),
        yaml_case(
            "kind: Job\nname: a\nscript: x\n---\nkind: Job\nname: a\nscript: y\n",
            400,
            "defined twice",
        ),
        yaml_case("# only a comment\n", 400, "no document"),
        yaml_case(
            "kind: Job\nname: a\nscript: x\n---\nkind: Job\nname: b\nscript: x\ntimeout_secs: -1\n",
            400,
            "line 8",
        ),
        yaml_case(
            "kind: Job\nname: a\nenv:\n  A: [1]\nscript: x\n",
            400,
            "line 4",
        ),
        yaml_case(
            "kind: Job\nname: a\nscript: x\ncwd: {a: 1}\n",
            400,
            "line 4",
        ),
        yaml_case("- kind: Job\n", 400, "line 1"),
        yaml_case(&big, 413, "larger than"),
        raw_case(
            Method::POST,
            "/api/v1/jobs",
            Some("application/yaml"),
            b"kind: Job\nname: \xff\n",
            400,
            "not UTF-8",
        ),
        raw_case(
            Method::POST,
            "/api/v1/jobs",
            Some("text/plain"),
            b"kind: Job\n",
            415,
            "application/yaml",
        ),
        raw_case(
            Method::POST,
            "/api/v1/jobs",
            None,
            b"kind: Job\n",
            415,
            "application/yaml",
        ),
        json_case(
            Method::POST,
            "/api/v1/jobs",
            json!({"kind": "Job", "name": "a", "script": "x", "sheel": 1}),
            400,
            "unknown field `sheel`",
        ),
        json_case(
            Method::POST,
            "/api/v1/jobs",
            json!({"kind": "Job", "name": "a"}),
            400,
            "missing script",
        ),
        json_case(
            Method::POST,
            "/api/v1/jobs",
            json!({"kind": "Job", "name": "a", "script": "x", "env": {"A": 1}}),
            400,
            "env.A",
        ),
    ];
    assert!(cases.len() >= 20);
    check(&fixture.router, &cases).await;
    assert_eq!(
        counts(&fixture.app).await,
        before,
        "a malformed manifest stored something"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_in_the_openapi_document_and_jobs_round_trip() {
    let fixture = fixture().await;
    let (status, document) = send(
        &fixture.router,
        &raw_case(Method::GET, "/api/openapi.json", None, b"", 0, ""),
    )
    .await;
    assert_eq!(status, 200);
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/api/v1/enroll",
        "/api/v1/agents",
        "/api/v1/agents/{agent_id}",
        "/api/v1/runs",
        "/api/v1/runs/{run_id}",
        "/api/v1/runs/{run_id}/kill",
        "/api/v1/runs/{run_id}/progress",
        "/api/v1/jobs",
        "/api/v1/jobs/{job_id}/revoke",
        "/api/v1/inventory/packages",
        "/api/v1/config/global",
        "/api/v1/enrollment-tokens",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} is missing from the OpenAPI document"
        );
    }
    // The document and the access table describe the same routes, method by method.
    let documented: std::collections::BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    let ruled: std::collections::BTreeSet<(String, String)> = tutti_server::auth::policy::RULES
        .iter()
        .filter(|(_, path, _)| *path != "/api/openapi.json")
        .map(|(method, path, _)| (method.to_string(), path.to_string()))
        .collect();
    assert_eq!(
        documented, ruled,
        "the OpenAPI document and auth/policy.rs disagree"
    );

    // A manifest with comments keeps them; re-applying it changes nothing.
    let manifest = "# rotates logs\nkind: Job\nname: rotate-logs\nshell: bash\nscript: |\n  logrotate -f /etc/logrotate.conf\n";
    let apply = yaml_case(manifest, 200, "");
    let dry_run = |text: &str| {
        raw_case(
            Method::POST,
            "/api/v1/jobs?dry_run=true",
            Some("application/yaml"),
            text.as_bytes(),
            200,
            "",
        )
    };
    let (status, body) = send(&fixture.router, &dry_run(manifest)).await;
    assert_eq!(
        (status, &body["applied"][0]["result"]),
        (200, &json!("created")),
        "{body}"
    );
    let (status, _) = send(
        &fixture.router,
        &raw_case(Method::GET, "/api/v1/jobs/rotate-logs", None, b"", 0, ""),
    )
    .await;
    assert_eq!(status, 404, "a dry run stores nothing");
    let (status, body) = send(&fixture.router, &apply).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["applied"][0]["result"], "created");
    let (_, body) = send(&fixture.router, &dry_run(manifest)).await;
    assert_eq!(body["applied"][0]["result"], "unchanged");
    let edited = manifest.replace("-f /etc", "-v -f /etc");
    let (_, body) = send(&fixture.router, &dry_run(&edited)).await;
    assert_eq!(
        (
            &body["applied"][0]["result"],
            &body["applied"][0]["version"]
        ),
        (&json!("changed"), &json!(2))
    );
    let (_, body) = send(&fixture.router, &apply).await;
    assert_eq!(body["applied"][0]["result"], "unchanged");
    let (_, job) = send(
        &fixture.router,
        &raw_case(Method::GET, "/api/v1/jobs/rotate-logs", None, b"", 0, ""),
    )
    .await;
    assert_eq!(job["source_yaml"], manifest);
    assert_eq!(job["definition"]["shell"], "bash");

    let (status, text) = send_text(&fixture.router, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        text.contains("tutti_projector_applied_total{stream=\"TUTTI_RESULTS\"}"),
        "{text}"
    );
    assert!(
        text.contains("tutti_agents{liveness=\"never\"} 1"),
        "{text}"
    );
}

async fn send_text(router: &Router, path: &str) -> (u16, String) {
    let request = Request::builder().uri(path).body(Body::empty()).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// The public half of a broker key an agent generates at enrollment (the test broker runs
/// with per-agent identities).
fn agent_key() -> String {
    nkeys::KeyPair::new_user().public_key()
}
