//! Enrollment tokens: one-time (or n-time) secrets an agent trades for its identity.
//!
//! The secret is 32 random bytes in hex, shown once at creation; the store keeps only its
//! sha256, so a stolen database enrolls nothing. Each token has a public id for lists and
//! revocation, an expiry, a use count and the groups an agent enrolled with it joins
//! (written to the store and to `tutti_groups` at enrollment, see `enroll.rs`).

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use tutti_proto::GroupName;
use tutti_store::NewEnrollmentToken;

use crate::actor::Actor;
use crate::app::App;
pub use crate::auth::secret::hash;
use crate::auth::secret::random_hex;
use crate::error::{Error, Result};
pub use tutti_api::tokens::CreatedToken;

/// The longest a token may live: 30 days.
pub const MAX_TTL_SECS: u64 = 30 * 24 * 3600;
/// The most enrollments one token may allow.
pub const MAX_USES: u32 = 100_000;
/// The most groups one token may assign.
pub const MAX_TOKEN_GROUPS: usize = 64;

/// What `POST /api/v1/enrollment-tokens` asks for.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// A label for operators.
    #[serde(default)]
    pub name: String,
    /// Seconds until it expires (default one hour, at most 30 days).
    #[serde(default = "default_ttl")]
    pub expires_in_secs: u64,
    /// Enrollments it allows (default 1).
    #[serde(default = "default_uses")]
    pub uses: u32,
    /// Groups every agent enrolled with it joins, in configuration-layer order (default
    /// none; missing groups are created at enrollment, duplicates are dropped).
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub groups: Vec<GroupName>,
}

impl Default for TokenRequest {
    fn default() -> Self {
        TokenRequest {
            name: String::new(),
            expires_in_secs: default_ttl(),
            uses: default_uses(),
            groups: Vec::new(),
        }
    }
}

fn default_ttl() -> u64 {
    3600
}

fn default_uses() -> u32 {
    1
}

/// Creates a token and stores its hash.
pub async fn create(app: &App, request: TokenRequest, actor: &Actor) -> Result<CreatedToken> {
    if request.expires_in_secs == 0 || request.expires_in_secs > MAX_TTL_SECS {
        return Err(Error::bad_request(format!(
            "expires_in_secs must be between 1 and {MAX_TTL_SECS}"
        )));
    }
    if request.uses == 0 || request.uses > MAX_USES {
        return Err(Error::bad_request(format!(
            "uses must be between 1 and {MAX_USES}"
        )));
    }
    let groups = dedup(request.groups);
    if groups.len() > MAX_TOKEN_GROUPS {
        return Err(Error::bad_request(format!(
            "groups: at most {MAX_TOKEN_GROUPS} groups per token"
        )));
    }
    let now = Timestamp::now();
    let ttl = SignedDuration::from_secs(i64::try_from(request.expires_in_secs).unwrap_or(i64::MAX));
    let expires_at = now
        .checked_add(ttl)
        .map_err(|err| Error::internal("token expiry", err))?;
    let token_id = random_hex(8);
    let token = random_hex(32);
    let new_token = NewEnrollmentToken {
        token_id: token_id.clone(),
        token_hash: hash(&token),
        name: request.name,
        created_at: now,
        created_by: actor.name.clone(),
        expires_at,
        uses: request.uses,
        groups: groups.clone(),
    };
    app.store.create_enrollment_token(new_token).await?;
    Ok(CreatedToken {
        token_id,
        token,
        expires_at,
        uses: request.uses,
        groups,
        server_key_id: app.keys.current().key_id(),
        install_script: app.config.enrollment.agent_binary_dir.is_some(),
        public_url: Some(app.config.public_url.clone()).filter(|url| !url.is_empty()),
    })
}

/// Drops repeated groups, keeping the first position of each.
fn dedup(groups: Vec<GroupName>) -> Vec<GroupName> {
    let mut seen = std::collections::BTreeSet::new();
    groups
        .into_iter()
        .filter(|group| seen.insert(group.clone()))
        .collect()
}
