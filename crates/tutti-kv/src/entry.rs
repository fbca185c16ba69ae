//! `Entry` and `Operation`: one revision of one key, as read from the bucket's stream.
//!
//! The revision of an entry is the stream sequence of the message that wrote it, so it is
//! unique across the bucket and orders all writes. Tombstones (delete and purge markers) are
//! entries too: the replica keeps them so that a replayed older put cannot resurrect a key.

use bytes::Bytes;

/// What a revision did to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// A value was written.
    Put,
    /// The key was deleted (history kept).
    Delete,
    /// The key was purged (history removed).
    Purge,
}

impl Operation {
    /// Whether this operation leaves the key absent.
    pub fn is_tombstone(self) -> bool {
        !matches!(self, Operation::Put)
    }

    pub(crate) fn from_nats(operation: async_nats::jetstream::kv::Operation) -> Operation {
        use async_nats::jetstream::kv::Operation as Nats;
        match operation {
            Nats::Put => Operation::Put,
            Nats::Delete => Operation::Delete,
            Nats::Purge => Operation::Purge,
        }
    }
}

/// One revision of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key, without the bucket's subject prefix.
    pub key: String,
    /// The value; empty for tombstones.
    pub value: Bytes,
    /// The stream sequence that wrote this revision.
    pub revision: u64,
    /// What the revision did.
    pub operation: Operation,
}

impl Entry {
    /// Whether this revision leaves the key absent.
    pub fn is_tombstone(&self) -> bool {
        self.operation.is_tombstone()
    }
}
