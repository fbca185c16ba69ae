//! The checked values of a schedule manifest: names, time zones, the maintenance window,
//! skip dates and bounded numbers. Each is validated while it is deserialised, so an error
//! carries the value's line and column.

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use serde::{Deserialize, Deserializer, Serialize};
use tutti_proto::JobId;

use super::cron::Cron;

/// The longest jitter: an hour.
pub const MAX_JITTER_SECS: u64 = 60 * 60;
/// The shortest deadline for a fired run: a minute.
pub const MIN_DEADLINE_SECS: u64 = 60;
/// The longest deadline for a fired run: a week, the commands stream's retention.
pub const MAX_DEADLINE_SECS: u64 = 7 * 24 * 60 * 60;
/// The longest `every_hours`: a year.
pub const MAX_EVERY_HOURS: u64 = 365 * 24;
/// The largest `max_concurrent_targets`.
pub const MAX_CONCURRENT_TARGETS: u64 = 100_000;

/// A schedule's name: the rules of a [`JobId`] (`[a-z0-9-]`, 1 to 64 characters).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ScheduleName(String);

impl ScheduleName {
    /// Parses and normalises (trim, ASCII lowercase) a name.
    pub fn parse(input: &str) -> Result<ScheduleName, String> {
        // tutti-proto has no id kind for schedules yet, so the job id's message is reworded.
        match JobId::parse(input) {
            Ok(id) => Ok(ScheduleName(id.into())),
            Err(err) => Err(err.to_string().replacen("job id", "schedule name", 1)),
        }
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ScheduleName {
    type Error = String;
    fn try_from(input: String) -> Result<ScheduleName, String> {
        ScheduleName::parse(&input)
    }
}

impl From<ScheduleName> for String {
    fn from(name: ScheduleName) -> String {
        name.0
    }
}

impl std::fmt::Display for ScheduleName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Cron {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Cron, D::Error> {
        let text = String::deserialize(deserializer)?;
        Cron::parse(&text)
            .map_err(|err| serde::de::Error::custom(format!("invalid cron {text:?}: {err}")))
    }
}

/// An IANA time zone name, checked by loading the zone.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ZoneName {
    name: String,
    time_zone: TimeZone,
}

impl ZoneName {
    /// Loads the zone `name` from the time zone database.
    pub fn parse(name: &str) -> Result<ZoneName, String> {
        let time_zone = TimeZone::get(name).map_err(|err| {
            format!("timezone {name:?} is not an IANA time zone name such as Europe/Berlin ({err})")
        })?;
        let name = time_zone.iana_name().unwrap_or(name).to_string();
        Ok(ZoneName { name, time_zone })
    }

    /// UTC, the default.
    pub fn utc() -> ZoneName {
        ZoneName {
            name: "UTC".into(),
            time_zone: TimeZone::UTC,
        }
    }

    /// The name as the database spells it.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The loaded zone.
    pub fn time_zone(&self) -> &TimeZone {
        &self.time_zone
    }
}

impl PartialEq for ZoneName {
    fn eq(&self, other: &ZoneName) -> bool {
        self.name == other.name
    }
}

impl Eq for ZoneName {}

impl TryFrom<String> for ZoneName {
    type Error = String;
    fn try_from(name: String) -> Result<ZoneName, String> {
        ZoneName::parse(&name)
    }
}

impl From<ZoneName> for String {
    fn from(zone: ZoneName) -> String {
        zone.name
    }
}

/// A daily window of local wall-clock time, `HH:MM-HH:MM`, start included and end
/// excluded. A window whose end is not after its start wraps midnight (`22:00-04:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct MaintenanceWindow {
    /// The first minute inside the window.
    pub start: Time,
    /// The first minute after the window.
    pub end: Time,
}

impl MaintenanceWindow {
    /// Parses `HH:MM-HH:MM`.
    pub fn parse(text: &str) -> Result<MaintenanceWindow, String> {
        let shape = || format!("maintenance_window {text:?} must look like \"22:00-04:00\"");
        let (start, end) = text.split_once('-').ok_or_else(shape)?;
        let start = parse_clock(start).ok_or_else(shape)?;
        let end = parse_clock(end).ok_or_else(shape)?;
        if start == end {
            return Err(format!(
                "maintenance_window {text:?} is empty: start and end are equal"
            ));
        }
        Ok(MaintenanceWindow { start, end })
    }

    /// Whether the wall-clock `time` falls inside the window.
    pub fn contains(&self, time: Time) -> bool {
        if self.start < self.end {
            self.start <= time && time < self.end
        } else {
            time >= self.start || time < self.end
        }
    }
}

impl TryFrom<String> for MaintenanceWindow {
    type Error = String;
    fn try_from(text: String) -> Result<MaintenanceWindow, String> {
        MaintenanceWindow::parse(&text)
    }
}

/// `HH:MM` with two digits each, 00:00 to 23:59.
fn parse_clock(text: &str) -> Option<Time> {
    let (hour, minute) = text.split_once(':')?;
    let two_digits = |part: &str| part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(hour) || !two_digits(minute) {
        return None;
    }
    Time::new(hour.parse().ok()?, minute.parse().ok()?, 0, 0).ok()
}

/// A `YYYY-MM-DD` date in `skip_dates`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub(super) struct SkipDate(pub(super) Date);

impl TryFrom<String> for SkipDate {
    type Error = String;
    fn try_from(text: String) -> Result<SkipDate, String> {
        let shaped = text.len() == 10
            && text.bytes().enumerate().all(|(index, byte)| match index {
                4 | 7 => byte == b'-',
                _ => byte.is_ascii_digit(),
            });
        let date = shaped.then(|| text.parse::<Date>().ok()).flatten();
        date.map(SkipDate)
            .ok_or_else(|| format!("skip_dates: {text:?} is not a date like \"2026-12-25\""))
    }
}

/// Generates an integer newtype limited to `$min..=$max` during deserialisation, like
/// `manifest.rs` does for `u64` (its macro is private to that module).
macro_rules! bounded {
    ($(#[$doc:meta])* $name:ident($int:ty), $min:expr, $max:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "u64", into = "u64")]
        pub struct $name($int);

        impl TryFrom<u64> for $name {
            type Error = String;
            fn try_from(value: u64) -> Result<Self, String> {
                match <$int>::try_from(value) {
                    Ok(fitting) if ($min..=$max).contains(&value) => Ok($name(fitting)),
                    _ => Err(format!(
                        "{} must be between {} and {}, got {value}",
                        $what, $min, $max
                    )),
                }
            }
        }

        impl From<$name> for u64 {
            fn from(value: $name) -> u64 {
                value.0.into()
            }
        }

        impl $name {
            /// The number.
            pub fn get(self) -> $int {
                self.0
            }
        }
    };
}

bounded!(
    /// A job version, from 1.
    JobVersion(u32),
    1,
    u64::from(u32::MAX),
    "job_version"
);

bounded!(
    /// Seconds of random delay added to each fire; none by default.
    #[derive(Default)]
    JitterSecs(u64),
    0,
    MAX_JITTER_SECS,
    "jitter_secs"
);

bounded!(
    /// Seconds a fired run waits for offline agents.
    DeadlineSecs(u64),
    MIN_DEADLINE_SECS,
    MAX_DEADLINE_SECS,
    "deadline_secs"
);

bounded!(
    /// Hours between runs on each target under `every_hours`.
    EveryHours(u64),
    1,
    MAX_EVERY_HOURS,
    "every_hours"
);

bounded!(
    /// The most targets running a fired run at once.
    MaxConcurrentTargets(u64),
    1,
    MAX_CONCURRENT_TARGETS,
    "max_concurrent_targets"
);
