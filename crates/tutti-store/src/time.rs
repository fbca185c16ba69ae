//! The one timestamp format of every table: BIGINT unix milliseconds UTC.
//!
//! An earlier system stored some timestamps as RFC 3339 text and others as SQLite's
//! `datetime()` text; comparing the two as strings silently broke every cut-off query
//! ("results older than X"). Integers compare correctly, index well, and mean the same in
//! SQLite and Postgres. Conversion happens only here, at the boundary with
//! [`jiff::Timestamp`]; sub-millisecond precision is dropped.

use jiff::Timestamp;

use crate::error::{StoreError, StoreResult};

/// Milliseconds since the Unix epoch, as stored.
pub(crate) fn to_ms(at: Timestamp) -> i64 {
    at.as_millisecond()
}

/// Optional timestamp to stored milliseconds.
pub(crate) fn opt_to_ms(at: Option<Timestamp>) -> Option<i64> {
    at.map(to_ms)
}

/// Stored milliseconds back to a timestamp; out-of-range values mean a corrupt row.
pub(crate) fn from_ms(ms: i64) -> StoreResult<Timestamp> {
    Timestamp::from_millisecond(ms).map_err(|err| {
        StoreError::other_with(format!("stored timestamp {ms} is out of range"), err)
    })
}

/// Optional stored milliseconds back to a timestamp.
pub(crate) fn opt_from_ms(ms: Option<i64>) -> StoreResult<Option<Timestamp>> {
    ms.map(from_ms).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_millisecond_precision() {
        let at: Timestamp = "2024-05-01T12:00:00.123456Z".parse().unwrap();
        let ms = to_ms(at);
        assert_eq!(ms, 1_714_564_800_123);
        assert_eq!(from_ms(ms).unwrap().to_string(), "2024-05-01T12:00:00.123Z");
    }

    #[test]
    fn out_of_range_is_an_error_not_a_panic() {
        assert!(from_ms(i64::MAX).is_err());
    }
}
