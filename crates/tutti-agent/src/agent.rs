//! The agent daemon: wiring and the main loop.
//!
//! [`run`] opens the state, reports executions a crash interrupted, connects to the broker
//! in the background (the agent works, queues and records results with the broker down),
//! and starts the long-lived tasks: command intake, the outbox publisher, the heartbeat and
//! fleet-state sync. The main loop owns the [`Runner`] and is driven by one closed enum of
//! [`Event`]s, matched in one place.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{Notify, mpsc, watch};
use tutti_bus::{BusConfig, connect};
use tutti_proto::result::ResultStatus;
use tutti_proto::{CommandId, GroupName, RunId};

use crate::config::LocalConfig;
use crate::exec::ExecTimings;
use crate::fleet::FleetView;
use crate::identity::{self, Identity};
use crate::intake::{self, IntakeContext};
use crate::log_ring::LogRing;
use crate::report;
use crate::rpc::RpcContext;
use crate::runner::{Allowlist, Runner, RunnerContext};
use crate::state::{AgentState, RefusalLimit, StateHandle};
use crate::trust::TrustStore;
use crate::{heartbeat, inventory, outbox, rpc};

/// How often the main loop re-dispatches without a prompt (deadlines, a drained outbox),
/// while the runner has work waiting; an idle runner is not woken by it.
const DISPATCH_TICK: Duration = Duration::from_secs(2);

/// How long a stopping agent waits for its tasks to finish before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long a starting agent waits for its fleet-state replicas to confirm a sync before it
/// executes with its local copy (the broker may be down: offline boot must still work).
const FLEET_SYNC_GRACE: Duration = Duration::from_secs(10);

/// What the main loop reacts to.
#[derive(Debug)]
enum Event {
    /// Intake queued at least one command.
    CommandQueued,
    /// An execution finished; its result is in the outbox.
    ExecutionFinished(CommandId),
    /// A kill arrived for a run that may be executing.
    KillRequested(RunId),
    /// Groups, revocations, freeze or configuration changed.
    FleetChanged,
    /// Time passed.
    Tick,
    /// Stop.
    ShutdownRequested,
}

/// Settings a test or simulator may change; production uses [`AgentOptions::default`].
#[derive(Debug, Clone, Default)]
pub struct AgentOptions {
    /// Process termination timings.
    pub timings: Option<ExecTimings>,
    /// Where recent log lines are kept for the `log-tail` rpc (set by `main.rs`).
    pub log_ring: LogRing,
    /// Do not collect or publish inventory. `tutti bench` sets it for simulated agents,
    /// which would otherwise each run the package managers at start; production leaves it
    /// `false`.
    pub skip_inventory: bool,
    /// Receives a clone of the agent's broker client once it is configured, so that
    /// `tutti bench` can measure raw NATS on the agents' own connections; `None` in
    /// production.
    pub client_tap: Option<mpsc::UnboundedSender<async_nats::Client>>,
    /// How many refused commands are reported one by one (10 a minute); tests shorten the
    /// window to see the summary.
    pub refusal_limit: RefusalLimit,
}

/// Runs the agent until `shutdown` resolves.
pub async fn run(
    config: LocalConfig,
    options: AgentOptions,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    identity::ensure_state_dir(&config.state_dir)?;
    let identity = identity::load(&config.state_dir)?;
    let server_key = identity.server_key().map_err(anyhow::Error::msg)?;
    let trust = Arc::new(TrustStore::open(&config.state_dir, server_key));
    let state = open_state(&config)?;
    recover_interrupted(&state, &identity).await?;

    let bus = connect(&bus_config(&config, &identity))
        .await
        .context("configure broker connection")?;
    if let Some(tap) = &options.client_tap {
        let _ = tap.send(bus.client().clone());
    }
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (fleet_tx, fleet_rx) = watch::channel(FleetView::initial(identity.initial_groups.clone()));
    let (groups_tx, groups_rx) = watch::channel(fleet_rx.borrow().groups.clone());
    let queued = Arc::new(Notify::new());
    let outbox_wake = Arc::new(Notify::new());
    let (kills_tx, mut kills_rx) = mpsc::unbounded_channel();

    let intake_context = IntakeContext {
        agent_id: identity.agent_id.clone(),
        trust: Arc::clone(&trust),
        state: state.clone(),
        queued: Arc::clone(&queued),
        kills: kills_tx,
        outbox: Arc::clone(&outbox_wake),
        start_after_seq: identity.start_after_seq,
        refusal_limit: options.refusal_limit,
    };
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(intake_loop(
        intake_context,
        bus.jetstream().clone(),
        bus.request_timeout(),
        groups_rx,
        fleet_rx.clone(),
        shutdown_rx.clone(),
    ));
    tasks.spawn(outbox::run(
        state.clone(),
        bus.jetstream().clone(),
        Arc::clone(&outbox_wake),
        bus.request_timeout(),
        shutdown_rx.clone(),
    ));
    tasks.spawn(heartbeat::run(
        bus.client().clone(),
        state.clone(),
        identity.agent_id.clone(),
        Arc::clone(&trust),
        fleet_rx.clone(),
        shutdown_rx.clone(),
    ));
    let inventory_now = Arc::new(Notify::new());
    if !options.skip_inventory {
        tasks.spawn(inventory::run(
            bus.jetstream().clone(),
            identity.agent_id.clone(),
            fleet_rx.clone(),
            Arc::clone(&inventory_now),
            shutdown_rx.clone(),
        ));
    }
    let rpc_context = RpcContext {
        agent_id: identity.agent_id.clone(),
        state: state.clone(),
        log_ring: options.log_ring.clone(),
        inventory_now,
        trust: Arc::clone(&trust),
    };
    tasks.spawn(rpc::run(
        bus.client().clone(),
        rpc_context,
        shutdown_rx.clone(),
    ));
    let fleet_context = crate::fleet_sync::FleetSyncContext {
        agent_id: identity.agent_id.clone(),
        fallback_groups: identity.initial_groups.clone(),
        dir: config.state_dir.join("fleet"),
        trust,
        state: state.clone(),
        outbox: Arc::clone(&outbox_wake),
    };
    tasks.spawn(crate::fleet_sync::run(
        bus.clone(),
        fleet_context,
        fleet_tx,
        shutdown_rx.clone(),
    ));

    let mut runner = Runner::new(RunnerContext {
        agent_id: identity.agent_id.clone(),
        state: state.clone(),
        outbox: Arc::clone(&outbox_wake),
        staging_root: config.state_dir.join("staging"),
        timings: options.timings.unwrap_or_default(),
        outbox_max_messages: config.outbox.max_messages,
        outbox_max_bytes: config.outbox.max_bytes,
        client: Some(bus.client().clone()),
        request_timeout: bus.request_timeout(),
        allowlist: Allowlist::new(&config.execution),
    });
    let mut fleet_rx = fleet_rx;
    let mut shutdown = std::pin::pin!(shutdown);
    let mut tick = tokio::time::interval(DISPATCH_TICK);
    let started = tokio::time::Instant::now();
    tracing::info!(agent_id = %identity.agent_id, state_dir = %config.state_dir.display(), "Agent started.");
    loop {
        let event = tokio::select! {
            _ = queued.notified() => Event::CommandQueued,
            Some(command_id) = runner.finished_rx.recv() => Event::ExecutionFinished(command_id),
            Some(run_id) = kills_rx.recv() => Event::KillRequested(run_id),
            Ok(()) = fleet_rx.changed() => Event::FleetChanged,
            _ = tick.tick() => Event::Tick,
            () = &mut shutdown => Event::ShutdownRequested,
        };
        let fleet = fleet_rx.borrow_and_update().clone();
        let unprompted = matches!(event, Event::Tick);
        match event {
            Event::CommandQueued | Event::Tick | Event::FleetChanged => {}
            Event::ExecutionFinished(command_id) => runner.on_finished(&command_id),
            Event::KillRequested(run_id) => runner.kill_run(&run_id),
            Event::ShutdownRequested => break,
        }
        // Every event reads the latest view (marking it seen), so the group list is passed
        // on here rather than only on `FleetChanged`, which a concurrent event may absorb.
        groups_tx.send_if_modified(|groups| replace_if_changed(groups, &fleet.groups));
        if !fleet.synced && started.elapsed() < FLEET_SYNC_GRACE {
            continue;
        }
        if unprompted && runner.is_idle() {
            continue;
        }
        if let Err(err) = runner.dispatch(&fleet).await {
            tracing::error!(error = %err, "Cannot read the local command queue; retrying.");
        }
    }
    tracing::info!(agent_id = %identity.agent_id, running = runner.running(), "Agent stopping.");
    let _ = shutdown_tx.send(true);
    runner.abort_all();
    // Let every task stop on its own (replicas close their stores, the outbox finishes a
    // publish) so that an agent restarted in the same process can open the same files;
    // whatever does not stop in time is aborted.
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("Some agent tasks did not stop in time; aborting them.");
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    // Bounded: with the broker gone (or this agent's identity revoked) a flush would wait
    // for a reconnection that may never come, and a stop must finish.
    let _ = tokio::time::timeout(bus.request_timeout(), bus.client().flush()).await;
    Ok(())
}

fn replace_if_changed(groups: &mut Vec<GroupName>, new_groups: &[GroupName]) -> bool {
    if groups.as_slice() == new_groups {
        return false;
    }
    *groups = new_groups.to_vec();
    true
}

fn open_state(config: &LocalConfig) -> anyhow::Result<StateHandle> {
    let path: PathBuf = config.state_dir.join("state.redb");
    let state =
        AgentState::open(&path).with_context(|| format!("open agent state {}", path.display()))?;
    // Queued commands and results can hold secrets of the scripts: owner-only, like the
    // identity, whatever the umask.
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .with_context(|| format!("restrict {}", path.display()))?;
    Ok(StateHandle::new(state))
}

fn bus_config(config: &LocalConfig, identity: &Identity) -> BusConfig {
    let urls = if config.nats_urls.is_empty() {
        identity.nats_urls.clone()
    } else {
        config.nats_urls.clone()
    };
    BusConfig {
        urls,
        auth: identity.nats_auth.clone(),
        name: format!("tutti-agent {}", identity.agent_id),
        request_timeout_ms: config.request_timeout_ms,
        reconnect_max_delay_ms: config.reconnect_max_delay_ms,
        connect_in_background: true,
        tls: identity.broker_tls(&config.state_dir, &config.tls),
        inbox_prefix: Some(tutti_proto::subjects::agent_inbox_prefix(
            &identity.agent_id,
        )),
        ..BusConfig::default()
    }
}

/// Executions marked running when the agent last stopped did not finish under its watch:
/// report them `interrupted` (never re-run them silently, never lose them).
async fn recover_interrupted(state: &StateHandle, identity: &Identity) -> anyhow::Result<()> {
    let agent_id = identity.agent_id.clone();
    let count = state
        .call(move |state| {
            let running = state.running()?;
            for queued in &running {
                let Some(run_id) = queued.command.run_id() else {
                    continue;
                };
                let result =
                    report::bare_result(&agent_id, queued, run_id, ResultStatus::Interrupted);
                state.finish(queued, &result)?;
            }
            Ok(running.len())
        })
        .await?;
    if count > 0 {
        tracing::warn!(
            count,
            "Executions were interrupted by the agent's last stop; reported as interrupted."
        );
    }
    Ok(())
}

/// Keeps one intake session alive: a session ends on broker trouble (retried with jittered
/// backoff) or on a group change (restarted at once from the cursor with the new filters).
async fn intake_loop(
    context: IntakeContext,
    js: async_nats::jetstream::Context,
    timeout: Duration,
    mut groups: watch::Receiver<Vec<GroupName>>,
    mut fleet: watch::Receiver<FleetView>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Commands are verified as they are taken in, so the key ring must be read first: an
    // agent that slept through a key rotation would otherwise refuse (for good) commands
    // signed by the key the ring introduces. Like dispatch, intake waits for the first sync
    // of the fleet state, or the grace period when the broker cannot provide it.
    let synced = fleet.wait_for(|view| view.synced);
    tokio::select! {
        _ = synced => {}
        _ = tokio::time::sleep(FLEET_SYNC_GRACE) => {}
        _ = shutdown.changed() => return,
    }
    let mut failures = 0usize;
    let mut backfill = None;
    loop {
        let session = intake::run_session(&context, &js, timeout, &mut groups, &mut backfill);
        let outcome = tokio::select! {
            outcome = session => outcome,
            _ = shutdown.changed() => return,
        };
        match outcome {
            Ok(joined) => {
                failures = 0;
                if let Some(joined) = joined {
                    backfill = Some(match backfill.take() {
                        Some(mut pending) => {
                            pending.groups.extend(joined.groups);
                            pending
                        }
                        None => joined,
                    });
                }
            }
            Err(err) => {
                failures += 1;
                let delay = tutti_bus::connect::reconnect_delay(failures, Duration::from_secs(30));
                tracing::info!(error = %err, ?delay, "Command intake interrupted; resuming from the cursor.");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
}
