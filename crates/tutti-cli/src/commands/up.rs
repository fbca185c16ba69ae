//! `tutti up`: a complete local system in one command — a broker (the pinned `nats-server`,
//! provisioned on first use), the server with SQLite, and one enrolled local agent — with
//! everything kept under `--data-dir`, so running it again resumes where it stopped.
//!
//! It writes the `local` CLI profile so `tutti run --all --wait -- echo hello` works from
//! another terminal at once. Ctrl-C stops the agent, the server and the broker, in that order.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::net::TcpListener;
use tutti_bus::BusConfig;
use tutti_bus::nats_server::locate_or_provision;
use tutti_proto::role::Role;
use tutti_server::auth::{FIRST_ADMIN, INITIAL_PASSWORD_FILE};
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
    let (broker, nats_url) = start_broker(&args, env, &data_dir).await?;
    let server = start_server(&data_dir, &nats_url, listener).await?;
    let agent = match args.no_agent {
        true => None,
        false => Some(start_agent(&server, &data_dir).await?),
    };
    write_profile(env, &server).await?;
    let initial_password = initial_password(&server).await;
    print_welcome(
        &server.url(),
        &data_dir,
        agent.is_some(),
        initial_password,
        env,
    );

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

async fn start_broker(
    args: &UpArgs,
    env: &Env,
    data_dir: &Path,
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
    let broker = tokio::task::spawn_blocking(move || {
        Broker::start(&binary, &dir, port, BROKER_MAX_FILE_STORE)
    })
    .await
    .map_err(|err| CliError::Other(err.to_string()))??;
    spinner.finish_and_clear();
    let url = broker.url();
    Ok((Some(broker), url))
}

async fn start_server(
    data_dir: &Path,
    nats_url: &str,
    listener: TcpListener,
) -> Result<Server, CliError> {
    let spinner = spinner("starting the server");
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
    let server = Server::start(config, listener).await?;
    spinner.finish_and_clear();
    Ok(server)
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

async fn start_agent(server: &Server, data_dir: &Path) -> Result<LocalAgent, CliError> {
    let state_dir = data_dir.join("agent");
    if !state_dir
        .join(tutti_agent::identity::IDENTITY_FILE)
        .exists()
    {
        let request = TokenRequest {
            name: "tutti up: local agent".into(),
            expires_in_secs: 600,
            uses: 1,
            groups: Vec::new(),
        };
        let token = server.create_enrollment_token(request).await?;
        let options = tutti_agent::enroll::EnrollOptions::default();
        tutti_agent::enroll::enroll(&server.url(), &token.token, &state_dir, options).await?;
    }
    let config = tutti_agent::LocalConfig {
        state_dir,
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

/// Points the `local` profile at this server with an admin API token: the one already in
/// the profile while it still works, else a new one (so restarts do not pile up tokens).
async fn write_profile(env: &Env, server: &Server) -> Result<(), CliError> {
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
