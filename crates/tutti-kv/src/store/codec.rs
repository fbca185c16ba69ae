//! The on-disk record format inside [`super::RedbStore`]'s tables.
//!
//! redb already makes commits atomic and checksums its pages during recovery, but a flipped
//! bit inside a value on a healthy file would still be handed back as data. Every record here
//! therefore carries its own CRC-32 (crc32fast) over the key and the record, so a
//! corrupted record is reported as [`StoreError::Corrupted`] at load and never applied.
//!
//! Entry record: `crc32 (4, LE) | revision (8, LE) | operation (1) | value`.
//! Meta record:  `crc32 (4, LE) | payload`.

use bytes::Bytes;

use super::{StoreError, StoredEntry};
use crate::entry::Operation;

const CRC_LEN: usize = 4;
const ENTRY_HEADER_LEN: usize = CRC_LEN + 8 + 1;

pub(super) fn encode_entry(key: &str, entry: &StoredEntry) -> Vec<u8> {
    let mut record = Vec::with_capacity(ENTRY_HEADER_LEN + entry.value.len());
    record.extend_from_slice(&[0; CRC_LEN]);
    record.extend_from_slice(&entry.revision.to_le_bytes());
    record.push(operation_byte(entry.operation));
    record.extend_from_slice(&entry.value);
    let crc = checksum(key.as_bytes(), &record[CRC_LEN..]);
    record[..CRC_LEN].copy_from_slice(&crc.to_le_bytes());
    record
}

pub(super) fn decode_entry(key: &str, record: &[u8]) -> Result<StoredEntry, StoreError> {
    let body = verified_body(key, record)?;
    if body.len() < ENTRY_HEADER_LEN - CRC_LEN {
        return Err(corrupted(key, "entry record too short"));
    }
    let (revision_bytes, rest) = body.split_at(8);
    let mut revision = [0u8; 8];
    revision.copy_from_slice(revision_bytes);
    let operation =
        operation_from_byte(rest[0]).ok_or_else(|| corrupted(key, "unknown operation"))?;
    Ok(StoredEntry {
        revision: u64::from_le_bytes(revision),
        operation,
        value: Bytes::copy_from_slice(&rest[1..]),
    })
}

pub(super) fn encode_meta(name: &str, payload: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(CRC_LEN + payload.len());
    record.extend_from_slice(&checksum(name.as_bytes(), payload).to_le_bytes());
    record.extend_from_slice(payload);
    record
}

pub(super) fn decode_meta<'r>(name: &str, record: &'r [u8]) -> Result<&'r [u8], StoreError> {
    verified_body(name, record)
}

pub(super) fn decode_u64(name: &str, payload: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = payload
        .try_into()
        .map_err(|_| corrupted(name, "expected 8 bytes"))?;
    Ok(u64::from_le_bytes(bytes))
}

fn verified_body<'r>(name: &str, record: &'r [u8]) -> Result<&'r [u8], StoreError> {
    if record.len() < CRC_LEN {
        return Err(corrupted(name, "record shorter than its checksum"));
    }
    let (crc_bytes, body) = record.split_at(CRC_LEN);
    let mut stored = [0u8; CRC_LEN];
    stored.copy_from_slice(crc_bytes);
    if u32::from_le_bytes(stored) != checksum(name.as_bytes(), body) {
        return Err(corrupted(name, "checksum mismatch"));
    }
    Ok(body)
}

fn checksum(name: &[u8], body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&(name.len() as u64).to_le_bytes());
    hasher.update(name);
    hasher.update(body);
    hasher.finalize()
}

fn operation_byte(operation: Operation) -> u8 {
    match operation {
        Operation::Put => 0,
        Operation::Delete => 1,
        Operation::Purge => 2,
    }
}

fn operation_from_byte(byte: u8) -> Option<Operation> {
    match byte {
        0 => Some(Operation::Put),
        1 => Some(Operation::Delete),
        2 => Some(Operation::Purge),
        _ => None,
    }
}

fn corrupted(name: &str, what: &str) -> StoreError {
    StoreError::Corrupted(format!("{what} in record {name:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_round_trips_and_detects_every_single_bit_flip() {
        let entry = StoredEntry {
            revision: 42,
            operation: Operation::Put,
            value: Bytes::from_static(b"v1"),
        };
        let record = encode_entry("a.b", &entry);
        assert_eq!(decode_entry("a.b", &record).unwrap(), entry);
        for bit in 0..record.len() * 8 {
            let mut flipped = record.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_entry("a.b", &flipped).is_err(),
                "bit {bit} flip went unnoticed"
            );
        }
        assert!(
            decode_entry("a.c", &record).is_err(),
            "a record moved to another key must not verify"
        );
    }
}
