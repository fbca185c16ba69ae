//! CLI profiles: which server to talk to and with what token, stored in
//! `~/.config/tutti/cli.toml` (mode 0600) under a name, with one marked current.
//!
//! `tutti up` writes the `local` profile; `tutti login` writes others. The environment
//! variables `TUTTI_SERVER` and `TUTTI_TOKEN` override any profile; `main.rs` reads them and
//! passes them in as [`Overrides`].

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// The profiles file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Profiles {
    /// The profile used when none is named.
    #[serde(default)]
    pub current: Option<String>,
    /// Profiles by name.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// One server and its credentials.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Profile {
    /// The server's base URL, e.g. `http://127.0.0.1:8080`.
    pub server: String,
    /// An API token, when the server requires one.
    #[serde(default)]
    pub token: Option<String>,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = self.token.as_ref().map(|_| "<redacted>");
        f.debug_struct("Profile")
            .field("server", &self.server)
            .field("token", &token)
            .finish()
    }
}

/// Values from the environment that win over any profile.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overrides {
    /// `TUTTI_SERVER`.
    pub server: Option<String>,
    /// `TUTTI_TOKEN`.
    pub token: Option<String>,
}

impl Profiles {
    /// Reads the file; a missing file is an empty set of profiles.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Profiles> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).with_context(|| format!("parse {}", path.display())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Profiles::default()),
            Err(err) => Err(err).with_context(|| format!("read {}", path.display())),
        }
    }

    /// Writes the file atomically with mode 0600 (it holds tokens).
    pub(crate) fn save(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        let text = toml::to_string_pretty(self)?;
        let temp = path.with_extension("toml.tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)
            .with_context(|| format!("write {}", temp.display()))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path).with_context(|| format!("write {}", path.display()))
    }

    /// Adds or replaces a profile and makes it current.
    pub(crate) fn set_current(&mut self, name: &str, profile: Profile) {
        self.profiles.insert(name.to_string(), profile);
        self.current = Some(name.to_string());
    }

    /// The profile to use: the named one, else the current one; environment overrides win.
    pub(crate) fn resolve(
        &self,
        name: Option<&str>,
        overrides: &Overrides,
    ) -> anyhow::Result<Profile> {
        let chosen = name
            .or(self.current.as_deref())
            .and_then(|name| self.profiles.get(name));
        let server = overrides
            .server
            .clone()
            .or_else(|| chosen.map(|p| p.server.clone()));
        let Some(server) = server else {
            anyhow::bail!(
                "not logged in: run `tutti login --server URL`, start a local system with `tutti up`, or set TUTTI_SERVER"
            );
        };
        let token = overrides
            .token
            .clone()
            .or_else(|| chosen.and_then(|p| p.token.clone()));
        Ok(Profile { server, token })
    }
}

/// The default location: `$XDG_CONFIG_HOME/tutti/cli.toml`, else `~/.config/tutti/cli.toml`.
pub(crate) fn default_path(xdg_config_home: Option<PathBuf>, home: Option<PathBuf>) -> PathBuf {
    let base = xdg_config_home
        .or_else(|| home.map(|home| home.join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("tutti").join("cli.toml")
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn profiles_round_trip_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tutti").join("cli.toml");
        let mut profiles = Profiles::default();
        profiles.set_current(
            "local",
            Profile {
                server: "http://127.0.0.1:8080".into(),
                token: Some("t0k".into()),
            },
        );
        profiles.save(&path).unwrap();
        assert_eq!(Profiles::load(&path).unwrap(), profiles);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn environment_overrides_win_and_missing_login_says_what_to_do() {
        let mut profiles = Profiles::default();
        let err = profiles
            .resolve(None, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tutti login") && err.contains("tutti up"),
            "{err}"
        );

        profiles.set_current(
            "local",
            Profile {
                server: "http://a".into(),
                token: Some("x".into()),
            },
        );
        let overrides = Overrides {
            server: Some("http://b".into()),
            token: None,
        };
        let resolved = profiles.resolve(None, &overrides).unwrap();
        assert_eq!(resolved.server, "http://b");
        assert_eq!(resolved.token.as_deref(), Some("x"));
    }

    #[test]
    fn debug_output_hides_the_token() {
        let profile = Profile {
            server: "http://a".into(),
            token: Some("s3cret".into()),
        };
        assert!(!format!("{profile:?}").contains("s3cret"));
    }
}
