//! Rollout storage on a real SQLite file: waves assigned in agent id order, releases that
//! survive a crash before the publish (same command ids until the publish is recorded),
//! the batch limit, held targets that never expire, and an abort that a resume undoes.

mod common;

use common::*;
use tutti_proto::result::ResultStatus;
use tutti_store::{
    CommandPublished, Covers, HeldTargets, NewRollout, RolloutChange, RolloutState, Store,
    TargetQuery, TargetState,
};

const AGENTS: [&str; 5] = ["e", "a", "d", "b", "c"];

async fn rollout_run(store: &Store, deadline: Option<i64>) -> tutti_proto::RunId {
    put_job(store, "deploy", "true").await;
    enroll(store, &AGENTS).await;
    let run = run_id(1);
    let mut new = new_run(run, "deploy", 0);
    new.deadline = deadline.map(t);
    let targets = AGENTS.iter().map(|name| agent(name)).collect();
    let rollout = NewRollout {
        plan: serde_json::json!({"waves": [1, 3, 5]}),
        wave_ends: vec![1, 3, 5],
    };
    store.create_rollout(new, targets, rollout).await.unwrap();
    run
}

/// `(agent, wave, released)` of every target.
async fn waves(store: &Store, run: tutti_proto::RunId) -> Vec<(String, u32, bool)> {
    let targets = store
        .list_targets(&run, &TargetQuery::default())
        .await
        .unwrap();
    targets
        .items
        .into_iter()
        .map(|t| {
            (
                t.agent_id.to_string(),
                t.wave.unwrap(),
                t.released_at.is_some(),
            )
        })
        .collect()
}

fn published(
    run: tutti_proto::RunId,
    release: &tutti_store::PendingRelease,
    seq: u64,
) -> CommandPublished {
    CommandPublished {
        run_id: run,
        subject: format!("tutti.cmd.agent.{}", release.agent_id),
        command_id: release.command_id,
        stream_seq: seq,
        published_at: t(1),
        covers: Covers::Agents(vec![release.agent_id.clone()]),
    }
}

#[tokio::test]
async fn waves_follow_agent_ids_and_a_release_is_published_with_the_same_ids_until_recorded() {
    let db = TestDb::open().await;
    let run = rollout_run(&db.store, None).await;
    let expected = [("a", 1), ("b", 2), ("c", 2), ("d", 3), ("e", 3)];
    let assigned: Vec<(String, u32)> = waves(&db.store, run)
        .await
        .into_iter()
        .map(|(agent, wave, _)| (agent, wave))
        .collect();
    let expected: Vec<(String, u32)> = expected.iter().map(|(a, w)| (a.to_string(), *w)).collect();
    assert_eq!(assigned, expected);

    assert_eq!(db.store.release_targets(&run, None, t(1)).await.unwrap(), 1);
    // A crash here: the next server finds the same release with the same command id.
    let first = db.store.pending_releases(&run).await.unwrap();
    let again = db.store.pending_releases(&run).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].agent_id.as_str(), "a");
    // Releasing again changes nothing; recording the publish empties the pending list.
    assert_eq!(db.store.release_targets(&run, None, t(2)).await.unwrap(), 0);
    db.store
        .set_run_command_seq(published(run, &first[0], 7))
        .await
        .unwrap();
    assert!(db.store.pending_releases(&run).await.unwrap().is_empty());
    let counts = db.store.rollout_wave_counts(&run).await.unwrap();
    assert_eq!(counts[0].released.get(TargetState::Queued), 1);
    assert_eq!(counts[1].held(), 2);
    assert_eq!(counts[2].held(), 2);
}

#[tokio::test]
async fn the_batch_size_caps_released_unfinished_targets_and_held_targets_never_expire() {
    let db = TestDb::open().await;
    let run = rollout_run(&db.store, Some(100)).await;
    let rollout = db.store.get_rollout(&run).await.unwrap();
    let to_wave_3 = RolloutChange {
        from: vec![RolloutState::Running],
        from_wave: 1,
        to: RolloutState::Running,
        to_wave: 3,
        next_wave_at: None,
        reason: None,
        resumable: false,
        held: HeldTargets::Keep,
    };
    assert_eq!(rollout.current_wave, 1);
    assert!(
        db.store
            .set_rollout_state(&run, to_wave_3.clone(), t(1))
            .await
            .unwrap()
            .is_some()
    );
    // Stale: the rollout is no longer at wave 1.
    assert!(
        db.store
            .set_rollout_state(&run, to_wave_3, t(1))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        db.store.release_targets(&run, Some(2), t(2)).await.unwrap(),
        2
    );
    assert_eq!(
        db.store.release_targets(&run, Some(2), t(3)).await.unwrap(),
        0
    );
    let pending = db.store.pending_releases(&run).await.unwrap();
    db.store
        .set_run_command_seq(published(run, &pending[0], 3))
        .await
        .unwrap();
    db.store
        .apply_results(vec![seq(
            1,
            result(run, "a", ResultStatus::Succeeded, Some(0)),
        )])
        .await
        .unwrap();
    assert_eq!(
        db.store.release_targets(&run, Some(2), t(4)).await.unwrap(),
        1
    );

    // Past the deadline only released targets expire; the held ones are the driver's.
    assert_eq!(db.store.expire_targets(t(200)).await.unwrap(), 2);
    let released: Vec<bool> = waves(&db.store, run)
        .await
        .into_iter()
        .map(|w| w.2)
        .collect();
    assert_eq!(released, [true, true, true, false, false]);
    let counts = db.store.rollout_wave_counts(&run).await.unwrap();
    assert_eq!(counts.iter().map(|w| w.held()).sum::<u64>(), 2);
}

#[tokio::test]
async fn an_abort_skips_held_targets_and_a_resume_holds_them_again() {
    let db = TestDb::open().await;
    let run = rollout_run(&db.store, None).await;
    db.store.release_targets(&run, None, t(1)).await.unwrap();
    let abort = RolloutChange {
        from: vec![RolloutState::Running],
        from_wave: 1,
        to: RolloutState::Aborted,
        to_wave: 1,
        next_wave_at: None,
        reason: Some("aborted by alice".into()),
        resumable: true,
        held: HeldTargets::Skip("rollout_aborted".into()),
    };
    assert_eq!(
        db.store.set_rollout_state(&run, abort, t(2)).await.unwrap(),
        Some(4)
    );
    let detail = db.store.get_run(&run).await.unwrap();
    assert_eq!(detail.counts.get(TargetState::Skipped), 4);
    assert_eq!(db.store.list_active_rollouts().await.unwrap(), []);

    let resume = RolloutChange {
        from: vec![RolloutState::Aborted],
        from_wave: 1,
        to: RolloutState::Running,
        to_wave: 1,
        next_wave_at: None,
        reason: None,
        resumable: false,
        held: HeldTargets::Restore("rollout_aborted".into()),
    };
    assert_eq!(
        db.store
            .set_rollout_state(&run, resume, t(3))
            .await
            .unwrap(),
        Some(4)
    );
    let counts = db.store.rollout_wave_counts(&run).await.unwrap();
    assert_eq!(counts.iter().map(|w| w.held()).sum::<u64>(), 4);
    assert_eq!(db.store.list_active_rollouts().await.unwrap().len(), 1);
}
