//! Creating and removing the ephemeral ordered consumers behind scans and watches.
//!
//! Ordered push consumers have no acks, so a scan or a state-sync of a bucket far larger than
//! `max_ack_pending` never stalls, and a connected watcher costs the broker one consumer
//! however many prefixes it follows (they all go into `filter_subjects`).

use async_nats::jetstream::consumer::push::{Ordered, OrderedConfig};
use async_nats::jetstream::consumer::{DeliverPolicy, ReplayPolicy};
use async_nats::jetstream::stream::ConsumerErrorKind;

use crate::bucket::Bucket;
use crate::error::KvError;

/// A freshly created ordered consumer and what the broker said about it at creation.
pub(crate) struct OrderedConsumer {
    pub(crate) messages: Ordered,
    pub(crate) name: String,
    pub(crate) pending_at_creation: u64,
}

impl std::fmt::Debug for OrderedConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderedConsumer")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

pub(crate) async fn create_ordered(
    bucket: &Bucket,
    filter_subjects: Vec<String>,
    deliver_policy: DeliverPolicy,
    headers_only: bool,
) -> Result<OrderedConsumer, KvError> {
    let failure = &bucket.failure;
    let config = OrderedConfig {
        deliver_subject: failure.client.new_inbox(),
        description: Some("tutti-kv".to_string()),
        filter_subjects,
        replay_policy: ReplayPolicy::Instant,
        deliver_policy,
        headers_only,
        ..Default::default()
    };
    failure
        .bounded("create consumer", async {
            let consumer =
                bucket
                    .stream()
                    .create_consumer(config)
                    .await
                    .map_err(|err| match err.kind() {
                        ConsumerErrorKind::TimedOut => failure.no_answer("create consumer"),
                        _ => failure.other("create consumer", err),
                    })?;
            let name = consumer.cached_info().name.clone();
            let pending_at_creation = consumer.cached_info().num_pending;
            let messages = consumer
                .messages()
                .await
                .map_err(|err| failure.other("subscribe consumer", err))?;
            Ok(OrderedConsumer {
                messages,
                name,
                pending_at_creation,
            })
        })
        .await
}

/// Deletes a consumer now instead of leaving it to the broker's inactivity threshold.
/// Best effort: a failure only delays the cleanup.
pub(crate) async fn delete_consumer(bucket: &Bucket, name: &str) {
    let deleted = tokio::time::timeout(
        bucket.failure.timeout,
        bucket.stream().delete_consumer(name),
    )
    .await;
    if !matches!(deleted, Ok(Ok(_))) {
        tracing::debug!(
            consumer = name,
            "Could not delete an ephemeral consumer; the broker will expire it."
        );
    }
}
