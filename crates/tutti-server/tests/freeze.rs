//! The fleet freeze through the API: an admin freezes and the value lands in `tutti_fleet`
//! for agents, a manual run during the freeze still runs on a real agent but is marked
//! `during_freeze`, a viewer may read the freeze but not change it, and unfreezing clears it.

mod common;

use common::*;
use serde_json::{Value, json};
use tutti_proto::catalog::FLEET_BUCKET;
use tutti_proto::fleet::FleetFreeze;
use tutti_proto::kv_keys;
use tutti_proto::role::Role;
use tutti_testkit::{TestAgent, TestNats, TestServer, client_with_token};

const FREEZE: &str = "/api/v1/fleet/freeze";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freeze_reaches_kv_marks_manual_runs_and_is_lifted_by_an_admin_only() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let _web = TestAgent::spawn(&server, "web-01").await;
    wait_online(&server, &["web-01"]).await;
    let viewer = client_for(&server, "vera", Role::Viewer).await;

    let state: Value = server.get(FREEZE).await;
    assert_eq!(
        (&state["frozen"], &state["in_force"]),
        (&json!(false), &json!(false))
    );

    // A viewer reads the freeze but may not set it.
    let (status, _) = send(&viewer, &server, "PUT", json!({"reason": "mine"})).await;
    assert_eq!(status, 403);
    let (status, read) = send(&viewer, &server, "GET", Value::Null).await;
    assert_eq!((status, read["frozen"].clone()), (200, json!(false)));

    // Bad requests name what is wrong and change nothing.
    let past = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60);
    for (body, says) in [
        (json!({"reason": "  "}), "reason"),
        (json!({"reason": "x".repeat(501)}), "at most 500"),
        (json!({"reason": "late", "until": past}), "until"),
        (json!({"until": past}), "reason"),
    ] {
        let (status, answer) = send(server.http(), &server, "PUT", body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer.to_string().contains(says), "{body}: {answer}");
    }
    assert!(
        read_kv(&nats, &server).await.is_none(),
        "a refused freeze wrote nothing"
    );

    let until = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2);
    let frozen: Value = server
        .put(FREEZE, &json!({"reason": "release window", "until": until}))
        .await;
    assert_eq!(frozen["in_force"], true, "{frozen}");
    assert_eq!(frozen["actor"], "admin/testkit");
    let stored = read_kv(&nats, &server)
        .await
        .expect("the freeze is in tutti_fleet");
    assert!(stored.frozen && stored.in_force(jiff::Timestamp::now()));
    assert_eq!(stored.until, Some(until));
    assert_eq!(stored.reason, "release window");

    // A manual run is allowed, runs on the agent, and is marked.
    let created: Value = server
        .post(
            "/api/v1/runs",
            &json!({"script": {"script": "echo during"}, "targets": {"all": true}}),
        )
        .await;
    assert_eq!(created["during_freeze"], true, "{created}");
    let run_id = created["run_id"].as_str().unwrap();
    let view = wait_run_done(&server, run_id).await;
    assert_eq!(view["run"]["during_freeze"], true, "{view:#}");
    assert_eq!(state_of(&view, "web-01"), "succeeded");
    let audit = server
        .wait_for(
            "/api/v1/audit?action=run.create",
            "the run.create record",
            |page| page["total"] == 1,
        )
        .await;
    assert_eq!(
        audit["items"][0]["record"]["summary"]["during_freeze"], true,
        "{audit:#}"
    );
    let audit = server
        .wait_for(
            "/api/v1/audit?action=fleet.freeze",
            "the fleet.freeze record",
            |page| page["total"] == 1,
        )
        .await;
    assert_eq!(
        audit["items"][0]["record"]["summary"]["reason"], "release window",
        "{audit:#}"
    );

    // The viewer may not lift it either; the admin does.
    let (status, _) = send(&viewer, &server, "DELETE", Value::Null).await;
    assert_eq!(status, 403);
    let (status, lifted) = send(server.http(), &server, "DELETE", Value::Null).await;
    assert_eq!(status, 200, "{lifted}");
    assert_eq!(
        (&lifted["frozen"], &lifted["in_force"]),
        (&json!(false), &json!(false))
    );
    let stored = read_kv(&nats, &server)
        .await
        .expect("lifting writes frozen: false");
    assert!(!stored.frozen);
    assert_eq!(stored.actor, "admin/testkit");
    server
        .wait_for(
            "/api/v1/audit?action=fleet.unfreeze",
            "the fleet.unfreeze record",
            |page| {
                page["total"] == 1
                    && page["items"][0]["record"]["summary"]["reason"] == "release window"
            },
        )
        .await;

    let after = create_run(
        &server,
        json!({"script": {"script": "echo after"}, "targets": {"all": true}}),
    )
    .await;
    let view = wait_run_done(&server, &after).await;
    assert_eq!(view["run"]["during_freeze"], false, "{view:#}");
}

/// An account with `role` and a client sending its API token.
async fn client_for(server: &TestServer, name: &str, role: Role) -> reqwest::Client {
    let _: Value = server
        .post(
            "/api/v1/accounts",
            &json!({"username": name, "role": role, "password": "correct horse battery staple"}),
        )
        .await;
    let account = server.app().store.get_account(name).await.unwrap();
    let issued =
        tutti_server::auth::signin::issue_api_token(server.app(), &account, "t", role, None)
            .await
            .unwrap();
    client_with_token(&issued.token)
}

/// Calls the freeze route with `client`; returns the status and the JSON answer.
async fn send(
    client: &reqwest::Client,
    server: &TestServer,
    method: &str,
    body: Value,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = client.request(method, format!("{}{FREEZE}", server.url()));
    if !body.is_null() {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

/// The freeze value agents read, straight from the bucket, signed with the server's key.
async fn read_kv(nats: &TestNats, server: &TestServer) -> Option<FleetFreeze> {
    let kv = nats
        .jetstream()
        .await
        .get_key_value(FLEET_BUCKET)
        .await
        .expect("the fleet bucket");
    let key = kv_keys::fleet_freeze();
    let bytes = kv.get(&key).await.expect("KV get")?;
    let server_key = server.app().keys.current().verifying();
    let signed = tutti_proto::signed_value::SignedValue::verify_as(&bytes, &key, &server_key);
    Some(signed.expect("a FleetFreeze signed by the server"))
}
