//! The layering ARCHITECTURE.md states, checked on the manifests themselves (`cargo
//! metadata`) and on the resolved tree of the HTTP-only CLI (`cargo tree`), against an
//! expectation written here independently of both: which of our crates each crate may
//! use, which crates alone may use axum, SQL and the broker client, and that the test
//! harness is only ever a dev-dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Our crates each crate may depend on (normal and build dependencies, optional ones
/// included): dependencies point down this list, never up.
const ALLOWED: &[(&str, &[&str])] = &[
    ("tutti-proto", &[]),
    ("tutti-api", &["tutti-proto"]),
    ("tutti-bus", &["tutti-proto"]),
    ("tutti-kv", &[]),
    ("tutti-store", &["tutti-proto", "tutti-api"]),
    ("tutti-agent", &["tutti-proto", "tutti-bus", "tutti-kv"]),
    (
        "tutti-server",
        &[
            "tutti-proto",
            "tutti-api",
            "tutti-bus",
            "tutti-kv",
            "tutti-store",
        ],
    ),
    (
        "tutti-cli",
        &[
            "tutti-proto",
            "tutti-api",
            "tutti-bus",
            "tutti-agent",
            "tutti-server",
            "tutti-store",
        ],
    ),
    (
        "tutti-testkit",
        &["tutti-proto", "tutti-bus", "tutti-agent", "tutti-server"],
    ),
];

/// External crates that mark a layer, and the only crates that may depend on them.
const CONFINED: &[(&str, &[&str])] = &[
    ("axum", &["tutti-server"]),
    ("maud", &["tutti-server"]),
    ("rusqlite", &["tutti-store"]),
];

fn cargo() -> Command {
    let mut command = Command::new(env!("CARGO"));
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

/// Every workspace package's declared dependencies: `(name, kind)` per package.
fn declared() -> BTreeMap<String, Vec<(String, String)>> {
    let output = cargo()
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata is JSON");
    metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|package| {
            let dependencies = package["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .map(|dependency| {
                    let name = dependency["name"].as_str().unwrap().to_string();
                    let kind = dependency["kind"].as_str().unwrap_or("normal").to_string();
                    (name, kind)
                })
                .collect();
            (package["name"].as_str().unwrap().to_string(), dependencies)
        })
        .collect()
}

#[test]
fn crates_depend_only_downwards_and_layer_markers_stay_in_their_crate() {
    let packages = declared();
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(name, deps)| (*name, deps.iter().copied().collect()))
        .collect();
    let ours: BTreeSet<&str> = allowed.keys().copied().collect();
    let workspace: BTreeSet<&str> = packages.keys().map(String::as_str).collect();
    assert_eq!(
        workspace, ours,
        "a crate was added or removed: give it its place in ALLOWED (and ARCHITECTURE.md)"
    );
    let mut broken = Vec::new();
    for (package, dependencies) in &packages {
        for (dependency, kind) in dependencies {
            let is_ours = ours.contains(dependency.as_str());
            if dependency == "tutti-testkit" && kind != "dev" {
                broken.push(format!("{package} depends on tutti-testkit as {kind}"));
            }
            if is_ours && kind != "dev" && !allowed[package.as_str()].contains(dependency.as_str())
            {
                broken.push(format!("{package} -> {dependency} ({kind}) is not allowed"));
            }
            for (marker, owners) in CONFINED {
                if dependency == marker && kind != "dev" && !owners.contains(&package.as_str()) {
                    broken.push(format!(
                        "{package} uses {marker}, which only {owners:?} may"
                    ));
                }
            }
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

/// `cargo build -p tutti-cli --no-default-features` is an HTTP client: its tree holds the
/// API's types and the wire types, not the server, the agent, the store or the bus.
#[test]
fn the_cli_without_default_features_links_no_server_agent_or_store() {
    let output = cargo()
        .args([
            "tree",
            "--offline",
            "-p",
            "tutti-cli",
            "--no-default-features",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .output()
        .expect("run cargo tree");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    let crates: BTreeSet<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    for wanted in ["tutti-api", "tutti-proto", "reqwest"] {
        assert!(crates.contains(wanted), "{wanted} missing from:\n{tree}");
    }
    for unwanted in [
        "tutti-server",
        "tutti-agent",
        "tutti-store",
        "tutti-bus",
        "axum",
        "rusqlite",
        "async-nats",
    ] {
        assert!(
            !crates.contains(unwanted),
            "{unwanted} is in the HTTP-only CLI's tree"
        );
    }
}
