//! The HTTP API client: every operator command goes through here (never through NATS).
//!
//! Errors are turned into messages that say what to do next: an unreachable server asks
//! whether `tutti up` is running, a refused request shows the server's own message.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::profile::Profile;

/// Why a command failed, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Bad usage or configuration (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The server is unreachable, or its answer is unusable (exit 3).
    #[error("{0}")]
    Server(String),
    /// The server answered with an error status (exit 3). Commands that can say more
    /// (`apply` turns a 400 into `FILE:LINE:COLUMN`) match on it.
    #[error("the server refused ({status}): {message}")]
    Refused {
        /// The HTTP status code.
        status: u16,
        /// The server's own message.
        message: String,
    },
    /// Something else (exit 1... reserved for failed targets; other failures use 1 too).
    #[error("{0}")]
    Other(String),
}

impl CliError {
    /// The process exit code.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Server(_) | CliError::Refused { .. } => 3,
            CliError::Other(_) => 1,
        }
    }
}

impl From<anyhow::Error> for CliError {
    fn from(error: anyhow::Error) -> Self {
        CliError::Other(format!("{error:#}"))
    }
}

/// The certificates of a CA bundle (`--ca`, `TUTTI_CA`, a profile's `ca_file`).
fn read_ca_file(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, CliError> {
    let pem = std::fs::read(path).map_err(|err| {
        CliError::Usage(format!("cannot read the CA file {}: {err}", path.display()))
    })?;
    match reqwest::Certificate::from_pem_bundle(&pem) {
        Ok(certificates) if !certificates.is_empty() => Ok(certificates),
        Ok(_) => Err(CliError::Usage(format!(
            "the CA file {} holds no certificate",
            path.display()
        ))),
        Err(err) => Err(CliError::Usage(format!(
            "the CA file {} is not PEM: {err}",
            path.display()
        ))),
    }
}

/// A client for one server.
#[derive(Debug, Clone)]
pub(crate) struct ApiClient {
    base: String,
    token: Option<String>,
    ca_file: Option<std::path::PathBuf>,
    http: reqwest::Client,
}

impl ApiClient {
    /// A client for the profile's server.
    pub(crate) fn new(profile: &Profile) -> Result<ApiClient, CliError> {
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(60));
        if let Some(ca_file) = &profile.ca_file {
            builder = builder.tls_built_in_root_certs(false);
            for certificate in read_ca_file(ca_file)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder
            .build()
            .map_err(|err| CliError::Other(err.to_string()))?;
        Ok(ApiClient {
            base: profile.server.trim_end_matches('/').to_string(),
            token: profile.token.clone(),
            ca_file: profile.ca_file.clone(),
            http,
        })
    }

    /// The server's base URL.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// The CA file this client trusts for the server's certificate, if not the system's.
    pub(crate) fn ca_file(&self) -> Option<&std::path::Path> {
        self.ca_file.as_deref()
    }

    /// `GET /api/v1/<path>` decoded as `T`.
    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let request = self.http.get(self.url(path));
        self.send(request).await
    }

    /// `POST /api/v1/<path>` with a JSON body, decoded as `T`.
    pub(crate) async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, CliError> {
        let request = self.http.post(self.url(path)).json(body);
        self.send(request).await
    }

    /// `PUT /api/v1/<path>` with a JSON body, decoded as `T`.
    pub(crate) async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, CliError> {
        let request = self.http.put(self.url(path)).json(body);
        self.send(request).await
    }

    /// `POST /api/v1/<path>` without a body, decoded as `T`.
    pub(crate) async fn post_empty<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let request = self.http.post(self.url(path));
        self.send(request).await
    }

    /// `POST /api/v1/<path>` with a JSON body, for routes that answer without one (204).
    pub(crate) async fn post_no_answer<B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<(), CliError> {
        let request = self.http.post(self.url(path)).json(body);
        self.send_raw(request).await.map(|_| ())
    }

    /// `PATCH /api/v1/<path>` with a JSON body, decoded as `T`.
    pub(crate) async fn patch<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, CliError> {
        let request = self.http.patch(self.url(path)).json(body);
        self.send(request).await
    }

    /// `POST /api/v1/<path>` with a YAML body (`application/yaml`), decoded as `T`.
    pub(crate) async fn post_yaml<T: DeserializeOwned>(
        &self,
        path: &str,
        yaml: String,
    ) -> Result<T, CliError> {
        let request = self
            .http
            .post(self.url(path))
            .header(reqwest::header::CONTENT_TYPE, "application/yaml")
            .body(yaml);
        self.send(request).await
    }

    /// `DELETE /api/v1/<path>`; the answer's body (usually none) is ignored.
    pub(crate) async fn delete(&self, path: &str) -> Result<(), CliError> {
        let request = self.http.delete(self.url(path));
        self.send_raw(request).await.map(|_| ())
    }

    /// `DELETE /api/v1/<path>` for routes that answer with a JSON body, decoded as `T`.
    pub(crate) async fn delete_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let request = self.http.delete(self.url(path));
        self.send(request).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1/{}", self.base, path.trim_start_matches('/'))
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, CliError> {
        let body = self.send_raw(request).await?;
        let deserializer = &mut serde_json::Deserializer::from_slice(&body);
        serde_path_to_error::deserialize(deserializer).map_err(|err| {
            CliError::Other(format!(
                "the server's answer is not understood at `{}`: {}; are the CLI and server versions the same?",
                err.path(),
                err.inner()
            ))
        })
    }

    async fn send_raw(&self, mut request: reqwest::RequestBuilder) -> Result<Vec<u8>, CliError> {
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|err| self.unreachable(err))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|err| self.unreachable(err))?;
        if !status.is_success() {
            return Err(CliError::Refused {
                status: status.as_u16(),
                message: error_message(&body),
            });
        }
        Ok(body.to_vec())
    }

    fn unreachable(&self, err: reqwest::Error) -> CliError {
        let unreachable = err.is_connect() || err.is_timeout();
        // The whole source chain: reqwest hides a TLS failure in a source.
        let detail = format!("{:#}", anyhow::Error::new(err));
        if detail.contains("certificate") || detail.contains("UnknownIssuer") {
            return CliError::Server(format!(
                "the server at {} presented a certificate this CLI does not trust ({detail}); pass the server's CA with `tutti login --ca FILE` or TUTTI_CA",
                self.base
            ));
        }
        if unreachable {
            return CliError::Server(format!(
                "server unreachable at {}: is `tutti up` running? ({detail})",
                self.base
            ));
        }
        CliError::Server(format!("request to {} failed: {detail}", self.base))
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, for query values and
/// path segments.
pub(crate) fn urlencode(text: &str) -> String {
    const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, UNRESERVED).to_string()
}

/// The `message` (or `error`) field of an error body, else the body itself.
fn error_message(body: &[u8]) -> String {
    match serde_json::from_slice::<tutti_api::errors::ErrorBody>(body) {
        Ok(answer) if !answer.message.is_empty() => answer.message,
        Ok(answer) => answer.error,
        Err(_) => String::from_utf8_lossy(body).trim().to_string(),
    }
}
