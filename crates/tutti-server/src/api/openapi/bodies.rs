//! Request bodies: the constraints the handlers check that the types' derives cannot
//! state (ranges, patterns, enums), the enrollment request (a `tutti-proto` wire type), and
//! the manifests `POST /jobs` and `POST /schedules` read, field by field.

use serde_json::{Map, Value, json};
use tutti_proto::ids::NAME_INPUT_PATTERN;

use crate::manifest::{
    MAX_INLINE_SCRIPT_BYTES, MAX_OBJECT_NAME_CHARS, MAX_OUTPUT_LIMIT_BYTES,
    MAX_SCRIPT_OBJECT_BYTES, MAX_TIMEOUT_SECS,
};
use crate::schedule::values::{
    MAX_CONCURRENT_TARGETS, MAX_DEADLINE_SECS, MAX_EVERY_HOURS, MAX_JITTER_SECS, MIN_DEADLINE_SECS,
};

/// Adds everything this module knows to the generated document. Returns the rules that
/// named a schema or property the document does not have (a renamed field), which the
/// unit test below keeps empty.
pub(super) fn describe(document: &mut Value) -> Vec<String> {
    let schemas = &mut document["components"]["schemas"];
    constrain_config_layer(&mut schemas["ConfigLayer"]);
    let mut misses = constrain_bodies(schemas);
    constrain_job_spec(schemas, &mut misses);
    constrain_run_request(schemas, &mut misses);
    schemas["TargetSpec"] = target_spec_schema();
    schemas["JobManifest"] = job_manifest_schema(&schemas["JobSpec"]);
    schemas["ScheduleManifest"] = schedule_manifest_schema();
    // The enrollment request is a wire type of tutti-proto, described here by hand.
    schemas["EnrollRequest"] = enroll_request_schema();
    let paths = &mut document["paths"];
    paths["/api/v1/enroll"]["post"]["requestBody"]["content"] = json!({
        "application/json": {"schema": {"$ref": "#/components/schemas/EnrollRequest"}},
    });
    // Manifests are YAML (a job also JSON), not the text/plain a `String` body implies. A
    // YAML body may hold several documents separated by `---`; each is one manifest.
    let job = json!({"$ref": "#/components/schemas/JobManifest"});
    paths["/api/v1/jobs"]["post"]["requestBody"]["content"] = json!({
        "application/yaml": {"schema": job},
        "application/json": {"schema": job},
    });
    paths["/api/v1/schedules"]["post"]["requestBody"]["content"] = json!({
        "application/yaml": {"schema": {"$ref": "#/components/schemas/ScheduleManifest"}},
    });
    misses
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
            "requested_id": {"type": ["string", "null"], "pattern": NAME_INPUT_PATTERN},
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
fn constrain_bodies(schemas: &mut Value) -> Vec<String> {
    let name = json!({"type": "string", "pattern": NAME_INPUT_PATTERN});
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
    let mut misses = Vec::new();
    for (schema, property, constraints) in rules {
        constrain(schemas, schema, property, constraints, &mut misses);
    }
    misses
}

/// Merges `constraints` into the schema of `schema.property`, or records the miss.
fn constrain(
    schemas: &mut Value,
    schema: &str,
    property: &str,
    constraints: Value,
    misses: &mut Vec<String>,
) {
    let target = schemas
        .get_mut(schema)
        .and_then(|found| found.get_mut("properties"))
        .and_then(|properties| properties.get_mut(property))
        .and_then(Value::as_object_mut);
    match (target, constraints) {
        (Some(target), Value::Object(constraints)) => target.extend(constraints),
        _ => misses.push(format!("{schema}.{property}")),
    }
}

/// A job's fields as the manifest parser checks them (`manifest.rs`): an inline script is
/// not blank and fits a command message, bounded timeout and output cap, environment
/// names of letters, digits and `_`, and exactly one of `script` and `script_object`.
fn constrain_job_spec(schemas: &mut Value, misses: &mut Vec<String>) {
    // maxLength counts characters; a character is at most four bytes of UTF-8, so this
    // many always fit the byte limit.
    let script_chars = MAX_INLINE_SCRIPT_BYTES / 4;
    let rules = [
        (
            "JobSpec",
            "script",
            json!({
                "minLength": 1, "maxLength": script_chars, "pattern": "\\S",
                "description": format!("The script text (inline): not blank, at most {MAX_INLINE_SCRIPT_BYTES} bytes of UTF-8."),
            }),
        ),
        (
            "JobSpec",
            "timeout_secs",
            json!({"minimum": 1, "maximum": MAX_TIMEOUT_SECS}),
        ),
        (
            "JobSpec",
            "output_limit_bytes",
            json!({"minimum": 1024, "maximum": MAX_OUTPUT_LIMIT_BYTES}),
        ),
        (
            "JobSpec",
            "env",
            json!({"propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}}),
        ),
        (
            "ScriptObject",
            "sha256",
            json!({"pattern": "^[0-9a-f]{64}$"}),
        ),
        (
            "ScriptObject",
            "size",
            json!({"minimum": 1, "maximum": MAX_SCRIPT_OBJECT_BYTES}),
        ),
        (
            "ScriptObject",
            "name",
            json!({"minLength": 1, "maxLength": MAX_OBJECT_NAME_CHARS, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"}),
        ),
    ];
    for (schema, property, constraints) in rules {
        constrain(schemas, schema, property, constraints, misses);
    }
    schemas["JobSpec"]["oneOf"] = one_script();
}

/// A run request: a job id or a script, never both (`engine::create_run`), and a rollout's
/// bounds (`engine::rollout::plan`). That waves increase, and that the last covers every
/// target, no schema can say; the server answers 400 naming the wave.
fn constrain_run_request(schemas: &mut Value, misses: &mut Vec<String>) {
    use crate::engine::rollout::plan::{MAX_WAIT_SECS, MAX_WAVES};
    // Rust's float syntax, trimmed, before `%`; the value must be above 0 and at most 100.
    let percent = r"^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*%\s*$";
    let rules = [
        (
            "RunRequest",
            "job_id",
            json!({"pattern": NAME_INPUT_PATTERN}),
        ),
        (
            "RolloutSpec",
            "waves",
            json!({
                "minItems": 1, "maxItems": MAX_WAVES,
                "items": {"oneOf": [
                    {"type": "integer", "minimum": 1, "description": "A count of targets."},
                    {"type": "string", "pattern": percent, "description": "A percentage above 0 and at most 100, e.g. \"5%\"."},
                ]},
            }),
        ),
        (
            "RolloutSpec",
            "wait_secs",
            json!({"maximum": MAX_WAIT_SECS}),
        ),
        (
            "RolloutSpec",
            "max_failure_ratio",
            json!({"minimum": 0, "maximum": 1}),
        ),
        ("RolloutSpec", "batch_size", json!({"minimum": 1})),
    ];
    for (schema, property, constraints) in rules {
        constrain(schemas, schema, property, constraints, misses);
    }
    schemas["RunRequest"]["oneOf"] = json!([
        {"required": ["job_id"], "properties": {"job_id": {"type": "string"}, "script": {"type": "null"}}},
        {"required": ["script"], "properties": {"script": {"type": "object"}, "job_id": {"type": "null"}}},
    ]);
}

/// Exactly one of `script` and `script_object` (the other absent or null).
fn one_script() -> Value {
    json!([
        {"required": ["script"], "properties": {"script": {"type": "string"}, "script_object": {"type": "null"}}},
        {"required": ["script_object"], "properties": {"script_object": {"type": "object"}, "script": {"type": "null"}}},
    ])
}

/// `TargetSpec`: `all: true`, or some groups and/or agents, never both
/// (`engine::targets::TargetSpec::check`).
fn target_spec_schema() -> Value {
    let names = |what: &str| json!({"type": "array", "items": {"type": "string", "pattern": NAME_INPUT_PATTERN}, "description": what});
    json!({
        "type": "object",
        "additionalProperties": false,
        "description": "Which agents a run targets: `all: true`, or some groups and/or agents.",
        "properties": {
            "all": {"type": "boolean", "description": "Every known agent. Cannot be combined with groups or agents."},
            "groups": names("Members of these groups."),
            "agents": names("These agents."),
        },
        "oneOf": [
            {
                "required": ["all"],
                "properties": {"all": {"const": true}, "groups": {"maxItems": 0}, "agents": {"maxItems": 0}},
            },
            {
                "properties": {"all": {"const": false}},
                "anyOf": [
                    {"required": ["groups"], "properties": {"groups": {"minItems": 1}}},
                    {"required": ["agents"], "properties": {"agents": {"minItems": 1}}},
                ],
            },
        ],
    })
}

/// One `kind: Job` document: `kind`, `name` and the fields of a [`crate::manifest::JobSpec`].
fn job_manifest_schema(job_spec: &Value) -> Value {
    let mut properties = Map::new();
    properties.insert(
        "kind".into(),
        json!({"type": "string", "enum": ["Job"], "description": "Always `Job`."}),
    );
    properties.insert(
        "name".into(),
        json!({"type": "string", "pattern": NAME_INPUT_PATTERN, "description": "The job id."}),
    );
    if let Some(fields) = job_spec["properties"].as_object() {
        properties.extend(fields.clone());
    }
    json!({
        "type": "object",
        "additionalProperties": false,
        "description": "A job manifest (`kind: Job`); `POST /api/v1/jobs` stores a new version when it differs from the current one.",
        "required": ["kind", "name"],
        "properties": properties,
        "oneOf": one_script(),
    })
}

/// One `kind: Schedule` document (`schedule/spec.rs`), field by field. What no schema
/// can say is checked by the server and answered with 400: the cron expression's syntax,
/// the time zone's name, that the job exists, that `active_until` follows `active_from`,
/// and that a rollout is only for cron schedules.
fn schedule_manifest_schema() -> Value {
    let name = json!({"type": "string", "pattern": NAME_INPUT_PATTERN});
    let bounded = |min: u64, max: u64, what: &str| json!({"type": "integer", "minimum": min, "maximum": max, "description": what});
    let hh_mm = "([01][0-9]|2[0-3]):[0-5][0-9]";
    json!({
        "type": "object",
        "additionalProperties": false,
        "description": "A schedule manifest (`kind: Schedule`): a job run on a cron expression or kept in a desired state.",
        "required": ["kind", "name", "job", "targets"],
        "properties": {
            "kind": {"type": "string", "enum": ["Schedule"]},
            "name": name,
            "job": name,
            "job_version": {"type": ["integer", "null"], "minimum": 1, "maximum": u32::MAX, "description": "Pin a version; absent runs the current one."},
            "targets": {"$ref": "#/components/schemas/TargetSpec"},
            "enabled": {"type": "boolean", "description": "A disabled schedule is kept but never fires (default true)."},
            "cron": {"type": ["string", "null"], "minLength": 1, "description": "Five cron fields (minute hour day-of-month month day-of-week), read in `timezone`."},
            "timezone": {"type": ["string", "null"], "minLength": 1, "description": "An IANA time zone name, e.g. `Europe/Berlin` (default UTC)."},
            "desired_state": {
                "oneOf": [
                    {"type": "null"},
                    {"type": "object", "additionalProperties": false, "required": ["once_per_version"], "properties": {"once_per_version": {"const": true}}},
                    {"type": "object", "additionalProperties": false, "required": ["every_hours"], "properties": {"every_hours": bounded(1, MAX_EVERY_HOURS, "Hours between runs on each target.")}},
                ],
            },
            "jitter_secs": bounded(0, MAX_JITTER_SECS, "Each fire is delayed by a random 0 to this many seconds."),
            "deadline_secs": {"type": ["integer", "null"], "minimum": MIN_DEADLINE_SECS, "maximum": MAX_DEADLINE_SECS, "description": "How long a fired run waits for offline agents."},
            "active_from": {"type": ["string", "null"], "format": "date-time"},
            "active_until": {"type": ["string", "null"], "format": "date-time"},
            "maintenance_window": {"type": ["string", "null"], "pattern": format!("^{hh_mm}-{hh_mm}$"), "description": "A daily window `HH:MM-HH:MM` in `timezone`; fires outside it are skipped."},
            "skip_dates": {"type": "array", "items": {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}},
            "max_concurrent_targets": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_CONCURRENT_TARGETS},
            "rollout": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/RolloutSpec"}]},
        },
        "oneOf": [
            {"required": ["cron"], "properties": {"cron": {"type": "string"}, "desired_state": {"type": "null"}}},
            {"required": ["desired_state"], "properties": {"desired_state": {"type": "object"}, "cron": {"type": "null"}}},
        ],
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_names_a_property_of_the_document() {
        let mut document =
            serde_json::to_value(<super::super::ApiDoc as utoipa::OpenApi>::openapi()).unwrap();
        assert_eq!(describe(&mut document), Vec::<String>::new());
    }
}
