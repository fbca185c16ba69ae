//! Sign-in stories against a real server over HTTP: the first admin's forced password
//! change, CSRF on browser sessions, throttling, disabling, "log out everywhere", TOTP with
//! recovery codes, expired and foreign credentials, and the audit trail they leave — with
//! every secret kept out of logs and audit records.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};
use tutti_proto::role::Role;
use tutti_server::auth::{Auth, totp};
use tutti_server::config::AuthConfig;
use tutti_store::NewApiToken;
use tutti_testkit::{TestNats, TestServer, client_with_token};

const PASSWORD: &str = "correct horse battery staple";

/// A browser: the session cookie and CSRF token from a sign-in.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

impl Browser {
    async fn sign_in(
        server: &TestServer,
        username: &str,
        password: &str,
        code: Option<&str>,
    ) -> Result<Browser, (u16, Value)> {
        let http = reqwest::Client::new();
        let response = http
            .post(format!("{}/api/v1/auth/login", server.url()))
            .json(&json!({"username": username, "password": password, "code": code}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let cookie = response
            .headers()
            .get(SET_COOKIE)
            .map(|value| value.to_str().unwrap().to_string());
        let body: Value = response.json().await.unwrap_or_default();
        if status != 200 {
            return Err((status, body));
        }
        let cookie = cookie.expect("a session cookie");
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        let cookie = cookie.split(';').next().unwrap().to_string();
        Ok(Browser {
            http,
            base: server.url(),
            cookie,
            csrf: body["csrf_token"].as_str().unwrap().to_string(),
        })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        csrf: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(
            reqwest::Method::POST,
            path,
            Some(body),
            Some(&self.csrf.clone()),
        )
        .await
    }
}

async fn create_account(server: &TestServer, username: &str, role: Role) {
    let _: Value = server
        .post(
            "/api/v1/accounts",
            &json!({"username": username, "role": role, "password": "initial password 1"}),
        )
        .await;
    let browser = Browser::sign_in(server, username, "initial password 1", None)
        .await
        .unwrap();
    let (status, body) = browser
        .post(
            "/api/v1/auth/password",
            json!({"current_password": "initial password 1", "new_password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
}

/// Waits until the audit projection shows an entry matching `query`.
async fn wait_audit(server: &TestServer, query: &str) -> Vec<Value> {
    server
        .wait_for(&format!("/api/v1/audit?{query}"), query, |page| {
            page["total"].as_u64() > Some(0)
        })
        .await["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_admin_must_change_the_generated_password_through_a_csrf_checked_form() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let path = server
        .data_dir()
        .join(tutti_server::auth::INITIAL_PASSWORD_FILE);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let initial = server.initial_admin_password();
    assert_eq!(initial.len(), 20);

    let browser = Browser::sign_in(&server, "admin", &initial, None)
        .await
        .unwrap();
    let (status, me) = browser.get("/api/v1/auth/me").await;
    assert_eq!(
        (status, me["required_action"].as_str()),
        (200, Some("change_password"))
    );
    let (status, body) = browser.get("/api/v1/runs").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("change your password first")
    );

    let change = json!({"current_password": initial, "new_password": PASSWORD});
    let (status, body) = browser
        .send(
            reqwest::Method::POST,
            "/api/v1/auth/password",
            Some(change.clone()),
            None,
        )
        .await;
    assert_eq!(
        status, 403,
        "a form post without the CSRF token is refused: {body}"
    );
    assert!(body["message"].as_str().unwrap().contains("CSRF"));
    let (status, _) = browser
        .send(
            reqwest::Method::POST,
            "/api/v1/auth/password",
            Some(change.clone()),
            Some("0".repeat(64).as_str()),
        )
        .await;
    assert_eq!(status, 403, "a wrong CSRF token is refused");
    let weak = json!({"current_password": initial, "new_password": "short"});
    let (status, body) = browser.post("/api/v1/auth/password", weak).await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("at least 12"),
        "{body}"
    );
    let (status, _) = browser.post("/api/v1/auth/password", change).await;
    assert_eq!(status, 204);

    let (status, _) = browser.get("/api/v1/runs").await;
    assert_eq!(status, 200, "the session that changed the password goes on");
    assert!(
        Browser::sign_in(&server, "admin", &initial, None)
            .await
            .is_err(),
        "the old password is dead"
    );
    Browser::sign_in(&server, "admin", PASSWORD, None)
        .await
        .unwrap();

    // Log out ends the session; the cookie is worthless afterwards.
    let (status, _) = browser.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!(status, 204);
    assert_eq!(browser.get("/api/v1/runs").await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_hit_the_throttle_and_unknown_users_look_the_same() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    create_account(&server, "alice", Role::Operator).await;

    let (status, unknown) = Browser::sign_in(&server, "nobody", "whatever it is", None)
        .await
        .err()
        .unwrap();
    let (status_wrong, wrong) = Browser::sign_in(&server, "alice", "not the password", None)
        .await
        .err()
        .unwrap();
    assert_eq!((status, status_wrong), (401, 401));
    assert_eq!(
        unknown, wrong,
        "the same answer for an unknown user and a wrong password"
    );

    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            Browser::sign_in(&server, "alice", "not the password", None)
                .await
                .err()
                .unwrap()
                .0,
        );
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 429, 429, 429],
        "the fifth failure locks the account"
    );
    let (status, body) = Browser::sign_in(&server, "alice", PASSWORD, None)
        .await
        .err()
        .unwrap();
    assert_eq!(
        status, 429,
        "locked out even with the right password: {body}"
    );
    assert!(body["message"].as_str().unwrap().contains("try again in"));

    let entries = server
        .wait_for(
            "/api/v1/audit?action=auth.login&actor=alice",
            "9 login records",
            |page| page["total"] == 9,
        )
        .await;
    let outcomes: Vec<&str> = entries["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["record"]["outcome"].as_str().unwrap())
        .collect();
    let count = |outcome| outcomes.iter().filter(|o| **o == outcome).count();
    assert_eq!(
        (count("succeeded"), count("failed"), count("denied")),
        (1, 5, 3),
        "{outcomes:?}"
    );
    assert!(
        entries["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|entry| entry["record"]["source"] == "127.0.0.1"),
        "{entries:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_account_is_refused_at_once_and_log_out_everywhere_ends_every_session() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    create_account(&server, "bob", Role::Operator).await;
    let laptop = Browser::sign_in(&server, "bob", PASSWORD, None)
        .await
        .unwrap();
    let phone = Browser::sign_in(&server, "bob", PASSWORD, None)
        .await
        .unwrap();
    assert_eq!(phone.get("/api/v1/agents").await.0, 200);
    let (status, body) = laptop.post("/api/v1/auth/logout-all", json!({})).await;
    assert_eq!(
        (status, body["sessions_ended"].as_u64()),
        (200, Some(3)),
        "{body}"
    );
    assert_eq!(phone.get("/api/v1/agents").await.0, 401);

    let session = Browser::sign_in(&server, "bob", PASSWORD, None)
        .await
        .unwrap();
    let issued: Value = {
        let (status, body) = session
            .post(
                "/api/v1/tokens",
                json!({"name": "ci", "expires_in_days": 7}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    };
    let token_client = client_with_token(issued["token"].as_str().unwrap());
    let _: Value = patch(&server, "/api/v1/accounts/bob", json!({"disabled": true})).await;
    assert_eq!(
        session.get("/api/v1/agents").await.0,
        401,
        "the live session dies at once"
    );
    let response = token_client
        .get(format!("{}/api/v1/agents", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        401,
        "so do the account's tokens"
    );
    let (status, _) = Browser::sign_in(&server, "bob", PASSWORD, None)
        .await
        .err()
        .unwrap();
    assert_eq!(status, 401);

    let _: Value = patch(&server, "/api/v1/accounts/bob", json!({"disabled": false})).await;
    Browser::sign_in(&server, "bob", PASSWORD, None)
        .await
        .unwrap();
    let updates = wait_audit(&server, "action=account.update&target=account/bob").await;
    assert_eq!(updates.len(), 2);
    assert_eq!(updates[0]["record"]["actor"], "admin/testkit");
}

async fn patch(server: &TestServer, path: &str, body: Value) -> Value {
    let response = server
        .http()
        .patch(format!("{}{path}", server.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "PATCH {path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_needs_a_live_code_and_recovery_codes_work_once() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    create_account(&server, "carol", Role::Admin).await;
    let browser = Browser::sign_in(&server, "carol", PASSWORD, None)
        .await
        .unwrap();
    let (status, setup) = browser.post("/api/v1/auth/mfa/setup", json!({})).await;
    assert_eq!(status, 200, "{setup}");
    let secret = setup["secret"].as_str().unwrap().to_string();
    assert!(
        setup["otpauth_url"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/tutti:carol?secret=")
    );
    let (status, _) = browser
        .post("/api/v1/auth/mfa/confirm", json!({"code": "000000"}))
        .await;
    assert_eq!(status, 403, "enrolment needs a live code");
    let (status, confirmed) = browser
        .post(
            "/api/v1/auth/mfa/confirm",
            json!({"code": code_now(&secret)}),
        )
        .await;
    assert_eq!(status, 200, "{confirmed}");
    let recovery: Vec<String> =
        serde_json::from_value(confirmed["recovery_codes"].clone()).unwrap();
    assert_eq!(recovery.len(), 10);

    let (status, body) = Browser::sign_in(&server, "carol", PASSWORD, None)
        .await
        .err()
        .unwrap();
    assert_eq!(status, 401);
    assert!(body["message"].as_str().unwrap().contains("code"), "{body}");
    let (status, _) = Browser::sign_in(&server, "carol", PASSWORD, Some("123456"))
        .await
        .err()
        .unwrap();
    assert_eq!(status, 401, "a wrong code is refused");
    Browser::sign_in(
        &server,
        "carol",
        PASSWORD,
        Some(&recovery[0].to_uppercase()),
    )
    .await
    .unwrap();
    let (status, _) = Browser::sign_in(&server, "carol", PASSWORD, Some(&recovery[0]))
        .await
        .err()
        .unwrap();
    assert_eq!(status, 401, "a recovery code works once");
    Browser::sign_in(&server, "carol", PASSWORD, Some(&recovery[1]))
        .await
        .unwrap();

    // The CLI's sign-in asks for the same second factor.
    let (status, _) =
        token_login(&server, json!({"username": "carol", "password": PASSWORD})).await;
    assert_eq!(status, 401);
    let body = json!({"username": "carol", "password": PASSWORD, "code": recovery[2], "token_name": "laptop"});
    let (status, issued) = token_login(&server, body).await;
    assert_eq!(status, 201);
    assert_eq!(issued["role"], "admin");
    assert!(
        issued["expires_at"].is_string(),
        "CLI tokens expire by default"
    );
}

/// `POST /api/v1/auth/token` without credentials: status and body.
async fn token_login(server: &TestServer, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/token", server.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

fn code_now(secret: &str) -> String {
    let key = data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .unwrap();
    let now = u64::try_from(jiff::Timestamp::now().as_second()).unwrap();
    totp::format_code(totp::code_at_step(&key, totp::step_of(now)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_cookies_expired_tokens_and_low_roles_are_refused() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let http = reqwest::Client::new();
    let url = server.url();

    // A cookie minted with another server's session key, even for a session id that might
    // exist.
    let foreign = Auth::new(&AuthConfig::default(), &[7; 32]);
    let (cookie, _) = foreign.new_session();
    let response = http
        .get(format!("{url}/api/v1/agents"))
        .header(COOKIE, format!("tutti_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);

    // A token past its expiry.
    let secret = "tutti_expired-token-for-the-test";
    let past = Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_secs(60))
        .unwrap();
    server
        .app()
        .store
        .create_api_token(NewApiToken {
            token_id: "expired".into(),
            token_hash: tutti_server::auth::secret::hash(secret),
            name: "old".into(),
            username: "admin".into(),
            role: Role::Admin,
            created_at: past,
            expires_at: Some(past),
        })
        .await
        .unwrap();
    let response = client_with_token(secret)
        .get(format!("{url}/api/v1/agents"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let response = http
        .get(format!("{url}/api/v1/agents"))
        .header("authorization", "Basic YWRtaW46YWRtaW4=")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        401,
        "only bearer tokens are accepted"
    );

    // A viewer's token cannot create a run, nor mint itself a stronger token; the refusal
    // is audited.
    create_account(&server, "dave", Role::Viewer).await;
    let session = Browser::sign_in(&server, "dave", PASSWORD, None)
        .await
        .unwrap();
    let (status, body) = session
        .post("/api/v1/tokens", json!({"name": "x", "role": "operator"}))
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, issued) = session
        .post("/api/v1/tokens", json!({"name": "readonly"}))
        .await;
    assert_eq!((status, issued["role"].as_str()), (201, Some("viewer")));
    let viewer = client_with_token(issued["token"].as_str().unwrap());
    let response = viewer
        .post(format!("{url}/api/v1/runs"))
        .json(&json!({"script": {"script": "id"}, "targets": {"all": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let denied = wait_audit(&server, "action=access.denied&actor=dave/readonly").await;
    assert_eq!(denied[0]["record"]["outcome"], "denied");
    assert_eq!(denied[0]["record"]["target"], "route/POST /api/v1/runs");
    assert_eq!(denied[0]["record"]["role"], "viewer");

    // An allowed action that fails is audited too.
    let response = server
        .http()
        .post(format!("{url}/api/v1/runs/01J00000000000000000000000/kill"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let failed = wait_audit(&server, "action=request.failed&actor=admin/testkit").await;
    assert_eq!(failed[0]["record"]["outcome"], "failed");
    assert_eq!(failed[0]["record"]["summary"]["status"], 404);
    assert_eq!(
        failed[0]["record"]["target"],
        "route/POST /api/v1/runs/{run_id}/kill"
    );

    // Revoked: refused from the next request on; the list shows when.
    let token_id = issued["token_id"].as_str().unwrap();
    let (status, _) = session
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/tokens/{token_id}"),
            None,
            Some(&session.csrf.clone()),
        )
        .await;
    assert_eq!(status, 204);
    let response = viewer
        .get(format!("{url}/api/v1/agents"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let (_, tokens) = session.get("/api/v1/tokens").await;
    assert!(tokens["items"][0]["revoked_at"].is_string(), "{tokens}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_ends() {
    let nats = TestNats::start();
    let server = TestServer::start_with(&nats, |config| config.auth.session_idle_secs = 1).await;
    create_account(&server, "erin", Role::Viewer).await;
    let browser = Browser::sign_in(&server, "erin", PASSWORD, None)
        .await
        .unwrap();
    assert_eq!(browser.get("/api/v1/agents").await.0, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(browser.get("/api/v1/agents").await.0, 401);
}

/// Everything the server logs, at every level, for the secrets test.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_logs_audit_records_or_debug_output() {
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .try_init();
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let initial = server.initial_admin_password();
    let mut secrets = vec![
        initial.clone(),
        server.admin_token().to_string(),
        PASSWORD.to_string(),
    ];

    let browser = Browser::sign_in(&server, "admin", &initial, None)
        .await
        .unwrap();
    secrets.push(browser.cookie.split_once('=').unwrap().1.to_string());
    secrets.push(browser.csrf.clone());
    let (status, _) = browser
        .post(
            "/api/v1/auth/password",
            json!({"current_password": initial, "new_password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 204);
    let _ = Browser::sign_in(&server, "admin", "a wrong password here", None).await;
    let (_, setup) = browser.post("/api/v1/auth/mfa/setup", json!({})).await;
    let totp_secret = setup["secret"].as_str().unwrap().to_string();
    let code = code_now(&totp_secret);
    let (_, confirmed) = browser
        .post("/api/v1/auth/mfa/confirm", json!({"code": code}))
        .await;
    let recovery: Vec<String> =
        serde_json::from_value(confirmed["recovery_codes"].clone()).unwrap();
    let (status, issued) = browser
        .post("/api/v1/tokens", json!({"name": "automation"}))
        .await;
    assert_eq!(status, 201);
    let (status, created) = browser
        .post(
            "/api/v1/accounts",
            json!({"username": "frank", "role": "viewer"}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, reset) = browser
        .post("/api/v1/accounts/frank/password-reset", json!({}))
        .await;
    secrets.extend([
        totp_secret,
        recovery[0].clone(),
        issued["token"].as_str().unwrap().to_string(),
        created["initial_password"].as_str().unwrap().to_string(),
        reset["initial_password"].as_str().unwrap().to_string(),
    ]);
    // Let the audit projection catch up with the last action before reading it.
    wait_audit(&server, "action=account.password_reset").await;
    let audit_log: Value = server.get("/api/v1/audit?limit=500").await;
    assert!(audit_log["total"].as_u64().unwrap() >= 8, "{audit_log:#}");
    let credentials = server
        .app()
        .store
        .account_credentials("admin")
        .await
        .unwrap();

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("tutti"),
        "the capture works: {} bytes",
        logs.len()
    );
    let audit_text = audit_log.to_string();
    let debug_text = format!("{credentials:?} {:?}", server.app().auth);
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a secret is in the logs");
        assert!(
            !audit_text.contains(secret.as_str()),
            "a secret is in the audit log"
        );
        assert!(
            !debug_text.contains(secret.as_str()),
            "a secret is in Debug output"
        );
    }
    assert!(
        !debug_text.contains(&credentials.password_hash),
        "{debug_text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_can_be_required_to_set_up_mfa_before_anything_else() {
    let nats = TestNats::start();
    let server =
        TestServer::start_with(&nats, |config| config.auth.require_mfa_for_admins = true).await;
    create_account(&server, "grace", Role::Admin).await;
    create_account(&server, "heidi", Role::Operator).await;
    let operator = Browser::sign_in(&server, "heidi", PASSWORD, None)
        .await
        .unwrap();
    assert_eq!(
        operator.get("/api/v1/runs").await.0,
        200,
        "only admins are held"
    );

    let admin = Browser::sign_in(&server, "grace", PASSWORD, None)
        .await
        .unwrap();
    let (_, me) = admin.get("/api/v1/auth/me").await;
    assert_eq!(me["required_action"], "setup_mfa");
    let (status, body) = admin.get("/api/v1/runs").await;
    assert_eq!(status, 403);
    assert!(
        body["message"].as_str().unwrap().contains("two-factor"),
        "{body}"
    );
    let (status, _) =
        token_login(&server, json!({"username": "grace", "password": PASSWORD})).await;
    assert_eq!(status, 403, "no API token before MFA either");

    let (_, setup) = admin.post("/api/v1/auth/mfa/setup", json!({})).await;
    let code = code_now(setup["secret"].as_str().unwrap());
    let (status, _) = admin
        .post("/api/v1/auth/mfa/confirm", json!({"code": code}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(admin.get("/api/v1/runs").await.0, 200);
}
