//! What the JSON API and the dashboard both read, so neither reaches into the other: ids
//! from paths, the liveness cut-off, an agent's effective configuration ([`config`]) and a
//! result's output resolved from the object store ([`output`]).

pub(crate) mod config;
pub(crate) mod output;

use std::str::FromStr;

use jiff::{SignedDuration, Timestamp};

use crate::app::App;
use crate::error::{Error, Result};

/// Parses an id from a path segment; a malformed id is 400, not 404.
pub fn parse_id<T>(text: &str) -> Result<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    text.parse::<T>()
        .map_err(|err| Error::bad_request(err.to_string()))
}

/// The cut-off before which a heartbeat counts as offline.
pub fn online_since(app: &App) -> Timestamp {
    let threshold =
        SignedDuration::try_from(app.config.offline_after()).unwrap_or(SignedDuration::ZERO);
    Timestamp::now()
        .checked_sub(threshold)
        .unwrap_or(Timestamp::UNIX_EPOCH)
}
