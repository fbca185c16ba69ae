//! The `tutti` binary: parses the command line, reads the environment (the only place that
//! does), and dispatches to one file per command under `commands/`.
//!
//! Exit codes: 0 success; 1 a run finished with at least one target that did not succeed;
//! 2 bad usage or configuration, including manifests `apply` could not apply
//! (`FILE:LINE:COLUMN: message` on stderr); 3 the server could not be reached or refused
//! the request.

mod args;
#[cfg(feature = "embedded")]
mod broker;
mod client;
mod commands;
mod diff;
mod duration;
mod output;
mod profile;
mod prompt;

use std::process::ExitCode;

use clap::Parser;

use crate::args::Cli;
use crate::profile::Overrides;

/// What every command gets from the environment.
#[derive(Debug, Clone)]
pub(crate) struct Env {
    /// `TUTTI_SERVER` / `TUTTI_TOKEN`.
    pub(crate) overrides: Overrides,
    /// Where CLI profiles live.
    pub(crate) profiles_path: std::path::PathBuf,
    /// Where `tutti up` caches the broker binary.
    #[cfg(feature = "embedded")]
    pub(crate) nats_search: tutti_bus::nats_server::NatsServerSearch,
    /// `TUTTI_LISTEN`, `TUTTI_DATA_DIR`, ... for `tutti server`.
    #[cfg(feature = "embedded")]
    pub(crate) server_overrides: tutti_server::config::EnvOverrides,
    /// `TUTTI_LOG`: the log filter of `tutti server` and `tutti up`.
    #[cfg(feature = "embedded")]
    pub(crate) log_filter: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = Env {
        overrides: Overrides {
            server: non_empty_var("TUTTI_SERVER"),
            token: non_empty_var("TUTTI_TOKEN"),
            ca_file: non_empty_var("TUTTI_CA").map(Into::into),
        },
        profiles_path: profile::default_path(
            std::env::var_os("XDG_CONFIG_HOME").map(Into::into),
            std::env::var_os("HOME").map(Into::into),
        ),
        #[cfg(feature = "embedded")]
        nats_search: tutti_bus::nats_server::NatsServerSearch::from_env(),
        #[cfg(feature = "embedded")]
        server_overrides: tutti_server::config::EnvOverrides {
            listen: non_empty_var("TUTTI_LISTEN"),
            data_dir: non_empty_var("TUTTI_DATA_DIR"),
            public_url: non_empty_var("TUTTI_PUBLIC_URL"),
            nats_urls: non_empty_var("TUTTI_NATS_URLS"),
            log_format: non_empty_var("TUTTI_LOG_FORMAT"),
        },
        #[cfg(feature = "embedded")]
        log_filter: non_empty_var("TUTTI_LOG"),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("tutti: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(commands::dispatch(cli, env))
}

fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}
