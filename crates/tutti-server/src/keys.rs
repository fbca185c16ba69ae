//! The server's ed25519 command-signing key: generated at first start, stored in the data
//! directory with mode 0600, reused on every later start.
//!
//! Agents pin the public key at enrollment, so losing this file means re-enrolling the
//! fleet; replacing it silently would make every agent refuse every command. That is why
//! a key file that exists but cannot be read is an error, never a reason to generate a new
//! one. The file holds the 32 seed bytes as 64 hex characters and a newline.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::RngCore;
use seed_hex::{decode_seed, encode_seed};
use tutti_proto::KeyId;
use tutti_proto::sign::{key_id_for, verifying_key_to_base64};

/// File name of the signing key inside the data directory.
pub(crate) const KEY_FILE: &str = "signing.key";

/// File name of the key that authenticates session cookies, in the same format: 32 random
/// bytes, separate from the signing key so either can be replaced without the other.
pub(crate) const SESSION_KEY_FILE: &str = "session.key";

/// The command-signing key and its id.
#[derive(Clone)]
pub struct ServerKey {
    signing: SigningKey,
    key_id: KeyId,
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ServerKey {{ key_id: {}, secret: <redacted> }}",
            self.key_id
        )
    }
}

impl ServerKey {
    /// A key from 32 seed bytes.
    pub fn from_seed(seed: [u8; 32]) -> ServerKey {
        let signing = SigningKey::from_bytes(&seed);
        let key_id = key_id_for(&signing.verifying_key());
        ServerKey { signing, key_id }
    }

    /// The private key, for signing commands.
    pub fn signing(&self) -> &SigningKey {
        &self.signing
    }

    /// The public key.
    pub fn verifying(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// The key id agents select the key by.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The public key as base64, the form handed out at enrollment.
    pub fn public_base64(&self) -> String {
        verifying_key_to_base64(&self.verifying())
    }
}

/// Loads the key from `path`, or generates and stores one there if there is none.
pub(crate) fn load_or_create(path: &Path) -> anyhow::Result<ServerKey> {
    let path = path.to_path_buf();
    if path.exists() {
        return load(&path);
    }
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    write_new(&path, &seed)?;
    let key = ServerKey::from_seed(seed);
    tracing::info!(key_id = %key.key_id(), path = %path.display(), "Generated a key (command signing or sessions, see the path).");
    Ok(key)
}

/// Loads an existing key file; a missing file is an error, never a new key.
pub(crate) fn load(path: &Path) -> anyhow::Result<ServerKey> {
    warn_if_readable_by_others(path);
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read the signing key {}", path.display()))?;
    let seed = decode_seed(text.trim()).with_context(|| {
        format!(
            "the signing key {} is corrupt; restore it from a backup (a new key would make every enrolled agent refuse commands)",
            path.display()
        )
    })?;
    let key = ServerKey::from_seed(seed);
    tracing::info!(key_id = %key.key_id(), path = %path.display(), "Loaded a key (command signing or sessions, see the path).");
    Ok(key)
}

fn write_new(path: &PathBuf, seed: &[u8; 32]) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create the signing key {}", path.display()))?;
    file.write_all(format!("{}\n", encode_seed(seed)).as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Copies a key file to `to` (mode 0600), unless a copy is there already.
pub(crate) fn keep_copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    if to.exists() {
        return Ok(());
    }
    let bytes = fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    write_atomically(to, &bytes)
}

/// Replaces the key file at `path` with `key`, atomically.
pub(crate) fn replace(path: &Path, key: &ServerKey) -> anyhow::Result<()> {
    let text = format!("{}\n", encode_seed(&key.signing().to_bytes()));
    write_atomically(path, text.as_bytes())
}

/// Writes `bytes` to `path` through a temporary file (mode 0600) and a rename, so a reader
/// sees the old content or the new, never a part.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(".tmp");
    let temp = PathBuf::from(temp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .with_context(|| format!("cannot write {}", temp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temp, path).with_context(|| format!("cannot write {}", path.display()))?;
    if let Some(dir) = path.parent()
        && let Ok(dir) = fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn warn_if_readable_by_others(path: &Path) {
    if let Ok(metadata) = fs::metadata(path)
        && metadata.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", metadata.permissions().mode() & 0o777),
            "The signing key is readable by other users; run chmod 600 on it."
        );
    }
}

/// The key file format: lowercase hex of the seed.
mod seed_hex {
    use anyhow::bail;

    const ALPHABET: &[u8; 16] = b"0123456789abcdef";

    /// Hex of the 32 seed bytes.
    pub(super) fn encode_seed(seed: &[u8; 32]) -> String {
        seed.iter()
            .flat_map(|byte| {
                [
                    ALPHABET[usize::from(byte >> 4)],
                    ALPHABET[usize::from(byte & 15)],
                ]
            })
            .map(char::from)
            .collect()
    }

    /// The 32 seed bytes from 64 hex characters.
    pub(super) fn decode_seed(text: &str) -> anyhow::Result<[u8; 32]> {
        if text.len() != 64 {
            bail!("expected 64 hex characters, found {}", text.len());
        }
        let mut seed = [0u8; 32];
        for (index, pair) in text.as_bytes().chunks(2).enumerate() {
            seed[index] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Ok(seed)
    }

    fn nibble(character: u8) -> anyhow::Result<u8> {
        match character {
            b'0'..=b'9' => Ok(character - b'0'),
            b'a'..=b'f' => Ok(character - b'a' + 10),
            b'A'..=b'F' => Ok(character - b'A' + 10),
            _ => bail!("{:?} is not a hex digit", char::from(character)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_once_with_mode_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(&dir.path().join(KEY_FILE)).unwrap();
        let mode = fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = load_or_create(&dir.path().join(KEY_FILE)).unwrap();
        assert_eq!(first.key_id(), second.key_id());
        assert_eq!(first.public_base64(), second.public_base64());
    }

    #[test]
    fn a_corrupt_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KEY_FILE), "not a key\n").unwrap();
        let err = load_or_create(&dir.path().join(KEY_FILE)).unwrap_err();
        assert!(format!("{err:#}").contains("corrupt"), "{err:#}");
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let key = ServerKey::from_seed([9; 32]);
        assert!(format!("{key:?}").contains("<redacted>"));
    }
}
