//! `/jobs/new` and `/jobs/{job_id}/edit`: a YAML editor with a line-number gutter.
//! "Validate" sends the text to `POST /api/v1/jobs?dry_run=true` and shows what applying
//! it would do, or the manifest error with its line and column (the gutter marks the line
//! and the caret moves there); "Save" applies it and opens the job. `assets/jobs.js` does
//! the requests; this file only renders the form.

use axum::extract::{Path, State};
use maud::{Markup, html};
use tutti_proto::JobId;

use crate::actor::Actor;
use crate::app::App;
use crate::views::parse_id;
use crate::web::layout::{Nav, shell};
use crate::web::{PageContext, PageResult};

/// What a new job starts from.
const TEMPLATE: &str = "\
# A job is a script tutti runs on the agents you pick.
# Saving a changed definition creates a new version; comments are kept.
kind: Job
name: my-job
description: Say hello from every machine
shell: sh               # sh, bash, python3, pwsh, powershell, cmd or builtin
timeout_secs: 300       # the process group is killed after this
# env:
#   GREETING: hello
script: |
  echo \"hello from $(hostname)\"
";

/// The editor for a new job.
pub(crate) async fn editor_new(State(app): State<App>, actor: Actor) -> PageResult {
    let ctx = PageContext::load(&app, actor).await;
    let content = editor_form(TEMPLATE, None);
    Ok(shell(&ctx, "New job", Nav::Jobs, content))
}

/// The editor for an existing job, prefilled with its current source.
pub(crate) async fn editor(
    State(app): State<App>,
    actor: Actor,
    Path(job_id): Path<String>,
) -> PageResult {
    let job_id: JobId = parse_id(&job_id)?;
    let ctx = PageContext::load(&app, actor).await;
    let job = app.store.get_job(&job_id).await?;
    // A job applied as JSON has no text; start from its definition as YAML-compatible JSON
    // lines rather than an empty editor.
    let source = if job.source_yaml.trim().is_empty() {
        json_as_manifest(&job.job_id, &job.definition)
    } else {
        job.source_yaml.clone()
    };
    let content = editor_form(&source, Some(&job_id));
    Ok(shell(
        &ctx,
        &format!("Edit job {job_id}"),
        Nav::Jobs,
        content,
    ))
}

/// A definition stored without text as a manifest: JSON is valid YAML.
fn json_as_manifest(job_id: &JobId, definition: &serde_json::Value) -> String {
    let mut manifest = serde_json::json!({ "kind": "Job", "name": job_id });
    if let (Some(target), Some(fields)) = (manifest.as_object_mut(), definition.as_object()) {
        for (key, value) in fields {
            if !value.is_null() {
                target.insert(key.clone(), value.clone());
            }
        }
    }
    serde_json::to_string_pretty(&manifest).unwrap_or_default()
}

fn editor_form(source: &str, job_id: Option<&JobId>) -> Markup {
    let n_lines = source.lines().count().max(1);
    let gutter: String = (1..=n_lines).map(|line| format!("{line}\n")).collect();
    let cancel = job_id.map_or("/jobs".to_string(), |id| format!("/jobs/{id}"));
    html! {
        section.card {
            div.card-head {
                h2 { @if let Some(id) = job_id { "Manifest of " (id) } @else { "Manifest" } }
                span.muted { "YAML · " kbd { "Ctrl" } "+" kbd { "Enter" } " validates" }
            }
            form.job-editor-form #job-editor-form data-editor {
                div.editor data-testid="job-editor-box" {
                    pre.gutter #editor-gutter aria-hidden="true" { (gutter) }
                    textarea.editor-text #job-editor name="source" data-testid="job-editor"
                        aria-label="Job manifest (YAML)" spellcheck="false" autocapitalize="off"
                        autocomplete="off" wrap="off" rows=(n_lines.clamp(18, 40)) { (source) }
                }
                p.form-error data-testid="editor-error" role="alert" {}
                p.editor-ok data-testid="editor-result" role="status" hidden {}
                div.actions {
                    button type="button" data-testid="validate-job" data-action="validate" { "Validate" }
                    button.primary type="submit" data-testid="save-job" { "Save" }
                    a.button href=(cancel) { "Cancel" }
                }
                p.hint { "Validation checks every field and compares with the stored version; nothing is saved until you press Save." }
            }
        }
        script src="/assets/jobs.js" defer {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_a_valid_manifest() {
        let jobs = crate::manifest::parse_yaml(TEMPLATE).expect("template parses");
        assert_eq!(jobs[0].manifest.name.as_str(), "my-job");
    }

    #[test]
    fn json_definitions_become_editable_manifests() {
        let job_id: JobId = "disk".parse().unwrap();
        let definition =
            serde_json::json!({"script": "df -h", "shell": "sh", "timeout_secs": 60, "cwd": null});
        let text = json_as_manifest(&job_id, &definition);
        let jobs = crate::manifest::parse_yaml(&text).expect("JSON text is YAML");
        assert_eq!(jobs[0].manifest.name, job_id);
    }
}
