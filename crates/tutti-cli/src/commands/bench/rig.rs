//! The system under test of one scenario: a [`BenchBroker`], the real server in this process
//! (SQLite in a temporary directory, production settings), and an admin HTTP client. Every
//! operator action a scenario takes (creating runs, changing the fleet configuration) goes
//! through the HTTP API, as an operator's would.
//!
//! Everything lives under one temporary directory that is removed when the rig is dropped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tutti_bus::BusConfig;
use tutti_bus::auth::{BrokerAuth, UserLimits, UserPermissions};
use tutti_bus::nats_server::locate_or_provision;
use tutti_proto::role::Role;
use tutti_server::auth::FIRST_ADMIN;
use tutti_server::{App, Server, ServerConfig, TokenRequest};

use super::broker::BenchBroker;
use super::report::Progress;
use crate::Env;
use crate::args::BenchCommon;

/// How long the server may take to start.
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(60);

/// Broker, server and admin client of one scenario.
#[derive(Debug)]
pub(crate) struct Rig {
    pub(crate) broker: BenchBroker,
    /// Credentials of the benchmark's own broker client (full permissions: it plays the
    /// fleet in `ingest` and measures raw NATS in `fanout`).
    bench_creds: Option<String>,
    server: Option<Server>,
    server_config: ServerConfig,
    http: reqwest::Client,
    // Declared last so the processes stop before their directory is removed.
    dir: TempDir,
}

/// How agents authenticate to the benchmark's broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BrokerAuthMode {
    /// Operator mode, as shipped: each agent is its own user with its own permissions.
    Operator,
    /// No authentication. Only `fanout` uses it: its raw-NATS baseline subscribes every
    /// agent's own connection to one shared subject, which per-agent permissions forbid.
    Open,
}

impl Rig {
    /// Starts the broker and the server.
    pub(crate) async fn start(
        common: &BenchCommon,
        env: &Env,
        progress: &Progress,
        mode: BrokerAuthMode,
    ) -> anyhow::Result<Rig> {
        let dir = tempfile::Builder::new()
            .prefix("tutti-bench-")
            .tempdir()
            .context("create the benchmark's temporary directory")?;
        progress.say("starting the broker");
        let mut search = env.nats_search.clone();
        search.explicit = common.nats_server.clone();
        let broker_dir = dir.path().join("nats");
        let keys_dir = dir.path().join("broker-keys");
        let auth = BrokerAuth::load_or_create(&keys_dir)
            .map_err(|err| anyhow::anyhow!("create the broker keys: {err}"))?;
        let auth_config = match mode {
            BrokerAuthMode::Operator => auth.nats_server_config(&broker_dir.join("jwt"), &[]),
            BrokerAuthMode::Open => String::new(),
        };
        let bench_creds = (mode == BrokerAuthMode::Operator).then(|| {
            auth.mint_user_creds(
                "tutti bench",
                &UserPermissions::full(),
                &UserLimits::unlimited(),
            )
        });
        let broker = tokio::task::spawn_blocking(move || {
            let binary = locate_or_provision(&search, &mut |_| {})?;
            BenchBroker::start(&binary, &broker_dir, auth_config)
        })
        .await
        .context("the broker start task failed")??;
        progress.say("starting the server");
        let mut server_config = server_config(&dir.path().join("server"), &broker.url());
        if mode == BrokerAuthMode::Operator {
            server_config.broker_identity.keys_dir = Some(keys_dir);
        }
        let server = start_server(server_config.clone()).await?;
        let token = server
            .issue_api_token(FIRST_ADMIN, "tutti bench", Role::Admin, None)
            .await?
            .token;
        Ok(Rig {
            broker,
            bench_creds,
            server: Some(server),
            server_config,
            http: admin_client(&token)?,
            dir,
        })
    }

    /// The running server.
    pub(crate) fn server(&self) -> anyhow::Result<&Server> {
        self.server.as_ref().context("the server is stopped")
    }

    /// The running server's shared state (store, bus, run-change notifications).
    pub(crate) fn app(&self) -> anyhow::Result<&App> {
        Ok(self.server()?.app())
    }

    /// The SQLite database file.
    pub(crate) fn database_path(&self) -> PathBuf {
        self.server_config.database_path()
    }

    /// The temporary directory everything lives in.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// An enrollment token good for `uses` enrollments within a day.
    pub(crate) async fn enrollment_token(&self, uses: usize) -> anyhow::Result<String> {
        let request = TokenRequest {
            name: "tutti bench".into(),
            expires_in_secs: 24 * 3600,
            uses: u32::try_from(uses.max(1)).context("too many agents for one token")?,
            ..TokenRequest::default()
        };
        Ok(self.server()?.create_enrollment_token(request).await?.token)
    }

    /// `POST` a JSON body to the API and decode the answer.
    pub(crate) async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let url = format!("{}{path}", self.server()?.url());
        decode(self.http.post(url).json(body).send().await, path).await
    }

    /// `PUT` a JSON body to the API and decode the answer.
    pub(crate) async fn put(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let url = format!("{}{path}", self.server()?.url());
        decode(self.http.put(url).json(body).send().await, path).await
    }

    /// A plain broker client for the benchmark's own subscriptions and publishes.
    pub(crate) async fn nats_client(&self) -> anyhow::Result<async_nats::Client> {
        let options = match &self.bench_creds {
            Some(creds) => async_nats::ConnectOptions::with_credentials(creds)
                .context("the benchmark's broker credentials")?,
            None => async_nats::ConnectOptions::new(),
        };
        options
            .name("tutti bench")
            .connection_timeout(Duration::from_secs(10))
            .retry_on_initial_connect()
            .connect(self.broker.url())
            .await
            .context("connect the benchmark's own client to the broker")
    }

    /// Stops the server; the database stays.
    pub(crate) async fn stop_server(&mut self) -> anyhow::Result<()> {
        if let Some(server) = self.server.take() {
            server.stop().await?;
        }
        Ok(())
    }

    /// Starts the stopped server again on the same database (on a new port).
    pub(crate) async fn start_server_again(&mut self) -> anyhow::Result<()> {
        if self.server.is_some() {
            bail!("the server is already running");
        }
        self.server = Some(start_server(self.server_config.clone()).await?);
        Ok(())
    }

    /// Stops the server, then the broker.
    pub(crate) async fn shutdown(mut self) {
        if let Err(err) = self.stop_server().await {
            eprintln!("tutti bench: the server stopped with an error: {err:#}");
        }
        let mut broker = self.broker;
        let _ = tokio::task::spawn_blocking(move || broker.stop()).await;
    }
}

/// The server's production defaults, on the benchmark's broker and directory.
fn server_config(data_dir: &Path, nats_url: &str) -> ServerConfig {
    let mut config = ServerConfig {
        data_dir: data_dir.to_path_buf(),
        bus: BusConfig {
            name: "tutti-server (tutti bench)".into(),
            ..BusConfig::for_url(nats_url)
        },
        ..ServerConfig::default()
    };
    config.enrollment.nats_urls = vec![nats_url.to_string()];
    config
}

async fn start_server(mut config: ServerConfig) -> anyhow::Result<Server> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind the server's HTTP listener")?;
    config.listen = listener.local_addr()?;
    tokio::time::timeout(SERVER_START_TIMEOUT, Server::start(config, listener))
        .await
        .context("the server did not start in time")?
}

fn admin_client(token: &str) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
        .context("an API token is a valid header value")?;
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(120))
        .build()
        .context("build the admin HTTP client")
}

async fn decode(
    response: reqwest::Result<reqwest::Response>,
    path: &str,
) -> anyhow::Result<serde_json::Value> {
    let response = response.with_context(|| format!("send {path}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .with_context(|| format!("read the answer to {path}"))?;
    if !status.is_success() {
        bail!("{path} answered {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("{path} answered with invalid JSON"))
}
