//! Who is making a request: the [`Actor`] the authentication middleware (`auth/guard.rs`)
//! attaches to every request it lets through, and the [`ClientAddr`] of public routes.
//!
//! Handlers take an `Actor` as an extractor and pass it to the auditor. A handler that
//! takes one on a route the middleware does not authenticate gets a 401, never a default
//! principal: there is no anonymous operator.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
pub(crate) use tutti_proto::role::Role;

use crate::config::IpNet;
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
    /// The address of a request: the one the router's client-address layer resolved
    /// (trusted proxies applied), else the peer the listener recorded.
    pub fn of(parts: &Parts) -> ClientAddr {
        if let Some(resolved) = parts.extensions.get::<ClientAddr>() {
            return resolved.clone();
        }
        ClientAddr(peer(parts).map(|ip| ip.to_string()))
    }

    /// The client behind trusted reverse proxies: when the peer is one of `trusted`, the
    /// last address of `X-Forwarded-For` that is not itself trusted (every proxy appends
    /// the address it saw, so earlier entries are the client's to forge); otherwise the
    /// peer.
    pub fn resolve(parts: &Parts, trusted: &[IpNet]) -> ClientAddr {
        let Some(peer) = peer(parts) else {
            return ClientAddr(None);
        };
        let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
        if !is_trusted(peer) {
            return ClientAddr(Some(peer.to_string()));
        }
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
            .collect::<Vec<_>>();
        let client = forwarded
            .into_iter()
            .rev()
            .find(|ip| !is_trusted(*ip))
            .unwrap_or(peer);
        ClientAddr(Some(client.to_string()))
    }
}

fn peer(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr::of(parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(peer: &str, forwarded: Option<&str>) -> Parts {
        let mut builder = axum::http::Request::builder();
        if let Some(forwarded) = forwarded {
            builder = builder.header("x-forwarded-for", forwarded);
        }
        let (mut parts, ()) = builder.body(()).unwrap().into_parts();
        let address: SocketAddr = format!("{peer}:1234").parse().unwrap();
        parts.extensions.insert(ConnectInfo(address));
        parts
    }

    #[test]
    fn forwarded_addresses_count_only_behind_trusted_proxies() {
        let trusted = [IpNet::parse("10.0.0.0/8").unwrap()];
        let check = |peer: &str, forwarded: Option<&str>, expected: &str| {
            let resolved = ClientAddr::resolve(&parts(peer, forwarded), &trusted);
            assert_eq!(
                resolved.0.as_deref(),
                Some(expected),
                "{peer} {forwarded:?}"
            );
        };
        check("203.0.113.9", None, "203.0.113.9");
        // A client talking directly cannot pick its address by sending the header.
        check("203.0.113.9", Some("198.51.100.1"), "203.0.113.9");
        check("10.0.0.2", Some("198.51.100.1"), "198.51.100.1");
        // The forged first entry is ignored; the proxy's own append counts.
        check(
            "10.0.0.2",
            Some("1.2.3.4, 198.51.100.1, 10.0.0.3"),
            "198.51.100.1",
        );
        check("10.0.0.2", Some("not an address"), "10.0.0.2");
    }
}
