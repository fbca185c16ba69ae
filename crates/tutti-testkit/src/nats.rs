//! `TestNats`: one real `nats-server` with JetStream, on free ports, in a temp directory.
//!
//! ```no_run
//! let nats = tutti_testkit::TestNats::start();
//! let url = nats.url();
//! ```
//! The broker is killed and its directory removed on `Drop`. [`TestNats::restart`] and
//! [`TestNats::kill`] exist for fault tests; a restart keeps the port and the store.

use std::time::Duration;

use tempfile::TempDir;

use crate::process::NatsProcess;

/// Options for a single test broker.
#[derive(Debug, Clone)]
pub struct TestNatsOptions {
    /// JetStream `max_file_store` in bytes (the broker's storage reservation limit).
    pub max_file_store: u64,
    /// Extra lines appended verbatim to the broker config (e.g. `authorization { ... }`).
    pub extra_config: String,
}

impl Default for TestNatsOptions {
    fn default() -> Self {
        TestNatsOptions {
            max_file_store: 16 * 1024 * 1024 * 1024,
            extra_config: String::new(),
        }
    }
}

/// A running single-node broker for one test.
#[derive(Debug)]
pub struct TestNats {
    options: TestNatsOptions,
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
        let config = config_text(dir.path(), &options, None);
        let process = NatsProcess::start(dir.path(), &config);
        let ports = process.ports.expect("ports after start");
        let nats = TestNats {
            options,
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

    /// Connects a plain async-nats client (for test publishers and assertions).
    pub async fn client(&self) -> async_nats::Client {
        async_nats::ConnectOptions::new()
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

    /// The broker's log so far.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

fn config_text(
    dir: &std::path::Path,
    options: &TestNatsOptions,
    ports: Option<(u16, u16)>,
) -> String {
    let (client, monitor) = match ports {
        Some((client, monitor)) => (i32::from(client), i32::from(monitor)),
        None => (-1, -1),
    };
    format!(
        "server_name: tutti-test\nhost: 127.0.0.1\nport: {client}\nhttp: \"127.0.0.1:{monitor}\"\n\
         jetstream {{\n  store_dir: {store:?}\n  max_file_store: {max_file}\n  max_memory_store: 268435456\n}}\n{extra}\n",
        store = dir.join("jetstream").display().to_string(),
        max_file = options.max_file_store,
        extra = options.extra_config,
    )
}
