//! `GET /install.sh?token=…` and `GET /downloads/{file}`: put an agent on a machine with
//! one pasted line, `curl -fsSL 'https://tutti.example.com/install.sh?token=T' | sudo sh`.
//!
//! The script downloads the agent binary for the machine's OS and architecture from this
//! server, compares its sha256 with the one written into the script, enrolls pinning this
//! server's command-signing key id (and the CA in `TUTTI_CA`, when the server's
//! certificate comes from a private CA), and installs the systemd service. The script
//! holds nothing secret besides the token the operator already put in its URL; the
//! binaries come from `enrollment.agent_binary_dir`, named `tutti-agent-<os>-<arch>`. Both
//! routes are public: a machine being installed has no credentials yet.
//!
//! The trust chain is the one the operator chose for the first `curl`: the script comes
//! over the same HTTPS connection as the hashes inside it, so a binary swapped on the way
//! or on disk fails the comparison, and the key id pins every later command.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::PoisonError;
use std::time::SystemTime;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::api::json::ApiQuery;
use crate::app::App;
use crate::error::{Error, Result};

/// The prefix of every downloadable agent binary.
const BINARY_PREFIX: &str = "tutti-agent-";

/// `GET /install.sh` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InstallQuery {
    /// The enrollment token the script enrolls with.
    pub token: String,
}

#[utoipa::path(get, path = "/install.sh", params(InstallQuery), responses((status = 200, description = "A POSIX shell script that installs and enrolls the agent", body = String, content_type = "text/x-shellscript"), (status = 400, body = crate::api::error::ErrorBody), (status = 404, description = "No agent binaries are configured", body = crate::api::error::ErrorBody)))]
/// The agent install script for one enrollment token.
pub async fn script(
    State(app): State<App>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<InstallQuery>,
) -> Result<Response> {
    check_token(&query.token)?;
    let dir = binary_dir(&app)?;
    let hashes = std::sync::Arc::clone(&app.binary_hashes);
    let binaries = tokio::task::spawn_blocking(move || list_binaries(&dir, &hashes))
        .await
        .map_err(|err| Error::internal("list agent binaries", err))??;
    if binaries.is_empty() {
        return Err(Error::NotFound(format!(
            "no agent binaries named {BINARY_PREFIX}<os>-<arch> in enrollment.agent_binary_dir"
        )));
    }
    let server_url = crate::public_url::base_url(&app.config, &headers).ok_or_else(|| {
        Error::bad_request(
            "the request has no usable Host header; set public_url in the server config",
        )
    })?;
    let text = render(
        &server_url,
        &query.token,
        &app.keys.current().key_id().to_string(),
        &binaries,
    );
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/x-shellscript; charset=utf-8"),
    );
    Ok(response)
}

#[utoipa::path(get, path = "/downloads/{file}", params(("file" = String, Path, description = "tutti-agent-<os>-<arch>")), responses((status = 200, description = "The agent binary", body = Vec<u8>, content_type = "application/octet-stream"), (status = 404, body = crate::api::error::ErrorBody)))]
/// An agent binary from `enrollment.agent_binary_dir`.
pub async fn download(State(app): State<App>, UrlPath(file): UrlPath<String>) -> Result<Response> {
    let dir = binary_dir(&app)?;
    if !is_binary_name(&file) {
        return Err(Error::NotFound(format!("no download named {file:?}")));
    }
    let path = dir.join(&file);
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|_| Error::NotFound(format!("no download named {file:?}")))?;
    let mut response = bytes.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(response)
}

/// One agent binary the script may download.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Binary {
    /// `linux-x86_64`.
    platform: String,
    sha256: String,
}

fn binary_dir(app: &App) -> Result<PathBuf> {
    app.config
        .enrollment
        .agent_binary_dir
        .clone()
        .ok_or_else(|| {
            Error::NotFound(
                "this server serves no install script: set enrollment.agent_binary_dir in its config".into(),
            )
        })
}

/// Tokens are what `tutti enroll-token create` mints (hex); anything else would have to be
/// quoted for the shell, and is not a token anyway.
fn check_token(token: &str) -> Result<()> {
    let plausible = (16..=128).contains(&token.len())
        && token
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    match plausible {
        true => Ok(()),
        false => Err(Error::bad_request(
            "token must be an enrollment token from `tutti enroll-token create`",
        )),
    }
}

fn is_binary_name(name: &str) -> bool {
    name.strip_prefix(BINARY_PREFIX).is_some_and(|platform| {
        platform.split_once('-').is_some_and(|(os, arch)| {
            [os, arch].iter().all(|part| {
                !part.is_empty()
                    && part.bytes().all(|byte| {
                        byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_'
                    })
            })
        })
    })
}

/// sha256 of the agent binaries, by path, size and modification time: a fleet enrolling at
/// once fetches the script hundreds of times, and each fetch would otherwise read and hash
/// every binary again. A replaced binary has a new size or time and is hashed anew.
#[derive(Debug, Default)]
pub struct BinaryHashes {
    known: std::sync::Mutex<HashMap<PathBuf, (u64, SystemTime, String)>>,
}

impl BinaryHashes {
    fn sha256_of(&self, path: &Path) -> std::io::Result<String> {
        let metadata = std::fs::metadata(path)?;
        let stamp = (metadata.len(), metadata.modified()?);
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((len, modified, sha256)) = known.get(path)
            && (*len, *modified) == stamp
        {
            return Ok(sha256.clone());
        }
        let sha256 = tutti_proto::digest::sha256_hex(&std::fs::read(path)?);
        known.insert(path.to_path_buf(), (stamp.0, stamp.1, sha256.clone()));
        Ok(sha256)
    }
}

fn list_binaries(dir: &Path, hashes: &BinaryHashes) -> Result<Vec<Binary>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|err| Error::internal("read enrollment.agent_binary_dir", err))?;
    let mut binaries = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !is_binary_name(&name) || !entry.path().is_file() {
            continue;
        }
        let sha256 = hashes
            .sha256_of(&entry.path())
            .map_err(|err| Error::internal("read an agent binary", err))?;
        binaries.push(Binary {
            platform: name[BINARY_PREFIX.len()..].to_string(),
            sha256,
        });
    }
    binaries.sort_by(|a, b| a.platform.cmp(&b.platform));
    Ok(binaries)
}

fn render(server_url: &str, token: &str, key_id: &str, binaries: &[Binary]) -> String {
    let cases: String = binaries
        .iter()
        .map(|binary| format!("  {}) SHA256={} ;;\n", binary.platform, binary.sha256))
        .collect();
    SCRIPT
        .replace("@SERVER@", server_url)
        .replace("@TOKEN@", token)
        .replace("@KEY_ID@", key_id)
        .replace("@CASES@", &cases)
}

/// The script. `TUTTI_CA` names a CA file for a server with a private CA (passed to curl
/// and to `tutti-agent enroll --ca`); `TUTTI_AGENT_ID` asks for an agent id instead of one
/// derived from the hostname; `TUTTI_INSTALL_ROOT` installs into a directory instead of the
/// running system (tests, image builds), without starting anything.
const SCRIPT: &str = r#"#!/bin/sh
# Installs the tutti agent and enrolls it with @SERVER@.
# Generated by that server for one enrollment token. Run as root:
#   curl -fsSL '@SERVER@/install.sh?token=...' | sudo sh
# With a private CA: curl --cacert ca.pem ... | sudo TUTTI_CA=ca.pem sh
# TUTTI_AGENT_ID=web-01 names the agent (default: from the hostname).
set -eu

SERVER='@SERVER@'
TOKEN='@TOKEN@'
SERVER_KEY_ID='@KEY_ID@'
CA="${TUTTI_CA:-}"
ROOT="${TUTTI_INSTALL_ROOT:-}"
AGENT_ID="${TUTTI_AGENT_ID:-}"

fail() { echo "tutti install: $*" >&2; exit 1; }

os=$(uname -s | tr '[:upper:]' '[:lower:]')
arch=$(uname -m)
case "$os-$arch" in
@CASES@  *) fail "this server has no agent binary for $os-$arch" ;;
esac

command -v curl >/dev/null 2>&1 || fail "curl is required"
if command -v sha256sum >/dev/null 2>&1; then
  sha() { sha256sum "$1" | cut -d' ' -f1; }
else
  sha() { shasum -a 256 "$1" | cut -d' ' -f1; }
fi
if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
  fail "run as root (e.g. curl ... | sudo sh)"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -n "$CA" ]; then
  curl -fsS --cacert "$CA" -o "$tmp/tutti-agent" "$SERVER/downloads/tutti-agent-$os-$arch"
else
  curl -fsS -o "$tmp/tutti-agent" "$SERVER/downloads/tutti-agent-$os-$arch"
fi
actual=$(sha "$tmp/tutti-agent")
[ "$actual" = "$SHA256" ] || fail "the downloaded agent's sha256 is $actual, expected $SHA256; nothing installed"

bin="$ROOT/usr/local/bin/tutti-agent"
config="$ROOT/etc/tutti/agent.toml"
mkdir -p "$ROOT/usr/local/bin" "$ROOT/etc/tutti"
install -m 0755 "$tmp/tutti-agent" "$bin"
if [ ! -f "$config" ]; then
  umask 077
  printf 'state_dir = "%s/var/lib/tutti-agent"\n' "$ROOT" > "$config"
fi

set -- --server "$SERVER" --token "$TOKEN" --server-key-id "$SERVER_KEY_ID" --config "$config"
[ -z "$CA" ] || set -- "$@" --ca "$CA"
[ -z "$AGENT_ID" ] || set -- "$@" --id "$AGENT_ID"
"$bin" enroll "$@"
if [ -n "$ROOT" ]; then
  "$bin" install --root "$ROOT" --binary /usr/local/bin/tutti-agent --no-start
else
  "$bin" install --binary /usr/local/bin/tutti-agent
fi
echo "tutti install: the agent is installed and enrolled with $SERVER"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_agent_binary_names_are_served() {
        for good in ["tutti-agent-linux-x86_64", "tutti-agent-linux-aarch64"] {
            assert!(is_binary_name(good), "{good}");
        }
        for bad in [
            "tutti-agent-",
            "tutti-agent-linux",
            "tutti-agent-../etc-passwd",
            "tutti-agent-linux-x86_64/../../x",
            "server.key",
            "tutti-agent-Linux-x86_64",
        ] {
            assert!(!is_binary_name(bad), "{bad}");
        }
    }

    #[test]
    fn tokens_that_would_need_quoting_are_refused() {
        assert!(check_token(&"a1".repeat(32)).is_ok());
        assert!(check_token("short").is_err());
        assert!(check_token(&format!("{}'; rm -rf /", "a".repeat(20))).is_err());
    }

    #[test]
    fn the_script_names_every_binary_with_its_hash() {
        let binaries = [Binary {
            platform: "linux-x86_64".into(),
            sha256: "ab".repeat(32),
        }];
        let text = render(
            "https://t.example",
            &"c".repeat(64),
            "0123456789abcdef",
            &binaries,
        );
        assert!(text.contains(&format!("  linux-x86_64) SHA256={} ;;\n", "ab".repeat(32))));
        assert!(text.contains("SERVER_KEY_ID='0123456789abcdef'"));
        for placeholder in ["@SERVER@", "@TOKEN@", "@KEY_ID@", "@CASES@"] {
            assert!(!text.contains(placeholder), "{placeholder} is filled");
        }
    }
}
