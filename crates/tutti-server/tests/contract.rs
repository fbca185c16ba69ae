//! The API's contract at its edges, against a real server: configuration outside its
//! documented ranges is refused (and nothing is stored), every body must be a JSON object,
//! paging parameters are bounded and an empty value means "absent", and a method a route
//! does not have is 405 with `Allow`, not a 403 and an error in the log.

use reqwest::Method;
use serde_json::{Value, json};
use tutti_testkit::{TestAgent, TestNats, TestServer};

/// Sends `body` (raw text, JSON content type when given) and returns status, `Allow` and
/// the JSON answer.
async fn send(
    server: &TestServer,
    method: Method,
    path: &str,
    body: Option<&str>,
) -> (u16, Option<String>, Value) {
    let mut request = server
        .http()
        .request(method, format!("{}{path}", server.url()));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    let allow = response
        .headers()
        .get("allow")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    (status, allow, response.json().await.unwrap_or_default())
}

fn message(answer: &Value) -> &str {
    answer["message"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_out_of_range_is_refused_and_nothing_is_stored() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let _agent = TestAgent::enroll(&server, "web-01").await;
    let cases = [
        (
            r#"{"heartbeat_interval_secs": 9223372036854775807}"#,
            "heartbeat_interval_secs: 9223372036854775807 is outside 1..=3600 (seconds)",
        ),
        (
            r#"{"heartbeat_interval_secs": 9223372036854775808}"#,
            "outside 1..=3600",
        ),
        (r#"{"heartbeat_interval_secs": 0}"#, "outside 1..=3600"),
        (r#"{"inventory_interval_secs": 59}"#, "outside 60..=604800"),
        (r#"{"concurrency": 2147483648}"#, "outside 1..=256 (runs)"),
        (r#"{"concurrency": 4294967296}"#, "concurrency"),
        (r#"{"output_limit_bytes": 12}"#, "outside 1024..=67108864"),
        (
            r#"{"inline_output_limit_bytes": 1048576}"#,
            "outside 0..=393216",
        ),
        (r#"{"log_level": "debug\u0007"}"#, "log_level"),
        (
            r#"{"log_level": ""}"#,
            "log_level: must be 1 to 256 characters",
        ),
        (
            r#"{"heartbeat_interval_secs": -1}"#,
            "heartbeat_interval_secs",
        ),
    ];
    for path in [
        "/api/v1/config/global",
        "/api/v1/config/groups/web",
        "/api/v1/config/agents/web-01",
    ] {
        for (body, expected) in cases {
            let (status, _, answer) = send(&server, Method::PUT, path, Some(body)).await;
            assert_eq!(status, 400, "{path} {body}: {answer}");
            assert!(
                message(&answer).contains(expected),
                "{path} {body}: {answer}"
            );
        }
        let stored: Value = server.get(path).await;
        assert_eq!(stored, json!({}), "{path} stored something");
    }
    // The range's edges are accepted.
    let edges = json!({
        "heartbeat_interval_secs": 3600, "inventory_interval_secs": 60, "concurrency": 256,
        "output_limit_bytes": 1024, "inline_output_limit_bytes": 0,
        "log_level": "tutti_agent=debug,async_nats=warn",
    });
    let stored: Value = server.put("/api/v1/config/global", &edges).await;
    assert_eq!(stored, edges);

    // A layer for an agent that does not exist waits for nobody.
    let (status, _, answer) = send(
        &server,
        Method::PUT,
        "/api/v1/config/agents/ghost-01",
        Some(r#"{"concurrency": 2}"#),
    )
    .await;
    assert_eq!(status, 404, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_objects_pages_are_bounded_and_wrong_methods_are_405() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let tokens_before: Value = server.get("/api/v1/enrollment-tokens").await;

    for (method, path, body) in [
        (Method::POST, "/api/v1/enrollment-tokens", "[]"),
        (
            Method::PUT,
            "/api/v1/config/groups/x",
            "[null,null,null,null,null,null]",
        ),
        (Method::PUT, "/api/v1/config/global", " \n [1]"),
        (Method::POST, "/api/v1/groups", "\"web\""),
        (Method::PUT, "/api/v1/config/global", "null"),
    ] {
        let (status, _, answer) = send(&server, method, path, Some(body)).await;
        assert_eq!(status, 400, "{path} {body}: {answer}");
        assert!(
            message(&answer).contains("must be a JSON object"),
            "{path} {body}: {answer}"
        );
    }
    let tokens_after: Value = server.get("/api/v1/enrollment-tokens").await;
    assert_eq!(tokens_after["total"], tokens_before["total"]);
    let group_x: Value = server.get("/api/v1/config/groups/x").await;
    assert_eq!(group_x, json!({}));

    for (query, expected) in [
        (
            "offset=9223372036854775808",
            "offset must be a whole number from 0 to",
        ),
        ("offset=-1", "offset must be"),
        (
            "limit=2147483648",
            "limit must be a whole number from 1 to 500",
        ),
        ("limit=0", "limit must be"),
        ("limit=ten", "limit must be"),
        // An empty value is a value: not a number.
        (
            "limit=",
            "limit must be a whole number from 1 to 500, got \"\"",
        ),
        ("offset=", "offset must be"),
    ] {
        let (status, _, answer) = send(
            &server,
            Method::GET,
            &format!("/api/v1/agents?{query}"),
            None,
        )
        .await;
        assert_eq!(status, 400, "{query}: {answer}");
        assert!(message(&answer).contains(expected), "{query}: {answer}");
    }
    // Empty text is a value too: an empty search matches everything, an empty time is
    // not a time.
    let (status, _, answer) = send(&server, Method::GET, "/api/v1/agents?search=", None).await;
    assert_eq!(status, 200, "{answer}");
    let (status, _, answer) = send(&server, Method::GET, "/api/v1/audit?from=", None).await;
    assert_eq!(status, 400, "{answer}");

    for (method, path, allow) in [
        (Method::TRACE, "/healthz", "GET, HEAD"),
        (Method::DELETE, "/api/v1/agents", "GET, HEAD"),
        (
            Method::PATCH,
            "/api/v1/fleet/freeze",
            "GET, PUT, DELETE, HEAD",
        ),
        (Method::GET, "/api/v1/keys/rotate", "POST"),
    ] {
        let (status, allowed, answer) = send(&server, method.clone(), path, None).await;
        assert_eq!(status, 405, "{method} {path}: {answer}");
        assert_eq!(allowed.as_deref(), Some(allow), "{method} {path}");
        assert_eq!(answer["error"], "method_not_allowed", "{answer}");
    }
    let (status, _, _) = send(&server, Method::HEAD, "/healthz", None).await;
    assert_eq!(status, 200);
}

/// What OpenAPI tools need from the served document, checked on the document itself: every
/// operation has a unique id, declares each parameter where it really is (path parameters
/// exactly the template's, the rest in the query), says how to authenticate (or that it
/// needs nothing), and documents the error answers with the shared error body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_declares_ids_parameters_security_and_errors() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let document: Value = server.get("/api/openapi.json").await;
    assert_eq!(document["openapi"], "3.1.0");
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer", "{schemes}");
    assert_eq!(schemes["session"]["in"], "cookie", "{schemes}");
    assert_eq!(schemes["csrf"]["name"], "x-csrf-token", "{schemes}");

    let mut ids = std::collections::BTreeSet::new();
    let mut n_operations = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        let template: Vec<&str> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for (method, operation) in item.as_object().unwrap() {
            n_operations += 1;
            let what = format!("{method} {path}");
            let id = operation["operationId"].as_str().unwrap_or_default();
            assert!(
                ids.insert(id.to_string()),
                "{what}: operationId {id:?} twice"
            );
            let parameters = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let in_path: Vec<&str> = parameters
                .iter()
                .filter(|parameter| parameter["in"] == "path")
                .filter_map(|parameter| parameter["name"].as_str())
                .collect();
            let mut expected = template.clone();
            expected.sort_unstable();
            let mut declared = in_path.clone();
            declared.sort_unstable();
            assert_eq!(declared, expected, "{what}: path parameters");
            let security = operation["security"].as_array().unwrap_or_else(|| {
                panic!("{what}: no security requirement");
            });
            let responses = operation["responses"].as_object().unwrap();
            if !security.is_empty() {
                for status in ["401", "403"] {
                    assert_eq!(
                        responses[status]["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{what}: {status}"
                    );
                }
            }
            if !template.is_empty() {
                assert!(responses.contains_key("404"), "{what}: no 404");
            }
            if operation.get("requestBody").is_some() {
                for status in ["400", "413", "415"] {
                    assert!(responses.contains_key(status), "{what}: no {status}");
                }
            }
        }
    }
    assert!(n_operations >= 70, "only {n_operations} operations");
    // Links name operations that exist, with parameters those operations have.
    let mut n_links = 0;
    for item in document["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            let responses = operation["responses"].as_object().unwrap();
            for link in responses
                .values()
                .filter_map(|response| response["links"].as_object())
                .flat_map(|links| links.values())
            {
                n_links += 1;
                let target = link["operationId"].as_str().unwrap();
                assert!(
                    ids.contains(target),
                    "a link to {target:?}, which does not exist"
                );
            }
        }
    }
    assert!(n_links >= 8, "only {n_links} links");

    // Query parameters are declared in the query, with their own required flag.
    let agents = &document["paths"]["/api/v1/agents"]["get"]["parameters"];
    let limit = agents
        .as_array()
        .unwrap()
        .iter()
        .find(|parameter| parameter["name"] == "limit")
        .unwrap_or_else(|| panic!("no limit in {agents}"));
    assert_eq!(limit["in"], "query", "{limit}");
    assert_ne!(limit["required"], true, "{limit}");
    // Public routes need nothing; admin routes say so.
    assert_eq!(document["paths"]["/healthz"]["get"]["security"], json!([]));
    let rotate = &document["paths"]["/api/v1/keys/rotate"]["post"];
    assert_eq!(rotate["x-tutti-role"], "admin", "{rotate}");
    assert_eq!(
        rotate["security"],
        json!([{"bearer": []}, {"session": [], "csrf": []}])
    );

    // Every JSON answer and every body is described: a named schema or properties, never a
    // bare `object`. Manifests are described field by field in both media types.
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let request = operation["requestBody"]["content"].as_object();
            let answers = operation["responses"]
                .as_object()
                .unwrap()
                .values()
                .filter_map(|response| response["content"].as_object());
            for content in request.into_iter().chain(answers) {
                for (media, body) in content {
                    let schema = &body["schema"];
                    let bare = schema["type"] == "object"
                        && schema.get("properties").is_none()
                        && schema.get("additionalProperties").is_none();
                    assert!(!bare, "{method} {path} {media}: a bare object schema");
                }
            }
        }
    }
    let jobs = &document["paths"]["/api/v1/jobs"]["post"]["requestBody"]["content"];
    for media in ["application/yaml", "application/json"] {
        assert_eq!(
            jobs[media]["schema"]["$ref"], "#/components/schemas/JobManifest",
            "{jobs}"
        );
    }
    let manifest = &document["components"]["schemas"]["ScheduleManifest"];
    for field in [
        "cron",
        "desired_state",
        "targets",
        "maintenance_window",
        "skip_dates",
    ] {
        assert!(
            manifest["properties"].get(field).is_some(),
            "{field}: {manifest}"
        );
    }

    // An independent validator checks the whole document against the OpenAPI 3.1 schema.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&document).unwrap()).unwrap();
    let output = tutti_testkit::pytool::OPENAPI_SPEC_VALIDATOR
        .module_command("openapi_spec_validator")
        .arg(&file)
        .output()
        .expect("run openapi-spec-validator");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains(": OK"),
        "openapi-spec-validator refused the document:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every answer names its request: the client's `x-request-id` when it is plain, a new id
/// otherwise (the server's log lines of that request carry the same id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_a_request_id() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let url = format!("{}/api/v1/agents", server.url());
    let request_id = |response: &reqwest::Response| {
        response
            .headers()
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
    };
    let first = server.http().get(&url).send().await.unwrap();
    let second = server.http().get(&url).send().await.unwrap();
    let (first, second) = (request_id(&first).unwrap(), request_id(&second).unwrap());
    assert_eq!(first.len(), 26, "{first}");
    assert_ne!(first, second);
    // An error answer has one too, and a proxy's id is kept.
    let sent = server
        .http()
        .get(format!("{}/api/v1/agents/nobody", server.url()))
        .header("x-request-id", "proxy-42.a")
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 404);
    assert_eq!(request_id(&sent).as_deref(), Some("proxy-42.a"));
    // An id that could forge a log line is replaced.
    let forged = server
        .http()
        .get(&url)
        .header("x-request-id", "a b\tc")
        .send()
        .await
        .unwrap();
    let replaced = request_id(&forged).unwrap();
    assert_eq!(replaced.len(), 26, "{replaced}");
}
