//! `tutti runs`: list runs, show one with its targets, print results in full, kill.

use comfy_table::Cell;
use serde_json::json;
use tutti_api::Paged;
use tutti_api::rollouts::RolloutView;
use tutti_api::runs::{KillOutcome, ResultView, Run, RunView, StoredResult};

use crate::args::{RunsAction, RunsArgs};
use crate::client::{ApiClient, CliError, urlencode};
use crate::output::{or_empty, print_json, state_cell, table};

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
    let page: Paged<Run> = client.get(&format!("runs?limit={limit}")).await?;
    if json {
        print_json(&page);
        return Ok(());
    }
    let mut rows = table(&["RUN", "JOB", "STATUS", "CREATED", "BY"]);
    for run in &page.items {
        rows.add_row(vec![
            Cell::new(run.run_id),
            Cell::new(format!("{} v{}", run.job_id, run.job_version)),
            state_cell(run.status.as_str()),
            Cell::new(run.created_at),
            Cell::new(&run.created_by),
        ]);
    }
    println!("{rows}");
    Ok(())
}

async fn show(client: &ApiClient, run_id: &str, json: bool) -> Result<(), CliError> {
    let path = format!("runs/{}?limit=500", urlencode(run_id));
    let view: RunView = client.get(&path).await?;
    if json {
        print_json(&view);
        return Ok(());
    }
    let run = &view.detail.run;
    println!(
        "run {}  job {} v{}  status {}",
        run.run_id,
        run.job_id,
        run.job_version,
        run.status.as_str()
    );
    let mut rows = table(&["AGENT", "STATE", "EXIT", "REASON", "FINISHED"]);
    for target in &view.targets.items {
        rows.add_row(vec![
            Cell::new(&target.agent_id),
            state_cell(target.state.as_str()),
            Cell::new(or_empty(target.exit_code)),
            Cell::new(target.reason.as_deref().unwrap_or_default()),
            Cell::new(or_empty(target.finished_at)),
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
    let run_id = urlencode(run_id);
    let agents: Vec<String> = match agent {
        Some(agent) => vec![agent.to_string()],
        None => {
            let page: Paged<StoredResult> = client
                .get(&format!("runs/{run_id}/results?limit=500"))
                .await?;
            page.items
                .iter()
                .map(|stored| stored.result.agent_id.to_string())
                .collect()
        }
    };
    let mut all = Vec::new();
    for agent_id in agents {
        let path = format!("runs/{run_id}/results/{}", urlencode(&agent_id));
        let view: ResultView = client.get(&path).await?;
        if !json {
            println!("── {agent_id} ({}) ──", view.stored.result.status.state());
            print!("{}", view.stdout_full.text);
            if !view.stderr_full.text.is_empty() {
                eprint!("{}", view.stderr_full.text);
            }
        }
        all.push(view);
    }
    if json {
        print_json(&all);
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
    let path = format!("runs/{}/rollout/{action}", urlencode(run_id));
    let view: RolloutView = client.post(&path, &json!({})).await?;
    if json {
        print_json(&view);
    } else {
        println!(
            "rollout of run {run_id}: {} at wave {}; {} target(s) released, {} held, {} failure(s)",
            view.rollout.state.as_str(),
            view.rollout.current_wave,
            view.released,
            view.held,
            view.failures
        );
    }
    Ok(())
}

async fn kill(client: &ApiClient, run_id: &str, json: bool) -> Result<(), CliError> {
    let path = format!("runs/{}/kill", urlencode(run_id));
    let outcome: KillOutcome = client.post(&path, &json!({})).await?;
    if json {
        print_json(&outcome);
    } else {
        println!(
            "run {run_id} killed: {} queued target(s) skipped, running ones are being stopped",
            outcome.n_skipped
        );
    }
    Ok(())
}
