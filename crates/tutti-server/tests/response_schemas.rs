//! Every answer matches the OpenAPI document: a real agent runs real scripts (a success, a
//! failure, a rollout), the server gets a job, a schedule, groups, configuration layers,
//! tokens and an account, and then every `GET` route of the document is called with those
//! ids. Each JSON answer, and the answers of the writes, are validated against the schema
//! the document declares for their status by an independent JSON Schema validator
//! (`openapi-schema-validator`, with `date-time` and the other formats checked).
//!
//! The fuzzer in CI checks the same on a server with no agent, where results, targets and
//! inventory are always empty lists; this test is where their item schemas meet real rows.

mod common;

use std::collections::BTreeMap;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use tutti_testkit::{TestAgent, TestNats, TestServer};

/// Validates each case's body against the document; prints one line per failure.
const VALIDATE: &str = r#"
import json, sys
from jsonschema import FormatChecker
from openapi_schema_validator import OAS31Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

data = json.load(open(sys.argv[1]))
doc = data["document"]
registry = Registry().with_resource("urn:doc", Resource.from_contents(doc, default_specification=DRAFT202012))

def pointer(*parts):
    return "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)

failures = 0
for case in data["cases"]:
    what = f'{case["method"].upper()} {case["path"]} -> {case["status"]}'
    operation = doc["paths"][case["template"]][case["method"]]
    response = operation["responses"].get(str(case["status"]))
    if response is None or "application/json" not in response.get("content", {}):
        print(f"{what}: the document declares no JSON answer for this status")
        failures += 1
        continue
    ref = "urn:doc#/" + pointer("paths", case["template"], case["method"], "responses", str(case["status"]), "content", "application/json", "schema")
    validator = OAS31Validator({"$ref": ref}, registry=registry, format_checker=FormatChecker())
    for error in validator.iter_errors(case["body"]):
        where = "/".join(str(p) for p in error.absolute_path)
        print(f"{what}: at /{where}: {error.message[:400]}")
        failures += 1
print(f"{len(data['cases'])} answers checked, {failures} failures")
sys.exit(1 if failures else 0)
"#;

/// One answer to check.
struct Answer {
    method: Method,
    template: String,
    path: String,
    status: u16,
    body: Value,
}

/// Sends a request with the admin token; returns status, content type and body.
async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    body: Option<(&str, String)>,
) -> (u16, String, Value) {
    let mut request = server
        .http()
        .request(method, format!("{}{path}", server.url()));
    if let Some((content_type, text)) = body {
        request = request.header("content-type", content_type).body(text);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = if content_type.starts_with("application/json") {
        response.json().await.expect("a JSON body")
    } else {
        Value::Null
    };
    (status, content_type, body)
}

/// Calls a write, asserts it succeeded, and keeps its answer for validation.
async fn write(
    server: &TestServer,
    answers: &mut Vec<Answer>,
    method: Method,
    template: &str,
    path: &str,
    body: Option<(&str, String)>,
) -> Value {
    let (status, _, answer) = call(server, method.clone(), path, body).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {answer}"
    );
    if !answer.is_null() {
        answers.push(Answer {
            method,
            template: template.to_string(),
            path: path.to_string(),
            status,
            body: answer.clone(),
        });
    }
    answer
}

fn json_body(value: Value) -> Option<(&'static str, String)> {
    Some(("application/json", value.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_matches_the_schema_the_document_declares() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let _agent = TestAgent::spawn(&server, "web-01").await;
    wait_online(&server, &["web-01"]).await;
    server
        .wait_for_ok("/api/v1/agents/web-01/inventory", "the agent's inventory")
        .await;
    publish_inventory(&nats, "web-01", &[("curl", "8.5.0"), ("tar", "1.35")]).await;
    let mut answers = Vec::new();
    let a = &mut answers;

    write(
        &server,
        a,
        Method::PUT,
        "/api/v1/agents/{agent_id}/groups",
        "/api/v1/agents/web-01/groups",
        json_body(json!({"groups": ["web"]})),
    )
    .await;
    write(
        &server,
        a,
        Method::PUT,
        "/api/v1/config/global",
        "/api/v1/config/global",
        json_body(json!({"heartbeat_interval_secs": 20})),
    )
    .await;
    write(
        &server,
        a,
        Method::PUT,
        "/api/v1/config/groups/{group}",
        "/api/v1/config/groups/web",
        json_body(json!({"concurrency": 2})),
    )
    .await;
    write(
        &server,
        a,
        Method::PUT,
        "/api/v1/config/agents/{agent_id}",
        "/api/v1/config/agents/web-01",
        json_body(json!({"log_level": "debug"})),
    )
    .await;
    let job = "kind: Job\nname: uptime\nscript: echo up\n".to_string();
    write(
        &server,
        a,
        Method::POST,
        "/api/v1/jobs",
        "/api/v1/jobs",
        Some(("application/yaml", job)),
    )
    .await;
    let schedule =
        "kind: Schedule\nname: nightly\njob: uptime\ntargets: {all: true}\ncron: \"0 3 * * *\"\n"
            .to_string();
    write(
        &server,
        a,
        Method::POST,
        "/api/v1/schedules",
        "/api/v1/schedules",
        Some(("application/yaml", schedule)),
    )
    .await;
    let desired = "kind: Schedule\nname: patch-web\njob: uptime\ntargets: {groups: [web]}\ndesired_state: {once_per_version: true}\n".to_string();
    write(
        &server,
        a,
        Method::POST,
        "/api/v1/schedules",
        "/api/v1/schedules",
        Some(("application/yaml", desired)),
    )
    .await;
    write(
        &server,
        a,
        Method::PATCH,
        "/api/v1/schedules/{name}",
        "/api/v1/schedules/nightly",
        json_body(json!({"enabled": false})),
    )
    .await;
    write(
        &server,
        a,
        Method::POST,
        "/api/v1/enrollment-tokens",
        "/api/v1/enrollment-tokens",
        json_body(json!({"name": "web machines", "groups": ["web"]})),
    )
    .await;
    write(
        &server,
        a,
        Method::POST,
        "/api/v1/tokens",
        "/api/v1/tokens",
        json_body(json!({"name": "ci", "role": "viewer"})),
    )
    .await;
    let account =
        json!({"username": "ops", "role": "operator", "password": "correct horse battery staple"});
    write(
        &server,
        a,
        Method::POST,
        "/api/v1/accounts",
        "/api/v1/accounts",
        json_body(account),
    )
    .await;
    write(
        &server,
        a,
        Method::PATCH,
        "/api/v1/accounts/{username}",
        "/api/v1/accounts/ops",
        json_body(json!({"role": "viewer"})),
    )
    .await;

    let mut runs = Vec::new();
    for request in [
        json!({"script": {"script": "echo hello"}, "targets": {"all": true}}),
        json!({"script": {"script": "echo bad >&2; exit 3"}, "targets": {"agents": ["web-01"]}}),
        json!({"job_id": "uptime", "targets": {"groups": ["web"]}, "rollout": {"waves": ["100%"]}}),
    ] {
        let created = write(
            &server,
            a,
            Method::POST,
            "/api/v1/runs",
            "/api/v1/runs",
            json_body(request),
        )
        .await;
        let run_id = created["run_id"].as_str().expect("a run id").to_string();
        wait_run_done(&server, &run_id).await;
        runs.push(run_id);
    }
    // A run killed while its script sleeps: a `killed` result.
    let created = write(
        &server,
        a,
        Method::POST,
        "/api/v1/runs",
        "/api/v1/runs",
        json_body(json!({"script": {"script": "sleep 30"}, "targets": {"all": true}})),
    )
    .await;
    let killed = created["run_id"].as_str().unwrap().to_string();
    server
        .wait_for(
            &format!("/api/v1/runs/{killed}"),
            "the sleep to start",
            |view| state_of(view, "web-01") == "running",
        )
        .await;
    write(
        &server,
        a,
        Method::POST,
        "/api/v1/runs/{run_id}/kill",
        &format!("/api/v1/runs/{killed}/kill"),
        None,
    )
    .await;
    wait_run_done(&server, &killed).await;
    runs.push(killed);

    // Every GET route, with the ids made above; some need a query.
    let document: Value = server.get("/api/openapi.json").await;
    let queries = BTreeMap::from([("/api/v1/inventory/packages", "?q=curl")]);
    let mut get_routes = 0;
    for (template, item) in document["paths"].as_object().unwrap() {
        let Some(operation) = item.get("get") else {
            continue;
        };
        let declares_json = operation["responses"]["200"]["content"]
            .get("application/json")
            .is_some();
        if !declares_json || template == "/api/openapi.json" {
            continue;
        }
        get_routes += 1;
        let run_ids = if template.contains("{run_id}") {
            runs.clone()
        } else {
            vec![String::new()]
        };
        // Coverage is only for desired-state schedules.
        let schedule = if template.ends_with("/coverage") {
            "patch-web"
        } else {
            "nightly"
        };
        for run_id in run_ids {
            let path = template
                .replace("{agent_id}", "web-01")
                .replace("{run_id}", &run_id)
                .replace("{job_id}", "uptime")
                .replace("{name}", schedule)
                .replace("{group}", "web")
                .replace("{username}", "ops");
            let path = format!(
                "{path}{}",
                queries.get(template.as_str()).copied().unwrap_or("")
            );
            let (status, content_type, body) = call(&server, Method::GET, &path, None).await;
            assert_eq!(status, 200, "GET {path}: {body}");
            assert!(
                content_type.starts_with("application/json"),
                "GET {path}: {content_type}"
            );
            a.push(Answer {
                method: Method::GET,
                template: template.clone(),
                path,
                status,
                body,
            });
        }
    }
    assert!(
        get_routes >= 29,
        "only {get_routes} GET routes with a JSON answer"
    );

    // The rows behind the item schemas exist, so the check below meets them.
    let pick = |path: &str| &a.iter().find(|answer| answer.path == path).unwrap().body;
    assert_eq!(
        pick(&format!("/api/v1/runs/{}/results", runs[1]))["items"][0]["result"]["exit_code"],
        3
    );
    assert_eq!(
        pick(&format!("/api/v1/runs/{}/results", runs[3]))["items"][0]["result"]["status"]["state"],
        "killed"
    );
    assert!(pick(&format!("/api/v1/runs/{}", runs[2]))["rollout"].is_object());
    assert!(
        pick("/api/v1/agents/web-01/inventory/changes")["total"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(
        pick("/api/v1/inventory/packages?q=curl")["total"]
            .as_u64()
            .unwrap()
            > 0
    );

    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<Value> = answers
        .iter()
        .map(|answer| {
            json!({
                "method": answer.method.as_str().to_ascii_lowercase(),
                "template": answer.template,
                "path": answer.path,
                "status": answer.status,
                "body": answer.body,
            })
        })
        .collect();
    let file = dir.path().join("cases.json");
    std::fs::write(
        &file,
        json!({"document": document, "cases": cases}).to_string(),
    )
    .unwrap();
    let script = dir.path().join("validate.py");
    std::fs::write(&script, VALIDATE).unwrap();
    let output = tutti_testkit::pytool::OPENAPI_SPEC_VALIDATOR
        .python_command()
        .arg(&script)
        .arg(&file)
        .output()
        .expect("run the validator");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "answers that do not match the document:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("{} answers checked, 0 failures", answers.len())),
        "{stdout}"
    );
}
