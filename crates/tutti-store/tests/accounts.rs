//! Accounts, sessions, MFA recovery codes and API tokens against a real SQLite file: each
//! lookup reflects the account's current state, expiry and revocation are refused, a
//! recovery code works once, and no secret leaks through `Debug`.

mod common;

use std::fmt::Debug;

use common::*;
use tutti_proto::role::Role;
use tutti_store::*;

fn new_account(username: &str, role: Role) -> NewAccount {
    NewAccount {
        username: username.to_string(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$salt${username}"),
        role,
        must_change_password: false,
        created_at: t(0),
        created_by: "bootstrap".to_string(),
    }
}

/// A session of `username` created at `t(0)` that ends at `t(expires)`.
fn new_session(session_hash: &str, username: &str, expires: i64) -> NewSession {
    NewSession {
        session_hash: session_hash.to_string(),
        username: username.to_string(),
        created_at: t(0),
        expires_at: t(expires),
        source: Some("192.0.2.7".to_string()),
        mfa_passed: false,
    }
}

/// A token of `username` with hash `hash-<token_id>`, created at `t(created)`.
fn new_token(token_id: &str, username: &str, created: i64, expires: Option<i64>) -> NewApiToken {
    NewApiToken {
        token_id: token_id.to_string(),
        token_hash: format!("hash-{token_id}"),
        name: "ci".to_string(),
        username: username.to_string(),
        role: Role::Admin,
        created_at: t(created),
        expires_at: expires.map(t),
    }
}

/// A store with the accounts `alice` (admin) and `bob` (viewer).
async fn db_with_accounts() -> TestDb {
    let db = TestDb::open().await;
    let store = &db.store;
    store
        .create_account(new_account("alice", Role::Admin))
        .await
        .unwrap();
    store
        .create_account(new_account("bob", Role::Viewer))
        .await
        .unwrap();
    db
}

fn assert_not_found<T: Debug>(result: StoreResult<T>) {
    assert!(
        matches!(result, Err(StoreError::NotFound(_))),
        "expected NotFound, got {result:?}"
    );
}

fn assert_conflict<T: Debug>(result: StoreResult<T>) {
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "expected Conflict, got {result:?}"
    );
}

#[tokio::test]
async fn an_account_is_created_once_and_read_back() {
    let db = TestDb::open().await;
    let store = &db.store;
    assert_eq!(store.count_accounts().await.unwrap(), 0);
    let mut carol = new_account("carol", Role::Operator);
    carol.must_change_password = true;
    store.create_account(carol.clone()).await.unwrap();
    assert_eq!(store.count_accounts().await.unwrap(), 1);
    let expected = Account {
        username: "carol".to_string(),
        role: Role::Operator,
        disabled: false,
        must_change_password: true,
        mfa_enabled: false,
        created_at: t(0),
        created_by: "bootstrap".to_string(),
        updated_at: t(0),
        password_changed_at: t(0),
    };
    assert_eq!(store.get_account("carol").await.unwrap(), expected);

    let mut again = new_account("carol", Role::Admin);
    again.password_hash = "other".to_string();
    assert_conflict(store.create_account(again).await);
    let credentials = store.account_credentials("carol").await.unwrap();
    assert_eq!(
        credentials,
        AccountCredentials {
            account: expected,
            password_hash: carol.password_hash,
            totp_secret: None,
            totp_pending: None,
        },
        "the duplicate changed nothing"
    );
    assert_not_found(store.get_account("nobody").await);
    assert_not_found(store.account_credentials("nobody").await);

    let (created_at, disabled): (String, String) = db
        .raw()
        .query_row(
            "SELECT typeof(created_at), typeof(disabled) FROM accounts",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (created_at.as_str(), disabled.as_str()),
        ("integer", "integer")
    );
}

#[tokio::test]
async fn accounts_are_listed_by_username() {
    let db = TestDb::open().await;
    let store = &db.store;
    for username in ["mallory", "alice", "trent", "bob"] {
        store
            .create_account(new_account(username, Role::Viewer))
            .await
            .unwrap();
    }
    let first = store.list_accounts(Page::first(3)).await.unwrap();
    let second = store.list_accounts(Page::new(3, 3)).await.unwrap();
    let names = |page: &Paged<Account>| -> Vec<String> {
        page.items.iter().map(|a| a.username.clone()).collect()
    };
    assert_eq!(names(&first), ["alice", "bob", "mallory"]);
    assert_eq!(names(&second), ["trent"]);
    assert_eq!((first.total, second.total), (4, 4));
}

#[tokio::test]
async fn update_sets_only_what_it_is_given() {
    let db = db_with_accounts().await;
    let store = &db.store;
    let promoted = AccountUpdate {
        role: Some(Role::Operator),
        disabled: None,
    };
    let bob = store.update_account("bob", promoted, t(5)).await.unwrap();
    assert_eq!(
        (bob.role, bob.disabled, bob.updated_at),
        (Role::Operator, false, t(5))
    );

    let disable = AccountUpdate {
        role: None,
        disabled: Some(true),
    };
    let bob = store.update_account("bob", disable, t(6)).await.unwrap();
    assert_eq!(
        (bob.role, bob.disabled, bob.updated_at),
        (Role::Operator, true, t(6))
    );
    assert_eq!(store.get_account("bob").await.unwrap(), bob);
    assert_eq!(
        bob.password_changed_at,
        t(0),
        "a role change is not a password change"
    );
    assert!(!store.get_account("alice").await.unwrap().disabled);
    assert_not_found(
        store
            .update_account("nobody", AccountUpdate::default(), t(6))
            .await,
    );
}

#[tokio::test]
async fn set_password_replaces_the_hash_and_the_flag() {
    let db = db_with_accounts().await;
    let store = &db.store;
    store
        .set_password("alice", "new-hash".to_string(), true, t(30))
        .await
        .unwrap();
    let credentials = store.account_credentials("alice").await.unwrap();
    assert_eq!(credentials.password_hash, "new-hash");
    assert!(credentials.account.must_change_password);
    assert_eq!(credentials.account.password_changed_at, t(30));
    assert_eq!(credentials.account.updated_at, t(30));
    let bob = store.account_credentials("bob").await.unwrap();
    assert_ne!(bob.password_hash, "new-hash");
    assert_not_found(
        store
            .set_password("nobody", "x".to_string(), false, t(30))
            .await,
    );
}

#[tokio::test]
async fn a_session_lives_until_its_absolute_end() {
    let db = db_with_accounts().await;
    let store = &db.store;
    store
        .create_session(new_session("s-alice", "alice", 100))
        .await
        .unwrap();
    assert_conflict(
        store
            .create_session(new_session("s-alice", "bob", 100))
            .await,
    );
    assert_not_found(
        store
            .create_session(new_session("s-x", "nobody", 100))
            .await,
    );

    let session = store.get_session("s-alice", t(99)).await.unwrap();
    assert_eq!(
        session,
        SessionInfo {
            username: "alice".to_string(),
            role: Role::Admin,
            disabled: false,
            must_change_password: false,
            mfa_enabled: false,
            created_at: t(0),
            expires_at: t(100),
            last_seen_at: t(0),
            mfa_passed: false,
        }
    );
    assert_not_found(store.get_session("s-alice", t(100)).await);
    assert_not_found(store.get_session("s-alice", t(500)).await);
    assert_not_found(store.get_session("s-unknown", t(1)).await);
}

#[tokio::test]
async fn a_session_is_touched_passes_mfa_and_signs_out_idempotently() {
    let db = db_with_accounts().await;
    let store = &db.store;
    store
        .create_session(new_session("s-alice", "alice", 100))
        .await
        .unwrap();
    store.touch_session("s-alice", t(40)).await.unwrap();
    store.touch_session("s-alice", t(30)).await.unwrap();
    store.set_session_mfa_passed("s-alice").await.unwrap();
    let session = store.get_session("s-alice", t(50)).await.unwrap();
    assert_eq!(
        session.last_seen_at,
        t(40),
        "a late, older touch does not go back"
    );
    assert!(session.mfa_passed);
    assert_not_found(store.touch_session("s-unknown", t(40)).await);
    assert_not_found(store.set_session_mfa_passed("s-unknown").await);

    store.delete_session("s-alice").await.unwrap();
    assert_not_found(store.get_session("s-alice", t(50)).await);
    store.delete_session("s-alice").await.unwrap();
}

#[tokio::test]
async fn sign_out_everywhere_may_keep_the_current_session() {
    let db = db_with_accounts().await;
    let store = &db.store;
    for hash in ["s-a1", "s-a2", "s-a3"] {
        store
            .create_session(new_session(hash, "alice", 100))
            .await
            .unwrap();
    }
    store
        .create_session(new_session("s-b1", "bob", 100))
        .await
        .unwrap();
    let deleted = store
        .delete_sessions("alice", Some("s-a2".to_string()))
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    assert!(store.get_session("s-a2", t(1)).await.is_ok());
    assert_not_found(store.get_session("s-a1", t(1)).await);
    assert_not_found(store.get_session("s-a3", t(1)).await);
    assert!(
        store.get_session("s-b1", t(1)).await.is_ok(),
        "bob's session stays"
    );

    assert_eq!(store.delete_sessions("alice", None).await.unwrap(), 1);
    assert_not_found(store.get_session("s-a2", t(1)).await);
    assert!(store.get_session("s-b1", t(1)).await.is_ok());
}

#[tokio::test]
async fn the_sweeper_removes_ended_and_idle_sessions() {
    let db = db_with_accounts().await;
    let store = &db.store;
    // Ended: active until t(90) but over at t(100).
    store
        .create_session(new_session("s-ended", "alice", 100))
        .await
        .unwrap();
    store.touch_session("s-ended", t(90)).await.unwrap();
    // Idle: not seen since its creation at t(0).
    store
        .create_session(new_session("s-idle", "alice", 10_000))
        .await
        .unwrap();
    store
        .create_session(new_session("s-active", "bob", 10_000))
        .await
        .unwrap();
    store.touch_session("s-active", t(500)).await.unwrap();

    let deleted = store.delete_expired_sessions(t(600), t(50)).await.unwrap();
    assert_eq!(deleted, 2);
    let remaining: Vec<String> = db
        .raw()
        .prepare("SELECT session_hash FROM sessions")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(remaining, ["s-active"]);
}

#[tokio::test]
async fn a_session_sees_its_account_change_at_once() {
    let db = db_with_accounts().await;
    let store = &db.store;
    store
        .create_session(new_session("s-bob", "bob", 100))
        .await
        .unwrap();
    let update = AccountUpdate {
        role: Some(Role::Operator),
        disabled: Some(true),
    };
    store.update_account("bob", update, t(10)).await.unwrap();
    let session = store.get_session("s-bob", t(11)).await.unwrap();
    assert!(session.disabled);
    assert_eq!(session.role, Role::Operator);
}

#[tokio::test]
async fn totp_enrolls_and_each_recovery_code_works_once() {
    let db = db_with_accounts().await;
    let store = &db.store;
    store
        .set_totp_pending("alice", Some("PENDINGSECRET".to_string()), t(1))
        .await
        .unwrap();
    let pending = store.account_credentials("alice").await.unwrap();
    assert_eq!(pending.totp_pending.as_deref(), Some("PENDINGSECRET"));
    assert_eq!(pending.totp_secret, None);
    assert!(!pending.account.mfa_enabled, "pending is not enabled");
    assert_not_found(store.set_totp_pending("nobody", None, t(1)).await);

    let codes = vec![
        "code-1".to_string(),
        "code-2".to_string(),
        "code-3".to_string(),
    ];
    store
        .enable_totp("alice", "PENDINGSECRET".to_string(), codes, t(2))
        .await
        .unwrap();
    let enabled = store.account_credentials("alice").await.unwrap();
    assert_eq!(enabled.totp_secret.as_deref(), Some("PENDINGSECRET"));
    assert_eq!(enabled.totp_pending, None);
    assert!(enabled.account.mfa_enabled);
    assert_eq!(enabled.account.updated_at, t(2));
    assert_eq!(store.unused_recovery_codes("alice").await.unwrap(), 3);

    assert!(
        store
            .use_recovery_code("alice", "code-1", t(3))
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_recovery_code("alice", "code-1", t(4))
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_recovery_code("bob", "code-2", t(4))
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_recovery_code("alice", "code-9", t(4))
            .await
            .unwrap()
    );
    assert_eq!(store.unused_recovery_codes("alice").await.unwrap(), 2);

    store
        .enable_totp(
            "alice",
            "NEWSECRET".to_string(),
            vec!["code-4".to_string()],
            t(5),
        )
        .await
        .unwrap();
    assert_eq!(store.unused_recovery_codes("alice").await.unwrap(), 1);
    assert!(
        !store
            .use_recovery_code("alice", "code-2", t(6))
            .await
            .unwrap(),
        "replaced"
    );

    store.disable_totp("alice", t(7)).await.unwrap();
    let disabled = store.account_credentials("alice").await.unwrap();
    assert_eq!((disabled.totp_secret, disabled.totp_pending), (None, None));
    assert!(!disabled.account.mfa_enabled);
    assert_eq!(store.unused_recovery_codes("alice").await.unwrap(), 0);
    assert!(
        !store
            .use_recovery_code("alice", "code-4", t(8))
            .await
            .unwrap()
    );
    assert_not_found(store.disable_totp("nobody", t(7)).await);
    assert_not_found(
        store
            .enable_totp("nobody", "S".to_string(), vec![], t(7))
            .await,
    );
}

#[tokio::test]
async fn a_live_api_token_authenticates_and_records_its_use() {
    let db = db_with_accounts().await;
    let store = &db.store;
    store
        .create_api_token(new_token("tok-1", "alice", 0, Some(1000)))
        .await
        .unwrap();
    let auth = store
        .authenticate_api_token("hash-tok-1", t(10))
        .await
        .unwrap();
    let expected = ApiToken {
        token_id: "tok-1".to_string(),
        name: "ci".to_string(),
        username: "alice".to_string(),
        role: Role::Admin,
        created_at: t(0),
        expires_at: Some(t(1000)),
        last_used_at: Some(t(10)),
        revoked_at: None,
    };
    assert_eq!(
        auth,
        TokenAuth {
            token: expected.clone(),
            owner_disabled: false,
            owner_role: Role::Admin,
        }
    );
    assert_eq!(store.get_api_token("tok-1").await.unwrap(), expected);
    // Uses are recorded at most once a minute, so authentication is normally a read.
    store
        .authenticate_api_token("hash-tok-1", t(69))
        .await
        .unwrap();
    assert_eq!(
        store.get_api_token("tok-1").await.unwrap().last_used_at,
        Some(t(10))
    );
    store
        .authenticate_api_token("hash-tok-1", t(70))
        .await
        .unwrap();
    assert_eq!(
        store.get_api_token("tok-1").await.unwrap().last_used_at,
        Some(t(70))
    );
    assert_not_found(store.authenticate_api_token("hash-tok-1", t(1000)).await);
    assert_not_found(store.authenticate_api_token("hash-unknown", t(10)).await);
    assert_eq!(
        store.get_api_token("tok-1").await.unwrap().last_used_at,
        Some(t(70)),
        "a refused token records no use"
    );

    store
        .create_api_token(new_token("tok-forever", "bob", 0, None))
        .await
        .unwrap();
    let far_future = t(100 * 365 * 24 * 3600);
    let forever = store
        .authenticate_api_token("hash-tok-forever", far_future)
        .await
        .unwrap();
    assert_eq!(forever.token.last_used_at, Some(far_future));
    assert_eq!(forever.owner_role, Role::Viewer);
}

#[tokio::test]
async fn api_token_creation_refuses_duplicates_and_unknown_owners() {
    let db = db_with_accounts().await;
    let store = &db.store;
    store
        .create_api_token(new_token("tok-1", "alice", 0, None))
        .await
        .unwrap();
    let mut same_hash = new_token("tok-2", "alice", 0, None);
    same_hash.token_hash = "hash-tok-1".to_string();
    assert_conflict(store.create_api_token(same_hash).await);
    assert_conflict(
        store
            .create_api_token(new_token("tok-1", "bob", 0, None))
            .await,
    );
    assert_not_found(
        store
            .create_api_token(new_token("tok-3", "nobody", 0, None))
            .await,
    );
    assert_not_found(store.get_api_token("tok-2").await);
    assert_eq!(
        store.get_api_token("tok-1").await.unwrap().username,
        "alice"
    );
}

#[tokio::test]
async fn a_revoked_api_token_is_refused_and_keeps_its_first_revocation() {
    let db = db_with_accounts().await;
    let store = &db.store;
    store
        .create_api_token(new_token("tok-1", "alice", 0, None))
        .await
        .unwrap();
    store.revoke_api_token("tok-1", t(20)).await.unwrap();
    store.revoke_api_token("tok-1", t(30)).await.unwrap();
    assert_not_found(store.authenticate_api_token("hash-tok-1", t(40)).await);
    let token = store.get_api_token("tok-1").await.unwrap();
    assert_eq!(token.revoked_at, Some(t(20)));
    assert_eq!(token.last_used_at, None);
    assert_not_found(store.revoke_api_token("tok-unknown", t(20)).await);
}

#[tokio::test]
async fn token_auth_shows_the_owner_as_it_is_now() {
    let db = db_with_accounts().await;
    let store = &db.store;
    store
        .create_api_token(new_token("tok-1", "alice", 0, None))
        .await
        .unwrap();
    let demote = AccountUpdate {
        role: Some(Role::Viewer),
        disabled: Some(true),
    };
    store.update_account("alice", demote, t(5)).await.unwrap();
    let auth = store
        .authenticate_api_token("hash-tok-1", t(6))
        .await
        .unwrap();
    assert!(auth.owner_disabled);
    assert_eq!(auth.owner_role, Role::Viewer);
    assert_eq!(
        auth.token.role,
        Role::Admin,
        "the token keeps the role it was made with"
    );
}

#[tokio::test]
async fn api_tokens_are_listed_newest_first_by_owner_or_all() {
    let db = db_with_accounts().await;
    let store = &db.store;
    for (token_id, username, created) in [
        ("a-old", "alice", 1),
        ("b-mid", "bob", 2),
        ("a-new", "alice", 3),
    ] {
        store
            .create_api_token(new_token(token_id, username, created, None))
            .await
            .unwrap();
    }
    let ids = |page: Paged<ApiToken>| -> (Vec<String>, u64) {
        (
            page.items.into_iter().map(|token| token.token_id).collect(),
            page.total,
        )
    };
    let alice = store
        .list_api_tokens(Some("alice"), Page::default())
        .await
        .unwrap();
    assert_eq!(
        ids(alice),
        (vec!["a-new".to_string(), "a-old".to_string()], 2)
    );
    let everyone = store.list_api_tokens(None, Page::default()).await.unwrap();
    assert_eq!(
        ids(everyone),
        (
            vec![
                "a-new".to_string(),
                "b-mid".to_string(),
                "a-old".to_string()
            ],
            3
        )
    );
    let first = store.list_api_tokens(None, Page::first(1)).await.unwrap();
    assert_eq!(ids(first), (vec!["a-new".to_string()], 3));
}

/// The schema's `ON DELETE CASCADE`: an account's sessions, recovery codes and tokens go
/// with it. There is no account deletion API yet, so this deletes with raw SQL.
#[tokio::test]
async fn deleting_an_account_deletes_what_belongs_to_it() {
    let db = db_with_accounts().await;
    let store = &db.store;
    store
        .create_session(new_session("s-alice", "alice", 100))
        .await
        .unwrap();
    store
        .enable_totp("alice", "S".to_string(), vec!["code-1".to_string()], t(1))
        .await
        .unwrap();
    store
        .create_api_token(new_token("tok-1", "alice", 0, None))
        .await
        .unwrap();
    store
        .create_api_token(new_token("tok-2", "bob", 0, None))
        .await
        .unwrap();
    let raw = db.raw();
    raw.pragma_update(None, "foreign_keys", "ON").unwrap();
    raw.execute("DELETE FROM accounts WHERE username = 'alice'", [])
        .unwrap();
    drop(raw);
    assert_not_found(store.get_session("s-alice", t(1)).await);
    assert_eq!(store.unused_recovery_codes("alice").await.unwrap(), 0);
    assert_not_found(store.get_api_token("tok-1").await);
    assert!(store.get_api_token("tok-2").await.is_ok());
}

#[test]
fn debug_output_never_shows_a_secret() {
    let credentials = AccountCredentials {
        account: Account {
            username: "alice".to_string(),
            role: Role::Admin,
            disabled: false,
            must_change_password: false,
            mfa_enabled: true,
            created_at: t(0),
            created_by: "bootstrap".to_string(),
            updated_at: t(0),
            password_changed_at: t(0),
        },
        password_hash: "SECRET-PASSWORD-HASH".to_string(),
        totp_secret: Some("SECRET-TOTP".to_string()),
        totp_pending: Some("SECRET-PENDING".to_string()),
    };
    let mut account = new_account("alice", Role::Admin);
    account.password_hash = "SECRET-NEW-ACCOUNT-HASH".to_string();
    let mut session = new_session("SECRET-SESSION-HASH", "alice", 100);
    session.source = None;
    let mut token = new_token("tok-1", "alice", 0, None);
    token.token_hash = "SECRET-TOKEN-HASH".to_string();
    let printed = [
        format!("{credentials:?}"),
        format!("{account:?}"),
        format!("{session:?}"),
        format!("{token:?}"),
    ];
    for text in &printed {
        assert!(!text.contains("SECRET"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
        assert!(text.contains("alice"), "the rest is still printed: {text}");
    }
    assert!(
        printed[0].contains("totp_secret: Some(<redacted>)"),
        "{}",
        printed[0]
    );
}
