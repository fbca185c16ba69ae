//! Every `tutti` and `tutti-agent` command the README and `docs/deploy.md` show must exist:
//! each one in a fenced `sh` block is run with `--help` inserted before its operands, so
//! clap checks its subcommands and flags without doing anything. (The README once showed
//! `tutti server`, which did not exist.) What the commands do is tested by the stories in
//! `deploy.rs`, `up.rs`, `cli.rs` and the agent's `install.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

/// The commands of the fenced `sh` blocks, continuation lines joined.
fn shell_commands(markdown: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in markdown.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_block = trimmed == "```sh";
            continue;
        }
        if !in_block || trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let code = trimmed.split(" #").next().unwrap_or_default();
        match code.strip_suffix('\\') {
            Some(head) => pending.push_str(head),
            None => {
                pending.push_str(code);
                commands.push(std::mem::take(&mut pending));
            }
        }
    }
    commands
}

/// Splits on whitespace, keeping quoted strings whole (quotes removed).
fn words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote = None;
    for character in command.chars() {
        match (quote, character) {
            (None, '\'' | '"') => quote = Some(character),
            (Some(open), _) if character == open => quote = None,
            (None, c) if c.is_whitespace() => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            (_, c) => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// The `tutti`/`tutti-agent` invocations of one shell line (after `|`, `&&`, `sudo` and
/// `VAR=value` prefixes, before any `>`/`>>` redirection; `cargo run -p tutti-cli -- ARGS`
/// is `tutti ARGS`).
fn invocations(command: &str) -> Vec<Vec<String>> {
    command
        .split("&&")
        .flat_map(|part| part.split('|'))
        .map(words)
        .filter_map(|words| {
            let program_idx = words
                .iter()
                .position(|word| word != "sudo" && !word.contains('='))?;
            let mut invocation: Vec<String> = words[program_idx..]
                .iter()
                .take_while(|word| !word.starts_with('>') && !word.starts_with("2>"))
                .cloned()
                .collect();
            if invocation[0] == "cargo" && invocation.iter().any(|word| word == "tutti-cli") {
                let args_idx = invocation.iter().position(|word| word == "--")?;
                invocation = std::iter::once("tutti".to_string())
                    .chain(invocation[args_idx + 1..].iter().cloned())
                    .collect();
            }
            matches!(invocation[0].as_str(), "tutti" | "tutti-agent").then_some(invocation)
        })
        .collect()
}

fn binary(program: &str) -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_tutti")).with_file_name(program)
}

#[test]
fn every_documented_command_exists() {
    let mut checked = 0;
    for doc in ["README.md", "docs/deploy.md"] {
        let text = std::fs::read_to_string(repo_file(doc)).unwrap();
        for command in shell_commands(&text) {
            for mut invocation in invocations(&command) {
                let program = invocation.remove(0);
                let at = invocation
                    .iter()
                    .position(|word| word == "--")
                    .unwrap_or(invocation.len());
                invocation.insert(at, "--help".to_string());
                let output = Command::new(binary(&program))
                    .args(&invocation)
                    .env_clear()
                    .output()
                    .unwrap_or_else(|err| panic!("{doc}: run {program}: {err}"));
                assert!(
                    output.status.success(),
                    "{doc}: `{command}` is not a valid {program} command:\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 14, "only {checked} commands found in the docs");
}

#[test]
fn invocations_are_found_behind_sudo_pipes_and_variables() {
    let found = invocations(
        "curl -fsSL 'https://x/install.sh' | sudo TUTTI_CA=ca.pem tutti-agent install --profile restricted && tutti agents",
    );
    assert_eq!(
        found,
        [
            vec!["tutti-agent", "install", "--profile", "restricted"],
            vec!["tutti", "agents"],
        ]
    );
    assert_eq!(words("a 'b c' \"d\""), ["a", "b c", "d"]);
    let blocks = shell_commands("```sh\ntutti a \\\n  --b\n# note\n```\n```toml\ntutti = 1\n```\n");
    assert_eq!(blocks, ["tutti a --b"]);
    assert_eq!(
        invocations("tutti server --print-broker-config >> /etc/nats/nats.conf"),
        [vec!["tutti", "server", "--print-broker-config"]]
    );
    assert_eq!(
        invocations("cargo run --release -p tutti-cli -- up --tls"),
        [vec!["tutti", "up", "--tls"]]
    );
}
