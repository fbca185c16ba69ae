//! Job manifests: what operators write (`kind: Job` YAML documents, or the same fields as
//! JSON), parsed strictly, and the validated [`JobSpec`] the store keeps as a job's
//! definition.
//!
//! Strictness lives here, at the edge where people write input: unknown keys, wrong types
//! and broken rules are errors naming the line and column (YAML) or the field path
//! (JSON). Rules on single values are checked while deserialising (newtypes with
//! `try_from`), so their errors carry the value's position too. A YAML stream may hold
//! several documents; each is split off with its own text, comments included, because the
//! store keeps every job's manifest as written.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tutti_proto::JobId;
use tutti_proto::command::{Script, Shell};
use tutti_proto::digest::sha256_hex;

/// The longest job timeout: a week, the commands stream's retention.
pub(crate) const MAX_TIMEOUT_SECS: u64 = 7 * 24 * 60 * 60;
/// The largest output cap a job may ask for per stream (the configuration's too).
pub(crate) const MAX_OUTPUT_LIMIT_BYTES: u64 = tutti_proto::config::MAX_OUTPUT_LIMIT_BYTES;
/// The largest script in the object store a job may name.
pub(crate) const MAX_SCRIPT_OBJECT_BYTES: u64 = tutti_proto::command::MAX_SCRIPT_OBJECT_BYTES;
/// The longest object name a job may name.
pub(crate) const MAX_OBJECT_NAME_CHARS: usize = 255;
/// The largest inline script: commands travel in 1 MiB stream messages.
pub(crate) const MAX_INLINE_SCRIPT_BYTES: usize = 512 << 10;
/// Default job timeout.
pub(crate) const DEFAULT_TIMEOUT_SECS: u64 = 300;

/// The kinds of manifest this server applies. `Schedule` arrives with scheduling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ManifestKind {
    /// A job definition.
    Job,
}

/// One `kind: Job` document as written. Every field is listed here rather than
/// flattened from [`JobSpec`], because serde's `flatten` buffers the document and loses
/// both `deny_unknown_fields` and the positions errors must carry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JobManifest {
    /// Always `Job`.
    pub kind: ManifestKind,
    /// The job id.
    pub name: JobId,
    /// See [`JobSpec::description`].
    #[serde(default)]
    pub description: String,
    /// See [`JobSpec::shell`].
    #[serde(default)]
    pub shell: ShellName,
    /// See [`JobSpec::script`].
    #[serde(default)]
    pub script: Option<ScriptBody>,
    /// See [`JobSpec::script_object`].
    #[serde(default)]
    pub script_object: Option<ScriptObject>,
    /// See [`JobSpec::timeout_secs`].
    #[serde(default = "default_timeout")]
    pub timeout_secs: TimeoutSecs,
    /// See [`JobSpec::env`].
    #[serde(default)]
    pub env: BTreeMap<EnvName, String>,
    /// See [`JobSpec::cwd`].
    #[serde(default)]
    pub cwd: Option<String>,
    /// See [`JobSpec::user`].
    #[serde(default)]
    pub user: Option<String>,
    /// See [`JobSpec::output_limit_bytes`].
    #[serde(default = "default_output_limit")]
    pub output_limit_bytes: OutputLimit,
}

impl JobManifest {
    /// The job's definition, without `kind` and `name`.
    pub(crate) fn spec(&self) -> JobSpec {
        JobSpec {
            description: self.description.clone(),
            shell: self.shell,
            script: self.script.clone(),
            script_object: self.script_object.clone(),
            timeout_secs: self.timeout_secs,
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            user: self.user.clone(),
            output_limit_bytes: self.output_limit_bytes,
        }
    }
}

/// A validated job definition, stored as the job's JSON definition. Also the shape of an
/// ad-hoc script in a run request (`script` in `POST /api/v1/runs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Free text for operators.
    #[serde(default)]
    pub description: String,
    /// Interpreter: `sh`, `bash`, `python3`, `pwsh`, `powershell`, `cmd` or `builtin`.
    #[serde(default)]
    pub shell: ShellName,
    /// The script text (inline).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub script: Option<ScriptBody>,
    /// A script in the `tutti_scripts` object store instead of inline text.
    #[serde(default)]
    pub script_object: Option<ScriptObject>,
    /// Seconds before the process group is killed (1 to a week; default 300).
    #[serde(default = "default_timeout")]
    #[schema(value_type = u64)]
    pub timeout_secs: TimeoutSecs,
    /// Extra environment variables.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub env: BTreeMap<EnvName, String>,
    /// Working directory.
    #[serde(default)]
    pub cwd: Option<String>,
    /// User to run as.
    #[serde(default)]
    pub user: Option<String>,
    /// Cap on captured output per stream, in bytes (default 8 MiB, at most 64 MiB).
    #[serde(default = "default_output_limit")]
    #[schema(value_type = u64)]
    pub output_limit_bytes: OutputLimit,
}

/// A script stored in the `tutti_scripts` object store, pinned by its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScriptObject {
    /// Object name: 1 to 255 characters, no control characters.
    #[schema(value_type = String)]
    pub name: ObjectName,
    /// Size in bytes, 1 to 16 MiB (`tutti_proto::command::MAX_SCRIPT_OBJECT_BYTES`).
    #[schema(value_type = u64)]
    pub size: ScriptSize,
    /// Lowercase hex sha256 of the object.
    #[schema(value_type = String)]
    pub sha256: Sha256Hex,
}

/// The interpreter, strictly: an unknown name is an error here, unlike on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ShellName {
    /// POSIX `sh`.
    #[default]
    Sh,
    /// `bash`.
    Bash,
    /// `python3`.
    Python3,
    /// PowerShell 7+.
    Pwsh,
    /// Windows PowerShell 5.
    Powershell,
    /// Windows `cmd`.
    Cmd,
    /// A builtin of the agent (`noop`, `echo ...`).
    Builtin,
}

impl From<ShellName> for Shell {
    fn from(shell: ShellName) -> Shell {
        match shell {
            ShellName::Sh => Shell::Sh,
            ShellName::Bash => Shell::Bash,
            ShellName::Python3 => Shell::Python3,
            ShellName::Pwsh => Shell::Pwsh,
            ShellName::Powershell => Shell::Powershell,
            ShellName::Cmd => Shell::Cmd,
            ShellName::Builtin => Shell::Builtin,
        }
    }
}

/// Generates a string newtype validated by `$check` during deserialisation.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(value: String) -> Result<Self, String> {
                let check: fn(&str) -> Result<(), String> = $check;
                check(&value)?;
                Ok($name(value))
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl $name {
            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

/// Generates a `u64` newtype limited to `$min..=$max` during deserialisation.
macro_rules! bounded_u64 {
    ($(#[$doc:meta])* $name:ident, $min:expr, $max:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(try_from = "u64", into = "u64")]
        pub struct $name(u64);

        impl TryFrom<u64> for $name {
            type Error = String;
            fn try_from(value: u64) -> Result<Self, String> {
                if ($min..=$max).contains(&value) {
                    Ok($name(value))
                } else {
                    Err(format!("{} must be between {} and {}, got {value}", $what, $min, $max))
                }
            }
        }

        impl From<$name> for u64 {
            fn from(value: $name) -> u64 {
                value.0
            }
        }

        impl $name {
            /// The number.
            pub fn get(self) -> u64 {
                self.0
            }
        }
    };
}

checked_string!(
    /// A non-empty inline script no larger than [`MAX_INLINE_SCRIPT_BYTES`].
    ScriptBody,
    |text| {
        if text.trim().is_empty() {
            return Err("script must not be empty".into());
        }
        if text.len() > MAX_INLINE_SCRIPT_BYTES {
            return Err(format!(
                "script is {} bytes, over the inline limit of {MAX_INLINE_SCRIPT_BYTES}; put it in the object store",
                text.len()
            ));
        }
        Ok(())
    }
);

checked_string!(
    /// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
    EnvName,
    |name| {
        let mut chars = name.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            Ok(())
        } else {
            Err(format!(
                "invalid environment variable name {name:?} (use letters, digits and '_', not starting with a digit)"
            ))
        }
    }
);

checked_string!(
    /// An object store name: 1 to [`MAX_OBJECT_NAME_CHARS`] characters, no control
    /// characters.
    ObjectName,
    |name| {
        let chars = name.chars().count();
        if chars == 0 || chars > MAX_OBJECT_NAME_CHARS {
            return Err(format!(
                "script_object.name must be 1 to {MAX_OBJECT_NAME_CHARS} characters, got {chars}"
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(format!("script_object.name {name:?} holds a control character"));
        }
        Ok(())
    }
);

checked_string!(
    /// A lowercase hex sha256.
    Sha256Hex,
    |hash| {
        if hash.len() == 64 && hash.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
            Ok(())
        } else {
            Err(format!("sha256 must be 64 lowercase hex characters, got {hash:?}"))
        }
    }
);

bounded_u64!(
    /// The size of a script in the object store.
    ScriptSize,
    1,
    MAX_SCRIPT_OBJECT_BYTES,
    "script_object.size"
);

bounded_u64!(
    /// A job timeout in seconds.
    TimeoutSecs,
    1,
    MAX_TIMEOUT_SECS,
    "timeout_secs"
);

bounded_u64!(
    /// An output cap in bytes.
    OutputLimit,
    1024,
    MAX_OUTPUT_LIMIT_BYTES,
    "output_limit_bytes"
);

fn default_timeout() -> TimeoutSecs {
    TimeoutSecs(DEFAULT_TIMEOUT_SECS)
}

fn default_output_limit() -> OutputLimit {
    OutputLimit(tutti_proto::config::DEFAULT_OUTPUT_LIMIT_BYTES)
}

impl JobSpec {
    /// An inline script with every other field at its default.
    pub fn inline(shell: ShellName, body: ScriptBody, timeout_secs: TimeoutSecs) -> JobSpec {
        JobSpec {
            description: String::new(),
            shell,
            script: Some(body),
            script_object: None,
            timeout_secs,
            env: BTreeMap::new(),
            cwd: None,
            user: None,
            output_limit_bytes: default_output_limit(),
        }
    }

    /// Rules across fields: exactly one of `script` and `script_object`.
    pub fn check(&self) -> Result<(), String> {
        match (&self.script, &self.script_object) {
            (Some(_), Some(_)) => Err("give either script or script_object, not both".into()),
            (None, None) => Err("missing script (or script_object)".into()),
            _ => Ok(()),
        }
    }

    /// The script as a command carries it, and its sha256.
    pub fn command_script(&self) -> (Script, String) {
        match (&self.script, &self.script_object) {
            (_, Some(object)) => (
                Script::Object {
                    name: object.name.as_str().to_string(),
                    size: object.size.get(),
                },
                object.sha256.as_str().to_string(),
            ),
            (Some(body), None) => (
                Script::Inline {
                    body: body.as_str().to_string(),
                },
                sha256_hex(body.as_str().as_bytes()),
            ),
            // `check` runs before a spec is stored, so this is a corrupt stored definition;
            // an empty script fails on the agent with a clear error rather than here.
            (None, None) => (
                Script::Inline {
                    body: String::new(),
                },
                sha256_hex(b""),
            ),
        }
    }

    /// The environment as plain strings.
    pub fn env_map(&self) -> BTreeMap<String, String> {
        self.env
            .iter()
            .map(|(name, value)| (name.as_str().to_string(), value.clone()))
            .collect()
    }
}

/// A manifest error with its position: 1-based line and column for YAML, a field path
/// for JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ManifestError {
    /// The whole message, position included.
    pub message: String,
}

/// One parsed document and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedJob {
    /// The job.
    pub manifest: JobManifest,
    /// The document as written, comments included; empty for JSON.
    pub source: String,
}

/// Parses a YAML stream of `kind: Job` documents.
pub(crate) fn parse_yaml(text: &str) -> Result<Vec<ParsedJob>, ManifestError> {
    let mut jobs = Vec::new();
    for document in split_documents(text) {
        if is_blank_document(document.text) {
            continue;
        }
        let manifest = parse_yaml_document(&document)?;
        jobs.push(ParsedJob {
            manifest,
            source: document.text.to_string(),
        });
    }
    if jobs.is_empty() {
        return Err(ManifestError {
            message: "the manifest holds no document".into(),
        });
    }
    check_unique_names(&jobs)?;
    Ok(jobs)
}

/// Parses one JSON manifest (the same fields as YAML).
pub(crate) fn parse_json(bytes: &[u8]) -> Result<Vec<ParsedJob>, ManifestError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let manifest: JobManifest =
        serde_path_to_error::deserialize(deserializer).map_err(|err| ManifestError {
            message: crate::api::json::describe_json_error(&err),
        })?;
    manifest.spec().check().map_err(|message| ManifestError {
        message: format!("invalid job {}: {message}", manifest.name),
    })?;
    Ok(vec![ParsedJob {
        manifest,
        source: String::new(),
    }])
}

/// One document of a YAML stream (shared with `schedule/spec.rs`).
pub(crate) struct Document<'a> {
    /// Its text, comments included.
    pub(crate) text: &'a str,
    /// Lines before the document in the whole stream.
    pub(crate) line_offset: usize,
}

/// Splits a stream at `---` lines, keeping each document's text and first line.
pub(crate) fn split_documents(text: &str) -> Vec<Document<'_>> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut start_line = 0;
    let mut offset = 0;
    for (line_index, line) in text.split_inclusive('\n').enumerate() {
        if line.starts_with("---") && line[3..].trim().is_empty() {
            documents.push(Document {
                text: &text[start..offset],
                line_offset: start_line,
            });
            start = offset + line.len();
            start_line = line_index + 1;
        }
        offset += line.len();
    }
    documents.push(Document {
        text: &text[start..],
        line_offset: start_line,
    });
    documents
}

/// Whether a document holds nothing but blank lines and comments.
pub(crate) fn is_blank_document(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#')
    })
}

/// Deserialises one document strictly; errors carry the whole stream's line and column.
pub(crate) fn parse_document<T: serde::de::DeserializeOwned>(
    document: &Document<'_>,
) -> Result<T, ManifestError> {
    // YAML 1.2 scalars: only `true` and `false` are booleans (`user: no` is the text "no",
    // and `enabled: yes` is refused rather than read the YAML 1.1 way), and a text field
    // written as a bare number or boolean (`user: false`, `script: 1`) is refused with a
    // hint to quote it instead of silently becoming the text "false".
    let options = serde_saphyr::options! {
        with_snippet: false,
        strict_booleans: true,
        no_schema: true,
    };
    serde_saphyr::from_str_with_options(document.text, options)
        .map_err(|err| yaml_error(&err, document.line_offset))
}

fn parse_yaml_document(document: &Document<'_>) -> Result<JobManifest, ManifestError> {
    let manifest: JobManifest = parse_document(document)?;
    manifest.spec().check().map_err(|message| ManifestError {
        message: format!(
            "line {}, column 1: invalid job {}: {message}",
            document.line_offset + 1,
            manifest.name
        ),
    })?;
    Ok(manifest)
}

fn yaml_error(err: &serde_saphyr::Error, line_offset: usize) -> ManifestError {
    let plain = plain_yaml_message(err);
    let message = match err.location() {
        Some(location) if location.line() > 0 => format!(
            "line {}, column {}: {plain}",
            location.line() + line_offset as u64,
            location.column()
        ),
        _ => plain,
    };
    ManifestError { message }
}

/// The error text without the position suffix serde-saphyr appends, since the position is
/// rendered in front (shifted to the whole stream's line numbers).
fn plain_yaml_message(err: &serde_saphyr::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(index) => text[..index].to_string(),
        None => text,
    }
}

fn check_unique_names(jobs: &[ParsedJob]) -> Result<(), ManifestError> {
    let mut seen = std::collections::BTreeSet::new();
    for job in jobs {
        if !seen.insert(job.manifest.name.clone()) {
            return Err(ManifestError {
                message: format!("job {} is defined twice in one manifest", job.manifest.name),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_their_text_and_comments() {
        let text = "# first\nkind: Job\nname: a\nscript: echo a\n---\n# second\nkind: Job\nname: b\nscript: echo b\n";
        let jobs = parse_yaml(text).unwrap();
        assert_eq!(jobs.len(), 2);
        assert!(jobs[0].source.starts_with("# first"));
        assert!(jobs[1].source.starts_with("# second"));
        assert_eq!(jobs[1].manifest.name.as_str(), "b");
    }

    #[test]
    fn errors_in_later_documents_carry_stream_line_numbers() {
        let text = "kind: Job\nname: a\nscript: x\n---\nkind: Job\nname: b\nscript: x\nshel: sh\n";
        let err = parse_yaml(text).unwrap_err();
        assert!(
            err.message.starts_with("line 8, column 1"),
            "{}",
            err.message
        );
        assert!(err.message.contains("shel"), "{}", err.message);
    }

    #[test]
    fn text_fields_written_as_numbers_or_booleans_must_be_quoted() {
        // `no` is text in YAML 1.2, as its author meant.
        let text = "kind: Job
name: a
script: echo a
user: no
";
        let jobs = parse_yaml(text).unwrap();
        assert_eq!(jobs[0].manifest.user.as_deref(), Some("no"));
        for (field, value) in [("user", "false"), ("script", "1"), ("cwd", "0.5")] {
            let text = format!("kind: Job\nname: a\nscript: echo a\n{field}: {value}\n")
                .replace("script: echo a\nscript:", "script:");
            let err = parse_yaml(&text).unwrap_err();
            assert!(
                err.message.contains("must be quoted"),
                "{field}: {value}: {}",
                err.message
            );
            let quoted = text.replace(&format!(": {value}\n"), &format!(": \"{value}\"\n"));
            let jobs = parse_yaml(&quoted).unwrap_or_else(|err| panic!("{quoted}: {err}"));
            let spec = jobs[0].manifest.spec();
            let written = [
                spec.user.clone(),
                spec.cwd.clone(),
                spec.script.as_ref().map(|s| s.as_str().to_string()),
            ];
            assert!(
                written.contains(&Some(value.to_string())),
                "{quoted}: {spec:?}"
            );
        }
    }
}
