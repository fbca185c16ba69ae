//! `tutti apply -f FILE|DIR`: send job manifests to `POST /api/v1/jobs` as YAML, one request
//! per file, and show what each document did (created / changed / unchanged), with a short
//! diff of the manifest for changed jobs.
//!
//! The server validates every document of a request before storing any and reports the
//! first error as `line L, column C: …` relative to the request body. Since a request is one
//! file, that position is exactly `FILE:L:C`, which is how errors are printed (exit 2).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::args::ApplyArgs;
use crate::client::{ApiClient, CliError};
use crate::diff::line_diff;
use crate::output::{print_json, table, text};

/// Unchanged lines shown around each change in a diff.
const DIFF_CONTEXT: usize = 1;
/// Diff lines shown per job before the rest is summarised.
const DIFF_MAX_LINES: usize = 20;

/// Applies every manifest file; exit 2 when any file was refused.
pub(crate) async fn apply(client: &ApiClient, args: ApplyArgs, json: bool) -> Result<(), CliError> {
    let files = manifest_files(&args.path)?;
    let mut answers = Vec::new();
    let mut n_refused = 0;
    for file in &files {
        let text = std::fs::read_to_string(file)
            .map_err(|err| CliError::Usage(format!("cannot read {}: {err}", file.display())))?;
        match client.post_yaml::<Value>("jobs", text).await {
            Ok(answer) => answers.push((file.clone(), answer)),
            Err(CliError::Refused {
                status: 400,
                message,
            }) => {
                eprintln!("{}", located(file, &message));
                n_refused += 1;
            }
            Err(err) => return Err(err),
        }
    }
    if json {
        let files: Vec<Value> = answers
            .iter()
            .map(|(file, answer)| json!({ "file": file.display().to_string(), "applied": answer["applied"] }))
            .collect();
        print_json(&json!(files));
    } else if !answers.is_empty() {
        print_table(&answers);
        print_diffs(client, &answers).await;
    }
    if n_refused > 0 {
        return Err(CliError::Usage(format!(
            "{n_refused} of {} file(s) not applied: fix the errors above and apply again",
            files.len()
        )));
    }
    Ok(())
}

/// The file itself, or the `*.yaml` / `*.yml` files of a directory sorted by name.
fn manifest_files(path: &Path) -> Result<Vec<PathBuf>, CliError> {
    let unreadable =
        |err: std::io::Error| CliError::Usage(format!("cannot read {}: {err}", path.display()));
    if !path.metadata().map_err(unreadable)?.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(unreadable)? {
        let file = entry.map_err(unreadable)?.path();
        let is_yaml = file
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml");
        if is_yaml && file.is_file() {
            files.push(file);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(CliError::Usage(format!(
            "no *.yaml or *.yml files in {}",
            path.display()
        )));
    }
    Ok(files)
}

/// `line L, column C: message` from the server → `FILE:L:C: message`; a message without a
/// position (e.g. a job defined twice) → `FILE: message`.
fn located(file: &Path, message: &str) -> String {
    let position = message.strip_prefix("line ").and_then(|rest| {
        let (line, rest) = rest.split_once(", column ")?;
        let (column, rest) = rest.split_once(": ")?;
        let line: u64 = line.parse().ok()?;
        let column: u64 = column.parse().ok()?;
        Some((line, column, rest))
    });
    match position {
        Some((line, column, rest)) => format!("{}:{line}:{column}: {rest}", file.display()),
        None => format!("{}: {message}", file.display()),
    }
}

fn print_table(answers: &[(PathBuf, Value)]) {
    let mut rows = table(&["FILE", "JOB", "RESULT", "VERSION"]);
    for (file, answer) in answers {
        for applied in answer["applied"].as_array().into_iter().flatten() {
            let result = text(applied, "result");
            let version = applied["version"].as_u64().unwrap_or(0);
            let shown_version = if result == "changed" {
                format!("{} → {version}", version.saturating_sub(1))
            } else {
                version.to_string()
            };
            rows.add_row(vec![
                comfy_table::Cell::new(file.display()),
                comfy_table::Cell::new(text(applied, "job_id")),
                result_cell(&result),
                comfy_table::Cell::new(shown_version),
            ]);
        }
    }
    println!("{rows}");
}

fn result_cell(result: &str) -> comfy_table::Cell {
    let color = match result {
        "created" => comfy_table::Color::Green,
        "changed" => comfy_table::Color::Cyan,
        _ => comfy_table::Color::Reset,
    };
    comfy_table::Cell::new(result).fg(color)
}

/// For each changed job, the diff between its previous and its new manifest. A diff that
/// cannot be fetched is left out: the table above already says what happened.
async fn print_diffs(client: &ApiClient, answers: &[(PathBuf, Value)]) {
    let changed = answers
        .iter()
        .flat_map(|(_, answer)| answer["applied"].as_array().into_iter().flatten())
        .filter(|applied| text(applied, "result") == "changed");
    for applied in changed {
        let job_id = text(applied, "job_id");
        let Ok(versions) = client
            .get::<Value>(&format!("jobs/{job_id}/versions?limit=2"))
            .await
        else {
            continue;
        };
        let (Some(new), Some(old)) = (versions["items"].get(0), versions["items"].get(1)) else {
            continue;
        };
        println!(
            "\n{job_id}: v{} → v{}",
            text(old, "version"),
            text(new, "version")
        );
        let Some(lines) = line_diff(
            &text(old, "source_yaml"),
            &text(new, "source_yaml"),
            DIFF_CONTEXT,
        ) else {
            println!("  (manifest too large to diff; see `tutti jobs show {job_id}`)");
            continue;
        };
        for line in lines.iter().take(DIFF_MAX_LINES) {
            println!("  {line}");
        }
        if lines.len() > DIFF_MAX_LINES {
            println!("  … {} more line(s)", lines.len() - DIFF_MAX_LINES);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_positions_become_file_line_column() {
        let file = Path::new("jobs/a.yaml");
        assert_eq!(
            located(file, "line 8, column 1: unknown field `shel`"),
            "jobs/a.yaml:8:1: unknown field `shel`"
        );
        assert_eq!(
            located(file, "job a is defined twice in one manifest"),
            "jobs/a.yaml: job a is defined twice in one manifest"
        );
    }
}
