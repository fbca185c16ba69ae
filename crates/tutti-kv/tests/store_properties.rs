//! Property tests of the redb store format: any sequence of commits reopens to exactly the
//! model's state, and a byte flipped anywhere in a closed file is either reported as an error
//! or harmless (the loaded data still equals the model), never silently wrong data.

use bytes::Bytes;
use proptest::prelude::*;
use tutti_kv::{
    Commit, LoadedState, LocalStore, Operation, RedbStore, StoreChange, StoreMeta, StoredEntry,
};

fn change() -> impl Strategy<Value = StoreChange> {
    let key = (0u8..40).prop_map(|key_idx| format!("p.{key_idx}"));
    let operation = prop_oneof![4 => Just(Operation::Put), 1 => Just(Operation::Delete), 1 => Just(Operation::Purge)];
    prop_oneof![
        5 => (key.clone(), 1u64..1_000_000, operation, prop::collection::vec(any::<u8>(), 0..300)).prop_map(
            |(key, revision, operation, value)| {
                let value = if operation == Operation::Put { Bytes::from(value) } else { Bytes::new() };
                StoreChange::Upsert { key, entry: StoredEntry { revision, operation, value } }
            }
        ),
        1 => key.prop_map(|key| StoreChange::Remove { key }),
    ]
}

fn commits() -> impl Strategy<Value = Vec<Commit>> {
    prop::collection::vec(prop::collection::vec(change(), 0..20), 1..8).prop_map(|batches| {
        batches
            .into_iter()
            .enumerate()
            .map(|(batch_idx, changes)| Commit {
                changes,
                meta: StoreMeta {
                    cursor: Some(batch_idx as u64 + 1),
                    fingerprint: Some("p".into()),
                    last_sync: None,
                },
            })
            .collect()
    })
}

fn write_all(path: &std::path::Path, commits: &[Commit]) -> LoadedState {
    let mut store = RedbStore::open(path).unwrap();
    let mut model = LoadedState::default();
    for commit in commits {
        store.commit(commit).unwrap();
        model.apply(commit);
    }
    model
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn reopen_yields_exactly_the_model(commits in commits()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.redb");
        let model = write_all(&path, &commits);
        let loaded = RedbStore::open(&path).unwrap().load().unwrap();
        prop_assert_eq!(loaded, model);
    }

    #[test]
    fn a_flipped_byte_is_detected_or_harmless(commits in commits(), position in any::<prop::sample::Index>(), bit in 0u8..8) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.redb");
        let model = write_all(&path, &commits);
        let mut bytes = std::fs::read(&path).unwrap();
        let offset = position.index(bytes.len());
        bytes[offset] ^= 1 << bit;
        std::fs::write(&path, &bytes).unwrap();
        // redb may also panic on some corrupted pages; a panic is a detected failure too.
        let outcome = std::panic::catch_unwind(|| RedbStore::open(&path).and_then(|mut store| store.load()));
        if let Ok(Ok(loaded)) = outcome {
            prop_assert_eq!(loaded, model, "byte {} bit {} changed the data silently", offset, bit);
        }
    }
}
