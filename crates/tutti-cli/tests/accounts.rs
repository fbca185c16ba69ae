//! Signing in and accounts through the real `tutti` binary: login with a forced password
//! change, token logins checked before they are stored, users, roles and API tokens from
//! the first sign-in to revocation, password resets and two-factor sign-in.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;
use serde_json::Value;
use tempfile::TempDir;
use tutti_testkit::{TestAgent, TestNats, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_stores_a_profile_that_later_commands_use() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let home = TempDir::new().unwrap();

    // The first admin must change the generated password: the second line is the new one.
    login_as(
        home.path(),
        &server,
        "admin",
        &server.initial_admin_password(),
        Some(ADMIN_PASSWORD),
    )
    .await;
    let agents = tutti(home.path(), None, &["agents", "--json"]).await;
    assert_eq!(parse(&expect_code(&agents, 0))["total"], 0);
    let token = profile_token(home.path());

    let logout = expect_code(&tutti(home.path(), None, &["logout"]).await, 0);
    assert!(logout.contains("revoked"), "{logout}");
    let after = tutti(home.path(), None, &["agents"]).await;
    expect_code(&after, 2);
    assert!(String::from_utf8_lossy(&after.stderr).contains("tutti login"));
    let revoked = with_token(home.path(), &server, &token, &["agents"]).await;
    expect_code(&revoked, 3);

    // The password was changed for good: signing in again needs no new one.
    login_as(home.path(), &server, "admin", ADMIN_PASSWORD, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_a_token_checks_it_before_storing_it() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let home = TempDir::new().unwrap();
    let url = server.url();

    let bad = tutti(
        home.path(),
        None,
        &["login", "--server", &url, "--token", "not-a-token"],
    )
    .await;
    expect_code(&bad, 3);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("does not accept this token") && stderr.contains("--user"),
        "{stderr}"
    );
    expect_code(&tutti(home.path(), None, &["whoami"]).await, 2);

    let good = [
        "login",
        "--server",
        &url,
        "--token",
        server.admin_token(),
        "--name",
        "ci",
    ];
    let stored = expect_code(&tutti(home.path(), None, &good).await, 0);
    assert!(stored.contains("as admin (role admin)"), "{stored}");
    let me = parse(&expect_code(
        &tutti(home.path(), None, &["whoami", "--json"]).await,
        0,
    ));
    assert_eq!(me["account"]["username"], "admin", "{me:#}");
    let forgot = expect_code(&tutti(home.path(), None, &["logout", "ci"]).await, 0);
    assert!(forgot.contains("still works"), "{forgot}");
    expect_code(&tutti(home.path(), Some(&server), &["agents"]).await, 0);
}

/// The new password of the first admin in these tests (at least 12 characters).
const ADMIN_PASSWORD: &str = "a new admin password";
/// The new password of the `ops` account.
const OPS_PASSWORD: &str = "a new ops password";

/// `tutti login --password-stdin` as `user` into the profiles of `home`, with a second line
/// when the account must change its password; asserts success and returns the answer.
async fn login_as(
    home: &Path,
    server: &TestServer,
    user: &str,
    password: &str,
    new_password: Option<&str>,
) -> Value {
    let stdin = match new_password {
        Some(new) => format!("{password}\n{new}\n"),
        None => format!("{password}\n"),
    };
    let url = server.url();
    let args = [
        "login",
        "--server",
        &url,
        "--user",
        user,
        "--password-stdin",
        "--json",
    ];
    let output = tutti_with(home, &[], &stdin, &args).await;
    let signed_in = parse(&expect_code(&output, 0));
    assert_eq!(signed_in["account"], user, "{signed_in:#}");
    signed_in
}

/// The binary with `token` as `TUTTI_TOKEN` against `server`.
async fn with_token(home: &Path, server: &TestServer, token: &str, args: &[&str]) -> Output {
    let env = [
        ("TUTTI_SERVER", server.url()),
        ("TUTTI_TOKEN", token.to_string()),
    ];
    tutti_with(home, &env, "", args).await
}

/// The token of the current profile, as `tutti login` stored it.
fn profile_token(home: &Path) -> String {
    let text = std::fs::read_to_string(home.join("tutti").join("cli.toml")).unwrap();
    let profiles: toml::Table = toml::from_str(&text).unwrap();
    let current = profiles["current"].as_str().unwrap();
    profiles["profiles"][current]["token"]
        .as_str()
        .unwrap()
        .to_string()
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_roles_and_tokens_from_first_sign_in_to_revocation() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let _web = TestAgent::spawn(&server, "web-01").await;
    wait_online(&server, &["web-01"]).await;
    let admin_home = TempDir::new().unwrap();
    let admin = async |args: &[&str]| tutti(admin_home.path(), None, args).await;

    // (a) The first sign-in of `admin` sets a new password; the profile is an admin's.
    let initial = server.initial_admin_password();
    let signed_in = login_as(
        admin_home.path(),
        &server,
        "admin",
        &initial,
        Some(ADMIN_PASSWORD),
    )
    .await;
    assert_eq!(signed_in["role"], "admin", "{signed_in:#}");
    assert!(signed_in["expires_at"].is_string(), "{signed_in:#}");
    let me = parse(&expect_code(&admin(&["whoami", "--json"]).await, 0));
    assert_eq!(me["role"], "admin", "{me:#}");
    assert_eq!(me["account"]["username"], "admin", "{me:#}");
    assert_eq!(me["via"], "token", "{me:#}");
    assert!(me["required_action"].is_null(), "{me:#}");

    // (b) An operator account, signed in elsewhere with its one-time password.
    let created = parse(&expect_code(
        &admin(&["users", "create", "ops", "--role", "operator", "--json"]).await,
        0,
    ));
    let one_time = created["initial_password"]
        .as_str()
        .unwrap_or_else(|| panic!("{created:#}"));
    assert_eq!(
        created["account"]["must_change_password"], true,
        "{created:#}"
    );
    let ops_home = TempDir::new().unwrap();
    let ops = async |args: &[&str]| tutti(ops_home.path(), None, args).await;
    let signed_in = login_as(
        ops_home.path(),
        &server,
        "ops",
        one_time,
        Some(OPS_PASSWORD),
    )
    .await;
    assert_eq!(signed_in["role"], "operator", "{signed_in:#}");
    let refused = ops(&["users", "list"]).await;
    expect_code(&refused, 3);
    assert!(
        stderr_of(&refused).contains("admin role"),
        "{}",
        stderr_of(&refused)
    );
    let listed = parse(&expect_code(&admin(&["users", "list", "--json"]).await, 0));
    assert_eq!(listed["total"], 2, "{listed:#}");

    // (c) A viewer token reads but cannot run.
    let ci = parse(&expect_code(
        &admin(&["tokens", "create", "ci", "--role", "viewer", "--json"]).await,
        0,
    ));
    assert_eq!(ci["role"], "viewer", "{ci:#}");
    let ci_token = ci["token"].as_str().unwrap().to_string();
    let ci_id = ci["token_id"].as_str().unwrap().to_string();
    let elsewhere = TempDir::new().unwrap();
    let agents = with_token(elsewhere.path(), &server, &ci_token, &["agents", "--json"]).await;
    assert_eq!(parse(&expect_code(&agents, 0))["total"], 1);
    let run = ["run", "--all", "--wait", "--", "echo", "hi"];
    let refused = with_token(elsewhere.path(), &server, &ci_token, &run).await;
    expect_code(&refused, 3);
    let stderr = stderr_of(&refused);
    assert!(
        stderr.contains("operator role") && stderr.contains("viewer"),
        "{stderr}"
    );

    // (d) A disabled account's profile is refused, and works again once enabled.
    let disabled = parse(&expect_code(
        &admin(&["users", "disable", "ops", "--json"]).await,
        0,
    ));
    assert_eq!(disabled["disabled"], true, "{disabled:#}");
    let refused = ops(&["whoami"]).await;
    expect_code(&refused, 3);
    assert!(
        stderr_of(&refused).contains("disabled"),
        "{}",
        stderr_of(&refused)
    );
    expect_code(&admin(&["users", "enable", "ops"]).await, 0);
    let me = parse(&expect_code(&ops(&["whoami", "--json"]).await, 0));
    assert_eq!(me["role"], "operator", "{me:#}");

    // (e) A revoked token is refused.
    let tokens = parse(&expect_code(&admin(&["tokens", "list", "--json"]).await, 0));
    let listed = tokens["items"].as_array().unwrap();
    assert!(
        listed
            .iter()
            .any(|token| token["token_id"] == ci_id.as_str()),
        "{tokens:#}"
    );
    expect_code(&admin(&["tokens", "revoke", &ci_id]).await, 0);
    let refused = with_token(elsewhere.path(), &server, &ci_token, &["agents"]).await;
    expect_code(&refused, 3);
    assert!(
        stderr_of(&refused).contains("revoked"),
        "{}",
        stderr_of(&refused)
    );

    // (f) A wrong password stores nothing.
    let url = server.url();
    let args = [
        "login",
        "--server",
        &url,
        "--user",
        "ops",
        "--password-stdin",
    ];
    let wrong = tutti_with(elsewhere.path(), &[], "not the password\n", &args).await;
    expect_code(&wrong, 3);
    assert!(
        stderr_of(&wrong).contains("wrong username or password"),
        "{}",
        stderr_of(&wrong)
    );
    expect_code(&tutti(elsewhere.path(), None, &["whoami"]).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_password_passwd_and_two_factor_sign_in() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let home = TempDir::new().unwrap();
    let admin = async |args: &[&str]| tutti(home.path(), Some(&server), args).await;
    let url = server.url();

    // `passwd` checks the current password, then changes it.
    let as_admin = [
        ("TUTTI_SERVER", url.clone()),
        ("TUTTI_TOKEN", server.admin_token().to_string()),
    ];
    let passwd = ["passwd", "--password-stdin"];
    let wrong = tutti_with(
        home.path(),
        &as_admin,
        "not it\nwhatever it is now\n",
        &passwd,
    )
    .await;
    expect_code(&wrong, 3);
    assert!(
        stderr_of(&wrong).contains("current password is wrong"),
        "{}",
        stderr_of(&wrong)
    );
    let stdin = format!("{}\n{ADMIN_PASSWORD}\n", server.initial_admin_password());
    expect_code(
        &tutti_with(home.path(), &as_admin, &stdin, &passwd).await,
        0,
    );
    login_as(home.path(), &server, "admin", ADMIN_PASSWORD, None).await;

    // A reset password is printed once and must be changed at the next sign-in.
    expect_code(
        &admin(&["users", "create", "dev", "--role", "viewer"]).await,
        0,
    );
    let reset = expect_code(&admin(&["users", "reset-password", "dev"]).await, 0);
    assert!(
        reset.contains("shown only now") && reset.contains("--user dev"),
        "{reset}"
    );
    let one_time = reset
        .lines()
        .skip_while(|line| !line.contains("shown only now"))
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.contains("shown only now"))
        .unwrap_or_else(|| panic!("{reset}"))
        .to_string();
    let dev_home = TempDir::new().unwrap();
    let forgot_new = [
        "login",
        "--server",
        &url,
        "--user",
        "dev",
        "--password-stdin",
    ];
    let refused = tutti_with(dev_home.path(), &[], &format!("{one_time}\n"), &forgot_new).await;
    expect_code(&refused, 2);
    assert!(
        stderr_of(&refused).contains("second line"),
        "{}",
        stderr_of(&refused)
    );
    login_as(
        dev_home.path(),
        &server,
        "dev",
        &one_time,
        Some("a new dev password"),
    )
    .await;

    // With two-factor sign-in the code is asked for, or given with --code.
    let setup: Value = server
        .post("/api/v1/auth/mfa/setup", &serde_json::json!({}))
        .await;
    let code = code_now(setup["secret"].as_str().unwrap());
    let confirmed: Value = server
        .post(
            "/api/v1/auth/mfa/confirm",
            &serde_json::json!({"code": code}),
        )
        .await;
    let recovery = confirmed["recovery_codes"][0].as_str().unwrap();
    let mfa_home = TempDir::new().unwrap();
    let login = [
        "login",
        "--server",
        &url,
        "--user",
        "admin",
        "--password-stdin",
    ];
    let no_code = tutti_with(mfa_home.path(), &[], &format!("{ADMIN_PASSWORD}\n"), &login).await;
    expect_code(&no_code, 2);
    assert!(
        stderr_of(&no_code).contains("--code"),
        "{}",
        stderr_of(&no_code)
    );
    let with_code = [&login[..], &["--code", recovery]].concat();
    let signed_in = tutti_with(
        mfa_home.path(),
        &[],
        &format!("{ADMIN_PASSWORD}\n"),
        &with_code,
    )
    .await;
    let stdout = expect_code(&signed_in, 0);
    assert!(
        stdout.contains("signed in") && stdout.contains("role admin"),
        "{stdout}"
    );
}

/// The current TOTP code of a base32 secret.
fn code_now(secret: &str) -> String {
    use tutti_server::auth::totp;
    let key = data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .unwrap();
    let now = u64::try_from(jiff::Timestamp::now().as_second()).unwrap();
    totp::format_code(totp::code_at_step(&key, totp::step_of(now)))
}
