//! Who is making a request: the [`Actor`] the authentication middleware (`auth/guard.rs`)
//! attaches to every request it lets through, and the [`ClientAddr`] of public routes.
//!
//! Handlers take an `Actor` as an extractor and pass it to the auditor. A handler that
//! takes one on a route the middleware does not authenticate gets a 401, never a default
//! principal: there is no anonymous operator.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
pub use tutti_proto::role::Role;

use crate::error::Error;

/// How the actor proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A dashboard session; the sha256 of its cookie secret.
    Session {
        /// Identifies the session row (never the cookie value itself).
        session_hash: String,
    },
    /// An API token.
    Token {
        /// The token's public id.
        token_id: String,
    },
    /// The server itself (the scheduler, in-process tools).
    System,
}

/// The principal behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The account name, or `account/token-name` for an API token.
    pub name: String,
    /// The account the actor acts for.
    pub account: String,
    /// Its effective role (a token's role never exceeds its owner's current role).
    pub role: Role,
    /// The client address, when known.
    pub source: Option<String>,
    /// How it signed in.
    pub credential: Credential,
}

impl Actor {
    /// The server acting on its own (schedules, start-up tasks), with full rights.
    pub fn system(name: &str) -> Actor {
        Actor {
            name: name.to_string(),
            account: name.to_string(),
            role: Role::Admin,
            source: None,
            credential: Credential::System,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Actor>()
            .cloned()
            .ok_or_else(|| Error::Unauthorized("sign in first".into()))
    }
}

/// The client's IP address, for public routes (login, enrollment) and audit records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddr(pub Option<String>);

impl ClientAddr {
    /// The address of a request, when the listener recorded it.
    pub fn of(parts: &Parts) -> ClientAddr {
        ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip().to_string()),
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr::of(parts))
    }
}
