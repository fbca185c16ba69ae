//! Property tests of the redb store format: any sequence of commits reopens to exactly the
//! model's state, and a byte flipped anywhere in a closed file is either reported (an error,
//! or a crash of the process that opened it) or harmless: the loaded data is a state the store
//! really held after one of its commits, whose cursor covers exactly that data. (redb keeps
//! two commit slots and may fall back to the older one; a replica that loads an older state
//! with its older cursor simply catches up from there.) Never a mix that never existed.
//!
//! redb can abort the process on some damaged pages (a panic while unwinding), which no
//! `catch_unwind` survives, so the damaged file is opened in a child process: this same test
//! binary, running only `opens_the_file_it_is_given`.

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

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn reopen_yields_exactly_the_model(commits in commits()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.redb");
        let held = states_held(&path, &commits);
        let loaded = RedbStore::open(&path).unwrap().load().unwrap();
        prop_assert_eq!(&format!("{loaded:?}"), held.last().unwrap());
    }

    #[test]
    fn a_flipped_byte_is_detected_or_harmless(commits in commits(), position in any::<prop::sample::Index>(), bit in 0u8..8) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.redb");
        let held = states_held(&path, &commits);
        let mut bytes = std::fs::read(&path).unwrap();
        let offset = position.index(bytes.len());
        bytes[offset] ^= 1 << bit;
        std::fs::write(&path, &bytes).unwrap();
        if let Some(loaded) = load_in_child(&path) {
            prop_assert!(
                held.contains(&loaded),
                "byte {} bit {} produced a state the store never held: {}", offset, bit, loaded
            );
        }
    }
}

/// Every state the store held: empty, then after each commit (as `Debug` text, the form the
/// child reports).
fn states_held(path: &std::path::Path, commits: &[Commit]) -> Vec<String> {
    let mut store = RedbStore::open(path).unwrap();
    let mut model = LoadedState::default();
    let mut held = vec![format!("{model:?}")];
    for commit in commits {
        store.commit(commit).unwrap();
        model.apply(commit);
        held.push(format!("{model:?}"));
    }
    held
}

const CHILD_FILE: &str = "TUTTI_KV_TEST_OPEN_FILE";
const LOADED_MARK: &str = "loaded state: ";

/// Opens `path` in a child process; the state it loaded, or `None` if opening failed in any
/// way (an error, a panic, an abort).
fn load_in_child(path: &std::path::Path) -> Option<String> {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "opens_the_file_it_is_given",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_FILE, path)
        .output()
        .expect("the test binary runs itself");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let loaded = stdout
        .lines()
        .find_map(|line| line.split_once(LOADED_MARK).map(|(_, state)| state));
    match (output.status.success(), loaded) {
        (true, Some(loaded)) => Some(loaded.to_string()),
        (true, None) => panic!("the child ran but reported nothing"),
        (false, _) => None,
    }
}

/// The child side of `a_flipped_byte_is_detected_or_harmless`: opens the file named by
/// `TUTTI_KV_TEST_OPEN_FILE` and prints what it loaded, failing on any error. Run on its own
/// it opens a freshly written file, which must load as written.
#[test]
fn opens_the_file_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let (path, expected) = match std::env::var_os(CHILD_FILE) {
        Some(path) => (std::path::PathBuf::from(path), None),
        None => {
            let path = dir.path().join("fresh.redb");
            let commit = Commit {
                changes: vec![StoreChange::Upsert {
                    key: "p.1".into(),
                    entry: StoredEntry {
                        revision: 3,
                        operation: Operation::Put,
                        value: Bytes::from_static(b"v"),
                    },
                }],
                meta: StoreMeta {
                    cursor: Some(3),
                    fingerprint: Some("p".into()),
                    last_sync: None,
                },
            };
            let held = states_held(&path, std::slice::from_ref(&commit));
            (path, held.last().cloned())
        }
    };
    let loaded = RedbStore::open(&path)
        .and_then(|mut store| store.load())
        .expect("the file loads");
    let loaded = format!("{loaded:?}");
    if let Some(expected) = expected {
        assert_eq!(loaded, expected);
    }
    println!("{LOADED_MARK}{loaded}");
}
