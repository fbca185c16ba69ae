//! The NATS creds text: a user JWT and the user's nkey seed in decorated blocks, as `nsc`
//! writes it and as async-nats `ConnectOptions::with_credentials` (and [`crate::Auth::Creds`])
//! reads it.
//!
//! An agent generates its user key pair itself and sends only the public key; the server
//! answers with a user JWT, and [`creds_for_key_pair`] joins the two locally after checking
//! that the JWT really is about that key, so the seed never crosses the network.

use nkeys::KeyPair;

use super::claims::Nats;
use super::jwt::{self, JwtError};

/// Why a user JWT and a key pair could not be joined into creds.
#[derive(Debug, thiserror::Error)]
pub enum CredsError {
    /// The JWT does not verify or decode.
    #[error(transparent)]
    Jwt(#[from] JwtError),
    /// The JWT is not a user JWT.
    #[error("expected a user JWT, got {kind} claims")]
    NotUser { kind: &'static str },
    /// The JWT is about another key than the one held locally.
    #[error("the user JWT is for {jwt_subject}, not for the local key {local_key}")]
    WrongSubject {
        jwt_subject: String,
        local_key: String,
    },
    /// The local key pair has no seed.
    #[error("the local key pair has no seed")]
    NoSeed,
}

/// The creds text for a user JWT and the user's seed (`SU...`). The dashes differ between
/// the opening (five) and closing (six) lines; that is the format, not a typo.
pub fn creds(user_jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}

/// The creds text for a user JWT issued for a locally held key pair, after checking that
/// the JWT verifies, is a user JWT and names this key as its subject.
pub fn creds_for_key_pair(user_jwt: &str, user_key: &KeyPair) -> Result<String, CredsError> {
    let claims = jwt::decode(user_jwt)?;
    if !matches!(claims.nats, Nats::User(_)) {
        return Err(CredsError::NotUser {
            kind: claims.nats.kind(),
        });
    }
    let local_key = user_key.public_key();
    if claims.sub != local_key {
        return Err(CredsError::WrongSubject {
            jwt_subject: claims.sub,
            local_key,
        });
    }
    let seed = user_key.seed().map_err(|_| CredsError::NoSeed)?;
    Ok(creds(user_jwt, &seed))
}
