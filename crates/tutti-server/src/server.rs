//! Running the server: [`Server::start`] opens the [`App`], starts the projectors, the
//! heartbeat collector, the expiry sweep, the rollout driver and the HTTP listener; [`Server::stop`] stops them
//! in order. [`run`] is the whole lifecycle for `main.rs`.
//!
//! The listener is bound by the caller (port 0 in tests, the configured address in
//! `main.rs`), which is what lets a test run a server and many agents in one process.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::actor::{Actor, Role};
use crate::app::App;
use crate::auth::signin::{self, IssuedToken};
use crate::config::ServerConfig;
use crate::engine::{key_rotation, rollout, sweep};
use crate::projector::{self, Kind, heartbeats};
use crate::schedule::lease::{self, LeaseConfig, LeaseHandle};
use crate::schedule::scheduler;
use crate::tls::{TlsFiles, TlsListener, TlsReloader};
use crate::tokens::{self, CreatedToken, TokenRequest};

/// How long open HTTP connections (live views) get to finish at shutdown.
const HTTP_DRAIN: Duration = Duration::from_secs(5);

/// A running server.
#[derive(Debug)]
pub struct Server {
    app: App,
    local_addr: SocketAddr,
    tasks: JoinSet<()>,
    http: JoinHandle<std::io::Result<()>>,
    leader: Option<LeaseHandle>,
    tls: Option<TlsReloader>,
}

/// Runs the server on `listener` until `shutdown` resolves.
pub async fn run(
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let server = Server::start(config, listener).await?;
    shutdown.await;
    server.stop().await
}

impl Server {
    /// Opens every resource and starts serving on `listener`.
    pub async fn start(config: ServerConfig, listener: TcpListener) -> anyhow::Result<Server> {
        let local_addr = listener.local_addr().context("listener has no address")?;
        // The certificate is read before anything else opens, so a bad file fails the
        // start before the database or the broker are touched.
        let listener = HttpListener::new(listener, &config)?;
        // Boxed: opening holds the whole configuration and every resource being built.
        let app = Box::pin(App::open(config)).await?;
        let mut tasks = JoinSet::new();
        for kind in Kind::ALL {
            tasks.spawn(projector::run(app.clone(), kind, app.shutdown_signal()));
        }
        tasks.spawn(heartbeats::run(app.clone(), app.shutdown_signal()));
        let sweep_every = Duration::from_secs(app.config.runs.expiry_sweep_secs.max(1));
        tasks.spawn(sweep::run(app.clone(), sweep_every, app.shutdown_signal()));
        tasks.spawn(rollout::run(
            app.clone(),
            rollout::TICK,
            app.shutdown_signal(),
        ));
        tasks.spawn(key_rotation::run(
            app.clone(),
            key_rotation::TICK,
            app.shutdown_signal(),
        ));
        let leader = start_scheduler(&app, &mut tasks).await?;
        let tls = listener.reloader();
        let http = tokio::spawn(serve(app.clone(), listener));
        tracing::info!(address = %local_addr, https = tls.is_some(), key_id = %app.keys.current().key_id(), "The tutti server is listening.");
        Ok(Server {
            app,
            local_addr,
            tasks,
            http,
            leader,
            tls,
        })
    }

    /// Re-reads the HTTPS certificate and key (on SIGHUP); `Ok(false)` when the server
    /// speaks plain HTTP. On failure the current certificate stays in use.
    pub fn reload_tls(&self) -> anyhow::Result<bool> {
        match &self.tls {
            Some(reloader) => reloader.reload().map(|()| true).map_err(Into::into),
            None => Ok(false),
        }
    }

    /// The address the HTTP API listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://<address>`, or `https://` when the server speaks HTTPS.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// The scheduler lease's term while this server leads the scheduler.
    pub fn scheduler_term(&self) -> Option<u64> {
        self.leader.as_ref().and_then(LeaseHandle::term)
    }

    /// The shared state (store, bus, key, ...).
    pub fn app(&self) -> &App {
        &self.app
    }

    /// Creates an enrollment token as the server itself; returns the secret (shown once).
    pub async fn create_enrollment_token(
        &self,
        request: TokenRequest,
    ) -> anyhow::Result<CreatedToken> {
        let actor = Actor::system("tutti-server");
        tokens::create(&self.app, request, &actor)
            .await
            .map_err(|err| anyhow::anyhow!("cannot create an enrollment token: {err}"))
    }

    /// Issues an API token for an existing account, in process (how `tutti up` and test
    /// harnesses sign their clients in); returns the secret, shown once.
    pub async fn issue_api_token(
        &self,
        username: &str,
        name: &str,
        role: Role,
        expires_in_days: Option<u32>,
    ) -> anyhow::Result<IssuedToken> {
        let account = self.app.store.get_account(username).await?;
        let issued = signin::issue_api_token(&self.app, &account, name, role, expires_in_days)
            .await
            .map_err(|err| anyhow::anyhow!("cannot issue an API token: {err}"))?;
        let summary = serde_json::json!({ "name": issued.name, "role": issued.role });
        self.app
            .auditor
            .succeeded(
                &Actor::system("tutti-server"),
                "api_token.create",
                format!("api-token/{}", issued.token_id),
                summary,
            )
            .await;
        Ok(issued)
    }

    /// Stops the listener and every task, waiting for them to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.app.shutdown.send(true);
        match tokio::time::timeout(HTTP_DRAIN, &mut self.http).await {
            Ok(joined) => joined
                .context("the HTTP task panicked")?
                .context("the HTTP server failed")?,
            Err(_) => {
                tracing::warn!("Open HTTP connections did not close in time; dropping them.");
                self.http.abort();
            }
        }
        while let Some(joined) = self.tasks.join_next().await {
            joined.context("a server task panicked")?;
        }
        if let Some(lease) = self.leader.take() {
            // Released leases let another server take over at once instead of after the TTL.
            if tokio::time::timeout(HTTP_DRAIN, lease.join())
                .await
                .is_err()
            {
                tracing::warn!("The scheduler lease was not released in time.");
            }
        }
        tracing::info!("The tutti server stopped.");
        Ok(())
    }
}

/// Joins the scheduler's leader election and starts the loop that fires schedules while
/// this server leads; nothing when `[scheduler] enabled = false`.
async fn start_scheduler(
    app: &App,
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<Option<LeaseHandle>> {
    let config = &app.config.scheduler;
    if !config.enabled {
        return Ok(None);
    }
    let bucket = tutti_kv::Bucket::open(
        app.bus.jetstream(),
        tutti_proto::catalog::LEASES_BUCKET,
        app.bus.request_timeout(),
    )
    .await
    .context("cannot open the leases bucket")?;
    let holder = format!("{}-{}", app.config.bus.name, ulid::Ulid::new());
    let lease_config = LeaseConfig::with_ttl(Duration::from_secs(config.lease_ttl_secs));
    let lease = lease::spawn(bucket, holder, lease_config, app.shutdown_signal());
    let every = Duration::from_millis(config.tick_ms);
    tasks.spawn(scheduler::run(
        app.clone(),
        every,
        lease.changes(),
        app.shutdown_signal(),
    ));
    Ok(Some(lease))
}

/// The HTTP listener: plain, or HTTPS with a reloadable certificate.
enum HttpListener {
    Plain(TcpListener),
    Tls(TlsListener, TlsReloader),
}

impl HttpListener {
    fn new(listener: TcpListener, config: &ServerConfig) -> anyhow::Result<HttpListener> {
        let (Some(cert_file), Some(key_file)) =
            (&config.http.tls_cert_file, &config.http.tls_key_file)
        else {
            return Ok(HttpListener::Plain(listener));
        };
        let files = TlsFiles {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
        };
        let (listener, reloader) = TlsListener::new(listener, files)?;
        Ok(HttpListener::Tls(listener, reloader))
    }

    fn reloader(&self) -> Option<TlsReloader> {
        match self {
            HttpListener::Plain(_) => None,
            HttpListener::Tls(_, reloader) => Some(reloader.clone()),
        }
    }
}

async fn serve(app: App, listener: HttpListener) -> std::io::Result<()> {
    let mut shutdown = app.shutdown_signal();
    let router = crate::http::router(app);
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let stopped = async move {
        let _ = shutdown.changed().await;
    };
    match listener {
        HttpListener::Plain(listener) => {
            axum::serve(listener, service)
                .with_graceful_shutdown(stopped)
                .await
        }
        HttpListener::Tls(listener, _) => {
            axum::serve(listener.with_connect_info(), service)
                .with_graceful_shutdown(stopped)
                .await
        }
    }
}
