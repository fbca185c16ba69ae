//! Authentication and authorisation.
//!
//! Who is calling: a dashboard session (a cookie) or an API token (a bearer header),
//! resolved by the middleware in `guard.rs` into an [`Actor`](crate::actor::Actor). What
//! they may do: the one table in `policy.rs`. How they sign in: `signin.rs` (passwords,
//! TOTP, recovery codes, throttling, the first admin). The primitives are in their own
//! modules: `password.rs` (argon2id), `totp.rs` (RFC 6238), `secret.rs` (random secrets
//! and their stored hashes), `throttle.rs` (lockouts).
//!
//! Secrets never leave this module in clear except once, in the response that creates
//! them: the database holds sha256 hashes of session ids, API tokens and recovery codes,
//! and argon2id hashes of passwords; no secret is logged or put in an audit record.

pub mod guard;
pub mod password;
pub mod policy;
pub mod secret;
pub mod signin;
pub mod throttle;
pub mod totp;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::HeaderValue;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tutti_proto::digest::hex_lower;

use crate::config::AuthConfig;
use crate::error::{Error, Result};
use throttle::{Limit, Throttle};

/// The cookie that carries a dashboard session.
pub const SESSION_COOKIE: &str = "tutti_session";
/// The header a browser session sends its CSRF token in on every state-changing request.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The file (in the data directory, mode 0600) holding the first admin's password.
pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";
/// The account created at first start.
pub const FIRST_ADMIN: &str = "admin";

/// Sign-in state shared by every request: keys, throttle, TOTP replay guard.
pub struct Auth {
    config: AuthConfig,
    session_key: [u8; 32],
    throttle: Throttle,
    totp_steps: Mutex<HashMap<String, u64>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("config", &self.config)
            .field("session_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Sign-in state for `config`. The cookie and CSRF key is derived from the server's
    /// signing key, so a cookie minted by another server (another key) is refused before
    /// the database is asked, and it survives restarts like the key does.
    /// `session_secret` is the server's session key (`session.key` in the data directory),
    /// deliberately not the command-signing key: rotating or restoring one must not touch
    /// the other, and a leaked cookie MAC says nothing about the key agents obey.
    pub fn new(config: &AuthConfig, session_secret: &[u8]) -> Auth {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(session_secret).expect("HMAC accepts any key length");
        mac.update(b"tutti session key v1");
        let session_key = mac.finalize().into_bytes().into();
        let limit = |max_failures| Limit {
            max_failures,
            window: Duration::from_secs(config.failure_window_secs),
            lockout: Duration::from_secs(config.lockout_secs),
        };
        Auth {
            config: config.clone(),
            session_key,
            throttle: Throttle::new(
                limit(config.max_failures_per_account),
                limit(config.max_failures_per_source),
            ),
            totp_steps: Mutex::new(HashMap::new()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// The login throttle.
    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    fn mac(&self, session_id: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.session_key).expect("HMAC accepts any key length");
        mac.update(b"cookie\0");
        mac.update(session_id.as_bytes());
        hex_lower(&mac.finalize().into_bytes()[..16])
    }

    /// A new session: the cookie value to send and the hash to store.
    pub fn new_session(&self) -> (String, String) {
        let session_id = secret::random_hex(32);
        let cookie = format!("{session_id}.{}", self.mac(&session_id));
        (cookie, secret::hash(&session_id))
    }

    /// The stored hash of the session a cookie value names, if the cookie was minted with
    /// this server's key.
    pub fn session_hash(&self, cookie: &str) -> Option<String> {
        let (session_id, mac) = cookie.trim().split_once('.')?;
        secret::equal_in_constant_time(mac, &self.mac(session_id)).then(|| secret::hash(session_id))
    }

    /// The CSRF token of a session.
    pub fn csrf_token(&self, session_hash: &str) -> String {
        secret::csrf_token(&self.session_key, session_hash)
    }

    /// The `Set-Cookie` value carrying a new session.
    pub fn session_cookie(&self, value: &str) -> HeaderValue {
        let secure = if self.config.secure_cookies {
            "; Secure"
        } else {
            ""
        };
        let text = format!(
            "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            self.config.session_ttl_secs
        );
        HeaderValue::from_str(&text).expect("cookie text is ASCII")
    }

    /// The `Set-Cookie` value that removes the session cookie.
    pub fn cleared_cookie(&self) -> HeaderValue {
        let secure = if self.config.secure_cookies {
            "; Secure"
        } else {
            ""
        };
        let text =
            format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}");
        HeaderValue::from_str(&text).expect("cookie text is ASCII")
    }

    /// Checks a TOTP code for `username`, refusing a step already used by that account.
    pub fn check_totp(&self, username: &str, secret: &str, code: &str, unix_secs: u64) -> bool {
        let mut steps = self
            .totp_steps
            .lock()
            .unwrap_or_else(|err| err.into_inner());
        let last = steps.get(username).copied();
        match totp::verify(secret, code, unix_secs, last) {
            Some(step) => {
                steps.insert(username.to_string(), step);
                true
            }
            None => false,
        }
    }
}

/// Validates and normalises an account name: 1–64 of `a-z 0-9 . _ -`, lowercased.
pub fn parse_username(text: &str) -> Result<String> {
    let name = text.trim().to_lowercase();
    if name.is_empty() || name.len() > 64 {
        return Err(Error::bad_request(
            "username must be 1 to 64 characters long",
        ));
    }
    if let Some((position, bad)) = name
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(Error::bad_request(format!(
            "username: character {bad:?} at position {} is not allowed (use a-z, 0-9, '.', '_', '-')",
            position + 1
        )));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(seed: u8) -> Auth {
        Auth::new(&AuthConfig::default(), &[seed; 32])
    }

    #[test]
    fn a_cookie_from_another_server_key_names_no_session() {
        let (cookie, hash) = auth(1).new_session();
        assert_eq!(auth(1).session_hash(&cookie), Some(hash));
        assert_eq!(auth(2).session_hash(&cookie), None);
        let (id, _) = cookie.split_once('.').unwrap();
        assert_eq!(
            auth(1).session_hash(&format!("{id}.{}", "0".repeat(32))),
            None
        );
        assert_eq!(auth(1).session_hash(id), None);
    }

    #[test]
    fn cookies_carry_the_required_attributes() {
        let auth = auth(1);
        let cookie = auth.session_cookie("v").to_str().unwrap().to_string();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        assert!(!cookie.contains("Secure"));
        let config = AuthConfig {
            secure_cookies: true,
            ..AuthConfig::default()
        };
        let secure = Auth::new(&config, &[1; 32]);
        assert!(
            secure
                .session_cookie("v")
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
    }

    #[test]
    fn usernames_are_normalised_and_checked() {
        assert_eq!(parse_username(" Alice.Smith ").unwrap(), "alice.smith");
        let err = parse_username("al ice").unwrap_err().to_string();
        assert!(err.contains("' ' at position 3"), "{err}");
        assert!(parse_username("").is_err());
        assert!(parse_username(&"a".repeat(65)).is_err());
    }
}
