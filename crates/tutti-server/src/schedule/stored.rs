//! A stored schedule read back: its manifest text parsed again into a spec.

use tutti_store::Schedule;

use crate::error::{Error, Result};
use crate::schedule::spec::{ScheduleSpec, parse_yaml};

/// The validated spec of a stored schedule, from its manifest text.
pub fn parse_stored(schedule: &Schedule) -> Result<ScheduleSpec> {
    let parsed = parse_yaml(&schedule.source_yaml).map_err(|err| {
        Error::internal(
            "a stored schedule no longer parses",
            anyhow::anyhow!(err.message),
        )
    })?;
    parsed
        .into_iter()
        .next()
        .map(|parsed| parsed.spec)
        .ok_or_else(|| {
            Error::internal(
                "a stored schedule is empty",
                anyhow::anyhow!("schedule {}", schedule.name),
            )
        })
}
