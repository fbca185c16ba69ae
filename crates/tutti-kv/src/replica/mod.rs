//! The replica: a supervised loop that keeps a durable local copy of a bucket (or of some
//! prefixes of it) and exposes it to the caller.
//!
//! ```text
//!  broker ──watch──▶ run.rs (session: batch → plan → commit → apply) ──▶ watch::Sender<ReplicaState>
//!                         │                     │                              └──▶ mpsc AppliedBatch
//!                         └── supervision ◀─────┘ store failures, watch errors, expiry
//! ```
//!
//! Invariants, each enforced in one place:
//! - **Cursor-after-apply**: a batch's data and the cursor covering it go into one store
//!   commit (`run.rs`, `commit_durably`), and memory is updated only after that commit
//!   returns. Pinned by `tests/crash.rs` and `replica::protocol_tests`.
//! - **Never regress**: a delivery at or below the revision applied for its key is ignored
//!   (`state.rs`, `plan_live`). Pinned by `tests/replica.rs::replayed_old_revision_does_not_regress`.
//! - **Expiry resyncs**: `CursorExpired` from a watch (at creation or from the live overrun
//!   guard) makes the next session a state-sync whose snapshot replaces the copy, removing
//!   vanished keys before writing fresh values (`state.rs`, `plan_resync`).
//! - **Offline boot**: [`Replica::start`] returns as soon as the local copy is loaded; the
//!   broker is contacted in the background.
//! - **A damaged copy is discarded, not trusted**: a file the store reports as corrupted is
//!   renamed aside and the replica starts empty, so its first session is a full state-sync.
//!   Pinned by `tests/replica.rs::a_corrupted_local_file_is_set_aside_and_rebuilt_from_the_broker`.

mod entries;
mod run;
mod state;

#[cfg(test)]
mod protocol_tests;

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use state::{AppliedBatch, BatchKind, ReplicaPhase, ReplicaState};

use crate::selection::Selection;
use crate::store::{LoadedState, LocalStore, RedbStore, StoreError};
use crate::watch::BatchLimits;

/// How a replica runs. Build with [`ReplicaConfig::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// The bucket to copy.
    pub bucket: String,
    /// Which keys to copy.
    pub selection: Selection,
    /// Bound on every request to the broker.
    pub request_timeout: Duration,
    /// How deliveries are grouped into one store commit.
    pub batch: BatchLimits,
    /// First delay before restarting a failed watch.
    pub backoff_min: Duration,
    /// Largest delay between restarts.
    pub backoff_max: Duration,
    /// Consecutive failed store commits after which the replica stops (phase `Failed`).
    pub max_store_failures: u32,
    /// Whether applied batches are sent on the channel from [`ReplicaHandle::take_batches`].
    /// The loop waits for the caller to receive them (backpressure, nothing dropped).
    pub deliver_batches: bool,
    /// How often an idle, caught-up replica confirms it is still in sync (for staleness).
    pub liveness_interval: Duration,
    /// A cursor that advanced over other keys' updates only is persisted at most this often.
    pub cursor_flush_interval: Duration,
}

impl ReplicaConfig {
    /// Defaults: 5 s requests, batches of 1,024 or 20 ms, backoff 250 ms to 30 s, stop after
    /// 5 consecutive store failures, no batch channel.
    pub fn new(bucket: impl Into<String>, selection: Selection) -> ReplicaConfig {
        ReplicaConfig {
            bucket: bucket.into(),
            selection,
            request_timeout: Duration::from_secs(5),
            batch: BatchLimits::default(),
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            max_store_failures: 5,
            deliver_batches: false,
            liveness_interval: Duration::from_secs(1),
            cursor_flush_interval: Duration::from_secs(1),
        }
    }

    /// Bucket and selection, stored beside the cursor to notice a changed configuration.
    pub(crate) fn fingerprint(&self) -> String {
        format!("{}|{}", self.bucket, self.selection.fingerprint())
    }
}

/// Why a replica could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The local store could not be opened, read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The replica task panicked or was aborted.
    #[error("replica task ended abnormally: {0}")]
    Task(String),
}

/// Starts replicas; see the module docs.
#[derive(Debug)]
pub struct Replica;

impl Replica {
    /// Opens (or creates) the redb file at `store_path`, loads the local copy and starts the
    /// loop. Returns before the broker is contacted, so a replica boots offline.
    pub async fn start(
        config: ReplicaConfig,
        js: jetstream::Context,
        store_path: &Path,
    ) -> Result<ReplicaHandle, ReplicaError> {
        let path = store_path.to_path_buf();
        let (store, loaded) = blocking(move || open_or_set_aside(&path)).await??;
        Ok(Replica::start_loaded(config, js, store, loaded))
    }

    /// Like [`Replica::start`] with any [`LocalStore`] (e.g. `MemoryStore` in tests).
    pub async fn start_with_store(
        config: ReplicaConfig,
        js: jetstream::Context,
        mut store: impl LocalStore,
    ) -> Result<ReplicaHandle, ReplicaError> {
        let (store, loaded) =
            blocking(move || store.load().map(|loaded| (store, loaded))).await??;
        Ok(Replica::start_loaded(config, js, store, loaded))
    }

    fn start_loaded(
        config: ReplicaConfig,
        js: jetstream::Context,
        store: impl LocalStore,
        loaded: LoadedState,
    ) -> ReplicaHandle {
        let (state_sender, state) = watch::channel(ReplicaState::from_loaded(loaded.clone()));
        let (batch_sender, batches) = match config.deliver_batches {
            true => {
                let (sender, receiver) = mpsc::channel(64);
                (Some(sender), Some(receiver))
            }
            false => (None, None),
        };
        let (shutdown, shutdown_requested) = oneshot::channel();
        let replica_loop = run::ReplicaLoop::new(
            config,
            js,
            Box::new(store),
            &loaded,
            state_sender,
            batch_sender,
        );
        let task = tokio::spawn(replica_loop.run(shutdown_requested));
        ReplicaHandle {
            state,
            batches,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }
}

/// Opens and loads the redb file at `path`. A file that is corrupted is a cache gone bad, not
/// lost data (the broker holds the truth): it is renamed to `<name>.corrupt-<unix ms>` for
/// inspection and the replica starts empty, which makes its first session a full state-sync.
fn open_or_set_aside(path: &Path) -> Result<(RedbStore, LoadedState), StoreError> {
    let open_and_load = || {
        let mut store = RedbStore::open(path)?;
        let loaded = store.load()?;
        Ok::<_, StoreError>((store, loaded))
    };
    match open_and_load() {
        Err(StoreError::Corrupted(reason)) => {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis();
            let mut aside = path.as_os_str().to_owned();
            aside.push(format!(".corrupt-{stamp}"));
            std::fs::rename(path, &aside).map_err(|err| StoreError::Storage(Box::new(err)))?;
            tracing::warn!(
                path = %path.display(),
                set_aside = %Path::new(&aside).display(),
                %reason,
                "local replica file is corrupted; set it aside and resyncing from the broker"
            );
            open_and_load()
        }
        other => other,
    }
}

/// The caller's side of a running replica. Dropping it stops the loop.
#[derive(Debug)]
pub struct ReplicaHandle {
    state: watch::Receiver<ReplicaState>,
    batches: Option<mpsc::Receiver<AppliedBatch>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ReplicaError>>>,
}

impl ReplicaHandle {
    /// A receiver of the current state; `changed()` fires after every applied batch and phase
    /// change. Do not hold a `borrow()` across an await: it blocks the loop's next apply.
    pub fn state(&self) -> watch::Receiver<ReplicaState> {
        self.state.clone()
    }

    /// The live value of `key` in the local copy.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.state.borrow().get(key).cloned()
    }

    /// What the loop is doing.
    pub fn phase(&self) -> ReplicaPhase {
        self.state.borrow().phase().clone()
    }

    /// Time since the copy was last confirmed in sync with the broker; `None` if never.
    pub fn staleness(&self) -> Option<Duration> {
        self.state.borrow().staleness()
    }

    /// The channel of applied batches, once (only with `deliver_batches`).
    pub fn take_batches(&mut self) -> Option<mpsc::Receiver<AppliedBatch>> {
        self.batches.take()
    }

    /// Waits until `condition` holds for the state, at most `timeout`. Returns whether it did.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        condition: impl FnMut(&ReplicaState) -> bool,
    ) -> bool {
        let mut state = self.state.clone();
        matches!(
            tokio::time::timeout(timeout, state.wait_for(condition)).await,
            Ok(Ok(_))
        )
    }

    /// Stops the loop and waits for it; reports the error that stopped it, if any.
    pub async fn shutdown(mut self) -> Result<(), ReplicaError> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.task.take() {
            Some(task) => task
                .await
                .map_err(|err| ReplicaError::Task(err.to_string()))?,
            None => Ok(()),
        }
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ReplicaError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| ReplicaError::Task(err.to_string()))
}

/// The in-memory apply path, exposed for `benches/replica.rs`.
#[doc(hidden)]
pub(crate) mod bench_support {
    use super::state::ReplicaState;
    use crate::entry::Entry;
    use crate::store::{LoadedState, StoreMeta};

    /// A replica state driven without a broker or a store.
    #[derive(Debug, Default)]
    pub struct InMemoryReplica {
        state: ReplicaState,
    }

    impl InMemoryReplica {
        /// Starts from a loaded copy.
        pub fn from_loaded(loaded: LoadedState) -> InMemoryReplica {
            InMemoryReplica {
                state: ReplicaState::from_loaded(loaded),
            }
        }

        /// Plans and applies one live batch as the loop does after a successful commit;
        /// returns the number of applied changes.
        pub fn apply_live(&mut self, entries: Vec<Entry>, cursor: u64) -> usize {
            let planned = self.state.plan_live(entries, cursor, StoreMeta::default());
            self.state.apply(&planned);
            planned.commit.changes.len()
        }

        /// Number of live keys.
        pub fn len(&self) -> usize {
            self.state.len()
        }

        /// Whether there is no live key.
        pub fn is_empty(&self) -> bool {
            self.state.is_empty()
        }
    }
}
