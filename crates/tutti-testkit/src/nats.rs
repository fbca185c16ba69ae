//! `TestNats`: one real `nats-server` with JetStream, on free ports, in a temp directory.
//!
//! ```no_run
//! let nats = tutti_testkit::TestNats::start();
//! let url = nats.url();
//! ```
//! The broker is killed and its directory removed on `Drop`. [`TestNats::restart`] and
//! [`TestNats::kill`] exist for fault tests; a restart keeps the port and the store.
//!
//! By default the broker runs in operator mode (NATS JWT auth from a
//! `tutti_bus::auth::BrokerAuth`), as `tutti up` runs it, so every test exercises per-agent
//! identities: [`TestNats::client`] and [`TestNats::bus_config`] connect as a
//! full-permission user of the tutti account, and `test_config` gives the server the same
//! keys. [`TestNatsOptions::open`] is an open broker, for the few tests about that.

use std::path::PathBuf;
use std::time::Duration;

use tempfile::TempDir;
use tutti_bus::auth::{BrokerAuth, UserLimits, UserPermissions};

use crate::process::NatsProcess;

/// Options for a single test broker.
#[derive(Debug, Clone)]
pub struct TestNatsOptions {
    /// JetStream `max_file_store` in bytes (the broker's storage reservation limit).
    pub max_file_store: u64,
    /// Extra lines appended verbatim to the broker config (e.g. `authorization { ... }`).
    pub extra_config: String,
    /// Operator mode (decentralized JWT auth, the default); `None` is an open broker.
    pub auth: Option<TestAuth>,
}

/// Where the broker keys of an operator-mode test broker come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestAuth {
    /// Fresh keys, kept in the broker's own temporary directory.
    Operator,
    /// The keys in this directory, created if missing (a test that mints users or writes
    /// configs from the same keys, or runs several brokers under one operator).
    OperatorWithKeys(PathBuf),
}

/// The operator-mode state of a running test broker.
#[derive(Debug)]
struct OperatorMode {
    key_dir: PathBuf,
    broker_auth: BrokerAuth,
    /// The `operator`/`resolver` config, generated once: regenerating it would issue new
    /// preloaded JWTs that win over updates pushed to the resolver since.
    config: String,
    admin_creds: String,
}

impl Default for TestNatsOptions {
    fn default() -> Self {
        TestNatsOptions {
            max_file_store: 16 * 1024 * 1024 * 1024,
            extra_config: String::new(),
            auth: Some(TestAuth::Operator),
        }
    }
}

impl TestNatsOptions {
    /// An open broker (no authentication), for tests about exactly that.
    pub fn open() -> TestNatsOptions {
        TestNatsOptions {
            auth: None,
            ..TestNatsOptions::default()
        }
    }
}

/// A running single-node broker for one test.
#[derive(Debug)]
pub struct TestNats {
    options: TestNatsOptions,
    operator_mode: Option<OperatorMode>,
    process: NatsProcess,
    client_port: u16,
    monitor_port: u16,
    // Declared last so the process is killed before its directory is removed.
    dir: TempDir,
}

impl TestNats {
    /// Starts a broker with default options and waits until JetStream is ready.
    pub fn start() -> TestNats {
        TestNats::start_with(TestNatsOptions::default())
    }

    /// Starts a broker with the given options and waits until JetStream is ready.
    pub fn start_with(options: TestNatsOptions) -> TestNats {
        let dir = tempfile::Builder::new()
            .prefix("tutti-nats-")
            .tempdir()
            .expect("temp dir");
        let operator_mode = options
            .auth
            .as_ref()
            .map(|auth| OperatorMode::new(auth, dir.path()));
        let auth_config = operator_mode.as_ref().map_or("", |mode| &mode.config);
        let config = config_text(dir.path(), &options, None, auth_config);
        let process = NatsProcess::start(dir.path(), &config);
        let ports = process.ports.expect("ports after start");
        let nats = TestNats {
            options,
            operator_mode,
            process,
            client_port: ports.client,
            monitor_port: ports.monitor,
            dir,
        };
        // Pin the chosen ports so a restart comes back where clients expect it.
        nats.process.rewrite_config(&config_text(
            nats.dir.path(),
            &nats.options,
            Some((nats.client_port, nats.monitor_port)),
            nats.operator_mode.as_ref().map_or("", |mode| &mode.config),
        ));
        nats
    }

    /// The client URL, e.g. `nats://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client_port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.client_port
    }

    /// The monitoring port (`/healthz`, `/varz`, `/jsz`, `/connz`).
    pub fn monitor_port(&self) -> u16 {
        self.monitor_port
    }

    /// Connects a plain async-nats client (for test publishers and assertions); in operator
    /// mode, as a full-permission user of the tutti account.
    pub async fn client(&self) -> async_nats::Client {
        let options = match &self.operator_mode {
            Some(mode) => async_nats::ConnectOptions::with_credentials(&mode.admin_creds)
                .expect("parse test admin creds"),
            None => async_nats::ConnectOptions::new(),
        };
        options
            .connection_timeout(Duration::from_secs(5))
            .connect(self.url())
            .await
            .expect("connect to test broker")
    }

    /// A JetStream context on a fresh client.
    pub async fn jetstream(&self) -> async_nats::jetstream::Context {
        async_nats::jetstream::new(self.client().await)
    }

    /// Stops the broker gracefully and starts it again on the same port and store,
    /// returning once JetStream is ready.
    pub fn restart(&mut self) {
        self.process.stop();
        self.process.spawn();
    }

    /// Kills the broker with SIGKILL (as a crash would). Call [`TestNats::start_again`] to
    /// bring it back on the same port and store.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Stops the broker gracefully without restarting it.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts a stopped or killed broker again on the same port and store.
    pub fn start_again(&mut self) {
        self.process.spawn();
    }

    /// The broker keys, in operator mode.
    pub fn broker_auth(&self) -> Option<&BrokerAuth> {
        self.operator_mode.as_ref().map(|mode| &mode.broker_auth)
    }

    /// The directory of the broker keys, in operator mode (a server's
    /// `[broker_identity] keys_dir`).
    pub fn keys_dir(&self) -> Option<&std::path::Path> {
        self.operator_mode
            .as_ref()
            .map(|mode| mode.key_dir.as_path())
    }

    /// A bus config for this broker, as the full-permission test user in operator mode.
    pub fn bus_config(&self) -> tutti_bus::BusConfig {
        let mut config = tutti_bus::BusConfig::for_url(self.url());
        if let Some(creds) = self.admin_creds() {
            config.auth = tutti_bus::Auth::Creds {
                creds: creds.to_string(),
            };
        }
        config
    }

    /// The creds [`TestNats::client`] connects with, in operator mode.
    pub fn admin_creds(&self) -> Option<&str> {
        self.operator_mode
            .as_ref()
            .map(|mode| mode.admin_creds.as_str())
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

impl OperatorMode {
    fn new(auth: &TestAuth, broker_dir: &std::path::Path) -> OperatorMode {
        let key_dir = match auth {
            TestAuth::Operator => broker_dir.join("auth"),
            TestAuth::OperatorWithKeys(dir) => dir.clone(),
        };
        let broker_auth = BrokerAuth::load_or_create(&key_dir)
            .unwrap_or_else(|err| panic!("test broker keys: {err}"));
        let config = broker_auth.nats_server_config(&broker_dir.join("jwt"), &[]);
        let admin_creds = broker_auth.mint_user_creds(
            "tutti-test-admin",
            &UserPermissions::full(),
            &UserLimits::unlimited(),
        );
        OperatorMode {
            key_dir,
            broker_auth,
            config,
            admin_creds,
        }
    }
}

fn config_text(
    dir: &std::path::Path,
    options: &TestNatsOptions,
    ports: Option<(u16, u16)>,
    auth_config: &str,
) -> String {
    let (client, monitor) = match ports {
        Some((client, monitor)) => (i32::from(client), i32::from(monitor)),
        None => (-1, -1),
    };
    format!(
        "server_name: tutti-test\nhost: 127.0.0.1\nport: {client}\nhttp: \"127.0.0.1:{monitor}\"\n\
         jetstream {{\n  store_dir: {store:?}\n  max_file_store: {max_file}\n  max_memory_store: 268435456\n}}\n{auth_config}{extra}\n",
        store = dir.join("jetstream").display().to_string(),
        max_file = options.max_file_store,
        extra = options.extra_config,
    )
}
