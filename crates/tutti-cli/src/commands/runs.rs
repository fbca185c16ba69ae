//! `tutti runs`: list runs, show one with its targets, print results in full, kill.

use serde_json::{Value, json};

use crate::args::{RunsAction, RunsArgs};
use crate::client::{ApiClient, CliError};
use crate::output::{print_json, state_cell, table, text};

/// Dispatches the `runs` subcommands.
pub(crate) async fn runs(client: &ApiClient, args: RunsArgs, json: bool) -> Result<(), CliError> {
    match args.action {
        None => list(client, args.limit, json).await,
        Some(RunsAction::Show { run_id }) => show(client, &run_id, json).await,
        Some(RunsAction::Results { run_id, agent }) => {
            results(client, &run_id, agent.as_deref(), json).await
        }
        Some(RunsAction::Kill { run_id }) => kill(client, &run_id, json).await,
        Some(RunsAction::Abort { run_id }) => rollout(client, &run_id, "abort", json).await,
        Some(RunsAction::Pause { run_id }) => rollout(client, &run_id, "pause", json).await,
        Some(RunsAction::Resume { run_id }) => rollout(client, &run_id, "resume", json).await,
    }
}

async fn list(client: &ApiClient, limit: u32, json: bool) -> Result<(), CliError> {
    let page: Value = client.get(&format!("runs?limit={limit}")).await?;
    if json {
        print_json(&page);
        return Ok(());
    }
    let mut rows = table(&["RUN", "JOB", "STATUS", "CREATED", "BY"]);
    for run in page["items"].as_array().into_iter().flatten() {
        rows.add_row(vec![
            comfy_table::Cell::new(text(run, "run_id")),
            comfy_table::Cell::new(format!(
                "{} v{}",
                text(run, "job_id"),
                text(run, "job_version")
            )),
            state_cell(&text(run, "status")),
            comfy_table::Cell::new(text(run, "created_at")),
            comfy_table::Cell::new(text(run, "created_by")),
        ]);
    }
    println!("{rows}");
    Ok(())
}

async fn show(client: &ApiClient, run_id: &str, json: bool) -> Result<(), CliError> {
    let detail: Value = client.get(&format!("runs/{run_id}?limit=500")).await?;
    if json {
        print_json(&detail);
        return Ok(());
    }
    let run = &detail["run"];
    println!(
        "run {}  job {} v{}  status {}",
        text(run, "run_id"),
        text(run, "job_id"),
        text(run, "job_version"),
        text(run, "status")
    );
    let mut rows = table(&["AGENT", "STATE", "EXIT", "REASON", "FINISHED"]);
    for target in detail["targets"]["items"].as_array().into_iter().flatten() {
        rows.add_row(vec![
            comfy_table::Cell::new(text(target, "agent_id")),
            state_cell(&text(target, "state")),
            comfy_table::Cell::new(text(target, "exit_code")),
            comfy_table::Cell::new(text(target, "reason")),
            comfy_table::Cell::new(text(target, "finished_at")),
        ]);
    }
    println!("{rows}");
    Ok(())
}

async fn results(
    client: &ApiClient,
    run_id: &str,
    agent: Option<&str>,
    json: bool,
) -> Result<(), CliError> {
    let agents: Vec<String> = match agent {
        Some(agent) => vec![agent.to_string()],
        None => {
            let page: Value = client
                .get(&format!("runs/{run_id}/results?limit=500"))
                .await?;
            page["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|item| text(item.get("result").unwrap_or(item), "agent_id"))
                .collect()
        }
    };
    let mut all = Vec::new();
    for agent_id in agents {
        let detail: Value = client
            .get(&format!("runs/{run_id}/results/{agent_id}"))
            .await?;
        if !json {
            let result = detail.get("result").unwrap_or(&detail);
            println!(
                "── {agent_id} ({}) ──",
                result["status"]["state"].as_str().unwrap_or("")
            );
            print!("{}", detail["stdout_full"]["text"].as_str().unwrap_or(""));
            let stderr = detail["stderr_full"]["text"].as_str().unwrap_or("");
            if !stderr.is_empty() {
                eprint!("{stderr}");
            }
        }
        all.push(detail);
    }
    if json {
        print_json(&json!(all));
    }
    Ok(())
}

/// Aborts, pauses or resumes a run's rollout and shows where it stands.
async fn rollout(
    client: &ApiClient,
    run_id: &str,
    action: &str,
    json: bool,
) -> Result<(), CliError> {
    let view: Value = client
        .post(&format!("runs/{run_id}/rollout/{action}"), &json!({}))
        .await?;
    if json {
        print_json(&view);
    } else {
        println!(
            "rollout of run {run_id}: {} at wave {}; {} target(s) released, {} held, {} failure(s)",
            text(&view, "state"),
            text(&view, "current_wave"),
            view["released"],
            view["held"],
            view["failures"]
        );
    }
    Ok(())
}

async fn kill(client: &ApiClient, run_id: &str, json: bool) -> Result<(), CliError> {
    let outcome: Value = client
        .post(&format!("runs/{run_id}/kill"), &json!({}))
        .await?;
    if json {
        print_json(&outcome);
    } else {
        println!(
            "run {run_id} killed: {} queued target(s) skipped, running ones are being stopped",
            outcome["n_skipped"]
        );
    }
    Ok(())
}
