//! Local store benchmarks: redb apply throughput, reopen time of large stores, and a prefix
//! scan of 1,000 keys in a 1 M-key store.
//!
//! Run by hand: `cargo bench -p tutti-kv --bench store`. Reopen sizes default to 1 M keys;
//! `TUTTI_KV_BENCH_KEYS=1000000,3000000` adds the 3 M-key store (building it takes a while).
//! Stores are built once per run in a temp directory.

use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tutti_kv::{
    Commit, LocalStore, Operation, RedbStore, ReplicaState, StoreChange, StoreMeta, StoredEntry,
};

const AGENTS_PER_GROUP: u64 = 1_000;

fn key(key_idx: u64) -> String {
    format!(
        "fleet.g{:04}.agent-{:07}",
        key_idx / AGENTS_PER_GROUP,
        key_idx
    )
}

fn upsert(key_idx: u64, revision: u64) -> StoreChange {
    let value = Bytes::from_static(b"{\"os\":\"linux\",\"arch\":\"x86_64\",\"v\":1}");
    StoreChange::Upsert {
        key: key(key_idx),
        entry: StoredEntry {
            revision,
            operation: Operation::Put,
            value,
        },
    }
}

fn build_store(path: &Path, n_keys: u64) {
    let started = Instant::now();
    let mut store = RedbStore::open(path).expect("open");
    // Chunks keep the build's memory flat; one commit per chunk.
    for chunk_start in (0..n_keys).step_by(250_000) {
        let chunk_end = (chunk_start + 250_000).min(n_keys);
        let changes = (chunk_start..chunk_end)
            .map(|key_idx| upsert(key_idx, key_idx + 1))
            .collect();
        let meta = StoreMeta {
            cursor: Some(chunk_end),
            fingerprint: Some("bench".into()),
            last_sync: None,
        };
        store.commit(&Commit { changes, meta }).expect("commit");
    }
    eprintln!("built a {n_keys}-key store in {:?}", started.elapsed());
}

fn reopen_sizes() -> Vec<u64> {
    std::env::var("TUTTI_KV_BENCH_KEYS")
        .ok()
        .map(|sizes| {
            sizes
                .split(',')
                .filter_map(|size| size.trim().parse().ok())
                .collect()
        })
        .unwrap_or_else(|| vec![1_000_000])
}

fn bench_apply(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = RedbStore::open(&dir.path().join("apply.redb")).expect("open");
    let mut revision = 0;
    let mut group = c.benchmark_group("store_apply");
    for batch_len in [1u64, 1_024] {
        group.throughput(Throughput::Elements(batch_len));
        group.bench_function(format!("redb_commit_{batch_len}_updates_fsynced"), |b| {
            b.iter(|| {
                let changes = (0..batch_len)
                    .map(|offset| {
                        revision += 1;
                        upsert((revision + offset) % 100_000, revision)
                    })
                    .collect();
                let meta = StoreMeta {
                    cursor: Some(revision),
                    ..StoreMeta::default()
                };
                store.commit(&Commit { changes, meta }).expect("commit");
            });
        });
    }
    group.finish();
}

fn bench_reopen_and_scan(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut scan_path = None;
    let mut group = c.benchmark_group("store_reopen");
    group.sample_size(10);
    for n_keys in reopen_sizes() {
        let path = dir.path().join(format!("reopen-{n_keys}.redb"));
        build_store(&path, n_keys);
        group.bench_function(format!("open_{n_keys}_keys"), |b| {
            b.iter(|| RedbStore::open(&path).expect("open"));
        });
        group.bench_function(format!("open_and_load_{n_keys}_keys"), |b| {
            b.iter(|| {
                RedbStore::open(&path)
                    .and_then(|mut store| store.load())
                    .expect("load")
            });
        });
        if n_keys == 1_000_000 {
            scan_path = Some(path);
        }
    }
    group.finish();
    if let Some(path) = scan_path {
        bench_scan(c, &path);
    }
}

fn bench_scan(c: &mut Criterion, path: &Path) {
    let mut store = RedbStore::open(path).expect("open");
    let state = ReplicaState::from_loaded(store.load().expect("load"));
    let prefix = "fleet.g0421.";
    assert_eq!(store.scan_prefix(prefix).expect("scan").len(), 1_000);
    let mut group = c.benchmark_group("prefix_scan_1000_of_1M");
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("redb_on_disk", |b| {
        b.iter(|| store.scan_prefix(prefix).expect("scan").len())
    });
    group.bench_function("replica_in_memory", |b| {
        b.iter(|| state.scan(prefix).count())
    });
    group.finish();
}

criterion_group!(benches, bench_apply, bench_reopen_and_scan);
criterion_main!(benches);
