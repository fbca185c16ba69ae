//! The **Run now** form of a job page. Its fields are flat (a target mode, two lists, a
//! few numbers); `window.tutti.shapes.run` in `assets/jobs.js` turns them into the body of
//! `POST /api/v1/runs` — `{job_id, targets: {all, groups, agents}, deadline, rollout}`,
//! the same JSON `tutti run` builds — and the API checks every field.

use maud::{Markup, html};
use tutti_store::Job;

/// The run form for `job`.
pub(super) fn run_form(job: &Job) -> Markup {
    html! {
        section.card #run-now {
            div.card-head { h2 { "Run now" } span.muted { "runs version " (job.version) } }
            form.run-form data-testid="run-form" data-api="POST /api/v1/runs" data-shape="run"
                data-then="go:/runs/{run_id}" {
                input type="hidden" name="job_id" value=(job.job_id);
                fieldset {
                    legend { "Where" }
                    div.radio-row {
                        label { input type="radio" name="target" value="all" data-testid="target-all"; "All agents" }
                        label { input type="radio" name="target" value="groups" data-testid="target-groups" checked; "Groups" }
                        label { input type="radio" name="target" value="agents" data-testid="target-agents"; "Agents" }
                    }
                    div.toolbar.run-targets {
                        div.field.grow data-target-mode="groups" {
                            label for="run-groups" { "Groups" }
                            input #run-groups type="text" name="groups" placeholder="web, db" data-testid="target-groups-input" autocomplete="off";
                        }
                        div.field.grow data-target-mode="agents" {
                            label for="run-agents" { "Agents" }
                            input #run-agents type="text" name="agents" placeholder="web-01 web-02" data-testid="target-agents-input" autocomplete="off";
                        }
                    }
                    p.hint { "Separate names with spaces or commas." }
                }
                div.toolbar {
                    div.field {
                        label for="run-expire" { "Give up on offline agents after (minutes)" }
                        input #run-expire type="number" name="expire_minutes" min="1" step="1" placeholder="no limit" data-testid="run-expire";
                    }
                }
                details.rollout-options data-testid="rollout-options" {
                    summary { "Rollout (release in waves)" }
                    div.toolbar {
                        div.field.grow {
                            label for="run-waves" { "Waves" }
                            input #run-waves type="text" name="waves" placeholder="5%, 50%, 100%" data-testid="rollout-waves" autocomplete="off";
                        }
                        div.field {
                            label for="run-wave-wait" { "Wait between waves" }
                            input #run-wave-wait type="text" name="wave_wait" placeholder="30s, 5m, 1h" data-testid="rollout-wait";
                        }
                        div.field {
                            label for="run-max-ratio" { "Max failure ratio (0–1)" }
                            input #run-max-ratio type="number" name="max_failure_ratio" min="0" max="1" step="0.01" data-testid="rollout-max-ratio";
                        }
                        div.field {
                            label for="run-max-failures" { "Max failures" }
                            input #run-max-failures type="number" name="max_failures" min="0" step="1" data-testid="rollout-max-failures";
                        }
                        div.field {
                            label for="run-batch" { "Batch size" }
                            input #run-batch type="number" name="batch_size" min="1" step="1" data-testid="rollout-batch-size";
                        }
                    }
                    p.hint { "Waves are cumulative: counts (10) or percentages (\"5%\"), the last one 100%. Without a failure limit, any failure stops the rollout." }
                }
                p.form-error data-testid="run-error" {}
                div.actions {
                    button.primary type="submit" data-testid="run-submit" { "Run now" }
                }
            }
        }
    }
}
