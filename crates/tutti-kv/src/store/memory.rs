//! `MemoryStore`: a [`LocalStore`] that keeps its "durable" state in memory.
//!
//! Clones share the same state, so a test can drop a replica, keep a clone and start a new
//! replica on it as if the process had restarted. Failures can be injected to exercise the
//! replica loop's re-queue and fail-stop paths.

use std::sync::{Arc, Mutex};

use super::{Commit, LoadedState, LocalStore, StoreError};

/// An in-memory store; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    shared: Arc<Mutex<Shared>>,
}

#[derive(Debug, Default)]
struct Shared {
    state: LoadedState,
    failures_to_inject: u32,
    commits: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Makes the next `n` commits fail with a storage error (nothing applied).
    pub fn fail_next_commits(&self, n: u32) {
        self.lock().failures_to_inject = n;
    }

    /// A copy of what is committed.
    pub fn snapshot(&self) -> LoadedState {
        self.lock().state.clone()
    }

    /// Number of successful commits.
    pub fn commit_count(&self) -> u64 {
        self.lock().commits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        // A panic while holding the lock leaves plain data behind, still consistent per commit.
        self.shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl LocalStore for MemoryStore {
    fn load(&mut self) -> Result<LoadedState, StoreError> {
        Ok(self.lock().state.clone())
    }

    fn commit(&mut self, commit: &Commit) -> Result<(), StoreError> {
        let mut shared = self.lock();
        if shared.failures_to_inject > 0 {
            shared.failures_to_inject -= 1;
            return Err(StoreError::Storage("injected failure".into()));
        }
        shared.state.apply(commit);
        shared.commits += 1;
        Ok(())
    }
}
