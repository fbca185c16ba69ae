//! The URL operators and agents reach this server at, for commands and scripts the server
//! writes for them (the install script, the enrollment command on the settings page).
//!
//! `public_url` wins when configured. Otherwise the request says it: its `Host` (only when
//! it holds what a host name or address can, since it lands in shell commands) and the
//! scheme this server speaks, or `https` when a TLS-terminating proxy says so in
//! `X-Forwarded-Proto`.

use axum::http::{HeaderMap, header};

use crate::config::ServerConfig;

/// The base URL for a request; `None` when neither `public_url` nor a usable `Host` says.
pub(crate) fn base_url(config: &ServerConfig, headers: &HeaderMap) -> Option<String> {
    if !config.public_url.is_empty() {
        return Some(config.public_url.trim_end_matches('/').to_string());
    }
    let host = request_host(headers)?;
    Some(format!(
        "{}://{host}",
        scheme(headers, config.serves_https())
    ))
}

/// The request's `Host`, when it is a plausible host name or address with a port.
pub(crate) fn request_host(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
}

/// `https` when this server speaks it or a proxy in front of it says so, else `http`.
pub(crate) fn scheme(headers: &HeaderMap, serves_https: bool) -> &'static str {
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok());
    match forwarded {
        _ if serves_https => "https",
        Some("https") => "https",
        _ => "http",
    }
}
