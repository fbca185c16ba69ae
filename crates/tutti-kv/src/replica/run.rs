//! The replica loop: supervision around sessions, and one session's event loop.
//!
//! A session opens the bucket, starts a watch (resume from the persisted cursor, or a
//! state-sync when there is no usable cursor), then turns each watch batch into one durable
//! commit and applies it. A session ends on shutdown, on a watch error (restart from the
//! persisted cursor after backoff with jitter), on `CursorExpired` (the next session
//! resyncs), or when the store kept failing (the replica stops in phase `Failed`).

use std::time::{Duration, SystemTime};

use async_nats::connection::State as ConnectionState;
use async_nats::jetstream;
use rand::Rng;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::state::{AppliedBatch, PlannedCommit, ReplicaPhase, ReplicaState};
use super::{ReplicaConfig, ReplicaError};
use crate::bucket::Bucket;
use crate::entry::Entry;
use crate::error::KvError;
use crate::store::{LoadedState, LocalStore, StoreError, StoreMeta};
use crate::watch::{Watch, WatchBatch, WatchStart};

/// Why a session ended.
#[derive(Debug)]
enum SessionEnd {
    ShutdownRequested,
    CursorExpired,
    WatchFailed(KvError),
    StoreFailed(StoreError),
}

/// What a running session reacts to.
#[derive(Debug)]
enum SessionEvent {
    BatchReceived(Result<WatchBatch, KvError>),
    LivenessTickElapsed,
}

pub(super) struct ReplicaLoop {
    config: ReplicaConfig,
    js: jetstream::Context,
    store: Option<Box<dyn LocalStore>>,
    state: watch::Sender<ReplicaState>,
    batches: Option<mpsc::Sender<AppliedBatch>>,
    fingerprint: String,
    needs_resync: bool,
    store_failure_streak: u32,
    last_commit_at: Instant,
    reached_live: bool,
}

impl ReplicaLoop {
    pub(super) fn new(
        config: ReplicaConfig,
        js: jetstream::Context,
        store: Box<dyn LocalStore>,
        loaded: &LoadedState,
        state: watch::Sender<ReplicaState>,
        batches: Option<mpsc::Sender<AppliedBatch>>,
    ) -> ReplicaLoop {
        let fingerprint = config.fingerprint();
        // A copy made for another bucket or selection has a cursor that says nothing about
        // the keys now selected.
        let needs_resync = loaded.meta.cursor.is_none()
            || loaded.meta.fingerprint.as_deref() != Some(&fingerprint);
        ReplicaLoop {
            config,
            js,
            store: Some(store),
            state,
            batches,
            fingerprint,
            needs_resync,
            store_failure_streak: 0,
            last_commit_at: Instant::now(),
            reached_live: false,
        }
    }

    pub(super) async fn run(
        mut self,
        mut shutdown: oneshot::Receiver<()>,
    ) -> Result<(), ReplicaError> {
        let mut restart_idx: u32 = 0;
        loop {
            self.reached_live = false;
            let end = tokio::select! {
                _ = &mut shutdown => SessionEnd::ShutdownRequested,
                end = self.session() => end,
            };
            if self.reached_live {
                restart_idx = 0;
            }
            let delay = match end {
                SessionEnd::ShutdownRequested => break,
                SessionEnd::StoreFailed(err) => return Err(self.fail(err)),
                // The first resync after an expiry starts at once; repeated expiries back off.
                SessionEnd::CursorExpired if restart_idx == 0 => Duration::ZERO,
                SessionEnd::CursorExpired => self.backoff(restart_idx),
                SessionEnd::WatchFailed(err) => {
                    let delay = self.backoff(restart_idx);
                    tracing::warn!(bucket = self.config.bucket, error = %err, retry_in = ?delay, "The replica's watch failed; restarting from the persisted cursor.");
                    delay
                }
            };
            restart_idx = restart_idx.saturating_add(1);
            tokio::select! {
                _ = &mut shutdown => break,
                () = tokio::time::sleep(delay) => {}
            }
        }
        self.set_phase(ReplicaPhase::Stopped);
        Ok(())
    }

    async fn session(&mut self) -> SessionEnd {
        self.set_phase(ReplicaPhase::Syncing);
        let bucket = match Bucket::attach(
            &self.js,
            &self.config.bucket,
            self.config.request_timeout,
        )
        .await
        {
            Ok(bucket) => bucket,
            Err(err) => return SessionEnd::WatchFailed(err),
        };
        let start = self.watch_start();
        let mut watch = match bucket.watch(&self.config.selection, start).await {
            Ok(watch) => watch,
            Err(err) => return self.watch_error(err),
        };
        let end = self.follow(&mut watch, start).await;
        watch.close().await;
        end
    }

    fn watch_start(&self) -> WatchStart {
        match self.state.borrow().cursor() {
            Some(cursor) if !self.needs_resync => WatchStart::AfterCursor(cursor),
            _ => WatchStart::StateSync,
        }
    }

    async fn follow(&mut self, watch: &mut Watch, start: WatchStart) -> SessionEnd {
        if start == WatchStart::StateSync
            && let Err(end) = self.resync(watch).await
        {
            return end;
        }
        let mut liveness = tokio::time::interval(self.config.liveness_interval);
        loop {
            let event = tokio::select! {
                batch = watch.next_batch(self.config.batch) => SessionEvent::BatchReceived(batch),
                _ = liveness.tick() => SessionEvent::LivenessTickElapsed,
            };
            let handled = match event {
                SessionEvent::BatchReceived(Ok(batch)) => self.apply_live(batch).await,
                SessionEvent::BatchReceived(Err(err)) => Err(self.watch_error(err)),
                SessionEvent::LivenessTickElapsed => {
                    self.confirm_liveness();
                    Ok(())
                }
            };
            if let Err(end) = handled {
                return end;
            }
        }
    }

    /// Collects the complete snapshot, then replaces the copy with it in one commit.
    async fn resync(&mut self, watch: &mut Watch) -> Result<(), SessionEnd> {
        let mut snapshot: Vec<Entry> = Vec::new();
        let cursor = loop {
            let batch = watch
                .next_batch(self.config.batch)
                .await
                .map_err(|err| self.watch_error(err))?;
            snapshot.extend(batch.entries);
            if batch.caught_up {
                break batch.cursor;
            }
        };
        let planned = self.state.borrow().plan_resync(
            snapshot,
            cursor,
            &self.config.selection,
            self.meta(true),
        );
        tracing::info!(
            bucket = self.config.bucket,
            cursor,
            changes = planned.commit.changes.len(),
            "Resynchronised the local copy from a snapshot."
        );
        self.commit_and_apply(planned).await?;
        self.needs_resync = false;
        self.mark_live();
        Ok(())
    }

    async fn apply_live(&mut self, batch: WatchBatch) -> Result<(), SessionEnd> {
        let caught_up = batch.caught_up;
        if !batch.entries.is_empty() || self.cursor_flush_due(batch.cursor) {
            let planned =
                self.state
                    .borrow()
                    .plan_live(batch.entries, batch.cursor, self.meta(caught_up));
            self.commit_and_apply(planned).await?;
        }
        if caught_up {
            self.mark_live();
        }
        Ok(())
    }

    /// A cursor-only advance (other keys' updates went by) is persisted now and then, not per
    /// batch: a lagging persisted cursor only costs a longer replay after a restart.
    fn cursor_flush_due(&self, batch_cursor: u64) -> bool {
        let advanced = self
            .state
            .borrow()
            .cursor()
            .is_none_or(|cursor| batch_cursor > cursor);
        advanced && self.last_commit_at.elapsed() >= self.config.cursor_flush_interval
    }

    async fn commit_and_apply(&mut self, planned: PlannedCommit) -> Result<(), SessionEnd> {
        let planned = self.commit_durably(planned).await?;
        self.last_commit_at = Instant::now();
        self.state.send_modify(|state| state.apply(&planned));
        let applied = AppliedBatch {
            cursor: planned.commit.meta.cursor.unwrap_or_default(),
            kind: planned.kind,
            ignored_stale: planned.ignored_stale,
            changes: planned.commit.changes,
        };
        if let Some(batches) = &self.batches
            && !applied.changes.is_empty()
        {
            // A dropped receiver only means the caller stopped listening.
            let _ = batches.send(applied).await;
        }
        Ok(())
    }

    /// Commits until the store accepts the batch, re-queuing it after each failure; a streak
    /// of `max_store_failures` failures ends the replica. The batch is never skipped.
    async fn commit_durably(
        &mut self,
        mut planned: PlannedCommit,
    ) -> Result<PlannedCommit, SessionEnd> {
        loop {
            let (returned, result) = self.commit_once(planned).await?;
            planned = returned;
            let Err(err) = result else {
                self.store_failure_streak = 0;
                return Ok(planned);
            };
            self.store_failure_streak += 1;
            if self.store_failure_streak >= self.config.max_store_failures {
                return Err(SessionEnd::StoreFailed(err));
            }
            tracing::warn!(bucket = self.config.bucket, error = %err, streak = self.store_failure_streak, "A local store commit failed; retrying the same batch.");
            tokio::time::sleep(self.backoff(self.store_failure_streak)).await;
        }
    }

    async fn commit_once(
        &mut self,
        planned: PlannedCommit,
    ) -> Result<(PlannedCommit, Result<(), StoreError>), SessionEnd> {
        let Some(mut store) = self.store.take() else {
            return Err(SessionEnd::StoreFailed(StoreError::Storage(
                "the store was lost by an earlier panic".into(),
            )));
        };
        let joined = tokio::task::spawn_blocking(move || {
            let result = store.commit(&planned.commit);
            (store, planned, result)
        })
        .await;
        match joined {
            Ok((store, planned, result)) => {
                self.store = Some(store);
                Ok((planned, result))
            }
            Err(err) => Err(SessionEnd::StoreFailed(StoreError::Storage(
                format!("store commit panicked: {err}").into(),
            ))),
        }
    }

    fn meta(&self, in_sync: bool) -> StoreMeta {
        StoreMeta {
            cursor: None,
            fingerprint: Some(self.fingerprint.clone()),
            last_sync: in_sync.then(SystemTime::now),
        }
    }

    fn watch_error(&mut self, err: KvError) -> SessionEnd {
        match err {
            KvError::CursorExpired {
                cursor,
                first_sequence,
            } => {
                tracing::warn!(
                    bucket = self.config.bucket,
                    cursor,
                    first_sequence,
                    "The replica's cursor expired; resynchronising."
                );
                self.needs_resync = true;
                SessionEnd::CursorExpired
            }
            other => SessionEnd::WatchFailed(other),
        }
    }

    fn mark_live(&mut self) {
        self.reached_live = true;
        let now = SystemTime::now();
        self.state.send_if_modified(|state| {
            state.confirm_sync(now);
            let changed = *state.phase() != ReplicaPhase::Live;
            state.set_phase(ReplicaPhase::Live);
            changed
        });
    }

    /// An idle replica that is caught up on a connected client is in sync; refresh the
    /// staleness clock without waking readers.
    fn confirm_liveness(&mut self) {
        let connected = self.js.client().connection_state() == ConnectionState::Connected;
        if connected && self.reached_live {
            let now = SystemTime::now();
            self.state.send_if_modified(|state| {
                state.confirm_sync(now);
                false
            });
        }
    }

    fn set_phase(&self, phase: ReplicaPhase) {
        self.state.send_if_modified(|state| {
            let changed = *state.phase() != phase;
            state.set_phase(phase);
            changed
        });
    }

    fn fail(&self, err: StoreError) -> ReplicaError {
        tracing::error!(bucket = self.config.bucket, error = %err, "The local store kept failing; the replica stopped.");
        self.set_phase(ReplicaPhase::Failed(err.to_string()));
        ReplicaError::Store(err)
    }

    /// Exponential backoff with jitter: a delay between half and all of
    /// `backoff_min * 2^attempt`, capped at `backoff_max`.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .config
            .backoff_min
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.config.backoff_max);
        let half = ceiling / 2;
        half + rand::thread_rng().gen_range(Duration::ZERO..=half)
    }
}

impl std::fmt::Debug for ReplicaLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaLoop")
            .field("bucket", &self.config.bucket)
            .finish_non_exhaustive()
    }
}
