//! The `tutti` binary end to end against the real harness: a real broker, the real server
//! in-process and real agents enrolled over HTTP. Each test runs the binary the way an
//! operator would, with `TUTTI_SERVER` (or a profile from `tutti login`) and a temp
//! `XDG_CONFIG_HOME`, and parses its `--json` output.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;
use tutti_testkit::{SERVER_WAIT, TestAgent, TestNats, TestServer};

/// The binary with a private config dir, as the test server's admin (`TUTTI_SERVER` and
/// `TUTTI_TOKEN`) when a server is given, else with the profiles in `config_home` only.
async fn tutti(config_home: &Path, server: Option<&TestServer>, args: &[&str]) -> Output {
    match server {
        Some(server) => {
            let env = [
                ("TUTTI_SERVER", server.url()),
                ("TUTTI_TOKEN", server.admin_token().to_string()),
            ];
            tutti_with(config_home, &env, "", args).await
        }
        None => tutti_with(config_home, &[], "", args).await,
    }
}

/// The binary with a private config dir, extra environment and `stdin` as its standard
/// input (none when empty, so a forgotten `--password-stdin` cannot hang on a prompt).
async fn tutti_with(
    config_home: &Path,
    env: &[(&str, String)],
    stdin: &str,
    args: &[&str],
) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tutti"));
    command
        .args(args)
        .env("XDG_CONFIG_HOME", config_home)
        .env_remove("TUTTI_SERVER")
        .env_remove("TUTTI_TOKEN")
        .envs(env.iter().map(|(key, value)| (key, value)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_empty() {
            Stdio::null()
        } else {
            Stdio::piped()
        });
    let mut child = command.spawn().expect("run tutti");
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(stdin.as_bytes()).await.expect("write stdin");
    }
    child.wait_with_output().await.expect("wait for tutti")
}

/// Asserts the exit code and returns stdout.
fn expect_code(output: &Output, code: i32) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn parse(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|err| panic!("not JSON ({err}):\n{stdout}"))
}

async fn wait_online(server: &TestServer, agents: &[&str]) {
    for agent in agents {
        server
            .wait_for(
                &format!("/api/v1/agents/{agent}"),
                "a heartbeat",
                |detail| detail["agent"]["liveness"] == "online",
            )
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_wait_json_on_two_agents_then_show_results_and_a_failure() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let _web = TestAgent::spawn(&server, "web-01").await;
    let _db = TestAgent::spawn(&server, "db-01").await;
    wait_online(&server, &["web-01", "db-01"]).await;
    let home = TempDir::new().unwrap();
    let cli = async |args: &[&str]| tutti(home.path(), Some(&server), args).await;

    let output = cli(&["run", "--all", "--wait", "--json", "--", "echo", "hi"]).await;
    let report = parse(&expect_code(&output, 0));
    let targets = report["run"]["targets"]["items"].as_array().unwrap();
    assert_eq!(targets.len(), 2, "{report:#}");
    assert!(
        targets.iter().all(|t| t["state"] == "succeeded"),
        "{report:#}"
    );
    for item in report["results"]["items"].as_array().unwrap() {
        let result = item.get("result").unwrap_or(item);
        assert_eq!(result["stdout"]["inline"], "hi\n", "{report:#}");
    }
    let run_id = report["run"]["run"]["run_id"].as_str().unwrap().to_string();

    let shown = expect_code(&cli(&["runs", "show", &run_id]).await, 0);
    assert!(
        shown.contains("web-01") && shown.contains("db-01") && shown.contains("succeeded"),
        "{shown}"
    );

    // Groups set from the CLI address a run to one agent.
    let grouped = expect_code(&cli(&["agents", "groups", "web-01", "set", "web"]).await, 0);
    assert!(grouped.contains("web-01 is in web"), "{grouped}");
    let output = cli(&[
        "run", "--group", "web", "--wait", "--json", "--", "echo", "web",
    ])
    .await;
    let report = parse(&expect_code(&output, 0));
    let targets = report["run"]["targets"]["items"].as_array().unwrap();
    assert_eq!(
        (targets.len(), &targets[0]["agent_id"]),
        (1, &Value::from("web-01")),
        "{report:#}"
    );
    let results = expect_code(
        &cli(&["runs", "results", &run_id, "--agent", "db-01"]).await,
        0,
    );
    assert!(
        results.contains("db-01") && results.contains("hi"),
        "{results}"
    );

    let failing = cli(&[
        "run",
        "--agent",
        "web-01",
        "--wait",
        "--",
        "echo bad; exit 3",
    ])
    .await;
    let table = expect_code(&failing, 1);
    assert!(table.contains("failed") && table.contains('3'), "{table}");

    let agents = parse(&expect_code(&cli(&["agents", "--json"]).await, 0));
    let mut ids: Vec<&str> = agents["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|agent| agent["agent_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["db-01", "web-01"], "{agents:#}");
}

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

const ROTATE: &str = "# rotate logs everywhere\nkind: Job\nname: rotate-logs\nscript: logrotate -f /etc/logrotate.conf\ntimeout_secs: 60\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_shows_created_changed_unchanged_and_errors_at_file_line_column() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let home = TempDir::new().unwrap();
    let cli = async |args: &[&str]| tutti(home.path(), Some(&server), args).await;
    let jobs = TempDir::new().unwrap();
    let rotate = jobs.path().join("rotate.yaml");
    let dir = jobs.path().to_str().unwrap();
    std::fs::write(&rotate, ROTATE).unwrap();
    std::fs::write(jobs.path().join("notes.txt"), "not a manifest").unwrap();

    let created = expect_code(&cli(&["apply", "-f", dir]).await, 0);
    assert!(
        created.contains("rotate-logs") && created.contains("created"),
        "{created}"
    );
    let unchanged = cli(&["apply", "-f", dir, "--json"]).await;
    let answer = parse(&expect_code(&unchanged, 0));
    assert_eq!(answer[0]["applied"][0]["result"], "unchanged", "{answer:#}");

    std::fs::write(
        &rotate,
        ROTATE.replace("timeout_secs: 60", "timeout_secs: 90"),
    )
    .unwrap();
    // A dry run shows the change and its diff but stores nothing.
    let planned = expect_code(
        &cli(&["apply", "-f", rotate.to_str().unwrap(), "--dry-run"]).await,
        0,
    );
    assert!(
        planned.contains("changed")
            && planned.contains("+timeout_secs: 90")
            && planned.contains("nothing was stored"),
        "{planned}"
    );
    let dry = parse(&expect_code(
        &cli(&["apply", "-f", dir, "--dry-run", "--json"]).await,
        0,
    ));
    assert_eq!(
        (&dry[0]["applied"][0]["result"], &dry[0]["dry_run"]),
        (&Value::from("changed"), &Value::from(true))
    );
    let stored = parse(&expect_code(
        &cli(&["jobs", "show", "rotate-logs", "--json"]).await,
        0,
    ));
    assert_eq!(
        stored["version"], 1,
        "the dry run stored nothing: {stored:#}"
    );
    let changed = expect_code(&cli(&["apply", "-f", rotate.to_str().unwrap()]).await, 0);
    assert!(
        changed.contains("changed") && changed.contains("1 → 2"),
        "{changed}"
    );
    assert!(
        changed.contains("-timeout_secs: 60") && changed.contains("+timeout_secs: 90"),
        "{changed}"
    );

    // Line 4 of the second document is line 8 of the file.
    let bad = jobs.path().join("bad.yaml");
    let text =
        "kind: Job\nname: a\nscript: echo a\n---\nkind: Job\nname: b\nscript: echo b\nshel: bash\n";
    std::fs::write(&bad, text).unwrap();
    let refused = cli(&["apply", "-f", dir]).await;
    let stdout = expect_code(&refused, 2);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    let expected = format!("{}:8:1: ", bad.display());
    assert!(
        stderr.contains(&expected) && stderr.contains("shel"),
        "{stderr}"
    );
    assert!(
        stdout.contains("rotate-logs"),
        "the good file is still applied: {stdout}"
    );
    let listed = parse(&expect_code(&cli(&["jobs", "--json"]).await, 0));
    assert_eq!(
        listed["total"], 1,
        "nothing of bad.yaml is stored: {listed:#}"
    );

    let source = expect_code(&cli(&["jobs", "show", "rotate-logs"]).await, 0);
    assert!(source.starts_with("# rotate logs everywhere"), "{source}");
    let revoked = parse(&expect_code(
        &cli(&["jobs", "revoke", "rotate-logs", "--json"]).await,
        0,
    ));
    assert_eq!(revoked["n_skipped"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_tokens_config_inventory_and_audit() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let _web = TestAgent::spawn(&server, "web-01").await;
    let home = TempDir::new().unwrap();
    let cli = async |args: &[&str]| tutti(home.path(), Some(&server), args).await;

    let created = expect_code(
        &cli(&["enroll-token", "create", "--uses", "2", "--expires", "2h"]).await,
        0,
    );
    let command = format!("tutti-agent enroll --server {} --token ", server.url());
    assert!(created.contains(&command), "{created}");
    let tokens = parse(&expect_code(
        &cli(&["enroll-token", "list", "--json"]).await,
        0,
    ));
    let mine = tokens["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|token| token["uses_left"] == 2)
        .unwrap_or_else(|| panic!("{tokens:#}"));
    let token_id = mine["token_id"].as_str().unwrap().to_string();
    expect_code(&cli(&["enroll-token", "revoke", &token_id]).await, 0);

    let set = cli(&[
        "config",
        "set",
        "group",
        "web",
        "concurrency=4",
        "log_level=debug",
    ])
    .await;
    expect_code(&set, 0);
    expect_code(
        &cli(&["config", "set", "group", "web", "log_level="]).await,
        0,
    );
    let layer = parse(&expect_code(
        &cli(&["config", "get", "group", "web", "--json"]).await,
        0,
    ));
    assert_eq!(layer, serde_json::json!({"concurrency": 4}));
    let typo = cli(&["config", "set", "global", "concurency=4"]).await;
    expect_code(&typo, 2);

    server
        .wait_for_ok("/api/v1/agents/web-01/inventory", "an inventory")
        .await;
    let inventory = parse(&expect_code(
        &cli(&["inventory", "web-01", "--json"]).await,
        0,
    ));
    assert!(
        inventory["inventory"]["facts"]["hostname"].is_string(),
        "{inventory:#}"
    );
    let table = expect_code(&cli(&["inventory", "web-01"]).await, 0);
    assert!(table.contains("packages"), "{table}");
    let hits = parse(&expect_code(
        &cli(&["inventory", "search", "openssl@3", "--json"]).await,
        0,
    ));
    assert!(hits["total"].is_u64(), "{hits:#}");

    // The audit log is projected from a stream, so the entries arrive shortly after.
    let deadline = tokio::time::Instant::now() + SERVER_WAIT;
    loop {
        let audit = cli(&["audit", "--action", "config.set", "--json"]).await;
        let page = parse(&expect_code(&audit, 0));
        if page["total"] == 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{page:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bad_time = cli(&["audit", "--since", "yesterday"]).await;
    expect_code(&bad_time, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeze_on_status_and_off() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let home = TempDir::new().unwrap();
    let cli = async |args: &[&str]| tutti(home.path(), Some(&server), args).await;

    let status = parse(&expect_code(&cli(&["freeze", "status", "--json"]).await, 0));
    assert_eq!(status["in_force"], false, "{status:#}");

    let on = cli(&["freeze", "on", "--reason", "release 4.2", "--for", "2h"]).await;
    let line = expect_code(&on, 0);
    assert!(
        line.starts_with("frozen since ")
            && line.contains(" until ")
            && line.contains("— release 4.2"),
        "{line}"
    );
    let status = parse(&expect_code(&cli(&["freeze", "status", "--json"]).await, 0));
    assert_eq!(
        (&status["frozen"], &status["in_force"], &status["reason"]),
        (
            &Value::Bool(true),
            &Value::Bool(true),
            &Value::from("release 4.2")
        ),
        "{status:#}"
    );
    let until: jiff::Timestamp = status["until"].as_str().unwrap().parse().unwrap();
    let ahead = until.duration_since(jiff::Timestamp::now());
    assert!(
        ahead > jiff::SignedDuration::from_mins(110)
            && ahead <= jiff::SignedDuration::from_hours(2),
        "--for 2h gave {until}"
    );
    let line = expect_code(&cli(&["freeze", "status"]).await, 0);
    assert!(line.contains("by admin/testkit until"), "{line}");

    // Mistakes are usage errors, caught before the server is asked.
    let both = cli(&[
        "freeze",
        "on",
        "--reason",
        "x",
        "--for",
        "1h",
        "--until",
        "2099-01-01T00:00:00Z",
    ])
    .await;
    expect_code(&both, 2);
    expect_code(
        &cli(&["freeze", "on", "--reason", "x", "--until", "soon"]).await,
        2,
    );

    let off = parse(&expect_code(&cli(&["freeze", "off", "--json"]).await, 0));
    assert_eq!(
        (&off["frozen"], &off["in_force"]),
        (&Value::Bool(false), &Value::Bool(false))
    );
    let line = expect_code(&cli(&["freeze", "status"]).await, 0);
    assert!(line.starts_with("not frozen (lifted "), "{line}");
}

#[tokio::test]
async fn completions_cover_the_command_tree() {
    let home = TempDir::new().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let script = expect_code(&tutti(home.path(), None, &["completions", shell]).await, 0);
        assert!(
            script.contains("enroll-token") && script.contains("apply"),
            "{shell}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_applied_listed_previewed_and_switched() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let home = TempDir::new().unwrap();
    let cli = async |args: &[&str]| tutti(home.path(), Some(&server), args).await;
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("a-job.yaml"), ROTATE).unwrap();
    let schedule = "# nightly rotation\nkind: Schedule\nname: nightly\njob: rotate-logs\ntargets: {all: true}\ncron: \"0 3 * * *\"\ntimezone: Europe/Berlin\n";
    std::fs::write(dir.path().join("b-schedule.yaml"), schedule).unwrap();
    let applied = expect_code(
        &cli(&["apply", "-f", dir.path().to_str().unwrap()]).await,
        0,
    );
    assert!(
        applied.contains("schedule nightly") && applied.contains("created"),
        "{applied}"
    );

    let listed = parse(&expect_code(&cli(&["schedules", "--json"]).await, 0));
    assert_eq!(listed["total"], 1);
    assert!(listed["items"][0]["next_fire"].is_string(), "{listed:#}");
    let table = expect_code(&cli(&["schedules"]).await, 0);
    assert!(
        table.contains("cron 0 3 * * *") && table.contains("Europe/Berlin"),
        "{table}"
    );

    let args = [
        "schedules",
        "preview",
        "nightly",
        "--n",
        "2",
        "--after",
        "2026-03-28T00:00:00Z",
    ];
    let preview = expect_code(&cli(&args).await, 0);
    assert!(
        preview.contains("2026-03-28 03:00:00 +01:00")
            && preview.contains("2026-03-29 03:00:00 +02:00"),
        "{preview}"
    );
    expect_code(&cli(&["schedules", "disable", "nightly"]).await, 0);
    let listed = parse(&expect_code(&cli(&["schedules", "--json"]).await, 0));
    assert_eq!(
        (
            listed["items"][0]["enabled"].clone(),
            listed["items"][0]["next_fire"].clone()
        ),
        (Value::from(false), Value::Null)
    );
    let shown = expect_code(&cli(&["schedules", "show", "nightly"]).await, 0);
    assert!(
        shown.starts_with("# nightly rotation") && shown.contains("next fires: none"),
        "{shown}"
    );

    let mixed = dir.path().join("c-mixed.yaml");
    std::fs::write(&mixed, format!("{ROTATE}---\n{schedule}")).unwrap();
    let refused = cli(&["apply", "-f", mixed.to_str().unwrap()]).await;
    expect_code(&refused, 2);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("one kind of manifest"));
    let cron_coverage = cli(&["schedules", "coverage", "nightly"]).await;
    expect_code(&cron_coverage, 3);
    assert!(String::from_utf8_lossy(&cron_coverage.stderr).contains("desired-state"));
    let baseline = "kind: Schedule\nname: baseline\njob: rotate-logs\ntargets: {groups: [laptops]}\ndesired_state: {once_per_version: true}\n";
    let file = dir.path().join("d-baseline.yaml");
    std::fs::write(&file, baseline).unwrap();
    expect_code(&cli(&["apply", "-f", file.to_str().unwrap()]).await, 0);
    let coverage = parse(&expect_code(
        &cli(&["schedules", "coverage", "baseline", "--json"]).await,
        0,
    ));
    assert_eq!(
        coverage["totals"]["total"], 0,
        "nobody in the group yet: {coverage:#}"
    );
    expect_code(&cli(&["schedules", "delete", "nightly"]).await, 0);
    let missing = cli(&["schedules", "show", "nightly"]).await;
    expect_code(&missing, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_is_started_paused_and_resumed_from_the_cli() {
    let nats = TestNats::start();
    let server = TestServer::start(&nats).await;
    let _a = TestAgent::spawn(&server, "a-01").await;
    let _b = TestAgent::spawn(&server, "b-01").await;
    wait_online(&server, &["a-01", "b-01"]).await;
    let home = TempDir::new().unwrap();
    let cli = async |args: &[&str]| tutti(home.path(), Some(&server), args).await;

    let args = [
        "run",
        "--all",
        "--waves",
        "1,100%",
        "--wave-wait",
        "1h",
        "--json",
        "--",
        "echo",
        "hi",
    ];
    let created = parse(&expect_code(&cli(&args).await, 0));
    let run_id = created["run_id"].as_str().unwrap().to_string();
    let paused = parse(&expect_code(
        &cli(&["runs", "pause", &run_id, "--json"]).await,
        0,
    ));
    assert_eq!(paused["state"], "paused", "{paused:#}");
    assert_eq!(paused["held"], 1, "the second wave is held: {paused:#}");
    let resumed = expect_code(&cli(&["runs", "resume", &run_id]).await, 0);
    assert!(
        resumed.contains("rollout of run") && !resumed.contains("paused"),
        "{resumed}"
    );
    let bad = cli(&["run", "--all", "--waves", "50%,10%", "--", "true"]).await;
    expect_code(&bad, 3);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("waves"),
        "the server says what is wrong"
    );
}
