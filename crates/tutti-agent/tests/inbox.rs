//! An agent's replies (JetStream API answers, publish acks, pulled commands) come to
//! `_INBOX.<id>.…`, never to the library's shared `_INBOX.…` prefix, so the broker can let
//! each agent subscribe to its own replies only (`docs/protocol.md`, agent permissions).

mod common;

use std::time::Duration;

use common::{Fleet, all};
use futures::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_replies_use_its_own_inbox_prefix() {
    let fleet = Fleet::start().await;
    let watcher = fleet.nats.client().await;
    let mut inboxes = watcher.subscribe("_INBOX.>").await.unwrap();
    watcher.flush().await.unwrap();
    let spec = fleet.enroll("inbox-1", &[]).await;
    let running = spec.start();
    let (_, command) = fleet.run_command(all(), "echo pulled");
    fleet.publish(&command).await;
    fleet.results(1).await;

    // The pulled command and the acks of the agent's publishes all went to its prefix.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut seen = 0;
    while seen < 3 {
        let message = tokio::time::timeout_at(deadline, inboxes.next())
            .await
            .expect("the agent's replies in time")
            .expect("subscription open");
        if message.subject.as_str().starts_with("_INBOX.inbox-1.") {
            seen += 1;
        }
    }
    running.stop().await;
}
