//! `tutti apply -f FILE|DIR`: send job manifests to `POST /api/v1/jobs` as YAML, one request
//! per file, and show what each document did (created / changed / unchanged), with a short
//! diff of the manifest for changed jobs. `--dry-run` asks the server to validate and
//! compare only (`?dry_run=true`), and diffs the stored manifest against the file's.
//!
//! The server validates every document of a request before storing any and reports the
//! first error as `line L, column C: …` relative to the request body. Since a request is one
//! file, that position is exactly `FILE:L:C`, which is how errors are printed (exit 2).

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};
use tutti_api::Paged;
use tutti_api::jobs::{Applied, ApplyResponse, ApplyResult, Job, JobVersion};
use tutti_api::schedules::{AppliedSchedule, ScheduleApplyResponse};

use crate::args::ApplyArgs;
use crate::client::{ApiClient, CliError, urlencode};
use crate::diff::line_diff;
use crate::output::{print_json, table};

/// Unchanged lines shown around each change in a diff.
const DIFF_CONTEXT: usize = 1;
/// Diff lines shown per job before the rest is summarised.
const DIFF_MAX_LINES: usize = 20;

/// Applies every manifest file; exit 2 when any file was refused.
pub(crate) async fn apply(client: &ApiClient, args: ApplyArgs, json: bool) -> Result<(), CliError> {
    let files = manifest_files(&args.path)?;
    let mut answers = Vec::new();
    let mut n_refused = 0;
    let query = if args.dry_run { "?dry_run=true" } else { "" };
    for file in &files {
        let text = std::fs::read_to_string(file)
            .map_err(|err| CliError::Usage(format!("cannot read {}: {err}", file.display())))?;
        let collection = route_of(file, &text)?;
        match send(client, collection, query, &text).await {
            Ok(outcomes) => answers.push((file.clone(), outcomes, text)),
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
            .map(|(file, outcomes, _)| json!({ "file": file.display().to_string(), "applied": outcomes, "dry_run": args.dry_run }))
            .collect();
        print_json(&json!(files));
    } else if !answers.is_empty() {
        print_table(&answers);
        match args.dry_run {
            true => {
                print_planned_diffs(client, &answers).await;
                println!("\ndry run: nothing was stored");
            }
            false => print_diffs(client, &answers).await,
        }
    }
    if n_refused > 0 {
        return Err(CliError::Usage(format!(
            "{n_refused} of {} file(s) not applied: fix the errors above and apply again",
            files.len()
        )));
    }
    Ok(())
}

/// What applying one document did: a job or a schedule. Serialised as the server sent it.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Outcome {
    Job(Applied),
    Schedule(AppliedSchedule),
}

impl Outcome {
    fn result(&self) -> ApplyResult {
        match self {
            Outcome::Job(applied) => applied.result,
            Outcome::Schedule(applied) => applied.result,
        }
    }

    /// The job a changed document changed.
    fn changed_job(&self) -> Option<&Applied> {
        match self {
            Outcome::Job(applied) if applied.result == ApplyResult::Changed => Some(applied),
            _ => None,
        }
    }
}

/// Sends one file's manifests to their collection.
async fn send(
    client: &ApiClient,
    collection: &str,
    query: &str,
    text: &str,
) -> Result<Vec<Outcome>, CliError> {
    let route = format!("{collection}{query}");
    Ok(match collection {
        "schedules" => client
            .post_yaml::<ScheduleApplyResponse>(&route, text.to_string())
            .await?
            .applied
            .into_iter()
            .map(Outcome::Schedule)
            .collect(),
        _ => client
            .post_yaml::<ApplyResponse>(&route, text.to_string())
            .await?
            .applied
            .into_iter()
            .map(Outcome::Job)
            .collect(),
    })
}

/// The collection a file's manifests go to, from their `kind:` lines. A file holds one
/// kind, so that the server's line numbers stay the file's.
fn route_of(file: &Path, text: &str) -> Result<&'static str, CliError> {
    let kinds: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("kind:"))
        .map(|kind| kind.trim().trim_matches(|c| c == '"' || c == '\''))
        .collect();
    match kinds.into_iter().collect::<Vec<_>>().as_slice() {
        ["Schedule"] => Ok("schedules"),
        ["Job"] | [] => Ok("jobs"),
        [one] => Err(CliError::Usage(format!(
            "{}: unknown kind {one:?} (expected Job or Schedule)",
            file.display()
        ))),
        _ => Err(CliError::Usage(format!(
            "{}: a file holds one kind of manifest; put jobs and schedules in separate files",
            file.display()
        ))),
    }
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

/// A file, what applying it did, and its text.
type Answer = (PathBuf, Vec<Outcome>, String);

fn print_table(answers: &[Answer]) {
    let mut rows = table(&["FILE", "NAME", "RESULT", "VERSION"]);
    for (file, outcomes, _) in answers {
        for outcome in outcomes {
            let result = outcome.result();
            // Schedules have no versions.
            let (name, shown_version) = match outcome {
                Outcome::Job(applied) => {
                    let version = applied.version;
                    let shown = match result {
                        ApplyResult::Changed => {
                            format!("{} → {version}", version.saturating_sub(1))
                        }
                        _ => version.to_string(),
                    };
                    (applied.job_id.to_string(), shown)
                }
                Outcome::Schedule(applied) => (format!("schedule {}", applied.name), "-".into()),
            };
            rows.add_row(vec![
                comfy_table::Cell::new(file.display()),
                comfy_table::Cell::new(name),
                result_cell(result),
                comfy_table::Cell::new(shown_version),
            ]);
        }
    }
    println!("{rows}");
}

fn result_cell(result: ApplyResult) -> comfy_table::Cell {
    let color = match result {
        ApplyResult::Created => comfy_table::Color::Green,
        ApplyResult::Changed => comfy_table::Color::Cyan,
        ApplyResult::Unchanged => comfy_table::Color::Reset,
    };
    comfy_table::Cell::new(result.as_str()).fg(color)
}

/// For each changed job, the diff between its previous and its new manifest. A diff that
/// cannot be fetched is left out: the table above already says what happened.
async fn print_diffs(client: &ApiClient, answers: &[Answer]) {
    let changed = answers
        .iter()
        .flat_map(|(_, outcomes, _)| outcomes.iter().filter_map(Outcome::changed_job));
    for applied in changed {
        let job_id = &applied.job_id;
        let path = format!("jobs/{}/versions?limit=2", urlencode(job_id.as_str()));
        let Ok(versions) = client.get::<Paged<JobVersion>>(&path).await else {
            continue;
        };
        let [new, old, ..] = versions.items.as_slice() else {
            continue;
        };
        println!("\n{job_id}: v{} → v{}", old.version, new.version);
        print_diff(job_id.as_str(), &old.source_yaml, &new.source_yaml);
    }
}

/// For each job a dry run would change, the diff between the stored manifest and the
/// file's document for that job.
async fn print_planned_diffs(client: &ApiClient, answers: &[Answer]) {
    for (_, outcomes, file_text) in answers {
        for applied in outcomes.iter().filter_map(Outcome::changed_job) {
            let job_id = applied.job_id.as_str();
            let path = format!("jobs/{}", urlencode(job_id));
            let Ok(stored) = client.get::<Job>(&path).await else {
                continue;
            };
            let Some(document) = document_of(file_text, job_id) else {
                continue;
            };
            println!(
                "\n{job_id}: v{} → v{} (planned)",
                stored.version, applied.version
            );
            print_diff(job_id, &stored.source_yaml, document);
        }
    }
}

/// The document of a multi-document manifest that defines `job_id`.
fn document_of<'a>(file_text: &'a str, job_id: &str) -> Option<&'a str> {
    let name_line = format!("name: {job_id}");
    file_text
        .split("\n---")
        .find(|document| document.lines().any(|line| line.trim_end() == name_line))
        .map(|document| document.trim_start_matches('\n'))
}

fn print_diff(job_id: &str, old: &str, new: &str) {
    let lines = line_diff(old, new, DIFF_CONTEXT);
    for line in lines.iter().take(DIFF_MAX_LINES) {
        println!("  {line}");
    }
    if lines.len() > DIFF_MAX_LINES {
        println!(
            "  … {} more line(s); the whole manifest: `tutti jobs show {job_id}`",
            lines.len() - DIFF_MAX_LINES
        );
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
