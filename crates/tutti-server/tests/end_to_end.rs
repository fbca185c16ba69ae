//! End to end: a real broker, the real server, real agents enrolled through the HTTP
//! endpoint (with plain tokens and one that assigns groups) and running real scripts. Each
//! test is one operator story.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tutti_proto::catalog::FLEET_BUCKET;
use tutti_proto::fleet::GroupMembership;
use tutti_proto::{AgentId, GroupName, kv_keys};
use tutti_testkit::{TestAgent, TestNats, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_run_on_all_on_a_group_and_on_one_agent() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let web = TestAgent::spawn(&server, "web-01").await;
    let db = TestAgent::spawn(&server, "db-01").await;
    wait_online(&server, &["web-01", "db-01"]).await;
    let _: serde_json::Value = server
        .put("/api/v1/agents/web-01/groups", &json!({"groups": ["web"]}))
        .await;

    // On all, watching progress live: each target goes (queued →) delivered → running →
    // succeeded. The stream starts from the state at subscription, which may already be
    // `delivered` or even `running`: the agent can pick the command up (and start it)
    // before the client connects on a loaded machine. It is never already final, since the
    // script runs for two seconds.
    let run_id = create_run(
        &server,
        json!({
            "script": {"shell": "sh", "script": "sleep 2; echo hello from $(hostname)"},
            "targets": {"all": true}
        }),
    )
    .await;
    let states = progress_states(&server, &run_id).await;
    for agent in ["web-01", "db-01"] {
        let seen = &states[agent];
        assert!(
            matches!(
                seen.first().map(String::as_str),
                Some("queued" | "delivered" | "running")
            ),
            "{agent}: {seen:?}"
        );
        let lifecycle = ["queued", "delivered", "running", "succeeded"];
        let positions: Vec<usize> = seen
            .iter()
            .map(|state| lifecycle.iter().position(|known| known == state).unwrap())
            .collect();
        assert!(
            positions.windows(2).all(|pair| pair[0] < pair[1]),
            "{agent}: {seen:?} is not in lifecycle order"
        );
        assert!(seen.contains(&"running".to_string()), "{agent}: {seen:?}");
        assert_eq!(
            seen.last().map(String::as_str),
            Some("succeeded"),
            "{agent}: {seen:?}"
        );
    }
    let results: serde_json::Value = server.get(&format!("/api/v1/runs/{run_id}/results")).await;
    assert_eq!(results["total"], 2);
    assert!(
        results["items"][0]["result"]["stdout"]["inline"]
            .as_str()
            .unwrap()
            .contains("hello")
    );

    // On a group: only its member is targeted, with one message on the group subject.
    let run_id = create_run(
        &server,
        json!({
            "script": {"script": "echo web"}, "targets": {"groups": ["web"]}
        }),
    )
    .await;
    let view = wait_run_done(&server, &run_id).await;
    assert_eq!(
        target_states(&view),
        [("web-01".to_string(), "succeeded".to_string())]
    );

    // On one agent, exiting 3: failed, with its exit code.
    let run_id = create_run(
        &server,
        json!({
            "script": {"script": "echo bad; exit 3"}, "targets": {"agents": ["db-01"]}
        }),
    )
    .await;
    let view = wait_run_done(&server, &run_id).await;
    let target = &view["targets"]["items"][0];
    assert_eq!(target["agent_id"], "db-01");
    assert_eq!(target["state"], "failed");
    assert_eq!(target["exit_code"], 3);
    let detail: serde_json::Value = server
        .get(&format!("/api/v1/runs/{run_id}/results/db-01"))
        .await;
    assert_eq!(detail["stdout_full"]["text"], "bad\n");

    // A stored job runs too, and every change above was audited.
    let (status, _) = server
        .post_text(
            "/api/v1/jobs",
            "application/yaml",
            "kind: Job\nname: uptime\nscript: uptime\n",
        )
        .await;
    assert_eq!(status, 200);
    let run_id = create_run(
        &server,
        json!({"job_id": "uptime", "targets": {"agents": ["web-01", "db-01"]}}),
    )
    .await;
    let view = wait_run_done(&server, &run_id).await;
    assert_eq!(view["count_by_state"]["succeeded"], 2, "{view:#}");
    server
        .wait_for(
            "/api/v1/audit?action=run.create",
            "the run audit records",
            |page| page["total"] == 4,
        )
        .await;
    drop((web, db));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_agent_stays_queued_and_catches_up_when_it_starts() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let _web = TestAgent::spawn(&server, "web-01").await;
    let mut laptop = TestAgent::enroll(&server, "laptop-1").await;
    wait_online(&server, &["web-01"]).await;

    let run_id = create_run(
        &server,
        json!({"script": {"script": "echo caught up"}, "targets": {"all": true}}),
    )
    .await;
    server
        .wait_for(
            &format!("/api/v1/runs/{run_id}"),
            "web-01 to finish",
            |view| state_of(view, "web-01") == "succeeded",
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let view: serde_json::Value = server.get(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(
        state_of(&view, "laptop-1"),
        "queued",
        "an offline target stays visible as queued"
    );
    assert_eq!(view["run"]["status"], "running");

    laptop.start();
    let view = wait_run_done(&server, &run_id).await;
    assert_eq!(state_of(&view, "laptop-1"), "succeeded");
    let detail: serde_json::Value = server
        .get(&format!("/api/v1/runs/{run_id}/results/laptop-1"))
        .await;
    assert_eq!(detail["stdout_full"]["text"], "caught up\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_stops_running_targets_and_skips_offline_ones() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let _web = TestAgent::spawn(&server, "web-01").await;
    let mut laptop = TestAgent::enroll(&server, "laptop-1").await;
    wait_online(&server, &["web-01"]).await;

    let run_id = create_run(
        &server,
        json!({"script": {"script": "sleep 60"}, "targets": {"all": true}}),
    )
    .await;
    server
        .wait_for(&format!("/api/v1/runs/{run_id}"), "web-01 to run", |view| {
            state_of(view, "web-01") == "running"
        })
        .await;
    let killed: serde_json::Value = server
        .post(&format!("/api/v1/runs/{run_id}/kill"), &json!(null))
        .await;
    assert_eq!(
        killed["n_skipped"], 1,
        "the offline target is skipped at once: {killed}"
    );

    let view = wait_run_done(&server, &run_id).await;
    assert_eq!(state_of(&view, "web-01"), "killed");
    assert_eq!(state_of(&view, "laptop-1"), "skipped");
    assert_eq!(view["run"]["status"], "killed");

    // The laptop wakes up later: it must not run the killed command.
    laptop.start();
    server
        .wait_for(
            "/api/v1/agents/laptop-1",
            "the laptop to report",
            |detail| detail["agent"]["liveness"] == "online",
        )
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let view: serde_json::Value = server.get(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(state_of(&view, "laptop-1"), "skipped");
    let results: serde_json::Value = server
        .get(&format!("/api/v1/runs/{run_id}/results?agent_id=laptop-1"))
        .await;
    for result in results["items"].as_array().unwrap() {
        assert_eq!(result["result"]["status"]["state"], "skipped", "{result}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_is_visible_and_package_changes_are_recorded() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let _web = TestAgent::spawn(&server, "web-01").await;
    let inventory = server
        .wait_for_ok(
            "/api/v1/agents/web-01/inventory",
            "the agent's first snapshot",
        )
        .await;
    assert!(
        inventory["inventory"]["facts"]["hostname"].is_string(),
        "{inventory:#}"
    );

    // The agent's real snapshot is the baseline; two crafted ones change a package.
    publish_inventory(&nats, "web-01", &[("curl", "8.5.0")]).await;
    publish_inventory(&nats, "web-01", &[("curl", "8.6.0")]).await;
    let changes = server
        .wait_for(
            "/api/v1/agents/web-01/inventory/changes?limit=500",
            "the curl upgrade",
            |page| {
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|change| change["kind"] == "changed" && change["new_value"] == "8.6.0")
            },
        )
        .await;
    let upgrade = changes["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["new_value"] == "8.6.0")
        .unwrap();
    assert_eq!(upgrade["old_value"], "8.5.0");
    let hits: serde_json::Value = server.get("/api/v1/inventory/packages?q=curl@8.6.0").await;
    assert_eq!(hits["total"], 1);
    assert_eq!(hits["items"][0]["agent_id"], "web-01");
    let detail: serde_json::Value = server.get("/api/v1/agents/web-01").await;
    assert_eq!(detail["inventory"]["n_packages"], 1);
}

/// A token that assigns groups: the agent enrolled with it is a member from its first
/// command on (store, `tutti_groups` and the enrollment response) and runs a command sent
/// to the group, while an agent enrolled with a plain token does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_with_groups_puts_the_enrolled_agent_in_them() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let created: serde_json::Value = server
        .post(
            "/api/v1/enrollment-tokens",
            &json!({"name": "web tier", "uses": 2, "groups": ["web", "web"]}),
        )
        .await;
    assert_eq!(created["groups"], json!(["web"]), "duplicates are dropped");
    let token = created["token"].as_str().unwrap();
    let mut web = TestAgent::enroll_with_token(&server, "web-01", token).await;
    let web_group = GroupName::parse("web").unwrap();
    assert_eq!(
        web.identity().initial_groups,
        std::slice::from_ref(&web_group)
    );
    web.start();
    let _db = TestAgent::spawn(&server, "db-01").await;
    wait_online(&server, &["web-01", "db-01"]).await;

    let detail: serde_json::Value = server.get("/api/v1/agents/web-01").await;
    assert_eq!(detail["agent"]["groups"], json!(["web"]));
    let membership = read_groups_entry(&nats, &server, web.agent_id()).await;
    assert_eq!(membership.groups, [web_group]);
    let tokens: serde_json::Value = server.get("/api/v1/enrollment-tokens").await;
    let listed = tokens["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|listed| listed["token_id"] == created["token_id"])
        .unwrap();
    assert_eq!(listed["groups"], json!(["web"]));

    let run_id = create_run(
        &server,
        json!({"script": {"script": "echo in web"}, "targets": {"groups": ["web"]}}),
    )
    .await;
    let view = wait_run_done(&server, &run_id).await;
    assert_eq!(
        target_states(&view),
        [("web-01".to_string(), "succeeded".to_string())]
    );
    let detail: serde_json::Value = server
        .get(&format!("/api/v1/runs/{run_id}/results/web-01"))
        .await;
    assert_eq!(detail["stdout_full"]["text"], "in web\n");
}

/// The membership agents read, straight from the bucket, signed with the server's key.
async fn read_groups_entry(
    nats: &TestNats,
    server: &TestServer,
    agent_id: &AgentId,
) -> GroupMembership {
    let js = nats.jetstream().await;
    let bucket = js.get_key_value(FLEET_BUCKET).await.unwrap();
    let key = kv_keys::groups_agent(agent_id);
    let value = bucket
        .get(&key)
        .await
        .unwrap()
        .expect("the agent's groups entry");
    let server_key = server.app().keys.current().verifying();
    tutti_proto::signed_value::SignedValue::verify_as(&value, &key, &server_key).unwrap()
}
