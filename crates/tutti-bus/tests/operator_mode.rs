//! Operator mode (NATS decentralized auth) against a real nats-server configured by
//! `BrokerAuth::nats_server_config`: anonymous and foreign clients are refused, a full user
//! of the tutti account gets JetStream, a restricted agent user stays inside its subjects,
//! a revoked user is cut off at once, and the JWT and key-store edge cases.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use async_nats::{ConnectErrorKind, ConnectOptions, Event, Message};
use data_encoding::BASE64URL_NOPAD;
use futures::StreamExt;
use nkeys::KeyPair;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tutti_bus::auth::claims::{CLAIM_VERSION, Claims, Nats, User};
use tutti_bus::auth::jwt::{decode_at, now_unix};
use tutti_bus::auth::{
    self, ACCOUNT_SEED_FILE, ACCOUNT_SIGNING_SEED_FILE, BrokerAuth, ClaimUpdateError, CredsError,
    JwtError, KeyStoreError, OPERATOR_SEED_FILE, SYSTEM_ACCOUNT_SEED_FILE, UserLimits,
    UserPermissions,
};
use tutti_bus::{Auth, BusConfig, BusError, ensure_resources};
use tutti_proto::catalog::{Catalog, CatalogConfig};
use tutti_testkit::{TestAuth, TestNats, TestNatsOptions};

/// Bound on every wait for a positive signal from the broker.
const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn anonymous_and_foreign_clients_are_refused() {
    let nats = operator_broker();
    let info = read_info(nats.port()).await;
    assert_eq!(info["auth_required"], true, "{info}");

    let anonymous = ConnectOptions::new().connect(nats.url()).await;
    assert_refused(anonymous);

    // A user vouched for by an account of another operator.
    let foreign_dir = tempfile::tempdir().unwrap();
    let foreign = BrokerAuth::load_or_create(foreign_dir.path()).unwrap();
    let creds = foreign.mint_user_creds(
        "intruder",
        &UserPermissions::full(),
        &UserLimits::unlimited(),
    );
    assert_refused(connect_with(&nats, &creds).await);
}

#[tokio::test]
async fn a_full_user_of_the_tutti_account_gets_jetstream() {
    let nats = operator_broker();
    let creds = broker_auth(&nats).mint_user_creds(
        "tutti-server",
        &UserPermissions::full(),
        &UserLimits::unlimited(),
    );
    let config = BusConfig {
        auth: Auth::Creds { creds },
        ..BusConfig::for_url(nats.url())
    };
    let bus = tutti_bus::connect(&config)
        .await
        .expect("connect with creds");
    let catalog = Catalog::tutti(&CatalogConfig {
        storage_budget_bytes: 1024 * 1024 * 1024,
        replicas: 1,
    });
    ensure_resources(&bus, &catalog)
        .await
        .expect("the whole catalog bootstraps in the tutti account");

    let jetstream = nats.jetstream().await;
    let stream = jetstream
        .create_stream(async_nats::jetstream::stream::Config {
            name: "PROBE".to_string(),
            subjects: vec!["probe.>".to_string()],
            ..Default::default()
        })
        .await
        .expect("create a stream");
    let ack = jetstream
        .publish("probe.one", "hello".into())
        .await
        .unwrap();
    ack.await.expect("stored");
    let stored = stream.get_raw_message(1).await.expect("read back");
    assert_eq!(&stored.payload[..], b"hello");
}

#[tokio::test]
async fn a_restricted_user_stays_inside_its_subjects() {
    let nats = operator_broker();
    let auth = broker_auth(&nats);
    let observer = nats.client().await;
    let mut a_results = observer.subscribe("tutti.agent.a.>").await.unwrap();
    let mut b_results = observer.subscribe("tutti.agent.b.>").await.unwrap();
    settle(&observer).await;
    let (agent_a, mut a_events) = connect_agent(&nats, auth, "a").await;
    let (agent_b, _b_events) = connect_agent(&nats, auth, "b").await;

    publish(&agent_a, "tutti.agent.a.result", "from a").await;
    assert_eq!(payload(next_message(&mut a_results).await), "from a");

    publish(&agent_a, "tutti.agent.b.result", "forged").await;
    let error = next_server_error(&mut a_events).await;
    assert_eq!(
        error,
        r#"nats: Permissions Violation for Publish to "tutti.agent.b.result""#
    );
    // The broker answered the forged PUB with that error, so it had already dropped it:
    // a message published after it reaching the observer first proves it never will.
    publish(&agent_b, "tutti.agent.b.result", "sentinel").await;
    assert_eq!(payload(next_message(&mut b_results).await), "sentinel");

    for denied in ["tutti.agent.b.>", "_INBOX.>"] {
        let _subscriber = agent_a.subscribe(denied).await.unwrap();
        agent_a.flush().await.unwrap();
        let error = next_server_error(&mut a_events).await;
        let expected = format!(r#"nats: Permissions Violation for Subscription to "{denied}""#);
        assert_eq!(error, expected);
    }

    // Its own inbox works: a request out, the answer back on `_INBOX.a.…`. The answer also
    // proves the broker has the `calls` subscription made before it.
    let mut calls = agent_a.subscribe("_INBOX.a.calls").await.unwrap();
    let responder = answer_requests(&nats, "tutti.agent.a.ping", "pong").await;
    let reply = tokio::time::timeout(WAIT, agent_a.request("tutti.agent.a.ping", "ping".into()))
        .await
        .expect("reply within the bound")
        .expect("request through the custom inbox");
    assert_eq!(payload(reply), "pong");
    responder.abort();

    // allow_responses: one reply to a request it received, on a subject it may not
    // otherwise publish to; a second reply is a violation.
    let call = tokio::spawn(async move { observer.request("_INBOX.a.calls", "call".into()).await });
    let received = next_message(&mut calls).await;
    let reply_to = received
        .reply
        .clone()
        .expect("a request has a reply subject");
    publish(&agent_a, reply_to.as_str(), "answer").await;
    let answer = tokio::time::timeout(WAIT, call)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(payload(answer), "answer");
    publish(&agent_a, reply_to.as_str(), "again").await;
    let error = next_server_error(&mut a_events).await;
    let expected = format!(r#"nats: Permissions Violation for Publish to "{reply_to}""#);
    assert_eq!(error, expected);
}

#[tokio::test]
async fn a_revoked_user_is_disconnected_and_refused() {
    let nats = operator_broker();
    let auth = broker_auth(&nats);
    // The agent's path: the key pair is made locally, only its public key is sent out.
    let agent_key = KeyPair::new_user();
    let agent_jwt = auth
        .user_jwt(
            &agent_key.public_key(),
            "agent-a",
            &agent_permissions("a"),
            &UserLimits::unlimited(),
        )
        .unwrap();
    let creds = auth::creds_for_key_pair(&agent_jwt, &agent_key).unwrap();
    let (agent, mut events) = connect_watched(&nats, &creds, "_INBOX.a").await;
    publish(&agent, "tutti.agent.a.result", "before").await;

    let system = connect_with(&nats, &auth.mint_system_user_creds())
        .await
        .unwrap();
    let revocations = [(agent_key.public_key(), now_unix() as u64)];
    auth::push_account_jwt(&system, &auth.account_jwt(&revocations), WAIT)
        .await
        .expect("the broker takes the update");

    let error = next_server_error(&mut events).await;
    assert_eq!(error, "nats: User Authentication Revoked");
    next_event(&mut events, |event| *event == Event::Disconnected).await;
    assert_refused(connect_with(&nats, &creds).await);
    // Everyone else stays connected and welcome.
    nats.client().await.flush().await.unwrap();
    system.flush().await.unwrap();
}

#[tokio::test]
async fn claim_updates_are_checked_and_only_taken_over_sys() {
    let nats = operator_broker();
    let auth = broker_auth(&nats);
    let system = connect_with(&nats, &auth.mint_system_user_creds())
        .await
        .unwrap();

    let account_jwt = auth.account_jwt(&[]);
    let other_signature = auth.system_account_jwt();
    let tampered = format!(
        "{}.{}",
        account_jwt.rsplit_once('.').unwrap().0,
        other_signature.rsplit_once('.').unwrap().1
    );
    let user_jwt = auth
        .user_jwt(
            &KeyPair::new_user().public_key(),
            "not-an-account",
            &UserPermissions::full(),
            &UserLimits::unlimited(),
        )
        .unwrap();
    for refused_jwt in [tampered, user_jwt] {
        let refused = auth::push_account_jwt(&system, &refused_jwt, WAIT).await;
        assert!(
            matches!(refused, Err(ClaimUpdateError::Refused { .. })),
            "{refused:?}"
        );
    }

    // The broker stores a well-formed account JWT of another operator (only `$SYS` users
    // can send one), but trust is checked when the account is used: its users stay out.
    let foreign_dir = tempfile::tempdir().unwrap();
    let foreign = BrokerAuth::load_or_create(foreign_dir.path()).unwrap();
    auth::push_account_jwt(&system, &foreign.account_jwt(&[]), WAIT)
        .await
        .expect("stored");
    let creds = foreign.mint_user_creds(
        "intruder",
        &UserPermissions::full(),
        &UserLimits::unlimited(),
    );
    assert_refused(connect_with(&nats, &creds).await);

    // A tutti-account user cannot reach the `$SYS` subjects at all.
    let admin = nats.client().await;
    let unanswered = auth::push_account_jwt(&admin, &auth.account_jwt(&[]), WAIT).await;
    assert!(
        matches!(
            unanswered,
            Err(ClaimUpdateError::Bus(BusError::Unavailable(_)))
        ),
        "{unanswered:?}"
    );
}

#[test]
fn a_user_jwt_decodes_to_what_was_issued() {
    let (_dir, auth) = fresh_broker_auth();
    let user_key = KeyPair::new_user();
    let limits = UserLimits {
        subs: Some(10),
        ..UserLimits::unlimited()
    };
    let token = auth
        .user_jwt(
            &user_key.public_key(),
            "agent-a",
            &agent_permissions("a"),
            &limits,
        )
        .unwrap();
    let claims = auth::decode(&token).unwrap();
    assert_eq!(claims.sub, user_key.public_key());
    assert_eq!(claims.iss, auth.account_signing_public_key());
    let Nats::User(user) = claims.nats else {
        panic!("user claims expected: {claims:?}");
    };
    assert_eq!(user.issuer_account, Some(auth.account_public_key()));
    assert_eq!(user.publish.allow, ["tutti.agent.a.>"]);
    assert_eq!(user.subscribe.allow, ["_INBOX.a.>"]);
    assert_eq!(user.resp.map(|resp| resp.max), Some(1));
    assert_eq!((user.subs, user.data, user.payload), (10, -1, -1));
}

#[test]
fn tampered_expired_and_foreign_tokens_are_rejected() {
    let (_dir, auth) = fresh_broker_auth();
    let user_key = KeyPair::new_user();
    let token = auth
        .user_jwt(
            &user_key.public_key(),
            "agent-a",
            &agent_permissions("a"),
            &UserLimits::unlimited(),
        )
        .unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut widened = auth::decode(&token).unwrap();
    if let Nats::User(user) = &mut widened.nats {
        user.publish.allow = vec![">".to_string()];
    }
    let widened_body = BASE64URL_NOPAD.encode(&serde_json::to_vec(&widened).unwrap());
    let other = auth
        .user_jwt(
            &user_key.public_key(),
            "other",
            &UserPermissions::full(),
            &UserLimits::unlimited(),
        )
        .unwrap();
    let other_signature = other.rsplit('.').next().unwrap();
    let header = |json: &str| BASE64URL_NOPAD.encode(json.as_bytes());

    let cases = [
        (
            format!("{}.{}.{}", parts[0], widened_body, parts[2]),
            "BadSignature",
        ),
        (
            format!("{}.{}.{}", parts[0], parts[1], other_signature),
            "BadSignature",
        ),
        (
            format!(
                "{}.{}.{}",
                header(r#"{"typ":"JWT","alg":"ed25519"}"#),
                parts[1],
                parts[2]
            ),
            "UnsupportedHeader",
        ),
        (
            format!(
                "{}.{}.{}",
                header(r#"{"typ":"JWT","alg":"HS256"}"#),
                parts[1],
                parts[2]
            ),
            "UnsupportedHeader",
        ),
        (format!("{}.{}", parts[0], parts[1]), "Malformed"),
        (format!("{token}x"), "Malformed"),
    ];
    for (tampered, expected) in cases {
        check_rejected(&tampered, expected);
    }

    let issuer = KeyPair::new_account();
    let mut expiring = user_claims(&user_key);
    expiring.exp = Some(now_unix() - 10);
    let expired = auth::encode(expiring, &issuer).unwrap();
    check_rejected(&expired, "Expired");
    assert!(
        decode_at(&expired, now_unix() - 20).is_ok(),
        "valid before it expired"
    );

    // Only an account may sign users: the operator's own key may not.
    let operator_signed = auth::encode(user_claims(&user_key), &KeyPair::new_operator());
    assert!(
        matches!(operator_signed, Err(JwtError::InvalidKey(_))),
        "{operator_signed:?}"
    );
}

#[test]
fn creds_join_a_user_jwt_only_with_its_own_key() {
    let (_dir, auth) = fresh_broker_auth();
    let user_key = KeyPair::new_user();
    let token = auth
        .user_jwt(
            &user_key.public_key(),
            "agent-a",
            &UserPermissions::full(),
            &UserLimits::unlimited(),
        )
        .unwrap();
    let creds = auth::creds_for_key_pair(&token, &user_key).unwrap();
    assert!(creds.starts_with(&format!(
        "-----BEGIN NATS USER JWT-----\n{token}\n------END NATS USER JWT------\n"
    )));
    assert!(creds.contains(&format!(
        "-----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        user_key.seed().unwrap()
    )));
    ConnectOptions::with_credentials(&creds).expect("async-nats parses the creds");

    let someone_else = KeyPair::new_user();
    let mismatch = auth::creds_for_key_pair(&token, &someone_else);
    assert!(
        matches!(mismatch, Err(CredsError::WrongSubject { .. })),
        "{mismatch:?}"
    );
    let not_a_user = auth::creds_for_key_pair(&auth.account_jwt(&[]), &user_key);
    assert!(
        matches!(not_a_user, Err(CredsError::NotUser { .. })),
        "{not_a_user:?}"
    );
}

#[test]
fn broker_keys_persist_privately_and_a_corrupt_seed_is_an_error() {
    let (dir, first) = fresh_broker_auth();
    let second = BrokerAuth::load_or_create(dir.path()).unwrap();
    assert_eq!(first.operator_public_key(), second.operator_public_key());
    assert_eq!(
        first.system_account_public_key(),
        second.system_account_public_key()
    );
    assert_eq!(first.account_public_key(), second.account_public_key());
    assert_eq!(
        first.account_signing_public_key(),
        second.account_signing_public_key()
    );
    let debug = format!("{first:?}");
    for file in [
        OPERATOR_SEED_FILE,
        SYSTEM_ACCOUNT_SEED_FILE,
        ACCOUNT_SEED_FILE,
        ACCOUNT_SIGNING_SEED_FILE,
    ] {
        let path = dir.path().join(file);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}");
        let seed = fs::read_to_string(&path).unwrap();
        assert!(!debug.contains(seed.trim()), "Debug shows no seed");
    }

    let account_file = dir.path().join(ACCOUNT_SEED_FILE);
    fs::write(&account_file, "not a seed\n").unwrap();
    let corrupt = BrokerAuth::load_or_create(dir.path()).unwrap_err();
    assert!(
        matches!(&corrupt, KeyStoreError::Corrupt { path, .. } if *path == account_file),
        "{corrupt:?}"
    );
    assert!(corrupt.to_string().contains(ACCOUNT_SEED_FILE), "{corrupt}");
    assert_eq!(
        fs::read_to_string(&account_file).unwrap(),
        "not a seed\n",
        "never replaced"
    );

    // A valid seed of the wrong kind is as wrong as garbage.
    let operator_seed = fs::read_to_string(dir.path().join(OPERATOR_SEED_FILE)).unwrap();
    fs::write(&account_file, operator_seed).unwrap();
    let wrong_kind = BrokerAuth::load_or_create(dir.path()).unwrap_err();
    assert!(
        matches!(wrong_kind, KeyStoreError::Corrupt { .. }),
        "{wrong_kind:?}"
    );
}

fn operator_broker() -> TestNats {
    TestNats::start_with(TestNatsOptions {
        auth: Some(TestAuth::Operator),
        ..TestNatsOptions::default()
    })
}

fn broker_auth(nats: &TestNats) -> &BrokerAuth {
    nats.broker_auth()
        .expect("the broker runs in operator mode")
}

fn fresh_broker_auth() -> (tempfile::TempDir, BrokerAuth) {
    let dir = tempfile::tempdir().unwrap();
    let auth = BrokerAuth::load_or_create(dir.path()).unwrap();
    (dir, auth)
}

/// What an agent may do: publish its own subjects, receive on its own inbox prefix.
fn agent_permissions(agent: &str) -> UserPermissions {
    UserPermissions {
        publish_allow: vec![format!("tutti.agent.{agent}.>")],
        subscribe_allow: vec![format!("_INBOX.{agent}.>")],
        allow_responses: Some(1),
        ..UserPermissions::default()
    }
}

fn user_claims(user_key: &KeyPair) -> Claims {
    let user = User {
        version: CLAIM_VERSION,
        ..User::default()
    };
    Claims::new(user_key.public_key(), "user", Nats::User(user))
}

fn check_rejected(token: &str, expected: &str) {
    let error = auth::decode(token).expect_err("tampered token accepted");
    let actual = format!("{error:?}");
    assert!(
        actual.starts_with(expected),
        "expected {expected}, got {actual} for {token}"
    );
}

async fn connect_with(
    nats: &TestNats,
    creds: &str,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    ConnectOptions::with_credentials(creds)
        .expect("parse creds")
        .connect(nats.url())
        .await
}

fn assert_refused(connected: Result<async_nats::Client, async_nats::ConnectError>) {
    let error = connected.expect_err("the broker let the client in");
    assert_eq!(
        error.kind(),
        ConnectErrorKind::AuthorizationViolation,
        "{error}"
    );
}

async fn connect_agent(
    nats: &TestNats,
    auth: &BrokerAuth,
    agent: &str,
) -> (async_nats::Client, mpsc::UnboundedReceiver<Event>) {
    let name = format!("agent-{agent}");
    let creds = auth.mint_user_creds(&name, &agent_permissions(agent), &UserLimits::unlimited());
    connect_watched(nats, &creds, &format!("_INBOX.{agent}")).await
}

/// A client whose connection events (server errors included) arrive on the receiver.
async fn connect_watched(
    nats: &TestNats,
    creds: &str,
    inbox_prefix: &str,
) -> (async_nats::Client, mpsc::UnboundedReceiver<Event>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let client = ConnectOptions::with_credentials(creds)
        .expect("parse creds")
        .custom_inbox_prefix(inbox_prefix)
        .event_callback(move |event| {
            let sender = sender.clone();
            async move {
                let _ = sender.send(event);
            }
        })
        .connect(nats.url())
        .await
        .expect("connect");
    (client, receiver)
}

/// The next event on this connection that `wanted` accepts, within the bound.
async fn next_event(
    events: &mut mpsc::UnboundedReceiver<Event>,
    wanted: impl Fn(&Event) -> bool,
) -> Event {
    let next = async {
        loop {
            let event = events.recv().await.expect("event channel open");
            if wanted(&event) {
                return event;
            }
        }
    };
    tokio::time::timeout(WAIT, next)
        .await
        .expect("the event within the bound")
}

async fn next_server_error(events: &mut mpsc::UnboundedReceiver<Event>) -> String {
    match next_event(events, |event| matches!(event, Event::ServerError(_))).await {
        Event::ServerError(error) => error.to_string(),
        _ => unreachable!("filtered to server errors"),
    }
}

/// Publishes and flushes the client's socket buffer (async-nats `flush` does not wait for
/// the broker; a server error or a message received is what says the broker acted).
async fn publish(client: &async_nats::Client, subject: &str, payload: &'static str) {
    client
        .publish(subject.to_string(), payload.into())
        .await
        .unwrap();
    client.flush().await.unwrap();
}

async fn next_message(subscriber: &mut async_nats::Subscriber) -> Message {
    tokio::time::timeout(WAIT, subscriber.next())
        .await
        .expect("a message within the bound")
        .expect("subscription open")
}

fn payload(message: Message) -> String {
    String::from_utf8(message.payload.to_vec()).unwrap()
}

/// Answers every request on `subject` with `answer`, from a full-permission client.
async fn answer_requests(
    nats: &TestNats,
    subject: &'static str,
    answer: &'static str,
) -> tokio::task::JoinHandle<()> {
    let client = nats.client().await;
    let mut requests = client.subscribe(subject).await.unwrap();
    settle(&client).await;
    tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            if let Some(reply) = request.reply {
                client.publish(reply, answer.into()).await.unwrap();
            }
        }
    })
}

/// Waits until the broker has processed everything this full-permission client sent before:
/// async-nats `flush` only empties the socket buffer, while a message the client sends to
/// itself comes back only after the broker handled what came before it.
async fn settle(client: &async_nats::Client) {
    let subject = client.new_inbox();
    let mut echo = client.subscribe(subject.clone()).await.unwrap();
    client.publish(subject, "settled".into()).await.unwrap();
    client.flush().await.unwrap();
    next_message(&mut echo).await;
}

/// The broker's first protocol line, `INFO {json}`, as JSON.
async fn read_info(port: u16) -> serde_json::Value {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).await.unwrap();
    let json = line.strip_prefix("INFO ").expect("INFO line");
    serde_json::from_str(json.trim()).unwrap()
}
