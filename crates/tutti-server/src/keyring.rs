//! The server's signing keys over time: the current key, the next one during a rotation,
//! and retiring ones, and the key ring (`tutti_proto::trust::KeyRing`) agents follow.
//!
//! A rotation has two steps (`tutti_proto::trust` explains them from the agent's side):
//! [`Keyring::rotate`] creates the next key, endorsed by the current one, which signs on;
//! once its `activates_at` has passed, [`Keyring::advance`] makes it the signing key and
//! keeps the old one trusted for the same overlap again. The files, beside the signing key
//! (`signing.key` by default):
//!
//! - `signing.key`: the current key (as before rotations existed);
//! - `signing.key.next`: the next key, during a rotation;
//! - `signing.key.<key id>.retired`: a key that was current, kept for the operator (the
//!   server never reads it again and never deletes it);
//! - `signing.key.ring.json`: what is not secret: endorsements, the next key's times and
//!   the retiring keys (public keys only).
//!
//! Activation writes the new current key atomically (temp file and rename) after keeping
//! the old one, then the ring file. A crash between the two leaves a ring file that names
//! the next key as current-to-be while `signing.key` already is that key; [`Keyring::open`]
//! recognises it and completes the step.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context as _;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tutti_proto::KeyId;
use tutti_proto::trust::{Endorsement, KeyRing, RingKey, TrustedKey, TrustedKeys};

use crate::keys::{self, ServerKey};
pub(crate) use tutti_api::keys::{KeysStatus, NextKeyStatus, RetiringKeyStatus};

/// How long both keys are trusted, before and after the switch, when the operator does not
/// say: long enough for an agent that is off over a weekend to learn the next key.
pub(crate) const DEFAULT_OVERLAP: SignedDuration = SignedDuration::from_hours(72);

/// The shortest overlap accepted; tests and a rehearsal use seconds, production days.
pub(crate) const MIN_OVERLAP: SignedDuration = SignedDuration::from_secs(1);

/// The signing keys and where they are kept. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Keyring {
    inner: Arc<Mutex<RingState>>,
    paths: Arc<RingPaths>,
    rotated: Arc<tokio::sync::Notify>,
}

#[derive(Debug)]
struct RingPaths {
    current: PathBuf,
    next: PathBuf,
    ring: PathBuf,
}

impl RingPaths {
    fn beside(key_file: &Path) -> RingPaths {
        let with = |suffix: &str| {
            let mut name = key_file.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        };
        RingPaths {
            current: key_file.to_path_buf(),
            next: with(".next"),
            ring: with(".ring.json"),
        }
    }

    fn retired(&self, key_id: KeyId) -> PathBuf {
        let mut name = self.current.as_os_str().to_owned();
        name.push(format!(".{key_id}.retired"));
        PathBuf::from(name)
    }
}

/// `signing.key.ring.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct RingFile {
    /// The key `signing.key` holds, as of the last write.
    current_key_id: Option<KeyId>,
    /// The current key's endorsement by its predecessor.
    #[serde(default)]
    current_endorsement: Option<Endorsement>,
    #[serde(default)]
    next: Option<NextKey>,
    /// Keys that were current, each with its `trusted_until`.
    #[serde(default)]
    retiring: Vec<RingKey>,
}

/// The next key of a rotation in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct NextKey {
    key_id: KeyId,
    introduced_at: Timestamp,
    activates_at: Timestamp,
    overlap_secs: i64,
    endorsement: Endorsement,
}

#[derive(Debug)]
struct RingState {
    current: ServerKey,
    next: Option<ServerKey>,
    file: RingFile,
}

/// What [`Keyring::advance`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Advanced {
    /// The old and the new signing key, when the next key took over.
    pub activated: Option<(KeyId, KeyId)>,
    /// Retiring keys whose overlap ended and that left the ring.
    pub expired: Vec<KeyId>,
}

impl Advanced {
    /// Whether the ring changed.
    pub fn changed(&self) -> bool {
        self.activated.is_some() || !self.expired.is_empty()
    }
}

/// Why a rotation was not started.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// A rotation is in progress already.
    #[error(
        "key {key_id} is already the next key and takes over at {activates_at}; wait until then (tutti keys status)"
    )]
    InProgress {
        /// The next key.
        key_id: KeyId,
        /// When it takes over.
        activates_at: Timestamp,
    },
    /// The overlap is shorter than [`MIN_OVERLAP`].
    #[error("the overlap must be at least {MIN_OVERLAP:#}")]
    OverlapTooShort,
    /// The key files could not be written.
    #[error("{0:#}")]
    Io(anyhow::Error),
}

impl Keyring {
    /// Loads the keys beside `key_file`, creating the first key if there is none.
    pub fn open(key_file: &Path) -> anyhow::Result<Keyring> {
        let paths = RingPaths::beside(key_file);
        let mut file = read_ring_file(&paths.ring)?;
        if let Some(key_id) = file.current_key_id
            && !paths.current.exists()
        {
            anyhow::bail!(
                "{} is missing, but {} says the signing key is {key_id}; restore the key file from a backup (a new key would make every agent refuse commands)",
                paths.current.display(),
                paths.ring.display()
            );
        }
        let current = keys::load_or_create(&paths.current)?;
        let mut next = match &file.next {
            Some(next) => Some(load_next(&paths.next, next.key_id)?),
            None => None,
        };
        match file.current_key_id {
            Some(key_id) if key_id == current.key_id() => {}
            None => {
                // Recorded so that a key file replaced later is noticed; a read-only key
                // directory still starts (it only cannot rotate).
                file.current_key_id = Some(current.key_id());
                if let Err(err) = write_ring_file(&paths.ring, &file) {
                    tracing::warn!(error = %format!("{err:#}"), "Cannot record the signing key's id beside it; key rotation will fail until the directory is writable.");
                }
            }
            Some(key_id) => {
                let finished = file
                    .next
                    .as_ref()
                    .is_some_and(|n| n.key_id == current.key_id());
                if !finished {
                    anyhow::bail!(
                        "{} holds key {}, but {} says the signing key is {key_id}; restore the key file from a backup",
                        paths.current.display(),
                        current.key_id(),
                        paths.ring.display()
                    );
                }
                // The key file was switched but the ring file not yet: finish the step
                // (the old key's public half is the retired copy's).
                let old = keys::load(&paths.retired(key_id))?;
                let pending = file.next.take().expect("checked above");
                retire(&mut file, &old, Timestamp::now(), pending.overlap_secs);
                file.current_key_id = Some(current.key_id());
                file.current_endorsement = Some(pending.endorsement);
                next = None;
                write_ring_file(&paths.ring, &file)?;
                let _ = fs::remove_file(&paths.next);
                tracing::warn!(key_id = %current.key_id(), "Completed a key switch interrupted by a restart.");
            }
        }
        Ok(Keyring {
            inner: Arc::new(Mutex::new(RingState {
                current,
                next,
                file,
            })),
            paths: Arc::new(paths),
            rotated: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// When [`Keyring::advance`] has something to do next: the next key's switch or the
    /// end of a retiring key's overlap.
    pub fn next_due(&self) -> Option<Timestamp> {
        let state = self.lock();
        let switch = state.file.next.as_ref().map(|next| next.activates_at);
        let expiries = state
            .file
            .retiring
            .iter()
            .filter_map(|key| key.trusted_until);
        switch.into_iter().chain(expiries).min()
    }

    /// Resolves after the next [`Keyring::rotate`] (the clock then looks again).
    pub async fn rotated(&self) {
        self.rotated.notified().await;
    }

    /// The key that signs now.
    pub fn current(&self) -> ServerKey {
        self.lock().current.clone()
    }

    /// Starts a rotation: a next key, endorsed by the current one, taking over `overlap`
    /// from `now`.
    pub fn rotate(
        &self,
        overlap: SignedDuration,
        now: Timestamp,
    ) -> Result<KeysStatus, RotateError> {
        if overlap < MIN_OVERLAP {
            return Err(RotateError::OverlapTooShort);
        }
        let mut state = self.lock();
        if let Some(next) = &state.file.next {
            return Err(RotateError::InProgress {
                key_id: next.key_id,
                activates_at: next.activates_at,
            });
        }
        // A next-key file without a rotation in the ring file was left by a rotation that
        // failed before recording itself; it was never announced.
        let _ = fs::remove_file(&self.paths.next);
        let key = keys::load_or_create(&self.paths.next).map_err(RotateError::Io)?;
        let endorsement = Endorsement::sign(&key.verifying(), state.current.signing());
        let mut file = state.file.clone();
        file.next = Some(NextKey {
            key_id: key.key_id(),
            introduced_at: now,
            activates_at: now + overlap,
            overlap_secs: overlap.as_secs(),
            endorsement,
        });
        write_ring_file(&self.paths.ring, &file).map_err(RotateError::Io)?;
        state.file = file;
        state.next = Some(key);
        self.rotated.notify_one();
        Ok(state.status())
    }

    /// Switches to the next key once its time has come and drops retiring keys past
    /// theirs. Called at start and periodically; what changed must then be published.
    pub fn advance(&self, now: Timestamp) -> anyhow::Result<Advanced> {
        let mut state = self.lock();
        let mut advanced = Advanced::default();
        let due = state
            .file
            .next
            .as_ref()
            .is_some_and(|next| next.activates_at <= now);
        if due {
            let next_key = state.next.clone().context("the next key is not loaded")?;
            let pending = state.file.next.clone().context("no next key")?;
            let old = state.current.clone();
            keys::keep_copy(&self.paths.current, &self.paths.retired(old.key_id()))?;
            keys::replace(&self.paths.current, &next_key)?;
            let mut file = state.file.clone();
            file.next = None;
            retire(&mut file, &old, now, pending.overlap_secs);
            file.current_key_id = Some(next_key.key_id());
            file.current_endorsement = Some(pending.endorsement);
            write_ring_file(&self.paths.ring, &file)?;
            let _ = fs::remove_file(&self.paths.next);
            advanced.activated = Some((old.key_id(), next_key.key_id()));
            state.file = file;
            state.current = next_key;
            state.next = None;
        }
        let before = state.file.retiring.len();
        let mut file = state.file.clone();
        file.retiring.retain(|key| {
            let keep = key.trusted_until.is_none_or(|until| now < until);
            if !keep {
                advanced.expired.push(key.key_id);
            }
            keep
        });
        if file.retiring.len() != before {
            write_ring_file(&self.paths.ring, &file)?;
            state.file = file;
        }
        Ok(advanced)
    }

    /// The key ring to publish: current, next, retiring.
    pub fn ring(&self) -> KeyRing {
        let state = self.lock();
        let mut keys = vec![ring_key(
            &state.current,
            None,
            state.file.current_endorsement.clone(),
        )];
        if let (Some(next), Some(pending)) = (&state.next, &state.file.next) {
            keys.push(ring_key(next, None, Some(pending.endorsement.clone())));
        }
        keys.extend(state.file.retiring.iter().cloned());
        KeyRing {
            signing_key_id: state.current.key_id(),
            keys,
        }
    }

    /// The keys agents trust as the ring says: what the server itself checks the fleet
    /// values it reads against.
    pub fn trusted(&self) -> TrustedKeys {
        let records: Vec<TrustedKey> = self
            .ring()
            .keys
            .into_iter()
            .map(|key| TrustedKey {
                key_id: key.key_id,
                public_key: key.public_key,
                trusted_until: key.trusted_until,
            })
            .collect();
        TrustedKeys::from_records(&records).unwrap_or_else(|_| {
            // The ring always holds the current key, which `from_records` accepts.
            TrustedKeys::pinned(self.current().verifying())
        })
    }

    /// The keys for `tutti keys status`.
    pub fn status(&self) -> KeysStatus {
        self.lock().status()
    }

    fn lock(&self) -> MutexGuard<'_, RingState> {
        // Every change is computed on a copy and stored whole, so a panic cannot leave a
        // half-changed state behind the lock.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl RingState {
    fn status(&self) -> KeysStatus {
        KeysStatus {
            current: self.current.key_id(),
            next: self.file.next.as_ref().map(|next| NextKeyStatus {
                key_id: next.key_id,
                introduced_at: next.introduced_at,
                activates_at: next.activates_at,
            }),
            retiring: self
                .file
                .retiring
                .iter()
                .filter_map(|key| {
                    Some(RetiringKeyStatus {
                        key_id: key.key_id,
                        trusted_until: key.trusted_until?,
                    })
                })
                .collect(),
        }
    }
}

fn ring_key(
    key: &ServerKey,
    trusted_until: Option<Timestamp>,
    endorsement: Option<Endorsement>,
) -> RingKey {
    RingKey {
        key_id: key.key_id(),
        public_key: key.public_base64(),
        trusted_until,
        endorsement,
    }
}

/// Moves the old current key to the retiring list, trusted for `overlap_secs` from `now`.
fn retire(file: &mut RingFile, old: &ServerKey, now: Timestamp, overlap_secs: i64) {
    let until = now + SignedDuration::from_secs(overlap_secs);
    let endorsement = file.current_endorsement.take();
    file.retiring.retain(|key| key.key_id != old.key_id());
    file.retiring.push(ring_key(old, Some(until), endorsement));
}

fn load_next(path: &Path, key_id: KeyId) -> anyhow::Result<ServerKey> {
    if !path.exists() {
        anyhow::bail!(
            "{} is missing, but a rotation to key {key_id} is in progress; restore it from a backup",
            path.display()
        );
    }
    let key = keys::load(path)?;
    if key.key_id() != key_id {
        anyhow::bail!(
            "{} holds key {}, but the rotation in progress is to {key_id}; restore it from a backup",
            path.display(),
            key.key_id()
        );
    }
    Ok(key)
}

fn read_ring_file(path: &Path) -> anyhow::Result<RingFile> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is corrupt; restore it from a backup", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(RingFile::default()),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn write_ring_file(path: &Path, file: &RingFile) -> anyhow::Result<()> {
    let body = serde_json::to_vec_pretty(file).context("encode the key ring")?;
    keys::write_atomically(path, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn a_rotation_introduces_switches_and_retires() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("signing.key");
        let ring = Keyring::open(&key_file).unwrap();
        let first = ring.current().key_id();
        assert_eq!(ring.ring().keys.len(), 1);

        let status = ring
            .rotate(SignedDuration::from_hours(1), at("2026-01-01T00:00:00Z"))
            .unwrap();
        let next = status.next.unwrap().key_id;
        assert!(matches!(
            ring.rotate(SignedDuration::from_hours(1), at("2026-01-01T00:10:00Z")),
            Err(RotateError::InProgress { .. })
        ));
        assert_eq!(ring.ring().keys.len(), 2);
        assert_eq!(ring.current().key_id(), first, "not before activates_at");
        assert!(!ring.advance(at("2026-01-01T00:59:00Z")).unwrap().changed());

        let advanced = ring.advance(at("2026-01-01T01:00:00Z")).unwrap();
        assert_eq!(advanced.activated, Some((first, next)));
        assert_eq!(ring.current().key_id(), next);
        assert!(
            dir.path()
                .join(format!("signing.key.{first}.retired"))
                .exists()
        );
        assert!(!dir.path().join("signing.key.next").exists());
        let published = ring.ring();
        assert_eq!(published.signing_key_id, next);
        assert_eq!(
            published.keys[1].trusted_until,
            Some(at("2026-01-01T02:00:00Z"))
        );

        // A restart reads the same state back.
        let reopened = Keyring::open(&key_file).unwrap();
        assert_eq!(reopened.ring(), published);

        let advanced = reopened.advance(at("2026-01-01T02:00:00Z")).unwrap();
        assert_eq!(advanced.expired, vec![first]);
        assert_eq!(reopened.ring().keys.len(), 1);
        // The endorsement stays with the key that is now alone in the ring.
        assert!(reopened.ring().keys[0].endorsement.is_some());
    }

    #[test]
    fn a_switch_interrupted_before_the_ring_file_is_completed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("signing.key");
        let ring = Keyring::open(&key_file).unwrap();
        let first = ring.current().key_id();
        let next = ring
            .rotate(SignedDuration::from_secs(5), Timestamp::now())
            .unwrap()
            .next
            .unwrap()
            .key_id;
        // What advance does up to the ring file.
        let paths = RingPaths::beside(&key_file);
        keys::keep_copy(&paths.current, &paths.retired(first)).unwrap();
        let next_key = keys::load_or_create(&paths.next).unwrap();
        keys::replace(&paths.current, &next_key).unwrap();

        let reopened = Keyring::open(&key_file).unwrap();
        assert_eq!(reopened.current().key_id(), next);
        let status = reopened.status();
        assert_eq!(status.next, None);
        assert_eq!(status.retiring[0].key_id, first);
    }

    #[test]
    fn a_key_file_that_does_not_match_the_ring_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("signing.key");
        Keyring::open(&key_file).unwrap();
        fs::remove_file(&key_file).unwrap();
        let err = Keyring::open(&key_file).unwrap_err();
        assert!(format!("{err:#}").contains("restore"), "{err:#}");
        assert!(matches!(
            Keyring::open(&dir.path().join("other.key"))
                .unwrap()
                .rotate(SignedDuration::ZERO, Timestamp::now()),
            Err(RotateError::OverlapTooShort)
        ));
    }
}
