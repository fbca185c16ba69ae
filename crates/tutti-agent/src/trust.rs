//! The signing keys this agent trusts, shared by command intake, fleet sync and the
//! heartbeat.
//!
//! It starts as the key pinned at enrollment and follows the server's key ring (the fleet
//! value `keys`, rules in `tutti_proto::trust`). Every change is written to
//! `trusted-keys.json` in the state directory before it is used, so a restart keeps what a
//! rotation taught the agent even if the ring has moved on by then. A file that cannot be
//! read falls back to the enrollment key and says so: that never trusts more than
//! enrollment did, and the next ring read restores the set if the chain reaches it.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use ed25519_dalek::VerifyingKey;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tutti_proto::KeyId;
use tutti_proto::command::Command;
use tutti_proto::sign::{SignedCommand, VerifyError};
use tutti_proto::trust::{TrustedKey, TrustedKeys};

use crate::identity::{IdentityError, write_private};

/// The file that keeps the trusted set across restarts.
pub const TRUST_FILE: &str = "trusted-keys.json";

#[derive(Serialize, Deserialize)]
struct TrustFile {
    keys: Vec<TrustedKey>,
}

/// The trusted keys and where they are kept.
#[derive(Debug)]
pub struct TrustStore {
    state_dir: PathBuf,
    keys: RwLock<TrustedKeys>,
    changed: tokio::sync::Notify,
}

impl TrustStore {
    /// The stored set, or only `pinned` when there is none (or it cannot be read).
    pub fn open(state_dir: &Path, pinned: VerifyingKey) -> TrustStore {
        let path = state_dir.join(TRUST_FILE);
        let keys = match std::fs::read(&path) {
            Ok(bytes) => match read_set(&bytes) {
                Ok(keys) => keys,
                Err(detail) => {
                    tracing::error!(path = %path.display(), %detail, "The trusted keys file is unreadable; trusting only the enrollment key until the key ring is read again.");
                    TrustedKeys::pinned(pinned)
                }
            },
            Err(_) => TrustedKeys::pinned(pinned),
        };
        TrustStore {
            state_dir: state_dir.to_path_buf(),
            keys: RwLock::new(keys),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Verifies a command against the trusted keys.
    pub fn verify_command(
        &self,
        signed: &SignedCommand,
        now: Timestamp,
    ) -> Result<Command, VerifyError> {
        self.read().verify_command(signed, now)
    }

    /// The trusted set now (fleet sync verifies a whole replica against one snapshot).
    pub fn snapshot(&self) -> TrustedKeys {
        self.read().clone()
    }

    /// Ids of the keys trusted at `now`, for the heartbeat.
    pub fn key_ids(&self, now: Timestamp) -> Vec<KeyId> {
        self.read().key_ids(now)
    }

    /// Adopts a key ring read from the bucket; `Ok(true)` when the set changed (and was
    /// stored), `Ok(false)` when it was already this.
    pub fn adopt_ring(&self, bytes: &[u8], kv_key: &str, now: Timestamp) -> Result<bool, String> {
        let adopted = self
            .read()
            .adopt_ring(bytes, kv_key, now)
            .map_err(|err| err.to_string())?;
        let mut keys = self
            .keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *keys == adopted {
            return Ok(false);
        }
        let file = TrustFile {
            keys: adopted.records(),
        };
        let body = serde_json::to_vec_pretty(&file).map_err(|err| err.to_string())?;
        write_private(&self.state_dir, TRUST_FILE, &body)
            .map_err(|err: IdentityError| format!("cannot store the trusted keys: {err}"))?;
        tracing::info!(keys = ?adopted.key_ids(now), "Trusted signing keys updated from the key ring.");
        *keys = adopted;
        self.changed.notify_one();
        Ok(true)
    }

    /// Resolves at the next change of the set.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, TrustedKeys> {
        // A panic while holding the lock cannot leave the set half-written: it is replaced
        // whole.
        self.keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn read_set(bytes: &[u8]) -> Result<TrustedKeys, String> {
    let file: TrustFile = serde_json::from_slice(bytes).map_err(|err| err.to_string())?;
    TrustedKeys::from_records(&file.keys).map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use tutti_proto::sign::key_id_for;
    use tutti_proto::signed_value::SignedValue;
    use tutti_proto::trust::{Endorsement, KeyRing, RingKey};

    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn ring_of(current: u8, next: u8) -> Vec<u8> {
        let entry = |seed: u8, endorsed_by: Option<u8>| {
            let public = key(seed).verifying_key();
            RingKey {
                key_id: key_id_for(&public),
                public_key: tutti_proto::sign::verifying_key_to_base64(&public),
                trusted_until: None,
                endorsement: endorsed_by.map(|by| Endorsement::sign(&public, &key(by))),
            }
        };
        let ring = KeyRing {
            signing_key_id: key_id_for(&key(current).verifying_key()),
            keys: vec![entry(current, None), entry(next, Some(current))],
        };
        SignedValue::sign("keys", &ring, &key(current))
            .unwrap()
            .to_bytes()
    }

    #[test]
    fn an_adopted_ring_survives_a_restart_and_a_corrupt_file_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let now = Timestamp::now();
        let store = TrustStore::open(dir.path(), key(1).verifying_key());
        assert_eq!(store.key_ids(now).len(), 1);
        assert_eq!(store.adopt_ring(&ring_of(1, 2), "keys", now), Ok(true));
        assert_eq!(store.adopt_ring(&ring_of(1, 2), "keys", now), Ok(false));

        let reopened = TrustStore::open(dir.path(), key(1).verifying_key());
        assert_eq!(reopened.key_ids(now), store.key_ids(now));
        assert!(
            reopened
                .key_ids(now)
                .contains(&key_id_for(&key(2).verifying_key()))
        );

        std::fs::write(dir.path().join(TRUST_FILE), b"{not json").unwrap();
        let fallback = TrustStore::open(dir.path(), key(1).verifying_key());
        assert_eq!(
            fallback.key_ids(now),
            vec![key_id_for(&key(1).verifying_key())]
        );
    }

    #[test]
    fn a_ring_from_an_untrusted_key_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let now = Timestamp::now();
        let store = TrustStore::open(dir.path(), key(1).verifying_key());
        let err = store.adopt_ring(&ring_of(5, 6), "keys", now).unwrap_err();
        assert!(err.contains("unknown key"), "{err}");
        assert!(!dir.path().join(TRUST_FILE).exists());
    }
}
