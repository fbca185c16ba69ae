//! CLI profiles: which server to talk to and with what token, stored in
//! `~/.config/tutti/cli.toml` (mode 0600) under a name, with one marked current.
//!
//! `tutti up` writes the `local` profile; `tutti login` writes others, and remembers the id
//! of each token it issued so that `tutti logout` can revoke it. The environment
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
    /// The ids of the API tokens `tutti login` issued, by profile name, so that `tutti
    /// logout` can revoke them. A token given with `--token` has none: only its secret is
    /// known, and the server lists tokens by id and name, never by secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub issued_token_ids: BTreeMap<String, String>,
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
    /// A PEM file of the CA(s) to trust for the server's HTTPS certificate instead of the
    /// system roots (a private CA, or `tutti up --tls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = self.token.as_ref().map(|_| "<redacted>");
        f.debug_struct("Profile")
            .field("server", &self.server)
            .field("token", &token)
            .field("ca_file", &self.ca_file)
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
    /// `TUTTI_CA`.
    pub ca_file: Option<PathBuf>,
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

    /// Adds or replaces a profile and makes it current. A replaced profile's issued token
    /// id is forgotten with it.
    pub(crate) fn set_current(&mut self, name: &str, profile: Profile) {
        self.profiles.insert(name.to_string(), profile);
        self.issued_token_ids.remove(name);
        self.current = Some(name.to_string());
    }

    /// Like [`Profiles::set_current`], remembering the id of the token `tutti login` issued.
    pub(crate) fn set_current_issued(&mut self, name: &str, profile: Profile, token_id: String) {
        self.set_current(name, profile);
        self.issued_token_ids.insert(name.to_string(), token_id);
    }

    /// Removes a profile; it and its issued token id, if it existed.
    pub(crate) fn forget(&mut self, name: &str) -> Option<(Profile, Option<String>)> {
        let profile = self.profiles.remove(name)?;
        if self.current.as_deref() == Some(name) {
            self.current = None;
        }
        Some((profile, self.issued_token_ids.remove(name)))
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
        let ca_file = overrides
            .ca_file
            .clone()
            .or_else(|| chosen.and_then(|p| p.ca_file.clone()));
        Ok(Profile {
            server,
            token,
            ca_file,
        })
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
                ca_file: None,
            },
        );
        profiles.set_current_issued(
            "staging",
            Profile {
                server: "https://staging.example.com".into(),
                token: Some("s3cret".into()),
                ca_file: None,
            },
            "0a1b2c3d".into(),
        );
        profiles.save(&path).unwrap();
        assert_eq!(Profiles::load(&path).unwrap(), profiles);
        assert_eq!(profiles.issued_token_ids["staging"], "0a1b2c3d");
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
                ca_file: None,
            },
        );
        let overrides = Overrides {
            server: Some("http://b".into()),
            token: None,
            ca_file: None,
        };
        let resolved = profiles.resolve(None, &overrides).unwrap();
        assert_eq!(resolved.server, "http://b");
        assert_eq!(resolved.token.as_deref(), Some("x"));
    }

    #[test]
    fn replacing_or_forgetting_a_profile_drops_its_issued_token_id() {
        let profile = || Profile {
            server: "http://a".into(),
            token: Some("x".into()),
            ca_file: None,
        };
        let mut profiles = Profiles::default();
        profiles.set_current_issued("a", profile(), "id1".into());
        profiles.set_current("a", profile());
        assert!(profiles.issued_token_ids.is_empty(), "{profiles:?}");

        profiles.set_current_issued("a", profile(), "id2".into());
        let (_, token_id) = profiles.forget("a").unwrap();
        assert_eq!(token_id.as_deref(), Some("id2"));
        assert_eq!(profiles.current, None);
        assert!(profiles.forget("a").is_none());
    }

    #[test]
    fn debug_output_hides_the_token() {
        let profile = Profile {
            server: "http://a".into(),
            token: Some("s3cret".into()),
            ca_file: None,
        };
        assert!(!format!("{profile:?}").contains("s3cret"));
    }
}
