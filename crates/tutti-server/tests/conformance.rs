//! The conformance test of per-agent broker identity, the authority behind "an agent only
//! hears what is addressed to it and only speaks as itself" (`docs/protocol.md`, agent
//! permissions). A real `nats-server` in operator mode, the real server issuing each agent
//! a user JWT at enrollment, real agents A and B:
//!
//! - allowed: A takes its commands through its consumer, acks them, publishes results,
//!   events and heartbeats, reads a script from the object store, uploads output to it,
//!   follows `tutti_fleet`, answers an rpc addressed to it;
//! - denied, each seen as the broker's permission error: A subscribing to B's commands,
//!   B's subjects, any inbox but its own; publishing B's result, a `tutti_fleet` key, a
//!   stream delete or purge; deleting B's consumer or creating one named for B; a forged
//!   result for B never reaches the results stream;
//! - an anonymous client, a tampered JWT and a revoked agent cannot connect, and deleting
//!   an agent closes its open connection;
//! - enrollment with a malformed or reused public key, or another server's token, is
//!   refused and stores nothing; a replayed enrollment is refused and changes nothing; the
//!   broker refuses an agent JWT whose claims were altered;
//! - the server's own user (`tutti_bus::server_permissions`) does the control plane's work
//!   (heartbeats, commands, KV, objects, rpc requests) and cannot speak as an agent:
//!   publishing an agent's result, taking or acking its commands, answering its rpc.

mod common;

use std::time::Duration;

use async_nats::{ConnectOptions, Event};
use futures::StreamExt;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::mpsc;
use tutti_bus::Auth;
use tutti_proto::catalog::{CATALOG_BUCKET, COMMANDS_STREAM, RESULTS_STREAM, SCRIPTS_STORE};
use tutti_proto::subjects;
use tutti_testkit::{TestAgent, TestAuth, TestNats, TestNatsOptions, TestServer};

const WAIT: Duration = Duration::from_secs(20);

/// A broker in operator mode and a server issuing identities from the same keys.
async fn secure_system(keys: &TempDir) -> (TestNats, TestServer) {
    let nats = TestNats::start_with(TestNatsOptions {
        auth: Some(TestAuth::OperatorWithKeys(keys.path().to_path_buf())),
        ..TestNatsOptions::default()
    });
    let keys_dir = keys.path().to_path_buf();
    let server = TestServer::start_with(&nats, move |config| {
        config.broker_identity.keys_dir = Some(keys_dir);
    })
    .await;
    (nats, server)
}

/// A raw client connected with one user's creds and inbox prefix, and the server errors
/// (permission violations) the broker sends it.
struct AsUser {
    client: async_nats::Client,
    errors: mpsc::UnboundedReceiver<String>,
    closed: mpsc::UnboundedReceiver<()>,
}

impl AsUser {
    /// Connected as `agent`, with the agent's own inbox prefix.
    async fn agent(nats: &TestNats, agent: &TestAgent) -> AsUser {
        let inbox_prefix = subjects::agent_inbox_prefix(agent.agent_id());
        AsUser::connect(nats, agent_options(agent), inbox_prefix).await
    }

    /// Connected as the server connects: a user with the server's role
    /// (`BrokerIdentity::server_bus_config`) and the server's inbox prefix.
    async fn server(nats: &TestNats, server: &TestServer) -> AsUser {
        let identity = server.app().broker_identity.as_ref();
        let config = identity.expect("broker identity").server_bus_config();
        let Auth::Creds { creds } = &config.auth else {
            panic!("the server connects without creds: {:?}", config.auth);
        };
        let options = ConnectOptions::with_credentials(creds).expect("the server's creds parse");
        let inbox_prefix = config
            .inbox_prefix
            .clone()
            .expect("the server's inbox prefix");
        assert_eq!(inbox_prefix, subjects::server_inbox_prefix());
        AsUser::connect(nats, options, inbox_prefix).await
    }

    async fn connect(nats: &TestNats, options: ConnectOptions, inbox_prefix: String) -> AsUser {
        let (error_tx, errors) = mpsc::unbounded_channel();
        let (closed_tx, closed) = mpsc::unbounded_channel();
        let options = options
            .custom_inbox_prefix(inbox_prefix)
            .event_callback(move |event| {
                let (error_tx, closed_tx) = (error_tx.clone(), closed_tx.clone());
                async move {
                    match event {
                        Event::ServerError(err) => {
                            let _ = error_tx.send(err.to_string());
                        }
                        Event::Closed | Event::Disconnected => {
                            let _ = closed_tx.send(());
                        }
                        _ => {}
                    }
                }
            });
        let client = options
            .connect(nats.url())
            .await
            .expect("connect as the user");
        AsUser {
            client,
            errors,
            closed,
        }
    }

    /// Waits for the broker's permission error naming `subject`.
    async fn expect_denied(&mut self, subject: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let error = tokio::time::timeout_at(deadline, self.errors.recv())
                .await
                .unwrap_or_else(|_| panic!("no permission error for {subject}"))
                .expect("event channel");
            let lower = error.to_lowercase();
            if lower.contains("permissions violation") && error.contains(subject) {
                return;
            }
        }
    }
}

fn agent_options(agent: &TestAgent) -> ConnectOptions {
    match &agent.identity().nats_auth {
        Auth::Creds { creds } => {
            ConnectOptions::with_credentials(creds).expect("the agent's creds parse")
        }
        other => panic!("the agent got no broker identity: {other:?}"),
    }
}

fn creds_of(agent: &TestAgent) -> String {
    match &agent.identity().nats_auth {
        Auth::Creds { creds } => creds.clone(),
        other => panic!("the agent got no broker identity: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_each_agent_touches_only_its_own_subjects() {
    let keys = TempDir::new().unwrap();
    let (nats, server) = secure_system(&keys).await;
    let mut a = TestAgent::spawn(&server, "agent-a").await;
    let mut b = TestAgent::spawn(&server, "agent-b").await;

    // Allowed: the whole life of a command, on both agents, under their own identities.
    // Output beyond the inline limit: each agent uploads it to the output object store.
    let script = "echo conformance; head -c 400000 /dev/zero | tr '\\0' 'a'";
    let run_id = common::create_run(
        &server,
        json!({ "script": {"shell": "sh", "script": script, "output_limit_bytes": 1_000_000},
                "targets": {"all": true} }),
    )
    .await;
    let view = common::wait_run_done(&server, &run_id).await;
    assert_eq!(
        common::target_states(&view),
        [
            ("agent-a".to_string(), "succeeded".to_string()),
            ("agent-b".to_string(), "succeeded".to_string())
        ]
    );
    common::wait_online(&server, &["agent-a", "agent-b"]).await;
    for agent in ["agent-a", "agent-b"] {
        let detail: Value = server
            .get(&format!("/api/v1/runs/{run_id}/results/{agent}"))
            .await;
        let object = &detail["result"]["stdout"]["object"];
        let size = object["size"].as_u64().unwrap_or(0);
        assert!(size > 400_000, "{agent} uploaded its output: {object}");
    }
    // A script kept in the object store is read by the agent under its own identity.
    let script_text = b"echo from-the-object-store\n";
    let scripts = nats
        .jetstream()
        .await
        .get_object_store(tutti_proto::catalog::SCRIPTS_STORE)
        .await
        .unwrap();
    scripts
        .put("conformance.sh", &mut &script_text[..])
        .await
        .unwrap();
    let sha256 = tutti_proto::digest::sha256_hex(script_text);
    let object_run = common::create_run(
        &server,
        json!({ "script": {"shell": "sh", "script_object":
                    {"name": "conformance.sh", "size": script_text.len(), "sha256": sha256}},
                "targets": {"agents": ["agent-a"]} }),
    )
    .await;
    let view = common::wait_run_done(&server, &object_run).await;
    assert_eq!(common::state_of(&view, "agent-a"), "succeeded", "{view:#}");
    // An rpc addressed to A is answered (allow_responses, no publish rights on inboxes).
    let admin = nats.client().await;
    let reply = tokio::time::timeout(WAIT, admin.request("tutti.rpc.agent-a.ping", "".into()))
        .await
        .expect("ping in time")
        .expect("A answers its rpc");
    assert!(!reply.payload.is_empty());
    // Everything the real agents did stayed inside their permissions: the broker logged no
    // violation (it logs each one), so the table in `agent_permissions` is complete for
    // these paths.
    assert!(
        !nats.log().contains("Violation"),
        "a real agent hit its permissions:\n{}",
        nats.log()
    );

    // Denied, each with the broker's own permission error.
    let mut as_a = AsUser::agent(&nats, &a).await;
    for subject in [
        "tutti.cmd.agent.agent-b",
        "tutti.agent.agent-b.>",
        "_INBOX.>",
        "_INBOX.agent-b.>",
    ] {
        let _subscription = as_a.client.subscribe(subject).await.unwrap();
        as_a.expect_denied(subject).await;
    }
    let forged = json!({ "result_id": format!("{run_id}:agent-b") }).to_string();
    for subject in [
        "tutti.agent.agent-b.result".to_string(),
        "$KV.tutti_fleet.groups.agent-a".to_string(),
        format!("$JS.API.STREAM.DELETE.{RESULTS_STREAM}"),
        format!("$JS.API.STREAM.PURGE.{RESULTS_STREAM}"),
        format!("$JS.API.CONSUMER.DELETE.{COMMANDS_STREAM}.cmd-agent-b"),
        format!("$JS.API.CONSUMER.CREATE.{COMMANDS_STREAM}.cmd-agent-b"),
    ] {
        as_a.client
            .publish(subject.clone(), forged.clone().into())
            .await
            .unwrap();
        as_a.client.flush().await.unwrap();
        as_a.expect_denied(&subject).await;
    }
    // The broker does log violations, so their absence above meant something.
    assert!(nats.log().contains("Violation"), "{}", nats.log());
    // The forged result never reached the stream: B's subject holds its one real result.
    let js = nats.jetstream().await;
    let results = js.get_stream(RESULTS_STREAM).await.unwrap();
    let info = results
        .info_with_subjects("tutti.agent.agent-b.result")
        .await
        .unwrap()
        .next()
        .await
        .expect("B's subject is in the stream")
        .unwrap();
    assert_eq!(info.1, 1, "only B's own result: {info:?}");

    // An anonymous client and a tampered JWT cannot connect.
    let anonymous = ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(nats.url())
        .await;
    assert!(anonymous.is_err(), "an anonymous client connected");
    let tampered = creds_of(&b).replacen("eyJ", "eyK", 2);
    let forged_login = ConnectOptions::with_credentials(&tampered)
        .map(|options| options.connection_timeout(Duration::from_secs(5)));
    if let Ok(options) = forged_login {
        assert!(
            options.connect(nats.url()).await.is_err(),
            "a tampered JWT connected"
        );
    }

    // Revocation: deleting A closes its open connection and refuses the next one.
    let response = server
        .http()
        .delete(format!("{}/api/v1/agents/agent-a", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204, "{}", response.text().await.unwrap());
    tokio::time::timeout(WAIT, as_a.closed.recv())
        .await
        .expect("the broker closed the revoked agent's connection");
    let again = agent_options(&a)
        .connection_timeout(Duration::from_secs(5))
        .connect(nats.url())
        .await;
    assert!(again.is_err(), "a revoked agent connected again");
    let audit: Value = server
        .get("/api/v1/audit?action=agent.broker_identity.revoke")
        .await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(1), "{audit}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_server_role_does_its_work_and_cannot_speak_as_an_agent() {
    let keys = TempDir::new().unwrap();
    let (nats, server) = secure_system(&keys).await;
    let mut agent = TestAgent::enroll(&server, "agent-s").await;
    let mut as_server = AsUser::server(&nats, &server).await;

    // Allowed: hearing heartbeats (the agent beats once as it starts), publishing a command
    // into the stream, writing KV and the object store, an rpc request to an agent.
    let mut heartbeats = as_server
        .client
        .subscribe(subjects::all_heartbeats())
        .await
        .unwrap();
    as_server.client.flush().await.unwrap();
    agent.start();
    let heartbeat = tokio::time::timeout(WAIT, heartbeats.next())
        .await
        .expect("a heartbeat in time")
        .expect("subscription open");
    assert_eq!(heartbeat.subject.as_str(), "tutti.agent.agent-s.heartbeat");
    let js = async_nats::jetstream::new(as_server.client.clone());
    let ack = js
        .publish("tutti.cmd.agent.nobody-1", "not a command".into())
        .await
        .expect("publish a command")
        .await
        .expect("the commands stream acknowledges");
    assert_eq!(ack.stream, COMMANDS_STREAM);
    let catalog = js.get_key_value(CATALOG_BUCKET).await.unwrap();
    catalog.put("conformance", "server".into()).await.unwrap();
    let value = catalog.get("conformance").await.unwrap();
    assert_eq!(value.as_deref(), Some(&b"server"[..]));
    let scripts = js.get_object_store(SCRIPTS_STORE).await.unwrap();
    scripts
        .put("from-the-server.sh", &mut &b"echo hi\n"[..])
        .await
        .unwrap();
    let ping = as_server
        .client
        .request("tutti.rpc.agent-s.ping", "".into());
    let reply = tokio::time::timeout(WAIT, ping)
        .await
        .expect("ping in time")
        .expect("the agent answers the server's rpc");
    assert!(!reply.payload.is_empty());
    // Neither the real server (enrollment, projectors, fleet state) nor the calls above
    // went outside the role: the broker logs every violation.
    assert!(
        !nats.log().contains("Violation"),
        "the server's role refused something it needs:\n{}",
        nats.log()
    );

    // Denied, each with the broker's own permission error: speaking as the agent.
    for subject in [
        "tutti.agent.agent-s.result".to_string(),
        "tutti.agent.agent-s.heartbeat".to_string(),
        format!("$JS.API.CONSUMER.CREATE.{COMMANDS_STREAM}.cmd-agent-s"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{COMMANDS_STREAM}.cmd-agent-s"),
        format!("$JS.ACK.{COMMANDS_STREAM}.cmd-agent-s.1.1.1.1.1.0"),
        "_INBOX.agent-s.forged".to_string(),
    ] {
        as_server
            .client
            .publish(subject.clone(), "{}".into())
            .await
            .unwrap();
        as_server.client.flush().await.unwrap();
        as_server.expect_denied(&subject).await;
    }
    for subject in [
        "tutti.rpc.agent-s.*",
        "tutti.rpc.>",
        "tutti.cmd.agent.agent-s",
        "_INBOX.agent-s.>",
    ] {
        let _subscription = as_server.client.subscribe(subject).await.unwrap();
        as_server.expect_denied(subject).await;
    }
    // The forged result never reached the stream: the agent has run nothing.
    let results = nats
        .jetstream()
        .await
        .get_stream(RESULTS_STREAM)
        .await
        .unwrap();
    let forged = results
        .info_with_subjects("tutti.agent.agent-s.result")
        .await
        .unwrap()
        .next()
        .await;
    assert!(forged.is_none(), "a result reached the stream: {forged:?}");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_enrollment_refuses_malformed_and_reused_keys() {
    let keys = TempDir::new().unwrap();
    let (_nats, server) = secure_system(&keys).await;
    let token = server.enrollment_token().await;
    let agent = TestAgent::enroll_with_token(&server, "first-1", &token).await;
    let first_key = agent.identity().nats_auth.clone();
    assert!(matches!(first_key, Auth::Creds { .. }));
    let public_key = identity_key(&server, "first-1").await;

    let enroll = |requested_id: &str, key: Option<&str>| {
        json!({
            "token": token, "hostname": requested_id, "requested_id": requested_id,
            "nats_public_key": key,
        })
    };
    for (id, body, status) in [
        ("bad-1", enroll("bad-1", Some("not-a-key")), 400),
        ("bad-2", enroll("bad-2", Some(&public_key)), 409),
        ("bad-3", enroll("bad-3", None), 400),
    ] {
        let response = reqwest::Client::new()
            .post(format!("{}/api/v1/enroll", server.url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            status,
            "{id}: {}",
            response.text().await.unwrap()
        );
        let (found, _) = server.try_get(&format!("/api/v1/agents/{id}")).await;
        assert_eq!(found, 404, "{id} was stored");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_enrollment_refuses_a_token_from_another_server() {
    let keys = TempDir::new().unwrap();
    let (_nats, server) = secure_system(&keys).await;
    // Another deployment: its own broker, its own data directory and tokens.
    let other_nats = TestNats::start();
    let other = TestServer::start(&other_nats).await;
    let foreign_token = other.enrollment_token().await;
    let public_key = nkeys::KeyPair::new_user().public_key();
    let body = enroll_body(&foreign_token, "stranger-1", &public_key);

    let (status, error) = post_enroll(&server, &body).await;
    assert_eq!(status, 401, "{error}");
    assert_eq!(error["error"], "unauthorized", "{error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("enrollment token is invalid"), "{error}");
    let (found, _) = server.try_get("/api/v1/agents/stranger-1").await;
    assert_eq!(found, 404, "the agent was stored");
    let agent_id = tutti_proto::AgentId::parse("stranger-1").unwrap();
    let identities = server.app().store.broker_identities_of(&agent_id).await;
    assert_eq!(identities.unwrap(), [], "a broker identity was stored");
    // The key was not recorded either: with this server's own token it is still free.
    let token = server.enrollment_token().await;
    let (status, answer) =
        post_enroll(&server, &enroll_body(&token, "stranger-1", &public_key)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(identity_key(&server, "stranger-1").await, public_key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_enrollment_refuses_a_replayed_request() {
    let keys = TempDir::new().unwrap();
    let (nats, server) = secure_system(&keys).await;
    let token = server.enrollment_token().await;
    let key_pair = nkeys::KeyPair::new_user();
    let body = enroll_body(&token, "replay-1", &key_pair.public_key());
    let (status, first) = post_enroll(&server, &body).await;
    assert_eq!(status, 200, "{first}");
    let before: Value = server.get("/api/v1/agents/replay-1").await;
    assert_eq!(
        before["broker_identities"].as_array().map(Vec::len),
        Some(1)
    );

    // The exact same request again: refused, and the identity issued first stays as it was.
    let (status, error) = post_enroll(&server, &body).await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(error["error"], "conflict", "{error}");
    let after: Value = server.get("/api/v1/agents/replay-1").await;
    assert_eq!(after["broker_identities"], before["broker_identities"]);
    // The broker still takes the first answer's JWT: nothing was revoked or reissued.
    let user_jwt = first["nats_user_jwt"].as_str().expect("a user JWT");
    let creds = tutti_bus::auth::creds(user_jwt, &key_pair.seed().unwrap());
    let options = ConnectOptions::with_credentials(&creds).unwrap();
    let client = options.connect(nats.url()).await;
    assert!(
        client.is_ok(),
        "the first identity stopped working: {client:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_broker_refuses_a_tampered_agent_jwt() {
    let keys = TempDir::new().unwrap();
    let (nats, server) = secure_system(&keys).await;
    let agent = TestAgent::enroll(&server, "tamper-1").await;
    let creds = creds_of(&agent);
    let user_jwt = creds
        .lines()
        .skip_while(|line| !line.contains("BEGIN NATS USER JWT"))
        .nth(1)
        .expect("a JWT in the creds")
        .to_string();
    // The untouched creds connect, so a refusal below is the tampering's doing.
    let genuine = ConnectOptions::with_credentials(&creds).unwrap();
    assert!(genuine.connect(nats.url()).await.is_ok());

    for (what, tampered) in [
        ("widened permissions", widen_permissions(&user_jwt)),
        ("one character flipped", flip_payload_character(&user_jwt)),
    ] {
        assert_ne!(tampered, user_jwt);
        let forged = creds.replace(&user_jwt, &tampered);
        let options = ConnectOptions::with_credentials(&forged)
            .unwrap()
            .connection_timeout(Duration::from_secs(5));
        let refused = options
            .connect(nats.url())
            .await
            .expect_err(&format!("a JWT with {what} connected"));
        assert_eq!(
            refused.kind(),
            async_nats::ConnectErrorKind::AuthorizationViolation,
            "{what}: {refused}"
        );
    }
}

/// The JWT with its claims granting publish and subscribe on everything, header and
/// signature kept.
fn widen_permissions(user_jwt: &str) -> String {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let [header, payload, signature]: [&str; 3] = user_jwt
        .split('.')
        .collect::<Vec<_>>()
        .try_into()
        .expect("three JWT parts");
    let mut claims: Value = serde_json::from_slice(&engine.decode(payload).unwrap()).unwrap();
    claims["nats"]["pub"] = json!({ "allow": [">"] });
    claims["nats"]["sub"] = json!({ "allow": [">"] });
    let payload = engine.encode(serde_json::to_vec(&claims).unwrap());
    format!("{header}.{payload}.{signature}")
}

/// The JWT with one character of its claims changed, signature kept.
fn flip_payload_character(user_jwt: &str) -> String {
    let payload_start = user_jwt.find('.').expect("a JWT") + 1;
    let mut bytes = user_jwt.as_bytes().to_vec();
    let index = payload_start + 20;
    bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

/// An enrollment request as an agent sends it.
fn enroll_body(token: &str, agent: &str, public_key: &str) -> Value {
    json!({
        "token": token, "hostname": format!("{agent}.test"), "requested_id": agent,
        "nats_public_key": public_key,
    })
}

/// POSTs an enrollment request; the status and the JSON answer.
async fn post_enroll(server: &TestServer, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/enroll", server.url()))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The public key recorded for an agent (the dashboard's agent page shows it).
async fn identity_key(server: &TestServer, agent: &str) -> String {
    let detail: Value = server.get(&format!("/api/v1/agents/{agent}")).await;
    detail["broker_identities"][0]["public_key"]
        .as_str()
        .unwrap_or_else(|| panic!("no broker identity on the agent: {detail:#}"))
        .to_string()
}
