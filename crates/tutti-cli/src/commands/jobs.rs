//! `tutti jobs`: list jobs, print one's manifest as applied, revoke one.

use serde_json::{Value, json};

use crate::args::{JobsAction, JobsArgs};
use crate::client::{ApiClient, CliError};
use crate::output::{print_json, print_page_footer, table, text};

/// Dispatches the `jobs` subcommands.
pub(crate) async fn jobs(client: &ApiClient, args: JobsArgs, json: bool) -> Result<(), CliError> {
    match args.action {
        None => list(client, &args, json).await,
        Some(JobsAction::Show { job_id }) => show(client, &job_id, json).await,
        Some(JobsAction::Revoke { job_id, reason }) => revoke(client, &job_id, reason, json).await,
    }
}

async fn list(client: &ApiClient, args: &JobsArgs, json: bool) -> Result<(), CliError> {
    let path = format!(
        "jobs?limit={}&offset={}&include_anonymous={}",
        args.limit, args.offset, args.adhoc
    );
    let page: Value = client.get(&path).await?;
    if json {
        print_json(&page);
        return Ok(());
    }
    let mut rows = table(&["JOB", "VERSION", "UPDATED", "REVOKED", "DESCRIPTION"]);
    for job in page["items"].as_array().into_iter().flatten() {
        rows.add_row(vec![
            text(job, "job_id"),
            text(job, "version"),
            text(job, "updated_at"),
            text(job, "revoked_at"),
            text(&job["definition"], "description"),
        ]);
    }
    println!("{rows}");
    print_page_footer(&page, args.offset, "jobs");
    Ok(())
}

async fn show(client: &ApiClient, job_id: &str, json: bool) -> Result<(), CliError> {
    let job: Value = client.get(&format!("jobs/{job_id}")).await?;
    if json {
        print_json(&job);
        return Ok(());
    }
    let source = text(&job, "source_yaml");
    if source.is_empty() {
        // Applied as JSON (or ad-hoc): there is no text as written, so show the definition.
        print_json(&job["definition"]);
    } else {
        print!("{source}");
        if !source.ends_with('\n') {
            println!();
        }
    }
    Ok(())
}

async fn revoke(
    client: &ApiClient,
    job_id: &str,
    reason: String,
    json: bool,
) -> Result<(), CliError> {
    let outcome: Value = client
        .post(
            &format!("jobs/{job_id}/revoke"),
            &json!({ "reason": reason }),
        )
        .await?;
    if json {
        print_json(&outcome);
    } else {
        println!(
            "job {job_id} revoked: {} queued target(s) skipped; agents will not start it again",
            outcome["n_skipped"]
        );
    }
    Ok(())
}
