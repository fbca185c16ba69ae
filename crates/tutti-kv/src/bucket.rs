//! `Bucket`: reads and compare-and-set writes on one KV bucket, each bounded by a timeout.
//!
//! A thin layer over `async_nats::jetstream::kv::Store` whose job is the boundary: keys are
//! validated before they reach a subject, every await is bounded by the configured request
//! timeout, and async-nats error kinds become [`KvError`] variants. Scans and watches live in
//! `scan.rs` and `watch.rs`; both build their own ordered consumers on the bucket's stream.
//!
//! A bucket handle for watching costs the broker nothing: [`Bucket::attach`] names the
//! stream without asking for its info, and the async-nats `Store` behind reads and writes
//! (whose construction is a stream-info request) is built on the first read or write. At ten
//! thousand agents, one stream-info request per agent start is ten thousand requests in the
//! broker's info queue, which it caps at 10,000 and answers more slowly the more consumers
//! the stream has.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishError;
use async_nats::jetstream::kv::{
    CreateError, CreateErrorKind, EntryError, EntryErrorKind, PutError, PutErrorKind, Store,
    UpdateError, UpdateErrorKind,
};
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use tokio::sync::OnceCell;

use crate::entry::{Entry, Operation};
use crate::error::{FailureContext, KvError};
use crate::selection::validate_key;

/// One KV bucket, opened on a caller's JetStream context.
#[derive(Debug, Clone)]
pub struct Bucket {
    name: String,
    prefix: String,
    js: jetstream::Context,
    stream: stream::Stream<()>,
    store: Arc<OnceCell<Store>>,
    pub(crate) failure: FailureContext,
}

/// Stream positions read from the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamBounds {
    pub(crate) first_sequence: u64,
    pub(crate) last_sequence: u64,
}

impl Bucket {
    /// Opens an existing bucket, checking with the broker that it exists. Creating and
    /// reconciling buckets is tutti-bus's job.
    pub async fn open(
        js: &jetstream::Context,
        name: &str,
        request_timeout: Duration,
    ) -> Result<Bucket, KvError> {
        let bucket = Bucket::attach(js, name, request_timeout).await?;
        bucket.store().await?;
        Ok(bucket)
    }

    /// A handle on a bucket without a round trip to the broker: a missing bucket shows at
    /// the first read, write or watch. For watchers, which never need the stream's info.
    pub async fn attach(
        js: &jetstream::Context,
        name: &str,
        request_timeout: Duration,
    ) -> Result<Bucket, KvError> {
        let failure = FailureContext {
            client: js.client(),
            timeout: request_timeout,
        };
        let stream = js
            .get_stream_no_info(format!("KV_{name}"))
            .await
            .map_err(|err| KvError::other("open bucket", err))?;
        Ok(Bucket {
            name: name.to_string(),
            prefix: format!("$KV.{name}."),
            js: js.clone(),
            stream,
            store: Arc::new(OnceCell::new()),
            failure,
        })
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The async-nats store behind reads and writes, built (one stream-info request) on
    /// first use and shared by clones of this handle.
    async fn store(&self) -> Result<&Store, KvError> {
        self.store
            .get_or_try_init(|| {
                self.failure.bounded("open bucket", async {
                    self.js
                        .get_key_value(&self.name)
                        .await
                        .map_err(|err| self.failure.other("open bucket", err))
                })
            })
            .await
    }

    /// The current value of `key`; deleted and purged keys read as absent.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, KvError> {
        let entry = self.entry(key).await?;
        Ok(entry
            .filter(|entry| !entry.is_tombstone())
            .map(|entry| entry.value))
    }

    /// The latest revision of `key`, tombstones included (for compare-and-set).
    pub async fn entry(&self, key: &str) -> Result<Option<Entry>, KvError> {
        validate_key(key)?;
        let found = self
            .failure
            .bounded("get", async {
                self.store()
                    .await?
                    .entry(key)
                    .await
                    .map_err(|err| self.entry_error(key, err))
            })
            .await?;
        Ok(found.map(|entry| Entry {
            key: entry.key,
            value: entry.value,
            revision: entry.revision,
            operation: Operation::from_nats(entry.operation),
        }))
    }

    /// Writes `value` under `key` and returns the new revision.
    pub async fn put(&self, key: &str, value: Bytes) -> Result<u64, KvError> {
        validate_key(key)?;
        self.failure
            .bounded("put", async {
                self.store()
                    .await?
                    .put(key, value)
                    .await
                    .map_err(|err| self.put_error(key, err))
            })
            .await
    }

    /// Writes `value` under `key` with a time to live: the broker removes the value `ttl`
    /// after the write (whole seconds, at least one), without a delete marker, so watchers
    /// keep their copy. The bucket's stream must allow message TTLs, or the broker refuses.
    pub async fn put_with_ttl(
        &self,
        key: &str,
        value: Bytes,
        ttl: Duration,
    ) -> Result<u64, KvError> {
        validate_key(key)?;
        let mut headers = HeaderMap::new();
        let seconds = ttl.as_secs().max(1).to_string();
        headers.insert(async_nats::header::NATS_MESSAGE_TTL, seconds.as_str());
        let subject = format!("{}{key}", self.prefix);
        self.failure
            .bounded("put", async {
                let acked = self
                    .js
                    .publish_with_headers(subject, headers, value)
                    .await
                    .map_err(|err| self.publish_error(err))?;
                let ack = acked.await.map_err(|err| self.publish_error(err))?;
                Ok(ack.sequence)
            })
            .await
    }

    /// Writes `value` only if `key` has no live value (absent, deleted or purged).
    pub async fn create(&self, key: &str, value: Bytes) -> Result<u64, KvError> {
        validate_key(key)?;
        self.failure
            .bounded("create", async {
                self.store()
                    .await?
                    .create(key, value)
                    .await
                    .map_err(|err| self.create_error(key, err))
            })
            .await
    }

    /// Writes `value` only if the latest revision of `key` is `expected_revision`.
    pub async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_revision: u64,
    ) -> Result<u64, KvError> {
        validate_key(key)?;
        self.failure
            .bounded("update", async {
                self.store()
                    .await?
                    .update(key, value, expected_revision)
                    .await
                    .map_err(|err| self.update_error(key, "update", err))
            })
            .await
    }

    /// Deletes `key` (a delete marker; history is kept).
    pub async fn delete(&self, key: &str) -> Result<(), KvError> {
        self.delete_inner(key, None).await
    }

    /// Deletes `key` only if its latest revision is `expected_revision`.
    pub async fn delete_if_revision(
        &self,
        key: &str,
        expected_revision: u64,
    ) -> Result<(), KvError> {
        self.delete_inner(key, Some(expected_revision)).await
    }

    /// Purges `key`: a purge marker replaces its whole history, so the broker reclaims the
    /// bytes of the older revisions.
    pub async fn purge(&self, key: &str) -> Result<(), KvError> {
        validate_key(key)?;
        self.failure
            .bounded("purge", async {
                self.store()
                    .await?
                    .purge(key)
                    .await
                    .map_err(|err| self.update_error(key, "purge", err))
            })
            .await
    }

    async fn delete_inner(&self, key: &str, expected_revision: Option<u64>) -> Result<(), KvError> {
        validate_key(key)?;
        self.failure
            .bounded("delete", async {
                self.store()
                    .await?
                    .delete_expect_revision(key, expected_revision)
                    .await
                    .map_err(|err| self.update_error(key, "delete", err))
            })
            .await
    }

    /// The bucket's stream, for consumers.
    pub(crate) fn stream(&self) -> &stream::Stream<()> {
        &self.stream
    }

    /// The subject prefix of the bucket's keys, e.g. `$KV.config.`.
    pub(crate) fn subject_prefix(&self) -> &str {
        &self.prefix
    }

    /// The stream's first retained and last assigned sequences, fresh from the broker.
    pub(crate) async fn stream_bounds(&self) -> Result<StreamBounds, KvError> {
        let info = self
            .failure
            .bounded("stream info", async {
                self.stream()
                    .get_info()
                    .await
                    .map_err(|err| self.failure.other("stream info", err))
            })
            .await?;
        Ok(StreamBounds {
            first_sequence: info.state.first_sequence,
            last_sequence: info.state.last_sequence,
        })
    }

    fn entry_error(&self, key: &str, err: EntryError) -> KvError {
        match err.kind() {
            EntryErrorKind::InvalidKey => KvError::InvalidKey(key.to_string()),
            EntryErrorKind::TimedOut => self.failure.no_answer("get"),
            EntryErrorKind::Other => self.failure.other("get", err),
        }
    }

    fn put_error(&self, key: &str, err: PutError) -> KvError {
        match err.kind() {
            PutErrorKind::InvalidKey => KvError::InvalidKey(key.to_string()),
            PutErrorKind::Publish | PutErrorKind::Ack if publish_timed_out(&err) => {
                self.failure.no_answer("put")
            }
            PutErrorKind::Publish | PutErrorKind::Ack => self.failure.other("put", err),
        }
    }

    fn publish_error(&self, err: PublishError) -> KvError {
        match err.kind() {
            async_nats::jetstream::context::PublishErrorKind::TimedOut => {
                self.failure.no_answer("put")
            }
            _ => self.failure.other("put", err),
        }
    }

    fn create_error(&self, key: &str, err: CreateError) -> KvError {
        match err.kind() {
            CreateErrorKind::AlreadyExists => KvError::AlreadyExists,
            CreateErrorKind::InvalidKey => KvError::InvalidKey(key.to_string()),
            CreateErrorKind::Publish | CreateErrorKind::Ack | CreateErrorKind::Other => {
                self.failure.other("create", err)
            }
        }
    }

    fn update_error(&self, key: &str, operation: &'static str, err: UpdateError) -> KvError {
        match err.kind() {
            UpdateErrorKind::WrongLastRevision => KvError::RevisionMismatch,
            UpdateErrorKind::InvalidKey => KvError::InvalidKey(key.to_string()),
            UpdateErrorKind::TimedOut => self.failure.no_answer(operation),
            UpdateErrorKind::Other => self.failure.other(operation, err),
        }
    }
}

/// Whether a put failed because the publish acknowledgement timed out. async-nats wraps the
/// `PublishError` as the source, so its kind is read by downcasting, not from the message.
fn publish_timed_out(err: &PutError) -> bool {
    std::error::Error::source(err)
        .and_then(|source| source.downcast_ref::<PublishError>())
        .is_some_and(|publish| {
            publish.kind() == async_nats::jetstream::context::PublishErrorKind::TimedOut
        })
}
