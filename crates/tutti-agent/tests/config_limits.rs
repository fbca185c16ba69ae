//! Configuration the agent cannot be harmed by: a signed layer with values outside their
//! ranges (one that got past the API, e.g. from an older server) is applied clamped and
//! reported, and a changed heartbeat interval takes effect at once instead of after the old
//! interval ran out.

mod common;

use std::time::Duration;

use common::Fleet;
use futures::StreamExt;
use tutti_proto::catalog::FLEET_BUCKET;
use tutti_proto::config::AgentConfig;
use tutti_proto::event::EventKind;
use tutti_proto::signed_value::SignedValue;
use tutti_proto::{kv_keys, subjects};

/// Long enough for a loaded machine, far below the 30 s default interval the agent would
/// otherwise sleep first.
const PROMPTLY: Duration = Duration::from_secs(10);

async fn put_global(fleet: &Fleet, config: &AgentConfig) {
    let key = kv_keys::config_global();
    let signed = SignedValue::sign(&key, config, &fleet.key).unwrap();
    let kv = fleet
        .bus
        .jetstream()
        .get_key_value(FLEET_BUCKET)
        .await
        .unwrap();
    kv.put(key, signed.to_bytes().into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_values_are_clamped_and_reported_and_a_new_interval_applies_at_once() {
    let fleet = Fleet::start().await;
    let spec = fleet.enroll("edge-1", &[]).await;
    let mut heartbeats = fleet
        .bus
        .client()
        .subscribe(subjects::agent_heartbeat(&spec.agent_id))
        .await
        .unwrap();
    let running = spec.start();
    // The first heartbeat comes at start; the next would be 30 s later by default.
    tokio::time::timeout(PROMPTLY, heartbeats.next())
        .await
        .expect("a heartbeat at start");

    // A value that would have silenced the agent for ever, signed as if the API let it
    // through, and a log filter with a control character.
    let absurd = AgentConfig {
        heartbeat_interval_secs: Some(9_223_372_036_854_775_807),
        concurrency: Some(2_147_483_648),
        log_level: Some("debug\u{7}".into()),
        ..AgentConfig::default()
    };
    put_global(&fleet, &absurd).await;
    let events = fleet.events(1).await;
    let reasons: Vec<&str> = events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::FleetValueRefused { key, reason } if key == "config.global" => {
                Some(reason.as_str())
            }
            _ => None,
        })
        .collect();
    // One report for the layer, naming each value out of range.
    assert_eq!(reasons.len(), 1, "{events:?}");
    let reason = reasons[0];
    assert!(
        reason.starts_with("heartbeat_interval_secs: 9223372036854775807 is outside 1..=3600"),
        "{reason}"
    );
    assert!(
        reason.contains("; concurrency: 2147483648 is outside 1..=256"),
        "{reason}"
    );
    assert!(reason.contains("; log_level:"), "{reason}");

    // Back to a sane value, shorter than the default: the agent beats again within
    // seconds, not after the 30 s (or 3,600 s clamped) interval it was sleeping.
    let fast = AgentConfig {
        heartbeat_interval_secs: Some(2),
        ..AgentConfig::default()
    };
    put_global(&fleet, &fast).await;
    for _ in 0..2 {
        tokio::time::timeout(PROMPTLY, heartbeats.next())
            .await
            .expect("heartbeats at the new 2 s interval");
    }
    running.stop().await;
}
