//! `tutti up`: a complete local system in one command — a broker (the pinned `nats-server`,
//! provisioned on first use), the server with SQLite, and one enrolled local agent — with
//! everything kept under `--data-dir`, so running it again resumes where it stopped.
//!
//! The server starts the way `tutti server` starts it: `up` writes `<data-dir>/server.toml`
//! and loads it through the same loader (`commands::server`), so there is one path from a
//! config file to a running server. With `--tls`, a local CA (`tutti_server::pki`) signs
//! certificates for the broker and the HTTPS server, and the agent enrolls pinning the CA
//! and the signing key, so TLS runs on every developer machine, not only in production.
//!
//! It writes the `local` CLI profile so `tutti run --all --wait -- echo hello` works from
//! another terminal at once. Ctrl-C stops the agent, the server and the broker, in that order.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::net::TcpListener;
use tutti_bus::nats_server::locate_or_provision;
use tutti_bus::{BusConfig, TlsConfig};
use tutti_proto::role::Role;
use tutti_server::auth::{FIRST_ADMIN, INITIAL_PASSWORD_FILE};
use tutti_server::pki::LocalPki;
use tutti_server::tls::TlsFiles;
use tutti_server::{Server, ServerConfig, TokenRequest};

use crate::Env;
use crate::args::UpArgs;
use crate::broker::Broker;
use crate::client::CliError;
use crate::profile::{Profile, Profiles};

/// JetStream storage the embedded broker may use; the server's catalog asks for less.
const BROKER_MAX_FILE_STORE: u64 = 8 << 30;
/// The profile `tutti up` writes.
const PROFILE_NAME: &str = "local";
/// The server config `tutti up` writes into the data directory.
const CONFIG_FILE: &str = "server.toml";

/// Where `tutti up` keeps the broker's operator and account keys.
const BROKER_KEYS_DIR: &str = "broker-keys";

/// The certificates of `tutti up --tls`.
struct LocalTls {
    ca_file: PathBuf,
    broker: TlsFiles,
    server: TlsFiles,
}

/// Starts everything and runs until Ctrl-C or SIGTERM.
pub(crate) async fn up(args: UpArgs, env: &Env) -> Result<(), CliError> {
    let data_dir = absolute(&args.data_dir)?;
    std::fs::create_dir_all(&data_dir).with_context(|| format!("create {}", data_dir.display()))?;
    init_logging(&data_dir)?;
    let listener = TcpListener::bind(args.http).await.map_err(|err| {
        CliError::Usage(format!(
            "cannot listen on {} ({err}); is another `tutti up` running? Choose another address with --http",
            args.http
        ))
    })?;
    let tls = match args.tls {
        true => Some(local_tls(&data_dir)?),
        false => None,
    };
    let keys_dir = broker_keys_dir(&args, &data_dir);
    let (broker, nats_url) =
        start_broker(&args, env, &data_dir, tls.as_ref(), keys_dir.as_deref()).await?;
    let server = start_server(
        &data_dir,
        &nats_url,
        tls.as_ref(),
        keys_dir.as_deref(),
        listener,
        env,
    )
    .await?;
    let agent = match args.no_agent {
        true => None,
        false => Some(start_agent(&server, &data_dir, tls.as_ref(), &nats_url).await?),
    };
    let ca_file = tls.as_ref().map(|tls| tls.ca_file.clone());
    write_profile(env, &server, ca_file).await?;
    super::server::show_first_admin_password(&server);
    let initial_password = initial_password(&server).await;
    print_welcome(
        &server.url(),
        &data_dir,
        agent.is_some(),
        initial_password,
        env,
    );
    if keys_dir.is_none() && args.nats_url.is_none() {
        println!(
            "\nNote: this data directory predates per-agent broker identities, so its broker\n\
             accepts any client. Start with a new --data-dir to have every agent connect as\n\
             its own user (docs/deploy.md)."
        );
    }

    shutdown_signal().await;
    eprintln!("\nstopping…");
    if let Some(agent) = agent {
        agent.stop().await;
    }
    server.stop().await?;
    if let Some(broker) = broker {
        tokio::task::spawn_blocking(move || broker.stop())
            .await
            .ok();
    }
    eprintln!("stopped; data kept in {}", data_dir.display());
    Ok(())
}

/// A local CA under `<data-dir>/tls` (kept across starts) and fresh certificates for the
/// broker and the HTTPS server on loopback.
fn local_tls(data_dir: &Path) -> Result<LocalTls, CliError> {
    let pki = LocalPki::load_or_create(&data_dir.join("tls"))?;
    let hosts = vec![
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        "::1".to_string(),
    ];
    let broker = pki.issue("broker", &hosts)?.tls_files();
    let server = pki.issue("server", &hosts)?.tls_files();
    Ok(LocalTls {
        ca_file: pki.ca_cert.clone(),
        broker,
        server,
    })
}

/// The embedded broker runs in NATS operator mode, each agent its own user, for every data
/// directory created since per-agent broker identities exist. An older data directory keeps
/// its open broker: in operator mode JetStream keeps the account's streams elsewhere, and the
/// local agent's cursor would point past the empty new streams. `--nats-url` brokers are
/// the operator's to configure.
fn broker_keys_dir(args: &UpArgs, data_dir: &Path) -> Option<PathBuf> {
    let keys_dir = data_dir.join(BROKER_KEYS_DIR);
    let fresh = !data_dir.join("nats").join("jetstream").exists();
    (args.nats_url.is_none() && (fresh || keys_dir.exists())).then_some(keys_dir)
}

/// The broker's operator-mode settings, with the revocations the server recorded (the
/// broker prefers its preloaded account JWT when it is newer, so the list must be complete).
async fn operator_config(keys_dir: &Path, data_dir: &Path) -> Result<String, CliError> {
    let auth = tutti_bus::auth::BrokerAuth::load_or_create(keys_dir)
        .map_err(|err| CliError::Other(format!("broker keys: {err}")))?;
    let database = data_dir
        .join("server")
        .join(tutti_server::config::DATABASE_FILE);
    let mut revocations = Vec::new();
    if database.exists() {
        let store = tutti_store::Store::open_sqlite(&database)
            .await
            .with_context(|| format!("open {}", database.display()))?;
        for identity in store
            .revoked_broker_identities()
            .await
            .context("read revoked broker keys")?
        {
            let at = identity.revoked_at.map_or(0, |at| at.as_second());
            revocations.push((identity.public_key, u64::try_from(at).unwrap_or(0)));
        }
    }
    let resolver_dir = data_dir.join("nats").join("jwt");
    Ok(auth.nats_server_config(&resolver_dir, &revocations))
}

async fn start_broker(
    args: &UpArgs,
    env: &Env,
    data_dir: &Path,
    tls: Option<&LocalTls>,
    keys_dir: Option<&Path>,
) -> Result<(Option<Broker>, String), CliError> {
    if let Some(url) = &args.nats_url {
        return Ok((None, url.clone()));
    }
    crate::broker::ensure_port_free(args.nats_port, "--nats-port")?;
    let mut search = env.nats_search.clone();
    search.explicit = args.nats_server.clone();
    let spinner = spinner("looking for nats-server");
    let progress_bar = spinner.clone();
    let binary = tokio::task::spawn_blocking(move || {
        locate_or_provision(&search, &mut |line| {
            progress_bar.set_message(line.to_string())
        })
    })
    .await
    .map_err(|err| CliError::Other(err.to_string()))?
    .map_err(|err| CliError::Usage(err.to_string()))?;
    spinner.set_message(format!("starting {}", binary.display()));
    let dir = data_dir.join("nats");
    let port = args.nats_port;
    let broker_tls = tls.map(|tls| tls.broker.clone());
    let auth_config = match keys_dir {
        Some(keys_dir) => operator_config(keys_dir, data_dir).await?,
        None => String::new(),
    };
    let broker = tokio::task::spawn_blocking(move || {
        Broker::start(
            &binary,
            &dir,
            port,
            BROKER_MAX_FILE_STORE,
            broker_tls.as_ref(),
            &auth_config,
        )
    })
    .await
    .map_err(|err| CliError::Other(err.to_string()))??;
    spinner.finish_and_clear();
    let url = broker.url();
    Ok((Some(broker), url))
}

/// Writes `<data-dir>/server.toml` for this start (the flags decide it, so it is rewritten
/// every time) and starts the server from it through `tutti server`'s loader.
async fn start_server(
    data_dir: &Path,
    nats_url: &str,
    tls: Option<&LocalTls>,
    keys_dir: Option<&Path>,
    listener: TcpListener,
    env: &Env,
) -> Result<Server, CliError> {
    let spinner = spinner("starting the server");
    let mut config = server_config(data_dir, nats_url, tls, &listener)?;
    config.broker_identity.keys_dir = keys_dir.map(Path::to_path_buf);
    let path = data_dir.join(CONFIG_FILE);
    let text = format!(
        "# Written by `tutti up` at every start from its flags; edit the flags, not this file.\n\
         # The same format as `tutti server --config FILE` (crates/tutti-server/server.example.toml).\n\n{}",
        toml::to_string_pretty(&config).context("write the server config")?
    );
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    let file = super::server::load(&path, env)?;
    let server = super::server::start(file.config, listener).await?;
    spinner.finish_and_clear();
    Ok(server)
}

fn server_config(
    data_dir: &Path,
    nats_url: &str,
    tls: Option<&LocalTls>,
    listener: &TcpListener,
) -> Result<ServerConfig, CliError> {
    let mut config = ServerConfig {
        listen: listener.local_addr().context("listener address")?,
        data_dir: data_dir.join("server"),
        bus: BusConfig {
            name: "tutti-server (tutti up)".into(),
            ..BusConfig::for_url(nats_url)
        },
        ..ServerConfig::default()
    };
    config.enrollment.nats_urls = vec![nats_url.to_string()];
    if let Some(tls) = tls {
        config.bus.tls = Some(TlsConfig {
            required: true,
            ca_file: Some(tls.ca_file.clone()),
            ..TlsConfig::default()
        });
        config.enrollment.nats_require_tls = true;
        config.http.tls_cert_file = Some(tls.server.cert_file.clone());
        config.http.tls_key_file = Some(tls.server.key_file.clone());
    }
    Ok(config)
}

/// The local agent, running in this process.
struct LocalAgent {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl LocalAgent {
    async fn stop(self) {
        let _ = self.stop.send(());
        match tokio::time::timeout(Duration::from_secs(15), self.task).await {
            Ok(Ok(Err(err))) => eprintln!("tutti: the local agent stopped with an error: {err:#}"),
            Ok(Err(err)) => eprintln!("tutti: the local agent task failed: {err}"),
            Err(_) => eprintln!("tutti: the local agent did not stop in time"),
            Ok(Ok(Ok(()))) => {}
        }
    }
}

async fn start_agent(
    server: &Server,
    data_dir: &Path,
    tls: Option<&LocalTls>,
    nats_url: &str,
) -> Result<LocalAgent, CliError> {
    let state_dir = data_dir.join("agent");
    match tutti_agent::identity::load(&state_dir) {
        Ok(identity) => follow_broker_mode(&state_dir, identity, server, tls)?,
        Err(tutti_agent::identity::IdentityError::NotEnrolled { .. }) => {
            enroll_local_agent(server, &state_dir, tls).await?;
        }
        Err(err) => return Err(CliError::Other(err.to_string())),
    }
    let config = tutti_agent::LocalConfig {
        state_dir,
        nats_urls: vec![nats_url.to_string()],
        ..tutti_agent::LocalConfig::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        tutti_agent::run(config, tutti_agent::AgentOptions::default(), shutdown).await
    });
    Ok(LocalAgent { stop, task })
}

/// Enrolls the local agent the way an operator would on another machine: with `--tls`,
/// pinning the CA of the HTTPS certificate and the server's signing key.
async fn enroll_local_agent(
    server: &Server,
    state_dir: &Path,
    tls: Option<&LocalTls>,
) -> Result<(), CliError> {
    let request = TokenRequest {
        name: "tutti up: local agent".into(),
        expires_in_secs: 600,
        uses: 1,
        groups: Vec::new(),
    };
    let token = server.create_enrollment_token(request).await?;
    let options = tutti_agent::enroll::EnrollOptions {
        ca_file: tls.map(|tls| tls.ca_file.clone()),
        server_key_id: Some(server.app().keys.current().key_id()),
        ..tutti_agent::enroll::EnrollOptions::default()
    };
    tutti_agent::enroll::enroll(&server.url(), &token.token, state_dir, options).await?;
    Ok(())
}

/// A data directory first used without `--tls` and now with it (or the other way round)
/// keeps its agent: its broker trust follows the broker `up` runs now. Only `up` may do
/// this, because it runs both ends.
fn follow_broker_mode(
    state_dir: &Path,
    mut identity: tutti_agent::Identity,
    server: &Server,
    tls: Option<&LocalTls>,
) -> Result<(), CliError> {
    let ca_pem = match tls {
        Some(tls) => Some(
            std::fs::read_to_string(&tls.ca_file)
                .with_context(|| format!("read {}", tls.ca_file.display()))?,
        ),
        None => None,
    };
    if identity.nats_ca_pem == ca_pem && identity.nats_require_tls == tls.is_some() {
        return Ok(());
    }
    identity.nats_ca_pem = ca_pem;
    identity.nats_require_tls = tls.is_some();
    identity.nats_urls = server.app().config.agent_nats_urls();
    tutti_agent::identity::save(state_dir, &identity)
        .map_err(|err| CliError::Other(err.to_string()))
}

/// Points the `local` profile at this server with an admin API token: the one already in
/// the profile while it still works, else a new one (so restarts do not pile up tokens).
async fn write_profile(
    env: &Env,
    server: &Server,
    ca_file: Option<PathBuf>,
) -> Result<(), CliError> {
    let mut profiles = Profiles::load(&env.profiles_path)?;
    let existing = profiles
        .profiles
        .get(PROFILE_NAME)
        .and_then(|profile| profile.token.clone());
    let token = match existing {
        Some(token) if token_works(server, &token).await => token,
        _ => {
            server
                .issue_api_token(FIRST_ADMIN, "tutti up: local CLI", Role::Admin, None)
                .await?
                .token
        }
    };
    profiles.set_current(
        PROFILE_NAME,
        Profile {
            server: server.url(),
            token: Some(token),
            ca_file,
        },
    );
    profiles.save(&env.profiles_path)?;
    Ok(())
}

async fn token_works(server: &Server, token: &str) -> bool {
    let hash = tutti_server::auth::secret::hash(token);
    server
        .app()
        .store
        .authenticate_api_token(&hash, jiff::Timestamp::now())
        .await
        .is_ok_and(|auth| !auth.owner_disabled && auth.token.role == Role::Admin)
}

/// Where the first admin's password is, while it has not been changed yet.
async fn initial_password(server: &Server) -> Option<PathBuf> {
    let admin = server.app().store.get_account(FIRST_ADMIN).await.ok()?;
    let path = server.app().config.data_dir.join(INITIAL_PASSWORD_FILE);
    (admin.must_change_password && path.exists()).then_some(path)
}

fn print_welcome(
    url: &str,
    data_dir: &Path,
    with_agent: bool,
    initial_password: Option<PathBuf>,
    env: &Env,
) {
    println!("tutti is up.");
    println!();
    println!("  dashboard          {url}/");
    println!("  API                {url}/api/v1");
    println!("  data               {}", data_dir.display());
    println!(
        "  CLI profile        {PROFILE_NAME} ({})",
        env.profiles_path.display()
    );
    if with_agent {
        println!("  local agent        enrolled and running");
    }
    println!();
    println!("Try, in another terminal:");
    println!("  tutti run --all --wait -- echo hello");
    println!("  tutti agents");
    println!();
    match initial_password {
        Some(path) => println!(
            "Sign in to the dashboard as `{FIRST_ADMIN}` with the password in\n  {}\n(you will be asked to change it).",
            path.display()
        ),
        None => println!("Sign in to the dashboard as `{FIRST_ADMIN}` (or your own account)."),
    }
    println!("The CLI profile already holds an admin API token. Press Ctrl-C to stop;");
    println!("running `tutti up` again keeps all data.");
}

fn spinner(message: &str) -> ProgressBar {
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(100));
    bar.set_message(message.to_string());
    bar
}

fn absolute(path: &Path) -> Result<PathBuf, CliError> {
    std::path::absolute(path)
        .map_err(|err| CliError::Usage(format!("--data-dir {}: {err}", path.display())))
}

/// Logs go to `<data-dir>/tutti.log` so the terminal stays readable; `TUTTI_LOG` filters.
fn init_logging(data_dir: &Path) -> Result<(), CliError> {
    let path = data_dir.join("tutti.log");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_env("TUTTI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
