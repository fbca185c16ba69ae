//! Broker identities: one key per enrollment, never reused, revoked with the agent and
//! still listed as revoked after it is gone (the account JWT is rebuilt from the list).

mod common;

use common::TestDb;
use jiff::Timestamp;
use tutti_proto::AgentId;
use tutti_store::StoreError;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).unwrap()
}

#[tokio::test]
async fn keys_are_recorded_once_revoked_with_their_agent_and_stay_listed() {
    let db = TestDb::open().await;
    let store = &db.store;
    let web = AgentId::parse("web-01").unwrap();
    let db_agent = AgentId::parse("db-01").unwrap();
    store
        .record_broker_identity(&web, "UWEB1", at(0))
        .await
        .unwrap();
    store
        .record_broker_identity(&db_agent, "UDB1", at(1))
        .await
        .unwrap();
    let reused = store
        .record_broker_identity(&db_agent, "UWEB1", at(2))
        .await;
    assert!(matches!(reused, Err(StoreError::Conflict(_))), "{reused:?}");
    assert!(store.revoked_broker_identities().await.unwrap().is_empty());

    let revoked = store.revoke_broker_identities(&web, at(10)).await.unwrap();
    assert_eq!(revoked, ["UWEB1"]);
    assert!(
        store
            .revoke_broker_identities(&web, at(11))
            .await
            .unwrap()
            .is_empty()
    );
    let listed = store.revoked_broker_identities().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].public_key, "UWEB1");
    assert_eq!(listed[0].revoked_at, Some(at(10)));

    // A re-enrolled agent brings a new key; its history shows both, newest first.
    store
        .record_broker_identity(&web, "UWEB2", at(20))
        .await
        .unwrap();
    let history = store.broker_identities_of(&web).await.unwrap();
    let keys: Vec<_> = history
        .iter()
        .map(|id| (id.public_key.as_str(), id.revoked_at))
        .collect();
    assert_eq!(keys, [("UWEB2", None), ("UWEB1", Some(at(10)))]);
}

#[tokio::test]
async fn agents_trusting_a_key_are_counted_from_their_last_heartbeat() {
    let db = TestDb::open().await;
    let store = &db.store;
    common::enroll(store, &["web-01", "web-02", "db-01"]).await;
    let current = tutti_proto::KeyId::for_public_key(&[1; 32]);
    let next = tutti_proto::KeyId::for_public_key(&[2; 32]);
    let beat = |name: &str, at: i64, keys: Vec<tutti_proto::KeyId>| {
        let mut heartbeat = common::heartbeat(name, at);
        heartbeat.trusted_keys = keys;
        heartbeat
    };
    store
        .apply_heartbeats(vec![
            beat("web-01", 10, vec![current, next]),
            beat("web-02", 10, vec![current]),
            // Never sent a list (an older agent): counted as enrolled, not trusting.
            beat("db-01", 10, Vec::new()),
            // Not enrolled: changes nothing.
            beat("ghost", 10, vec![next]),
        ])
        .await
        .unwrap();
    let trust = store.agents_trusting_key(&next).await.unwrap();
    assert_eq!((trust.trusting, trust.enrolled), (1, 3));
    let trust = store.agents_trusting_key(&current).await.unwrap();
    assert_eq!((trust.trusting, trust.enrolled), (2, 3));
    // A later heartbeat without a list keeps the last one; a new list replaces it.
    store
        .apply_heartbeats(vec![
            beat("web-01", 20, Vec::new()),
            beat("web-02", 20, vec![current, next]),
        ])
        .await
        .unwrap();
    let trust = store.agents_trusting_key(&next).await.unwrap();
    assert_eq!((trust.trusting, trust.enrolled), (2, 3));
}
