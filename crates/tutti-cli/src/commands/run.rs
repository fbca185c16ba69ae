//! `tutti run`: start a run of an ad-hoc command or a job, and with `--wait` follow it to the
//! end with a live progress bar and a per-agent table.
//!
//! `--wait` ends when every target is final, or when the only open targets are queued on
//! agents that are offline (they will run when the machines come back; the table says so).
//! Exit code 1 when any target did not succeed.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use tutti_api::Paged;
use tutti_api::agents::{AgentDetail, Liveness};
use tutti_api::runs::{CreatedRun, RunView, StoredResult};
use tutti_api::state::TargetState;
use tutti_proto::result::RunResult;

use crate::args::RunArgs;
use crate::client::{ApiClient, CliError, urlencode};
use crate::output::{or_empty, print_json, state_cell, table, text};

/// How often `--wait` re-reads the run.
const POLL: Duration = Duration::from_millis(300);
/// How long open targets must sit queued before `--wait` asks whether their agents are offline.
const OFFLINE_CHECK_AFTER: Duration = Duration::from_secs(3);

/// Creates the run; with `--wait` follows it and prints the results.
pub(crate) async fn run(
    client: &ApiClient,
    args: RunArgs,
    json: bool,
) -> Result<ExitCode, CliError> {
    let body = request_body(&args)?;
    let created: CreatedRun = client.post("runs", &body).await?;
    let run_id = created.run_id.to_string();
    if !args.wait && !args.follow {
        if json {
            print_json(&created);
        } else {
            println!(
                "run {run_id} created for {} agent(s); follow it with `tutti runs show {run_id}`",
                created.n_targets
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let follow = args
        .follow
        .then(|| tokio::spawn(follow_output(client.clone(), run_id.clone())));
    let outcome = wait(client, &run_id, json).await;
    if let Some(follow) = follow {
        follow.abort();
    }
    let (detail, offline) = outcome?;
    let results: Paged<StoredResult> = client
        .get(&format!("runs/{run_id}/results?limit=500"))
        .await?;
    report(&detail, &results, &offline, json)
}

fn request_body(args: &RunArgs) -> Result<Value, CliError> {
    if !args.all && args.group.is_empty() && args.agent.is_empty() {
        return Err(CliError::Usage(
            "say where to run: --all, --group GROUP or --agent AGENT".into(),
        ));
    }
    let targets = json!({ "all": args.all, "groups": args.group, "agents": args.agent });
    let rollout = rollout(args)?;
    if let Some(job_id) = &args.job {
        if !args.command.is_empty() {
            return Err(CliError::Usage(
                "give either --job or a command after --, not both".into(),
            ));
        }
        return Ok(json!({ "job_id": job_id, "targets": targets, "rollout": rollout }));
    }
    if args.command.is_empty() {
        return Err(CliError::Usage(
            "nothing to run: put the command after --, e.g. `tutti run --all -- uptime`".into(),
        ));
    }
    let timeout_secs = crate::duration::parse_secs("--timeout", &args.timeout)?;
    let mut env = BTreeMap::new();
    for pair in &args.env {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(CliError::Usage(format!(
                "--env {pair:?} must look like KEY=VALUE"
            )));
        };
        env.insert(key.to_string(), value.to_string());
    }
    let script = script_text(&args.command);
    Ok(json!({
        "targets": targets,
        "script": { "shell": args.shell, "script": script, "timeout_secs": timeout_secs, "env": env },
        "rollout": rollout,
    }))
}

/// The `rollout` of the request from `--waves` and its companions (null without waves).
/// The server checks the plan and says precisely what is wrong with it.
fn rollout(args: &RunArgs) -> Result<Value, CliError> {
    if args.waves.is_empty() {
        return Ok(Value::Null);
    }
    let waves: Vec<Value> = args
        .waves
        .iter()
        .map(|wave| match wave.trim().parse::<u64>() {
            Ok(count) => json!(count),
            Err(_) => json!(wave.trim()),
        })
        .collect();
    let wait_secs = match &args.wave_wait {
        Some(wait) => crate::duration::parse_secs("--wave-wait", wait)?,
        None => 0,
    };
    let mut plan = json!({ "waves": waves, "wait_secs": wait_secs });
    if let Some(ratio) = args.max_failure_ratio {
        plan["max_failure_ratio"] = json!(ratio);
    }
    if let Some(n) = args.max_failures {
        plan["max_failures"] = json!(n);
    }
    if let Some(n) = args.batch_size {
        plan["batch_size"] = json!(n);
    }
    Ok(plan)
}

/// One argument is taken as script text (`-- 'echo a | wc -c'`); several are quoted for the
/// shell so they arrive as typed (`-- echo "a b"`).
fn script_text(command: &[String]) -> String {
    if command.len() == 1 {
        return command[0].clone();
    }
    command
        .iter()
        .map(|arg| shell_quote(arg))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Polls the run until it is settled; returns its last detail and the agents found offline.
async fn wait(
    client: &ApiClient,
    run_id: &str,
    json: bool,
) -> Result<(RunView, Vec<String>), CliError> {
    let bar = progress_bar(json);
    let mut last_change = Instant::now();
    let mut last_counts = None;
    loop {
        let detail: RunView = client.get(&format!("runs/{run_id}?limit=500")).await?;
        if last_counts.as_ref() != Some(&detail.count_by_state) {
            last_change = Instant::now();
            last_counts = Some(detail.count_by_state.clone());
        }
        bar.set_message(summary(&detail.count_by_state));
        let open = open_targets(&detail);
        if open.is_empty() {
            bar.finish_and_clear();
            return Ok((detail, Vec::new()));
        }
        let all_queued = open.iter().all(|(_, state)| *state == TargetState::Queued);
        if all_queued && last_change.elapsed() > OFFLINE_CHECK_AFTER {
            let agents: Vec<String> = open.iter().map(|(agent, _)| agent.clone()).collect();
            if all_offline(client, &agents).await? {
                bar.finish_and_clear();
                return Ok((detail, agents));
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

fn progress_bar(json: bool) -> ProgressBar {
    if json || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

fn summary(counts: &BTreeMap<String, u64>) -> String {
    let count = |state: &str| counts.get(state).copied().unwrap_or(0);
    let failed: u64 = [
        "failed",
        "timed_out",
        "killed",
        "interrupted",
        "missed",
        "expired",
    ]
    .iter()
    .map(|s| count(s))
    .sum();
    format!(
        "done {}  failed {}  skipped {}  running {}  queued {}",
        count("succeeded"),
        failed,
        count("skipped"),
        count("running") + count("delivered"),
        count("queued")
    )
}

fn open_targets(detail: &RunView) -> Vec<(String, TargetState)> {
    detail
        .targets
        .items
        .iter()
        .filter(|target| !target.state.is_final())
        .map(|target| (target.agent_id.to_string(), target.state))
        .collect()
}

async fn all_offline(client: &ApiClient, agents: &[String]) -> Result<bool, CliError> {
    for agent_id in agents.iter().take(20) {
        let path = format!("agents/{}", urlencode(agent_id));
        let detail: AgentDetail = client.get(&path).await?;
        if detail.agent.liveness == Liveness::Online {
            return Ok(false);
        }
    }
    Ok(true)
}

fn report(
    detail: &RunView,
    results: &Paged<StoredResult>,
    offline: &[String],
    json: bool,
) -> Result<ExitCode, CliError> {
    let by_agent: BTreeMap<String, &RunResult> = results
        .items
        .iter()
        .map(|stored| (stored.result.agent_id.to_string(), &stored.result))
        .collect();
    let targets = &detail.targets.items;
    let all_succeeded = !targets.is_empty()
        && targets
            .iter()
            .all(|target| target.state == TargetState::Succeeded);
    if json {
        print_json(&json!({ "run": detail, "results": results, "offline_agents": offline }));
    } else {
        let mut rows = table(&["AGENT", "STATUS", "EXIT", "DURATION", "OUTPUT"]);
        for target in targets {
            let agent_id = target.agent_id.to_string();
            let shown = if offline.contains(&agent_id) {
                "queued (offline)"
            } else {
                target.state.as_str()
            };
            let result = by_agent.get(&agent_id);
            rows.add_row(vec![
                comfy_table::Cell::new(&agent_id),
                state_cell(shown),
                comfy_table::Cell::new(or_empty(target.exit_code)),
                comfy_table::Cell::new(result.map(|r| duration(r)).unwrap_or_default()),
                comfy_table::Cell::new(
                    result
                        .map(|r| first_line(r))
                        .unwrap_or_else(|| target.reason.clone().unwrap_or_default()),
                ),
            ]);
        }
        println!("{rows}");
        println!("{}", summary(&detail.count_by_state));
    }
    Ok(if all_succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn first_line(result: &RunResult) -> String {
    let stdout = result.stdout.inline.as_str();
    let stderr = result.stderr.inline.as_str();
    let source = if stdout.trim().is_empty() {
        stderr
    } else {
        stdout
    };
    source
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("")
        .chars()
        .take(80)
        .collect()
}

fn duration(result: &RunResult) -> String {
    match result.started_at {
        Some(started) => {
            let millis = result.finished_at.as_millisecond() - started.as_millisecond();
            format!("{:.1}s", millis.max(0) as f64 / 1000.0)
        }
        None => String::new(),
    }
}

/// Prints live output (server-sent events) as `agent | line` until aborted.
async fn follow_output(client: ApiClient, run_id: String) {
    let url = format!("{}/api/v1/runs/{run_id}/output", client.base());
    let Ok(response) = reqwest::get(&url).await else {
        return;
    };
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    while let Some(Ok(chunk)) = body.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            print_output_event(&event);
        }
    }
}

fn print_output_event(event: &str) {
    let data: String = event
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim_start)
        .collect();
    let Ok(chunk) = serde_json::from_str::<Value>(&data) else {
        return;
    };
    let agent_id = text(&chunk, "agent_id");
    for line in text(&chunk, "text").lines() {
        eprintln!("{agent_id} | {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(script_text(&["echo a | wc -c".into()]), "echo a | wc -c");
        assert_eq!(
            script_text(&["echo".into(), "a b".into(), "it's".into()]),
            r"echo 'a b' 'it'\''s'"
        );
    }
}
