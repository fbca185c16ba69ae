//! Tests of the catalog: budget arithmetic, limits every resource must set, NATS naming
//! rules, and the storage table in `docs/protocol.md`.

use super::*;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn catalog(storage_budget_bytes: u64) -> Catalog {
    Catalog::tutti(&CatalogConfig {
        storage_budget_bytes,
        replicas: 1,
    })
}

#[test]
fn sum_of_caps_fits_the_budget() {
    let mut budget = 256 * MIB;
    while budget <= 1024 * GIB {
        let total = catalog(budget).total_bytes();
        assert!(total <= budget, "budget {budget}: total {total}");
        budget = budget * 3 / 2;
    }
    assert!(catalog(1024 * GIB).total_bytes() <= 1024 * GIB);
}

#[test]
fn every_resource_is_bounded() {
    for resource in catalog(256 * MIB).resources {
        assert!(resource.max_age > Duration::ZERO, "{}", resource.name);
        assert!(
            resource.max_bytes >= MIN_RESOURCE_BYTES,
            "{}",
            resource.name
        );
        assert!(resource.replicas >= 1, "{}", resource.name);
        assert!(
            resource.duplicate_window <= resource.max_age,
            "{}",
            resource.name
        );
        let is_stream = resource.kind == ResourceKind::Stream;
        assert_eq!(
            is_stream,
            !resource.subjects.is_empty(),
            "{}",
            resource.name
        );
        if resource.kind == ResourceKind::KeyValue {
            assert!(
                (1..=64).contains(&resource.max_msgs_per_subject),
                "{}",
                resource.name
            );
        }
    }
}

/// Stream and bucket names: NATS allows more, but these are also safe as file names
/// and in `$JS.API.*.<name>` subjects.
#[test]
fn names_follow_nats_rules() {
    for resource in catalog(DEFAULT_STORAGE_BUDGET_BYTES).resources {
        let name = &resource.name;
        assert!(!name.is_empty() && name.len() <= 32, "{name}");
        let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        assert!(name.chars().all(allowed), "{name}");
        for subject in &resource.subjects {
            assert!(subject.starts_with("tutti."), "{subject}");
        }
    }
}

#[test]
fn commands_keep_every_message() {
    let catalog = catalog(DEFAULT_STORAGE_BUDGET_BYTES);
    let commands = catalog.get(COMMANDS_STREAM).unwrap();
    assert_eq!(commands.max_msgs_per_subject, -1);
    assert_eq!(commands.subjects, [crate::subjects::all_commands()]);
    // Revocations live in the fleet bucket with their own TTL, which must outlive every
    // command they can still stop; only that bucket accepts per-message TTLs.
    assert!(REVOCATION_TTL > commands.max_age);
    let fleet = catalog.get(FLEET_BUCKET).unwrap();
    assert!(fleet.allow_msg_ttl);
    assert!(fleet.max_age > REVOCATION_TTL);
    let with_ttl: Vec<&str> = catalog
        .resources
        .iter()
        .filter(|resource| resource.allow_msg_ttl)
        .map(|resource| resource.name.as_str())
        .collect();
    assert_eq!(with_ttl, [FLEET_BUCKET]);
    assert!(catalog.get("nope").is_none());
}

#[test]
fn replicas_and_backing_streams() {
    let catalog = Catalog::tutti(&CatalogConfig {
        replicas: 3,
        ..CatalogConfig::default()
    });
    assert!(
        catalog
            .resources
            .iter()
            .all(|resource| resource.replicas == 3)
    );
    assert_eq!(
        catalog.get(FLEET_BUCKET).unwrap().backing_stream(),
        "KV_tutti_fleet"
    );
    assert_eq!(
        catalog.get(OUTPUT_STORE).unwrap().backing_stream(),
        "OBJ_tutti_output"
    );
    assert_eq!(
        catalog.get(AUDIT_STREAM).unwrap().backing_stream(),
        "TUTTI_AUDIT"
    );
}

/// docs/protocol.md shows the storage table for the default budget; if this fails,
/// paste the table printed below into the doc.
#[test]
fn protocol_doc_has_the_current_storage_table() {
    let table = storage_table(&Catalog::tutti(&CatalogConfig::default()));
    let doc = include_str!("../../../../docs/protocol.md");
    assert!(
        doc.contains(&table),
        "docs/protocol.md is out of date; expected:\n{table}"
    );
}

fn storage_table(catalog: &Catalog) -> String {
    let mut table = String::from(
        "| Name | Kind | Subjects | Max age | Max bytes | Per subject | Max msg | Discard | Dedupe window |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for resource in &catalog.resources {
        table.push_str(&table_row(resource));
    }
    table
}

fn table_row(resource: &Resource) -> String {
    let kind = match resource.kind {
        ResourceKind::Stream => "stream",
        ResourceKind::KeyValue => "KV",
        ResourceKind::ObjectStore => "object store",
    };
    let subjects: Vec<String> = resource.subjects.iter().map(|s| format!("`{s}`")).collect();
    let per_subject = match (resource.kind, resource.max_msgs_per_subject) {
        (_, -1) => "unlimited".to_string(),
        (ResourceKind::KeyValue, history) => format!("history {history}"),
        (_, n) => n.to_string(),
    };
    format!(
        "| `{}` | {} | {} | {} | {} | {} | {} | {:?} | {} |\n",
        resource.name,
        kind,
        if subjects.is_empty() {
            "—".to_string()
        } else {
            subjects.join(", ")
        },
        human_duration(resource.max_age),
        human_bytes(resource.max_bytes),
        per_subject,
        if resource.max_msg_size < 0 {
            "—".to_string()
        } else {
            human_bytes(resource.max_msg_size as u64)
        },
        resource.discard,
        if resource.duplicate_window.is_zero() {
            "default".to_string()
        } else {
            human_duration(resource.duplicate_window)
        },
    )
}

fn human_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        s if s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

fn human_bytes(bytes: u64) -> String {
    if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}
