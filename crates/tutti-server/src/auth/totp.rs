//! TOTP (RFC 6238): 6 digits, 30-second steps, HMAC-SHA1, the parameters every
//! authenticator app supports. Secrets are 160 random bits in unpadded base32.
//!
//! A code is accepted for the current step and one step either side (clock skew), and a
//! step that was already used for an account is refused (replay), which `Totp::verify`
//! checks against the last accepted step the caller keeps.

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use sha1::Sha1;

/// Seconds per step.
pub const STEP_SECS: u64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps accepted either side of the current one.
const SKEW_STEPS: u64 = 1;

/// A fresh random secret, base32 (what the authenticator app is given).
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 20];
    OsRng.fill_bytes(&mut bytes);
    BASE32_NOPAD.encode(&bytes)
}

/// The `otpauth://` URL an authenticator app reads from a QR code.
pub fn provisioning_url(issuer: &str, account: &str, secret: &str) -> String {
    let label = format!("{}:{}", percent(issuer), percent(account));
    format!(
        "otpauth://totp/{label}?secret={secret}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        percent(issuer)
    )
}

/// The code for `step` (RFC 4226 HOTP over the step counter).
pub fn code_at_step(secret: &[u8], step: u64) -> u32 {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    binary % 10u32.pow(DIGITS)
}

/// The step that `unix_secs` falls in.
pub fn step_of(unix_secs: u64) -> u64 {
    unix_secs / STEP_SECS
}

/// Checks `code` against `secret` (base32) at `unix_secs`. Returns the matched step, or
/// `None` when the code is wrong, malformed, or its step is not after `last_used_step`.
pub fn verify(
    secret: &str,
    code: &str,
    unix_secs: u64,
    last_used_step: Option<u64>,
) -> Option<u64> {
    let key = BASE32_NOPAD.decode(secret.trim().as_bytes()).ok()?;
    let code = code.trim().replace(' ', "");
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let wanted: u32 = code.parse().ok()?;
    let now = step_of(unix_secs);
    let first = now.saturating_sub(SKEW_STEPS);
    (first..=now + SKEW_STEPS)
        .filter(|step| last_used_step.is_none_or(|last| *step > last))
        .find(|step| code_at_step(&key, *step) == wanted)
}

/// Formats a code with its leading zeros.
pub fn format_code(code: u32) -> String {
    format!("{code:0width$}", width = DIGITS as usize)
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent(text: &str) -> String {
    const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 column, truncated to 6 digits (the RFC shows 8).
    #[test]
    fn matches_the_rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, eight_digits) in [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(
                code_at_step(secret, step_of(time)),
                eight_digits % 1_000_000,
                "t={time}"
            );
        }
    }

    #[test]
    fn accepts_adjacent_steps_once_and_refuses_the_rest() {
        let secret = generate_secret();
        let key = BASE32_NOPAD.decode(secret.as_bytes()).unwrap();
        let now = 1_700_000_000;
        let code = |step: u64| format_code(code_at_step(&key, step));
        let current = step_of(now);
        assert_eq!(verify(&secret, &code(current), now, None), Some(current));
        assert_eq!(
            verify(&secret, &code(current - 1), now, None),
            Some(current - 1)
        );
        assert_eq!(
            verify(&secret, &code(current + 1), now, None),
            Some(current + 1)
        );
        assert_eq!(
            verify(&secret, &code(current - 2), now, None),
            None,
            "too old"
        );
        assert_eq!(
            verify(&secret, &code(current), now, Some(current)),
            None,
            "replayed"
        );
        assert_eq!(verify(&secret, "12345", now, None), None);
        assert_eq!(verify(&secret, "abcdef", now, None), None);
        assert_eq!(verify("not base32!", "123456", now, None), None);
    }

    #[test]
    fn provisioning_url_is_what_apps_expect() {
        let url = provisioning_url("tutti", "alice@example", "JBSWY3DPEHPK3PXP");
        assert_eq!(
            url,
            "otpauth://totp/tutti:alice%40example?secret=JBSWY3DPEHPK3PXP&issuer=tutti&algorithm=SHA1&digits=6&period=30"
        );
    }
}
