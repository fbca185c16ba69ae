//! `tutti audit`: the audit log, newest first, filtered by actor, action, target and time,
//! a page at a time.

use tutti_api::Paged;
use tutti_api::audit::AuditEntry;
use tutti_proto::audit::AuditOutcome;

use crate::args::AuditArgs;
use crate::client::{ApiClient, CliError, urlencode};
use crate::output::{print_json, print_page_footer, table};

/// Prints a page of audit entries.
pub(crate) async fn audit(client: &ApiClient, args: AuditArgs, json: bool) -> Result<(), CliError> {
    let page: Paged<AuditEntry> = client.get(&query_path(&args)?).await?;
    if json {
        print_json(&page);
        return Ok(());
    }
    let mut rows = table(&["TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME"]);
    for entry in &page.items {
        let record = &entry.record;
        let outcome = match record.outcome {
            AuditOutcome::Succeeded => "succeeded",
            AuditOutcome::Denied => "denied",
            AuditOutcome::Failed => "failed",
            AuditOutcome::Unknown => "unknown",
        };
        rows.add_row(vec![
            record.at.to_string(),
            record.actor.clone(),
            record.action.clone(),
            record.target.clone(),
            outcome.to_string(),
        ]);
    }
    println!("{rows}");
    print_page_footer(&page, args.offset, "entries");
    Ok(())
}

fn query_path(args: &AuditArgs) -> Result<String, CliError> {
    let mut path = format!("audit?limit={}&offset={}", args.limit, args.offset);
    let times = [
        ("from", "--since", &args.since),
        ("until", "--until", &args.until),
    ];
    for (param, flag, value) in times {
        if let Some(value) = value {
            check_time(flag, value)?;
            path.push_str(&format!("&{param}={}", urlencode(value)));
        }
    }
    let filters = [
        ("actor", &args.actor),
        ("action", &args.action),
        ("target", &args.target),
    ];
    for (param, value) in filters {
        if let Some(value) = value {
            path.push_str(&format!("&{param}={}", urlencode(value)));
        }
    }
    Ok(path)
}

/// The server takes RFC 3339 timestamps; saying so here beats the server's 400.
fn check_time(flag: &str, value: &str) -> Result<(), CliError> {
    value.parse::<jiff::Timestamp>().map(|_| ()).map_err(|_| {
        CliError::Usage(format!(
            "{flag} {value:?}: expected an RFC 3339 time such as 2026-01-01T00:00:00Z"
        ))
    })
}
