//! Execution through the whole agent: scripts from the object store pinned by sha256, a
//! timeout that kills a grandchild holding stdout, live output, replays that never run twice,
//! and an agent that boots with the broker down.

mod common;

use common::{Fleet, agent, all};
use futures::StreamExt;
use tutti_proto::command::Script;
use tutti_proto::result::ResultStatus;
use tutti_proto::sign::SignedCommand;
use tutti_proto::{digest, subjects};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_from_the_object_store_run_only_when_their_hash_matches() {
    let fleet = Fleet::start().await;
    let spec = fleet.enroll("fetch-1", &[]).await;
    let store = fleet
        .bus
        .jetstream()
        .get_object_store(tutti_proto::catalog::SCRIPTS_STORE)
        .await
        .unwrap();
    let body = b"echo from-the-store\n";
    store.put("patch.sh", &mut &body[..]).await.unwrap();
    let running = spec.start();

    let (good_run, good) = fleet.command_with(all(), "", |run| {
        run.script = Script::Object {
            name: "patch.sh".into(),
            size: body.len() as u64,
        };
        run.sha256 = digest::sha256_hex(body);
    });
    fleet.publish(&good).await;
    let (bad_run, bad) = fleet.command_with(all(), "", |run| {
        run.script = Script::Object {
            name: "patch.sh".into(),
            size: body.len() as u64,
        };
        run.sha256 = digest::sha256_hex(b"something else");
    });
    fleet.publish(&bad).await;
    let results = fleet.results(2).await;
    running.stop().await;

    let good = results.iter().find(|r| r.run_id == good_run).unwrap();
    assert_eq!(good.status, ResultStatus::Succeeded);
    assert_eq!(good.stdout.inline, "from-the-store\n");
    let bad = results.iter().find(|r| r.run_id == bad_run).unwrap();
    assert_eq!(bad.status, ResultStatus::Failed);
    assert!(
        bad.stderr.inline.contains("sha256 mismatch"),
        "{:?}",
        bad.stderr.inline
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_kills_the_whole_group_even_when_a_grandchild_holds_stdout() {
    let fleet = Fleet::start().await;
    let spec = fleet.enroll("slow-1", &[]).await;
    let running = spec.start();
    let (run_id, command) =
        fleet.command_with(all(), "(sleep 600) & echo started; sleep 600", |run| {
            run.timeout_secs = 1;
        });
    fleet.publish(&command).await;
    let results = fleet.results(1).await;
    running.stop().await;
    assert_eq!(results[0].run_id, run_id);
    assert_eq!(results[0].status, ResultStatus::TimedOut);
    assert_eq!(results[0].stdout.inline, "started\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_output_streams_while_the_script_runs() {
    let fleet = Fleet::start().await;
    let spec = fleet.enroll("live-1", &[]).await;
    let running = spec.start();
    let client = fleet.nats.client().await;
    let go = spec.state_dir().join("go");
    let script = format!(
        "echo first; while [ ! -f {} ]; do sleep 0.05; done; echo second",
        go.display()
    );
    let (run_id, command) = fleet.run_command(agent("live-1"), &script);
    let mut live = client
        .subscribe(subjects::run_output(&run_id))
        .await
        .unwrap();
    client.flush().await.unwrap();
    fleet.publish(&command).await;
    // The first line arrives while the script is still waiting: live, not after the fact.
    let chunk = tokio::time::timeout(common::WAIT, live.next())
        .await
        .expect("live output")
        .unwrap();
    assert_eq!(&chunk.payload[..], b"first\n");
    std::fs::write(&go, b"").unwrap();
    let results = fleet.results(1).await;
    running.stop().await;
    assert_eq!(results[0].stdout.inline, "first\nsecond\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_command_never_runs_twice() {
    let fleet = Fleet::start().await;
    let spec = fleet.enroll("replay-1", &[]).await;
    let running = spec.start();
    let (run_id, command) = fleet.run_command(all(), "echo once");
    let signed = SignedCommand::sign(&command, &fleet.key).to_bytes();
    fleet.publish_raw(&all(), "first", signed.clone()).await;
    // The same signed bytes again, past the broker's de-duplication (another message id).
    fleet.publish_raw(&all(), "second", signed).await;
    let (barrier, command) = fleet.run_command(all(), "echo barrier");
    fleet.publish(&command).await;
    let results = fleet.results(2).await;
    running.stop().await;
    assert_eq!(results.len(), 2, "{results:#?}");
    assert_eq!(results[0].run_id, run_id);
    assert_eq!(results[1].run_id, barrier);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_booting_with_the_broker_down_works_once_it_is_back() {
    let mut fleet = Fleet::start().await;
    let spec = fleet.enroll("early-1", &[]).await;
    fleet.nats.stop();
    let running = spec.start();
    fleet.nats.start_again();
    let (run_id, command) = fleet.run_command(all(), "echo late-broker");
    fleet.publish(&command).await;
    let results = fleet.results(1).await;
    running.stop().await;
    assert_eq!(results[0].run_id, run_id);
    assert_eq!(results[0].status, ResultStatus::Succeeded);
}
