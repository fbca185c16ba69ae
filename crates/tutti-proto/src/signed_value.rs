//! Signed fleet-state values: every value the server writes to `tutti_fleet` is wrapped in
//! a [`SignedValue`], and agents apply only values that verify against the server's key.
//!
//! Fleet state decides which signed commands an agent executes (its groups widen the
//! subjects it accepts; revocations and the freeze skip commands), so whoever could write
//! the bucket could steer the fleet without ever holding the command key. The signature
//! covers `FLEET_SIGNING_CONTEXT || kv key || 0x00 || value bytes`: the context keeps it
//! from being valid as a command (or any other message the same key signs), and the KV key
//! binds the value to where it was written, so `groups.laptop-7`'s value cannot be copied
//! to `groups.web-01`. The value stays readable JSON in the bucket (`value` is the exact
//! text that was signed, kept as raw JSON so no re-serialisation can change it).
//!
//! Not covered, and why: an older signed value for the same key written again by someone
//! with write access to the bucket (a rollback of that one key). Agents cannot write the
//! bucket at all; its writers are the servers.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::ids::KeyId;
use crate::sign::{VerifyError, key_id_for, only_key};

/// Prepended to what a fleet value's signature covers.
pub const FLEET_SIGNING_CONTEXT: &[u8] = b"tutti-fleet-v1\n";

/// A `tutti_fleet` value with the signature that authorises it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedValue {
    /// Id of the signing key.
    pub key_id: KeyId,
    /// Base64 (standard alphabet) of the ed25519 signature.
    pub signature: String,
    /// The value: the exact JSON text that was signed.
    pub value: Box<RawValue>,
}

impl SignedValue {
    /// Signs `value` for the KV key `kv_key`.
    pub fn sign<T: Serialize>(
        kv_key: &str,
        value: &T,
        key: &SigningKey,
    ) -> Result<SignedValue, serde_json::Error> {
        let json = serde_json::to_string(value)?;
        SignedValue::sign_json(kv_key, json, key)
    }

    /// Signs JSON text as it is (re-signing a value written by an older server).
    pub fn sign_json(
        kv_key: &str,
        json: String,
        key: &SigningKey,
    ) -> Result<SignedValue, serde_json::Error> {
        let value = RawValue::from_string(json)?;
        let signature = key.sign(&signed_message(kv_key, value.get().as_bytes()));
        Ok(SignedValue {
            key_id: key_id_for(&key.verifying_key()),
            signature: STANDARD.encode(signature.to_bytes()),
            value,
        })
    }

    /// The envelope as bytes, the KV value.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Two strings and valid JSON: serialising cannot fail.
        serde_json::to_vec(self).expect("a SignedValue always serialises to JSON")
    }

    /// Verifies the envelope in `bytes` as the value of `kv_key` and returns the JSON text
    /// of the value.
    pub fn verify<'a>(
        bytes: &'a [u8],
        kv_key: &str,
        key: &VerifyingKey,
    ) -> Result<&'a str, VerifyError> {
        SignedValue::verify_with(bytes, kv_key, |key_id| only_key(key, key_id))
    }

    /// [`SignedValue::verify`] with the key chosen by the envelope's key id from a set
    /// (`lookup` refuses ids it does not trust).
    pub fn verify_with<'a>(
        bytes: &'a [u8],
        kv_key: &str,
        lookup: impl FnOnce(KeyId) -> Result<VerifyingKey, VerifyError>,
    ) -> Result<&'a str, VerifyError> {
        let envelope = SignedValue::unverified(bytes)?;
        let key = lookup(envelope.key_id)?;
        let signature = STANDARD
            .decode(&envelope.signature)
            .ok()
            .and_then(|bytes| Signature::from_slice(&bytes).ok())
            .ok_or_else(|| VerifyError::Malformed("signature is not 64 bytes of base64".into()))?;
        let value = envelope.value.get();
        key.verify_strict(&signed_message(kv_key, value.as_bytes()), &signature)
            .map_err(|_| VerifyError::BadSignature)?;
        Ok(value)
    }

    /// The value's JSON text before its signature is checked, for a reader that must look
    /// inside to learn which key to check it with (a key ring's endorsements); nothing read
    /// this way may be acted on before [`SignedValue::verify_with`] succeeds.
    pub fn unverified_value(bytes: &[u8]) -> Result<&str, VerifyError> {
        Ok(SignedValue::unverified(bytes)?.value.get())
    }

    fn unverified(bytes: &[u8]) -> Result<BorrowedSignedValue<'_>, VerifyError> {
        serde_json::from_slice(bytes)
            .map_err(|err| VerifyError::Malformed(format!("not a signed value: {err}")))
    }

    /// Verifies and decodes the value as `T`.
    pub fn verify_as<T: for<'de> Deserialize<'de>>(
        bytes: &[u8],
        kv_key: &str,
        key: &VerifyingKey,
    ) -> Result<T, VerifyError> {
        let json = SignedValue::verify(bytes, kv_key, key)?;
        serde_json::from_str(json)
            .map_err(|err| VerifyError::Malformed(format!("signed value does not decode: {err}")))
    }
}

/// The envelope borrowed from the bytes it was read from, so the value's text is the exact
/// text that arrived.
#[derive(Deserialize)]
struct BorrowedSignedValue<'a> {
    key_id: KeyId,
    signature: String,
    #[serde(borrow)]
    value: &'a RawValue,
}

fn signed_message(kv_key: &str, value: &[u8]) -> Vec<u8> {
    [FLEET_SIGNING_CONTEXT, kv_key.as_bytes(), b"\0", value].concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::GroupMembership;
    use crate::ids::GroupName;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn membership() -> GroupMembership {
        GroupMembership {
            groups: vec![GroupName::parse("web").unwrap()],
        }
    }

    #[test]
    fn a_signed_value_verifies_for_its_key_only() {
        let signed = SignedValue::sign("groups.web-01", &membership(), &key(1)).unwrap();
        let bytes = signed.to_bytes();
        let trusted = key(1).verifying_key();
        let back: GroupMembership =
            SignedValue::verify_as(&bytes, "groups.web-01", &trusted).unwrap();
        assert_eq!(back, membership());
        // Copied to another agent's key, it no longer verifies.
        assert_eq!(
            SignedValue::verify(&bytes, "groups.web-02", &trusted),
            Err(VerifyError::BadSignature)
        );
        // Another key, or one claiming the trusted id, is refused.
        let forged = SignedValue::sign("groups.web-01", &membership(), &key(2)).unwrap();
        assert!(matches!(
            SignedValue::verify(&forged.to_bytes(), "groups.web-01", &trusted),
            Err(VerifyError::UnknownKey { .. })
        ));
        let claimed = SignedValue {
            key_id: key_id_for(&trusted),
            ..forged
        };
        assert_eq!(
            SignedValue::verify(&claimed.to_bytes(), "groups.web-01", &trusted),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn tampered_unsigned_and_garbage_values_are_refused() {
        let trusted = key(1).verifying_key();
        let signed = SignedValue::sign("groups.web-01", &membership(), &key(1)).unwrap();
        let tampered = String::from_utf8(signed.to_bytes())
            .unwrap()
            .replace("\"web\"", "\"ops\"");
        assert_eq!(
            SignedValue::verify(tampered.as_bytes(), "groups.web-01", &trusted),
            Err(VerifyError::BadSignature)
        );
        for bytes in [&br#"{"groups":["web"]}"#[..], b"", b"not json"] {
            assert!(matches!(
                SignedValue::verify(bytes, "groups.web-01", &trusted),
                Err(VerifyError::Malformed(_))
            ));
        }
    }

    #[test]
    fn the_value_stays_readable_json_and_extra_fields_are_ignored() {
        let signed = SignedValue::sign("freeze", &membership(), &key(1)).unwrap();
        let mut json: serde_json::Value = serde_json::from_slice(&signed.to_bytes()).unwrap();
        assert_eq!(json["value"]["groups"][0], "web");
        json["future"] = serde_json::json!(1);
        let bytes = serde_json::to_vec(&json).unwrap();
        let back: GroupMembership =
            SignedValue::verify_as(&bytes, "freeze", &key(1).verifying_key()).unwrap();
        assert_eq!(back, membership());
    }
}
