//! Schedules and their fires against a real SQLite file: create / change / unchanged like
//! jobs, enable and delete, and a fire claimed exactly once however often it is claimed.

mod common;

use common::*;
use serde_json::json;
use tutti_store::*;

fn draft(definition: serde_json::Value, text: &str, enabled: bool) -> ScheduleDraft {
    ScheduleDraft {
        name: "nightly".to_string(),
        definition,
        source_yaml: text.to_string(),
        enabled,
    }
}

#[tokio::test]
async fn schedules_are_created_changed_and_deleted_like_jobs() {
    let db = TestDb::open().await;
    let store = &db.store;
    let definition = json!({"job": "rotate-logs", "cron": "0 3 * * *"});
    let put = |draft| store.put_schedule(draft, "alice", t(0));
    assert_eq!(
        put(draft(definition.clone(), "a", true)).await.unwrap(),
        PutScheduleOutcome::Created
    );
    assert_eq!(
        put(draft(definition.clone(), "a", true)).await.unwrap(),
        PutScheduleOutcome::Unchanged
    );
    assert_eq!(
        put(draft(definition.clone(), "# comment\na", true))
            .await
            .unwrap(),
        PutScheduleOutcome::Unchanged,
        "a comment is not a change"
    );
    assert_eq!(
        store.get_schedule("nightly").await.unwrap().source_yaml,
        "# comment\na",
        "but its text is kept"
    );
    assert_eq!(
        put(draft(definition.clone(), "a", false)).await.unwrap(),
        PutScheduleOutcome::Changed
    );
    let other = json!({"job": "rotate-logs", "cron": "0 4 * * *"});
    assert_eq!(
        put(draft(other.clone(), "b", false)).await.unwrap(),
        PutScheduleOutcome::Changed
    );

    store
        .set_schedule_enabled("nightly", true, t(5))
        .await
        .unwrap();
    let stored = store.get_schedule("nightly").await.unwrap();
    assert_eq!(
        (stored.enabled, stored.definition, stored.updated_at),
        (true, other.clone(), t(5))
    );
    assert_eq!(
        store
            .list_schedules(true, Page::default())
            .await
            .unwrap()
            .total,
        1
    );
    store
        .set_schedule_enabled("nightly", false, t(6))
        .await
        .unwrap();
    assert_eq!(
        store
            .list_schedules(true, Page::default())
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(
        store
            .list_schedules(false, Page::default())
            .await
            .unwrap()
            .total,
        1
    );

    store.delete_schedule("nightly", t(7)).await.unwrap();
    assert!(matches!(
        store.get_schedule("nightly").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_schedule("nightly", t(8)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.set_schedule_enabled("nightly", true, t(8)).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store
            .list_schedules(false, Page::default())
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(
        put(draft(other, "b", true)).await.unwrap(),
        PutScheduleOutcome::Created,
        "applying a deleted schedule again brings it back"
    );
}

#[tokio::test]
async fn a_fire_is_claimed_once_and_settled_with_its_run_or_reason() {
    let db = TestDb::open().await;
    let store = &db.store;
    store
        .put_schedule(draft(json!({}), "a", true), "alice", t(0))
        .await
        .unwrap();
    assert!(
        store
            .claim_schedule_fire("nightly", t(100), t(101))
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_schedule_fire("nightly", t(100), t(102))
            .await
            .unwrap(),
        "a second claim loses"
    );
    assert!(
        store
            .claim_schedule_fire("nightly", t(200), t(201))
            .await
            .unwrap()
    );
    let run_id = "01J00000000000000000000000".to_string();
    store
        .settle_schedule_fire("nightly", t(100), Some(run_id.clone()), None)
        .await
        .unwrap();
    store
        .settle_schedule_fire("nightly", t(200), None, Some("frozen".into()))
        .await
        .unwrap();
    assert!(matches!(
        store
            .settle_schedule_fire("nightly", t(300), None, Some("x".into()))
            .await,
        Err(StoreError::NotFound(_))
    ));
    let fires = store
        .list_schedule_fires("nightly", Page::default())
        .await
        .unwrap();
    assert_eq!(fires.total, 2);
    assert_eq!(
        (fires.items[0].fire_at, fires.items[0].skipped.as_deref()),
        (t(200), Some("frozen"))
    );
    assert_eq!(fires.items[1].run_id, Some(run_id.parse().unwrap()));
    assert_eq!(
        fires.items[1].fired_at,
        t(101),
        "the first claim's time stays"
    );
}
