//! `TestServer`: the real tutti server, in-process, on `127.0.0.1:0` with a temporary data
//! directory, connected to a [`TestNats`].
//!
//! ```no_run
//! # async fn example() {
//! let nats = tutti_testkit::TestNats::start();
//! let server = tutti_testkit::TestServer::start(&nats).await;
//! let token = server.enrollment_token().await;
//! let runs: serde_json::Value = server.get("/api/v1/runs").await;
//! # }
//! ```
//! Timings are shortened for tests (small batch window, short ack wait and expiry sweep).
//! [`TestServer::restart`] keeps the data directory (database and signing key).

use std::path::Path;
use std::time::Duration;

use tempfile::TempDir;
use tutti_proto::role::Role;
use tutti_server::{App, Server, ServerConfig, TokenRequest};

use crate::TestNats;

/// How long test helpers wait for the server before failing.
pub const SERVER_WAIT: Duration = Duration::from_secs(30);

/// A running server for one test.
#[derive(Debug)]
pub struct TestServer {
    server: Option<Server>,
    config: ServerConfig,
    http: reqwest::Client,
    admin_token: String,
    // Declared last so the server stops before its directory is removed.
    dir: TempDir,
}

impl TestServer {
    /// Starts a server on `nats` with test timings.
    pub async fn start(nats: &TestNats) -> TestServer {
        TestServer::start_with(nats, |_| {}).await
    }

    /// Starts a server after `edit` adjusted its test configuration.
    pub async fn start_with(nats: &TestNats, edit: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let dir = tempfile::Builder::new()
            .prefix("tutti-server-")
            .tempdir()
            .expect("temp dir");
        let mut config = test_config(nats, dir.path());
        edit(&mut config);
        let server = start_server(config.clone()).await;
        let admin_token = server
            .issue_api_token("admin", "testkit", Role::Admin, None)
            .await
            .expect("issue the test client's admin token")
            .token;
        TestServer {
            server: Some(server),
            config,
            http: client_with_token(&admin_token),
            admin_token,
            dir,
        }
    }

    /// The secret of an admin API token the helpers send; it survives restarts.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// An HTTP client that sends the admin token with every request.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The first admin's generated password (from the data directory).
    pub fn initial_admin_password(&self) -> String {
        let path = self
            .dir
            .path()
            .join(tutti_server::auth::INITIAL_PASSWORD_FILE);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
            .trim()
            .to_string()
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.running().url()
    }

    /// The scheduler lease's term while this server leads the scheduler.
    pub fn scheduler_term(&self) -> Option<u64> {
        self.running().scheduler_term()
    }

    /// The server's shared state: store, bus, signing key.
    pub fn app(&self) -> &App {
        self.running().app()
    }

    /// The data directory (database and signing key).
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A fresh enrollment token good for 100 enrollments within an hour.
    pub async fn enrollment_token(&self) -> String {
        let request = TokenRequest {
            name: "test".into(),
            expires_in_secs: 3600,
            uses: 100,
            ..TokenRequest::default()
        };
        self.running()
            .create_enrollment_token(request)
            .await
            .expect("create enrollment token")
            .token
    }

    /// Stops the server; the data directory stays.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("server stops cleanly");
        }
    }

    /// Stops (if running) and starts again on a new port with the same data directory.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.server = Some(start_server(self.config.clone()).await);
    }

    /// `GET` a JSON document, asserting a 2xx status.
    pub async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        self.json_request(reqwest::Method::GET, path, None).await
    }

    /// `POST` a JSON body and decode the JSON answer, asserting a 2xx status.
    pub async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> T {
        self.json_request(reqwest::Method::POST, path, Some(body))
            .await
    }

    /// `PUT` a JSON body and decode the JSON answer, asserting a 2xx status.
    pub async fn put<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> T {
        self.json_request(reqwest::Method::PUT, path, Some(body))
            .await
    }

    async fn json_request<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> T {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.url()));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("send request");
        decode(response, method.as_str(), path).await
    }

    /// `POST` raw text with a content type (manifests); returns status and JSON body.
    pub async fn post_text(
        &self,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> (u16, serde_json::Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.url()))
            .header("content-type", content_type)
            .body(body.to_string())
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    /// `GET` returning the status and the JSON body (null when it is not JSON).
    pub async fn try_get(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.url()))
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    /// Polls `GET path` until it answers 2xx, failing after [`SERVER_WAIT`].
    pub async fn wait_for_ok(&self, path: &str, what: &str) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + SERVER_WAIT;
        loop {
            let (status, value) = self.try_get(path).await;
            if (200..300).contains(&status) {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; last {path}: {status} {value}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls `GET path` until `done` holds for its JSON, failing after [`SERVER_WAIT`].
    pub async fn wait_for(
        &self,
        path: &str,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + SERVER_WAIT;
        loop {
            let value: serde_json::Value = self.get(path).await;
            if done(&value) {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; last {path}: {value:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn running(&self) -> &Server {
        self.server.as_ref().expect("the test server is stopped")
    }
}

/// A server configuration for tests: the broker of `nats`, a 1 GiB storage budget and
/// short timings.
pub fn test_config(nats: &TestNats, data_dir: &Path) -> ServerConfig {
    let mut config = ServerConfig {
        data_dir: data_dir.to_path_buf(),
        ..ServerConfig::default()
    };
    config.bus.urls = vec![nats.url()];
    config.broker_identity.keys_dir = nats.keys_dir().map(Path::to_path_buf);
    config.storage.budget_bytes = 1 << 30;
    config.projector.batch_window_ms = 50;
    config.projector.ack_wait_secs = 2;
    config.runs.expiry_sweep_secs = 1;
    config
}

/// A client that sends `Authorization: Bearer <token>` with every request.
pub fn client_with_token(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
        .expect("a token is a valid header value");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("build an HTTP client")
}

async fn start_server(config: ServerConfig) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    tokio::time::timeout(SERVER_WAIT, Box::pin(Server::start(config, listener)))
        .await
        .expect("server start timed out")
        .expect("server starts")
}

async fn decode<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    method: &str,
    path: &str,
) -> T {
    let status = response.status();
    let text = response.text().await.expect("response body");
    assert!(
        status.is_success(),
        "{method} {path} answered {status}: {text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{method} {path}: {err}: {text}"))
}
