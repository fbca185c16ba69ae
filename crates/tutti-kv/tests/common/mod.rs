//! Shared scenario helpers for the NATS-backed tests: a broker, a bucket, a bounded wait.

#![allow(dead_code, unreachable_pub)] // Each test binary uses a different subset.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use tutti_kv::Bucket;
use tutti_testkit::TestNats;

pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A broker with one bucket, and a `Bucket` handle on it.
pub struct Scenario {
    pub nats: TestNats,
    pub js: jetstream::Context,
    pub bucket: Bucket,
}

impl Scenario {
    pub async fn start(name: &str) -> Scenario {
        Scenario::start_with(kv::Config {
            bucket: name.to_string(),
            history: 5,
            ..Default::default()
        })
        .await
    }

    pub async fn start_with(config: kv::Config) -> Scenario {
        let nats = TestNats::start();
        let js = nats.jetstream().await;
        let name = config.bucket.clone();
        js.create_key_value(config).await.expect("create bucket");
        let bucket = Bucket::open(&js, &name, TIMEOUT)
            .await
            .expect("open bucket");
        Scenario { nats, js, bucket }
    }

    pub async fn raw_store(&self) -> kv::Store {
        self.js
            .get_key_value(self.bucket.name())
            .await
            .expect("raw store")
    }

    /// Number of consumers on the bucket's stream, as the broker reports it.
    pub async fn consumer_count(&self) -> usize {
        let mut stream = self
            .js
            .get_stream(format!("KV_{}", self.bucket.name()))
            .await
            .expect("stream");
        stream
            .info()
            .await
            .expect("stream info")
            .state
            .consumer_count
    }

    pub async fn first_sequence(&self) -> u64 {
        let mut stream = self
            .js
            .get_stream(format!("KV_{}", self.bucket.name()))
            .await
            .expect("stream");
        stream
            .info()
            .await
            .expect("stream info")
            .state
            .first_sequence
    }

    /// Purges the bucket's stream up to (not including) `sequence`, as retention would.
    pub async fn evict_before(&self, sequence: u64) {
        let stream = self
            .js
            .get_stream(format!("KV_{}", self.bucket.name()))
            .await
            .expect("stream");
        stream
            .purge()
            .sequence(sequence)
            .await
            .expect("purge stream");
    }
}

/// Polls `condition` until it holds or 10 s pass.
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
