//! `KeyedEntries`: the replica's in-memory copy of its keys. The primary copy is the ordered
//! `BTreeMap` the store loaded (taken over as is, no rebuild); the entries of keys that
//! received live updates move to a side slab, reached through a lazily filled hash index.
//!
//! Why: a `BTreeMap<String, _>` alone made every update a walk of string comparisons through
//! pointer-chased keys (about 870 of the path's 1,100 instructions per update at 10 k keys,
//! measured with callgrind), while a hash map of every key made boot (hashing and
//! re-allocating millions of keys) and prefix scans (a random hash probe per scanned key) an
//! order of magnitude slower. Here boot costs nothing beyond the load, a scan walks the tree
//! as before, an update to a key updated before is one hash lookup, and a key's first update
//! takes the ordered lookup once and registers the key.
//!
//! How the tree finds a moved entry: its tree value becomes a marker, a `StoredEntry` whose
//! `revision` is `HOT_TAG` plus the slab slot (with an empty static value, so no allocation).
//! Real revisions are stream sequences, far below 2⁶³; a loaded entry at or above it would be
//! moved to the slab at load, so a tree value is a marker exactly when its revision says so.
//! Nothing outside this module ever sees a marker. `state.rs` is the only user and owns the
//! never-regress rules; this module only keeps the indexes in step.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use bytes::Bytes;
use foldhash::fast::RandomState;

use crate::entry::Operation;
use crate::store::StoredEntry;

/// Tree values with a revision at or above this are markers for a slab slot.
const HOT_TAG: u64 = 1 << 63;

/// Every key of the copy with its latest applied revision, tombstones included.
///
/// Invariants: a tree value is either a real entry (revision below `HOT_TAG`) or the marker of
/// a filled slab slot; `hot` maps exactly the marked keys to their slots; `free` names exactly
/// the empty slots. Only the methods below change any of them; `replica::protocol_tests`
/// checks them after every step through `ReplicaState::entries`.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyedEntries {
    ordered: BTreeMap<String, StoredEntry>,
    slots: Vec<Option<StoredEntry>>,
    free: Vec<usize>,
    hot: HashMap<Box<str>, usize, RandomState>,
}

fn marker(slot: usize) -> StoredEntry {
    StoredEntry {
        revision: HOT_TAG | slot as u64,
        operation: Operation::Put,
        value: Bytes::new(),
    }
}

fn marked_slot(entry: &StoredEntry) -> Option<usize> {
    (entry.revision >= HOT_TAG).then(|| (entry.revision - HOT_TAG) as usize)
}

impl KeyedEntries {
    /// Takes over a loaded copy as is. `max_revision` is its highest revision: only if it
    /// reaches `HOT_TAG` (never, for stream sequences) is there a pass to move such entries.
    pub(crate) fn from_loaded(
        entries: BTreeMap<String, StoredEntry>,
        max_revision: u64,
    ) -> KeyedEntries {
        let mut copy = KeyedEntries {
            ordered: entries,
            ..KeyedEntries::default()
        };
        if max_revision >= HOT_TAG {
            for (key, value) in copy.ordered.iter_mut() {
                if value.revision >= HOT_TAG {
                    let entry = std::mem::replace(value, marker(copy.slots.len()));
                    copy.hot.insert(Box::from(key.as_str()), copy.slots.len());
                    copy.slots.push(Some(entry));
                }
            }
        }
        copy
    }

    fn resolve<'s>(&'s self, entry: &'s StoredEntry) -> &'s StoredEntry {
        match marked_slot(entry) {
            None => entry,
            Some(slot) => self.filled(slot),
        }
    }

    fn filled(&self, slot: usize) -> &StoredEntry {
        // Cannot fail while the invariants hold; a panic beats a silently wrong answer.
        self.slots[slot]
            .as_ref()
            .expect("marker names an empty slot")
    }

    pub(crate) fn get(&self, key: &str) -> Option<&StoredEntry> {
        match self.hot.get(key) {
            Some(&slot) => Some(self.filled(slot)),
            None => self.ordered.get(key).map(|entry| self.resolve(entry)),
        }
    }

    /// Sets `key` to `entry` and returns the entry it replaced. A key updated before is one
    /// hash lookup; a first update looks the key up in order, moves it to the slab and
    /// registers it in the hash index; only a new key changes the tree's shape.
    pub(crate) fn upsert(&mut self, key: &str, entry: StoredEntry) -> Option<StoredEntry> {
        if let Some(&slot) = self.hot.get(key) {
            return self.slots[slot].replace(entry);
        }
        let slot = self.fill_free_slot(entry);
        self.hot.insert(Box::from(key), slot);
        match self.ordered.get_mut(key) {
            // Not hot, so a real entry, not a marker.
            Some(cold) => Some(std::mem::replace(cold, marker(slot))),
            None => {
                self.ordered.insert(key.to_owned(), marker(slot));
                None
            }
        }
    }

    fn fill_free_slot(&mut self, entry: StoredEntry) -> usize {
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(entry);
                slot
            }
            None => {
                self.slots.push(Some(entry));
                self.slots.len() - 1
            }
        }
    }

    pub(crate) fn remove(&mut self, key: &str) -> Option<StoredEntry> {
        let removed = self.ordered.remove(key)?;
        match marked_slot(&removed) {
            None => Some(removed),
            Some(slot) => {
                self.hot.remove(key);
                self.free.push(slot);
                self.slots[slot].take()
            }
        }
    }

    /// Keys in key order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.ordered.keys().map(String::as_str)
    }

    /// Entries in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &StoredEntry> {
        self.ordered
            .values()
            .filter(|entry| marked_slot(entry).is_none())
            .chain(self.slots.iter().flatten())
    }

    /// Keys starting with `prefix` with their entries, in key order.
    pub(crate) fn with_prefix<'s>(
        &'s self,
        prefix: &'s str,
    ) -> impl Iterator<Item = (&'s str, &'s StoredEntry)> + 's {
        self.ordered
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(key, _)| key.starts_with(prefix))
            .map(|(key, entry)| (key.as_str(), self.resolve(entry)))
    }

    /// The copy as an ordinary ordered map, after checking that the indexes agree.
    #[cfg(test)]
    pub(crate) fn to_btree_map(&self) -> BTreeMap<String, StoredEntry> {
        let mut used = vec![false; self.slots.len()];
        let mut marked = 0;
        for (key, entry) in &self.ordered {
            if let Some(slot) = marked_slot(entry) {
                marked += 1;
                assert_eq!(self.hot.get(key.as_str()), Some(&slot), "indexes disagree");
                assert!(self.slots[slot].is_some(), "marker names an empty slot");
                assert!(!std::mem::replace(&mut used[slot], true), "slot shared");
            }
        }
        assert_eq!(marked, self.hot.len(), "hash index has unmarked keys");
        for &slot in &self.free {
            assert!(self.slots[slot].is_none(), "free slot is filled");
            assert!(
                !std::mem::replace(&mut used[slot], true),
                "free slot in use"
            );
        }
        assert!(used.iter().all(|&used| used), "slot neither used nor free");
        self.with_prefix("")
            .map(|(key, entry)| (key.to_owned(), entry.clone()))
            .collect()
    }
}
