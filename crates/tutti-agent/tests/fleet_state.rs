//! Fleet state from KV: joining a group mid-stream misses nothing and duplicates nothing,
//! revoked jobs are skipped, a fleet freeze holds scheduled commands until its `until`,
//! layered configuration applies live, an agent booting with the broker down follows
//! its last known configuration, and all of it arrives through one broker consumer. Only
//! values signed by the server's key for their own KV key apply: an unsigned membership
//! that would widen an agent's groups is ignored and reported.

mod common;

use std::time::Duration;

use common::{Fleet, all, group};
use tokio::sync::watch;
use tutti_agent::fleet::FleetView;
use tutti_proto::catalog::FLEET_BUCKET;
use tutti_proto::config::AgentConfig;
use tutti_proto::event::EventKind;
use tutti_proto::fleet::{FleetFreeze, GroupMembership, Revocation};
use tutti_proto::result::{ResultStatus, SkipReason};
use tutti_proto::signed_value::SignedValue;
use tutti_proto::{AgentId, GroupName, kv_keys};

/// Writes `value` as the server does: signed with its key for `key`.
async fn put_json<T: serde::Serialize>(fleet: &Fleet, bucket: &str, key: &str, value: &T) {
    let signed = SignedValue::sign(key, value, &fleet.key).unwrap();
    put_raw(fleet, bucket, key, signed.to_bytes()).await;
}

async fn put_raw(fleet: &Fleet, bucket: &str, key: &str, bytes: Vec<u8>) {
    let kv = fleet.bus.jetstream().get_key_value(bucket).await.unwrap();
    kv.put(key, bytes.into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_a_group_mid_stream_misses_and_duplicates_nothing() {
    let fleet = Fleet::start().await;
    let spec = fleet.enroll("app-1", &[]).await;
    let running = spec.start();
    let mut expected = Vec::new();
    for n in 0..3 {
        let (run_id, command) = fleet.run_command(all(), &format!("echo before-{n}"));
        fleet.publish(&command).await;
        expected.push(run_id);
    }
    fleet.results(3).await;

    let membership = GroupMembership {
        groups: vec![GroupName::parse("web").unwrap()],
    };
    put_json(
        &fleet,
        FLEET_BUCKET,
        &kv_keys::groups_agent(&spec.agent_id),
        &membership,
    )
    .await;
    // Published right after the change: the old consumer may still be running and move the
    // cursor past the group command with the `all` commands behind it.
    for n in 0..3 {
        let (web_run, web) = fleet.run_command(group("web"), &format!("echo web-{n}"));
        fleet.publish(&web).await;
        let (all_run, to_all) = fleet.run_command(all(), &format!("echo all-{n}"));
        fleet.publish(&to_all).await;
        expected.extend([web_run, all_run]);
    }
    let results = fleet.results(9).await;
    // A barrier proves nothing more is coming.
    let (barrier, command) = fleet.run_command(all(), "echo barrier");
    fleet.publish(&command).await;
    let results_after = fleet.results(10).await;
    running.stop().await;

    assert_eq!(
        results_after.len(),
        10,
        "exactly once each: {results_after:#?}"
    );
    expected.push(barrier);
    let mut got: Vec<_> = results_after.iter().map(|r| r.run_id).collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    assert!(results.iter().all(|r| r.status == ResultStatus::Succeeded));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_revoked_while_the_agent_was_off_is_skipped() {
    let fleet = Fleet::start().await;
    let spec = fleet.enroll("db-1", &[]).await;
    let (run_id, command) = fleet.run_command(all(), "echo must-not-run");
    fleet.publish(&command).await;
    let revocation = Revocation {
        at: jiff::Timestamp::now(),
        actor: "ops".into(),
        reason: "bad patch".into(),
    };
    let job_id = tutti_proto::JobId::parse("test-job").unwrap();
    put_json(
        &fleet,
        FLEET_BUCKET,
        &kv_keys::revocation_job(&job_id),
        &revocation,
    )
    .await;

    let running = spec.start();
    let results = fleet.results(1).await;
    running.stop().await;
    assert_eq!(results[0].run_id, run_id);
    assert_eq!(
        results[0].status,
        ResultStatus::Skipped {
            reason: SkipReason::Revoked
        }
    );
}

/// The freeze is written once, with an `until` a few seconds ahead, and never lifted: the
/// agent must end it by its own clock. Commands queued before the agent starts are gated
/// right after its first sync, well inside the freeze.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freeze_skips_scheduled_commands_until_its_until() {
    let fleet = Fleet::start().await;
    let spec = fleet.enroll("batch-1", &[]).await;
    let until = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(6);
    let freeze = FleetFreeze {
        frozen: true,
        until: Some(until),
        at: jiff::Timestamp::now(),
        actor: "ops".into(),
        reason: "release window".into(),
    };
    put_json(&fleet, FLEET_BUCKET, &kv_keys::fleet_freeze(), &freeze).await;
    let scheduled = |run: &mut tutti_proto::command::RunCommand| run.scheduled = true;
    let (held, command) = fleet.command_with(all(), "echo held", scheduled);
    fleet.publish(&command).await;
    let (manual, command) = fleet.run_command(all(), "echo manual");
    fleet.publish(&command).await;

    let running = spec.start();
    let results = fleet.results(2).await;
    let status_of = |results: &[tutti_proto::result::RunResult], run_id| {
        let result = results.iter().find(|r| r.run_id == run_id).expect("result");
        (result.status.clone(), result.finished_at)
    };
    let (status, gated_at) = status_of(&results, held);
    assert!(
        gated_at < until,
        "the agent gated the command only at {gated_at}, after the freeze ended ({until}); too slow a machine for this test"
    );
    assert_eq!(
        status,
        ResultStatus::Skipped {
            reason: SkipReason::Frozen
        }
    );
    assert_eq!(
        status_of(&results, manual).0,
        ResultStatus::Succeeded,
        "manual runs pass a freeze"
    );

    // Waiting for the clock is the scenario here: nothing is written when `until` passes.
    let remaining = until.duration_since(jiff::Timestamp::now());
    if let Ok(remaining) = Duration::try_from(remaining) {
        tokio::time::sleep(remaining + Duration::from_millis(200)).await;
    }
    let (after, command) = fleet.command_with(all(), "echo after", scheduled);
    fleet.publish(&command).await;
    let results = fleet.results(3).await;
    running.stop().await;
    assert_eq!(status_of(&results, after).0, ResultStatus::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layered_concurrency_applies_live() {
    let fleet = Fleet::start().await;
    let spec = fleet.enroll("ci-1", &[]).await;
    let running = spec.start();
    let one_at_a_time = AgentConfig {
        concurrency: Some(1),
        ..AgentConfig::default()
    };
    put_json(
        &fleet,
        FLEET_BUCKET,
        &kv_keys::config_agent(&spec.agent_id),
        &one_at_a_time,
    )
    .await;
    // The warm-up result proves the agent is running; the config is read before the next
    // dispatch because replicas update the view as soon as the entry arrives.
    let (_, warmup) = fleet.run_command(all(), "echo warm");
    fleet.publish(&warmup).await;
    fleet.results(1).await;
    wait_for_config(&spec.agent_id, &fleet, 1).await;

    let mut runs = Vec::new();
    for _ in 0..3 {
        let (run_id, command) = fleet.run_command(all(), "sleep 0.3");
        fleet.publish(&command).await;
        runs.push(run_id);
    }
    let results = fleet.results(4).await;
    running.stop().await;
    let mut spans: Vec<_> = results
        .iter()
        .filter(|r| runs.contains(&r.run_id))
        .map(|r| (r.started_at.unwrap(), r.finished_at))
        .collect();
    spans.sort();
    for pair in spans.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "executions overlapped with concurrency 1: {spans:?}"
        );
    }
}

/// Waits until a fleet-state view built like the agent's sees `concurrency` (the agent under
/// test reads the same bucket through the same code).
async fn wait_for_config(agent_id: &AgentId, fleet: &Fleet, concurrency: u32) {
    let dir = tempfile::tempdir().unwrap();
    let mut following = Following::start(fleet, agent_id, dir.path());
    following
        .wait_for(|view| view.config.concurrency == concurrency)
        .await;
    following.stop().await;
}

/// Everything an agent follows lives in one bucket and reaches it through one ordered
/// consumer: that is what lets one broker hold ten thousand agents (`BENCHMARKS.md`).
/// Another agent's membership and layer are in the same bucket and must not apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_consumer_carries_all_fleet_state_and_only_this_agents_keys_apply() {
    let fleet = Fleet::start().await;
    let me = AgentId::parse("web-07").unwrap();
    let other = AgentId::parse("db-01").unwrap();
    let web = GroupName::parse("web").unwrap();
    let layer = |concurrency| AgentConfig {
        concurrency: Some(concurrency),
        ..AgentConfig::default()
    };
    let put = |key: String, value: serde_json::Value| {
        let fleet = &fleet;
        async move { put_json(fleet, FLEET_BUCKET, &key, &value).await }
    };
    put(kv_keys::config_global(), json(&layer(2))).await;
    put(kv_keys::config_group(&web), json(&layer(3))).await;
    put(kv_keys::config_agent(&other), json(&layer(9))).await;
    put(
        kv_keys::groups_agent(&other),
        json(&GroupMembership {
            groups: vec![GroupName::parse("db").unwrap()],
        }),
    )
    .await;
    put(
        kv_keys::groups_agent(&me),
        json(&GroupMembership {
            groups: vec![web.clone()],
        }),
    )
    .await;
    let job_id = tutti_proto::JobId::parse("bad-patch").unwrap();
    let revocation = Revocation {
        at: jiff::Timestamp::now(),
        actor: "ops".into(),
        reason: "bad patch".into(),
    };
    put(kv_keys::revocation_job(&job_id), json(&revocation)).await;
    let dir = tempfile::tempdir().unwrap();
    // A replica file of the four-bucket layout is removed at start.
    let legacy = dir.path().join("tutti_groups.redb");
    std::fs::write(&legacy, b"old").unwrap();

    let mut following = Following::start(&fleet, &me, dir.path());
    let view = following.wait_for(|view| view.synced).await;
    assert_eq!(view.groups, vec![web.clone()]);
    assert_eq!(view.config.concurrency, 3, "the web layer, not db-01's");
    assert!(view.revoked_jobs.contains(&job_id));
    assert!(!legacy.exists(), "the old replica file is gone");
    assert_eq!(fleet_consumers(&fleet).await, 1);

    // Live: this agent's own layer applies, another agent's new layer does not.
    put(kv_keys::config_agent(&other), json(&layer(1))).await;
    put(kv_keys::config_agent(&me), json(&layer(5))).await;
    let view = following
        .wait_for(|view| view.config.concurrency == 5)
        .await;
    assert_eq!(view.groups, vec![web]);
    assert_eq!(fleet_consumers(&fleet).await, 1);
    following.stop().await;
}

fn json(value: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap()
}

async fn fleet_consumers(fleet: &Fleet) -> usize {
    let mut stream = fleet
        .bus
        .jetstream()
        .get_stream(format!("KV_{FLEET_BUCKET}"))
        .await
        .unwrap();
    stream.info().await.unwrap().state.consumer_count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_booting_with_the_broker_down_follows_its_last_known_config() {
    let mut fleet = Fleet::start().await;
    let agent_id = AgentId::parse("laptop-9").unwrap();
    let layer = AgentConfig {
        concurrency: Some(2),
        heartbeat_interval_secs: Some(7),
        ..AgentConfig::default()
    };
    put_json(&fleet, FLEET_BUCKET, &kv_keys::config_global(), &layer).await;
    let membership = GroupMembership {
        groups: vec![GroupName::parse("laptops").unwrap()],
    };
    put_json(
        &fleet,
        FLEET_BUCKET,
        &kv_keys::groups_agent(&agent_id),
        &membership,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();

    let view = sync_view(&fleet, &agent_id, dir.path(), |view| view.synced).await;
    assert_eq!(view.config.concurrency, 2);
    fleet.nats.stop();

    // Broker down: the view comes from the local replicas, marked not synced.
    let view = sync_view(&fleet, &agent_id, dir.path(), |view| {
        view.config.concurrency == 2
    })
    .await;
    assert_eq!(view.config.heartbeat_interval_secs, 7);
    assert_eq!(view.groups, vec![GroupName::parse("laptops").unwrap()]);
    assert!(!view.synced);
}

async fn sync_view(
    fleet: &Fleet,
    agent_id: &AgentId,
    dir: &std::path::Path,
    until: impl FnMut(&FleetView) -> bool,
) -> FleetView {
    let mut following = Following::start(fleet, agent_id, dir);
    let view = following.wait_for(until).await;
    following.stop().await;
    view
}

/// `fleet_sync::run` on a task, as the agent runs it.
struct Following {
    view_rx: watch::Receiver<FleetView>,
    stop_tx: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Following {
    fn start(fleet: &Fleet, agent_id: &AgentId, dir: &std::path::Path) -> Following {
        let (view_tx, view_rx) = watch::channel(FleetView::initial(Vec::new()));
        let (stop_tx, stop_rx) = watch::channel(false);
        let state = tutti_agent::state::AgentState::open(&dir.join("state.redb")).unwrap();
        let context = tutti_agent::fleet_sync::FleetSyncContext {
            agent_id: agent_id.clone(),
            fallback_groups: Vec::new(),
            dir: dir.to_path_buf(),
            trust: std::sync::Arc::new(tutti_agent::trust::TrustStore::open(
                dir,
                fleet.key.verifying_key(),
            )),
            state: tutti_agent::state::StateHandle::new(state),
            outbox: std::sync::Arc::new(tokio::sync::Notify::new()),
        };
        let task = tokio::spawn(tutti_agent::fleet_sync::run(
            fleet.bus.clone(),
            context,
            view_tx,
            stop_rx,
        ));
        Following {
            view_rx,
            stop_tx,
            task,
        }
    }

    async fn wait_for(&mut self, until: impl FnMut(&FleetView) -> bool) -> FleetView {
        tokio::time::timeout(Duration::from_secs(20), self.view_rx.wait_for(until))
            .await
            .expect("view in time")
            .expect("view channel")
            .clone()
    }

    async fn stop(self) {
        let _ = self.stop_tx.send(true);
        let _ = self.task.await;
    }
}

/// Fleet state decides which signed commands run: a membership written by anyone but the
/// server (unsigned, or a signed value copied from another agent's key) must not widen
/// this agent's groups. It is ignored, the agent keeps its signed groups, and the refusal
/// is reported as an event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_or_copied_fleet_values_are_ignored_and_reported() {
    let fleet = Fleet::start().await;
    let spec = fleet.enroll("kiosk-1", &[]).await;
    let running = spec.start();
    let kiosk = AgentId::parse("kiosk-1").unwrap();
    let web = GroupName::parse("web").unwrap();
    let widened = GroupMembership {
        groups: vec![web.clone()],
    };
    put_raw(
        &fleet,
        FLEET_BUCKET,
        &kv_keys::groups_agent(&kiosk),
        serde_json::to_vec(&widened).unwrap(),
    )
    .await;
    // A value the server really signed, for another agent's key.
    let other = SignedValue::sign("groups.web-01", &widened, &fleet.key).unwrap();
    put_raw(
        &fleet,
        FLEET_BUCKET,
        &kv_keys::config_global(),
        other.to_bytes(),
    )
    .await;

    let events = fleet.events(2).await;
    let refused: Vec<(&str, &str)> = events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::FleetValueRefused { key, reason } => Some((key.as_str(), reason.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(refused.len(), 2, "{events:?}");
    assert!(
        refused.contains(&("groups.kiosk-1", "not a signed value")),
        "{refused:?}"
    );
    assert!(
        refused.contains(&(
            "config.global",
            "the signature does not verify for this key"
        )),
        "{refused:?}"
    );

    // A command to group web is not for this agent; the ones to all still run.
    let (web_run, to_web) = fleet.run_command(group("web"), "echo web");
    fleet.publish(&to_web).await;
    for text in ["all", "barrier"] {
        let (_, to_all) = fleet.run_command(all(), &format!("echo {text}"));
        fleet.publish(&to_all).await;
    }
    let results = fleet.results(2).await;
    assert!(
        results.iter().all(|result| result.run_id != web_run),
        "{results:?}"
    );
    running.stop().await;
}
