//! Encoding and verifying NATS JWT v2 tokens: `base64url(header).base64url(claims).sig`,
//! where `sig` is the issuer nkey's ed25519 signature over the first two parts.
//!
//! [`decode`] trusts nothing it has not checked: the header must name the v2 algorithm,
//! the signature must verify with the `iss` key found in the body, the issuer and subject
//! keys must be of the kinds the claim type requires (an operator signs operators and
//! accounts, an account signs users), and an `exp` in the past is refused (`nbf` is not
//! read: tutti never sets it). The real judge is nats-server; `tests/operator_mode.rs`
//! checks that it accepts what [`encode`] writes.

use std::time::{SystemTime, UNIX_EPOCH};

use data_encoding::{BASE32_NOPAD, BASE64URL_NOPAD};
use nkeys::{KeyPair, KeyPairType};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512_256};

use super::claims::{CLAIM_VERSION, Claims, Nats};

/// The only signature algorithm tutti writes and accepts (`ed25519` alone is v1).
pub const ALGORITHM: &str = "ed25519-nkey";

const TOKEN_TYPE: &str = "JWT";

/// Why a token could not be encoded or was refused on decode.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts, or a part is not the JSON it should be.
    #[error("malformed JWT: {0}")]
    Malformed(String),
    /// The header names another type or algorithm.
    #[error("unsupported JWT header: {0}")]
    UnsupportedHeader(String),
    /// The signature does not verify with the issuer key named in the claims.
    #[error("JWT signature does not verify with its issuer key")]
    BadSignature,
    /// A key is not a valid nkey, or not of the kind this claim type needs.
    #[error("invalid key in JWT: {0}")]
    InvalidKey(String),
    /// The claims expired.
    #[error("JWT expired at {exp} (now {now})")]
    Expired { exp: i64, now: i64 },
}

/// Signs `claims` with `issuer`: sets `iss` from the key, `iat` to now when it is 0, and
/// the claim id `jti`. Fails when the issuer has no seed or is the wrong kind of key.
pub fn encode(mut claims: Claims, issuer: &KeyPair) -> Result<String, JwtError> {
    claims.iss = issuer.public_key();
    if claims.iat == 0 {
        claims.iat = now_unix();
    }
    check_keys(&claims)?;
    claims.jti = claim_id(&claims)?;
    let header = Header {
        typ: TOKEN_TYPE.to_string(),
        alg: ALGORITHM.to_string(),
    };
    let signing_input = format!("{}.{}", to_base64_json(&header)?, to_base64_json(&claims)?);
    let signature = issuer
        .sign(signing_input.as_bytes())
        .map_err(|err| JwtError::InvalidKey(format!("cannot sign with issuer key: {err}")))?;
    Ok(format!(
        "{signing_input}.{}",
        BASE64URL_NOPAD.encode(&signature)
    ))
}

/// Verifies and decodes a token, refusing it if it expired by the clock now.
pub fn decode(token: &str) -> Result<Claims, JwtError> {
    decode_at(token, now_unix())
}

/// Verifies and decodes a token as of `now` (unix seconds).
pub fn decode_at(token: &str, now: i64) -> Result<Claims, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(body), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("expected three parts".to_string()));
    };
    check_header(&from_base64_json::<Header>(header, "header")?)?;
    let claims: Claims = from_base64_json(body, "claims")?;
    let signature = from_base64(signature, "signature")?;
    let issuer = KeyPair::from_public_key(&claims.iss)
        .map_err(|err| JwtError::InvalidKey(format!("issuer {:?}: {err}", claims.iss)))?;
    // The signed bytes are the token's own first two parts, not a re-serialization.
    let signing_input = &token[..header.len() + 1 + body.len()];
    issuer
        .verify(signing_input.as_bytes(), &signature)
        .map_err(|_| JwtError::BadSignature)?;
    check_claims(&claims, now)?;
    Ok(claims)
}

/// The current time in unix seconds.
pub fn now_unix() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX)
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    typ: String,
    alg: String,
}

/// The registered claims the reference hashes for `jti`, in its field order (`aud` and
/// `nbf` are never set by tutti). The id is opaque to the broker; following the reference
/// keeps it meaningful to NATS tooling.
#[derive(Serialize)]
struct ClaimIdInput<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    iat: i64,
    iss: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    sub: &'a str,
}

fn claim_id(claims: &Claims) -> Result<String, JwtError> {
    let input = ClaimIdInput {
        exp: claims.exp,
        iat: claims.iat,
        iss: &claims.iss,
        name: &claims.name,
        sub: &claims.sub,
    };
    let json = serde_json::to_vec(&input).map_err(|err| JwtError::Malformed(err.to_string()))?;
    Ok(BASE32_NOPAD.encode(&Sha512_256::digest(json)))
}

fn check_header(header: &Header) -> Result<(), JwtError> {
    if !header.typ.eq_ignore_ascii_case(TOKEN_TYPE) {
        return Err(JwtError::UnsupportedHeader(format!(
            "type {:?}",
            header.typ
        )));
    }
    if !header.alg.eq_ignore_ascii_case(ALGORITHM) {
        return Err(JwtError::UnsupportedHeader(format!(
            "algorithm {:?}",
            header.alg
        )));
    }
    Ok(())
}

fn check_claims(claims: &Claims, now: i64) -> Result<(), JwtError> {
    let version = claims.nats.version();
    if version != CLAIM_VERSION {
        return Err(JwtError::Malformed(format!(
            "claim version {version}, only {CLAIM_VERSION} is supported"
        )));
    }
    check_keys(claims)?;
    match claims.exp {
        Some(exp) if exp > 0 && now > exp => Err(JwtError::Expired { exp, now }),
        _ => Ok(()),
    }
}

/// The issuer and subject must be of the kinds the claim type needs; this is what stops
/// an account key from vouching for another account, or a user key from issuing users.
fn check_keys(claims: &Claims) -> Result<(), JwtError> {
    let (issuer_kind, subject_kind) = match claims.nats {
        Nats::Operator(_) => (KeyPairType::Operator, KeyPairType::Operator),
        Nats::Account(_) => (KeyPairType::Operator, KeyPairType::Account),
        Nats::User(_) => (KeyPairType::Account, KeyPairType::User),
    };
    check_key_kind(&claims.iss, issuer_kind, claims.nats.kind(), "issuer")?;
    check_key_kind(&claims.sub, subject_kind, claims.nats.kind(), "subject")
}

fn check_key_kind(
    key: &str,
    expected: KeyPairType,
    claim_kind: &str,
    role: &str,
) -> Result<(), JwtError> {
    let actual = KeyPair::from_public_key(key)
        .map_err(|err| JwtError::InvalidKey(format!("{role} {key:?}: {err}")))?
        .key_pair_type();
    if actual != expected {
        return Err(JwtError::InvalidKey(format!(
            "{role} of {claim_kind} claims must be a {expected:?} key, not {actual:?}"
        )));
    }
    Ok(())
}

fn to_base64_json<T: Serialize>(value: &T) -> Result<String, JwtError> {
    let json = serde_json::to_vec(value).map_err(|err| JwtError::Malformed(err.to_string()))?;
    Ok(BASE64URL_NOPAD.encode(&json))
}

fn from_base64_json<T: for<'de> Deserialize<'de>>(part: &str, what: &str) -> Result<T, JwtError> {
    let bytes = from_base64(part, what)?;
    serde_json::from_slice(&bytes).map_err(|err| JwtError::Malformed(format!("{what}: {err}")))
}

fn from_base64(part: &str, what: &str) -> Result<Vec<u8>, JwtError> {
    BASE64URL_NOPAD
        .decode(part.as_bytes())
        .map_err(|err| JwtError::Malformed(format!("{what}: {err}")))
}
