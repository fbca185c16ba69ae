//! Reads and compare-and-set writes against a real broker.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::Scenario;
use tutti_kv::{KvError, Operation};

fn value(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

#[tokio::test]
async fn cas_update_conflicts_report_revision_mismatch() {
    let scenario = Scenario::start("cas").await;
    let bucket = &scenario.bucket;
    let first = bucket.put("config.a", value("1")).await.unwrap();
    let second = bucket.update("config.a", value("2"), first).await.unwrap();
    assert!(second > first);
    let stale = bucket.update("config.a", value("3"), first).await;
    assert!(matches!(stale, Err(KvError::RevisionMismatch)), "{stale:?}");
    assert_eq!(bucket.get("config.a").await.unwrap(), Some(value("2")));
}

#[tokio::test]
async fn create_fails_on_live_value_and_succeeds_after_delete_or_cas_delete() {
    let scenario = Scenario::start("create").await;
    let bucket = &scenario.bucket;
    bucket.create("k.plain", value("1")).await.unwrap();
    assert!(matches!(
        bucket.create("k.plain", value("2")).await,
        Err(KvError::AlreadyExists)
    ));
    bucket.delete("k.plain").await.unwrap();
    bucket
        .create("k.plain", value("3"))
        .await
        .expect("create after delete");

    let revision = bucket.create("k.cas", value("1")).await.unwrap();
    let wrong = bucket.delete_if_revision("k.cas", revision + 100).await;
    assert!(matches!(wrong, Err(KvError::RevisionMismatch)), "{wrong:?}");
    bucket.delete_if_revision("k.cas", revision).await.unwrap();
    bucket
        .create("k.cas", value("2"))
        .await
        .expect("create after CAS delete");
    assert_eq!(bucket.get("k.cas").await.unwrap(), Some(value("2")));
}

#[tokio::test]
async fn tombstones_are_hidden_from_get_scan_and_keys_but_visible_to_entry() {
    let scenario = Scenario::start("tombstones").await;
    let bucket = &scenario.bucket;
    bucket.put("t.live", value("1")).await.unwrap();
    bucket.put("t.deleted", value("1")).await.unwrap();
    bucket.put("t.purged", value("1")).await.unwrap();
    bucket.delete("t.deleted").await.unwrap();
    bucket.purge("t.purged").await.unwrap();

    assert_eq!(bucket.get("t.deleted").await.unwrap(), None);
    assert_eq!(bucket.get("t.purged").await.unwrap(), None);
    assert_eq!(bucket.keys("t.").await.unwrap(), ["t.live"]);
    let scanned: Vec<String> = bucket
        .scan("")
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.key)
        .collect();
    assert_eq!(scanned, ["t.live"]);
    let tombstone = bucket
        .entry("t.deleted")
        .await
        .unwrap()
        .expect("tombstone entry");
    assert_eq!(tombstone.operation, Operation::Delete);
    let purged = bucket
        .entry("t.purged")
        .await
        .unwrap()
        .expect("purge entry");
    assert_eq!(purged.operation, Operation::Purge);
}

#[tokio::test]
async fn purge_reclaims_the_history_of_a_key() {
    let scenario = Scenario::start("reclaim").await;
    let bucket = &scenario.bucket;
    for round in 0..5 {
        bucket
            .put("big", Bytes::from(vec![round as u8; 64 * 1024]))
            .await
            .unwrap();
    }
    let mut stream = scenario.js.get_stream("KV_reclaim").await.unwrap();
    let bytes_before = stream.info().await.unwrap().state.bytes;
    bucket.purge("big").await.unwrap();
    let bytes_after = stream.info().await.unwrap().state.bytes;
    assert!(
        bytes_after < bytes_before / 10,
        "purge kept {bytes_after} of {bytes_before} bytes"
    );
}

#[tokio::test]
async fn scan_and_keys_cover_five_thousand_keys_with_true_revisions() {
    let scenario = Scenario::start("large").await;
    let raw = scenario.raw_store().await;
    let mut expected = Vec::new();
    // Publish without awaiting each ack so seeding stays fast; revisions come from the acks.
    let mut acks = Vec::new();
    for key_idx in 0..5_000 {
        let key = format!("fleet.agent-{key_idx:05}");
        let ack = scenario
            .js
            .publish(format!("$KV.large.{key}"), value("v"))
            .await
            .unwrap();
        acks.push((key, ack));
    }
    for (key, ack) in acks {
        expected.push((key, ack.await.unwrap().sequence));
    }
    // Overwrite a few so the revisions are not simply the key index.
    for key_idx in [7, 4_999] {
        let key = format!("fleet.agent-{key_idx:05}");
        let revision = raw.put(&key, value("v2")).await.unwrap();
        expected[key_idx].1 = revision;
    }
    let scanned = scenario.bucket.scan("fleet.").await.unwrap();
    let got: Vec<(String, u64)> = scanned
        .iter()
        .map(|entry| (entry.key.clone(), entry.revision))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(scanned[7].value, value("v2"));
    let keys = scenario.bucket.keys("").await.unwrap();
    assert_eq!(keys.len(), 5_000);
    assert_eq!(
        scenario.consumer_count().await,
        0,
        "scans must not leave consumers behind"
    );
}

#[tokio::test]
async fn invalid_keys_are_rejected_before_reaching_a_subject() {
    let scenario = Scenario::start("invalid").await;
    for key in ["a.*", "a.>", "", "a..b", "a b"] {
        let put = scenario.bucket.put(key, value("x")).await;
        assert!(
            matches!(put, Err(KvError::InvalidKey(_))),
            "{key:?}: {put:?}"
        );
    }
    assert!(matches!(
        scenario.bucket.scan("a.*").await,
        Err(KvError::InvalidKey(_))
    ));
}

#[tokio::test]
async fn operations_on_a_stopped_broker_fail_fast_as_not_connected() {
    let mut scenario = Scenario::start("offline").await;
    let timeout = std::time::Duration::from_millis(500);
    let bucket = tutti_kv::Bucket::open(&scenario.js, "offline", timeout)
        .await
        .unwrap();
    scenario.nats.stop();
    let started = std::time::Instant::now();
    let put = bucket.put("k", value("x")).await;
    assert!(matches!(put, Err(KvError::NotConnected)), "{put:?}");
    assert!(put.unwrap_err().is_transient());
    let get = bucket.get("k").await;
    assert!(matches!(get, Err(KvError::NotConnected)), "{get:?}");
    assert!(
        started.elapsed() < 4 * timeout,
        "every await is bounded by the request timeout"
    );
}

#[tokio::test]
async fn a_value_put_with_a_ttl_expires_and_other_keys_stay() {
    let scenario = Scenario::start("ttl").await;
    let mut config = scenario
        .js
        .get_stream("KV_ttl")
        .await
        .unwrap()
        .cached_info()
        .config
        .clone();
    config.allow_message_ttl = true;
    scenario.js.update_stream(config).await.unwrap();
    let bucket = &scenario.bucket;

    let revision = bucket
        .put_with_ttl("revoked.a", value("gone soon"), Duration::from_secs(1))
        .await
        .unwrap();
    bucket.put("state.b", value("stays")).await.unwrap();
    let entry = bucket.entry("revoked.a").await.unwrap().expect("just put");
    assert_eq!(
        (entry.revision, entry.value),
        (revision, value("gone soon"))
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while bucket.get("revoked.a").await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the TTL never removed the value"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(bucket.get("state.b").await.unwrap(), Some(value("stays")));
    assert!(matches!(
        bucket
            .put_with_ttl("bad key", value("x"), Duration::from_secs(1))
            .await,
        Err(KvError::InvalidKey(_))
    ));
}

#[tokio::test]
async fn a_ttl_on_a_bucket_that_refuses_ttls_is_an_error_not_a_silent_put() {
    let scenario = Scenario::start("no_ttl").await;
    let refused = scenario
        .bucket
        .put_with_ttl("k", value("v"), Duration::from_secs(60))
        .await;
    assert!(
        matches!(
            refused,
            Err(KvError::Other {
                operation: "put",
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(scenario.bucket.get("k").await.unwrap(), None);
}

#[tokio::test]
async fn attaching_asks_the_broker_nothing_and_a_missing_bucket_shows_at_first_use() {
    let scenario = Scenario::start("present").await;
    let missing = tutti_kv::Bucket::attach(&scenario.js, "absent", common::TIMEOUT)
        .await
        .expect("attach needs no broker round trip");
    assert_eq!(missing.name(), "absent");
    let read = missing.get("k").await;
    assert!(matches!(read, Err(KvError::Other { .. })), "{read:?}");
    let watched = missing
        .watch(
            &tutti_kv::Selection::WholeBucket,
            tutti_kv::WatchStart::StateSync,
        )
        .await;
    assert!(watched.is_err(), "a watch of a missing bucket must fail");
    assert!(
        tutti_kv::Bucket::open(&scenario.js, "absent", common::TIMEOUT)
            .await
            .is_err(),
        "open checks that the bucket exists"
    );

    let present = tutti_kv::Bucket::attach(&scenario.js, "present", common::TIMEOUT)
        .await
        .unwrap();
    present.put("k", value("v")).await.unwrap();
    assert_eq!(scenario.bucket.get("k").await.unwrap(), Some(value("v")));
}
