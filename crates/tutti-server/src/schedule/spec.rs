//! Schedule manifests: `kind: Schedule` YAML documents as operators write them, parsed
//! strictly, and the validated [`ScheduleSpec`] the scheduler acts on.
//!
//! The rules follow `manifest.rs`: unknown keys and wrong types are errors naming the line
//! and column, rules on single values are checked while deserialising (newtypes with
//! `try_from`), and rules across fields are checked afterwards at the position of the
//! field that breaks them (kept with [`Spanned`]). A YAML stream may hold several
//! documents, each kept with its own text.
//!
//! A schedule either follows a [`Cron`] expression or keeps a [`DesiredState`]. Both
//! read wall-clock values (`maintenance_window`, `skip_dates`, the cron fields) in the
//! schedule's [`ZoneName`], UTC unless given.

use std::collections::BTreeSet;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Deserializer};
use serde_saphyr::{Location, Spanned};
use tutti_proto::JobId;

use super::cron::{Cron, SEARCH_HORIZON};
use super::values::*;
use crate::engine::rollout::RolloutSpec;
use crate::engine::targets::TargetSpec;
use crate::manifest::{ManifestError, is_blank_document, parse_document, split_documents};

/// A validated schedule, without its name.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleSpec {
    /// The job to run.
    pub job: JobId,
    /// The job version to run; `None` runs the job's current version at fire time.
    pub job_version: Option<JobVersion>,
    /// Which agents each fired run targets, as in a run request.
    pub targets: TargetSpec,
    /// A disabled schedule is kept but never fires.
    pub enabled: bool,
    /// What makes the schedule fire.
    pub trigger: Trigger,
    /// The zone that cron fields, `maintenance_window` and `skip_dates` are read in.
    pub timezone: ZoneName,
    /// Each fire is delayed by a random 0 to this many seconds, to spread load.
    pub jitter_secs: JitterSecs,
    /// How long a fired run may wait for offline agents; `None` uses the run default.
    pub deadline_secs: Option<DeadlineSecs>,
    /// No fire before this instant.
    pub active_from: Option<Timestamp>,
    /// No fire at or after this instant.
    pub active_until: Option<Timestamp>,
    /// Fires only inside this daily window; fire times outside it are skipped.
    pub maintenance_window: Option<MaintenanceWindow>,
    /// Local dates on which the schedule does not fire.
    pub skip_dates: BTreeSet<Date>,
    /// At most this many targets run the job at once; `None` means no limit.
    pub max_concurrent_targets: Option<MaxConcurrentTargets>,
    /// Release each fired run in waves (cron schedules only).
    pub rollout: Option<RolloutSpec>,
}

/// What makes a schedule fire: exactly one of `cron` and `desired_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// At the fire times of a cron expression.
    Cron(Cron),
    /// Whenever a target is out of the desired state.
    DesiredState(DesiredState),
}

/// A state the scheduler keeps each target in, written as a map with one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "DesiredStateFields")]
pub enum DesiredState {
    /// `{once_per_version: true}`: every target runs each version of the job once.
    OncePerVersion,
    /// `{every_hours: N}`: every target has run the job within the last N hours.
    EveryHours(EveryHours),
}

/// One parsed document.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSchedule {
    /// The schedule's name.
    pub name: ScheduleName,
    /// The validated schedule.
    pub spec: ScheduleSpec,
    /// The document as written, comments included.
    pub source: String,
}

impl ScheduleSpec {
    /// The time zone of [`ScheduleSpec::timezone`].
    pub fn time_zone(&self) -> &TimeZone {
        self.timezone.time_zone()
    }

    /// The next `n` fire times after `after` of a cron schedule, with the active period,
    /// maintenance window and skip dates applied and without jitter. Empty for a
    /// desired-state schedule, and shorter than `n` when the active period ends or
    /// nothing fires within five years.
    pub fn next_fires(&self, after: Timestamp, n: usize) -> Vec<Timestamp> {
        let Trigger::Cron(cron) = &self.trigger else {
            return Vec::new();
        };
        let mut cursor = self.search_start(after);
        let horizon = cursor.checked_add(SEARCH_HORIZON).unwrap_or(Timestamp::MAX);
        let mut fires = Vec::new();
        while fires.len() < n {
            let Some(fire) = cron.next_after(cursor, self.time_zone()) else {
                break;
            };
            if fire > horizon || self.active_until.is_some_and(|until| fire >= until) {
                break;
            }
            if self.may_fire_at(fire) {
                fires.push(fire);
            }
            cursor = fire;
        }
        fires
    }

    /// The schedule as JSON, every field but `enabled` (which the store keeps beside it,
    /// since it can also be switched without a manifest), for API answers and for noticing
    /// a changed definition when a manifest is applied again.
    pub fn to_json(&self) -> serde_json::Value {
        let trigger = match &self.trigger {
            Trigger::Cron(cron) => serde_json::json!({ "cron": cron.as_str() }),
            Trigger::DesiredState(DesiredState::OncePerVersion) => {
                serde_json::json!({ "desired_state": { "once_per_version": true } })
            }
            Trigger::DesiredState(DesiredState::EveryHours(hours)) => {
                serde_json::json!({ "desired_state": { "every_hours": hours.get() } })
            }
        };
        let window = self.maintenance_window.map(|window| {
            format!(
                "{}-{}",
                window.start.strftime("%H:%M"),
                window.end.strftime("%H:%M")
            )
        });
        let skip_dates: Vec<String> = self.skip_dates.iter().map(ToString::to_string).collect();
        serde_json::json!({
            "job": self.job,
            "job_version": self.job_version.map(JobVersion::get),
            "targets": self.targets,
            "trigger": trigger,
            "timezone": self.timezone.as_str(),
            "jitter_secs": self.jitter_secs.get(),
            "deadline_secs": self.deadline_secs.map(DeadlineSecs::get),
            "active_from": self.active_from,
            "active_until": self.active_until,
            "maintenance_window": window,
            "skip_dates": skip_dates,
            "max_concurrent_targets": self.max_concurrent_targets.map(MaxConcurrentTargets::get),
            "rollout": self.rollout,
        })
    }

    /// Whether a run may start at `at`: inside the active period and the maintenance
    /// window, and not on a skip date. Says nothing about `enabled` or the trigger.
    pub fn may_fire_at(&self, at: Timestamp) -> bool {
        let local = self.time_zone().to_datetime(at);
        let active = self.active_from.is_none_or(|from| at >= from)
            && self.active_until.is_none_or(|until| at < until);
        let in_window = self
            .maintenance_window
            .is_none_or(|window| window.contains(local.time()));
        active && in_window && !self.skip_dates.contains(&local.date())
    }

    /// Where the cron search starts: just before `active_from` when that is later, so a
    /// fire exactly at `active_from` counts.
    fn search_start(&self, after: Timestamp) -> Timestamp {
        match self.active_from {
            Some(from) if from > after => from
                .checked_sub(SignedDuration::from_nanos(1))
                .unwrap_or(from),
            _ => after,
        }
    }
}

/// Parses a YAML stream of `kind: Schedule` documents.
pub fn parse_yaml(text: &str) -> Result<Vec<ParsedSchedule>, ManifestError> {
    let mut schedules = Vec::new();
    for document in split_documents(text) {
        if is_blank_document(document.text) {
            continue;
        }
        let manifest: ScheduleManifest = parse_document(&document)?;
        schedules.push(ParsedSchedule {
            name: manifest.name.clone(),
            spec: manifest.spec(document.line_offset)?,
            source: document.text.to_string(),
        });
    }
    if schedules.is_empty() {
        return Err(ManifestError {
            message: "the manifest holds no document".into(),
        });
    }
    check_unique_names(&schedules)?;
    Ok(schedules)
}

/// The only kind this parser reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
enum ScheduleKind {
    Schedule,
}

/// One `kind: Schedule` document as written; [`ScheduleManifest::spec`] checks the rules
/// across fields.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleManifest {
    /// Read only to reject other kinds.
    #[serde(rename = "kind")]
    _kind: ScheduleKind,
    name: ScheduleName,
    job: JobId,
    #[serde(default)]
    job_version: Option<JobVersion>,
    targets: Spanned<TargetSpec>,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
    #[serde(default)]
    cron: Option<Spanned<Cron>>,
    #[serde(default)]
    timezone: Option<ZoneName>,
    #[serde(default)]
    desired_state: Option<Spanned<DesiredState>>,
    #[serde(default)]
    jitter_secs: JitterSecs,
    #[serde(default)]
    deadline_secs: Option<DeadlineSecs>,
    #[serde(default, deserialize_with = "active_from")]
    active_from: Option<Timestamp>,
    #[serde(default, deserialize_with = "active_until")]
    active_until: Option<Spanned<Timestamp>>,
    #[serde(default)]
    maintenance_window: Option<MaintenanceWindow>,
    #[serde(default)]
    skip_dates: Vec<SkipDate>,
    #[serde(default)]
    max_concurrent_targets: Option<MaxConcurrentTargets>,
    #[serde(default)]
    rollout: Option<Spanned<RolloutSpec>>,
}

/// A rule across fields that does not hold: where to look (`None` for the document's
/// start) and why.
type BrokenRule = (Option<Location>, String);

impl ScheduleManifest {
    /// The schedule, once the rules across fields hold. `line_offset` shifts positions to
    /// the whole stream's lines.
    fn spec(&self, line_offset: usize) -> Result<ScheduleSpec, ManifestError> {
        let checked = self.trigger().and_then(|trigger| {
            self.check_targets()?;
            self.check_active_period()?;
            self.check_rollout(&trigger)?;
            Ok(trigger)
        });
        match checked {
            Ok(trigger) => Ok(self.to_spec(trigger)),
            Err((location, message)) => Err(located(location, line_offset, &message)),
        }
    }

    /// Exactly one of `cron` and `desired_state`.
    fn trigger(&self) -> Result<Trigger, BrokenRule> {
        match (&self.cron, &self.desired_state) {
            (Some(cron), None) => Ok(Trigger::Cron(cron.value.clone())),
            (None, Some(state)) => Ok(Trigger::DesiredState(state.value)),
            (Some(_), Some(state)) => Err((
                Some(state.referenced),
                "give either cron or desired_state, not both".into(),
            )),
            (None, None) => Err((
                None,
                format!("schedule {} needs cron or desired_state", self.name),
            )),
        }
    }

    /// The rules of a run request's targets.
    fn check_targets(&self) -> Result<(), BrokenRule> {
        let targets = &self.targets;
        targets
            .value
            .check()
            .map_err(|err| (Some(targets.referenced), err.to_string()))
    }

    /// A rollout's own rules, and only on cron schedules (a desired-state schedule already
    /// releases work agent by agent).
    fn check_rollout(&self, trigger: &Trigger) -> Result<(), BrokenRule> {
        let Some(rollout) = &self.rollout else {
            return Ok(());
        };
        if let Trigger::DesiredState(_) = trigger {
            return Err((
                Some(rollout.referenced),
                "rollout applies to cron schedules; a desired-state schedule uses max_concurrent_targets".into(),
            ));
        }
        rollout
            .value
            .check()
            .map_err(|err| (Some(rollout.referenced), format!("rollout: {err}")))
    }

    fn check_active_period(&self) -> Result<(), BrokenRule> {
        match (self.active_from, &self.active_until) {
            (Some(from), Some(until)) if until.value <= from => Err((
                Some(until.referenced),
                format!(
                    "active_until {} must be after active_from {from}",
                    until.value
                ),
            )),
            _ => Ok(()),
        }
    }

    fn to_spec(&self, trigger: Trigger) -> ScheduleSpec {
        ScheduleSpec {
            job: self.job.clone(),
            job_version: self.job_version,
            targets: self.targets.value.clone(),
            enabled: self.enabled,
            trigger,
            timezone: self.timezone.clone().unwrap_or_else(ZoneName::utc),
            jitter_secs: self.jitter_secs,
            deadline_secs: self.deadline_secs,
            active_from: self.active_from,
            active_until: self.active_until.as_ref().map(|until| until.value),
            maintenance_window: self.maintenance_window,
            skip_dates: self.skip_dates.iter().map(|date| date.0).collect(),
            max_concurrent_targets: self.max_concurrent_targets,
            rollout: self.rollout.as_ref().map(|rollout| rollout.value.clone()),
        }
    }
}

fn enabled_by_default() -> bool {
    true
}

/// `desired_state` as written. A struct rather than an externally tagged enum, whose
/// errors for a second key or a bare string are cryptic.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DesiredStateFields {
    #[serde(default)]
    once_per_version: Option<bool>,
    #[serde(default)]
    every_hours: Option<EveryHours>,
}

impl TryFrom<DesiredStateFields> for DesiredState {
    type Error = String;
    fn try_from(fields: DesiredStateFields) -> Result<DesiredState, String> {
        match (fields.once_per_version, fields.every_hours) {
            (Some(true), None) => Ok(DesiredState::OncePerVersion),
            (None, Some(hours)) => Ok(DesiredState::EveryHours(hours)),
            (Some(false), None) => Err(
                "desired_state: once_per_version must be true (remove the schedule or set enabled: false to stop it)".into(),
            ),
            _ => Err("desired_state: give exactly one of once_per_version and every_hours".into()),
        }
    }
}

fn active_from<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Timestamp>, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_timestamp("active_from", &text).map(Some)
}

fn active_until<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Spanned<Timestamp>>, D::Error> {
    let text = Spanned::<String>::deserialize(deserializer)?;
    let value = parse_timestamp("active_until", &text.value)?;
    Ok(Some(Spanned::new(value, text.referenced, text.defined)))
}

/// An RFC 3339 timestamp; the offset is required, as jiff requires it for a [`Timestamp`].
fn parse_timestamp<E: serde::de::Error>(field: &str, text: &str) -> Result<Timestamp, E> {
    text.parse::<Timestamp>().map_err(|err| {
        E::custom(format!(
            "{field}: {text:?} is not an RFC 3339 timestamp like \"2026-01-01T00:00:00Z\" ({err})"
        ))
    })
}

/// A message at a position inside a document, shifted to the whole stream's lines.
fn located(location: Option<Location>, line_offset: usize, message: &str) -> ManifestError {
    let (line, column) = location.map_or((1, 1), |at| (at.line(), at.column()));
    ManifestError {
        message: format!(
            "line {}, column {column}: {message}",
            line + line_offset as u64
        ),
    }
}

fn check_unique_names(schedules: &[ParsedSchedule]) -> Result<(), ManifestError> {
    let mut seen = BTreeSet::new();
    for schedule in schedules {
        if !seen.insert(&schedule.name) {
            return Err(ManifestError {
                message: format!(
                    "schedule {} is defined twice in one manifest",
                    schedule.name
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields most cases share, on lines 1 to 4; a case's own fields start on line 5.
    const BASE: &str = "kind: Schedule\nname: nightly\njob: backup\ntargets: {all: true}\n";

    /// Fields after [`BASE`] that must fail, and a fragment of the error.
    #[rustfmt::skip]
    const BAD_FIELDS: &[(&str, &str)] = &[
        ("cron: '61 * * * *'", "line 5, column 7: invalid cron \"61 * * * *\": minute: 61 is out of range 0-59"),
        ("cron: '0 3 * *'", "line 5, column 7: invalid cron \"0 3 * *\": expected 5 fields"),
        ("cron: '0 3 * foo *'", "month: \"foo\" is not a number or a name (jan-dec)"),
        ("crn: '0 3 * * *'", "line 5, column 1: unknown field `crn`"),
        ("timezone: UTC", "line 1, column 1: schedule nightly needs cron or desired_state"),
        ("cron: '0 3 * * *'\ndesired_state: {every_hours: 2}", "line 6, column 16: give either cron or desired_state, not both"),
        ("cron: '0 3 * * *'\ntimezone: Europe/Berln", "line 6, column 11: timezone \"Europe/Berln\" is not an IANA time zone name"),
        ("cron: '0 3 * * *'\ntimezone: +02:00", "line 6, column 11: timezone \"+02:00\""),
        ("desired_state: {once_per_version: false}", "line 5, column 16: desired_state: once_per_version must be true"),
        ("desired_state: {every_hours: 0}", "line 5, column 30: every_hours must be between 1 and 8760, got 0"),
        ("desired_state: {every_hours: 8761}", "every_hours must be between 1 and 8760, got 8761"),
        ("desired_state: {every_day: 1}", "line 5, column 17: unknown field `every_day`"),
        ("desired_state: {every_hours: 2, once_per_version: true}", "desired_state: give exactly one of once_per_version and every_hours"),
        ("desired_state: {}", "desired_state: give exactly one of once_per_version and every_hours"),
        ("cron: '0 3 * * *'\njitter_secs: 3601", "line 6, column 14: jitter_secs must be between 0 and 3600, got 3601"),
        ("cron: '0 3 * * *'\ndeadline_secs: 59", "line 6, column 16: deadline_secs must be between 60 and 604800, got 59"),
        ("cron: '0 3 * * *'\ndeadline_secs: 604801", "deadline_secs must be between 60 and 604800, got 604801"),
        ("cron: '0 3 * * *'\njob_version: 0", "line 6, column 14: job_version must be between 1"),
        ("cron: '0 3 * * *'\njob_version: -1", "line 6, column 14:"),
        ("cron: '0 3 * * *'\nmax_concurrent_targets: 0", "max_concurrent_targets must be between 1 and 100000, got 0"),
        ("cron: '0 3 * * *'\nmax_concurrent_targets: 100001", "max_concurrent_targets must be between 1 and 100000, got 100001"),
        ("cron: '0 3 * * *'\nactive_from: 2026-01-01", "line 6, column 14: active_from: \"2026-01-01\" is not an RFC 3339 timestamp"),
        ("cron: '0 3 * * *'\nactive_until: 2026-01-01T00:00:00", "line 6, column 15: active_until: \"2026-01-01T00:00:00\" is not an RFC 3339"),
        ("cron: '0 3 * * *'\nactive_from: 2026-01-02T00:00:00Z\nactive_until: 2026-01-01T00:00:00Z", "line 7, column 15: active_until 2026-01-01T00:00:00Z must be after active_from 2026-01-02T00:00:00Z"),
        ("cron: '0 3 * * *'\nactive_from: 2026-01-01T00:00:00Z\nactive_until: 2026-01-01T00:00:00Z", "must be after active_from"),
        ("cron: '0 3 * * *'\nmaintenance_window: 22:00-4:00", "line 6, column 21: maintenance_window \"22:00-4:00\" must look like \"22:00-04:00\""),
        ("cron: '0 3 * * *'\nmaintenance_window: 24:00-04:00", "maintenance_window \"24:00-04:00\" must look like"),
        ("cron: '0 3 * * *'\nmaintenance_window: 22:00", "maintenance_window \"22:00\" must look like"),
        ("cron: '0 3 * * *'\nmaintenance_window: 04:00-04:00", "maintenance_window \"04:00-04:00\" is empty"),
        ("cron: '0 3 * * *'\nskip_dates: [2026-02-30]", "line 6, column 14: skip_dates: \"2026-02-30\" is not a date"),
        ("cron: '0 3 * * *'\nskip_dates: [2026-12-25T00:00]", "skip_dates: \"2026-12-25T00:00\" is not a date"),
        ("cron: '0 3 * * *'\nskip_dates: 2026-12-25", "line 6, column 13:"),
        ("cron: '0 3 * * *'\nenabled: 3", "line 6, column 10:"),
    ];

    /// Whole streams that must fail, for the shared fields and for several documents.
    #[rustfmt::skip]
    const BAD_STREAMS: &[(&str, &str)] = &[
        ("kind: Job\nname: a\n", "line 1, column 7: unknown variant `Job`, expected one of Schedule"),
        ("kind: Schedule\nname: Nightly_\njob: backup\ntargets: {all: true}\ncron: '0 3 * * *'\n", "line 2, column 7: invalid schedule name \"Nightly_\": character '_'"),
        ("kind: Schedule\nname: nightly\njob: back up\ntargets: {all: true}\ncron: '0 3 * * *'\n", "line 3, column 6: invalid job id \"back up\""),
        ("kind: Schedule\nname: nightly\njob: backup\ncron: '0 3 * * *'\n", "missing field `targets`"),
        ("kind: Schedule\nname: nightly\njob: backup\ntargets: {all: true, groups: [web]}\ncron: '0 3 * * *'\n", "line 4, column 10: targets: `all` cannot be combined with groups or agents"),
        ("kind: Schedule\nname: nightly\njob: backup\ntargets: {}\ncron: '0 3 * * *'\n", "line 4, column 10: targets: name `all: true`, some groups or some agents"),
        ("kind: Schedule\nname: nightly\njob: backup\ntargets: {grups: [web]}\ncron: '0 3 * * *'\n", "line 4, column 11: unknown field `grups`"),
        ("kind: Schedule\nname: nightly\njob: backup\ntargets: {agents: [Web_1]}\ncron: '0 3 * * *'\n", "invalid agent id \"Web_1\""),
        ("# nothing here\n---\n", "the manifest holds no document"),
    ];

    fn with_base(fields: &str) -> String {
        format!("{BASE}{fields}\n")
    }

    fn parse_fields(fields: &str) -> ScheduleSpec {
        let text = with_base(fields);
        let mut schedules = parse_yaml(&text).unwrap_or_else(|err| panic!("{text}\n{err}"));
        assert_eq!(schedules.len(), 1);
        schedules.remove(0).spec
    }

    fn check_error(text: &str, expected: &str) {
        let err = parse_yaml(text).expect_err(text);
        assert!(
            err.message.contains(expected),
            "input:\n{text}\nexpected: {expected}\ngot:      {}",
            err.message
        );
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn bad_fields_are_named_with_their_position() {
        for (fields, expected) in BAD_FIELDS {
            check_error(&with_base(fields), expected);
        }
    }

    #[test]
    fn bad_streams_are_named_with_their_position() {
        for (text, expected) in BAD_STREAMS {
            check_error(text, expected);
        }
    }

    #[test]
    fn errors_in_later_documents_carry_stream_line_numbers() {
        let second = "kind: Schedule\nname: hourly\njob: ping\ntargets: {agents: [web-1]}\n";
        let text =
            format!("# first\n{BASE}cron: '0 3 * * *'\n---\n# second\n{second}cron: '@hourly'\n");
        check_error(&text, "line 13, column 7: invalid cron \"@hourly\"");
        let text = text.replace("@hourly", "0 * * * *");
        let schedules = parse_yaml(&text).unwrap();
        assert_eq!(schedules.len(), 2);
        assert!(schedules[0].source.starts_with("# first"));
        assert!(schedules[1].source.starts_with("# second"));
        assert_eq!(schedules[1].name.as_str(), "hourly");
        let twice = format!("{BASE}cron: '0 3 * * *'\n---\n{BASE}cron: '0 4 * * *'\n");
        check_error(&twice, "schedule nightly is defined twice in one manifest");
    }

    #[test]
    fn a_minimal_cron_schedule_gets_the_defaults() {
        let spec = parse_fields("cron: '0 3 * * *'");
        assert_eq!(spec.job.as_str(), "backup");
        assert!(spec.enabled);
        assert_eq!(spec.job_version, None);
        assert_eq!(spec.timezone.as_str(), "UTC");
        assert_eq!(spec.jitter_secs.get(), 0);
        assert!(matches!(&spec.trigger, Trigger::Cron(cron) if cron.as_str() == "0 3 * * *"));
    }

    #[test]
    fn a_full_cron_schedule_keeps_every_field() {
        let text = "\
# Nightly backups, outside business hours.
kind: Schedule
name: Nightly-Backup
job: backup
job_version: 3
targets: {groups: [db, web]}
enabled: false
cron: '30 2 * * mon-fri'
timezone: europe/berlin
jitter_secs: 600
deadline_secs: 3600
active_from: 2026-01-01T00:00:00+01:00
active_until: 2027-01-01T00:00:00Z
maintenance_window: 22:00-04:00
skip_dates: [2026-12-24, 2026-12-25]
max_concurrent_targets: 10
";
        let parsed = parse_yaml(text).unwrap().remove(0);
        assert_eq!(parsed.name.as_str(), "nightly-backup");
        assert!(parsed.source.starts_with("# Nightly backups"));
        let spec = parsed.spec;
        assert_eq!(spec.job_version.map(JobVersion::get), Some(3));
        assert_eq!(spec.targets.groups.len(), 2);
        assert!(!spec.enabled);
        assert_eq!(spec.timezone.as_str(), "Europe/Berlin");
        assert_eq!(spec.jitter_secs.get(), 600);
        assert_eq!(spec.deadline_secs.map(DeadlineSecs::get), Some(3600));
        assert_eq!(spec.active_from, Some(ts("2025-12-31T23:00:00Z")));
        assert_eq!(spec.active_until, Some(ts("2027-01-01T00:00:00Z")));
        assert_eq!(spec.skip_dates.len(), 2);
        let max_concurrent = spec.max_concurrent_targets.map(MaxConcurrentTargets::get);
        assert_eq!(max_concurrent, Some(10));
        let window = spec.maintenance_window.unwrap();
        assert_eq!(window, MaintenanceWindow::parse("22:00-04:00").unwrap());
    }

    #[test]
    fn desired_states_parse() {
        let once = parse_fields("desired_state: {once_per_version: true}");
        let expected = Trigger::DesiredState(DesiredState::OncePerVersion);
        assert_eq!(once.trigger, expected);
        let every = parse_fields("desired_state:\n  every_hours: 24\ntimezone: Asia/Tokyo");
        let Trigger::DesiredState(DesiredState::EveryHours(hours)) = every.trigger else {
            panic!("{:?}", every.trigger);
        };
        assert_eq!(hours.get(), 24);
        assert!(every.next_fires(ts("2026-01-01T00:00:00Z"), 3).is_empty());
    }

    #[test]
    fn maintenance_windows_may_wrap_midnight() {
        let window = MaintenanceWindow::parse("22:00-04:00").unwrap();
        for inside in ["22:00", "23:59", "00:00", "03:59"] {
            assert!(window.contains(inside.parse().unwrap()), "{inside}");
        }
        for outside in ["04:00", "12:00", "21:59"] {
            assert!(!window.contains(outside.parse().unwrap()), "{outside}");
        }
        let day = MaintenanceWindow::parse("09:00-17:30").unwrap();
        assert!(day.contains(jiff::civil::Time::constant(17, 29, 0, 0)));
        assert!(!day.contains(jiff::civil::Time::constant(17, 30, 0, 0)));
    }

    #[test]
    fn fires_outside_a_wrapping_maintenance_window_are_skipped() {
        let spec = parse_fields(
            "cron: '0 */3 * * *'\ntimezone: Europe/Berlin\nmaintenance_window: 22:00-04:00",
        );
        // Berlin is UTC+1 in January: local 00:00 and 03:00 are inside, 21:00 is not.
        let fires = spec.next_fires(ts("2026-01-10T12:00:00Z"), 4);
        let expected = [
            "2026-01-10T23:00:00Z", // 00:00 local on the 11th
            "2026-01-11T02:00:00Z", // 03:00 local
            "2026-01-11T23:00:00Z", // 00:00 local on the 12th
            "2026-01-12T02:00:00Z",
        ];
        assert_eq!(fires, expected.map(ts));
    }

    #[test]
    fn skip_dates_are_local_dates() {
        let spec = parse_fields(
            "cron: '30 0 * * *'\ntimezone: Europe/Berlin\nskip_dates: [2026-12-25, 2026-12-26]",
        );
        // 00:30 on the 25th in Berlin is still the 24th in UTC, and is skipped all the same.
        let fires = spec.next_fires(ts("2026-12-23T00:00:00Z"), 3);
        let expected = [
            "2026-12-23T23:30:00Z",
            "2026-12-26T23:30:00Z",
            "2026-12-27T23:30:00Z",
        ];
        assert_eq!(fires, expected.map(ts));
    }

    #[test]
    fn active_until_ends_the_preview_early() {
        let spec = parse_fields("cron: '0 12 * * *'\nactive_until: 2026-05-03T12:00:00Z");
        let fires = spec.next_fires(ts("2026-05-01T00:00:00Z"), 10);
        assert_eq!(
            fires,
            ["2026-05-01T12:00:00Z", "2026-05-02T12:00:00Z"].map(ts)
        );
        assert!(!spec.may_fire_at(ts("2026-05-03T12:00:00Z")));
    }

    #[test]
    fn active_from_starts_the_preview_and_counts_its_own_instant() {
        let spec = parse_fields("cron: '0 12 * * *'\nactive_from: 2026-05-03T12:00:00Z");
        let fires = spec.next_fires(ts("2026-05-01T00:00:00Z"), 2);
        assert_eq!(
            fires,
            ["2026-05-03T12:00:00Z", "2026-05-04T12:00:00Z"].map(ts)
        );
    }

    #[test]
    fn filters_that_exclude_every_fire_end_the_preview() {
        let spec = parse_fields("cron: '0 12 * * *'\nmaintenance_window: 01:00-02:00");
        assert!(spec.next_fires(ts("2026-05-01T00:00:00Z"), 3).is_empty());
    }
}
