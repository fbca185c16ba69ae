//! Idempotent bootstrap and reconciliation of every JetStream resource in the catalog.
//!
//! Streams, KV buckets and object stores are all JetStream streams underneath (`KV_<bucket>`,
//! `OBJ_<bucket>`), so one path handles all three: each [`Resource`] becomes the stream
//! configuration async-nats itself would create, and an existing stream is compared on the
//! fields tutti manages only (limits, subjects, discard, replicas, the KV/object flags).
//! Other fields the operator set by hand are left alone.
//!
//! The rule that shapes this module: **a drifted resource never crashes a process at boot.**
//! An earlier system went down in production on NATS error 10058 ("stream name already in
//! use with a different configuration") because it only ever called create. Here drift is
//! updated in place, and an update the broker refuses is kept as it is with a warning. Only
//! "does not exist and cannot be created" is fatal, with the resource named. The test
//! `drifted_stream_is_updated_not_fatal` in `tests/bootstrap.rs` pins this.

use std::time::Duration;

use async_nats::jetstream::stream::{Config as StreamConfig, DiscardPolicy, StorageType};
use tutti_proto::catalog::{Catalog, Discard, MAX_CONSUMERS_PER_STREAM, Resource, ResourceKind};

use crate::connect::Bus;
use crate::error::{BusError, JS_STORAGE_RESOURCES_EXCEEDED, bounded};

/// What `ensure_resources` did with one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It did not exist and was created.
    Created,
    /// It existed with the desired configuration.
    Unchanged,
    /// It existed with drifted settings, which were updated; the names of the changed fields.
    Updated { changed: Vec<&'static str> },
    /// It existed with drifted settings the broker refused to update; it is used as it is.
    KeptWithWarning {
        changed: Vec<&'static str>,
        reason: String,
    },
}

/// The outcome for one catalog resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceOutcome {
    /// The catalog name (stream name, or bucket name for KV and object stores).
    pub name: String,
    /// The JetStream stream that backs it.
    pub stream: String,
    /// What happened.
    pub outcome: Outcome,
}

/// Why bootstrap could not make a resource exist. Drift is never an error.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The catalog holds a name JetStream would reject.
    #[error("invalid {kind} name {name:?}: {reason}")]
    InvalidName {
        kind: &'static str,
        name: String,
        reason: String,
    },
    /// The broker cannot reserve the storage a new resource asks for (JetStream error 10047).
    #[error(
        "cannot create {kind} {name}: the broker cannot reserve {asked} of file storage for it \
         (JetStream error 10047, insufficient storage). Lower tutti's storage budget \
         (`storage_budget_bytes`; the whole catalog asks for {catalog_total}) or raise \
         `max_file_store` in the broker's jetstream settings"
    )]
    StorageReservation {
        kind: &'static str,
        name: String,
        asked: String,
        catalog_total: String,
    },
    /// The resource does not exist and could not be created.
    #[error("cannot create {kind} {name}: {source}")]
    Create {
        kind: &'static str,
        name: String,
        source: BusError,
    },
    /// The broker could not be asked about the resource (unreachable, timed out).
    #[error("cannot inspect {kind} {name}: {source}")]
    Inspect {
        kind: &'static str,
        name: String,
        source: BusError,
    },
}

/// Creates every missing resource and reconciles every existing one, in catalog order.
pub async fn ensure_resources(
    bus: &Bus,
    catalog: &Catalog,
) -> Result<Vec<ResourceOutcome>, BootstrapError> {
    for resource in &catalog.resources {
        validate_name(resource)?;
    }
    let mut outcomes = Vec::with_capacity(catalog.resources.len());
    for resource in &catalog.resources {
        let outcome = ensure_one(bus, catalog, resource).await?;
        log_outcome(&outcome);
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

async fn ensure_one(
    bus: &Bus,
    catalog: &Catalog,
    resource: &Resource,
) -> Result<ResourceOutcome, BootstrapError> {
    let js = bus.jetstream();
    let timeout = bus.request_timeout();
    let desired = stream_config(resource);
    let stream_name = desired.name.clone();
    let existing = bounded("stream info", timeout, js.get_stream(&stream_name)).await;
    let outcome = match existing {
        Ok(stream) => reconcile(bus, resource, stream.cached_info().config.clone()).await,
        Err(BusError::NotFound(_)) => create(bus, catalog, resource, desired).await?,
        Err(source) => {
            return Err(BootstrapError::Inspect {
                kind: kind_label(resource),
                name: resource.name.clone(),
                source,
            });
        }
    };
    Ok(ResourceOutcome {
        name: resource.name.clone(),
        stream: stream_name,
        outcome,
    })
}

async fn create(
    bus: &Bus,
    catalog: &Catalog,
    resource: &Resource,
    desired: StreamConfig,
) -> Result<Outcome, BootstrapError> {
    let created = bounded(
        "stream create",
        bus.request_timeout(),
        bus.jetstream().create_stream(desired),
    )
    .await;
    match created {
        Ok(_) => Ok(Outcome::Created),
        Err(source) if source.jetstream_code() == Some(JS_STORAGE_RESOURCES_EXCEEDED) => {
            Err(BootstrapError::StorageReservation {
                kind: kind_label(resource),
                name: resource.name.clone(),
                asked: human_bytes(resource.max_bytes),
                catalog_total: human_bytes(catalog.total_bytes()),
            })
        }
        Err(source) => Err(BootstrapError::Create {
            kind: kind_label(resource),
            name: resource.name.clone(),
            source,
        }),
    }
}

async fn reconcile(bus: &Bus, resource: &Resource, existing: StreamConfig) -> Outcome {
    let desired = apply_managed_fields(existing.clone(), resource);
    let changed = changed_fields(&existing, &desired);
    if changed.is_empty() {
        return Outcome::Unchanged;
    }
    let updated = bounded(
        "stream update",
        bus.request_timeout(),
        bus.jetstream().update_stream(&desired),
    )
    .await;
    match updated {
        Ok(_) => Outcome::Updated { changed },
        Err(err) if err.jetstream_code() == Some(JS_STORAGE_RESOURCES_EXCEEDED) => {
            let reason = format!(
                "the broker cannot reserve {} for it (JetStream error 10047); lower the storage \
                 budget or raise the broker's max_file_store",
                human_bytes(resource.max_bytes)
            );
            Outcome::KeptWithWarning { changed, reason }
        }
        Err(err) => Outcome::KeptWithWarning {
            changed,
            reason: err.to_string(),
        },
    }
}

/// The stream configuration that backs `resource`, laid out as async-nats lays out KV
/// buckets and object stores so its KV and object-store clients can bind to them.
pub fn stream_config(resource: &Resource) -> StreamConfig {
    let base = StreamConfig {
        name: backing_stream_name(resource),
        ..StreamConfig::default()
    };
    apply_managed_fields(base, resource)
}

/// The name of the JetStream stream behind a resource.
pub fn backing_stream_name(resource: &Resource) -> String {
    match resource.kind {
        ResourceKind::Stream => resource.name.clone(),
        ResourceKind::KeyValue => format!("KV_{}", resource.name),
        ResourceKind::ObjectStore => format!("OBJ_{}", resource.name),
    }
}

fn apply_managed_fields(mut config: StreamConfig, resource: &Resource) -> StreamConfig {
    config.description = Some(resource.description.clone());
    config.subjects = backing_subjects(resource);
    config.max_age = resource.max_age;
    config.max_bytes = i64::try_from(resource.max_bytes).unwrap_or(i64::MAX);
    config.max_messages_per_subject = resource.max_msgs_per_subject;
    config.max_message_size = resource.max_msg_size;
    config.discard = match resource.discard {
        Discard::Old => DiscardPolicy::Old,
        Discard::New => DiscardPolicy::New,
    };
    config.num_replicas = resource.replicas.max(1);
    config.max_consumers = MAX_CONSUMERS_PER_STREAM;
    config.allow_message_ttl = resource.allow_msg_ttl;
    config.storage = StorageType::File;
    if resource.duplicate_window > Duration::ZERO {
        config.duplicate_window = resource.duplicate_window;
    }
    match resource.kind {
        ResourceKind::Stream => {}
        ResourceKind::KeyValue => {
            config.allow_rollup = true;
            config.deny_delete = true;
            config.deny_purge = false;
            config.allow_direct = true;
        }
        ResourceKind::ObjectStore => {
            config.allow_rollup = true;
            config.allow_direct = true;
        }
    }
    config
}

fn backing_subjects(resource: &Resource) -> Vec<String> {
    let name = &resource.name;
    match resource.kind {
        ResourceKind::Stream => resource.subjects.clone(),
        ResourceKind::KeyValue => vec![format!("$KV.{name}.>")],
        ResourceKind::ObjectStore => vec![format!("$O.{name}.C.>"), format!("$O.{name}.M.>")],
    }
}

fn changed_fields(existing: &StreamConfig, desired: &StreamConfig) -> Vec<&'static str> {
    let checks: [(&'static str, bool); 15] = [
        ("description", existing.description != desired.description),
        ("subjects", existing.subjects != desired.subjects),
        ("max_age", existing.max_age != desired.max_age),
        ("max_bytes", existing.max_bytes != desired.max_bytes),
        (
            "max_msgs_per_subject",
            existing.max_messages_per_subject != desired.max_messages_per_subject,
        ),
        (
            "max_msg_size",
            existing.max_message_size != desired.max_message_size,
        ),
        ("discard", existing.discard != desired.discard),
        ("replicas", existing.num_replicas != desired.num_replicas),
        ("storage", existing.storage != desired.storage),
        (
            "duplicate_window",
            existing.duplicate_window != desired.duplicate_window,
        ),
        (
            "allow_rollup",
            existing.allow_rollup != desired.allow_rollup,
        ),
        ("deny_delete", existing.deny_delete != desired.deny_delete),
        (
            "max_consumers",
            existing.max_consumers != desired.max_consumers,
        ),
        (
            "allow_direct",
            existing.allow_direct != desired.allow_direct,
        ),
        (
            "allow_msg_ttl",
            existing.allow_message_ttl != desired.allow_message_ttl,
        ),
    ];
    checks
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(name, _)| name)
        .collect()
}

fn validate_name(resource: &Resource) -> Result<(), BootstrapError> {
    let name = &resource.name;
    let bad = |reason: String| BootstrapError::InvalidName {
        kind: kind_label(resource),
        name: name.clone(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("the name is empty".into()));
    }
    if name.len() > 200 {
        return Err(bad(format!(
            "{} characters is longer than the limit of 200",
            name.len()
        )));
    }
    let allowed = |c: char| match resource.kind {
        ResourceKind::Stream => c.is_ascii_graphic() && !matches!(c, '.' | '*' | '>' | '/' | '\\'),
        ResourceKind::KeyValue | ResourceKind::ObjectStore => {
            c.is_ascii_alphanumeric() || c == '_' || c == '-'
        }
    };
    match name.char_indices().find(|(_, c)| !allowed(*c)) {
        Some((index, c)) => Err(bad(format!(
            "character {c:?} at position {} is not allowed",
            index + 1
        ))),
        None => Ok(()),
    }
}

fn kind_label(resource: &Resource) -> &'static str {
    match resource.kind {
        ResourceKind::Stream => "stream",
        ResourceKind::KeyValue => "KV bucket",
        ResourceKind::ObjectStore => "object store",
    }
}

fn log_outcome(outcome: &ResourceOutcome) {
    let name = outcome.name.as_str();
    match &outcome.outcome {
        Outcome::Created => tracing::info!(resource = name, "Created JetStream resource."),
        Outcome::Unchanged => tracing::debug!(resource = name, "JetStream resource is up to date."),
        Outcome::Updated { changed } => {
            tracing::info!(
                resource = name,
                ?changed,
                "Reconciled drifted JetStream resource."
            )
        }
        Outcome::KeptWithWarning { changed, reason } => tracing::warn!(
            resource = name,
            ?changed,
            %reason,
            "JetStream resource has drifted and could not be updated; using it as it is."
        ),
    }
}

/// Renders a byte count for operators, e.g. `1.5 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit_idx = 0;
    while value >= 1024.0 && unit_idx < UNITS.len() - 1 {
        value /= 1024.0;
        unit_idx += 1;
    }
    if unit_idx == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit_idx])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_picks_a_readable_unit() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(4 * 1024 * 1024 * 1024), "4.0 GiB");
    }
}
