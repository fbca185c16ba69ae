//! The signed command envelope: agents execute only commands signed by the server's key.
//!
//! [`SignedCommand`] carries the exact JSON bytes of a [`Command`] (base64) and an
//! ed25519 signature over `SIGNING_CONTEXT || body bytes`. Verification checks the
//! signature over the bytes that travelled, then decodes them, so no re-serialisation
//! can change what was signed and no unauthenticated JSON is ever parsed into a
//! `Command`. The context prefix keeps a command signature from being valid for any
//! other message the same key may sign (release manifests, for example).
//!
//! Replay is not this layer's job: a verified command can be delivered again. The agent
//! de-duplicates by [`crate::CommandId`] and its stream cursor, and `expires_at` bounds
//! how long a captured command stays acceptable.
//!
//! This crate has no random source: callers build a [`SigningKey`] from 32 bytes they
//! generated (`SigningKey::from_bytes`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::command::Command;
use crate::ids::KeyId;

/// Prepended to the body bytes before signing and verifying.
pub const SIGNING_CONTEXT: &[u8] = b"tutti-command-v1\n";

/// Why a [`SignedCommand`] was rejected. Agents report these as `refused` events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Signed by a key this agent does not trust.
    #[error("signed by unknown key {key_id}; trusted: {}", list_ids(.trusted))]
    UnknownKey {
        /// The key id in the envelope.
        key_id: KeyId,
        /// The ids of the keys that are trusted.
        trusted: Vec<KeyId>,
    },
    /// Signed by a key that was trusted until a rotation retired it.
    #[error("signed by key {key_id}, which is trusted only until {until}")]
    KeyRetired {
        /// The key id in the envelope.
        key_id: KeyId,
        /// When the key stopped being trusted.
        until: Timestamp,
    },
    /// The signature does not match the body.
    #[error("command signature does not verify")]
    BadSignature,
    /// The envelope or body could not be decoded.
    #[error("malformed command: {0}")]
    Malformed(String),
    /// The command's `expires_at` has passed.
    #[error("command expired at {expires_at}")]
    Expired {
        /// When it expired.
        expires_at: Timestamp,
    },
}

/// A [`Command`] with the signature that authorises it. This is what goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCommand {
    /// Id of the signing key.
    pub key_id: KeyId,
    /// Base64 (standard alphabet) of the 64-byte ed25519 signature.
    pub signature: String,
    /// Base64 (standard alphabet) of the exact JSON bytes of the `Command`.
    pub body: String,
}

impl SignedCommand {
    /// Serialises `command` and signs the bytes with `key`.
    pub fn sign(command: &Command, key: &SigningKey) -> SignedCommand {
        // Command holds strings, integers, timestamps and string-keyed maps only,
        // so serialising it cannot fail.
        let body = serde_json::to_vec(command).expect("a Command always serialises to JSON");
        let signature = key.sign(&signed_message(&body));
        SignedCommand {
            key_id: key_id_for(&key.verifying_key()),
            signature: STANDARD.encode(signature.to_bytes()),
            body: STANDARD.encode(&body),
        }
    }

    /// Checks key id and signature over the carried bytes, decodes the command and
    /// rejects it when `expires_at` is before `now`.
    pub fn verify(&self, key: &VerifyingKey, now: Timestamp) -> Result<Command, VerifyError> {
        self.verify_with(|key_id| only_key(key, key_id), now)
    }

    /// [`SignedCommand::verify`] with the key chosen by the envelope's key id from a set
    /// (`lookup` refuses ids it does not trust).
    pub fn verify_with(
        &self,
        lookup: impl FnOnce(KeyId) -> Result<VerifyingKey, VerifyError>,
        now: Timestamp,
    ) -> Result<Command, VerifyError> {
        let key = lookup(self.key_id)?;
        let signature = decode_signature(&self.signature)?;
        let body = decode_base64("body", &self.body)?;
        key.verify_strict(&signed_message(&body), &signature)
            .map_err(|_| VerifyError::BadSignature)?;
        let command: Command = serde_json::from_slice(&body)
            .map_err(|err| VerifyError::Malformed(format!("body is not a command: {err}")))?;
        match command.expires_at {
            Some(expires_at) if expires_at < now => Err(VerifyError::Expired { expires_at }),
            _ => Ok(command),
        }
    }

    /// The envelope as JSON, the payload of a command message.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Three strings: serialising cannot fail.
        serde_json::to_vec(self).expect("a SignedCommand always serialises to JSON")
    }

    /// Parses an envelope from a message payload. Unknown fields are ignored.
    pub fn from_bytes(bytes: &[u8]) -> Result<SignedCommand, VerifyError> {
        serde_json::from_slice(bytes)
            .map_err(|err| VerifyError::Malformed(format!("envelope is not valid: {err}")))
    }
}

/// The lookup of a single trusted key: `key` if `key_id` names it.
pub fn only_key(key: &VerifyingKey, key_id: KeyId) -> Result<VerifyingKey, VerifyError> {
    let expected = key_id_for(key);
    if key_id == expected {
        Ok(*key)
    } else {
        Err(VerifyError::UnknownKey {
            key_id,
            trusted: vec![expected],
        })
    }
}

fn list_ids(ids: &[KeyId]) -> String {
    if ids.is_empty() {
        return "none".to_string();
    }
    ids.iter()
        .map(KeyId::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The [`KeyId`] of a public key: first 8 bytes of its sha256, in hex.
pub fn key_id_for(key: &VerifyingKey) -> KeyId {
    KeyId::for_public_key(key.as_bytes())
}

/// A public key as base64 of its 32 bytes, the form used in agent configuration.
pub fn verifying_key_to_base64(key: &VerifyingKey) -> String {
    STANDARD.encode(key.as_bytes())
}

/// Parses a public key written by [`verifying_key_to_base64`].
pub fn verifying_key_from_base64(text: &str) -> Result<VerifyingKey, VerifyError> {
    let bytes = decode_base64("public key", text.trim())?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|bytes: Vec<u8>| {
        VerifyError::Malformed(format!("public key is {} bytes, expected 32", bytes.len()))
    })?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| VerifyError::Malformed("public key is not a valid ed25519 point".to_string()))
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    [SIGNING_CONTEXT, body].concat()
}

fn decode_signature(text: &str) -> Result<Signature, VerifyError> {
    let bytes = decode_base64("signature", text)?;
    Signature::from_slice(&bytes).map_err(|_| {
        VerifyError::Malformed(format!("signature is {} bytes, expected 64", bytes.len()))
    })
}

fn decode_base64(what: &str, text: &str) -> Result<Vec<u8>, VerifyError> {
    STANDARD
        .decode(text)
        .map_err(|err| VerifyError::Malformed(format!("{what} is not base64: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::tests::sample_command;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn now() -> Timestamp {
        "2024-05-02T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn sign_then_verify_returns_the_command() {
        let command = sample_command();
        let signed = SignedCommand::sign(&command, &key(1));
        let back = SignedCommand::from_bytes(&signed.to_bytes()).unwrap();
        assert_eq!(back.verify(&key(1).verifying_key(), now()), Ok(command));
    }

    #[test]
    fn flipped_body_byte_is_a_bad_signature() {
        let mut signed = SignedCommand::sign(&sample_command(), &key(1));
        let mut body = STANDARD.decode(&signed.body).unwrap();
        body[10] ^= 0x01;
        signed.body = STANDARD.encode(&body);
        let result = signed.verify(&key(1).verifying_key(), now());
        assert_eq!(result, Err(VerifyError::BadSignature));
    }

    #[test]
    fn signature_from_another_key_is_rejected() {
        let command = sample_command();
        let forged = SignedCommand::sign(&command, &key(2));
        let trusted = key(1).verifying_key();
        let result = forged.verify(&trusted, now());
        assert!(
            matches!(result, Err(VerifyError::UnknownKey { .. })),
            "{result:?}"
        );
        // Claiming the trusted key id does not help: the signature still fails.
        let claimed = SignedCommand {
            key_id: key_id_for(&trusted),
            ..forged
        };
        assert_eq!(
            claimed.verify(&trusted, now()),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn expired_command_is_rejected() {
        let command = sample_command();
        let signed = SignedCommand::sign(&command, &key(1));
        let later: Timestamp = "2024-06-01T00:00:00Z".parse().unwrap();
        let expires_at = command.expires_at.unwrap();
        let result = signed.verify(&key(1).verifying_key(), later);
        assert_eq!(result, Err(VerifyError::Expired { expires_at }));
    }

    #[test]
    fn malformed_envelopes_are_rejected() {
        let signed = SignedCommand::sign(&sample_command(), &key(1));
        let verifying_key = key(1).verifying_key();
        let bad_base64 = SignedCommand {
            body: "not base64!".to_string(),
            ..signed.clone()
        };
        let short_signature = SignedCommand {
            signature: STANDARD.encode([0u8; 10]),
            ..signed.clone()
        };
        for envelope in [bad_base64, short_signature] {
            let result = envelope.verify(&verifying_key, now());
            assert!(
                matches!(result, Err(VerifyError::Malformed(_))),
                "{result:?}"
            );
        }
        assert!(SignedCommand::from_bytes(b"{").is_err());
    }

    #[test]
    fn signed_but_undecodable_body_is_malformed() {
        let signing_key = key(1);
        let body = br#"{"not": "a command"}"#;
        let envelope = SignedCommand {
            key_id: key_id_for(&signing_key.verifying_key()),
            signature: STANDARD.encode(signing_key.sign(&signed_message(body)).to_bytes()),
            body: STANDARD.encode(body),
        };
        let result = envelope.verify(&signing_key.verifying_key(), now());
        assert!(
            matches!(result, Err(VerifyError::Malformed(_))),
            "{result:?}"
        );
    }

    #[test]
    fn key_id_and_public_key_text_round_trip() {
        let verifying_key = key(1).verifying_key();
        let key_id = key_id_for(&verifying_key);
        assert_eq!(key_id.to_string().len(), 16);
        assert_eq!(KeyId::parse(&key_id.to_string()), Ok(key_id));
        let text = verifying_key_to_base64(&verifying_key);
        assert_eq!(verifying_key_from_base64(&text), Ok(verifying_key));
        assert!(verifying_key_from_base64("AAAA").is_err());
    }
}
