//! Per-agent broker identity with NATS decentralized auth: operator, account and user JWTs
//! signed with nkeys, the keys tutti keeps for its broker ([`BrokerAuth`]), the broker
//! config for operator mode, creds files, and pushing account updates (revocations) to a
//! running broker.
//!
//! The chain of trust: the broker config names the operator JWT; the operator signs the
//! system account and the tutti account; the tutti account's signing key signs one user JWT
//! per agent (and one for the server), each with its own publish/subscribe permissions. An
//! agent holds its own user seed; a revoked agent's key is listed in the account JWT.
//!
//! Why the claims are written by hand: no maintained Rust crate covers what tutti needs.
//! `nats-io-jwt` 0.1.1 no longer compiles with current serde (it uses serde's private
//! internals); `nats-jwt` 0.3.0 has no operator claims, no JetStream account limits, no
//! revocations and no `resp` (allow_responses) user permission. The format is small, so
//! this module writes it with the maintained `nkeys` crate for keys and signatures and
//! `data-encoding`, `sha2` and `serde_json` for the rest, following the Go reference
//! (`nats-io/jwt/v2`). nats-server is the judge: `tests/operator_mode.rs` runs it.
//!
//! Neighbours: [`crate::Auth::Creds`] connects with the creds text made here;
//! `tutti_testkit::TestNats` runs its broker in operator mode with a [`BrokerAuth`].

pub mod claims;
mod creds;
pub mod jwt;
mod keys;
mod mint;
mod server_config;
mod update;

pub use creds::{CredsError, creds, creds_for_key_pair};
pub use jwt::{JwtError, decode, encode};
pub use keys::{
    ACCOUNT_SEED_FILE, ACCOUNT_SIGNING_SEED_FILE, BrokerAuth, KeyStoreError, OPERATOR_SEED_FILE,
    SYSTEM_ACCOUNT_SEED_FILE,
};
pub use mint::{UserLimits, UserPermissions};
pub use update::{CLAIM_UPDATE_SUBJECT, ClaimUpdateError, push_account_jwt};
