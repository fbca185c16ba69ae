//! Schedule coverage against a real SQLite file: per agent the latest target, the last
//! success and the failed attempts since it, only for the schedule's runs of the job at
//! the asked version, and with `since` only recent runs plus open targets of any age.

mod common;

use common::*;
use tutti_proto::result::ResultStatus;
use tutti_store::*;

const SCHEDULE: &str = "laptops-patch";

/// A run of `patch` at `version` created by `schedule` at `t(created)`.
fn scheduled(n: u64, schedule: Option<&str>, version: u32, created: i64) -> NewRun {
    NewRun {
        job_version: version,
        scheduled: schedule.is_some(),
        schedule_name: schedule.map(str::to_string),
        ..new_run(run_id(n), "patch", created)
    }
}

async fn report(store: &Store, stream_seq: u64, n: u64, agent: &str, status: ResultStatus) {
    let exit_code = (status == ResultStatus::Failed).then_some(1);
    store
        .apply_results(vec![seq(
            stream_seq,
            result(run_id(n), agent, status, exit_code),
        )])
        .await
        .expect("apply result");
}

fn query(version: Option<u32>, since: Option<i64>) -> CoverageQuery {
    CoverageQuery {
        schedule_name: SCHEDULE.to_string(),
        job_id: job_id("patch"),
        job_version: version,
        since: since.map(t),
    }
}

async fn coverage(store: &Store, query: CoverageQuery) -> Vec<AgentCoverage> {
    store.schedule_coverage(&query).await.expect("coverage")
}

fn of<'a>(coverage: &'a [AgentCoverage], name: &str) -> &'a AgentCoverage {
    coverage
        .iter()
        .find(|agent| agent.agent_id.as_str() == name)
        .unwrap_or_else(|| panic!("{name} in {coverage:#?}"))
}

#[tokio::test]
async fn coverage_counts_failed_attempts_since_the_last_success_per_version() {
    let db = TestDb::open().await;
    let store = &db.store;
    put_job(store, "patch", "echo 1").await;
    assert_eq!(put_job(store, "patch", "echo 2").await, 2);

    // Run 1 (v1): a succeeds, b fails, c stays queued (offline).
    start_run_with(
        store,
        scheduled(1, Some(SCHEDULE), 1, 0),
        &["a", "b", "c"],
        1,
    )
    .await;
    report(store, 1, 1, "a", ResultStatus::Succeeded).await;
    report(store, 2, 1, "b", ResultStatus::Failed).await;
    // Run 2 (v1): b times out; its deadline is irrelevant once it reported.
    start_run_with(store, scheduled(2, Some(SCHEDULE), 1, 100), &["b"], 2).await;
    report(store, 3, 2, "b", ResultStatus::TimedOut).await;
    // Neither a manual run, another schedule's run nor a v2 run counts for v1.
    start_run_with(store, scheduled(3, None, 1, 150), &["b"], 3).await;
    report(store, 4, 3, "b", ResultStatus::Succeeded).await;
    start_run_with(store, scheduled(4, Some("other"), 1, 150), &["b"], 4).await;
    report(store, 5, 4, "b", ResultStatus::Succeeded).await;
    start_run_with(store, scheduled(5, Some(SCHEDULE), 2, 160), &["a"], 5).await;

    let v1 = coverage(store, query(Some(1), None)).await;
    assert_eq!(v1.len(), 3, "{v1:#?}");
    let a = of(&v1, "a");
    assert_eq!(
        (a.state, a.succeeded_at, a.n_failed_attempts, a.n_open),
        (TargetState::Succeeded, Some(t(0)), 0, 0)
    );
    assert_eq!(a.run_id, run_id(1));
    let b = of(&v1, "b");
    assert_eq!(
        (b.state, b.run_id, b.succeeded_at, b.n_failed_attempts),
        (TargetState::TimedOut, run_id(2), None, 2)
    );
    assert_eq!(b.failed_at, Some(t(11)), "the result's finish time");
    let c = of(&v1, "c");
    assert_eq!(
        (c.state, c.n_open, c.n_failed_attempts, c.finished_at),
        (TargetState::Queued, 1, 0, None)
    );

    // At v2 only a is targeted, and open; with any version a's latest is the v2 target.
    let v2 = coverage(store, query(Some(2), None)).await;
    assert_eq!(v2.len(), 1);
    assert_eq!((v2[0].state, v2[0].n_open), (TargetState::Queued, 1));
    let any = coverage(store, query(None, None)).await;
    let a = of(&any, "a");
    assert_eq!(
        (a.run_id, a.succeeded_at, a.n_open),
        (run_id(5), Some(t(0)), 1)
    );

    // A success resets the count; a later expiry counts again.
    start_run_with(store, scheduled(6, Some(SCHEDULE), 1, 200), &["b"], 6).await;
    report(store, 6, 6, "b", ResultStatus::Succeeded).await;
    let mut expiring = scheduled(7, Some(SCHEDULE), 1, 300);
    expiring.deadline = Some(t(400));
    start_run_with(store, expiring, &["b"], 7).await;
    assert_eq!(store.expire_targets(t(500)).await.unwrap(), 1);
    let b = of(&coverage(store, query(Some(1), None)).await, "b").clone();
    assert_eq!(
        (b.state, b.succeeded_at, b.n_failed_attempts, b.failed_at),
        (TargetState::Expired, Some(t(200)), 1, Some(t(500)))
    );

    // Since t(250): only run 7 of the recent ones, but c's open target from run 1 too.
    let recent = coverage(store, query(Some(1), Some(250))).await;
    let agents: Vec<&str> = recent.iter().map(|agent| agent.agent_id.as_str()).collect();
    assert_eq!(agents, ["b", "c"], "{recent:#?}");
    assert_eq!(
        (
            of(&recent, "b").succeeded_at,
            of(&recent, "b").n_failed_attempts
        ),
        (None, 1)
    );
    assert_eq!(of(&recent, "c").n_open, 1);

    // Nothing for an unknown schedule.
    let mut unknown = query(None, None);
    unknown.schedule_name = "nope".to_string();
    assert!(coverage(store, unknown).await.is_empty());
}
