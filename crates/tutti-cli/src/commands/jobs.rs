//! `tutti jobs`: list jobs, print one's manifest as applied, revoke one.

use serde_json::json;
use tutti_api::Paged;
use tutti_api::jobs::{Job, RevokeResponse};

use crate::args::{JobsAction, JobsArgs};
use crate::client::{ApiClient, CliError, urlencode};
use crate::output::{or_empty, print_json, print_page_footer, table};

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
    let page: Paged<Job> = client.get(&path).await?;
    if json {
        print_json(&page);
        return Ok(());
    }
    let mut rows = table(&["JOB", "VERSION", "UPDATED", "REVOKED", "DESCRIPTION"]);
    for job in &page.items {
        let description = job.definition["description"].as_str().unwrap_or_default();
        rows.add_row(vec![
            job.job_id.to_string(),
            job.version.to_string(),
            job.updated_at.to_string(),
            or_empty(job.revoked_at),
            description.to_string(),
        ]);
    }
    println!("{rows}");
    print_page_footer(&page, args.offset, "jobs");
    Ok(())
}

async fn show(client: &ApiClient, job_id: &str, json: bool) -> Result<(), CliError> {
    let job: Job = client.get(&format!("jobs/{}", urlencode(job_id))).await?;
    if json {
        print_json(&job);
        return Ok(());
    }
    let source = &job.source_yaml;
    if source.is_empty() {
        // Applied as JSON (or ad-hoc): there is no text as written, so show the definition.
        print_json(&job.definition);
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
    let outcome: RevokeResponse = client
        .post(
            &format!("jobs/{}/revoke", urlencode(job_id)),
            &json!({ "reason": reason }),
        )
        .await?;
    if json {
        print_json(&outcome);
    } else {
        println!(
            "job {job_id} revoked: {} queued target(s) skipped; agents will not start it again",
            outcome.n_skipped
        );
    }
    Ok(())
}
