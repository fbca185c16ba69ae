//! Newtype ids, validated once at parse time so nothing unvalidated reaches a subject.
//!
//! Name ids ([`AgentId`], [`GroupName`], [`JobId`]) are lowercase `[a-z0-9-]`, 1 to 64
//! characters, no leading or trailing `-`. Parsing trims whitespace and lowercases ASCII
//! first, because case-sensitive agent ids once produced duplicate machines. Only ASCII
//! is lowercased: Unicode case mapping could turn a non-ASCII character into a valid
//! one (the Kelvin sign `K` lowercases to `k`), so every non-ASCII character is rejected.
//!
//! ULID ids ([`RunId`], [`CommandId`]) render as 26 lowercase characters. [`ResultId`]
//! is derived from (run, agent), which is what keeps broadcast results from colliding.
//! [`KeyId`] names a signing key. The fields are private: the only way to get an id is
//! through validation. `subjects` and `kv_keys` take these types, never strings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ulid::Ulid;

/// The longest name id, in characters.
pub const MAX_NAME_LEN: usize = 64;

/// Which kind of id failed to parse; named in every [`IdError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// [`AgentId`].
    Agent,
    /// [`GroupName`].
    Group,
    /// [`JobId`].
    Job,
    /// [`RunId`].
    Run,
    /// [`CommandId`].
    Command,
    /// [`ResultId`].
    Result,
    /// [`KeyId`].
    Key,
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdKind::Agent => "agent id",
            IdKind::Group => "group name",
            IdKind::Job => "job id",
            IdKind::Run => "run id",
            IdKind::Command => "command id",
            IdKind::Result => "result id",
            IdKind::Key => "key id",
        })
    }
}

/// Why a string is not a valid id. `input` is the trimmed input, shortened when long.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Nothing left after trimming.
    #[error("invalid {kind}: must not be empty")]
    Empty {
        /// The id kind.
        kind: IdKind,
    },
    /// Longer than the limit for this kind.
    #[error("invalid {kind} {input:?}: {len} characters is over the limit of {limit}")]
    TooLong {
        /// The id kind.
        kind: IdKind,
        /// The start of the trimmed input.
        input: String,
        /// Length in characters.
        len: usize,
        /// The limit in characters.
        limit: usize,
    },
    /// A character outside the allowed set.
    #[error(
        "invalid {kind} {input:?}: character {character:?} at position {position} is not allowed (use {allowed})"
    )]
    BadCharacter {
        /// The id kind.
        kind: IdKind,
        /// The trimmed input.
        input: String,
        /// The offending character.
        character: char,
        /// 1-based character position in `input`.
        position: usize,
        /// The allowed set, in words.
        allowed: &'static str,
    },
    /// A name id that starts or ends with `-`.
    #[error("invalid {kind} {input:?}: must not start or end with '-'")]
    EdgeDash {
        /// The id kind.
        kind: IdKind,
        /// The trimmed input.
        input: String,
    },
    /// Wrong length for a fixed-length id (ULID, key id).
    #[error("invalid {kind} {input:?}: expected {expected} characters, got {len}")]
    WrongLength {
        /// The id kind.
        kind: IdKind,
        /// The start of the trimmed input.
        input: String,
        /// Required length in characters.
        expected: usize,
        /// Actual length in characters.
        len: usize,
    },
    /// A ULID above the 128-bit range (first character above '7').
    #[error("invalid {kind} {input:?}: value is out of the ULID range")]
    UlidOverflow {
        /// The id kind.
        kind: IdKind,
        /// The trimmed input.
        input: String,
    },
    /// A [`ResultId`] without the `:` separator.
    #[error("invalid result id {input:?}: expected \"<run id>:<agent id>\"")]
    MissingSeparator {
        /// The start of the trimmed input.
        input: String,
    },
}

const NAME_ALLOWED: &str = "a-z, 0-9 and '-'";
const ULID_ALLOWED: &str = "Crockford base32: 0-9 and a-z without i, l, o, u";
const HEX_ALLOWED: &str = "0-9 and a-f";
const CROCKFORD: &str = "0123456789abcdefghjkmnpqrstvwxyz";
const ULID_LEN: usize = 26;
const KEY_ID_LEN: usize = 16;

/// Defines a validated `[a-z0-9-]` name id with parsing, display and serde.
macro_rules! name_id {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Parses and normalises (trim, ASCII lowercase) a name id.
            pub fn parse(input: &str) -> Result<Self, IdError> {
                parse_name(input, $kind).map($name)
            }

            /// The normalised id.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(input: &str) -> Result<Self, IdError> {
                Self::parse(input)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(input: String) -> Result<Self, IdError> {
                Self::parse(&input)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(input: &str) -> Result<Self, IdError> {
                Self::parse(input)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        string_serde!($name);
        id_schema!($name, NAME_PATTERN);
    };
}

/// Serialises an id as its `Display` string and deserialises it through `FromStr`.
macro_rules! string_serde {
    ($name:ident) => {
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// Defines a ULID id rendered as 26 lowercase characters.
macro_rules! ulid_id {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Ulid);

        impl $name {
            /// Wraps a ULID generated by the caller (this crate has no random source).
            pub fn new(ulid: Ulid) -> Self {
                $name(ulid)
            }

            /// Same as [`Self::new`].
            pub fn from_ulid(ulid: Ulid) -> Self {
                $name(ulid)
            }

            /// Builds the id from a millisecond timestamp and 80 random bits.
            pub fn from_parts(timestamp_ms: u64, random: u128) -> Self {
                $name(Ulid::from_parts(timestamp_ms, random))
            }

            /// Parses 26 Crockford base32 characters, upper or lower case.
            pub fn parse(input: &str) -> Result<Self, IdError> {
                parse_ulid(input, $kind).map($name)
            }

            /// The ULID inside.
            pub fn ulid(&self) -> Ulid {
                self.0
            }

            /// The millisecond timestamp encoded in the ULID.
            pub fn timestamp_ms(&self) -> u64 {
                self.0.timestamp_ms()
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(input: &str) -> Result<Self, IdError> {
                Self::parse(input)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0.to_string().to_ascii_lowercase())
            }
        }

        string_serde!($name);
        id_schema!($name, ULID_PATTERN);
    };
}

/// A name id as it is rendered: what [`parse_name`] returns.
pub const NAME_PATTERN: &str = "^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$";
/// A name id as the API reads it: [`parse_name`] lowercases, so capitals are accepted too.
pub const NAME_INPUT_PATTERN: &str = "^[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?$";
/// A ULID id as it is rendered: 26 lowercase Crockford base32 characters.
pub const ULID_PATTERN: &str = "^[0-7][0-9a-hjkmnp-tv-z]{25}$";

/// With the `schema` feature: the id's OpenAPI schema, a string with its rendered pattern.
macro_rules! id_schema {
    ($name:ident, $pattern:expr) => {
        #[cfg(feature = "schema")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some($pattern))
                    .into()
            }
        }

        #[cfg(feature = "schema")]
        impl utoipa::ToSchema for $name {}
    };
}

name_id!(
    /// An agent (one machine), e.g. `web-01`. Appears in subjects and KV keys.
    AgentId,
    IdKind::Agent
);
name_id!(
    /// A group of agents, e.g. `berlin-office`. Appears in subjects and KV keys.
    GroupName,
    IdKind::Group
);
name_id!(
    /// A job (what runs), e.g. `rotate-logs`.
    JobId,
    IdKind::Job
);
ulid_id!(
    /// One run of a job (where and when). Shared by every target of the run.
    RunId,
    IdKind::Run
);
ulid_id!(
    /// One command message on the commands stream.
    CommandId,
    IdKind::Command
);

/// The id of one agent's result for one run: `<run>:<agent>`.
///
/// Keying results by (run, agent) instead of by command is what keeps a broadcast
/// from collapsing into one result; it is also the JetStream `Nats-Msg-Id` of the result.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResultId {
    run_id: RunId,
    agent_id: AgentId,
}

impl ResultId {
    /// The result id of `agent_id` for `run_id`.
    pub fn new(run_id: &RunId, agent_id: &AgentId) -> Self {
        ResultId {
            run_id: *run_id,
            agent_id: agent_id.clone(),
        }
    }

    /// Parses `<run>:<agent>`, splitting at the first `:` and validating both halves.
    pub fn parse(input: &str) -> Result<Self, IdError> {
        let trimmed = input.trim();
        let Some((run, agent)) = trimmed.split_once(':') else {
            return Err(IdError::MissingSeparator {
                input: preview(trimmed),
            });
        };
        Ok(ResultId {
            run_id: RunId::parse(run)?,
            agent_id: AgentId::parse(agent)?,
        })
    }

    /// The run half.
    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }

    /// The agent half.
    pub fn agent_id(&self) -> &AgentId {
        &self.agent_id
    }
}

impl FromStr for ResultId {
    type Err = IdError;
    fn from_str(input: &str) -> Result<Self, IdError> {
        Self::parse(input)
    }
}

impl fmt::Display for ResultId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.run_id, self.agent_id)
    }
}

string_serde!(ResultId);
id_schema!(
    ResultId,
    "^[0-7][0-9a-hjkmnp-tv-z]{25}:[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$"
);

/// A signing key's id: 16 lowercase hex characters, the first 8 bytes of the
/// sha256 of the 32-byte ed25519 public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId([u8; 8]);

impl KeyId {
    /// The key id of a raw public key.
    pub fn for_public_key(public_key: &[u8]) -> Self {
        let digest = crate::digest::sha256(public_key);
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        KeyId(bytes)
    }

    /// Parses 16 hex characters, upper or lower case.
    pub fn parse(input: &str) -> Result<Self, IdError> {
        let text = check_fixed(input, IdKind::Key, KEY_ID_LEN, HEX_ALLOWED, |c| {
            c.is_ascii_hexdigit()
        })?;
        let mut bytes = [0u8; 8];
        for (idx, byte) in bytes.iter_mut().enumerate() {
            let pair = &text[idx * 2..idx * 2 + 2];
            // Every character was checked to be a hex digit above.
            *byte = u8::from_str_radix(pair, 16).unwrap_or_default();
        }
        Ok(KeyId(bytes))
    }
}

impl FromStr for KeyId {
    type Err = IdError;
    fn from_str(input: &str) -> Result<Self, IdError> {
        Self::parse(input)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::digest::hex_lower(&self.0))
    }
}

string_serde!(KeyId);
id_schema!(KeyId, "^[0-9a-f]{16}$");

fn parse_name(input: &str, kind: IdKind) -> Result<String, IdError> {
    let trimmed = input.trim();
    let len = trimmed.chars().count();
    if len == 0 {
        return Err(IdError::Empty { kind });
    }
    if len > MAX_NAME_LEN {
        return Err(too_long(kind, trimmed, len, MAX_NAME_LEN));
    }
    let normalised = trimmed.to_ascii_lowercase();
    check_chars(kind, trimmed, &normalised, NAME_ALLOWED, is_name_char)?;
    if normalised.starts_with('-') || normalised.ends_with('-') {
        return Err(IdError::EdgeDash {
            kind,
            input: trimmed.to_string(),
        });
    }
    Ok(normalised)
}

fn parse_ulid(input: &str, kind: IdKind) -> Result<Ulid, IdError> {
    let text = check_fixed(input, kind, ULID_LEN, ULID_ALLOWED, |c| {
        CROCKFORD.contains(c)
    })?;
    // 26 base32 characters hold 130 bits; a first character above '7' overflows u128,
    // and the ulid crate would silently drop the top bits.
    if text.chars().next().is_some_and(|c| c > '7') {
        return Err(IdError::UlidOverflow {
            kind,
            input: input.trim().to_string(),
        });
    }
    Ulid::from_string(&text).map_err(|_| IdError::UlidOverflow {
        kind,
        input: input.trim().to_string(),
    })
}

/// Trims, checks the exact length and the allowed characters, returns lowercase.
fn check_fixed(
    input: &str,
    kind: IdKind,
    expected: usize,
    allowed: &'static str,
    is_allowed: impl Fn(char) -> bool,
) -> Result<String, IdError> {
    let trimmed = input.trim();
    let len = trimmed.chars().count();
    if len == 0 {
        return Err(IdError::Empty { kind });
    }
    if len != expected {
        return Err(IdError::WrongLength {
            kind,
            input: preview(trimmed),
            expected,
            len,
        });
    }
    let normalised = trimmed.to_ascii_lowercase();
    check_chars(kind, trimmed, &normalised, allowed, is_allowed)?;
    Ok(normalised)
}

/// Finds the first character of `normalised` that is not allowed and reports it
/// against `trimmed`; ASCII lowercasing keeps character positions the same.
fn check_chars(
    kind: IdKind,
    trimmed: &str,
    normalised: &str,
    allowed: &'static str,
    is_allowed: impl Fn(char) -> bool,
) -> Result<(), IdError> {
    let bad = normalised
        .chars()
        .enumerate()
        .find(|(_, c)| !is_allowed(*c));
    match bad {
        None => Ok(()),
        Some((idx, character)) => Err(IdError::BadCharacter {
            kind,
            input: trimmed.to_string(),
            character,
            position: idx + 1,
            allowed,
        }),
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

fn too_long(kind: IdKind, trimmed: &str, len: usize, limit: usize) -> IdError {
    IdError::TooLong {
        kind,
        input: preview(trimmed),
        len,
        limit,
    }
}

/// The first 16 characters of `text`, with `…` when cut, so errors stay short.
fn preview(text: &str) -> String {
    const PREVIEW_CHARS: usize = 16;
    if text.chars().count() <= PREVIEW_CHARS {
        return text.to_string();
    }
    let mut short: String = text.chars().take(PREVIEW_CHARS).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `input` as `kind`; `expected` is the normalised id, or the error message
    /// (which always starts with "invalid", and an id never contains a space).
    fn check(kind: IdKind, input: &str, expected: &str) {
        let parsed = match kind {
            IdKind::Agent => AgentId::parse(input).map(|id| id.to_string()),
            IdKind::Group => GroupName::parse(input).map(|id| id.to_string()),
            IdKind::Job => JobId::parse(input).map(|id| id.to_string()),
            IdKind::Run => RunId::parse(input).map(|id| id.to_string()),
            IdKind::Command => CommandId::parse(input).map(|id| id.to_string()),
            IdKind::Result => ResultId::parse(input).map(|id| id.to_string()),
            IdKind::Key => KeyId::parse(input).map(|id| id.to_string()),
        };
        let actual = parsed.unwrap_or_else(|err| err.to_string());
        assert_eq!(actual, expected, "input {input:?} as {kind}");
    }

    const RUN: &str = "01j9x7k2m3n4p5q6r7s8t9v0wx";

    #[test]
    #[rustfmt::skip]
    fn name_ids() {
        use IdKind::{Agent, Group, Job};
        let a64 = "a".repeat(64);
        let a65 = "a".repeat(65);
        let cases = [
            (Agent, "web-01", "web-01"),
            (Agent, "Web-01 ", "web-01"),
            (Agent, "  WEB-01\t", "web-01"),
            (Agent, "a", "a"),
            (Agent, "0", "0"),
            (Agent, "a-b-c-1-2-3", "a-b-c-1-2-3"),
            (Agent, "a--b", "a--b"),
            (Agent, &a64, &a64),
            (Group, "Berlin-Office", "berlin-office"),
            (Job, "ROTATE-LOGS", "rotate-logs"),
            (Agent, "", "invalid agent id: must not be empty"),
            (Agent, "   ", "invalid agent id: must not be empty"),
            (Agent, "\t\n", "invalid agent id: must not be empty"),
            (Agent, &a65, "invalid agent id \"aaaaaaaaaaaaaaaa…\": 65 characters is over the limit of 64"),
            (Agent, "web.01", "invalid agent id \"web.01\": character '.' at position 4 is not allowed (use a-z, 0-9 and '-')"),
            (Agent, "web*", "invalid agent id \"web*\": character '*' at position 4 is not allowed (use a-z, 0-9 and '-')"),
            (Agent, ">", "invalid agent id \">\": character '>' at position 1 is not allowed (use a-z, 0-9 and '-')"),
            (Agent, "web 01", "invalid agent id \"web 01\": character ' ' at position 4 is not allowed (use a-z, 0-9 and '-')"),
            (Agent, "web\t01", "invalid agent id \"web\\t01\": character '\\t' at position 4 is not allowed (use a-z, 0-9 and '-')"),
            (Agent, "web_01", "invalid agent id \"web_01\": character '_' at position 4 is not allowed (use a-z, 0-9 and '-')"),
            (Agent, "$sys", "invalid agent id \"$sys\": character '$' at position 1 is not allowed (use a-z, 0-9 and '-')"),
            (Agent, "a\0b", "invalid agent id \"a\\0b\": character '\\0' at position 2 is not allowed (use a-z, 0-9 and '-')"),
            (Agent, "café", "invalid agent id \"café\": character 'é' at position 4 is not allowed (use a-z, 0-9 and '-')"),
            (Agent, "Ä1", "invalid agent id \"Ä1\": character 'Ä' at position 1 is not allowed (use a-z, 0-9 and '-')"),
            // The Kelvin sign lowercases to ASCII 'k' under Unicode rules; it must stay invalid.
            (Agent, "\u{212A}", "invalid agent id \"\u{212A}\": character '\u{212A}' at position 1 is not allowed (use a-z, 0-9 and '-')"),
            (Agent, "-web", "invalid agent id \"-web\": must not start or end with '-'"),
            (Agent, "web-", "invalid agent id \"web-\": must not start or end with '-'"),
            (Agent, "-", "invalid agent id \"-\": must not start or end with '-'"),
            (Agent, "a/b", "invalid agent id \"a/b\": character '/' at position 2 is not allowed (use a-z, 0-9 and '-')"),
            (Group, "ops.*", "invalid group name \"ops.*\": character '.' at position 4 is not allowed (use a-z, 0-9 and '-')"),
            (Group, "", "invalid group name: must not be empty"),
            (Job, "a:b", "invalid job id \"a:b\": character ':' at position 2 is not allowed (use a-z, 0-9 and '-')"),
        ];
        for (kind, input, expected) in cases {
            check(kind, input, expected);
        }
    }

    #[test]
    #[rustfmt::skip]
    fn ulid_result_and_key_ids() {
        use IdKind::{Command, Key, Result, Run};
        let upper = RUN.to_ascii_uppercase();
        let result = format!("{RUN}:web-01");
        let result_upper = format!("{upper}:WEB-01");
        let bad_agent_half = format!("{RUN}:web.01");
        let two_colons = format!("{RUN}:a:b");
        let cases = [
            (Run, RUN, RUN),
            (Run, &upper, RUN),
            (Command, RUN, RUN),
            (Run, "", "invalid run id: must not be empty"),
            (Run, "01j9x7k2", "invalid run id \"01j9x7k2\": expected 26 characters, got 8"),
            (Run, "01j9x7k2m3n4p5q6r7s8t9v0wu", "invalid run id \"01j9x7k2m3n4p5q6r7s8t9v0wu\": character 'u' at position 26 is not allowed (use Crockford base32: 0-9 and a-z without i, l, o, u)"),
            (Run, "81j9x7k2m3n4p5q6r7s8t9v0wx", "invalid run id \"81j9x7k2m3n4p5q6r7s8t9v0wx\": value is out of the ULID range"),
            (Result, &result, &result),
            (Result, &result_upper, &result),
            (Result, "web-01", "invalid result id \"web-01\": expected \"<run id>:<agent id>\""),
            (Result, &bad_agent_half, "invalid agent id \"web.01\": character '.' at position 4 is not allowed (use a-z, 0-9 and '-')"),
            (Result, &two_colons, "invalid agent id \"a:b\": character ':' at position 2 is not allowed (use a-z, 0-9 and '-')"),
            (Key, "0123456789ABCDEF", "0123456789abcdef"),
            (Key, "0123456789abcdeg", "invalid key id \"0123456789abcdeg\": character 'g' at position 16 is not allowed (use 0-9 and a-f)"),
            (Key, "0123", "invalid key id \"0123\": expected 16 characters, got 4"),
        ];
        for (kind, input, expected) in cases {
            check(kind, input, expected);
        }
    }
    #[test]
    fn ids_serialise_as_plain_strings() {
        let agent_id = AgentId::parse("Web-01").unwrap();
        assert_eq!(serde_json::to_string(&agent_id).unwrap(), r#""web-01""#);
        let back: AgentId = serde_json::from_str(r#"" WEB-01""#).unwrap();
        assert_eq!(back, agent_id);
        let bad = serde_json::from_str::<AgentId>(r#""web.01""#).unwrap_err();
        assert!(
            bad.to_string().contains("character '.' at position 4"),
            "{bad}"
        );
    }

    #[test]
    fn result_id_is_run_colon_agent() {
        let run_id = RunId::from_parts(1_700_000_000_000, 42);
        let agent_id = AgentId::parse("web-01").unwrap();
        let result_id = ResultId::new(&run_id, &agent_id);
        assert_eq!(result_id.to_string(), format!("{run_id}:web-01"));
        assert_eq!(ResultId::parse(&result_id.to_string()).unwrap(), result_id);
        assert_eq!(result_id.run_id(), &run_id);
        assert_eq!(result_id.agent_id(), &agent_id);
    }

    #[test]
    fn run_id_round_trips_through_ulid() {
        let ulid = Ulid::from_parts(1_700_000_000_000, u128::MAX);
        let run_id = RunId::from_ulid(ulid);
        assert_eq!(run_id.to_string().len(), 26);
        assert_eq!(run_id.to_string(), run_id.to_string().to_ascii_lowercase());
        assert_eq!(RunId::parse(&run_id.to_string()).unwrap().ulid(), ulid);
        assert_eq!(run_id.timestamp_ms(), 1_700_000_000_000);
    }
}
