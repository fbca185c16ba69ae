//! [`App`], the live resources every handler and task shares: config, store, broker,
//! signing key, fleet KV buckets, auditor, metrics and the run-change notifier.
//!
//! Built by [`App::open`] from a validated [`ServerConfig`] in the order the resources
//! depend on each other: data directory, signing key, database, broker, JetStream
//! resources, KV buckets. Nothing here runs in the background; `server.rs` starts the
//! tasks and the HTTP listener.

use std::ops::Deref;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::{broadcast, watch};
use tutti_bus::{Bus, Outcome, connect, ensure_resources};
use tutti_proto::RunId;
use tutti_proto::catalog::Catalog;
use tutti_store::Store;

use crate::audit::Auditor;
use crate::auth::{Auth, signin};
use crate::broker_identity::BrokerIdentity;
use crate::config::ServerConfig;
use crate::fleet_kv::FleetKv;
use crate::keyring::Keyring;
use crate::keys;
use crate::metrics::Metrics;

/// The shared state of a running server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct App {
    inner: Arc<AppInner>,
}

/// What [`App`] holds.
#[derive(Debug)]
pub struct AppInner {
    /// The validated configuration.
    pub config: ServerConfig,
    /// The database.
    pub store: Store,
    /// The broker connection.
    pub bus: Bus,
    /// The command-signing keys: the current one and a rotation's next and retiring ones.
    pub keys: Keyring,
    /// KV buckets agents follow.
    pub kv: FleetKv,
    /// Audit publisher.
    pub auditor: Auditor,
    /// Sign-in state: session key, throttle, TOTP replay guard.
    pub auth: Auth,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// Runs whose targets may have changed (projectors, kills, expiry), for live views.
    pub run_changes: broadcast::Sender<RunId>,
    /// Becomes `true` when the server stops; long-lived responses (SSE) end then.
    pub shutdown: watch::Sender<bool>,
    /// Per-agent broker identities, when `[broker_identity]` is configured.
    pub broker_identity: Option<BrokerIdentity>,
    /// Hashes of the agent binaries the install script names.
    pub binary_hashes: Arc<crate::api::install::BinaryHashes>,
    /// The first admin's password when this start created the account, until the binary
    /// takes it to show it once (library code never prints it).
    first_admin_password: std::sync::Mutex<Option<String>>,
}

impl Deref for App {
    type Target = AppInner;

    fn deref(&self) -> &AppInner {
        &self.inner
    }
}

impl App {
    /// Opens every resource the server needs; the broker must be reachable.
    pub async fn open(config: ServerConfig) -> anyhow::Result<App> {
        config
            .validate()
            .map_err(|(key, message)| anyhow::anyhow!("{key}: {message}"))?;
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                config.data_dir.display()
            )
        })?;
        let signing_keys = Keyring::open(&config.signing_key_path())?;
        let store = Store::open_sqlite(config.database_path())
            .await
            .with_context(|| format!("cannot open {}", config.database_path().display()))?;
        let first_admin_password = signin::bootstrap_first_admin(&store, &config.data_dir)
            .await
            .context("cannot create the first admin account")?;
        let auth_config = crate::config::AuthConfig {
            secure_cookies: config.secure_cookies(),
            ..config.auth.clone()
        };
        let session_key = keys::load_or_create(&config.data_dir.join(keys::SESSION_KEY_FILE))?;
        let auth = Auth::new(&auth_config, &session_key.signing().to_bytes());
        let broker_identity = BrokerIdentity::open(&config)?;
        let bus_config = match &broker_identity {
            Some(identity) => identity.server_bus_config(),
            None => config.bus.clone(),
        };
        // Boxed, like the other large awaits here, so `App::open` stays a small future.
        let bus = Box::pin(connect(&bus_config))
            .await
            .context("cannot connect to the broker")?;
        bootstrap(&bus, &config).await?;
        if let Some(identity) = &broker_identity {
            Box::pin(identity.push_revocations(&store, bus.request_timeout())).await?;
        }
        let kv = FleetKv::open(bus.jetstream(), bus.request_timeout(), signing_keys.clone())
            .await
            .context("cannot open the fleet KV buckets")?;
        let auditor = Auditor::new(bus.jetstream().clone(), bus.request_timeout());
        let (run_changes, _) = broadcast::channel(1024);
        let (shutdown, _) = watch::channel(false);
        let inner = AppInner {
            config,
            store,
            bus,
            keys: signing_keys,
            kv,
            auditor,
            auth,
            metrics: Metrics::default(),
            run_changes,
            shutdown,
            first_admin_password: std::sync::Mutex::new(first_admin_password),
            broker_identity,
            binary_hashes: Arc::default(),
        };
        Ok(App {
            inner: Arc::new(inner),
        })
    }

    /// The first admin's generated password, once, if this start created the account.
    pub fn take_first_admin_password(&self) -> Option<String> {
        self.first_admin_password
            .lock()
            .map(|mut password| password.take())
            .unwrap_or(None)
    }

    /// A receiver that changes when the server stops.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Tells live views that `run_id` may have changed. Nobody listening is fine.
    pub fn notify_run_changed(&self, run_id: RunId) {
        let _ = self.run_changes.send(run_id);
    }
}

/// Creates or reconciles every stream, bucket and object store, logging what changed.
async fn bootstrap(bus: &Bus, config: &ServerConfig) -> anyhow::Result<()> {
    let catalog = Catalog::tutti(&config.catalog());
    let outcomes = ensure_resources(bus, &catalog)
        .await
        .context("cannot create tutti's JetStream resources")?;
    let created = outcomes
        .iter()
        .filter(|outcome| outcome.outcome == Outcome::Created)
        .count();
    let drifted = outcomes
        .iter()
        .filter(|outcome| !matches!(outcome.outcome, Outcome::Created | Outcome::Unchanged))
        .count();
    tracing::info!(
        n_resources = outcomes.len(),
        n_created = created,
        n_reconciled = drifted,
        "JetStream resources are in place."
    );
    Ok(())
}
