//! `tutti server --config FILE`: the server as a long-running service, and `--check` to
//! validate its configuration.
//!
//! The one path from a config file to a running server: `tutti up` writes its own config
//! file and comes through [`load`] and [`start`] too. This file owns what only a binary
//! may do: read signals, bind the configured address, choose the log format, and show the
//! first admin's password once. Config problems exit 2 with `FILE:LINE: KEY: message`.

use tokio::net::TcpListener;
use tutti_server::config::{ConfigFile, LogFormat};
use tutti_server::tls::{TlsFiles, check_files};
use tutti_server::{Server, ServerConfig};

use crate::Env;
use crate::args::ServerArgs;
use crate::client::CliError;

/// Runs `tutti server`.
pub(crate) async fn server(args: ServerArgs, env: &Env) -> Result<(), CliError> {
    let file = load(&args.config, env)?;
    if args.check {
        println!("{}: ok ({})", args.config.display(), summary(&file.config));
        return Ok(());
    }
    if args.print_broker_config {
        print!("{}", broker_config(&file).await?);
        return Ok(());
    }
    init_logging(&file.config, env.log_filter.as_deref());
    let listener = bind(&file).await?;
    let server = start(file.config, listener).await?;
    announce(&server);
    serve_until_stopped(&server).await;
    eprintln!("tutti server: stopping (draining open requests and projector batches)");
    server.stop().await?;
    eprintln!("tutti server: stopped");
    Ok(())
}

/// Loads and checks a config file, including what only a running server would notice
/// late: the HTTPS certificate and key must load, the log filter must parse.
pub(crate) fn load(path: &std::path::Path, env: &Env) -> Result<ConfigFile, CliError> {
    let file = ConfigFile::load(path, &env.server_overrides).map_err(usage)?;
    let config = &file.config;
    if let (Some(cert_file), Some(key_file)) =
        (&config.http.tls_cert_file, &config.http.tls_key_file)
    {
        let files = TlsFiles {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
        };
        check_files(&files)
            .map_err(|err| usage(file.error_at("http.tls_cert_file", err.to_string())))?;
    }
    if let Err(err) = tracing_subscriber::EnvFilter::try_new(&config.log.level) {
        return Err(usage(file.error_at("log.level", err.to_string())));
    }
    Ok(file)
}

/// Binds the configured address; a taken port is a config problem naming `listen`.
pub(crate) async fn bind(file: &ConfigFile) -> Result<TcpListener, CliError> {
    let address = file.config.listen;
    TcpListener::bind(address).await.map_err(|err| {
        usage(file.error_at(
            "listen",
            format!("cannot listen on {address}: {err} (is another server running? choose another address)"),
        ))
    })
}

/// Starts the server on a bound listener.
pub(crate) async fn start(config: ServerConfig, listener: TcpListener) -> Result<Server, CliError> {
    Server::start(config, listener)
        .await
        .map_err(|err| CliError::Other(format!("cannot start the server: {err:#}")))
}

/// Shows the first admin's password once, on the terminal of whoever started the server.
pub(crate) fn show_first_admin_password(server: &Server) {
    if let Some(password) = server.app().take_first_admin_password() {
        let path = server
            .app()
            .config
            .data_dir
            .join(tutti_server::auth::INITIAL_PASSWORD_FILE);
        eprintln!(
            "\nCreated the first account: username `{}`, password `{password}`\n\
             (also in {}, mode 0600). Change it at the first sign-in; it is not shown again.\n",
            tutti_server::auth::FIRST_ADMIN,
            path.display()
        );
    }
}

fn announce(server: &Server) {
    show_first_admin_password(server);
    eprintln!(
        "tutti server: listening on {} (command-signing key {})",
        server.url(),
        server.app().keys.current().key_id()
    );
}

/// Waits for SIGTERM or SIGINT; SIGHUP in the meantime reloads the HTTPS certificate.
async fn serve_until_stopped(server: &Server) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut hangup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            _ = terminate.recv() => return,
            _ = hangup.recv() => match server.reload_tls() {
                Ok(true) => eprintln!("tutti server: reloaded the HTTPS certificate"),
                Ok(false) => eprintln!("tutti server: SIGHUP ignored (no HTTPS certificate configured)"),
                Err(err) => eprintln!("tutti server: kept the current HTTPS certificate: {err:#}"),
            },
        }
    }
}

/// The nats.conf settings for `[broker_identity]`: the broker's JWT resolver keeps its files
/// beside its JetStream store, so the operator chooses the directory in the output's
/// `resolver.dir` line.
async fn broker_config(file: &ConfigFile) -> Result<String, CliError> {
    let identity = tutti_server::broker_identity::BrokerIdentity::open(&file.config)
        .map_err(|err| CliError::Other(format!("{err:#}")))?
        .ok_or_else(|| {
            usage(file.error_at(
                "broker_identity.keys_dir",
                "is not set: without per-agent broker identities there is no broker config to print",
            ))
        })?;
    let database = file.config.database_path();
    let store = match database.exists() {
        true => Some(
            tutti_store::Store::open_sqlite(&database)
                .await
                .map_err(|err| {
                    CliError::Other(format!("cannot open {}: {err}", database.display()))
                })?,
        ),
        false => None,
    };
    let resolver_dir = std::path::Path::new("/var/lib/nats/jwt");
    let text = identity
        .nats_server_config(store.as_ref(), resolver_dir)
        .await
        .map_err(|err| CliError::Other(format!("{err:#}")))?;
    Ok(format!(
        "# tutti: NATS operator mode for the keys in {} (written by `tutti server --print-broker-config`).\n\
         # Every agent connects as its own user; regenerate after revoking agents while the broker was down.\n{text}",
        file.config
            .broker_identity
            .keys_dir
            .as_deref()
            .map(|dir| dir.display().to_string())
            .unwrap_or_default()
    ))
}

fn summary(config: &ServerConfig) -> String {
    let scheme = if config.serves_https() {
        "https"
    } else {
        "http"
    };
    format!(
        "{scheme} on {}, database {}, broker {}",
        config.listen,
        config.database_path().display(),
        config.bus.urls.join(", ")
    )
}

/// Logs go to standard error, where systemd's journal (or a container runtime) collects
/// them; `TUTTI_LOG` wins over `log.level`.
fn init_logging(config: &ServerConfig, env_filter: Option<&str>) {
    let filter = env_filter
        .and_then(|filter| tracing_subscriber::EnvFilter::try_new(filter).ok())
        .or_else(|| tracing_subscriber::EnvFilter::try_new(&config.log.level).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        LogFormat::Human => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn usage(err: impl std::fmt::Display) -> CliError {
    CliError::Usage(err.to_string())
}
