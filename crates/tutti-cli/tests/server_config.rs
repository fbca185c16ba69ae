//! `tutti server --config FILE --check` on bad configs: each exits 2 and names the file,
//! the line where the key is written, and the key, so an operator fixes it from the
//! message alone. The documented example passes, and a port in use stops `tutti server`
//! itself (not only `--check`) with exit 2 naming `listen`.

use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

/// Runs `tutti server --config <dir>/server.toml --check` with no `TUTTI_*` overrides.
fn check(dir: &Path, text: &str) -> (i32, String) {
    let path = dir.join("server.toml");
    std::fs::write(&path, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args(["server", "--check", "--config"])
        .arg(&path)
        .env_clear()
        .output()
        .expect("run tutti server --check");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    (output.status.code().unwrap_or(-1), stderr)
}

/// One bad config: its text, and what the message must start with after the file name.
struct Case {
    text: String,
    expected: &'static str,
}

fn case(text: impl Into<String>, expected: &'static str) -> Case {
    Case {
        text: text.into(),
        expected,
    }
}

#[test]
fn bad_configs_exit_2_naming_file_line_and_key() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("missing.pem");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let a_dir = dir.path().display().to_string();
    let cases = [
        case(
            "listen = \"127.0.0.1:1\"\nlisten_addr = 1\n",
            ":2: listen_addr: unknown field",
        ),
        case(
            "[http]\nbody_limit = 5\n",
            ":2: http.body_limit: unknown field",
        ),
        case("listen = 8080\n", ":1: listen: "),
        case("listen = \"localhost\"\n", ":1: listen: "),
        case(
            "[storage]\nreplicas = \"three\"\n",
            ":2: storage.replicas: ",
        ),
        case(
            "[storage]\nreplicas = 0\n",
            ":2: storage.replicas: must be between 1 and 5",
        ),
        case(
            "[bus]\nurls = []\n",
            ":2: bus.urls: must name at least one broker",
        ),
        case(
            "[bus]\nurls = [\"http://broker:4222\"]\n",
            ":2: bus.urls: \"http://broker:4222\" has scheme",
        ),
        case(
            "[bus]\nurls = [\"nats://broker:port\"]\n",
            ":2: bus.urls: \"nats://broker:port\" has an invalid port",
        ),
        case(
            format!("[http]\ntls_cert_file = {missing:?}\ntls_key_file = {missing:?}\n"),
            ":2: http.tls_cert_file: cannot read",
        ),
        case(
            format!("[http]\ntls_key_file = {garbage:?}\n"),
            ":2: http.tls_key_file: needs http.tls_cert_file",
        ),
        case(
            format!("[http]\ntls_cert_file = {garbage:?}\ntls_key_file = {a_dir:?}\n"),
            ":3: http.tls_key_file: ",
        ),
        case(
            format!("[http]\ntls_cert_file = {garbage:?}\ntls_key_file = {garbage:?}\n"),
            ":2: http.tls_cert_file: ",
        ),
        case(
            "[http]\ntrusted_proxies = [\"proxy.lan\"]\n",
            ":2: http.trusted_proxies: ",
        ),
        case(
            "public_url = \"ftp://tutti.example.com\"\n",
            ":1: public_url: ",
        ),
        case(
            "[log]\nformat = \"xml\"\n",
            ":2: log.format: unknown variant `xml`",
        ),
        case("[log]\nlevel = \"info,=[\"\n", ":2: log.level: "),
        case(
            format!("[enrollment]\nnats_ca_file = {garbage:?}\n"),
            ":2: enrollment.nats_ca_file: ",
        ),
        case(
            "[enrollment]\nnats_auth = { method = \"password\" }\n",
            ":2: enrollment.nats_auth.method: unknown variant `password`",
        ),
        case(
            "[scheduler]\nlease_ttl_secs = 40\n",
            ":2: scheduler.lease_ttl_secs: must be between 2 and 29",
        ),
        case(
            "[auth]\nsession_ttl_secs = 0\n",
            ":2: auth.session_ttl_secs: must be at least 1",
        ),
        case("[http\nbody_limit_bytes = 1\n", ":1: "),
    ];
    for (case_idx, case) in cases.iter().enumerate() {
        let (code, stderr) = check(dir.path(), &case.text);
        let expected = format!(
            "tutti: {}/server.toml{}",
            dir.path().display(),
            case.expected
        );
        assert_eq!(code, 2, "case {case_idx}: {:?}\n{stderr}", case.text);
        assert!(
            stderr.starts_with(&expected),
            "case {case_idx}: {:?}\nexpected a message starting with {expected:?}\ngot {stderr:?}",
            case.text
        );
    }
}

#[test]
fn a_missing_file_exits_2_and_the_documented_example_passes() {
    let dir = TempDir::new().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args(["server", "--check", "--config"])
        .arg(dir.path().join("nope.toml"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("nope.toml: cannot read the config file"),
        "{stderr}"
    );

    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tutti-server/server.example.toml"
    );
    let packaged = concat!(env!("CARGO_MANIFEST_DIR"), "/dist/server.toml");
    for path in [example, packaged] {
        let output = Command::new(env!("CARGO_BIN_EXE_tutti"))
            .args(["server", "--check", "--config", path])
            .env_clear()
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{path}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains(": ok (http on "), "{stdout}");
    }
}

#[test]
fn environment_overrides_are_checked_and_named() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("server.toml");
    std::fs::write(&path, "").unwrap();
    let run = |name: &str, value: &str| {
        Command::new(env!("CARGO_BIN_EXE_tutti"))
            .args(["server", "--check", "--config"])
            .arg(&path)
            .env_clear()
            .env(name, value)
            .output()
            .unwrap()
    };
    let good = run("TUTTI_LISTEN", "0.0.0.0:9443");
    assert!(String::from_utf8_lossy(&good.stdout).contains("http on 0.0.0.0:9443"));
    let bad = run("TUTTI_NATS_URLS", "nats://a:4222,broker-b");
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("bus.urls: \"broker-b\" is not a URL"),
        "{stderr}"
    );
}

#[test]
fn a_port_in_use_stops_the_server_with_exit_2_naming_listen() {
    let dir = TempDir::new().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy.local_addr().unwrap();
    let path = dir.path().join("server.toml");
    let data_dir = dir.path().join("data");
    std::fs::write(
        &path,
        format!("data_dir = {data_dir:?}\nlisten = \"{address}\"\n"),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args(["server", "--config"])
        .arg(&path)
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!("{}:2: listen: cannot listen on {address}", path.display());
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(
        !data_dir.exists(),
        "nothing was created before the bind failed"
    );
}

#[test]
fn the_broker_config_trusts_the_servers_keys_and_needs_them_configured() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("server.toml");
    let keys = dir.path().join("broker-keys");
    let data = dir.path().join("data");
    std::fs::write(
        &path,
        format!("data_dir = {data:?}\n[broker_identity]\nkeys_dir = {keys:?}\n"),
    )
    .unwrap();
    let print = || {
        Command::new(env!("CARGO_BIN_EXE_tutti"))
            .args(["server", "--print-broker-config", "--config"])
            .arg(&path)
            .env_clear()
            .output()
            .unwrap()
    };
    let output = print();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for line in [
        "operator: \"",
        "system_account: A",
        "type: full",
        "resolver_preload",
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    // The same keys the next time: the broker keeps trusting the server.
    let operator = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("system_account"))
            .map(String::from)
    };
    assert_eq!(
        operator(&stdout),
        operator(&String::from_utf8_lossy(&print().stdout))
    );

    std::fs::write(&path, format!("data_dir = {data:?}\n")).unwrap();
    let output = print();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("broker_identity.keys_dir: is not set"),
        "{stderr}"
    );
}
