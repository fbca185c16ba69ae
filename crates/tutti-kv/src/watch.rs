//! `Watch`: a gap-free feed of a bucket's changes, with expiry and overrun detection.
//!
//! A watch is one ordered consumer (several prefixes share it through `filter_subjects`) and
//! starts in one of two ways:
//!
//! - [`WatchStart::StateSync`]: `DeliverPolicy::LastPerSubject`, i.e. the current revision of
//!   every selected key, then live updates from the same consumer. There is no window between
//!   "list" and "watch" in which a write could be missed, because they are one consumer.
//! - [`WatchStart::AfterCursor`]: `DeliverPolicy::ByStartSequence(cursor + 1)`, only the delta.
//!   The broker silently clamps a start below the stream's first retained sequence, skipping
//!   evicted delete markers, so the first sequence is read before *and* after creating the
//!   consumer; a start below either is reported as [`KvError::CursorExpired`]. A cursor beyond
//!   the stream's last sequence (the stream was recreated) is reported the same way, and
//!   `u64::MAX` cannot be resumed (no wrap to 0).
//!
//! **Live overrun guard.** Retention can also overrun a watch that is already running: the
//! consumer (or async-nats re-creating it after a disconnect, with the same silent clamp)
//! moves past messages the broker evicted before delivering them. Once a watch is in stream
//! order, every delivered sequence that jumps over the next expected one records a gap, and
//! before the batch containing it is returned the stream's first sequence is read: if it has
//! advanced past the start of the gap, messages in the gap may have been evicted unseen, and
//! the batch fails with `CursorExpired` so the caller resynchronises. Since limits evict the
//! oldest messages first, comparing the start of the earliest gap with the first sequence is
//! enough. Covered shapes: every resumed watch from its first delivery, and every state-sync
//! watch once its snapshot is complete (`caught_up`), for the whole bucket or any prefixes.
//! Not covered: the snapshot phase of a state-sync, where gaps are normal; there, a consumer
//! re-created mid-snapshot fails the watch instead. The guard is conservative: for a prefix
//! watch, an advanced floor over a gap of other keys' messages also trips it, which costs a
//! resync, never a divergence. Keys that expire through the bucket's `max_age` without a
//! marker are invisible to every watch; that is a property of NATS KV, not of this layer.

use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::push::OrderedErrorKind;
use futures::StreamExt;
use tokio::time::Instant;

use crate::bucket::{Bucket, StreamBounds};
use crate::consumer::{OrderedConsumer, create_ordered, delete_consumer};
use crate::entry::Entry;
use crate::error::KvError;
use crate::message::{Delivery, decode};
use crate::selection::Selection;

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchStart {
    /// The current value of every selected key (tombstones included), then live updates.
    StateSync,
    /// Only updates with a stream sequence above this cursor.
    AfterCursor(u64),
}

/// How [`Watch::next_batch`] groups deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// At most this many entries per batch.
    pub max_entries: usize,
    /// A batch is returned at the latest this long after its first delivery.
    pub window: Duration,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_entries: 1024,
            window: Duration::from_millis(20),
        }
    }
}

/// Deliveries grouped by [`Watch::next_batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchBatch {
    /// Selected entries in stream order (tombstones included).
    pub entries: Vec<Entry>,
    /// Every selected update with a stream sequence up to here has been delivered, in this
    /// batch or an earlier one. Meaningful for persistence once `caught_up` is true.
    pub cursor: u64,
    /// The initial snapshot (state-sync) or backlog (resume) has been delivered in full.
    pub caught_up: bool,
}

/// A running watch; see the module docs.
#[derive(Debug)]
pub struct Watch {
    bucket: Bucket,
    selection: Selection,
    consumer: Option<OrderedConsumer>,
    in_stream_order: bool,
    position: u64,
    snapshot_baseline: u64,
    caught_up: bool,
    caught_up_reported: bool,
    last_consumer_sequence: u64,
    unverified_gap_from: Option<u64>,
    pending: Vec<Entry>,
    batch_started_at: Option<Instant>,
}

impl Bucket {
    /// Starts a watch over `selection`; an empty selection watches nothing.
    pub async fn watch(&self, selection: &Selection, start: WatchStart) -> Result<Watch, KvError> {
        let mut watch = Watch::new(self.clone(), selection.clone());
        match start {
            WatchStart::StateSync => watch.start_state_sync().await?,
            WatchStart::AfterCursor(cursor) => watch.start_after_cursor(cursor).await?,
        }
        Ok(watch)
    }
}

impl Watch {
    /// Waits for the next batch of deliveries. Cancel-safe: a dropped call loses nothing,
    /// the next call returns what had been collected.
    pub async fn next_batch(&mut self, limits: BatchLimits) -> Result<WatchBatch, KvError> {
        while !self.batch_ready(limits) {
            let deadline = self.batch_started_at.map(|started| started + limits.window);
            let delivery = match deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, self.receive()).await {
                    Ok(delivery) => delivery?,
                    Err(_window_closed) => break,
                },
                None => self.receive().await?,
            };
            self.accept(delivery)?;
        }
        self.verify_not_overrun().await?;
        self.caught_up_reported = self.caught_up;
        self.batch_started_at = None;
        Ok(WatchBatch {
            entries: std::mem::take(&mut self.pending),
            cursor: self.position,
            caught_up: self.caught_up,
        })
    }

    /// The stream sequence up to which every selected update has been delivered.
    pub fn cursor(&self) -> u64 {
        self.position
    }

    /// Stops the watch and deletes its consumer on the broker right away.
    pub async fn close(mut self) {
        if let Some(consumer) = self.consumer.take() {
            delete_consumer(&self.bucket, &consumer.name).await;
        }
    }

    fn new(bucket: Bucket, selection: Selection) -> Watch {
        Watch {
            bucket,
            selection,
            consumer: None,
            in_stream_order: true,
            position: 0,
            snapshot_baseline: 0,
            caught_up: false,
            caught_up_reported: false,
            last_consumer_sequence: 0,
            unverified_gap_from: None,
            pending: Vec::new(),
            batch_started_at: None,
        }
    }

    async fn start_state_sync(&mut self) -> Result<(), KvError> {
        // Everything up to the last sequence read *before* the consumer exists is covered by
        // its snapshot, so that is the cursor once the snapshot is delivered, even if no
        // selected key exists.
        let bounds = self.bucket.stream_bounds().await?;
        self.snapshot_baseline = bounds.last_sequence;
        self.in_stream_order = false;
        if self.selection.is_empty() {
            self.mark_caught_up();
            return Ok(());
        }
        let filters = self
            .selection
            .filter_subjects(self.bucket.subject_prefix())?;
        let consumer =
            create_ordered(&self.bucket, filters, DeliverPolicy::LastPerSubject, false).await?;
        self.install(consumer);
        Ok(())
    }

    async fn start_after_cursor(&mut self, cursor: u64) -> Result<(), KvError> {
        self.position = cursor;
        if self.selection.is_empty() {
            self.mark_caught_up();
            return Ok(());
        }
        let before = self.bucket.stream_bounds().await?;
        let start_sequence = resumable_start(cursor, before)?;
        let filters = self
            .selection
            .filter_subjects(self.bucket.subject_prefix())?;
        let consumer = create_ordered(
            &self.bucket,
            filters,
            DeliverPolicy::ByStartSequence { start_sequence },
            false,
        )
        .await?;
        let name = consumer.name.clone();
        self.install(consumer);
        // Retention may have moved between the first read and the consumer's creation; the
        // broker would then have clamped the start without telling us.
        let after = self.bucket.stream_bounds().await?;
        if let Err(expired) = resumable_start(cursor, after) {
            self.consumer = None;
            delete_consumer(&self.bucket, &name).await;
            return Err(expired);
        }
        Ok(())
    }

    fn install(&mut self, consumer: OrderedConsumer) {
        let nothing_pending = consumer.pending_at_creation == 0;
        self.consumer = Some(consumer);
        if nothing_pending {
            self.mark_caught_up();
        }
    }

    fn batch_ready(&self, limits: BatchLimits) -> bool {
        (self.caught_up && !self.caught_up_reported) || self.pending.len() >= limits.max_entries
    }

    async fn receive(&mut self) -> Result<Delivery, KvError> {
        let Some(consumer) = self.consumer.as_mut() else {
            // An empty selection: nothing will ever be delivered.
            return std::future::pending().await;
        };
        let failure = &self.bucket.failure;
        loop {
            return match consumer.messages.next().await {
                None => Err(failure.other("watch", "the watch consumer ended")),
                // async-nats re-creates the consumer from the last delivered sequence on the
                // next poll; `accept` sees the restarted consumer sequence, and the overrun
                // guard covers what retention may have taken meanwhile. Failing the watch
                // instead would restart it with three API calls, which is what every replica
                // of a large fleet did at once whenever the broker fell behind.
                Some(Err(err)) if err.kind() == OrderedErrorKind::MissingHeartbeat => {
                    tracing::debug!(
                        bucket = self.bucket.name(),
                        "A watch heartbeat is late; the consumer is re-created."
                    );
                    continue;
                }
                Some(Err(err)) => Err(failure.other("watch", err)),
                Some(Ok(message)) => decode(self.bucket.subject_prefix(), &message),
            };
        }
    }

    fn accept(&mut self, delivery: Delivery) -> Result<(), KvError> {
        let sequence = delivery.entry.revision;
        let recreated = delivery.consumer_sequence != self.last_consumer_sequence + 1;
        self.last_consumer_sequence = delivery.consumer_sequence;
        if recreated && !self.in_stream_order {
            // async-nats re-created the consumer mid-snapshot from a start sequence, which
            // would silently skip evicted keys; start over instead.
            return Err(KvError::other(
                "watch",
                "the consumer was re-created during the initial snapshot",
            ));
        }
        if sequence > self.position {
            self.advance_to(delivery.entry);
        }
        if delivery.pending == 0 && !self.caught_up {
            self.mark_caught_up();
        }
        Ok(())
    }

    fn advance_to(&mut self, entry: Entry) {
        let sequence = entry.revision;
        if self.in_stream_order
            && sequence > self.position + 1
            && self.unverified_gap_from.is_none()
        {
            self.unverified_gap_from = Some(self.position + 1);
        }
        self.position = sequence;
        self.batch_started_at.get_or_insert_with(Instant::now);
        if self.selection.matches(&entry.key) {
            self.pending.push(entry);
        }
    }

    fn mark_caught_up(&mut self) {
        self.caught_up = true;
        if !self.in_stream_order {
            self.position = self.position.max(self.snapshot_baseline);
            self.in_stream_order = true;
        }
    }

    async fn verify_not_overrun(&mut self) -> Result<(), KvError> {
        let Some(gap_from) = self.unverified_gap_from else {
            return Ok(());
        };
        let bounds = self.bucket.stream_bounds().await?;
        if bounds.first_sequence > gap_from {
            tracing::warn!(
                bucket = self.bucket.name(),
                gap_from,
                first_sequence = bounds.first_sequence,
                "Retention overran a live watch; the copy will be resynchronised."
            );
            return Err(KvError::CursorExpired {
                cursor: gap_from - 1,
                first_sequence: bounds.first_sequence,
            });
        }
        self.unverified_gap_from = None;
        Ok(())
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let Some(consumer) = self.consumer.take() else {
            return;
        };
        // Delete the consumer now rather than after the broker's 30 s inactivity threshold,
        // when a runtime is there to do it.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let bucket = self.bucket.clone();
            runtime.spawn(async move { delete_consumer(&bucket, &consumer.name).await });
        }
    }
}

/// The start sequence for resuming after `cursor`, or `CursorExpired` if the stream no longer
/// holds everything after it (or never held the cursor: the stream was recreated).
pub(crate) fn resumable_start(cursor: u64, bounds: StreamBounds) -> Result<u64, KvError> {
    let expired = KvError::CursorExpired {
        cursor,
        first_sequence: bounds.first_sequence,
    };
    let Some(start_sequence) = cursor.checked_add(1) else {
        return Err(expired);
    };
    if start_sequence < bounds.first_sequence || cursor > bounds.last_sequence {
        return Err(expired);
    }
    Ok(start_sequence)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(first_sequence: u64, last_sequence: u64) -> StreamBounds {
        StreamBounds {
            first_sequence,
            last_sequence,
        }
    }

    #[test]
    fn resume_point_against_stream_bounds() {
        assert_eq!(
            resumable_start(0, bounds(0, 0)).unwrap(),
            1,
            "never-used stream"
        );
        assert_eq!(resumable_start(10, bounds(1, 20)).unwrap(), 11);
        assert_eq!(
            resumable_start(10, bounds(11, 20)).unwrap(),
            11,
            "first retained is exactly the next"
        );
        assert_eq!(
            resumable_start(20, bounds(21, 20)).unwrap(),
            21,
            "fully purged but nothing missed"
        );
        assert!(
            resumable_start(9, bounds(11, 20)).is_err(),
            "evicted past the cursor"
        );
        assert!(
            resumable_start(30, bounds(1, 20)).is_err(),
            "stream recreated behind the cursor"
        );
    }

    #[test]
    fn max_cursor_does_not_wrap_to_zero() {
        let err = resumable_start(u64::MAX, bounds(1, u64::MAX)).unwrap_err();
        assert!(matches!(
            err,
            KvError::CursorExpired {
                cursor: u64::MAX,
                ..
            }
        ));
    }
}
