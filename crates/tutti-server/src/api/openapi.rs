//! `GET /api/openapi.json`: the OpenAPI document, generated from the handlers'
//! `#[utoipa::path]` attributes and the request types' `ToSchema` derives.
//!
//! Request and response bodies are described field by field: responses are `tutti-api`
//! types (the store returns them) or views here that derive `ToSchema`, so the schema is
//! derived from what is serialised. The test `every_route_is_in_the_openapi_document` keeps
//! the path list complete; `tests/response_schemas.rs` validates real answers against it.

use std::sync::OnceLock;

use axum::Json;
use serde_json::Value;
use utoipa::OpenApi;

use crate::api::{
    accounts, agents, api_tokens, audit_log, auth, coverage, enroll, error, fleet_config, freeze,
    groups, health, install, inventory, jobs, keys, live, rollouts, runs, schedules, tokens,
};

/// The API description.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "tutti server API",
        description = "Fleet management over NATS JetStream. Sign in with POST /api/v1/auth/login (a session cookie plus an x-csrf-token header on state-changing requests) or send `Authorization: Bearer <API token>`."
    ),
    paths(
        enroll::enroll,
        auth::login,
        auth::token,
        auth::me,
        auth::logout,
        auth::logout_all,
        auth::password,
        auth::mfa_setup,
        auth::mfa_confirm,
        auth::mfa_disable,
        api_tokens::list,
        api_tokens::create,
        api_tokens::revoke,
        accounts::list,
        accounts::create,
        accounts::update,
        accounts::reset_password,
        agents::list,
        agents::detail,
        agents::set_groups,
        agents::delete,
        inventory::agent_inventory,
        inventory::agent_changes,
        inventory::search,
        fleet_config::effective,
        fleet_config::get_global,
        fleet_config::put_global,
        fleet_config::delete_global,
        fleet_config::get_group,
        fleet_config::put_group,
        fleet_config::delete_group,
        fleet_config::get_agent,
        fleet_config::put_agent,
        fleet_config::delete_agent,
        freeze::status,
        freeze::freeze,
        freeze::unfreeze,
        keys::status,
        keys::rotate,
        groups::list,
        groups::create,
        groups::delete,
        jobs::apply,
        jobs::list,
        jobs::detail,
        jobs::versions,
        jobs::delete,
        jobs::revoke,
        schedules::apply,
        schedules::list,
        schedules::detail,
        schedules::preview,
        coverage::coverage,
        schedules::set_enabled,
        schedules::delete,
        runs::create,
        runs::list,
        runs::detail,
        runs::results,
        runs::result_detail,
        runs::kill,
        rollouts::abort,
        rollouts::pause,
        rollouts::resume,
        live::progress,
        live::output,
        tokens::create,
        tokens::list,
        tokens::revoke,
        audit_log::query,
        audit_log::anomalies,
        health::healthz,
        install::script,
        install::download,
        health::readyz,
        health::metrics,
    ),
    components(schemas(
        error::ErrorBody,
        crate::engine::RunRequest,
        crate::engine::CreatedRun,
        crate::engine::KillOutcome,
        crate::engine::rollout::RolloutSpec,
        crate::engine::rollout::RolloutView,
        crate::engine::rollout::WaveView,
        crate::engine::targets::TargetSpec,
        crate::manifest::JobSpec,
        crate::manifest::ScriptObject,
        crate::manifest::ShellName,
        jobs::ApplyResponse,
        jobs::Applied,
        jobs::RevokeRequest,
        jobs::RevokeResponse,
        agents::SetGroups,
        groups::NewGroup,
        fleet_config::ConfigLayer,
        freeze::FreezeRequest,
        keys::RotateRequest,
        keys::KeysView,
        crate::keyring::KeysStatus,
        crate::keyring::NextKeyStatus,
        crate::keyring::RetiringKeyStatus,
        freeze::FreezeState,
        crate::tokens::TokenRequest,
        crate::tokens::CreatedToken,
        auth::Credentials,
        auth::Me,
        auth::PasswordChange,
        auth::MfaSetup,
        auth::MfaCode,
        auth::RecoveryCodes,
        auth::MfaDisable,
        api_tokens::TokenRequest,
        crate::auth::signin::IssuedToken,
        accounts::NewAccountRequest,
        accounts::AccountWithPassword,
        accounts::AccountPatch,
        schedules::ApplyResponse,
        schedules::AppliedSchedule,
        schedules::Preview,
        schedules::SchedulePatch,
        coverage::Coverage,
        coverage::CoverageTotals,
        coverage::AgentCoverageView,
        coverage::CoverageStatus,
    ))
)]
pub struct ApiDoc;

/// Serves the document.
pub async fn document() -> Json<Value> {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    Json(DOCUMENT.get_or_init(contract::build).clone())
}

/// What the handlers' attributes cannot say, added to the generated document from the
/// router's own tables, so it cannot drift from them:
///
/// - an `operationId` per operation from its method and path (`get_agents_agent_id`),
///   unique because the pair is;
/// - every `{parameter}` of a path template declared `in: path` (the attributes declare
///   some, not all);
/// - the security schemes (API token, session cookie, CSRF header) and each operation's
///   requirement from `auth::policy::RULES`: none for public routes, token or session
///   (with the CSRF header when the method changes state) otherwise, and the least role in
///   `x-tutti-role`;
/// - the error answers every handler can give, all with the shared `ErrorBody`: 401 and
///   403 behind sign-in, 404 where the path names something, 400 where input is read, 413
///   and 415 where a body is read, 429 on sign-in;
/// - the constraints the handlers check, where they are the same everywhere: the pattern
///   of every id in a path (by parameter name), `limit` and `offset` bounds, and the
///   configuration keys' ranges (`tutti_proto::config::RANGES`).
mod contract {
    use serde_json::{Map, Value, json};
    use tutti_proto::ids::{NAME_PATTERN, ULID_PATTERN};
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
        constrain_config_layer(&mut document["components"]["schemas"]["ConfigLayer"]);
        constrain_bodies(&mut document["components"]["schemas"]);
        // Manifests are YAML (and a job also JSON), not the text/plain the attribute's
        // `String` body implies.
        for (path, types) in [
            (
                "/api/v1/jobs",
                &["application/yaml", "application/json"][..],
            ),
            ("/api/v1/schedules", &["application/yaml"][..]),
        ] {
            let body = &mut document["paths"][path]["post"]["requestBody"];
            let content: Map<String, Value> = types
                .iter()
                .map(|media| {
                    let schema = match *media {
                        "application/json" => json!({"type": "object"}),
                        _ => json!({"type": "string"}),
                    };
                    (media.to_string(), json!({"schema": schema}))
                })
                .collect();
            body["content"] = Value::Object(content);
        }
        add_links(&mut document["paths"]);
        // The enrollment request is a wire type of tutti-proto, which has no schema derive.
        document["components"]["schemas"]["EnrollRequest"] = enroll_request_schema();
        document["paths"]["/api/v1/enroll"]["post"]["requestBody"]["content"] = json!({
            "application/json": {"schema": {"$ref": "#/components/schemas/EnrollRequest"}},
        });
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
                json!({"type": "string", "pattern": NAME_PATTERN})
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
                json!({"type": "string", "pattern": NAME_PATTERN})
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

    /// `tutti_proto::enroll::EnrollRequest`, field by field.
    fn enroll_request_schema() -> Value {
        json!({
            "type": "object",
            "description": "What an agent sends to enroll (tutti_proto::enroll::EnrollRequest).",
            "required": ["token", "hostname"],
            "properties": {
                "token": {"type": "string", "minLength": 1, "description": "The enrollment token."},
                "hostname": {
                    "type": "string", "maxLength": 253, "pattern": "[A-Za-z0-9]",
                    "description": "The machine's hostname; the agent id derives from it unless requested_id is set.",
                },
                "requested_id": {"type": ["string", "null"], "pattern": NAME_PATTERN},
                "os": {"type": "string"},
                "arch": {"type": "string"},
                "version": {"type": "string"},
                "expected_server_key_id": {
                    "type": ["string", "null"], "pattern": "^[0-9a-f]{16}$",
                    "description": "The signing key id the agent pinned; another key is 409 before the token is spent.",
                },
                "nats_public_key": {
                    "type": ["string", "null"], "pattern": "^U[A-Z2-7]{55}$",
                    "description": "The agent's own NATS user key (nkeys encoding, checksummed).",
                },
            },
        })
    }

    /// What the handlers check in request bodies, from the constants they check against.
    fn constrain_bodies(schemas: &mut Value) {
        let name = json!({"type": "string", "pattern": NAME_PATTERN});
        let roles = json!(["viewer", "operator", "admin"]);
        let rules = [
            (
                "TokenRequest",
                "expires_in_secs",
                json!({"minimum": 1, "maximum": crate::tokens::MAX_TTL_SECS}),
            ),
            (
                "TokenRequest",
                "uses",
                json!({"minimum": 1, "maximum": crate::tokens::MAX_USES}),
            ),
            ("TokenRequest", "groups", json!({"items": name})),
            ("NewGroup", "name", name.clone()),
            ("SetGroups", "groups", json!({"items": name})),
            (
                "NewAccountRequest",
                "username",
                json!({"pattern": "^[a-z0-9._-]{1,64}$"}),
            ),
            ("NewAccountRequest", "role", json!({"enum": roles})),
            (
                "NewAccountRequest",
                "password",
                json!({
                    "minLength": crate::auth::password::MIN_LENGTH,
                    "maxLength": crate::auth::password::MAX_LENGTH,
                }),
            ),
            (
                "AccountPatch",
                "role",
                json!({"enum": ["viewer", "operator", "admin", null]}),
            ),
            (
                "FreezeRequest",
                "reason",
                json!({
                    "minLength": 1,
                    "maxLength": crate::api::freeze::MAX_REASON_CHARS,
                    "pattern": "\\S",
                }),
            ),
            (
                "RotateRequest",
                "overlap_secs",
                json!({"minimum": 1, "maximum": crate::api::keys::MAX_OVERLAP_SECS}),
            ),
            ("MfaCode", "code", json!({"pattern": "^[0-9]{6}$"})),
            (
                "ApiTokenRequest",
                "expires_in_days",
                // At most `auth.api_token_max_days` when set.
                json!({"minimum": 1, "maximum": crate::auth::signin::MAX_TOKEN_DAYS}),
            ),
            (
                "ApiTokenRequest",
                "role",
                json!({"enum": ["viewer", "operator", "admin", null]}),
            ),
            (
                "ApiTokenRequest",
                "name",
                json!({"minLength": 1, "maxLength": 100}),
            ),
        ];
        for (schema, property, constraints) in rules {
            let Some(target) = schemas[schema]["properties"]
                .get_mut(property)
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            if let Some(constraints) = constraints.as_object() {
                for (key, value) in constraints {
                    target.insert(key.clone(), value.clone());
                }
            }
        }
    }

    /// The configuration keys' ranges and the log filter's alphabet, from the one table
    /// the API checks them against.
    fn constrain_config_layer(schema: &mut Value) {
        let Some(properties) = schema["properties"].as_object_mut() else {
            return;
        };
        for range in tutti_proto::config::RANGES {
            if let Some(property) = properties.get_mut(range.key) {
                property["minimum"] = range.min.into();
                property["maximum"] = range.max.into();
                property["description"] = format!(
                    "{} ({}..={} {})",
                    property["description"].as_str().unwrap_or(range.key),
                    range.min,
                    range.max,
                    range.unit
                )
                .into();
            }
        }
        if let Some(level) = properties.get_mut("log_level") {
            level["minLength"] = 1.into();
            level["maxLength"] = tutti_proto::config::MAX_LOG_LEVEL_CHARS.into();
            level["pattern"] = "^[A-Za-z0-9_:=,.-]+$".into();
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
}
