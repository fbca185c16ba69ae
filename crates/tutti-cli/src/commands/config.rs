//! `tutti config get|set`: the layered agent configuration in `tutti_config`, one layer at a
//! time (`global`, `group GROUP`, `agent AGENT`).
//!
//! The server replaces a whole layer on `PUT`, so `set` reads the layer, changes only the
//! keys given and writes it back; a key given as `KEY=` is removed and inherits again.

use serde_json::{Map, Value};

use crate::args::{ConfigAction, ConfigArgs};
use crate::client::{ApiClient, CliError, urlencode};
use crate::output::{print_json, table};

/// The fields of `tutti_proto::config::AgentConfig`, in its order. Pinned by the test
/// `fields_match_the_wire_type`.
const FIELDS: [&str; 6] = [
    "heartbeat_interval_secs",
    "inventory_interval_secs",
    "concurrency",
    "log_level",
    "output_limit_bytes",
    "inline_output_limit_bytes",
];
/// The one text field; the others are whole numbers.
const TEXT_FIELD: &str = "log_level";

/// Shows or changes one configuration layer.
pub(crate) async fn config(
    client: &ApiClient,
    args: ConfigArgs,
    json: bool,
) -> Result<(), CliError> {
    match args.action {
        ConfigAction::Get { scope } => {
            let (path, rest) = scope_path(&scope)?;
            if let Some(extra) = rest.first() {
                return Err(CliError::Usage(format!(
                    "unexpected {extra:?}: `config get` takes only the scope; did you mean `tutti config set`?"
                )));
            }
            let layer: Value = client.get(&path).await?;
            print_layer(&layer, json);
            Ok(())
        }
        ConfigAction::Set { words } => {
            let (path, pairs) = scope_path(&words)?;
            if pairs.is_empty() {
                return Err(CliError::Usage(
                    "nothing to set: add KEY=VALUE pairs, e.g. `tutti config set global concurrency=4`".into(),
                ));
            }
            let current: Value = client.get(&path).await?;
            let mut layer = current.as_object().cloned().unwrap_or_default();
            for pair in pairs {
                apply_pair(&mut layer, pair)?;
            }
            let stored: Value = client.put(&path, &Value::Object(layer)).await?;
            print_layer(&stored, json);
            Ok(())
        }
    }
}

/// `global …`, `group G …`, `agent A …` → the API path and the words after the scope.
fn scope_path(words: &[String]) -> Result<(String, &[String]), CliError> {
    match words {
        [scope, rest @ ..] if scope == "global" => Ok(("config/global".into(), rest)),
        [scope, name, rest @ ..] if scope == "group" => {
            Ok((format!("config/groups/{}", urlencode(name)), rest))
        }
        [scope, name, rest @ ..] if scope == "agent" => {
            Ok((format!("config/agents/{}", urlencode(name)), rest))
        }
        _ => Err(CliError::Usage(
            "the scope must be `global`, `group GROUP` or `agent AGENT`".into(),
        )),
    }
}

/// Applies one `KEY=VALUE` (or `KEY=` to unset) to a layer.
fn apply_pair(layer: &mut Map<String, Value>, pair: &str) -> Result<(), CliError> {
    let Some((key, value)) = pair.split_once('=') else {
        return Err(CliError::Usage(format!(
            "{pair:?} must look like KEY=VALUE (or KEY= to unset)"
        )));
    };
    if !FIELDS.contains(&key) {
        return Err(CliError::Usage(format!(
            "unknown key {key:?}; the keys are {}",
            FIELDS.join(", ")
        )));
    }
    if value.is_empty() {
        layer.remove(key);
        return Ok(());
    }
    let value = if key == TEXT_FIELD {
        tutti_proto::config::check_log_level(value)
            .map_err(|err| CliError::Usage(err.to_string()))?;
        Value::String(value.to_string())
    } else {
        let range = tutti_proto::config::range_of(key)
            .ok_or_else(|| CliError::Usage(format!("{key} has no known range")))?;
        let number: u64 = value.parse().map_err(|_| {
            CliError::Usage(format!(
                "{key} takes a whole number from {} to {} ({}), got {value:?}",
                range.min, range.max, range.unit
            ))
        })?;
        tutti_proto::config::check_number(range.key, number)
            .map_err(|err| CliError::Usage(err.to_string()))?;
        Value::from(number)
    };
    layer.insert(key.to_string(), value);
    Ok(())
}

fn print_layer(layer: &Value, json: bool) {
    if json {
        print_json(layer);
        return;
    }
    let mut rows = table(&["KEY", "VALUE"]);
    for field in FIELDS {
        let value = match layer.get(field) {
            None | Some(Value::Null) => "(not set)".to_string(),
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
        };
        rows.add_row(vec![field.to_string(), value]);
    }
    println!("{rows}");
}

#[cfg(test)]
mod tests {
    use tutti_proto::config::AgentConfig;

    use super::*;

    #[test]
    fn fields_match_the_wire_type() {
        let every_field = AgentConfig {
            heartbeat_interval_secs: Some(1),
            inventory_interval_secs: Some(1),
            concurrency: Some(1),
            log_level: Some("info".into()),
            output_limit_bytes: Some(1),
            inline_output_limit_bytes: Some(1),
        };
        let value = serde_json::to_value(&every_field).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = FIELDS.to_vec();
        expected.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, expected);
    }

    #[test]
    fn pairs_set_unset_and_say_what_is_wrong() {
        let mut layer = Map::new();
        apply_pair(&mut layer, "concurrency=4").unwrap();
        apply_pair(&mut layer, "log_level=debug").unwrap();
        assert_eq!(
            Value::Object(layer.clone()),
            serde_json::json!({"concurrency": 4, "log_level": "debug"})
        );
        apply_pair(&mut layer, "concurrency=").unwrap();
        assert!(!layer.contains_key("concurrency"));
        let err = apply_pair(&mut layer, "concurency=4")
            .unwrap_err()
            .to_string();
        assert!(err.contains("heartbeat_interval_secs"), "{err}");
        assert!(apply_pair(&mut layer, "concurrency=many").is_err());
        assert!(apply_pair(&mut layer, "concurrency").is_err());
        let err = apply_pair(&mut layer, "heartbeat_interval_secs=9223372036854775807")
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside 1..=3600 (seconds)"), "{err}");
        assert!(apply_pair(&mut layer, "log_level=debug;rm").is_err());
        assert!(!layer.contains_key("heartbeat_interval_secs"));
    }

    #[test]
    fn scopes() {
        let words = |text: &str| text.split(' ').map(String::from).collect::<Vec<_>>();
        let global = words("global a=1");
        assert_eq!(scope_path(&global).unwrap().0, "config/global");
        let group = words("group web a=1");
        let (path, rest) = scope_path(&group).unwrap();
        assert_eq!((path.as_str(), rest.len()), ("config/groups/web", 1));
        assert_eq!(
            scope_path(&words("agent web-01")).unwrap().0,
            "config/agents/web-01"
        );
        assert!(scope_path(&words("group")).is_err());
        assert!(scope_path(&words("fleet")).is_err());
    }
}
