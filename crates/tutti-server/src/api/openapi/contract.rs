//! What the handlers' attributes cannot say, added to the generated document from the
//! router's own tables, so it cannot drift from them:
//!
//! - an `operationId` per operation from its method and path (`get_agents_agent_id`),
//!   unique because the pair is;
//! - every `{parameter}` of a path template declared `in: path` (the attributes declare
//!   some, not all);
//! - the security schemes (API token, session cookie, CSRF header) and each operation's
//!   requirement from `auth::policy::RULES`: none for public routes, token or session
//!   (with the CSRF header when the method changes state) otherwise, and the least role in
//!   `x-tutti-role`;
//! - the error answers every handler can give, all with the shared `ErrorBody`: 401 and
//!   403 behind sign-in, 404 where the path names something, 400 where input is read, 413
//!   and 415 where a body is read, 429 on sign-in;
//! - the constraints the handlers check, where they are the same everywhere: the pattern
//!   of every id in a path (by parameter name), `limit` and `offset` bounds, and the
//!   configuration keys' ranges (`tutti_proto::config::RANGES`).

use serde_json::{Map, Value, json};
use tutti_proto::ids::{NAME_INPUT_PATTERN, ULID_PATTERN};
use utoipa::OpenApi;

use super::ApiDoc;
use crate::auth::policy::{self, Access};
use crate::auth::{CSRF_HEADER, SESSION_COOKIE};

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// The finished document.
pub(super) fn build() -> Value {
    let mut document =
        serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serialises");
    document["components"]["securitySchemes"] = json!({
        "bearer": {
            "type": "http", "scheme": "bearer",
            "description": "An API token: `tutti tokens create`, or POST /api/v1/auth/token.",
        },
        "session": {
            "type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
            "description": "The dashboard's session cookie, from POST /api/v1/auth/login.",
        },
        "csrf": {
            "type": "apiKey", "in": "header", "name": CSRF_HEADER,
            "description": "With a session cookie, on every request that changes state: the token the login answer and every page carry.",
        },
    });
    // A rule that names a property the types no longer have is caught by the unit test
    // in `bodies`; here the document is served with what did apply.
    let _ = super::bodies::describe(&mut document);
    add_links(&mut document["paths"]);
    if let Some(paths) = document["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            for method in METHODS {
                if let Some(operation) = item.get_mut(method).and_then(Value::as_object_mut) {
                    finish_operation(path, method, operation);
                }
            }
        }
    }
    document
}

fn finish_operation(path: &str, method: &str, operation: &mut Map<String, Value>) {
    operation.insert("operationId".into(), operation_id(method, path).into());
    let template: Vec<&str> = path
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .collect();
    let parameters = operation
        .entry("parameters")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .expect("parameters is a list");
    for name in &template {
        let declared = parameters
            .iter()
            .any(|parameter| parameter["in"] == "path" && parameter["name"] == *name);
        if !declared {
            parameters.push(json!({
                "name": name, "in": "path", "required": true,
                "schema": {"type": "string"},
            }));
        }
    }
    for parameter in parameters.iter_mut() {
        constrain_parameter(parameter);
    }
    let has_parameters = !parameters.is_empty();
    if !has_parameters {
        operation.remove("parameters");
    }
    let reads_input = has_parameters || operation.contains_key("requestBody");
    let method_upper = method.to_ascii_uppercase();
    let access = method_upper
        .parse()
        .ok()
        .and_then(|method| policy::rule(&method, path));
    let changes_state = !matches!(method, "get");
    match access {
        Some(Access::Public) | None => {
            operation.insert("security".into(), json!([]));
        }
        Some(access) => {
            let session = if changes_state {
                json!({"session": [], "csrf": []})
            } else {
                json!({"session": []})
            };
            operation.insert("security".into(), json!([{"bearer": []}, session]));
            if let Access::Role(role) = access {
                operation.insert("x-tutti-role".into(), role.as_str().into());
            }
        }
    }
    let signed_in = !matches!(access, Some(Access::Public) | None);
    let mut errors = Vec::new();
    if reads_input {
        errors.push((
            "400",
            "The request is invalid; the message names the field.",
        ));
    }
    if signed_in {
        errors.push(("401", "No valid API token or session."));
        errors.push((
            "403",
            "The account's role does not allow this, or a session request lacks its CSRF token.",
        ));
    }
    if !template.is_empty() {
        errors.push(("404", "The addressed item does not exist."));
    }
    if operation.contains_key("requestBody") {
        errors.push(("413", "The body is larger than the server accepts."));
        errors.push(("415", "The body is not of a media type this route reads."));
    }
    if path.starts_with("/api/v1/auth/login") || path.starts_with("/api/v1/auth/token") {
        errors.push((
            "429",
            "Too many failed sign-ins; Retry-After says when to try again.",
        ));
    }
    let responses = operation
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("responses is a map");
    for (status, description) in errors {
        responses
            .entry(status)
            .or_insert_with(|| error_response(description));
    }
    // OpenAPI requires a description on every response; attributes that give only a
    // status and a body get the status's reason phrase.
    for (status, response) in responses.iter_mut() {
        if let Some(response) = response.as_object_mut()
            && !response.contains_key("description")
        {
            let phrase = status
                .parse::<u16>()
                .ok()
                .and_then(|code| axum::http::StatusCode::from_u16(code).ok())
                .and_then(|code| code.canonical_reason())
                .unwrap_or("Response");
            response.insert("description".into(), phrase.into());
        }
    }
}

/// The schema a path or query parameter's value must match, by its name.
fn constrain_parameter(parameter: &mut Value) {
    let name = parameter["name"].as_str().unwrap_or_default().to_string();
    let location = parameter["in"].as_str().unwrap_or_default().to_string();
    let schema = match (location.as_str(), name.as_str()) {
        ("path", "agent_id" | "group" | "job_id" | "name") => {
            json!({"type": "string", "pattern": NAME_INPUT_PATTERN})
        }
        ("path", "run_id") => json!({"type": "string", "pattern": ULID_PATTERN}),
        ("path", "username") => {
            json!({"type": "string", "pattern": "^[a-z0-9._-]{1,64}$"})
        }
        ("query", "dir") => json!({"type": "string", "enum": ["asc", "desc"]}),
        ("query", "liveness") => {
            json!({"type": "string", "enum": ["online", "offline", "never"]})
        }
        // Only the agent list sorts (`api::agents::parse_sort`).
        ("query", "sort") => json!({
            "type": "string", "enum": ["id", "hostname", "last_heartbeat", "enrolled_at"],
        }),
        ("query", "from" | "until" | "after") => {
            json!({"type": "string", "format": "date-time"})
        }
        // `GET /runs` filters by run status, `GET /runs/{run_id}` its targets by state.
        ("query", "status") => json!({
            "type": "string", "enum": ["queued", "running", "done", "killed"],
        }),
        ("query", "state") => {
            let states: Vec<&str> = tutti_store::TargetState::ALL
                .iter()
                .map(|state| state.as_str())
                .collect();
            json!({"type": "string", "enum": states})
        }
        ("query", "group" | "job_id" | "agent_id") => {
            json!({"type": "string", "pattern": NAME_INPUT_PATTERN})
        }
        ("query", "token") => json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{16,128}$"}),
        ("query", "n") => json!({
            "type": "integer", "minimum": 1, "maximum": crate::api::schedules::MAX_PREVIEW,
        }),
        ("query", "q") => json!({"type": "string", "minLength": 1}),
        ("query", "limit") => json!({
            "type": "integer", "format": "int32",
            "minimum": 1, "maximum": tutti_store::MAX_PAGE_LIMIT,
        }),
        ("query", name) if name == "offset" || name.ends_with("_offset") => json!({
            "type": "integer", "format": "int64",
            "minimum": 0, "maximum": crate::api::json::MAX_OFFSET,
        }),
        _ => return,
    };
    parameter["schema"] = schema;
}

/// Links from what creates a thing to what reads, changes or removes it, so a client
/// (and the fuzzer's stateful phase) can follow an id from one answer to the next call.
fn add_links(paths: &mut Value) {
    let from_body = |pointer: &str| format!("$response.body#{pointer}");
    let links = [
        (
            "/api/v1/enrollment-tokens",
            "post",
            "201",
            vec![(
                "delete_enrollment_tokens_token_id",
                "token_id",
                from_body("/token_id"),
            )],
        ),
        (
            "/api/v1/tokens",
            "post",
            "201",
            vec![("delete_tokens_token_id", "token_id", from_body("/token_id"))],
        ),
        (
            "/api/v1/accounts",
            "post",
            "201",
            vec![
                (
                    "patch_accounts_username",
                    "username",
                    from_body("/account/username"),
                ),
                (
                    "post_accounts_username_password_reset",
                    "username",
                    from_body("/account/username"),
                ),
            ],
        ),
        (
            "/api/v1/runs",
            "post",
            "201",
            vec![
                ("get_runs_run_id", "run_id", from_body("/run_id")),
                ("get_runs_run_id_results", "run_id", from_body("/run_id")),
                ("post_runs_run_id_kill", "run_id", from_body("/run_id")),
            ],
        ),
        (
            "/api/v1/groups",
            "post",
            "201",
            vec![
                (
                    "delete_groups_group",
                    "group",
                    "$request.body#/name".to_string(),
                ),
                (
                    "get_config_groups_group",
                    "group",
                    "$request.body#/name".to_string(),
                ),
            ],
        ),
    ];
    for (path, method, status, targets) in links {
        let Some(response) = paths[path][method]["responses"]
            .get_mut(status)
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let mut map = Map::new();
        for (operation_id, parameter, expression) in targets {
            map.insert(
                operation_id.to_string(),
                json!({"operationId": operation_id, "parameters": {parameter: expression}}),
            );
        }
        response.insert("links".into(), Value::Object(map));
    }
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    })
}

/// `get` + `/api/v1/agents/{agent_id}` → `get_agents_agent_id`.
fn operation_id(method: &str, path: &str) -> String {
    let rest = path
        .strip_prefix("/api/v1/")
        .unwrap_or(path.trim_start_matches('/'));
    let words: String = rest
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let words: Vec<&str> = words.split('_').filter(|word| !word.is_empty()).collect();
    format!("{method}_{}", words.join("_"))
}
