//! Smoke tests of the harness itself: a real broker starts, survives a restart with its data,
//! and a three-node cluster runs a stream with three replicas.

use async_nats::jetstream::stream::{Config, StorageType};
use tutti_testkit::{TestNats, TestNatsCluster};

#[tokio::test]
async fn single_broker_keeps_stream_data_across_restart_and_kill() {
    let mut nats = TestNats::start();
    let port = nats.port();
    let js = nats.jetstream().await;
    js.create_stream(Config {
        name: "SMOKE".into(),
        subjects: vec!["smoke.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    js.publish("smoke.a", "one".into())
        .await
        .unwrap()
        .await
        .unwrap();

    nats.restart();
    assert_eq!(nats.port(), port, "restart keeps the port");
    let js = nats.jetstream().await;
    let mut stream = js.get_stream("SMOKE").await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
    js.publish("smoke.b", "two".into())
        .await
        .unwrap()
        .await
        .unwrap();

    nats.kill();
    nats.start_again();
    let js = nats.jetstream().await;
    let mut stream = js.get_stream("SMOKE").await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 2);
}

#[tokio::test]
async fn two_brokers_get_different_ports() {
    let first = TestNats::start();
    let second = TestNats::start();
    assert_ne!(first.port(), second.port());
}

#[tokio::test]
async fn cluster_of_three_runs_a_replicated_stream() {
    let cluster = TestNatsCluster::start(3);
    assert_eq!(cluster.len(), 3);
    let js = async_nats::jetstream::new(cluster.client().await);
    let mut stream = js
        .create_stream(Config {
            name: "R3".into(),
            subjects: vec!["r3.>".into()],
            num_replicas: 3,
            storage: StorageType::File,
            ..Default::default()
        })
        .await
        .unwrap();
    publish_when_leader_elected(&js, "r3.x").await;
    let info = stream.info().await.unwrap();
    assert_eq!(info.config.num_replicas, 3);
    assert_eq!(info.state.messages, 1);
    let cluster_info = info
        .cluster
        .as_ref()
        .expect("cluster info on a replicated stream");
    assert_eq!(cluster_info.replicas.len(), 2, "a leader and two replicas");
}

/// A freshly created replicated stream answers publishes only once its group has elected
/// a leader and the interest has propagated; until then a publish sees "no responders".
/// Retry on that one condition, within a bound.
async fn publish_when_leader_elected(js: &async_nats::jetstream::Context, subject: &'static str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let acked = match js.publish(subject, "hello".into()).await {
            Ok(ack) => ack.await,
            Err(err) => Err(err),
        };
        match acked {
            Ok(_) => return,
            Err(err) if std::time::Instant::now() < deadline => {
                eprintln!("publish not yet accepted ({err}); retrying");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(err) => panic!("replicated stream never accepted a publish: {err}"),
        }
    }
}
