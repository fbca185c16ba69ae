//! Five-field cron expressions (`minute hour day-of-month month day-of-week`), parsed and
//! evaluated here rather than by a cron crate, because the DST rules below are ours to
//! choose and every crate picks differently. `spec.rs` holds one [`Cron`] per `cron:`
//! schedule and filters its fire times by the schedule's other rules.
//!
//! Syntax: `*`, single values, lists `1,2`, ranges `1-5`, steps `*/15` and `10-50/10`,
//! month names `jan`..`dec` and weekday names `sun`..`sat` (any case, also in ranges).
//! Day of week 0 and 7 are both Sunday. A step needs `*` or a range before it: `5/15` is
//! rejected rather than guessed at.
//!
//! Days follow Vixie cron: when both day-of-month and day-of-week are restricted, a day
//! matches if either matches (`0 0 13 * fri` fires on every 13th and every Friday). A
//! field that starts with `*` (including `*/2`) counts as unrestricted, and the other
//! field alone decides.
//!
//! Times are wall-clock times in the schedule's time zone, with two DST rules:
//! - a wall time that does not exist (02:30 in Europe/Berlin on 2026-03-29, when clocks
//!   jump from 02:00 to 03:00) fires once, at the first instant after the gap (03:00
//!   local); every skipped wall time of that day collapses into that one fire;
//! - a wall time that occurs twice (02:30 on 2026-10-25, when clocks go back from 03:00
//!   to 02:00) fires once, at its first occurrence. So does every wall time of the repeated
//!   hour: `*/15 * * * *` does not fire during the second 02:00-03:00.
//!
//! Both rules are pinned by `dst_tests` below. The search for the next fire is bounded
//! by [`SEARCH_DAYS`], so an expression that can never fire (`0 0 31 2 *`) ends in `None`.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};

/// How many days [`Cron::next_after`] searches before it gives up: about five years, long
/// enough for a leap day (`0 0 29 2 *`) and short enough to stay cheap, since days that
/// cannot match are skipped whole.
pub const SEARCH_DAYS: i32 = 5 * 366;

/// How far past its start a search may reach, as a duration.
pub const SEARCH_HORIZON: SignedDuration = SignedDuration::from_hours(24 * SEARCH_DAYS as i64);

const MINUTES_PER_DAY: u16 = 24 * 60;

/// A parsed cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    source: String,
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    days_of_week: u64,
    day_of_month_is_star: bool,
    day_of_week_is_star: bool,
}

/// Why a cron expression does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Not five whitespace-separated fields.
    #[error("expected 5 fields (minute hour day-of-month month day-of-week), got {n_fields}")]
    FieldCount {
        /// How many fields the expression had.
        n_fields: usize,
    },
    /// One field is wrong.
    #[error("{field}: {reason}")]
    Field {
        /// The field's name, as in `minute` or `day-of-week`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl Cron {
    /// Parses a five-field expression.
    pub fn parse(text: &str) -> Result<Cron, CronError> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [minute, hour, day_of_month, month, day_of_week] = fields[..] else {
            return Err(CronError::FieldCount {
                n_fields: fields.len(),
            });
        };
        Ok(Cron {
            source: fields.join(" "),
            minutes: parse_field(minute, &MINUTE)?,
            hours: parse_field(hour, &HOUR)?,
            days_of_month: parse_field(day_of_month, &DAY_OF_MONTH)?,
            months: parse_field(month, &MONTH)?,
            days_of_week: fold_sunday(parse_field(day_of_week, &DAY_OF_WEEK)?),
            day_of_month_is_star: day_of_month.starts_with('*'),
            day_of_week_is_star: day_of_week.starts_with('*'),
        })
    }

    /// The expression, its fields separated by single spaces.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The first fire time strictly after `after`, in the wall-clock time of `tz` under
    /// the DST rules of the module doc; `None` when nothing fires within [`SEARCH_DAYS`].
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let start = tz.to_datetime(after);
        let mut date = start.date();
        let mut from_minute = minute_of_day(start.time()) + 1;
        for _ in 0..=SEARCH_DAYS {
            if self.matches_date(date) {
                for wall_time in self.wall_times(date, from_minute) {
                    let fire = resolve_wall_time(wall_time, tz)?;
                    // Walking wall times in order yields non-decreasing instants, but a
                    // wall time of a repeated hour may still lie before `after`.
                    if fire > after {
                        return Some(fire);
                    }
                }
            }
            date = date.tomorrow().ok()?;
            from_minute = 0;
        }
        None
    }

    /// Whether the expression fires on `date` at some time of day.
    fn matches_date(&self, date: Date) -> bool {
        if !has(self.months, date.month()) {
            return false;
        }
        let day_of_month = has(self.days_of_month, date.day());
        let day_of_week = has(self.days_of_week, date.weekday().to_sunday_zero_offset());
        if self.day_of_month_is_star || self.day_of_week_is_star {
            day_of_month && day_of_week
        } else {
            day_of_month || day_of_week
        }
    }

    /// The matching wall times of `date`, from `from_minute` (minutes since midnight) on.
    fn wall_times(&self, date: Date, from_minute: u16) -> impl Iterator<Item = DateTime> + '_ {
        (from_minute..MINUTES_PER_DAY)
            .filter(|minute| {
                has(self.hours, (minute / 60) as i8) && has(self.minutes, (minute % 60) as i8)
            })
            .filter_map(move |minute| {
                let time = Time::new((minute / 60) as i8, (minute % 60) as i8, 0, 0).ok()?;
                Some(DateTime::from_parts(date, time))
            })
    }
}

/// The next `n` fire times of `cron` after `after`, without any schedule's filters.
/// [`crate::schedule::ScheduleSpec::next_fires`] is the same with the filters applied.
pub fn preview(cron: &Cron, tz: &TimeZone, after: Timestamp, n: usize) -> Vec<Timestamp> {
    std::iter::successors(cron.next_after(after, tz), |fire| {
        cron.next_after(*fire, tz)
    })
    .take(n)
    .collect()
}

impl std::fmt::Display for Cron {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for Cron {
    type Err = CronError;
    fn from_str(text: &str) -> Result<Cron, CronError> {
        Cron::parse(text)
    }
}

/// The instant a wall time fires at: the first occurrence in a fold, the end of the gap
/// in a gap. `None` only at the edges of the representable range.
fn resolve_wall_time(wall_time: DateTime, tz: &TimeZone) -> Option<Timestamp> {
    match tz.to_ambiguous_timestamp(wall_time).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(wall_time).ok(),
        AmbiguousOffset::Fold { before, .. } => before.to_timestamp(wall_time).ok(),
        AmbiguousOffset::Gap { before, after } => {
            // Read with the later offset, the wall time names an instant just before the
            // transition; the transition itself is the first instant after the gap.
            let inside_gap = after.to_timestamp(wall_time).ok()?;
            let transition = tz.following(inside_gap).next();
            match transition {
                Some(transition) => Some(transition.timestamp()),
                None => before.to_timestamp(wall_time).ok(),
            }
        }
    }
}

fn minute_of_day(time: Time) -> u16 {
    time.hour() as u16 * 60 + time.minute() as u16
}

fn has(bits: u64, value: i8) -> bool {
    (0..64).contains(&value) && bits & (1 << value) != 0
}

/// Day of week 7 is Sunday, like 0.
fn fold_sunday(bits: u64) -> u64 {
    if bits & (1 << 7) != 0 {
        (bits | 1) & !(1 << 7)
    } else {
        bits
    }
}

/// One field's name, bounds and value names (the first name is `min`).
struct FieldRule {
    name: &'static str,
    min: u8,
    max: u8,
    value_names: &'static [&'static str],
}

const MINUTE: FieldRule = FieldRule {
    name: "minute",
    min: 0,
    max: 59,
    value_names: &[],
};

const HOUR: FieldRule = FieldRule {
    name: "hour",
    min: 0,
    max: 23,
    value_names: &[],
};

const DAY_OF_MONTH: FieldRule = FieldRule {
    name: "day-of-month",
    min: 1,
    max: 31,
    value_names: &[],
};

const MONTH: FieldRule = FieldRule {
    name: "month",
    min: 1,
    max: 12,
    value_names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};

const DAY_OF_WEEK: FieldRule = FieldRule {
    name: "day-of-week",
    min: 0,
    max: 7,
    value_names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

fn parse_field(text: &str, rule: &FieldRule) -> Result<u64, CronError> {
    let mut bits = 0;
    for item in text.split(',') {
        bits |= parse_item(item, rule).map_err(|reason| CronError::Field {
            field: rule.name,
            reason,
        })?;
    }
    Ok(bits)
}

/// One list item: `*`, `v`, `a-b`, `*/s` or `a-b/s`, as a bit set.
fn parse_item(item: &str, rule: &FieldRule) -> Result<u64, String> {
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some(parse_step(step, rule)?)),
        None => (item, None),
    };
    if step.is_some() && range != "*" && !range.contains('-') {
        return Err(format!(
            "{item:?}: a step needs `*` or a range before '/', as in */15 or 0-30/15"
        ));
    }
    let (low, high) = parse_range(range, rule)?;
    let step = step.unwrap_or(1);
    Ok((low..=high)
        .step_by(step)
        .fold(0, |bits, value| bits | 1 << value))
}

fn parse_range(range: &str, rule: &FieldRule) -> Result<(u8, u8), String> {
    if range == "*" {
        return Ok((rule.min, rule.max));
    }
    let Some((low, high)) = range.split_once('-') else {
        let value = parse_value(range, rule)?;
        return Ok((value, value));
    };
    let (low, high) = (parse_value(low, rule)?, parse_value(high, rule)?);
    if low > high {
        return Err(format!("range {range} runs backwards"));
    }
    Ok((low, high))
}

fn parse_step(step: &str, rule: &FieldRule) -> Result<usize, String> {
    let max_step = rule.max - rule.min;
    match step.parse::<u8>() {
        Ok(value) if (1..=max_step).contains(&value) => Ok(value as usize),
        _ => Err(format!("step {step:?} is not a number in 1-{max_step}")),
    }
}

fn parse_value(text: &str, rule: &FieldRule) -> Result<u8, String> {
    if text.is_empty() {
        return Err("empty value".into());
    }
    if let Some(index) = named_value(text, rule) {
        return Ok(rule.min + index);
    }
    // Digits only: `parse` would also take a sign.
    if !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(not_a_value(text, rule));
    }
    match text.parse::<u8>() {
        Ok(value) if (rule.min..=rule.max).contains(&value) => Ok(value),
        _ => Err(format!("{text} is out of range {}-{}", rule.min, rule.max)),
    }
}

fn named_value(text: &str, rule: &FieldRule) -> Option<u8> {
    let position = rule
        .value_names
        .iter()
        .position(|name| name.eq_ignore_ascii_case(text))?;
    u8::try_from(position).ok()
}

fn not_a_value(text: &str, rule: &FieldRule) -> String {
    match (rule.value_names.first(), rule.value_names.last()) {
        (Some(first), Some(last)) => {
            format!("{text:?} is not a number or a name ({first}-{last})")
        }
        _ => format!("{text:?} is not a number"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    /// The next fires of `expression` in `zone_name` after `after`, as local wall times
    /// with their offset, which shows which side of a DST change each one is on.
    fn check(expression: &str, zone_name: &str, after: &str, expected: &[&str]) {
        let cron = Cron::parse(expression).unwrap();
        let tz = zone(zone_name);
        let fires: Vec<String> = preview(&cron, &tz, ts(after), expected.len())
            .into_iter()
            .map(|fire| fire.to_zoned(tz.clone()).strftime("%F %R %:z").to_string())
            .collect();
        assert_eq!(fires, expected, "{expression} in {zone_name} after {after}");
    }

    #[test]
    fn bad_expressions_name_the_field_and_reason() {
        let cases = [
            ("61 * * * *", "minute: 61 is out of range 0-59"),
            ("* 24 * * *", "hour: 24 is out of range 0-23"),
            ("* * 0 * *", "day-of-month: 0 is out of range 1-31"),
            ("* * 32 * *", "day-of-month: 32 is out of range 1-31"),
            ("* * * 13 *", "month: 13 is out of range 1-12"),
            ("* * * * 8", "day-of-week: 8 is out of range 0-7"),
            (
                "* * * foo *",
                "month: \"foo\" is not a number or a name (jan-dec)",
            ),
            (
                "* * * * funday",
                "day-of-week: \"funday\" is not a number or a name (sun-sat)",
            ),
            ("x * * * *", "minute: \"x\" is not a number"),
            ("+5 * * * *", "minute: \"+5\" is not a number"),
            ("300 * * * *", "minute: 300 is out of range 0-59"),
            ("*/0 * * * *", "minute: step \"0\" is not a number in 1-59"),
            (
                "*/60 * * * *",
                "minute: step \"60\" is not a number in 1-59",
            ),
            (
                "5/15 * * * *",
                "minute: \"5/15\": a step needs `*` or a range before '/'",
            ),
            ("30-10 * * * *", "minute: range 30-10 runs backwards"),
            (
                "* * * * sat-sun",
                "day-of-week: range sat-sun runs backwards",
            ),
            ("1,,2 * * * *", "minute: empty value"),
            ("-1 * * * *", "minute: empty value"),
            (
                "0 3 * *",
                "expected 5 fields (minute hour day-of-month month day-of-week), got 4",
            ),
            ("0 3 * * * *", "got 6"),
            ("", "got 0"),
            ("@daily", "got 1"),
        ];
        for (expression, expected) in cases {
            let err = Cron::parse(expression).expect_err(expression).to_string();
            assert!(
                err.contains(expected),
                "{expression:?}: expected {expected:?}, got {err:?}"
            );
        }
    }

    #[test]
    fn the_expression_is_kept_with_single_spaces() {
        let cron = Cron::parse("  0   3 * *\tmon ").unwrap();
        assert_eq!(cron.as_str(), "0 3 * * mon");
        assert_eq!(cron.to_string(), "0 3 * * mon");
    }

    #[test]
    fn hourly_daily_and_weekly() {
        check(
            "0 * * * *",
            "UTC",
            "2026-01-01T10:30:00Z",
            &["2026-01-01 11:00 +00:00", "2026-01-01 12:00 +00:00"],
        );
        check(
            "30 6 * * *",
            "UTC",
            "2026-01-01T06:30:00Z",
            &["2026-01-02 06:30 +00:00", "2026-01-03 06:30 +00:00"],
        );
        // 2026-01-01 is a Thursday.
        check(
            "0 9 * * 1",
            "UTC",
            "2026-01-01T00:00:00Z",
            &["2026-01-05 09:00 +00:00", "2026-01-12 09:00 +00:00"],
        );
        check(
            "* * * * *",
            "UTC",
            "2026-01-01T10:00:30Z",
            &["2026-01-01 10:01 +00:00"],
        );
    }

    #[test]
    fn steps_lists_ranges_and_names() {
        check(
            "*/15 * * * *",
            "UTC",
            "2026-01-01T10:07:00Z",
            &[
                "2026-01-01 10:15 +00:00",
                "2026-01-01 10:30 +00:00",
                "2026-01-01 10:45 +00:00",
                "2026-01-01 11:00 +00:00",
            ],
        );
        check(
            "10-50/20 8,20 * * *",
            "UTC",
            "2026-01-01T00:00:00Z",
            &[
                "2026-01-01 08:10 +00:00",
                "2026-01-01 08:30 +00:00",
                "2026-01-01 08:50 +00:00",
                "2026-01-01 20:10 +00:00",
            ],
        );
        check(
            "0 0 1 JAN,jul *",
            "UTC",
            "2026-01-01T00:00:00Z",
            &["2026-07-01 00:00 +00:00", "2027-01-01 00:00 +00:00"],
        );
        check(
            "0 12 * * Mon-fri",
            "UTC",
            "2026-01-02T13:00:00Z",
            &["2026-01-05 12:00 +00:00", "2026-01-06 12:00 +00:00"],
        );
    }

    #[test]
    fn sunday_is_0_7_and_sun() {
        let after = ts("2026-01-01T00:00:00Z");
        let sundays = ["0 0 * * 0", "0 0 * * 7", "0 0 * * sun", "0 0 * * 5-7"];
        let expected = ts("2026-01-04T00:00:00Z");
        for expression in sundays {
            let cron = Cron::parse(expression).unwrap();
            let fires = preview(&cron, &TimeZone::UTC, after, 3);
            assert!(fires.contains(&expected), "{expression}: {fires:?}");
        }
    }

    #[test]
    fn restricted_day_of_month_and_day_of_week_match_either() {
        // Fridays and every 13th: 2026-01-13 is a Tuesday.
        check(
            "0 0 13 * fri",
            "UTC",
            "2026-01-01T00:00:00Z",
            &[
                "2026-01-02 00:00 +00:00",
                "2026-01-09 00:00 +00:00",
                "2026-01-13 00:00 +00:00",
                "2026-01-16 00:00 +00:00",
            ],
        );
    }

    #[test]
    fn a_day_field_starting_with_star_narrows_the_other() {
        // Vixie cron: `*/2` counts as unrestricted, so this is odd-numbered Mondays only.
        check(
            "0 0 */2 * mon",
            "UTC",
            "2026-01-01T00:00:00Z",
            &[
                "2026-01-05 00:00 +00:00",
                "2026-01-19 00:00 +00:00",
                "2026-02-09 00:00 +00:00",
            ],
        );
    }

    #[test]
    fn an_expression_that_never_fires_ends_in_none() {
        for expression in ["0 0 31 2 *", "0 0 30 feb *", "0 0 31 apr,jun,sep,nov *"] {
            let cron = Cron::parse(expression).unwrap();
            assert_eq!(
                cron.next_after(ts("2026-01-01T00:00:00Z"), &TimeZone::UTC),
                None
            );
        }
    }

    #[test]
    fn leap_days_are_found_within_the_search() {
        check(
            "0 0 29 2 *",
            "UTC",
            "2026-01-01T00:00:00Z",
            &["2028-02-29 00:00 +00:00"],
        );
    }

    #[test]
    fn after_a_fire_the_next_is_strictly_later() {
        check(
            "0 3 * * *",
            "UTC",
            "2026-01-01T03:00:00Z",
            &["2026-01-02 03:00 +00:00"],
        );
    }
}

/// The DST rules of the module doc, in Europe/Berlin: clocks jump from 02:00 to 03:00 on
/// 2026-03-29 and fall back from 03:00 to 02:00 on 2026-10-25.
#[cfg(test)]
mod dst_tests {
    use super::*;

    fn check(expression: &str, after: &str, expected: &[&str]) {
        let cron = Cron::parse(expression).unwrap();
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let after: Timestamp = after.parse().unwrap();
        let fires: Vec<String> = preview(&cron, &tz, after, expected.len())
            .into_iter()
            .map(|fire| format!("{fire} = {}", fire.to_zoned(tz.clone()).strftime("%R %:z")))
            .collect();
        assert_eq!(fires, expected, "{expression} after {after}");
    }

    #[test]
    fn three_oclock_fires_once_a_day_across_spring_forward() {
        check(
            "0 3 * * *",
            "2026-03-28T00:00:00Z",
            &[
                "2026-03-28T02:00:00Z = 03:00 +01:00",
                "2026-03-29T01:00:00Z = 03:00 +02:00",
                "2026-03-30T01:00:00Z = 03:00 +02:00",
            ],
        );
    }

    #[test]
    fn three_oclock_fires_once_a_day_across_fall_back() {
        check(
            "0 3 * * *",
            "2026-10-24T00:00:00Z",
            &[
                "2026-10-24T01:00:00Z = 03:00 +02:00",
                "2026-10-25T02:00:00Z = 03:00 +01:00",
                "2026-10-26T02:00:00Z = 03:00 +01:00",
            ],
        );
    }

    #[test]
    fn a_wall_time_in_the_spring_gap_fires_when_the_gap_ends() {
        check(
            "30 2 * * *",
            "2026-03-28T00:00:00Z",
            &[
                "2026-03-28T01:30:00Z = 02:30 +01:00",
                "2026-03-29T01:00:00Z = 03:00 +02:00",
                "2026-03-30T00:30:00Z = 02:30 +02:00",
            ],
        );
    }

    #[test]
    fn a_repeated_wall_time_fires_at_its_first_occurrence_only() {
        check(
            "30 2 * * *",
            "2026-10-24T00:00:00Z",
            &[
                "2026-10-24T00:30:00Z = 02:30 +02:00",
                "2026-10-25T00:30:00Z = 02:30 +02:00",
                "2026-10-26T01:30:00Z = 02:30 +01:00",
            ],
        );
    }

    #[test]
    fn wall_times_in_the_gap_collapse_into_one_fire() {
        check(
            "*/30 2,3 * * *",
            "2026-03-29T00:00:00Z",
            &[
                "2026-03-29T01:00:00Z = 03:00 +02:00",
                "2026-03-29T01:30:00Z = 03:30 +02:00",
                "2026-03-30T00:00:00Z = 02:00 +02:00",
            ],
        );
        check(
            "0 * * * *",
            "2026-03-29T00:30:00Z",
            &[
                "2026-03-29T01:00:00Z = 03:00 +02:00",
                "2026-03-29T02:00:00Z = 04:00 +02:00",
            ],
        );
    }

    #[test]
    fn the_repeated_hour_does_not_fire_twice() {
        check(
            "0 * * * *",
            "2026-10-24T23:30:00Z",
            &[
                "2026-10-25T00:00:00Z = 02:00 +02:00",
                "2026-10-25T02:00:00Z = 03:00 +01:00",
            ],
        );
        // Starting inside the second 02:00-03:00, nothing of that hour fires again.
        check(
            "*/15 * * * *",
            "2026-10-25T01:10:00Z",
            &["2026-10-25T02:00:00Z = 03:00 +01:00"],
        );
    }
}
