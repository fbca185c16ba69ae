//! [`BrokerAuth`]: the nkeys tutti owns for its broker, kept as seed files (mode 0600) in
//! one directory (mode 0700 when tutti creates it).
//!
//! Four keys: the operator (root of trust, written into the broker config), the system
//! account (the broker's own `$SYS` traffic), the tutti account's identity key (what users
//! belong to, and what the operator vouches for) and the tutti account's signing key (what
//! signs user JWTs, so the identity key is used only to name the account). A seed file
//! that exists but does not hold a seed of the right kind is an error naming the file:
//! generating a replacement would silently lock every agent out of the broker.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nkeys::{KeyPair, KeyPairType};

/// The operator's seed file.
pub const OPERATOR_SEED_FILE: &str = "operator.nk";
/// The system account's seed file.
pub const SYSTEM_ACCOUNT_SEED_FILE: &str = "system-account.nk";
/// The tutti account identity key's seed file.
pub const ACCOUNT_SEED_FILE: &str = "account.nk";
/// The tutti account signing key's seed file.
pub const ACCOUNT_SIGNING_SEED_FILE: &str = "account-signing.nk";

/// Why the broker keys could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// The directory or a seed file cannot be read or written.
    #[error("cannot access {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// A seed file exists but does not hold a seed of the expected kind.
    #[error("{path} does not hold a valid {expected} nkey seed: {detail}")]
    Corrupt {
        path: PathBuf,
        expected: &'static str,
        detail: String,
    },
}

/// The broker keys. Cloning copies the seeds; `Debug` shows public keys only.
#[derive(Clone)]
pub struct BrokerAuth {
    pub(super) operator: KeyPair,
    pub(super) system_account: KeyPair,
    pub(super) account: KeyPair,
    pub(super) account_signing: KeyPair,
}

impl BrokerAuth {
    /// Loads the four keys from `dir`, creating the directory and any missing key.
    /// Concurrent callers agree on one key per file: a new seed is linked into place only
    /// if no file is there yet, and the file that won is what everyone reads back.
    pub fn load_or_create(dir: &Path) -> Result<BrokerAuth, KeyStoreError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| io_error(dir, source))?;
        Ok(BrokerAuth {
            operator: load_or_create_key(dir, OPERATOR_SEED_FILE, KeyPairType::Operator)?,
            system_account: load_or_create_key(
                dir,
                SYSTEM_ACCOUNT_SEED_FILE,
                KeyPairType::Account,
            )?,
            account: load_or_create_key(dir, ACCOUNT_SEED_FILE, KeyPairType::Account)?,
            account_signing: load_or_create_key(
                dir,
                ACCOUNT_SIGNING_SEED_FILE,
                KeyPairType::Account,
            )?,
        })
    }

    /// The operator's public key (`O...`).
    pub fn operator_public_key(&self) -> String {
        self.operator.public_key()
    }

    /// The system account's public key (`A...`).
    pub fn system_account_public_key(&self) -> String {
        self.system_account.public_key()
    }

    /// The tutti account's public key (`A...`): the account every agent and the server
    /// connect in.
    pub fn account_public_key(&self) -> String {
        self.account.public_key()
    }

    /// The public key of the tutti account's signing key, the issuer of user JWTs.
    pub fn account_signing_public_key(&self) -> String {
        self.account_signing.public_key()
    }
}

impl fmt::Debug for BrokerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerAuth")
            .field("operator", &self.operator_public_key())
            .field("system_account", &self.system_account_public_key())
            .field("account", &self.account_public_key())
            .field("account_signing", &self.account_signing_public_key())
            .finish()
    }
}

fn load_or_create_key(
    dir: &Path,
    file_name: &str,
    kind: KeyPairType,
) -> Result<KeyPair, KeyStoreError> {
    let path = dir.join(file_name);
    if !path.exists() {
        let seed = KeyPair::new(kind.clone())
            .seed()
            .expect("a freshly generated key pair has a seed");
        create_seed_file(&path, &seed).map_err(|source| io_error(&path, source))?;
    }
    read_seed_file(&path, kind)
}

fn read_seed_file(path: &Path, kind: KeyPairType) -> Result<KeyPair, KeyStoreError> {
    let text = fs::read_to_string(path).map_err(|source| io_error(path, source))?;
    let corrupt = |detail: String| KeyStoreError::Corrupt {
        path: path.to_path_buf(),
        expected: kind_name(&kind),
        detail,
    };
    let key = KeyPair::from_seed(text.trim()).map_err(|err| corrupt(err.to_string()))?;
    if key.key_pair_type() != kind {
        return Err(corrupt(format!("it is a {:?} seed", key.key_pair_type())));
    }
    Ok(key)
}

/// Writes the seed to a private temporary file, then hard-links it into place, which fails
/// if another process got there first (then its seed stands and ours is dropped). A crash
/// leaves at worst a stray temporary file, never a half-written seed file.
fn create_seed_file(path: &Path, seed: &str) -> io::Result<()> {
    let temporary = path.with_extension(format!(
        "tmp-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let written = write_private(&temporary, seed);
    let linked = written.and_then(|()| match fs::hard_link(&temporary, path) {
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    });
    let _ = fs::remove_file(&temporary);
    linked
}

fn write_private(path: &Path, text: &str) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

fn kind_name(kind: &KeyPairType) -> &'static str {
    match kind {
        KeyPairType::Operator => "operator",
        KeyPairType::Account => "account",
        KeyPairType::User => "user",
        _ => "other",
    }
}

fn io_error(path: &Path, source: io::Error) -> KeyStoreError {
    KeyStoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}
