//! Replica loop overhead: the in-memory apply path (never-regress planning plus applying to
//! the in-memory copy) in updates per second, without a broker or a disk.
//!
//! Run by hand: `cargo bench -p tutti-kv --bench replica`.

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tutti_kv::bench_support::InMemoryReplica;
use tutti_kv::{Entry, LoadedState, Operation, StoredEntry};

const KEYS: u64 = 10_000;
const BATCH: u64 = 1_024;

fn seeded_replica() -> InMemoryReplica {
    let mut loaded = LoadedState::default();
    for key_idx in 0..KEYS {
        let entry = StoredEntry {
            revision: key_idx + 1,
            operation: Operation::Put,
            value: Bytes::from_static(b"seed"),
        };
        loaded.entries.insert(key(key_idx), entry);
    }
    loaded.meta.cursor = Some(KEYS);
    InMemoryReplica::from_loaded(loaded)
}

fn key(key_idx: u64) -> String {
    format!("fleet.agent-{key_idx:06}.config")
}

fn bench_apply(c: &mut Criterion) {
    let mut group = c.benchmark_group("replica_loop");
    group.throughput(Throughput::Elements(BATCH));
    let mut replica = seeded_replica();
    let mut next_revision = KEYS + 1;
    let value = Bytes::from_static(b"{\"interval\":30,\"enabled\":true}");
    group.bench_function("in_memory_apply_1024_updates", |b| {
        b.iter_batched(
            || {
                let entries: Vec<Entry> = (0..BATCH)
                    .map(|offset| {
                        let revision = next_revision + offset;
                        Entry {
                            key: key(revision % KEYS),
                            value: value.clone(),
                            revision,
                            operation: Operation::Put,
                        }
                    })
                    .collect();
                next_revision += BATCH;
                (entries, next_revision - 1)
            },
            |(entries, cursor)| replica.apply_live(entries, cursor),
            BatchSize::SmallInput,
        );
    });
    // Replays: every delivery is older than what is applied, the never-regress slow path.
    group.bench_function("in_memory_ignore_1024_replayed", |b| {
        b.iter_batched(
            || {
                (0..BATCH)
                    .map(|offset| Entry {
                        key: key(offset),
                        value: value.clone(),
                        revision: offset + 1,
                        operation: Operation::Put,
                    })
                    .collect::<Vec<Entry>>()
            },
            |entries| replica.apply_live(entries, 0),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench_apply);
criterion_main!(benches);
