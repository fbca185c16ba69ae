//! Reading a config file: TOML syntax, the shape of [`ServerConfig`], `TUTTI_*` overrides,
//! then the value checks, with every error pointing at a file, a line and a key.
//!
//! An operator fixes a config by its error message alone, so each message has the form
//! `server.toml:12: database.path: cannot read ...` (the line is left out where the key
//! is not in the file, e.g. a default that an override made invalid). Shape errors come
//! with serde's path of the key; value checks name their key and this module finds the
//! line that sets it.

use std::fmt;
use std::path::{Path, PathBuf};

use super::{LogFormat, ServerConfig};

/// A config that parsed and passed every check, with where it came from.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    /// The file, when it came from one.
    pub path: Option<PathBuf>,
    /// The file's text (to point at lines later, e.g. for `listen` when binding fails).
    pub text: String,
    /// The checked configuration.
    pub config: ServerConfig,
}

/// A config problem: which file, which line, which key, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (as given), absent for text parsed without one.
    pub file: Option<String>,
    /// The 1-based line, when the key is written in the file.
    pub line: Option<usize>,
    /// The dotted key (`http.tls_cert_file`), or the environment variable.
    pub key: Option<String>,
    /// What is wrong and, where it helps, what to do.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let location = match (&self.file, self.line) {
            (Some(file), Some(line)) => format!("{file}:{line}: "),
            (Some(file), None) => format!("{file}: "),
            (None, Some(line)) => format!("{line}: "),
            (None, None) => String::new(),
        };
        match &self.key {
            Some(key) => write!(f, "{location}{key}: {}", self.message),
            None => write!(f, "{location}{}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Settings taken from `TUTTI_*` environment variables, which win over the file (the habit
/// of container and systemd deployments). Only `main.rs` reads the environment and fills
/// this in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvOverrides {
    /// `TUTTI_LISTEN`: `listen`.
    pub listen: Option<String>,
    /// `TUTTI_DATA_DIR`: `data_dir`.
    pub data_dir: Option<String>,
    /// `TUTTI_PUBLIC_URL`: `public_url`.
    pub public_url: Option<String>,
    /// `TUTTI_NATS_URLS`: `bus.urls`, comma-separated.
    pub nats_urls: Option<String>,
    /// `TUTTI_LOG_FORMAT`: `log.format` (`human` or `json`).
    pub log_format: Option<String>,
}

impl ConfigFile {
    /// Reads and checks `path` with `overrides` applied.
    pub fn load(path: &Path, overrides: &EnvOverrides) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError {
            file: Some(path.display().to_string()),
            line: None,
            key: None,
            message: format!("cannot read the config file: {err}"),
        })?;
        ConfigFile::parse(Some(path), &text, overrides)
    }

    /// Parses and checks `text` (from `path`, if any) with `overrides` applied.
    pub fn parse(
        path: Option<&Path>,
        text: &str,
        overrides: &EnvOverrides,
    ) -> Result<ConfigFile, ConfigError> {
        let file = path.map(|path| path.display().to_string());
        let mut config = deserialize(text).map_err(|mut err| {
            err.file = file.clone();
            err
        })?;
        apply_overrides(&mut config, overrides)?;
        let located = ConfigFile {
            path: path.map(Path::to_path_buf),
            text: text.to_string(),
            config,
        };
        if let Err((key, message)) = located.config.validate() {
            return Err(located.error_at(&key, message));
        }
        Ok(located)
    }

    /// An error about `key`, pointing at the line that sets it (if the file sets it).
    pub fn error_at(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.path.as_ref().map(|path| path.display().to_string()),
            line: line_of(&self.text, key),
            key: Some(key.to_string()),
            message: message.into(),
        }
    }
}

fn deserialize(text: &str) -> Result<ServerConfig, ConfigError> {
    let deserializer = toml::de::Deserializer::parse(text).map_err(|err| toml_error(text, &err))?;
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let key = err.path().to_string();
        let mut error = toml_error(text, err.inner());
        if key != "." && !key.is_empty() {
            error.line = error.line.or_else(|| line_of(text, &key));
            error.key = Some(key);
        }
        error
    })
}

fn toml_error(text: &str, err: &toml::de::Error) -> ConfigError {
    let line = err
        .span()
        .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
    ConfigError {
        file: None,
        line,
        key: None,
        message: err.message().trim_end().to_string(),
    }
}

fn apply_overrides(config: &mut ServerConfig, env: &EnvOverrides) -> Result<(), ConfigError> {
    let env_error = |variable: &str, key: &str, message: String| ConfigError {
        file: None,
        line: None,
        key: Some(format!("{variable} ({key})")),
        message,
    };
    if let Some(listen) = &env.listen {
        config.listen = listen.trim().parse().map_err(|_| {
            env_error(
                "TUTTI_LISTEN",
                "listen",
                format!("{listen:?} is not an address like 0.0.0.0:8443"),
            )
        })?;
    }
    if let Some(data_dir) = &env.data_dir {
        config.data_dir = PathBuf::from(data_dir);
    }
    if let Some(public_url) = &env.public_url {
        config.public_url = public_url.trim().to_string();
    }
    if let Some(urls) = &env.nats_urls {
        config.bus.urls = urls
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(String::from)
            .collect();
    }
    if let Some(format) = &env.log_format {
        config.log.format = match format.trim() {
            "human" => LogFormat::Human,
            "json" => LogFormat::Json,
            other => {
                return Err(env_error(
                    "TUTTI_LOG_FORMAT",
                    "log.format",
                    format!("{other:?} is not a log format; use human or json"),
                ));
            }
        };
    }
    Ok(())
}

/// The 1-based line that sets `key` (`http.tls_cert_file`), or, for a key inside an inline
/// table or array, the line of the longest key that contains it. Tracks `[table]` headers;
/// enough for config files, which is all this reads.
fn line_of(text: &str, key: &str) -> Option<usize> {
    let mut table = String::new();
    let mut best: Option<(usize, usize)> = None;
    for (line_idx, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        let full = if let Some(header) = trimmed.strip_prefix('[') {
            table = header
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or_default()
                .replace([' ', '"'], "");
            table.clone()
        } else if let Some((name, _)) = trimmed.split_once('=')
            && !trimmed.starts_with('#')
        {
            let name = name.trim().replace([' ', '"'], "");
            match table.is_empty() {
                true => name,
                false => format!("{table}.{name}"),
            }
        } else {
            continue;
        };
        if full == key {
            return Some(line_idx + 1);
        }
        let is_prefix = key.starts_with(&full) && key[full.len()..].starts_with('.');
        if is_prefix && best.is_none_or(|(len, _)| full.len() > len) {
            best = Some((full.len(), line_idx + 1));
        }
    }
    best.map(|(_, line)| line)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "listen = \"127.0.0.1:1\"\n\n[http]\n# a comment = 1\nbody_limit_bytes = 5\n\n[enrollment]\nnats_auth = { method = \"token\", token = \"t\" }\n";

    #[test]
    fn keys_are_found_on_their_lines() {
        assert_eq!(line_of(TEXT, "listen"), Some(1));
        assert_eq!(line_of(TEXT, "http.body_limit_bytes"), Some(5));
        assert_eq!(line_of(TEXT, "enrollment.nats_auth.token"), Some(8));
        assert_eq!(line_of(TEXT, "http.tls_cert_file"), Some(3));
        assert_eq!(line_of(TEXT, "bus.urls"), None);
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let err = ConfigFile::parse(
            Some(Path::new("server.toml")),
            TEXT,
            &EnvOverrides::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "server.toml:5: http.body_limit_bytes: must be at least 1024"
        );
    }

    #[test]
    fn a_wrong_type_names_the_key() {
        let err = ServerConfig::parse("[storage]\nreplicas = \"three\"\n").unwrap_err();
        assert_eq!(err.line, Some(2), "{err}");
        assert_eq!(err.key.as_deref(), Some("storage.replicas"), "{err}");
    }

    #[test]
    fn overrides_win_and_name_their_variable() {
        let overrides = EnvOverrides {
            listen: Some("0.0.0.0:9443".into()),
            nats_urls: Some("nats://a:4222, nats://b:4222".into()),
            ..EnvOverrides::default()
        };
        let file = ConfigFile::parse(None, "", &overrides).unwrap();
        assert_eq!(file.config.listen.port(), 9443);
        assert_eq!(file.config.bus.urls.len(), 2);
        let bad = EnvOverrides {
            log_format: Some("xml".into()),
            ..EnvOverrides::default()
        };
        let err = ConfigFile::parse(None, "", &bad).unwrap_err().to_string();
        assert!(err.starts_with("TUTTI_LOG_FORMAT (log.format): "), "{err}");
    }
}
