//! The `rollout` of a run request as the operator writes it ([`RolloutSpec`]), its checks,
//! and the [`RolloutPlan`] it becomes once the number of targets is known.
//!
//! Waves are cumulative: `["10%", "50%", "100%"]` releases the first 10 % of the targets
//! (rounded up, at least one), then up to half, then everyone; counts (`[1, 10, 100]`)
//! work the same way and may be mixed with percentages. Waves that resolve to the same
//! number of targets on a small fleet collapse into one, so every stored wave has targets.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// Most waves a rollout may have.
pub(crate) const MAX_WAVES: usize = 100;
/// Longest wait between waves: a week.
pub(crate) const MAX_WAIT_SECS: u64 = 7 * 24 * 3600;

/// How a run is rolled out, as the operator asks for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutSpec {
    /// Cumulative wave sizes: percentages of the targets (`"5%"`) or counts (`10`), each
    /// larger than the one before; the last covers everyone (`"100%"` or a count at least
    /// the number of targets).
    #[schema(value_type = Vec<serde_json::Value>)]
    pub waves: Vec<WaveSize>,
    /// Seconds to wait after a wave finished before releasing the next.
    #[serde(default)]
    pub wait_secs: u64,
    /// Abort when more than this share (0 to 1) of the released targets failed, checked
    /// when a wave finishes. Without it and without `max_failures`, 0: any failure aborts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failure_ratio: Option<f64>,
    /// Abort as soon as more than this many released targets failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failures: Option<u64>,
    /// At most this many released targets unfinished at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u64>,
}

/// One cumulative wave size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WaveSize {
    /// This many targets in total.
    Count(u64),
    /// This percentage (0 excluded, up to 100) of the targets, rounded up.
    Percent(f64),
}

/// A spec resolved against the targets: what the rollout driver reads back from the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutPlan {
    /// The spec as asked.
    pub spec: RolloutSpec,
    /// Targets released by the end of each wave (cumulative, strictly increasing, the last
    /// being every target).
    pub wave_ends: Vec<u64>,
}

impl RolloutSpec {
    /// Checks what does not depend on the targets; messages name the field.
    pub fn check(&self) -> Result<()> {
        if self.waves.is_empty() {
            return Err(bad("rollout.waves: give at least one wave"));
        }
        if self.waves.len() > MAX_WAVES {
            return Err(bad(format!(
                "rollout.waves: {} waves is over the limit of {MAX_WAVES}",
                self.waves.len()
            )));
        }
        self.check_wave_order()?;
        if let Some(WaveSize::Percent(percent)) = self.waves.last()
            && *percent < 100.0
        {
            return Err(bad(format!(
                "rollout.waves: the last wave is {percent}% but must cover every target (\"100%\")"
            )));
        }
        self.check_limits()
    }

    fn check_wave_order(&self) -> Result<()> {
        let mut last_count = 0;
        let mut last_percent = 0.0;
        for (index, wave) in self.waves.iter().enumerate() {
            match *wave {
                WaveSize::Count(0) => {
                    return Err(bad(format!(
                        "rollout.waves[{index}]: a wave must add at least one target"
                    )));
                }
                WaveSize::Count(count) if count <= last_count => {
                    return Err(bad(format!(
                        "rollout.waves[{index}]: {count} is not larger than the wave before ({last_count}); waves are cumulative and increasing"
                    )));
                }
                WaveSize::Count(count) => last_count = count,
                WaveSize::Percent(percent) if percent <= last_percent => {
                    return Err(bad(format!(
                        "rollout.waves[{index}]: {percent}% is not larger than the wave before ({last_percent}%); waves are cumulative and increasing"
                    )));
                }
                WaveSize::Percent(percent) => last_percent = percent,
            }
        }
        Ok(())
    }

    fn check_limits(&self) -> Result<()> {
        if self.wait_secs > MAX_WAIT_SECS {
            return Err(bad(format!(
                "rollout.wait_secs: {} is over the limit of {MAX_WAIT_SECS} (a week)",
                self.wait_secs
            )));
        }
        if let Some(ratio) = self.max_failure_ratio
            && !(0.0..=1.0).contains(&ratio)
        {
            return Err(bad(format!(
                "rollout.max_failure_ratio: {ratio} is not between 0 and 1"
            )));
        }
        if self.batch_size == Some(0) {
            return Err(bad("rollout.batch_size: must be at least 1"));
        }
        Ok(())
    }

    /// Resolves the waves against `n_targets` (at least 1); the spec must have passed
    /// [`RolloutSpec::check`].
    pub fn plan(&self, n_targets: u64) -> Result<RolloutPlan> {
        let mut wave_ends: Vec<u64> = Vec::with_capacity(self.waves.len());
        for (index, wave) in self.waves.iter().enumerate() {
            let end = wave.resolve(n_targets);
            match wave_ends.last() {
                Some(before) if end < *before => {
                    return Err(bad(format!(
                        "rollout.waves[{index}]: {wave} is {end} of {n_targets} targets, fewer than the {before} of the wave before"
                    )));
                }
                Some(before) if end == *before => {}
                _ => wave_ends.push(end),
            }
        }
        let last = wave_ends.last().copied().unwrap_or(0);
        if last < n_targets {
            return Err(bad(format!(
                "rollout.waves: the last wave covers {last} targets but the selection has {n_targets}; end with \"100%\" or a count of at least {n_targets}"
            )));
        }
        Ok(RolloutPlan {
            spec: self.clone(),
            wave_ends,
        })
    }

    /// The failure share above which the rollout aborts (0 when no threshold is given).
    pub fn failure_ratio(&self) -> Option<f64> {
        match (self.max_failure_ratio, self.max_failures) {
            (None, None) => Some(0.0),
            (ratio, _) => ratio,
        }
    }
}

impl WaveSize {
    /// Cumulative targets of this wave out of `n_targets`: at least one, at most all.
    fn resolve(self, n_targets: u64) -> u64 {
        let end = match self {
            WaveSize::Count(count) => count,
            WaveSize::Percent(percent) => (percent / 100.0 * n_targets as f64).ceil() as u64,
        };
        end.clamp(1, n_targets)
    }
}

impl fmt::Display for WaveSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaveSize::Count(count) => write!(f, "{count}"),
            WaveSize::Percent(percent) => write!(f, "{percent}%"),
        }
    }
}

impl Serialize for WaveSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            WaveSize::Count(count) => serializer.serialize_u64(*count),
            WaveSize::Percent(_) => serializer.serialize_str(&self.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for WaveSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(WaveVisitor)
    }
}

struct WaveVisitor;

impl serde::de::Visitor<'_> for WaveVisitor {
    type Value = WaveSize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a count of targets (10) or a percentage (\"5%\")")
    }

    fn visit_u64<E: serde::de::Error>(self, count: u64) -> std::result::Result<WaveSize, E> {
        Ok(WaveSize::Count(count))
    }

    fn visit_i64<E: serde::de::Error>(self, count: i64) -> std::result::Result<WaveSize, E> {
        u64::try_from(count)
            .map(WaveSize::Count)
            .map_err(|_| E::custom(format!("{count} is negative; a wave is a count of targets")))
    }

    fn visit_f64<E: serde::de::Error>(self, count: f64) -> std::result::Result<WaveSize, E> {
        Err(E::custom(format!(
            "{count} is not a whole number; write a percentage as a string (\"{count}%\")"
        )))
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> std::result::Result<WaveSize, E> {
        parse_percent(text)
            .map(WaveSize::Percent)
            .map_err(E::custom)
    }
}

fn parse_percent(text: &str) -> std::result::Result<f64, String> {
    let number = text
        .trim()
        .strip_suffix('%')
        .ok_or_else(|| format!("{text:?} is not a percentage (write \"5%\") or a count (5)"))?;
    let percent: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a percentage (write \"5%\")"))?;
    if percent.is_finite() && percent > 0.0 && percent <= 100.0 {
        Ok(percent)
    } else {
        Err(format!("{text:?} is not above 0% and at most 100%"))
    }
}

fn bad(message: impl Into<String>) -> Error {
    Error::bad_request(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(waves: serde_json::Value) -> RolloutSpec {
        serde_json::from_value(serde_json::json!({ "waves": waves })).unwrap()
    }

    fn ends(waves: serde_json::Value, n_targets: u64) -> Vec<u64> {
        let spec = spec(waves);
        spec.check().unwrap();
        spec.plan(n_targets).unwrap().wave_ends
    }

    #[test]
    fn waves_are_cumulative_rounded_up_and_collapse_when_equal() {
        let waves = serde_json::json!(["10%", "50%", "100%"]);
        assert_eq!(ends(waves.clone(), 20), [2, 10, 20]);
        assert_eq!(ends(waves.clone(), 3), [1, 2, 3]);
        assert_eq!(ends(waves, 1), [1]);
        assert_eq!(ends(serde_json::json!(["5%", "100%"]), 1000), [50, 1000]);
        assert_eq!(ends(serde_json::json!([1, 10, "100%"]), 5), [1, 5]);
        assert_eq!(ends(serde_json::json!([1, 10, 100]), 100), [1, 10, 100]);
    }

    #[test]
    fn bad_waves_say_which_and_why() {
        let check = |waves: serde_json::Value, n_targets: u64, expected: &str| {
            let spec = spec(waves);
            let err = spec
                .check()
                .and_then(|()| spec.plan(n_targets).map(drop))
                .unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
        };
        check(serde_json::json!([]), 5, "at least one wave");
        check(serde_json::json!(["50%", "10%", "100%"]), 5, "waves[1]");
        check(
            serde_json::json!(["10%", "50%"]),
            5,
            "must cover every target",
        );
        check(
            serde_json::json!([1, 5]),
            10,
            "the last wave covers 5 targets",
        );
        check(serde_json::json!([0, "100%"]), 10, "at least one target");
        check(serde_json::json!([3, "10%", "100%"]), 5, "fewer than the 3");
    }

    #[test]
    fn wave_sizes_parse_strictly() {
        let parse = |value: serde_json::Value| serde_json::from_value::<WaveSize>(value);
        assert_eq!(
            parse(serde_json::json!("12.5%")).unwrap(),
            WaveSize::Percent(12.5)
        );
        assert_eq!(parse(serde_json::json!(7)).unwrap(), WaveSize::Count(7));
        for bad in [
            serde_json::json!("5"),
            serde_json::json!("0%"),
            serde_json::json!("101%"),
            serde_json::json!(-1),
            serde_json::json!(1.5),
            serde_json::json!(true),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
    }
}
