//! The `tutti-agent` binary: parses the command line, sets up logging and signals, and hands
//! over to the library. The only place of the agent that reads process-global state.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tutti_agent::LocalConfig;

/// The tutti endpoint agent.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct EnrollArgs {
    /// The server URL, e.g. `https://tutti.example.com`. Plain `http://` is refused unless
    /// the server is on loopback or --insecure is given.
    #[arg(long)]
    server: String,
    /// The enrollment token (from `tutti enroll-token create`).
    #[arg(long)]
    token: String,
    /// Ask for this agent id instead of one derived from the hostname.
    #[arg(long)]
    id: Option<String>,
    /// Trust only the CA certificates in this PEM file for the server's HTTPS certificate.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// The server's command-signing key id (16 hex characters); enrollment aborts, storing
    /// nothing, if the server has another key.
    #[arg(long)]
    server_key_id: Option<String>,
    /// Allow plain http:// to a server that is not on loopback (trusted networks only:
    /// whoever answers decides which key this machine obeys).
    #[arg(long)]
    insecure: bool,
    /// The configuration file (for its state directory).
    #[arg(long, default_value = "/etc/tutti/agent.toml")]
    config: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agent until SIGINT or SIGTERM.
    Run {
        /// The configuration file.
        #[arg(long, default_value = "/etc/tutti/agent.toml")]
        config: PathBuf,
    },
    /// Enroll with a tutti server using a one-time token, storing the identity in the
    /// state directory of the configuration.
    ///
    /// Example (the command `tutti enroll-token create` prints):
    ///   tutti-agent enroll --server https://tutti.example.com --token TOKEN --ca ca.pem --server-key-id 0123456789abcdef
    #[command(verbatim_doc_comment)]
    Enroll(EnrollArgs),
    /// Print the documented example configuration.
    ExampleConfig,
    /// Install the agent as a systemd service: unit, config, state directory; then enable
    /// and start it when systemd runs.
    Install {
        /// A config file to copy to /etc/tutti/agent.toml (default: keep the one there, or
        /// write the example).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Install under this directory instead of the running system.
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// Hardening: `admin` (scripts may administer the machine) or `restricted`
        /// (read-only system, for checks and inventory only).
        #[arg(long, default_value = "admin")]
        profile: tutti_agent::install::Profile,
        /// Write the files but do not enable or start the service.
        #[arg(long)]
        no_start: bool,
        /// The agent binary the service runs (default: this executable).
        #[arg(long)]
        binary: Option<PathBuf>,
    },
    /// Stop and remove the agent's service; keeps the config and the state directory.
    Uninstall {
        /// Uninstall from under this directory instead of the running system.
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// Also remove the state directory, and with it the agent's identity.
        #[arg(long)]
        purge: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::ExampleConfig => {
            print!("{}", tutti_agent::config::EXAMPLE);
            ExitCode::SUCCESS
        }
        Command::Run { config } => run(&config),
        Command::Install {
            config,
            root,
            profile,
            no_start,
            binary,
        } => install(config, root, profile, no_start, binary),
        Command::Uninstall { root, purge } => uninstall(root, purge),
        Command::Enroll(args) => enroll(args),
    }
}

fn enroll(args: EnrollArgs) -> ExitCode {
    let config = match load_config(&args.config) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("tutti-agent: {err}");
            return ExitCode::from(2);
        }
    };
    let options = match enroll_options(&args) {
        Ok(options) => options,
        Err(err) => {
            eprintln!("tutti-agent: {err}");
            return ExitCode::from(2);
        }
    };
    let (server, token) = (args.server.as_str(), args.token.as_str());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("tutti-agent: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(tutti_agent::enroll::enroll(
        server,
        token,
        &config.state_dir,
        options,
    )) {
        Ok(identity) => {
            println!(
                "enrolled as {} (state in {})",
                identity.agent_id,
                config.state_dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("tutti-agent: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn enroll_options(args: &EnrollArgs) -> Result<tutti_agent::enroll::EnrollOptions, String> {
    let requested_id = args
        .id
        .as_deref()
        .map(tutti_proto::AgentId::parse)
        .transpose()
        .map_err(|err| format!("--id: {err}"))?;
    let server_key_id = args
        .server_key_id
        .as_deref()
        .map(|text| text.trim().parse::<tutti_proto::KeyId>())
        .transpose()
        .map_err(|err| format!("--server-key-id: {err}"))?;
    Ok(tutti_agent::enroll::EnrollOptions {
        requested_id,
        hostname: None,
        ca_file: args.ca.clone(),
        server_key_id,
        insecure: args.insecure,
    })
}

fn run(config_path: &std::path::Path) -> ExitCode {
    let config = match load_config(config_path) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("tutti-agent: {err}");
            return ExitCode::from(2);
        }
    };
    let log_ring = tutti_agent::log_ring::LogRing::default();
    init_logging(&config.log_level, log_ring.clone());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("tutti-agent: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let options = tutti_agent::AgentOptions {
        log_ring,
        ..Default::default()
    };
    match runtime.block_on(tutti_agent::run(config, options, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tutti-agent: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn install(
    config: Option<PathBuf>,
    root: PathBuf,
    profile: tutti_agent::install::Profile,
    no_start: bool,
    binary: Option<PathBuf>,
) -> ExitCode {
    // The running executable is the default because `install` usually runs from the binary
    // just copied into place; only main.rs may ask the process where it lives.
    let binary = match binary.map_or_else(std::env::current_exe, Ok) {
        Ok(binary) => binary,
        Err(err) => {
            eprintln!("tutti-agent: cannot find this executable ({err}); pass --binary PATH");
            return ExitCode::from(2);
        }
    };
    let options = tutti_agent::install::InstallOptions {
        root,
        config,
        profile,
        binary,
        start: !no_start,
    };
    let platform = tutti_agent::install::Platform::current();
    report_install(tutti_agent::install::install(platform, &options))
}

fn uninstall(root: PathBuf, purge: bool) -> ExitCode {
    let options = tutti_agent::install::UninstallOptions { root, purge };
    let platform = tutti_agent::install::Platform::current();
    report_install(tutti_agent::install::uninstall(platform, &options))
}

fn report_install(
    result: Result<Vec<tutti_agent::install::Action>, tutti_agent::install::InstallError>,
) -> ExitCode {
    match result {
        Ok(actions) => {
            for action in actions {
                println!("{action}");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("tutti-agent: {err}");
            ExitCode::from(if err.is_usage() { 2 } else { 1 })
        }
    }
}

/// A missing file at the default path means "all defaults"; an explicit path must exist.
fn load_config(path: &std::path::Path) -> Result<LocalConfig, String> {
    if !path.exists() && path == std::path::Path::new("/etc/tutti/agent.toml") {
        return Ok(LocalConfig::default());
    }
    LocalConfig::load(path)
}

fn init_logging(filter: &str, ring: tutti_agent::log_ring::LogRing) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TUTTI_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let writer = tutti_agent::log_ring::TeeWriter::new(ring);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(writer)
        .init();
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(terminate) => terminate,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
