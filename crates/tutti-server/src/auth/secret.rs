//! Random secrets (session ids, API tokens, recovery codes, CSRF tokens) and the one way
//! they are stored: the sha256 of the secret, so a copy of the database grants nothing.

use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha256;
use tutti_proto::digest::{hex_lower, sha256_hex};

/// The prefix of every API token, so secret scanners and people recognise one.
pub const API_TOKEN_PREFIX: &str = "tutti_";

/// `n_bytes` of OS randomness in lowercase hex.
pub fn random_hex(n_bytes: usize) -> String {
    let mut bytes = vec![0u8; n_bytes];
    OsRng.fill_bytes(&mut bytes);
    hex_lower(&bytes)
}

/// The stored form of a secret.
pub fn hash(secret: &str) -> String {
    sha256_hex(secret.trim().as_bytes())
}

/// A new API token secret: the prefix, then 32 random bytes in hex.
pub fn new_api_token() -> String {
    format!("{API_TOKEN_PREFIX}{}", random_hex(32))
}

/// A recovery code people can type: ten lowercase hex characters in two groups.
pub fn new_recovery_code() -> String {
    let raw = random_hex(5);
    format!("{}-{}", &raw[..5], &raw[5..])
}

/// The stored form of a recovery code (dashes and case do not matter when typed).
pub fn hash_recovery_code(code: &str) -> String {
    let normalised: String = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    hash(&normalised)
}

/// The CSRF token of a session: an HMAC of the session's hash under a server key, so it
/// needs no storage and a token of one session is worthless for another.
pub fn csrf_token(key: &[u8], session_hash: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(b"tutti csrf v1\0");
    mac.update(session_hash.as_bytes());
    hex_lower(&mac.finalize().into_bytes())
}

/// Compares two secrets in time independent of where they differ.
pub fn equal_in_constant_time(a: &str, b: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_fresh_and_hashes_stable() {
        let token = new_api_token();
        assert!(
            token.starts_with("tutti_") && token.len() == 6 + 64,
            "{token}"
        );
        assert_ne!(token, new_api_token());
        assert_eq!(hash(&token), hash(&format!(" {token}\n")));
        let code = new_recovery_code();
        assert_eq!(code.len(), 11);
        assert_eq!(
            hash_recovery_code(&code),
            hash_recovery_code(&code.to_uppercase().replace('-', ""))
        );
    }

    #[test]
    fn csrf_tokens_depend_on_key_and_session() {
        let a = csrf_token(b"key-1", "session-a");
        assert_eq!(a, csrf_token(b"key-1", "session-a"));
        assert_ne!(a, csrf_token(b"key-1", "session-b"));
        assert_ne!(a, csrf_token(b"key-2", "session-a"));
        assert!(equal_in_constant_time(&a, &a.clone()));
        assert!(!equal_in_constant_time(&a, &a[1..]));
        assert!(!equal_in_constant_time("abc", "abd"));
    }
}
