//! The dashboard in a real headless Chromium, against a real server with real agents on a
//! real broker: sign in (with the forced password change), browse the agents, run `echo`
//! on two agents from the job page and watch both targets turn succeeded live, read the
//! output, kill a long run, check that output is shown as text, and that a viewer sees
//! no run button and a forged action from the viewer's session is refused; an admin sets up
//! two-factor sign-in at the first sign-in and later signs in with a recovery code; the
//! agent page shows the agent's broker identity, and after the agent is deleted from it and
//! enrolled again, the old key as revoked (with the audit records of both).
//!
//! Screenshots of every main page (light, dark, narrow) are written to
//! `target/tmp/dashboard-screenshots/` for a person to look at.

use std::path::PathBuf;

use serde_json::{Value, json};
use tutti_testkit::{Browser, TestAgent, TestNats, TestServer};

mod common;

fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots")
}

async fn shot(browser: &Browser, name: &str) {
    browser
        .screenshot(&screenshot_dir().join(format!("{name}.png")))
        .await;
}

/// Signs in through the login page (the current one, when the browser was sent there);
/// `new_password` answers the forced change.
async fn sign_in(browser: &Browser, base: &str, user: &str, password: &str, new_password: &str) {
    if !browser.url().await.contains("/login") {
        browser.goto(&format!("{base}/login")).await;
    }
    submit_password(browser, user, password).await;
    browser
        .wait_until(
            "the password step is done",
            "return !location.pathname.startsWith('/login') || \
             !document.querySelector('[data-step=change-password]').hidden",
            vec![],
        )
        .await;
    if browser.url().await.contains("/login") {
        choose_password(browser, new_password).await;
    }
    browser
        .wait_until(
            "signed in and sent on",
            "return !location.pathname.startsWith('/login')",
            vec![],
        )
        .await;
}

/// Fills and sends the sign-in page's first step.
async fn submit_password(browser: &Browser, user: &str, password: &str) {
    browser.find("#username").await.type_text(user).await;
    browser.find("#password").await.type_text(password).await;
    browser
        .find("form[data-step=password] button[type=submit]")
        .await
        .click()
        .await;
}

/// Answers the forced password change step (already shown).
async fn choose_password(browser: &Browser, new_password: &str) {
    browser
        .find("#new-password")
        .await
        .type_text(new_password)
        .await;
    browser
        .find("#new-password-again")
        .await
        .type_text(new_password)
        .await;
    browser
        .find("form[data-step=change-password] button[type=submit]")
        .await
        .click()
        .await;
}

async fn apply_job(server: &TestServer, manifest: &str) {
    let (status, body) = server
        .post_text("/api/v1/jobs", "application/yaml", manifest)
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Runs `job` on `agents` (space separated) with the job page's form; returns on the run page.
async fn run_from_job_page(browser: &Browser, base: &str, job: &str, agents: &str) {
    browser.goto(&format!("{base}/jobs/{job}")).await;
    browser
        .find("[data-testid=target-agents]")
        .await
        .click()
        .await;
    browser
        .find("[data-testid=target-agents-input]")
        .await
        .type_text(agents)
        .await;
    browser.find("[data-testid=run-submit]").await.click().await;
    browser
        .wait_until(
            "the run page opened",
            "return location.pathname.startsWith('/runs/')",
            vec![],
        )
        .await;
}

/// Waits for the tile of `agent` to show `state`, without reloading the page.
async fn wait_tile(browser: &Browser, agent: &str, state: &str) {
    browser
        .wait_until(
            &format!("{agent} shows {state}"),
            "const tile = document.querySelector(`[data-testid='target-${arguments[0]}']`); \
             return !!tile && tile.dataset.state === arguments[1];",
            vec![json!(agent), json!(state)],
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_runs_watches_and_kills_from_the_dashboard() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let base = server.url();
    let web = TestAgent::spawn(&server, "web-01").await;
    let db = TestAgent::spawn(&server, "db-01").await;
    common::wait_online(&server, &["web-01", "db-01"]).await;
    apply_job(
        &server,
        "kind: Job\nname: hello\nshell: sh\nscript: echo hello from $(hostname)\n",
    )
    .await;
    apply_job(
        &server,
        "kind: Job\nname: long\nshell: sh\nscript: sleep 120\n",
    )
    .await;
    apply_job(
        &server,
        "kind: Job\nname: markup\nshell: sh\nscript: |\n  echo '<script>window.pwned = 1</script><b>bold</b>'\n",
    )
    .await;

    for manifest in [
        "kind: Schedule\nname: nightly-hello\njob: hello\ntargets: {all: true}\ncron: \"30 2 * * *\"\ntimezone: Europe/Berlin\n",
        "kind: Schedule\nname: hello-everywhere\njob: hello\ntargets: {all: true}\ndesired_state: {once_per_version: true}\n",
    ] {
        let (status, body) = server
            .post_text("/api/v1/schedules", "application/yaml", manifest)
            .await;
        assert_eq!(status, 200, "{body}");
    }

    let browser = Browser::start().await;
    sign_in(
        &browser,
        &base,
        "admin",
        &server.initial_admin_password(),
        "a much better password 1",
    )
    .await;
    let who = browser
        .find("[data-testid=signed-in-user]")
        .await
        .text()
        .await;
    assert!(who.to_lowercase().contains("admin"), "{who}");
    let total = browser
        .find("[data-testid=agents-total]")
        .await
        .text()
        .await;
    assert_eq!(total, "2");

    // The agents page lists both, with their status.
    browser.goto(&format!("{base}/agents")).await;
    let rows = browser.find_all("[data-testid=agent-row]").await;
    assert_eq!(rows.len(), 2);
    let text = browser.page_text().await;
    assert!(text.contains("web-01") && text.contains("db-01"), "{text}");

    // Run `echo` on both agents from the job page; the run page updates live.
    run_from_job_page(&browser, &base, "hello", "web-01 db-01").await;
    // A marker that a reload would erase: the states below must arrive live.
    browser
        .execute("window.__sameDocument = true; return true", vec![])
        .await;
    for agent in ["web-01", "db-01"] {
        wait_tile(&browser, agent, "succeeded").await;
    }
    let same = browser
        .execute("return window.__sameDocument === true", vec![])
        .await;
    assert_eq!(same, Value::Bool(true), "the page reloaded");
    let counts = browser.find("[data-testid=run-counts]").await.text().await;
    assert!(counts.contains('2'), "{counts}");

    // The output of a chosen target.
    browser
        .find("[data-testid=target-web-01]")
        .await
        .click()
        .await;
    browser
        .wait_until(
            "the output shows",
            "const out = document.querySelector('[data-testid=output]'); \
             return !!out && out.textContent.includes('hello from');",
            vec![],
        )
        .await;
    shot(&browser, "run-detail").await;

    // Kill a long-running run and see it marked killed.
    run_from_job_page(&browser, &base, "long", "web-01").await;
    wait_tile(&browser, "web-01", "running").await;
    browser.accept_confirms().await;
    browser.find("[data-testid=kill-run]").await.click().await;
    wait_tile(&browser, "web-01", "killed").await;
    browser
        .wait_until(
            "the run shows killed",
            "const s = document.querySelector('[data-testid=run-status]'); \
             return !!s && s.textContent.trim() === 'killed';",
            vec![],
        )
        .await;

    // Output that looks like markup is shown as text and never runs.
    let run: Value = server
        .post(
            "/api/v1/runs",
            &json!({"job_id": "markup", "targets": {"agents": ["db-01"]}}),
        )
        .await;
    let run_id = run["run_id"].as_str().expect("run id").to_string();
    browser
        .goto(&format!("{base}/runs/{run_id}?agent=db-01"))
        .await;
    wait_tile(&browser, "db-01", "succeeded").await;
    browser
        .find("[data-testid=target-db-01]")
        .await
        .click()
        .await;
    browser
        .wait_until(
            "the markup output shows as text",
            "const out = document.querySelector('[data-testid=output]'); \
             return !!out && out.textContent.includes('<script>window.pwned = 1</script>');",
            vec![],
        )
        .await;
    let injected = browser
        .execute(
            "return window.pwned === undefined && \
             document.querySelectorAll('[data-testid=output] b, [data-testid=output] script').length === 0",
            vec![],
        )
        .await;
    assert_eq!(
        injected,
        Value::Bool(true),
        "output was interpreted as HTML"
    );

    // The editor validates on the server and points at the line and column of an error.
    browser.goto(&format!("{base}/jobs/new")).await;
    let editor = browser.find("[data-testid=job-editor]").await;
    editor.clear().await;
    editor
        .type_text("kind: Job\nname: broken\nshel: sh\nscript: echo hi\n")
        .await;
    browser
        .find("[data-testid=validate-job]")
        .await
        .click()
        .await;
    browser
        .wait_until(
            "the error names its line and column",
            "const e = document.querySelector('[data-testid=editor-error]'); \
             return !!e && e.textContent.includes('line 3, column 1') && e.textContent.includes('shel');",
            vec![],
        )
        .await;
    shot(&browser, "job-editor-error").await;
    let (status, _) = server.try_get("/api/v1/jobs/broken").await;
    assert_eq!(status, 404, "validation stored the job");

    // A freeze set in the settings shows on every page.
    browser.goto(&format!("{base}/settings")).await;
    browser
        .find("#freeze-reason")
        .await
        .type_text("release <b>window</b>")
        .await;
    browser.accept_confirms().await;
    browser
        .find("[data-testid=freeze-form] button[type=submit]")
        .await
        .click()
        .await;
    browser.find("[data-testid=freeze-banner]").await;
    let banner = browser
        .find("[data-testid=freeze-banner]")
        .await
        .text()
        .await;
    assert!(banner.contains("release <b>window</b>"), "{banner}");

    // Screenshots of the main pages for a person to check.
    screenshots(&browser, &base, &run_id).await;
    drop((web, db));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_no_actions_and_a_forged_one_is_refused() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let base = server.url();
    apply_job(&server, "kind: Job\nname: hello\nscript: echo hi\n").await;
    let _: Value = server
        .post(
            "/api/v1/accounts",
            &json!({"username": "vera", "role": "viewer", "password": "viewer password 123"}),
        )
        .await;

    let browser = Browser::start().await;
    // Not signed in: every page sends the browser to the sign-in page and back after it.
    browser.goto(&format!("{base}/jobs/hello")).await;
    assert!(browser.url().await.contains("/login?next=/jobs/hello"));
    sign_in(
        &browser,
        &base,
        "vera",
        "viewer password 123",
        "vera's own password 1",
    )
    .await;
    assert!(browser.url().await.ends_with("/jobs/hello"));
    let role = browser
        .find("[data-testid=signed-in-user]")
        .await
        .text()
        .await;
    assert!(role.to_lowercase().contains("viewer"), "{role}");
    assert!(
        browser.find_all("[data-testid=run-form]").await.is_empty(),
        "a viewer sees the run form"
    );
    assert!(
        browser
            .find_all("[data-testid=run-submit]")
            .await
            .is_empty()
    );

    // The same request the run form would send, forged from the viewer's session with a
    // valid CSRF token: the API refuses it.
    let forged = forged_run(&browser).await;
    assert_eq!(forged, 403, "a viewer's forged run was not refused");
    let runs: Value = server.get("/api/v1/runs").await;
    assert_eq!(runs["total"], 0, "a run was created: {runs}");
    server
        .wait_for(
            "/api/v1/audit?action=access.denied&actor=vera",
            "the refused run in the audit log",
            |page| page["total"] == 1,
        )
        .await;

    // Without the CSRF token a session cannot act either.
    let no_csrf = browser
        .execute(
            "const r = new XMLHttpRequest(); r.open('POST', '/api/v1/auth/logout', false); \
             r.setRequestHeader('content-type', 'application/json'); r.send('{}'); return r.status;",
            vec![],
        )
        .await;
    assert_eq!(no_csrf, json!(403));
}

/// POSTs a run from the page's own session with its CSRF token; returns the status.
async fn forged_run(browser: &Browser) -> u64 {
    let status = browser
        .execute(
            "const token = document.querySelector('meta[name=csrf-token]').content; \
             const r = new XMLHttpRequest(); r.open('POST', '/api/v1/runs', false); \
             r.setRequestHeader('content-type', 'application/json'); \
             r.setRequestHeader('x-csrf-token', token); \
             r.send(JSON.stringify({job_id: 'hello', targets: {all: true}})); return r.status;",
            vec![],
        )
        .await;
    status.as_u64().expect("status")
}

/// Every main page in light theme, then a few in dark and on a narrow screen.
async fn screenshots(browser: &Browser, base: &str, run_id: &str) {
    let pages = [
        ("overview", "/".to_string()),
        ("agents", "/agents".into()),
        ("agent-detail", "/agents/web-01".into()),
        ("jobs", "/jobs".into()),
        ("job-detail", "/jobs/hello".into()),
        ("job-editor", "/jobs/hello/edit".into()),
        ("runs", "/runs".into()),
        ("run-output", format!("/runs/{run_id}?agent=db-01")),
        ("schedules", "/schedules".into()),
        ("schedule-cron", "/schedules/nightly-hello".into()),
        ("schedule-desired", "/schedules/hello-everywhere".into()),
        ("audit", "/audit".into()),
        ("settings", "/settings".into()),
    ];
    for (name, path) in &pages {
        browser.goto(&format!("{base}{path}")).await;
        browser.find("main").await;
        let text = browser.page_text().await;
        assert!(
            !text.contains("500 Internal") && !text.contains("400 Bad"),
            "{path}: {text}"
        );
        shot(browser, name).await;
    }
    // The cron schedule shows its next fires in its own zone (02:30 Berlin time).
    browser
        .goto(&format!("{base}/schedules/nightly-hello"))
        .await;
    let fires = browser.find("[data-testid=next-fires]").await.text().await;
    assert!(fires.contains("02:30"), "{fires}");
    browser
        .execute(
            "localStorage.setItem('tutti-theme', 'dark'); return true",
            vec![],
        )
        .await;
    for (name, path) in &pages[..3] {
        browser.goto(&format!("{base}{path}")).await;
        shot(browser, &format!("{name}-dark")).await;
    }
    browser.set_size(390, 844).await;
    for (name, path) in &pages[..3] {
        browser.goto(&format!("{base}{path}")).await;
        shot(browser, &format!("{name}-narrow")).await;
    }
}

/// The 6-digit code an authenticator app shows now for a base32 `secret`.
fn code_now(secret: &str) -> String {
    use tutti_server::auth::totp;
    let key = data_encoding::BASE32_NOPAD
        .decode(secret.trim().as_bytes())
        .expect("the page shows a base32 key");
    let now = u64::try_from(jiff::Timestamp::now().as_second()).expect("time after 1970");
    totp::format_code(totp::code_at_step(&key, totp::step_of(now)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sets_up_two_factor_sign_in_and_signs_in_with_a_second_factor() {
    let nats = TestNats::start();
    let server = TestServer::start_with(&nats, |config| {
        config.auth.require_mfa_for_admins = true;
    })
    .await;
    let base = server.url();
    let browser = Browser::start().await;

    // First sign-in: the password, a new password, then two-factor setup is required.
    browser.goto(&format!("{base}/login")).await;
    submit_password(&browser, "admin", &server.initial_admin_password()).await;
    let new_password = "an admin's own password 1";
    browser
        .wait_until(
            "the password change step is shown",
            "return !document.querySelector('[data-step=change-password]').hidden",
            vec![],
        )
        .await;
    choose_password(&browser, new_password).await;
    browser
        .wait_until(
            "the two-factor key is shown",
            "const key = document.querySelector('[data-mfa-secret]'); \
             return !!key && key.textContent.trim().length >= 16 && !key.closest('[hidden]');",
            vec![],
        )
        .await;
    let secret = browser.find("[data-mfa-secret]").await.text().await;
    browser
        .find("#mfa-code")
        .await
        .type_text(&code_now(&secret))
        .await;
    browser
        .find("form[data-step=setup-mfa] button[type=submit]")
        .await
        .click()
        .await;
    browser
        .wait_until(
            "the recovery codes are shown once",
            "const codes = document.querySelector('[data-recovery-codes]'); \
             return !!codes && codes.textContent.trim().split('\\n').length === 10;",
            vec![],
        )
        .await;
    let codes = browser.find("[data-recovery-codes]").await.text().await;
    let recovery = codes
        .lines()
        .next()
        .expect("a recovery code")
        .trim()
        .to_string();
    browser.find("[data-continue]").await.click().await;
    browser
        .wait_until(
            "the overview opens",
            "return location.pathname === '/' && !!document.querySelector('[data-testid=agents-total]')",
            vec![],
        )
        .await;
    shot(&browser, "signed-in-after-mfa-setup").await;

    // Sign out, then in again: after the password the page asks for the second factor,
    // and a recovery code is accepted once.
    browser.find("[data-logout]").await.click().await;
    browser
        .wait_until(
            "signed out",
            "return location.pathname === '/login'",
            vec![],
        )
        .await;
    submit_password(&browser, "admin", new_password).await;
    browser
        .wait_until(
            "the code field appears",
            "const field = document.querySelector('[data-code-field]'); return !!field && !field.hidden;",
            vec![],
        )
        .await;
    shot(&browser, "login-code-step").await;
    browser.find("#code").await.type_text(&recovery).await;
    browser
        .find("form[data-step=password] button[type=submit]")
        .await
        .click()
        .await;
    browser
        .wait_until(
            "signed in with the recovery code",
            "return location.pathname === '/'",
            vec![],
        )
        .await;
    server
        .wait_for(
            "/api/v1/audit?action=auth.login",
            "both sign-ins in the audit log",
            |page| page["total"] == 2,
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_page_shows_the_broker_identity_and_its_revocation() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let base = server.url();
    let before_enroll = jiff::Timestamp::now();
    let first = TestAgent::enroll(&server, "web-01").await;
    let first_key = broker_public_key(&first);
    let enrolled = server
        .wait_for(
            "/api/v1/audit?action=agent.enroll&target=agent/web-01",
            "the enrollment in the audit log",
            |page| page["total"] == 1,
        )
        .await;
    let record = &enrolled["items"][0]["record"];
    assert_eq!(
        record["summary"]["broker_public_key"], first_key,
        "{record:#}"
    );

    let browser = Browser::start().await;
    browser.goto(&format!("{base}/agents/web-01")).await;
    sign_in(
        &browser,
        &base,
        "admin",
        &server.initial_admin_password(),
        "a much better password 1",
    )
    .await;
    assert!(browser.url().await.ends_with("/agents/web-01"));
    let rows = identity_rows(&browser).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].public_key, first_key);
    assert!(rows[0].text.contains(&first_key[..10]), "{rows:?}");
    assert!(rows[0].text.contains("issued"), "{rows:?}");
    assert!(!rows[0].text.contains("revoked"), "{rows:?}");
    let [issued_at] = rows[0].times[..] else {
        panic!("one time, the issue: {rows:?}");
    };
    assert!(within(issued_at, before_enroll, jiff::Timestamp::now()));

    // Deleting the agent from its page revokes its key, and the audit log says so.
    let before_delete = jiff::Timestamp::now();
    browser.accept_confirms().await;
    browser
        .find("[data-testid=delete-agent]")
        .await
        .click()
        .await;
    browser
        .wait_until(
            "sent to the agents list",
            "return location.pathname === '/agents'",
            vec![],
        )
        .await;
    let revoked = server
        .wait_for(
            "/api/v1/audit?action=agent.broker_identity.revoke",
            "the revocation in the audit log",
            |page| page["total"] == 1,
        )
        .await;
    let record = &revoked["items"][0]["record"];
    assert_eq!(record["summary"]["public_key"], first_key, "{record:#}");
    assert_eq!(record["actor"], "admin", "{record:#}");
    assert_eq!(record["target"], "agent/web-01", "{record:#}");

    // Enrolled again under the same id with a new key: the page lists the old key as
    // revoked beside the new one.
    let second = TestAgent::enroll(&server, "web-01").await;
    let second_key = broker_public_key(&second);
    assert_ne!(second_key, first_key);
    browser.goto(&format!("{base}/agents/web-01")).await;
    let rows = identity_rows(&browser).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let old = rows.iter().find(|row| row.public_key == first_key);
    let old = old.unwrap_or_else(|| panic!("the revoked key is not shown: {rows:?}"));
    assert!(old.text.contains("revoked"), "{old:?}");
    let [old_issued, old_revoked] = old.times[..] else {
        panic!("two times, issue and revocation: {old:?}");
    };
    assert_eq!(old_issued, issued_at);
    assert!(within(old_revoked, before_delete, jiff::Timestamp::now()));
    let new = rows.iter().find(|row| row.public_key == second_key);
    let new = new.unwrap_or_else(|| panic!("the new key is not shown: {rows:?}"));
    assert!(!new.text.contains("revoked"), "{new:?}");
    assert_eq!(new.times.len(), 1, "{new:?}");
    shot(&browser, "agent-broker-identities").await;
}

/// One line of the agent page's "Broker identity".
#[derive(Debug)]
struct IdentityRow {
    /// The full key, from the title of the shortened one.
    public_key: String,
    text: String,
    /// The `datetime` of each time shown: issued, then revoked.
    times: Vec<jiff::Timestamp>,
}

async fn identity_rows(browser: &Browser) -> Vec<IdentityRow> {
    let rows = browser
        .execute(
            "return [...document.querySelectorAll('[data-testid=broker-identity] > div')] \
             .map(row => ({ key: row.querySelector('.mono').title, text: row.textContent, \
               times: [...row.querySelectorAll('time')].map(time => time.dateTime) }))",
            vec![],
        )
        .await;
    let rows = rows.as_array().expect("rows").iter();
    rows.map(|row| IdentityRow {
        public_key: row["key"].as_str().unwrap_or_default().to_string(),
        text: row["text"].as_str().unwrap_or_default().to_string(),
        times: row["times"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|time| {
                time.as_str()
                    .unwrap_or_default()
                    .parse()
                    .expect("an ISO time")
            })
            .collect(),
    })
    .collect()
}

/// The public key of the broker user the agent connects as: the subject of its user JWT.
fn broker_public_key(agent: &TestAgent) -> String {
    let tutti_bus::Auth::Creds { creds } = &agent.identity().nats_auth else {
        panic!("the agent got no broker identity");
    };
    let user_jwt = creds
        .lines()
        .skip_while(|line| !line.contains("BEGIN NATS USER JWT"))
        .nth(1)
        .expect("a JWT in the creds");
    tutti_bus::auth::decode(user_jwt).expect("a valid JWT").sub
}

/// Whether `at` lies between `from` and `until`, give or take the store's millisecond.
fn within(at: jiff::Timestamp, from: jiff::Timestamp, until: jiff::Timestamp) -> bool {
    let slack = jiff::SignedDuration::from_millis(1);
    from - slack <= at && at <= until + slack
}
