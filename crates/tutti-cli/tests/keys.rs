//! `tutti keys rotate` and `tutti keys status` end to end: a real broker, the server and
//! two real agents, one of which is stopped through the whole introduction of the next key
//! and must catch up through the key ring when it comes back.

mod common;

use common::*;
use serde_json::{Value, json};
use tempfile::TempDir;
use tutti_testkit::{TestAgent, TestNats, TestServer};

/// Writes a fleet freeze into `fleet`, signed with the retired key `key_id` read from the
/// file the server keeps beside its signing key.
async fn put_freeze_signed_by_retired_key(
    server: &TestServer,
    fleet: &async_nats::jetstream::kv::Store,
    key_id: &str,
) {
    let path = server
        .data_dir()
        .join(format!("signing.key.{key_id}.retired"));
    let text = std::fs::read_to_string(&path).unwrap();
    let seed: [u8; 32] = data_encoding::HEXLOWER
        .decode(text.trim().as_bytes())
        .unwrap()
        .try_into()
        .unwrap();
    let old_key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let freeze = tutti_proto::fleet::FleetFreeze {
        frozen: false,
        until: None,
        at: jiff::Timestamp::now(),
        actor: "test".into(),
        reason: "signed by the old key".into(),
    };
    let key = tutti_proto::kv_keys::fleet_freeze();
    let signed = tutti_proto::signed_value::SignedValue::sign(&key, &freeze, &old_key).unwrap();
    fleet.put(key, signed.to_bytes().into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_reaches_online_and_sleeping_agents_and_commands_keep_running() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let _: Value = server
        .put(
            "/api/v1/config/global",
            &json!({"heartbeat_interval_secs": 1}),
        )
        .await;
    let _web = TestAgent::spawn(&server, "web-01").await;
    let mut sleeper = TestAgent::spawn(&server, "db-01").await;
    wait_online(&server, &["web-01", "db-01"]).await;
    let home = TempDir::new().unwrap();
    let cli = async |args: &[&str]| tutti(home.path(), Some(&server), args).await;

    let before = parse(&expect_code(&cli(&["keys", "status", "--json"]).await, 0));
    let first = before["current"].as_str().unwrap().to_string();
    assert!(before["next"].is_null(), "{before:#}");
    sleeper.stop().await;

    let bad = cli(&["keys", "rotate", "--overlap", "soon"]).await;
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--overlap"), "{stderr}");

    let rotated = parse(&expect_code(
        &cli(&["keys", "rotate", "--overlap", "5s", "--json"]).await,
        0,
    ));
    let next = rotated["next"]["key_id"].as_str().unwrap().to_string();
    assert_ne!(next, first);
    let again = cli(&["keys", "rotate"]).await;
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("already the next key"), "{stderr}");

    // The online agent learns the next key from the ring and reports it.
    server
        .wait_for("/api/v1/keys", "web-01 to trust the next key", |keys| {
            keys["next_trusted_by"] == 1
        })
        .await;
    let table = expect_code(&cli(&["keys", "status"]).await, 0);
    assert!(
        table.contains(&next) && table.contains("1 of 2 agents trust the next key"),
        "{table}"
    );

    // A value nobody signed, written where agents look, must not become signed by the
    // switch's re-signing.
    let fleet = server
        .app()
        .bus
        .jetstream()
        .get_key_value(tutti_proto::catalog::FLEET_BUCKET)
        .await
        .unwrap();
    fleet
        .put("groups.ghost-01", br#"{"groups":["web"]}"#.to_vec().into())
        .await
        .unwrap();

    // The switch: the next key signs from now on, the first stays trusted a while.
    let switched = server
        .wait_for("/api/v1/keys", "the next key to take over", |keys| {
            keys["current"] == next.as_str()
        })
        .await;
    assert_eq!(
        switched["retiring"][0]["key_id"],
        first.as_str(),
        "{switched:#}"
    );
    // Every fleet value was signed again with the new key (the switch is audited after
    // that), the value itself and not its old envelope: the global layer reads back as it
    // was written.
    server
        .wait_for("/api/v1/audit?action=keys.activate", "the switch", |page| {
            page["total"].as_u64() > Some(0)
        })
        .await;
    let global: Value = server.get("/api/v1/config/global").await;
    assert_eq!(global, json!({"heartbeat_interval_secs": 1}));
    let ghost = fleet.get("groups.ghost-01").await.unwrap().unwrap();
    assert_eq!(
        &ghost[..],
        br#"{"groups":["web"]}"#,
        "an unsigned value was signed"
    );
    // Right after a switch the bucket is re-signed; a value still signed by the retiring
    // key (written here with it, as if the re-signing had not reached it yet) is read, not
    // an internal error.
    put_freeze_signed_by_retired_key(&server, &fleet, &first).await;
    let (status, freeze) = server.try_get("/api/v1/fleet/freeze").await;
    assert_eq!(
        (status, &freeze["reason"]),
        (200, &json!("signed by the old key")),
        "{freeze}"
    );
    let report = parse(&expect_code(
        &cli(&[
            "run", "--agent", "web-01", "--wait", "--json", "--", "echo", "rotated",
        ])
        .await,
        0,
    ));
    assert_eq!(
        report["run"]["targets"]["items"][0]["state"], "succeeded",
        "{report:#}"
    );

    // A command for the sleeping agent is signed by the new key and waits in the stream;
    // the agent never saw the next key introduced, learns it from the ring at start and
    // runs the command instead of refusing it.
    let queued = parse(&expect_code(
        &cli(&[
            "run",
            "--agent",
            "db-01",
            "--json",
            "--",
            "echo",
            "caught-up",
        ])
        .await,
        0,
    ));
    let run_id = queued["run"]["run_id"]
        .as_str()
        .or_else(|| queued["run_id"].as_str())
        .unwrap_or_else(|| panic!("no run id in {queued:#}"))
        .to_string();
    sleeper.start();
    let done = server
        .wait_for(&format!("/api/v1/runs/{run_id}"), "db-01's run", |run| {
            run["targets"]["items"][0]["state"] != "queued"
                && run["targets"]["items"][0]["state"] != "delivered"
                && run["targets"]["items"][0]["state"] != "running"
        })
        .await;
    assert_eq!(
        done["targets"]["items"][0]["state"], "succeeded",
        "{done:#}"
    );
    let trusted = std::fs::read_to_string(sleeper.state_dir().join("trusted-keys.json")).unwrap();
    assert!(trusted.contains(&next), "{trusted}");

    // After the second overlap the first key leaves the ring and the agents' trust.
    server
        .wait_for("/api/v1/keys", "the first key to expire", |keys| {
            keys["retiring"].as_array().is_some_and(Vec::is_empty)
        })
        .await;
    server
        .wait_for(
            "/api/v1/agents/web-01",
            "web-01 to drop the first key",
            |_| {
                std::fs::read_to_string(_web.state_dir().join("trusted-keys.json"))
                    .is_ok_and(|text| !text.contains(&first) && text.contains(&next))
            },
        )
        .await;

    // Each step is in the audit log (projected from the audit stream, hence the wait).
    for action in ["keys.rotate", "keys.activate", "keys.expire"] {
        server
            .wait_for(&format!("/api/v1/audit?action={action}"), action, |page| {
                page["total"].as_u64() > Some(0)
            })
            .await;
    }
}
