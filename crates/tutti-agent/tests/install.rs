//! `tutti-agent install` and `uninstall` end to end: the real binary installs into a temp
//! directory as its root (`--root DIR --no-start`), and the tests read what it left there.
//! The rendered unit is also checked by `systemd-analyze verify` where that exists, and
//! always by a structural check of its own, so a machine without systemd still checks
//! something.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const UNIT: &str = "etc/systemd/system/tutti-agent.service";
const CONFIG: &str = "etc/tutti/agent.toml";
const STATE: &str = "var/lib/tutti-agent";

/// A temp directory standing in for `/`, and the agent binary that installs into it.
struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new() -> Root {
        Root {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn agent(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tutti-agent"))
            .args(args)
            .arg("--root")
            .arg(self.dir.path())
            .output()
            .unwrap()
    }

    /// Runs `install --no-start --binary BINARY` plus `args` and asserts success.
    fn install(&self, binary: &str, args: &[&str]) -> String {
        let mut all = vec!["install", "--no-start", "--binary", binary];
        all.extend_from_slice(args);
        succeeded(self.agent(&all))
    }

    fn uninstall(&self, args: &[&str]) -> String {
        let mut all = vec!["uninstall"];
        all.extend_from_slice(args);
        succeeded(self.agent(&all))
    }

    fn unit(&self) -> String {
        fs::read_to_string(self.path(UNIT)).unwrap()
    }
}

fn succeeded(output: Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    stdout
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn install_writes_unit_config_and_a_private_state_dir() {
    let root = Root::new();
    let stdout = root.install("/opt/tutti/bin/tutti-agent", &[]);
    let unit = root.unit();
    assert!(
        unit.contains(
            "\nExecStart=/opt/tutti/bin/tutti-agent run --config /etc/tutti/agent.toml\n"
        ),
        "{unit}"
    );
    assert!(unit.contains("hardening profile: admin"), "{unit}");
    assert!(!unit.contains("ProtectSystem="), "{unit}");
    assert_eq!(
        fs::read_to_string(root.path(CONFIG)).unwrap(),
        tutti_agent::config::EXAMPLE
    );
    assert_eq!(mode(&root.path(STATE)), 0o700);
    assert!(stdout.contains("not started (--no-start)"), "{stdout}");
    assert!(
        stdout.contains("systemctl enable --now tutti-agent.service"),
        "{stdout}"
    );
}

#[test]
fn the_restricted_profile_makes_the_system_read_only_but_the_state_dir() {
    let root = Root::new();
    root.install("/usr/bin/tutti-agent", &["--profile", "restricted"]);
    let unit = root.unit();
    for line in [
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/tutti-agent",
        "NoNewPrivileges=yes",
        "ProtectHome=read-only",
        "PrivateTmp=yes",
        "RestrictSUIDSGID=yes",
    ] {
        assert!(unit.lines().any(|l| l == line), "missing {line}:\n{unit}");
    }
}

#[test]
fn a_second_install_keeps_an_edited_config() {
    let root = Root::new();
    root.install("/usr/bin/tutti-agent", &[]);
    let edited = "state_dir = \"/srv/tutti-state\"\nlog_level = \"debug\"\n";
    fs::write(root.path(CONFIG), edited).unwrap();
    let stdout = root.install("/usr/bin/tutti-agent", &["--profile", "restricted"]);
    assert_eq!(fs::read_to_string(root.path(CONFIG)).unwrap(), edited);
    assert!(stdout.contains("kept the existing"), "{stdout}");
    // The unit and the state directory follow the edited config.
    assert_eq!(mode(&root.path("srv/tutti-state")), 0o700);
    assert!(root.unit().contains("\nReadWritePaths=/srv/tutti-state\n"));
}

#[test]
fn install_copies_a_given_config() {
    let root = Root::new();
    let source = root.path("given.toml");
    fs::write(&source, "log_level = \"warn\"\n").unwrap();
    root.install(
        "/usr/bin/tutti-agent",
        &["--config", source.to_str().unwrap()],
    );
    assert_eq!(
        fs::read_to_string(root.path(CONFIG)).unwrap(),
        "log_level = \"warn\"\n"
    );
}

#[test]
fn a_config_that_does_not_parse_exits_2_naming_the_file() {
    let root = Root::new();
    let source = root.path("broken.toml");
    fs::write(&source, "log_levle = \"warn\"\n").unwrap();
    let output = root.agent(&[
        "install",
        "--no-start",
        "--binary",
        "/usr/bin/tutti-agent",
        "--config",
        source.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(source.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("log_levle"), "{stderr}");
    assert!(
        !root.path(UNIT).exists(),
        "nothing is installed from a bad config"
    );
}

#[test]
fn a_relative_binary_is_refused() {
    let root = Root::new();
    let output = root.agent(&["install", "--no-start", "--binary", "tutti-agent"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("absolute path"), "{stderr}");
}

#[test]
fn uninstall_removes_the_unit_and_keeps_config_and_state_twice_over() {
    let root = Root::new();
    root.install("/usr/bin/tutti-agent", &[]);
    fs::write(root.path(STATE).join("identity.json"), "{}").unwrap();
    root.uninstall(&[]);
    assert!(!root.path(UNIT).exists());
    assert!(root.path(CONFIG).exists());
    assert!(root.path(STATE).join("identity.json").exists());
    let stdout = root.uninstall(&[]);
    assert!(stdout.contains("already gone"), "{stdout}");
}

#[test]
fn uninstall_purge_removes_the_state_dir() {
    let root = Root::new();
    root.install("/usr/bin/tutti-agent", &[]);
    fs::write(root.path(STATE).join("identity.json"), "{}").unwrap();
    root.uninstall(&["--purge"]);
    assert!(!root.path(UNIT).exists());
    assert!(!root.path(STATE).exists());
    assert!(root.path(CONFIG).exists());
    root.uninstall(&["--purge"]);
}

#[test]
fn purge_leaves_a_state_dir_not_named_for_tutti_to_the_operator() {
    let root = Root::new();
    root.install("/usr/bin/tutti-agent", &[]);
    fs::write(root.path(CONFIG), "state_dir = \"/srv/agent-data\"\n").unwrap();
    root.install("/usr/bin/tutti-agent", &[]);
    let output = root.agent(&["uninstall", "--purge"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("remove it by hand"), "{stderr}");
    assert!(root.path("srv/agent-data").is_dir());
}

#[test]
fn both_profiles_render_valid_units() {
    // ExecStart must name an existing executable for systemd-analyze; this test binary is one.
    let binary = env!("CARGO_BIN_EXE_tutti-agent");
    for profile in ["admin", "restricted"] {
        let root = Root::new();
        root.install(binary, &["--profile", profile]);
        check_unit_structure(&root.unit());
        verify_with_systemd(&root.path(UNIT));
    }
}

/// What systemd needs to load the unit: the three sections in order, and every other
/// non-comment line a `Key=Value` with a key systemd could know.
fn check_unit_structure(unit: &str) {
    let sections: Vec<&str> = unit.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(sections, ["[Unit]", "[Service]", "[Install]"], "{unit}");
    for line in unit.lines() {
        if line.is_empty() || line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not Key=Value: {line}"));
        assert!(
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric()),
            "bad key in {line}"
        );
        assert!(
            !value.is_empty() && value.trim() == value,
            "bad value in {line}"
        );
    }
}

/// `systemd-analyze verify` exits 0 even on unknown keys and values it cannot parse, so
/// any message about the unit fails the test.
fn verify_with_systemd(unit_path: &Path) {
    let Ok(output) = Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit_path)
        .output()
    else {
        eprintln!("systemd-analyze is not installed: only the structural check ran");
        return;
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    let about_unit: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("tutti-agent"))
        .collect();
    assert!(output.status.success(), "{stderr}");
    assert!(about_unit.is_empty(), "{stderr}");
}
