//! Passwords: argon2id hashes in PHC string format, the password policy, and generated
//! passwords for the first admin and for resets.
//!
//! Hashing costs about a few tens of milliseconds by design, so it runs on the blocking
//! pool. A dummy hash is verified for unknown users so that "no such user" and "wrong
//! password" take the same time as well as giving the same answer.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::Rng;
use rand::rngs::OsRng;

use crate::error::{Error, Result};

/// Shortest password accepted.
pub const MIN_LENGTH: usize = 12;
/// Longest password accepted (argon2 accepts more; a bound keeps hashing cheap to refuse).
pub const MAX_LENGTH: usize = 1024;

/// argon2id with OWASP's second recommended profile (19 MiB, 2 passes, 1 lane).
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("constant argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hash of a random password nobody knows, verified when the user does not exist.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_blocking(&generate()).expect("hashing a generated password"));

/// Checks the policy: length bounds, not all one character.
pub fn check_policy(password: &str) -> Result<()> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(Error::bad_request(format!(
            "the password is too short: use at least {MIN_LENGTH} characters"
        )));
    }
    if length > MAX_LENGTH {
        return Err(Error::bad_request(format!(
            "the password is too long: use at most {MAX_LENGTH} characters"
        )));
    }
    let mut chars = password.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return Err(Error::bad_request(
            "the password repeats one character: choose a real password",
        ));
    }
    Ok(())
}

/// Hashes a password with a fresh salt (blocking; prefer [`hash`]).
pub fn hash_blocking(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| Error::internal("cannot hash a password", anyhow::anyhow!("{err}")))
}

/// Hashes a password on the blocking pool.
pub async fn hash(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(|err| Error::internal("password hashing task failed", err))?
}

/// Whether `password` matches the PHC string `stored`; `None` verifies against a dummy
/// hash and is always false. A malformed stored hash is false (and logged), never a panic.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || verify_blocking(&password, stored.as_deref()))
        .await
        .unwrap_or(false)
}

fn verify_blocking(password: &str, stored: Option<&str>) -> bool {
    let known = stored.is_some();
    let stored = stored.unwrap_or(DUMMY_HASH.as_str());
    let parsed = match PasswordHash::new(stored) {
        Ok(parsed) => parsed,
        Err(err) => {
            tracing::error!(error = %err, "A stored password hash is malformed.");
            return false;
        }
    };
    let matches = argon2()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    known && matches
}

/// A random 20-character password from an alphabet without look-alikes.
pub fn generate() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = OsRng;
    (0..20)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_only_the_right_password() {
        let stored = hash("correct horse battery".into()).await.unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(verify("correct horse battery".into(), Some(stored.clone())).await);
        assert!(!verify("correct horse batterY".into(), Some(stored.clone())).await);
        assert!(
            !verify("correct horse battery".into(), None).await,
            "unknown user"
        );
        assert!(!verify("x".into(), Some("not a phc string".into())).await);
        let again = hash("correct horse battery".into()).await.unwrap();
        assert_ne!(stored, again, "every hash has its own salt");
    }

    #[test]
    fn policy_names_the_problem() {
        assert!(
            check_policy("short")
                .unwrap_err()
                .to_string()
                .contains("at least 12")
        );
        assert!(
            check_policy("aaaaaaaaaaaaaaaa")
                .unwrap_err()
                .to_string()
                .contains("repeats")
        );
        assert!(
            check_policy(&"ab".repeat(600))
                .unwrap_err()
                .to_string()
                .contains("at most")
        );
        check_policy("a reasonable passphrase").unwrap();
        let generated = generate();
        assert_eq!(generated.len(), 20);
        check_policy(&generated).unwrap();
        assert_ne!(generated, generate());
    }
}
