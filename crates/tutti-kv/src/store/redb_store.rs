//! `RedbStore`: the production [`LocalStore`], one redb file per replica.
//!
//! Why redb rather than a hand-written append log: one redb write transaction holds the data
//! changes and the cursor, so cursor-after-apply is a single ACID commit; a torn write after a
//! crash is rolled back by redb's recovery instead of by our own tail-scanning code; and
//! reopening is a B-tree open, not a replay of every record (the reason slipstream's log needed
//! 15 s for 3 M keys). The cost is a dependency and a file format we do not own; records carry
//! their own checksum (see `codec`) so a flipped bit in a value is reported, never applied.
//! redb itself verifies page checksums only when it repairs after a crash, so damage to the tree
//! structure can surface as an error, a panic, an older commit (redb keeps two commit slots), or
//! missing tables, which `open` reports as corrupted. `tests/store_properties.rs` pins that a
//! flipped bit never yields a state the store did not hold; `Replica::start` sets a corrupted
//! file aside and rebuilds the copy from the broker.
//!
//! Durability policy: every commit uses `Durability::Immediate`, redb's default one-fsync
//! "1PC+C" protocol, so a batch is on disk before the replica applies it in memory or hands it
//! to the caller. After a crash redb repairs the file on open (a full checksum walk, which is
//! proportional to the file size).

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::codec::{decode_entry, decode_meta, decode_u64, encode_entry, encode_meta};
use super::{Commit, LoadedState, LocalStore, StoreChange, StoreError, StoreMeta};

const ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("entries");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const META_CURSOR: &str = "cursor";
const META_FINGERPRINT: &str = "fingerprint";
const META_LAST_SYNC: &str = "last_sync_unix_ms";

/// A replica's durable copy in one redb file.
#[derive(Debug)]
pub struct RedbStore {
    database: Database,
    path: PathBuf,
}

impl RedbStore {
    /// Opens the file at `path`, creating it (but not its directory) if missing.
    ///
    /// An existing file must already hold both tables: a file whose table directory has lost
    /// them is reported as [`StoreError::Corrupted`] rather than silently re-created empty.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        let existed = std::fs::metadata(path).is_ok_and(|meta| meta.len() > 0);
        let database = Database::create(path).map_err(storage)?;
        let store = RedbStore {
            database,
            path: path.to_path_buf(),
        };
        match existed {
            true => store.check_tables()?,
            false => store.create_tables()?,
        }
        Ok(store)
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored entries whose keys start with `prefix`, read from disk (not from memory).
    pub fn scan_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, super::StoredEntry)>, StoreError> {
        let read = self.database.begin_read().map_err(storage)?;
        let table = read.open_table(ENTRIES).map_err(storage)?;
        let mut found = Vec::new();
        for item in table.range(prefix..).map_err(storage)? {
            let (key, record) = item.map_err(storage)?;
            let key = key.value();
            if !key.starts_with(prefix) {
                break;
            }
            found.push((key.to_string(), decode_entry(key, record.value())?));
        }
        Ok(found)
    }

    fn create_tables(&self) -> Result<(), StoreError> {
        let write = self.database.begin_write().map_err(storage)?;
        write.open_table(ENTRIES).map_err(storage)?;
        write.open_table(META).map_err(storage)?;
        write.commit().map_err(storage)
    }

    fn check_tables(&self) -> Result<(), StoreError> {
        let read = self.database.begin_read().map_err(storage)?;
        let missing = |result: Result<_, redb::TableError>| match result {
            Ok(_) => Ok(false),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(true),
            Err(err) => Err(storage(err)),
        };
        if missing(read.open_table(ENTRIES))? || missing(read.open_table(META))? {
            // Also the state of a file whose creator crashed before its first commit; the
            // caller treats both alike (set the file aside, start empty, resync).
            return Err(StoreError::Corrupted(format!(
                "{} lacks its tables",
                self.path.display()
            )));
        }
        Ok(())
    }

    fn load_meta(&self, read: &redb::ReadTransaction) -> Result<StoreMeta, StoreError> {
        let table = read.open_table(META).map_err(storage)?;
        let payload = |name: &str| -> Result<Option<Vec<u8>>, StoreError> {
            match table.get(name).map_err(storage)? {
                Some(record) => Ok(Some(decode_meta(name, record.value())?.to_vec())),
                None => Ok(None),
            }
        };
        let cursor = payload(META_CURSOR)?
            .map(|bytes| decode_u64(META_CURSOR, &bytes))
            .transpose()?;
        let fingerprint = payload(META_FINGERPRINT)?
            .map(|bytes| {
                String::from_utf8(bytes)
                    .map_err(|_| StoreError::Corrupted("fingerprint is not UTF-8".into()))
            })
            .transpose()?;
        let last_sync = payload(META_LAST_SYNC)?
            .map(|bytes| {
                decode_u64(META_LAST_SYNC, &bytes).map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
            })
            .transpose()?;
        Ok(StoreMeta {
            cursor,
            fingerprint,
            last_sync,
        })
    }
}

impl LocalStore for RedbStore {
    fn load(&mut self) -> Result<LoadedState, StoreError> {
        let read = self.database.begin_read().map_err(storage)?;
        let meta = self.load_meta(&read)?;
        let table = read.open_table(ENTRIES).map_err(storage)?;
        let n_entries = table.len().map_err(storage)?;
        let mut sorted = Vec::with_capacity(usize::try_from(n_entries).unwrap_or(0));
        for item in table.iter().map_err(storage)? {
            let (key, record) = item.map_err(storage)?;
            let key = key.value();
            sorted.push((key.to_string(), decode_entry(key, record.value())?));
        }
        // redb iterates in key order, and collecting a sorted vector into a BTreeMap is a bulk
        // build: much faster at millions of keys than inserting one by one.
        Ok(LoadedState {
            entries: sorted.into_iter().collect(),
            meta,
        })
    }

    fn commit(&mut self, commit: &Commit) -> Result<(), StoreError> {
        let write = self.database.begin_write().map_err(storage)?;
        {
            let mut entries = write.open_table(ENTRIES).map_err(storage)?;
            for change in &commit.changes {
                match change {
                    StoreChange::Upsert { key, entry } => {
                        entries
                            .insert(key.as_str(), encode_entry(key, entry).as_slice())
                            .map_err(storage)?;
                    }
                    StoreChange::Remove { key } => {
                        entries.remove(key.as_str()).map_err(storage)?;
                    }
                }
            }
            let mut meta = write.open_table(META).map_err(storage)?;
            write_meta(&mut meta, &commit.meta)?;
        }
        // Durability::Immediate is redb's default: commit returns after the fsync.
        write.commit().map_err(storage)
    }
}

fn write_meta(table: &mut redb::Table<&str, &[u8]>, meta: &StoreMeta) -> Result<(), StoreError> {
    let mut put = |name: &str, payload: &[u8]| -> Result<(), StoreError> {
        table
            .insert(name, encode_meta(name, payload).as_slice())
            .map(drop)
            .map_err(storage)
    };
    if let Some(cursor) = meta.cursor {
        put(META_CURSOR, &cursor.to_le_bytes())?;
    }
    if let Some(fingerprint) = &meta.fingerprint {
        put(META_FINGERPRINT, fingerprint.as_bytes())?;
    }
    if let Some(last_sync) = meta.last_sync {
        let millis = last_sync
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        put(
            META_LAST_SYNC,
            &u64::try_from(millis).unwrap_or(u64::MAX).to_le_bytes(),
        )?;
    }
    Ok(())
}

/// redb's own corruption reports become [`StoreError::Corrupted`], so callers can tell a
/// damaged file (discard and resync) from a failing disk (retry).
fn storage(err: impl Into<redb::Error>) -> StoreError {
    match err.into() {
        redb::Error::Corrupted(message) => StoreError::Corrupted(message),
        // How redb reports a file that is not a redb database at all.
        redb::Error::Io(err) if err.kind() == std::io::ErrorKind::InvalidData => {
            StoreError::Corrupted(err.to_string())
        }
        other => StoreError::Storage(Box::new(other)),
    }
}
