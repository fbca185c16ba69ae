//! Observing commits: when did a target's outcome land in SQLite?
//!
//! The database is the source of truth. A read-only [`TargetProbe`] connection is queried
//! each time the server announces that a run changed (`App::run_changes`, sent by the
//! projectors right after a batch is committed and acknowledged), and at least every
//! [`FALLBACK_POLL`] in case an announcement was lagged away. A target's commit time is the
//! arrival of the announcement whose query first shows it finished, so the figures include
//! the projector's acknowledgements but not the probe's own query time.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::ProgressBar;
use tokio::sync::broadcast;
use tutti_proto::{AgentId, RunId};
use tutti_server::App;
use tutti_store::baseline::TargetProbe;

/// Longest wait between two probes without an announcement.
const FALLBACK_POLL: Duration = Duration::from_millis(250);

/// Watches commits of one database, announced by one server.
#[derive(Debug)]
pub(crate) struct CommitWatch {
    probe: Arc<Mutex<TargetProbe>>,
    changes: broadcast::Receiver<RunId>,
}

impl CommitWatch {
    /// Subscribes to `app`'s run changes and opens the probe on `database`. Open it before
    /// creating the run to watch, so no announcement is missed.
    pub(crate) fn open(app: &App, database: &Path) -> anyhow::Result<CommitWatch> {
        let probe = TargetProbe::open(database)
            .with_context(|| format!("open {} read-only", database.display()))?;
        Ok(CommitWatch {
            probe: Arc::new(Mutex::new(probe)),
            changes: app.run_changes.subscribe(),
        })
    }

    /// Waits until `n_targets` targets of `run_id` are committed; returns each one's time
    /// since `started`, in the order they were seen.
    pub(crate) async fn run_targets(
        &mut self,
        run_id: RunId,
        n_targets: usize,
        started: Instant,
        timeout: Duration,
        bar: &ProgressBar,
    ) -> anyhow::Result<Vec<Duration>> {
        let deadline = Instant::now() + timeout;
        let mut seen: HashSet<String> = HashSet::with_capacity(n_targets);
        let mut latencies = Vec::with_capacity(n_targets);
        let mut observed_at = Instant::now();
        loop {
            let finished = self
                .query(move |probe| probe.finished_agents(&run_id))
                .await?;
            for agent_id in finished {
                if seen.insert(agent_id) {
                    latencies.push(observed_at.duration_since(started));
                }
            }
            bar.set_position(seen.len() as u64);
            if seen.len() >= n_targets {
                return Ok(latencies);
            }
            if Instant::now() > deadline {
                bail!(
                    "only {} of {n_targets} targets of run {run_id} were committed within {timeout:?}",
                    seen.len()
                );
            }
            observed_at = self.next_change().await;
        }
    }

    /// Waits until `n_targets` targets of `agent_id` (over all runs) are committed; returns
    /// the time since `started`.
    pub(crate) async fn agent_targets(
        &mut self,
        agent_id: &AgentId,
        n_targets: u64,
        started: Instant,
        timeout: Duration,
        bar: &ProgressBar,
    ) -> anyhow::Result<Duration> {
        let deadline = Instant::now() + timeout;
        let mut observed_at = Instant::now();
        loop {
            let agent = agent_id.clone();
            let n_done = self
                .query(move |probe| probe.finished_count_for_agent(&agent))
                .await?;
            bar.set_position(n_done);
            if n_done >= n_targets {
                return Ok(observed_at.duration_since(started));
            }
            if Instant::now() > deadline {
                bail!(
                    "only {n_done} of {n_targets} targets of {agent_id} were committed within {timeout:?}"
                );
            }
            observed_at = self.next_change().await;
        }
    }

    /// Waits for the next announcement (any run: the probe filters) or the fallback poll,
    /// swallowing announcements that queued up meanwhile; returns when it arrived.
    async fn next_change(&mut self) -> Instant {
        let announced = tokio::time::timeout(FALLBACK_POLL, self.changes.recv()).await;
        if let Ok(Err(broadcast::error::RecvError::Closed)) = announced {
            tokio::time::sleep(FALLBACK_POLL).await;
        }
        let arrived = Instant::now();
        while !matches!(
            self.changes.try_recv(),
            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed)
        ) {}
        arrived
    }

    async fn query<T: Send + 'static>(
        &self,
        read: impl FnOnce(&TargetProbe) -> tutti_store::StoreResult<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let probe = Arc::clone(&self.probe);
        tokio::task::spawn_blocking(move || {
            let probe = probe
                .lock()
                .map_err(|_| anyhow::anyhow!("the probe's lock is poisoned"))?;
            read(&probe).context("probe the database")
        })
        .await
        .context("the probe task failed")?
    }
}
