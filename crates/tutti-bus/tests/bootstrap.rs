//! Bootstrap and reconciliation against a real nats-server: created, unchanged, updated,
//! kept with a warning, and the clear errors for bad names and storage that does not fit.

use std::time::Duration;

use async_nats::jetstream::{kv, object_store, stream};
use tutti_bus::resources::backing_stream_name;
use tutti_bus::{BootstrapError, Bus, BusConfig, Outcome, connect, ensure_resources};
use tutti_proto::catalog::{Catalog, CatalogConfig, Resource, ResourceKind};
use tutti_testkit::{TestNats, TestNatsOptions};

const GIB: u64 = 1024 * 1024 * 1024;

async fn bus_for(nats: &TestNats) -> Bus {
    connect(&nats.bus_config()).await.expect("connect")
}

fn catalog() -> Catalog {
    Catalog::tutti(&CatalogConfig {
        storage_budget_bytes: GIB,
        replicas: 1,
    })
}

fn resource_of_kind(catalog: &Catalog, kind: ResourceKind) -> Resource {
    catalog
        .resources
        .iter()
        .find(|r| r.kind == kind)
        .expect("catalog has this kind")
        .clone()
}

fn outcome_of<'a>(outcomes: &'a [tutti_bus::ResourceOutcome], name: &str) -> &'a Outcome {
    &outcomes
        .iter()
        .find(|o| o.name == name)
        .expect("outcome for resource")
        .outcome
}

#[tokio::test]
async fn fresh_broker_gets_everything_created_then_nothing_changes() {
    let nats = TestNats::start();
    let bus = bus_for(&nats).await;
    let catalog = catalog();

    let first = ensure_resources(&bus, &catalog).await.unwrap();
    assert_eq!(first.len(), catalog.resources.len());
    assert!(
        first.iter().all(|o| o.outcome == Outcome::Created),
        "{first:#?}"
    );

    let second = ensure_resources(&bus, &catalog).await.unwrap();
    assert!(
        second.iter().all(|o| o.outcome == Outcome::Unchanged),
        "{second:#?}"
    );

    // Every resource exists with the catalog's limits.
    for resource in &catalog.resources {
        let mut stream = bus
            .jetstream()
            .get_stream(backing_stream_name(resource))
            .await
            .unwrap();
        let config = &stream.info().await.unwrap().config;
        assert_eq!(
            config.max_bytes as u64, resource.max_bytes,
            "{}",
            resource.name
        );
        assert_eq!(config.max_age, resource.max_age, "{}", resource.name);
    }
}

#[tokio::test]
async fn stream_with_other_subjects_and_limits_is_updated() {
    let nats = TestNats::start();
    let bus = bus_for(&nats).await;
    let catalog = catalog();
    let wanted = resource_of_kind(&catalog, ResourceKind::Stream);
    bus.jetstream()
        .create_stream(stream::Config {
            name: wanted.name.clone(),
            subjects: vec!["legacy.subject.>".into()],
            max_age: Duration::from_secs(60),
            max_bytes: 1024 * 1024,
            ..Default::default()
        })
        .await
        .unwrap();

    let outcomes = ensure_resources(&bus, &catalog).await.unwrap();
    let Outcome::Updated { changed } = outcome_of(&outcomes, &wanted.name) else {
        panic!("expected an update: {outcomes:#?}");
    };
    for field in ["subjects", "max_age", "max_bytes"] {
        assert!(changed.contains(&field), "{field} missing from {changed:?}");
    }
    let mut stream = bus.jetstream().get_stream(&wanted.name).await.unwrap();
    let config = stream.info().await.unwrap().config.clone();
    assert_eq!(config.subjects, wanted.subjects);
    assert_eq!(config.max_age, wanted.max_age);
    assert_eq!(config.max_bytes as u64, wanted.max_bytes);
}

#[tokio::test]
async fn uncapped_object_store_is_capped_and_still_usable() {
    let nats = TestNats::start();
    let bus = bus_for(&nats).await;
    let catalog = catalog();
    let wanted = resource_of_kind(&catalog, ResourceKind::ObjectStore);
    let store = bus
        .jetstream()
        .create_object_store(object_store::Config {
            bucket: wanted.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    store
        .put("before", &mut &b"kept across reconcile"[..])
        .await
        .unwrap();

    let outcomes = ensure_resources(&bus, &catalog).await.unwrap();
    assert!(
        matches!(outcome_of(&outcomes, &wanted.name), Outcome::Updated { .. }),
        "{outcomes:#?}"
    );

    let mut stream = bus
        .jetstream()
        .get_stream(format!("OBJ_{}", wanted.name))
        .await
        .unwrap();
    let config = stream.info().await.unwrap().config.clone();
    assert_eq!(config.max_bytes as u64, wanted.max_bytes);
    assert_eq!(config.max_age, wanted.max_age);

    let store = bus
        .jetstream()
        .get_object_store(&wanted.name)
        .await
        .unwrap();
    store.put("after", &mut &b"new object"[..]).await.unwrap();
    for (name, body) in [
        ("before", &b"kept across reconcile"[..]),
        ("after", b"new object"),
    ] {
        let mut object = store.get(name).await.unwrap();
        let mut read = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut object, &mut read)
            .await
            .unwrap();
        assert_eq!(read, body);
    }
}

#[tokio::test]
async fn kv_bucket_with_other_history_is_reconciled() {
    let nats = TestNats::start();
    let bus = bus_for(&nats).await;
    let catalog = catalog();
    let wanted = resource_of_kind(&catalog, ResourceKind::KeyValue);
    let wrong_history = if wanted.max_msgs_per_subject == 7 {
        3
    } else {
        7
    };
    let bucket = bus
        .jetstream()
        .create_key_value(kv::Config {
            bucket: wanted.name.clone(),
            history: wrong_history,
            ..Default::default()
        })
        .await
        .unwrap();
    bucket.put("key", "value".into()).await.unwrap();

    let outcomes = ensure_resources(&bus, &catalog).await.unwrap();
    let Outcome::Updated { changed } = outcome_of(&outcomes, &wanted.name) else {
        panic!("expected an update: {outcomes:#?}");
    };
    assert!(changed.contains(&"max_msgs_per_subject"), "{changed:?}");

    let bucket = bus.jetstream().get_key_value(&wanted.name).await.unwrap();
    assert_eq!(
        bucket.status().await.unwrap().history(),
        wanted.max_msgs_per_subject
    );
    assert_eq!(
        bucket.get("key").await.unwrap().as_deref(),
        Some(&b"value"[..])
    );
}

/// Regression: an earlier system crashed at boot on NATS error 10058 when a stream existed
/// with a different configuration. A change the broker refuses (storage type) must leave the
/// stream as it is, with a warning, and bootstrap must still succeed.
#[tokio::test]
async fn drifted_stream_is_updated_not_fatal() {
    let nats = TestNats::start();
    let bus = bus_for(&nats).await;
    let catalog = catalog();
    let wanted = resource_of_kind(&catalog, ResourceKind::Stream);
    bus.jetstream()
        .create_stream(stream::Config {
            name: wanted.name.clone(),
            subjects: wanted.subjects.clone(),
            storage: stream::StorageType::Memory,
            ..Default::default()
        })
        .await
        .unwrap();

    let outcomes = ensure_resources(&bus, &catalog)
        .await
        .expect("drift is never fatal");
    let Outcome::KeptWithWarning { changed, reason } = outcome_of(&outcomes, &wanted.name) else {
        panic!("expected kept-with-warning: {outcomes:#?}");
    };
    assert!(changed.contains(&"storage"), "{changed:?}");
    assert!(!reason.is_empty());
    let others_fine = outcomes
        .iter()
        .filter(|o| o.name != wanted.name)
        .all(|o| o.outcome == Outcome::Created);
    assert!(others_fine, "{outcomes:#?}");
}

#[tokio::test]
async fn invalid_resource_name_is_an_error_naming_it() {
    let nats = TestNats::start();
    let bus = bus_for(&nats).await;
    let mut catalog = catalog();
    catalog.resources[0].name = "TUTTI.BAD".into();

    let err = ensure_resources(&bus, &catalog).await.unwrap_err();
    assert!(matches!(err, BootstrapError::InvalidName { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("\"TUTTI.BAD\"") && message.contains("'.'"),
        "{message}"
    );
    // Validation happens before anything is created.
    let mut names = bus.jetstream().stream_names();
    assert!(
        futures::StreamExt::next(&mut names).await.is_none(),
        "nothing was created"
    );
}

#[tokio::test]
async fn storage_that_does_not_fit_is_a_clear_error_not_a_panic() {
    let nats = TestNats::start_with(TestNatsOptions {
        max_file_store: 64 * 1024 * 1024,
        ..TestNatsOptions::default()
    });
    let bus = bus_for(&nats).await;
    let catalog = Catalog::tutti(&CatalogConfig {
        storage_budget_bytes: 4 * GIB,
        replicas: 1,
    });

    let err = ensure_resources(&bus, &catalog).await.unwrap_err();
    let BootstrapError::StorageReservation { name, .. } = &err else {
        panic!("expected a storage reservation error, got {err:?}");
    };
    let message = err.to_string();
    assert!(
        catalog.get(name).is_some(),
        "names a catalog resource: {message}"
    );
    let total = tutti_bus::resources::human_bytes(catalog.total_bytes());
    for needle in [
        "10047",
        "storage_budget_bytes",
        "max_file_store",
        total.as_str(),
    ] {
        assert!(
            message.contains(needle),
            "{needle:?} missing from: {message}"
        );
    }
}

#[tokio::test]
async fn unreachable_broker_is_a_clear_connect_error() {
    let nats = TestNats::start();
    let url = nats.url();
    drop(nats);
    let config = BusConfig {
        connect_timeout_ms: 500,
        ..BusConfig::for_url(url.clone())
    };
    let err = connect(&config).await.unwrap_err().to_string();
    assert!(err.contains(&url), "{err}");
}
