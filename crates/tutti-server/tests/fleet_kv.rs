//! The move from the four-bucket layout (`tutti_config`, `tutti_groups`,
//! `tutti_revocations`, `tutti_fleet`) to the one `tutti_fleet` bucket agents follow: a
//! server started on a broker that still has the old buckets carries every live key across
//! under its new name, never overwrites a value already in `tutti_fleet`, deletes the old
//! buckets, and an agent of this version then follows the migrated state.

mod common;

use async_nats::jetstream::kv;
use bytes::Bytes;
use common::wait_online;
use serde_json::{Value, json};
use tutti_proto::catalog::FLEET_BUCKET;
use tutti_testkit::{TestAgent, TestNats, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_fleet_buckets_are_moved_into_one_and_agents_follow_them() {
    let nats = TestNats::start();
    let js = nats.jetstream().await;
    let legacy = [
        (
            "tutti_config",
            vec![
                ("global", json!({"concurrency": 3})),
                ("agent.web-01", json!({"heartbeat_interval_secs": 7})),
            ],
        ),
        (
            "tutti_groups",
            vec![("agent.web-01", json!({"groups": ["web"]}))],
        ),
        (
            "tutti_revocations",
            vec![(
                "job.bad-patch",
                json!({"at": "2026-11-30T10:00:00Z", "actor": "ops", "reason": "bad"}),
            )],
        ),
    ];
    for (bucket, entries) in &legacy {
        let store = js
            .create_key_value(kv::Config {
                bucket: bucket.to_string(),
                history: 5,
                ..Default::default()
            })
            .await
            .unwrap();
        for (key, value) in entries {
            store
                .put(*key, Bytes::from(value.to_string()))
                .await
                .unwrap();
        }
    }
    // A newer value already in the new bucket wins over the old one.
    let fleet = js
        .create_key_value(kv::Config {
            bucket: FLEET_BUCKET.to_string(),
            history: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    fleet
        .put(
            "config.global",
            Bytes::from(json!({"concurrency": 4}).to_string()),
        )
        .await
        .unwrap();

    let server = TestServer::start(&nats).await;

    // Moved values are re-signed by the server, as agents apply nothing else.
    let server_key = server.app().keys.current().verifying();
    let read = |key: &'static str| {
        let fleet = fleet.clone();
        async move {
            let bytes = fleet.get(key).await.unwrap();
            bytes.map(|bytes| {
                tutti_proto::signed_value::SignedValue::verify_as::<Value>(&bytes, key, &server_key)
                    .unwrap()
            })
        }
    };
    assert_eq!(read("config.global").await, Some(json!({"concurrency": 4})));
    assert_eq!(
        read("config.agent.web-01").await,
        Some(json!({"heartbeat_interval_secs": 7}))
    );
    assert_eq!(
        read("groups.web-01").await,
        Some(json!({"groups": ["web"]}))
    );
    assert_eq!(read("revoked.job.bad-patch").await.unwrap()["actor"], "ops");
    for (bucket, _) in &legacy {
        assert!(
            js.get_key_value(*bucket).await.is_err(),
            "{bucket} was deleted after the move"
        );
    }

    // The server reads the migrated layers for an enrolled agent of this version.
    let _agent = TestAgent::spawn(&server, "web-01").await;
    wait_online(&server, &["web-01"]).await;
    let view: Value = server.get("/api/v1/agents/web-01/config").await;
    assert_eq!(view["effective"]["concurrency"], 4, "{view}");
    assert_eq!(view["effective"]["heartbeat_interval_secs"], 7, "{view}");
}
