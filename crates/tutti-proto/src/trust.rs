//! The keys an agent trusts, and the key ring through which the server rotates its
//! signing key without re-enrolling the fleet.
//!
//! An agent starts with the one key it pinned at enrollment. The server publishes a
//! [`KeyRing`] as the fleet value `keys` (a [`crate::signed_value::SignedValue`] like every
//! fleet value): every key agents should trust, each with the [`Endorsement`] of the key
//! that introduced it and, for a retiring key, the time it stops being trusted. A rotation
//! goes in two steps, both visible in the ring:
//!
//! 1. `tutti keys rotate` adds the next key, endorsed by the current one. Commands are
//!    still signed by the current key; agents learn the next one as they sync.
//! 2. After the overlap the next key becomes the signing key, and the old one stays in the
//!    ring with `trusted_until` (end of a second overlap), so commands signed before the
//!    switch and still queued for offline agents stay valid until then.
//!
//! [`TrustedKeys::adopt_ring`] accepts a key only when it is already trusted or endorsed by
//! a key that is (walking the endorsements, so an agent that slept through a rotation
//! catches up through the chain), and only when the ring itself is signed by a key
//! accepted that way. The ring then replaces the trusted set: keys it no longer lists, or
//! lists as expired, are dropped. An agent offline for longer than a full rotation still
//! catches up as long as the chain of endorsements from its key is in the ring; the
//! server keeps each key's endorsement with the key, so the chain survives retirements.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::command::Command;
use crate::ids::KeyId;
use crate::sign::{SignedCommand, VerifyError, key_id_for, verifying_key_from_base64};
use crate::signed_value::SignedValue;

/// Prepended to the public key an endorsement signs.
pub const ENDORSEMENT_CONTEXT: &[u8] = b"tutti-key-endorsement-v1\n";

/// The fleet value `keys`: the keys agents trust and which one signs commands now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRing {
    /// The key new commands are signed with.
    pub signing_key_id: KeyId,
    /// Every key to trust, current first.
    pub keys: Vec<RingKey>,
}

/// One key of a [`KeyRing`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingKey {
    /// Its id.
    pub key_id: KeyId,
    /// The public key, base64 of its 32 bytes.
    pub public_key: String,
    /// When a retiring key stops being trusted; `None` while it is current or next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_until: Option<Timestamp>,
    /// The signature of the key that introduced it; `None` for a key agents pinned at
    /// enrollment (the first key of a server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endorsement: Option<Endorsement>,
}

/// A key's signature over the next key's public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endorsement {
    /// The endorsing key.
    pub by: KeyId,
    /// Base64 of the ed25519 signature over `ENDORSEMENT_CONTEXT || public key bytes`.
    pub signature: String,
}

impl Endorsement {
    /// `by` vouches for `endorsed`.
    pub fn sign(endorsed: &VerifyingKey, by: &SigningKey) -> Endorsement {
        let signature = by.sign(&endorsed_message(endorsed));
        Endorsement {
            by: key_id_for(&by.verifying_key()),
            signature: STANDARD.encode(signature.to_bytes()),
        }
    }

    /// Whether `by` (whose id must be [`Endorsement::by`]) vouched for `endorsed`.
    pub fn verify(&self, endorsed: &VerifyingKey, by: &VerifyingKey) -> Result<(), VerifyError> {
        if key_id_for(by) != self.by {
            return Err(VerifyError::UnknownKey {
                key_id: self.by,
                trusted: vec![key_id_for(by)],
            });
        }
        let signature = STANDARD
            .decode(&self.signature)
            .ok()
            .and_then(|bytes| Signature::from_slice(&bytes).ok())
            .ok_or_else(|| {
                VerifyError::Malformed("endorsement is not 64 bytes of base64".into())
            })?;
        by.verify_strict(&endorsed_message(endorsed), &signature)
            .map_err(|_| VerifyError::BadSignature)
    }
}

fn endorsed_message(endorsed: &VerifyingKey) -> Vec<u8> {
    [ENDORSEMENT_CONTEXT, endorsed.as_bytes()].concat()
}

/// One trusted key as an agent stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedKey {
    /// Its id.
    pub key_id: KeyId,
    /// The public key, base64 of its 32 bytes.
    pub public_key: String,
    /// When it stops being trusted, if it is retiring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_until: Option<Timestamp>,
}

/// The keys an agent accepts signatures from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKeys {
    keys: BTreeMap<KeyId, (VerifyingKey, Option<Timestamp>)>,
}

impl TrustedKeys {
    /// Only the key pinned at enrollment.
    pub fn pinned(key: VerifyingKey) -> TrustedKeys {
        TrustedKeys {
            keys: BTreeMap::from([(key_id_for(&key), (key, None))]),
        }
    }

    /// A set read back from [`TrustedKeys::records`]; refuses an empty set and a record
    /// whose id does not match its key.
    pub fn from_records(records: &[TrustedKey]) -> Result<TrustedKeys, VerifyError> {
        let mut keys = BTreeMap::new();
        for record in records {
            let key = verifying_key_from_base64(&record.public_key)?;
            if key_id_for(&key) != record.key_id {
                return Err(VerifyError::Malformed(format!(
                    "key {} does not have the id it is stored under",
                    record.key_id
                )));
            }
            keys.insert(record.key_id, (key, record.trusted_until));
        }
        if keys.is_empty() {
            return Err(VerifyError::Malformed("no trusted key".into()));
        }
        Ok(TrustedKeys { keys })
    }

    /// The set as records to store.
    pub fn records(&self) -> Vec<TrustedKey> {
        self.keys
            .iter()
            .map(|(key_id, (key, trusted_until))| TrustedKey {
                key_id: *key_id,
                public_key: crate::sign::verifying_key_to_base64(key),
                trusted_until: *trusted_until,
            })
            .collect()
    }

    /// The ids of the keys trusted at `now`.
    pub fn key_ids(&self, now: Timestamp) -> Vec<KeyId> {
        self.keys
            .iter()
            .filter(|(_, (_, until))| until.is_none_or(|until| now < until))
            .map(|(key_id, _)| *key_id)
            .collect()
    }

    /// The key `key_id` names, if it is trusted at `now`.
    pub fn lookup(&self, key_id: KeyId, now: Timestamp) -> Result<VerifyingKey, VerifyError> {
        match self.keys.get(&key_id) {
            Some((_, Some(until))) if *until <= now => Err(VerifyError::KeyRetired {
                key_id,
                until: *until,
            }),
            Some((key, _)) => Ok(*key),
            None => Err(VerifyError::UnknownKey {
                key_id,
                trusted: self.key_ids(now),
            }),
        }
    }

    /// Verifies a command against whichever trusted key it names.
    pub fn verify_command(
        &self,
        signed: &SignedCommand,
        now: Timestamp,
    ) -> Result<Command, VerifyError> {
        signed.verify_with(|key_id| self.lookup(key_id, now), now)
    }

    /// Verifies a fleet value against whichever trusted key it names, and decodes it.
    pub fn verify_value<T: for<'de> Deserialize<'de>>(
        &self,
        bytes: &[u8],
        kv_key: &str,
        now: Timestamp,
    ) -> Result<T, VerifyError> {
        let json = SignedValue::verify_with(bytes, kv_key, |key_id| self.lookup(key_id, now))?;
        serde_json::from_str(json)
            .map_err(|err| VerifyError::Malformed(format!("signed value does not decode: {err}")))
    }

    /// The trusted set a key ring (the signed fleet value `bytes` at `kv_key`) leads to,
    /// or why the ring is refused. See the module documentation for the rules.
    pub fn adopt_ring(
        &self,
        bytes: &[u8],
        kv_key: &str,
        now: Timestamp,
    ) -> Result<TrustedKeys, VerifyError> {
        let ring: KeyRing = serde_json::from_str(SignedValue::unverified_value(bytes)?)
            .map_err(|err| VerifyError::Malformed(format!("key ring does not decode: {err}")))?;
        let mut accepted: BTreeMap<KeyId, VerifyingKey> = self
            .keys
            .iter()
            .filter(|(_, (_, until))| until.is_none_or(|until| now < until))
            .map(|(key_id, (key, _))| (*key_id, *key))
            .collect();
        // Endorsements may be listed in any order: repeat until no key is added.
        loop {
            let mut added = false;
            for ring_key in &ring.keys {
                if accepted.contains_key(&ring_key.key_id) {
                    continue;
                }
                let Some(endorsement) = &ring_key.endorsement else {
                    continue;
                };
                let Some(by) = accepted.get(&endorsement.by) else {
                    continue;
                };
                let key = verifying_key_from_base64(&ring_key.public_key)?;
                if key_id_for(&key) != ring_key.key_id {
                    return Err(VerifyError::Malformed(format!(
                        "ring key {} does not have the id it is listed under",
                        ring_key.key_id
                    )));
                }
                endorsement.verify(&key, by)?;
                accepted.insert(ring_key.key_id, key);
                added = true;
            }
            if !added {
                break;
            }
        }
        SignedValue::verify_with(bytes, kv_key, |key_id| {
            accepted
                .get(&key_id)
                .copied()
                .ok_or_else(|| VerifyError::UnknownKey {
                    key_id,
                    trusted: accepted.keys().copied().collect(),
                })
        })?;
        let keys: BTreeMap<_, _> = ring
            .keys
            .iter()
            .filter(|ring_key| ring_key.trusted_until.is_none_or(|until| now < until))
            .filter_map(|ring_key| {
                let key = accepted.get(&ring_key.key_id)?;
                Some((ring_key.key_id, (*key, ring_key.trusted_until)))
            })
            .collect();
        if keys.is_empty() {
            return Err(VerifyError::Malformed(
                "the key ring leaves no key this agent can trust".into(),
            ));
        }
        Ok(TrustedKeys { keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::tests::sample_command;
    use crate::sign::verifying_key_to_base64;

    const RING: &str = "keys";

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn now() -> Timestamp {
        "2024-05-02T00:00:00Z".parse().unwrap()
    }

    fn ring_key(seed: u8, endorsed_by: Option<u8>, until: Option<&str>) -> RingKey {
        let public = key(seed).verifying_key();
        RingKey {
            key_id: key_id_for(&public),
            public_key: verifying_key_to_base64(&public),
            trusted_until: until.map(|text| text.parse().unwrap()),
            endorsement: endorsed_by.map(|by| Endorsement::sign(&public, &key(by))),
        }
    }

    fn ring(signer: u8, keys: Vec<RingKey>) -> Vec<u8> {
        let ring = KeyRing {
            signing_key_id: key_id_for(&key(signer).verifying_key()),
            keys,
        };
        SignedValue::sign(RING, &ring, &key(signer))
            .unwrap()
            .to_bytes()
    }

    fn ids(seeds: &[u8]) -> Vec<KeyId> {
        let mut ids: Vec<_> = seeds
            .iter()
            .map(|seed| key_id_for(&key(*seed).verifying_key()))
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn an_endorsed_next_key_is_trusted_alongside_the_current_one() {
        let trusted = TrustedKeys::pinned(key(1).verifying_key());
        let bytes = ring(1, vec![ring_key(1, None, None), ring_key(2, Some(1), None)]);
        let adopted = trusted.adopt_ring(&bytes, RING, now()).unwrap();
        assert_eq!(adopted.key_ids(now()), ids(&[1, 2]));
        let command = SignedCommand::sign(&sample_command(), &key(2));
        assert_eq!(
            adopted.verify_command(&command, now()),
            Ok(sample_command())
        );
        // The set survives being stored.
        let back = TrustedKeys::from_records(&adopted.records()).unwrap();
        assert_eq!(back, adopted);
    }

    #[test]
    fn an_agent_that_slept_through_two_rotations_follows_the_chain() {
        let trusted = TrustedKeys::pinned(key(1).verifying_key());
        // Key 1 is gone from the ring; 2 (endorsed by 1) is retiring; 3 signs.
        let bytes = ring(
            3,
            vec![
                ring_key(3, Some(2), None),
                ring_key(2, Some(1), Some("2024-05-03T00:00:00Z")),
            ],
        );
        let adopted = trusted.adopt_ring(&bytes, RING, now()).unwrap();
        assert_eq!(adopted.key_ids(now()), ids(&[2, 3]));
        let later: Timestamp = "2024-05-04T00:00:00Z".parse().unwrap();
        assert_eq!(adopted.key_ids(later), ids(&[3]));
        let old = SignedCommand::sign(&sample_command(), &key(2));
        assert!(matches!(
            adopted.verify_command(&old, later),
            Err(VerifyError::KeyRetired { .. })
        ));
        let dropped = SignedCommand::sign(&sample_command(), &key(1));
        assert!(matches!(
            adopted.verify_command(&dropped, now()),
            Err(VerifyError::UnknownKey { .. })
        ));
    }

    #[test]
    fn keys_nobody_trusted_endorsed_are_not_adopted() {
        let trusted = TrustedKeys::pinned(key(1).verifying_key());
        // Key 9 endorses itself and signs the ring: refused as a whole.
        let bytes = ring(9, vec![ring_key(9, Some(9), None)]);
        assert!(matches!(
            trusted.adopt_ring(&bytes, RING, now()),
            Err(VerifyError::UnknownKey { .. })
        ));
        // Signed by the trusted key, but an unendorsed extra key is left out.
        let bytes = ring(1, vec![ring_key(1, None, None), ring_key(8, None, None)]);
        let adopted = trusted.adopt_ring(&bytes, RING, now()).unwrap();
        assert_eq!(adopted.key_ids(now()), ids(&[1]));
    }

    #[test]
    fn a_forged_endorsement_or_tampered_ring_is_refused() {
        let trusted = TrustedKeys::pinned(key(1).verifying_key());
        let mut forged = ring_key(2, Some(1), None);
        forged.endorsement = Some(Endorsement {
            by: key_id_for(&key(1).verifying_key()),
            signature: Endorsement::sign(&key(2).verifying_key(), &key(7)).signature,
        });
        let bytes = ring(2, vec![ring_key(1, None, None), forged]);
        assert_eq!(
            trusted.adopt_ring(&bytes, RING, now()),
            Err(VerifyError::BadSignature)
        );
        let bytes = ring(1, vec![ring_key(1, None, None)]);
        let tampered = String::from_utf8(bytes)
            .unwrap()
            .replace("\"keys\":[", "\"keys\":[],\"x\":[");
        assert!(
            trusted
                .adopt_ring(tampered.as_bytes(), RING, now())
                .is_err()
        );
        // A ring for another KV key does not verify here.
        let bytes = ring(1, vec![ring_key(1, None, None)]);
        assert_eq!(
            trusted.adopt_ring(&bytes, "config.global", now()),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn a_ring_that_leaves_nothing_trusted_is_refused() {
        let trusted = TrustedKeys::pinned(key(1).verifying_key());
        let bytes = ring(1, vec![ring_key(1, None, Some("2024-05-01T00:00:00Z"))]);
        assert!(matches!(
            trusted.adopt_ring(&bytes, RING, now()),
            Err(VerifyError::Malformed(_))
        ));
    }

    #[test]
    fn records_with_a_wrong_id_are_refused() {
        let mut records = TrustedKeys::pinned(key(1).verifying_key()).records();
        records[0].key_id = key_id_for(&key(2).verifying_key());
        assert!(TrustedKeys::from_records(&records).is_err());
        assert!(TrustedKeys::from_records(&[]).is_err());
    }
}
