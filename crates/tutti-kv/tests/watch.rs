//! Watches against a real broker: gap-free state-sync, one consumer for many prefixes,
//! exact deltas on resume, expiry at creation and the live overrun guard.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use common::{Scenario, TIMEOUT};
use futures::StreamExt;
use tutti_kv::{BatchLimits, Entry, KvError, Selection, Watch, WatchStart};

fn value(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

async fn next_batch(watch: &mut Watch) -> Result<tutti_kv::WatchBatch, KvError> {
    tokio::time::timeout(TIMEOUT, watch.next_batch(BatchLimits::default()))
        .await
        .expect("a batch in time")
}

/// Collects batches until the watch's cursor reaches `cursor`.
async fn collect_until(watch: &mut Watch, cursor: u64) -> Vec<Entry> {
    let mut entries = Vec::new();
    while watch.cursor() < cursor {
        entries.extend(next_batch(watch).await.expect("batch").entries);
    }
    entries
}

#[tokio::test]
async fn state_sync_misses_no_write_racing_with_its_start() {
    let scenario = Scenario::start("race").await;
    for key_idx in 0..20 {
        scenario
            .bucket
            .put(&format!("race.k{key_idx}"), value("seed"))
            .await
            .unwrap();
    }
    for round in 0..5 {
        // A writer keeps updating every key while the watch is being created.
        let writer_bucket = scenario.bucket.clone();
        let writer = tokio::spawn(async move {
            let mut last = 0;
            for write_idx in 0..200 {
                last = writer_bucket
                    .put(
                        &format!("race.k{}", write_idx % 20),
                        value(&format!("{round}-{write_idx}")),
                    )
                    .await
                    .unwrap();
            }
            last
        });
        let mut watch = scenario
            .bucket
            .watch(&Selection::WholeBucket, WatchStart::StateSync)
            .await
            .unwrap();
        let last_revision = writer.await.unwrap();
        let mut copy: BTreeMap<String, Bytes> = BTreeMap::new();
        for entry in collect_until(&mut watch, last_revision).await {
            copy.insert(entry.key, entry.value);
        }
        let truth: BTreeMap<String, Bytes> = scenario
            .bucket
            .scan("")
            .await
            .unwrap()
            .into_iter()
            .map(|entry| (entry.key, entry.value))
            .collect();
        assert_eq!(copy, truth, "round {round}");
    }
}

#[tokio::test]
async fn several_prefixes_share_one_consumer_and_see_only_their_keys() {
    let scenario = Scenario::start("multi").await;
    let selection = Selection::prefixes(["agent.web-1.", "group.linux.", "all."]).unwrap();
    let mut watch = scenario
        .bucket
        .watch(&selection, WatchStart::StateSync)
        .await
        .unwrap();
    assert!(next_batch(&mut watch).await.unwrap().caught_up);
    assert_eq!(
        scenario.consumer_count().await,
        1,
        "one consumer for three prefixes"
    );
    scenario
        .bucket
        .put("agent.web-2.config", value("other agent"))
        .await
        .unwrap();
    scenario
        .bucket
        .put("agent.web-1.config", value("mine"))
        .await
        .unwrap();
    scenario
        .bucket
        .put("group.windows.freeze", value("other group"))
        .await
        .unwrap();
    scenario
        .bucket
        .put("group.linux.freeze", value("my group"))
        .await
        .unwrap();
    let last = scenario
        .bucket
        .put("all.freeze", value("everyone"))
        .await
        .unwrap();
    let keys: Vec<String> = collect_until(&mut watch, last)
        .await
        .into_iter()
        .map(|entry| entry.key)
        .collect();
    assert_eq!(
        keys,
        ["agent.web-1.config", "group.linux.freeze", "all.freeze"]
    );
    watch.close().await;
    assert_eq!(scenario.consumer_count().await, 0);
}

#[tokio::test]
async fn an_empty_prefix_list_watches_nothing() {
    let scenario = Scenario::start("nothing").await;
    let selection = Selection::prefixes(Vec::<String>::new()).unwrap();
    let mut watch = scenario
        .bucket
        .watch(&selection, WatchStart::StateSync)
        .await
        .unwrap();
    scenario.bucket.put("any.key", value("x")).await.unwrap();
    let first = next_batch(&mut watch).await.unwrap();
    assert!(first.caught_up && first.entries.is_empty());
    let second = tokio::time::timeout(
        Duration::from_millis(300),
        watch.next_batch(BatchLimits::default()),
    )
    .await;
    assert!(second.is_err(), "nothing may ever be delivered");
    assert_eq!(scenario.consumer_count().await, 0);
}

#[tokio::test]
async fn resume_delivers_exactly_the_delta() {
    let scenario = Scenario::start("delta").await;
    let mut cursor = 0;
    for key_idx in 0..10 {
        cursor = scenario
            .bucket
            .put(&format!("d.k{key_idx}"), value("before"))
            .await
            .unwrap();
    }
    let mut last = 0;
    for key_idx in [2, 5, 11] {
        last = scenario
            .bucket
            .put(&format!("d.k{key_idx}"), value("after"))
            .await
            .unwrap();
    }
    let mut watch = scenario
        .bucket
        .watch(&Selection::WholeBucket, WatchStart::AfterCursor(cursor))
        .await
        .unwrap();
    let batch = next_batch(&mut watch).await.unwrap();
    assert!(batch.caught_up);
    assert_eq!(batch.cursor, last);
    let delivered: Vec<(String, Bytes)> = batch
        .entries
        .into_iter()
        .map(|entry| (entry.key, entry.value))
        .collect();
    assert_eq!(
        delivered,
        [
            ("d.k2".to_string(), value("after")),
            ("d.k5".to_string(), value("after")),
            ("d.k11".to_string(), value("after"))
        ],
        "exactly three deliveries, nothing before the cursor"
    );
}

#[tokio::test]
async fn a_cursor_of_u64_max_is_expired_not_wrapped_to_zero() {
    let scenario = Scenario::start("maxcursor").await;
    scenario.bucket.put("k", value("x")).await.unwrap();
    let watch = scenario
        .bucket
        .watch(&Selection::WholeBucket, WatchStart::AfterCursor(u64::MAX))
        .await;
    assert!(
        matches!(
            watch,
            Err(KvError::CursorExpired {
                cursor: u64::MAX,
                ..
            })
        ),
        "{watch:?}"
    );
}

/// NATS clamps a start sequence below the first retained one and so skips the evicted delete
/// marker; raw async-nats shows the clamp, our watch reports the expiry.
#[tokio::test]
async fn resuming_below_the_first_sequence_is_reported_as_expired() {
    let scenario = Scenario::start("expiry").await;
    let bucket = &scenario.bucket;
    let cursor = bucket.put("e.keep", value("1")).await.unwrap();
    bucket.put("e.doomed", value("1")).await.unwrap();
    bucket.delete("e.doomed").await.unwrap();
    let survivor = bucket.put("e.keep", value("2")).await.unwrap();
    scenario.evict_before(survivor).await;
    assert_eq!(scenario.first_sequence().await, survivor);

    let raw = scenario.raw_store().await;
    let mut raw_watch = raw.watch_all_from_revision(cursor + 1).await.unwrap();
    let first_raw = tokio::time::timeout(TIMEOUT, raw_watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        first_raw.revision, survivor,
        "raw async-nats silently skips to the first retained sequence"
    );

    let ours = bucket
        .watch(&Selection::WholeBucket, WatchStart::AfterCursor(cursor))
        .await;
    match ours {
        Err(KvError::CursorExpired {
            cursor: reported,
            first_sequence,
        }) => {
            assert_eq!((reported, first_sequence), (cursor, survivor));
        }
        other => panic!("expected CursorExpired, got {other:?}"),
    }
}

#[tokio::test]
async fn a_cursor_beyond_a_recreated_stream_is_expired() {
    let scenario = Scenario::start("recreated").await;
    let cursor = scenario.bucket.put("k", value("x")).await.unwrap();
    let watch = scenario
        .bucket
        .watch(
            &Selection::WholeBucket,
            WatchStart::AfterCursor(cursor + 50),
        )
        .await;
    assert!(
        matches!(watch, Err(KvError::CursorExpired { .. })),
        "{watch:?}"
    );
}

/// A prefix watch is live; other keys' updates and then one of ours arrive, and retention
/// advances the floor over the gap before the watch reads them. The watch must not return
/// that batch as if nothing could have been lost.
#[tokio::test]
async fn live_overrun_over_an_advanced_floor_trips_the_guard() {
    let scenario = Scenario::start("overrun").await;
    let selection = Selection::prefixes(["mine."]).unwrap();
    let start = scenario.bucket.put("mine.a", value("1")).await.unwrap();
    let mut watch = scenario
        .bucket
        .watch(&selection, WatchStart::AfterCursor(start))
        .await
        .unwrap();
    assert!(next_batch(&mut watch).await.unwrap().caught_up);
    for other_idx in 0..5 {
        scenario
            .bucket
            .put(&format!("other.k{other_idx}"), value("x"))
            .await
            .unwrap();
    }
    let mine = scenario.bucket.put("mine.a", value("2")).await.unwrap();
    scenario.evict_before(mine).await;
    let batch = next_batch(&mut watch).await;
    assert!(
        matches!(batch, Err(KvError::CursorExpired { cursor, .. }) if cursor == start),
        "{batch:?}"
    );
}

/// The same shape without eviction is a normal gap (other keys) and must not trip.
#[tokio::test]
async fn a_gap_of_other_keys_without_eviction_is_not_an_overrun() {
    let scenario = Scenario::start("nogap").await;
    let selection = Selection::prefixes(["mine."]).unwrap();
    let start = scenario.bucket.put("mine.a", value("1")).await.unwrap();
    let mut watch = scenario
        .bucket
        .watch(&selection, WatchStart::AfterCursor(start))
        .await
        .unwrap();
    assert!(next_batch(&mut watch).await.unwrap().caught_up);
    for other_idx in 0..5 {
        scenario
            .bucket
            .put(&format!("other.k{other_idx}"), value("x"))
            .await
            .unwrap();
    }
    let mine = scenario.bucket.put("mine.a", value("2")).await.unwrap();
    let entries = collect_until(&mut watch, mine).await;
    assert_eq!(entries.len(), 1);
}

/// A whole-bucket watch that stops reading: the broker's flow control stalls the consumer,
/// retention evicts what it had not sent yet, and the consumer silently jumps to the new first
/// sequence. The guard sees the jump over the advanced floor.
#[tokio::test]
async fn whole_bucket_watch_overrun_by_retention_while_stalled_trips_the_guard() {
    let scenario = Scenario::start_with(kv::Config {
        bucket: "stalled".to_string(),
        history: 1,
        max_value_size: 1024 * 1024,
        ..Default::default()
    })
    .await;
    let start = scenario.bucket.put("seed", value("x")).await.unwrap();
    let watch_js = async_nats::jetstream::new(scenario.nats.client().await);
    let watch_bucket = tutti_kv::Bucket::open(&watch_js, "stalled", TIMEOUT)
        .await
        .unwrap();
    let mut watch = watch_bucket
        .watch(&Selection::WholeBucket, WatchStart::AfterCursor(start))
        .await
        .unwrap();
    assert!(next_batch(&mut watch).await.unwrap().caught_up);
    // 96 MiB across distinct keys: well past the broker's flow-control window.
    let payload = Bytes::from(vec![7u8; 512 * 1024]);
    let mut last = 0;
    for key_idx in 0..192 {
        last = scenario
            .bucket
            .put(&format!("big.k{key_idx}"), payload.clone())
            .await
            .unwrap();
    }
    scenario.evict_before(last).await;
    let mut outcome = Ok(());
    while watch.cursor() < last {
        match next_batch(&mut watch).await {
            Ok(_) => {}
            Err(err) => {
                outcome = Err(err);
                break;
            }
        }
    }
    assert!(
        matches!(outcome, Err(KvError::CursorExpired { .. })),
        "the stalled watch was overrun silently: {outcome:?}"
    );
}
