//! Who is making a request: the seam where authentication will plug in.
//!
//! Until accounts, roles and tokens exist (issue 7), every request is made by one local
//! anonymous operator, which is why the API must only listen on localhost. Handlers take an
//! [`Actor`] as an extractor and pass it to the auditor; replacing this extractor with one
//! that checks a session or token is the only change the handlers will need.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

/// The role of an actor. Only `Admin` exists until roles arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// May do everything.
    Admin,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Admin => "admin",
        })
    }
}

/// The principal behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Account or token name; `local-operator` until authentication exists.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The client address, when known.
    pub source: Option<String>,
}

/// The name every request carries until authentication exists.
pub const LOCAL_OPERATOR: &str = "local-operator";

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let source = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip().to_string());
        Ok(Actor::local(source))
    }
}

impl Actor {
    /// The local operator, as every request is until authentication exists.
    pub fn local(source: Option<String>) -> Actor {
        Actor {
            name: LOCAL_OPERATOR.to_string(),
            role: Role::Admin,
            source,
        }
    }
}
