//! What agents report besides results: heartbeats, ping and inventory over request/reply,
//! inventory snapshots in their stream; and that a huge output is capped, stored in the
//! object store, and does not hold up another agent's result.

mod common;

use std::time::Duration;

use common::{Fleet, agent};
use futures::StreamExt;
use tokio::io::AsyncReadExt;
use tutti_proto::heartbeat::Heartbeat;
use tutti_proto::inventory::InventorySnapshot;
use tutti_proto::result::ResultStatus;
use tutti_proto::subjects::{self, RpcMethod};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_ping_and_inventory_answer() {
    let fleet = Fleet::start().await;
    let spec = fleet.enroll("host-1", &[]).await;
    let client = fleet.nats.client().await;
    let mut heartbeats = client
        .subscribe(subjects::agent_heartbeat(&spec.agent_id))
        .await
        .unwrap();
    let running = spec.start();

    let beat = tokio::time::timeout(common::WAIT, heartbeats.next())
        .await
        .expect("a heartbeat")
        .unwrap();
    let beat: Heartbeat = serde_json::from_slice(&beat.payload).unwrap();
    assert_eq!(beat.agent_id, spec.agent_id);
    assert!(beat.rss_bytes > 0, "{beat:?}");

    let ping = request(
        &client,
        subjects::agent_rpc(&spec.agent_id, RpcMethod::Ping),
    )
    .await;
    let ping: Heartbeat = serde_json::from_slice(&ping).unwrap();
    assert_eq!(ping.version, env!("CARGO_PKG_VERSION"));

    let inventory = request(
        &client,
        subjects::agent_rpc(&spec.agent_id, RpcMethod::Inventory),
    )
    .await;
    let inventory: InventorySnapshot = serde_json::from_slice(&inventory).unwrap();
    assert_eq!(inventory.agent_id, spec.agent_id);
    assert!(!inventory.facts.hostname.is_empty());

    let stored: Vec<InventorySnapshot> = fleet.read_inventory(1).await;
    running.stop().await;
    assert!(
        stored
            .iter()
            .all(|snapshot| snapshot.agent_id == spec.agent_id)
    );
}

async fn request(client: &async_nats::Client, subject: String) -> Vec<u8> {
    // The agent subscribes shortly after start; retry "no responders" within the bound.
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        match client.request(subject.clone(), "".into()).await {
            Ok(reply) => return reply.payload.to_vec(),
            Err(err) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(error = %err, "rpc not answered yet");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("rpc {subject} never answered: {err}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_output_is_capped_stored_and_does_not_block_others() {
    let fleet = Fleet::start().await;
    let noisy = fleet.enroll("noisy-1", &[]).await;
    let quiet = fleet.enroll("quiet-1", &[]).await;
    let noisy_running = noisy.start();
    let quiet_running = quiet.start();

    let (flood_run, flood) = fleet.command_with(
        agent("noisy-1"),
        "head -c 200000000 /dev/zero | tr '\\0' 'x'",
        |run| {
            run.output_limit_bytes = 2 << 20;
        },
    );
    fleet.publish(&flood).await;
    let (quiet_run, hello) = fleet.run_command(agent("quiet-1"), "echo hello");
    fleet.publish(&hello).await;
    let results = fleet.results(2).await;
    noisy_running.stop().await;
    quiet_running.stop().await;

    assert!(
        results
            .iter()
            .any(|r| r.run_id == quiet_run && r.status == ResultStatus::Succeeded)
    );
    let flood = results.iter().find(|r| r.run_id == flood_run).unwrap();
    assert_eq!(flood.status, ResultStatus::Succeeded);
    assert_eq!(flood.stdout.total_bytes, 200_000_000);
    let dropped = flood.stdout.truncated.expect("truncated").dropped_bytes;
    assert!(dropped >= 200_000_000 - (2 << 20), "{dropped}");
    assert!(flood.stdout.inline.len() < 300 * 1024, "inline stays small");
    let object = flood
        .stdout
        .object
        .as_ref()
        .expect("large output stored in the object store");
    let store = fleet
        .bus
        .jetstream()
        .get_object_store(&object.bucket)
        .await
        .unwrap();
    let mut stored = Vec::new();
    store
        .get(&object.name)
        .await
        .unwrap()
        .read_to_end(&mut stored)
        .await
        .unwrap();
    assert_eq!(stored.len() as u64, object.size);
    assert!(stored.starts_with(b"xxxx") && stored.ends_with(b"xxxx"));
    assert!(
        String::from_utf8_lossy(&stored).contains("bytes dropped"),
        "the marker is in the stored copy"
    );
}
