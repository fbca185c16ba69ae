//! `tutti schedules`: list schedules with their next fire, show one (manifest, next fires,
//! recent fires), preview fire times in the schedule's zone, switch one on or off, delete
//! one. Schedules are created and changed with `tutti apply -f` like jobs.

use serde_json::{Value, json};
use tutti_api::Paged;
use tutti_api::schedules::{Preview, Schedule, ScheduleDetail, ScheduleView};

use crate::args::{SchedulesAction, SchedulesArgs};
use crate::client::{ApiClient, CliError, urlencode};
use crate::output::{or_empty, print_json, print_page_footer, table, text};

/// Dispatches the `schedules` subcommands.
pub(crate) async fn schedules(
    client: &ApiClient,
    args: SchedulesArgs,
    json: bool,
) -> Result<(), CliError> {
    match args.action {
        None => list(client, &args, json).await,
        Some(SchedulesAction::Show { name }) => show(client, &name, json).await,
        Some(SchedulesAction::Preview { name, n, after }) => {
            preview(client, &name, n, after.as_deref(), json).await
        }
        Some(SchedulesAction::Coverage { name }) => coverage(client, &name, json).await,
        Some(SchedulesAction::Enable { name }) => switch(client, &name, true, json).await,
        Some(SchedulesAction::Disable { name }) => switch(client, &name, false, json).await,
        Some(SchedulesAction::Delete { name }) => {
            client
                .delete(&format!("schedules/{}", urlencode(&name)))
                .await?;
            match json {
                true => print_json(&json!({ "deleted": name })),
                false => println!("schedule {name} deleted; its past runs stay"),
            }
            Ok(())
        }
    }
}

async fn list(client: &ApiClient, args: &SchedulesArgs, json: bool) -> Result<(), CliError> {
    let path = format!("schedules?limit={}&offset={}", args.limit, args.offset);
    let page: Paged<ScheduleView> = client.get(&path).await?;
    if json {
        print_json(&page);
        return Ok(());
    }
    let mut rows = table(&["SCHEDULE", "JOB", "TRIGGER", "ZONE", "ENABLED", "NEXT FIRE"]);
    for view in &page.items {
        // The stored definition is the server's own spec type, kept as JSON.
        let definition = &view.schedule.definition;
        rows.add_row(vec![
            view.schedule.name.clone(),
            text(definition, "job"),
            trigger(definition),
            text(definition, "timezone"),
            view.schedule.enabled.to_string(),
            or_empty(view.next_fire),
        ]);
    }
    println!("{rows}");
    print_page_footer(&page, args.offset, "schedules");
    Ok(())
}

/// `cron 0 3 * * *`, `once per version`, `every 24 h`.
fn trigger(definition: &Value) -> String {
    let trigger = &definition["trigger"];
    if let Some(cron) = trigger["cron"].as_str() {
        return format!("cron {cron}");
    }
    let desired = &trigger["desired_state"];
    match desired["every_hours"].as_u64() {
        Some(hours) => format!("every {hours} h"),
        None => "once per version".to_string(),
    }
}

async fn show(client: &ApiClient, name: &str, json: bool) -> Result<(), CliError> {
    let detail: ScheduleDetail = client
        .get(&format!("schedules/{}", urlencode(name)))
        .await?;
    if json {
        print_json(&detail);
        return Ok(());
    }
    let schedule = &detail.schedule;
    print!("{}", schedule.source_yaml);
    println!(
        "\nenabled: {}   updated: {} by {}",
        schedule.enabled, schedule.updated_at, schedule.created_by
    );
    let next: Vec<String> = detail.next_fires.iter().map(ToString::to_string).collect();
    println!(
        "next fires: {}",
        if next.is_empty() {
            "none".into()
        } else {
            next.join(", ")
        }
    );
    let mut rows = table(&["FIRE", "RUN", "SKIPPED"]);
    for fire in &detail.recent_fires {
        rows.add_row(vec![
            fire.fire_at.to_string(),
            or_empty(fire.run_id),
            fire.skipped.clone().unwrap_or_default(),
        ]);
    }
    println!("\nrecent fires:\n{rows}");
    Ok(())
}

async fn preview(
    client: &ApiClient,
    name: &str,
    n: usize,
    after: Option<&str>,
    json: bool,
) -> Result<(), CliError> {
    let mut path = format!("schedules/{}/preview?n={n}", urlencode(name));
    if let Some(after) = after {
        path.push_str(&format!("&after={}", urlencode(after)));
    }
    let preview: Preview = client.get(&path).await?;
    if json {
        print_json(&preview);
        return Ok(());
    }
    let mut rows = table(&["UTC", &format!("LOCAL ({})", preview.timezone)]);
    for (utc, local) in preview.fires.iter().zip(&preview.local) {
        rows.add_row(vec![utc.to_string(), local.clone()]);
    }
    println!("{rows}");
    if preview.fires.is_empty() {
        println!("(no fires: a desired-state schedule, or its active period has ended)");
    }
    Ok(())
}

async fn coverage(client: &ApiClient, name: &str, json: bool) -> Result<(), CliError> {
    let coverage: Value = client
        .get(&format!("schedules/{}/coverage", urlencode(name)))
        .await?;
    if json {
        print_json(&coverage);
        return Ok(());
    }
    let mut rows = table(&["AGENT", "STATUS", "LAST STATE", "FAILED TRIES", "RETRY AT"]);
    for agent in coverage["agents"].as_array().into_iter().flatten() {
        rows.add_row(vec![
            text(agent, "agent_id"),
            text(agent, "status"),
            text(agent, "state"),
            text(agent, "n_failed_attempts"),
            text(agent, "retry_at"),
        ]);
    }
    println!("{rows}");
    let totals = &coverage["totals"];
    println!(
        "{} of {} done, {} in flight, {} pending, {} offline, {} failed (job {} v{})",
        totals["done"],
        totals["total"],
        totals["in_flight"],
        totals["pending"],
        totals["offline"],
        totals["failed"],
        text(&coverage, "job_id"),
        text(&coverage, "job_version"),
    );
    if !coverage["held"].is_null() {
        println!("nothing starts now: {}", coverage["held"]);
    }
    Ok(())
}

async fn switch(client: &ApiClient, name: &str, enabled: bool, json: bool) -> Result<(), CliError> {
    let schedule: Schedule = client
        .patch(
            &format!("schedules/{}", urlencode(name)),
            &json!({ "enabled": enabled }),
        )
        .await?;
    match json {
        true => print_json(&schedule),
        false => println!(
            "schedule {name} {}",
            if enabled {
                "enabled"
            } else {
                "disabled (applying its manifest again restores the manifest's flag)"
            }
        ),
    }
    Ok(())
}
