//! The NATS JWT v2 claim types tutti issues: operator, account and user, as plain serde
//! structs whose field names are the wire names of the Go reference (`nats-io/jwt/v2`).
//!
//! Only what tutti uses is modelled; a field the broker or another tool adds is ignored on
//! decode, never an error. Zero and empty values are left out of the JSON as the Go
//! reference's `omitempty` does, which matters for limits: a limit that is absent is 0, and
//! 0 means "none allowed" to the broker, so unlimited is always written as [`NO_LIMIT`].
//! Neighbours: [`super::jwt`] signs and verifies these; `BrokerAuth` (in `mint.rs`) fills
//! them in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The value the broker reads as "no limit" in every limit field.
pub const NO_LIMIT: i64 = -1;

/// The claim format version tutti writes and accepts (`nats.version`).
pub const CLAIM_VERSION: u32 = 2;

/// The registered JWT claims plus the NATS-specific `nats` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Claim id: base32 of a hash over the registered claims, filled in by
    /// [`super::jwt::encode`].
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jti: String,
    /// Issued at, unix seconds; [`super::jwt::encode`] sets it to now when it is 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub iat: i64,
    /// The issuer's public nkey, set by [`super::jwt::encode`] from the signing key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub iss: String,
    /// A human-readable name (shown by the broker's monitoring and `nats` tooling).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The subject: the public nkey this claim is about.
    pub sub: String,
    /// Expiry, unix seconds; `None` never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// What kind of identity this is, and its NATS settings.
    pub nats: Nats,
}

impl Claims {
    /// Claims about `subject`, not yet issued (no `iss`, `iat` or `jti`).
    pub fn new(subject: impl Into<String>, name: impl Into<String>, nats: Nats) -> Claims {
        Claims {
            jti: String::new(),
            iat: 0,
            iss: String::new(),
            name: name.into(),
            sub: subject.into(),
            exp: None,
            nats,
        }
    }
}

/// The `nats` object, tagged by its `type` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Nats {
    /// The root of trust: self-signed, names the system account.
    Operator(Operator),
    /// An account: signed by the operator, holds limits, signing keys and revocations.
    Account(Account),
    /// A user: signed by an account (or one of its signing keys), holds permissions.
    User(User),
}

impl Nats {
    /// The claim format version this object says it follows.
    pub fn version(&self) -> u32 {
        match self {
            Nats::Operator(operator) => operator.version,
            Nats::Account(account) => account.version,
            Nats::User(user) => user.version,
        }
    }

    /// The claim type as it appears on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Nats::Operator(_) => "operator",
            Nats::Account(_) => "account",
            Nats::User(_) => "user",
        }
    }
}

/// Operator claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    /// Other operator keys that may sign accounts on the operator's behalf.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signing_keys: Vec<String>,
    /// The public key of the account the broker uses for its own `$SYS` traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_account: Option<String>,
    /// Always [`CLAIM_VERSION`] when written by tutti.
    #[serde(default)]
    pub version: u32,
}

/// Account claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Connection, message and JetStream limits.
    #[serde(default)]
    pub limits: AccountLimits,
    /// Account keys that may sign users on the account's behalf. Only plain keys: the
    /// reference's scoped signing keys (objects in this list) do not decode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signing_keys: Vec<String>,
    /// User public key → unix seconds: user JWTs issued at or before that time are refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub revocations: BTreeMap<String, i64>,
    /// Permissions of users whose JWT names none.
    #[serde(default)]
    pub default_permissions: Permissions,
    /// Always [`CLAIM_VERSION`] when written by tutti.
    #[serde(default)]
    pub version: u32,
}

/// An account's limits; [`NO_LIMIT`] is unlimited, 0 is none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountLimits {
    /// Subscriptions across the account.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub subs: i64,
    /// Bytes in flight.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub data: i64,
    /// Largest message payload.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub payload: i64,
    /// Imports from other accounts.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub imports: i64,
    /// Exports to other accounts.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub exports: i64,
    /// Whether exports may use wildcards.
    #[serde(default, skip_serializing_if = "is_false")]
    pub wildcards: bool,
    /// Refuse user JWTs marked as bearer tokens.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disallow_bearer: bool,
    /// Client connections.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub conn: i64,
    /// Leaf node connections.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub leaf: i64,
    /// JetStream memory storage in bytes; with `disk_storage`, 0 disables JetStream.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mem_storage: i64,
    /// JetStream file storage in bytes; with `mem_storage`, 0 disables JetStream.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub disk_storage: i64,
    /// JetStream streams.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub streams: i64,
    /// JetStream consumers.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub consumer: i64,
}

impl AccountLimits {
    /// Everything unlimited; JetStream enabled and unlimited, or disabled.
    pub fn unlimited(jetstream: bool) -> AccountLimits {
        let jetstream_limit = if jetstream { NO_LIMIT } else { 0 };
        AccountLimits {
            subs: NO_LIMIT,
            data: NO_LIMIT,
            payload: NO_LIMIT,
            imports: NO_LIMIT,
            exports: NO_LIMIT,
            wildcards: true,
            disallow_bearer: false,
            conn: NO_LIMIT,
            leaf: NO_LIMIT,
            mem_storage: jetstream_limit,
            disk_storage: jetstream_limit,
            streams: jetstream_limit,
            consumer: jetstream_limit,
        }
    }
}

/// Publish, subscribe and response permissions (account defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    /// Subjects that may be published to.
    #[serde(rename = "pub", default)]
    pub publish: Permission,
    /// Subjects that may be subscribed to.
    #[serde(rename = "sub", default)]
    pub subscribe: Permission,
    /// Replies allowed to the reply subject of received requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resp: Option<ResponsePermission>,
}

/// Allow and deny lists of subjects (wildcards allowed). Both empty: everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    /// Subjects allowed; empty allows all that `deny` does not name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Subjects denied, winning over `allow`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

impl Permission {
    /// Whether neither list names anything.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

/// The nats-server `allow_responses` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponsePermission {
    /// Replies allowed per request; 0 lets the broker pick its default (1).
    pub max: i64,
    /// How long the permission lasts, in nanoseconds (a Go `time.Duration`); 0 lets the
    /// broker pick its default (2 minutes).
    pub ttl: i64,
}

/// User claims.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Subjects the user may publish to.
    #[serde(rename = "pub", default, skip_serializing_if = "Permission::is_empty")]
    pub publish: Permission,
    /// Subjects the user may subscribe to.
    #[serde(rename = "sub", default, skip_serializing_if = "Permission::is_empty")]
    pub subscribe: Permission,
    /// Replies allowed to the reply subject of received requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resp: Option<ResponsePermission>,
    /// Subscriptions on one connection; [`NO_LIMIT`] for none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub subs: i64,
    /// Bytes in flight; [`NO_LIMIT`] for none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub data: i64,
    /// Largest payload; [`NO_LIMIT`] for none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub payload: i64,
    /// The JWT alone authenticates (no nonce signature with the user's seed).
    #[serde(default, skip_serializing_if = "is_false")]
    pub bearer_token: bool,
    /// The account identity key, when the issuer is one of the account's signing keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_account: Option<String>,
    /// Always [`CLAIM_VERSION`] when written by tutti.
    #[serde(default)]
    pub version: u32,
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

fn is_false(value: &bool) -> bool {
    !*value
}
