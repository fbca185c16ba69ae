//! `Bucket::scan` and `Bucket::keys`: the current entries under a prefix, for any bucket size.
//!
//! One ordered consumer with `DeliverPolicy::LastPerSubject` delivers the latest revision of
//! every matching key, and the scan stops at the delivery whose pending count is 0. There are
//! no acks, so unlike an explicit-ack consumer it never stalls at `max_ack_pending` (1,000 by
//! default). Each entry's revision is its true stream sequence. Tombstones are skipped.

use async_nats::jetstream::consumer::DeliverPolicy;
use futures::StreamExt;

use crate::bucket::Bucket;
use crate::consumer::{OrderedConsumer, create_ordered, delete_consumer};
use crate::entry::Entry;
use crate::error::KvError;
use crate::message::decode;
use crate::selection::Selection;

impl Bucket {
    /// The live entries whose keys start with `prefix` (`""` for the whole bucket), in key
    /// order, each with its true revision.
    pub async fn scan(&self, prefix: &str) -> Result<Vec<Entry>, KvError> {
        let mut entries = self.scan_inner(prefix, false).await?;
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(entries)
    }

    /// The live keys starting with `prefix` (`""` for the whole bucket), in order. Values are
    /// not transferred.
    pub async fn keys(&self, prefix: &str) -> Result<Vec<String>, KvError> {
        let mut keys: Vec<String> = self
            .scan_inner(prefix, true)
            .await?
            .into_iter()
            .map(|entry| entry.key)
            .collect();
        keys.sort();
        Ok(keys)
    }

    async fn scan_inner(&self, prefix: &str, headers_only: bool) -> Result<Vec<Entry>, KvError> {
        let selection = Selection::prefixes([prefix])?;
        let filters = selection.filter_subjects(self.subject_prefix())?;
        let consumer =
            create_ordered(self, filters, DeliverPolicy::LastPerSubject, headers_only).await?;
        let name = consumer.name.clone();
        let result = self.drain(consumer, &selection).await;
        delete_consumer(self, &name).await;
        result
    }

    async fn drain(
        &self,
        mut consumer: OrderedConsumer,
        selection: &Selection,
    ) -> Result<Vec<Entry>, KvError> {
        let mut entries = Vec::new();
        if consumer.pending_at_creation == 0 {
            return Ok(entries);
        }
        loop {
            let delivery = self.next_delivery(&mut consumer).await?;
            let done = delivery.pending == 0;
            if !delivery.entry.is_tombstone() && selection.matches(&delivery.entry.key) {
                entries.push(delivery.entry);
            }
            if done {
                return Ok(entries);
            }
        }
    }

    async fn next_delivery(
        &self,
        consumer: &mut OrderedConsumer,
    ) -> Result<crate::message::Delivery, KvError> {
        let next = tokio::time::timeout(self.failure.timeout, consumer.messages.next()).await;
        match next {
            Err(_elapsed) => Err(self.failure.no_answer("scan")),
            Ok(None) => Err(self
                .failure
                .other("scan", "consumer ended before the scan completed")),
            Ok(Some(Err(err))) => Err(self.failure.other("scan", err)),
            Ok(Some(Ok(message))) => decode(self.subject_prefix(), &message),
        }
    }
}
