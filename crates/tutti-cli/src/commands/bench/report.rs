//! What a scenario reports, and how: a table for people, or with `--json` exactly one JSON
//! object on stdout, `{"scenario", "agents", "metrics", "baseline", "ratio"}`. Progress goes
//! to stderr, as a spinner on a terminal and not at all otherwise, so stdout stays one
//! document.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::output;

/// One scenario's outcome. Metrics keep the order they were added in for the table.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) scenario: &'static str,
    pub(crate) agents: usize,
    pub(crate) metrics: Vec<(&'static str, Value)>,
    /// `None` when the scenario has no baseline.
    pub(crate) baseline: Option<Vec<(&'static str, Value)>>,
    /// Ours divided by the baseline's figure; `None` without a baseline.
    pub(crate) ratio: Option<f64>,
}

impl Report {
    /// A report without metrics yet.
    pub(crate) fn new(scenario: &'static str, agents: usize) -> Report {
        Report {
            scenario,
            agents,
            metrics: Vec::new(),
            baseline: None,
            ratio: None,
        }
    }

    /// Adds a metric.
    pub(crate) fn metric(&mut self, name: &'static str, value: impl Into<Value>) {
        self.metrics.push((name, value.into()));
    }

    /// Adds a baseline figure.
    pub(crate) fn baseline(&mut self, name: &'static str, value: impl Into<Value>) {
        self.baseline
            .get_or_insert_with(Vec::new)
            .push((name, value.into()));
    }

    /// The JSON document.
    pub(crate) fn to_json(&self) -> Value {
        let object = |pairs: &[(&'static str, Value)]| {
            Value::Object(
                pairs
                    .iter()
                    .map(|(name, value)| (name.to_string(), value.clone()))
                    .collect(),
            )
        };
        json!({
            "scenario": self.scenario,
            "agents": self.agents,
            "metrics": object(&self.metrics),
            "baseline": self.baseline.as_deref().map(object),
            "ratio": self.ratio.map(round3),
        })
    }

    /// Prints the report as JSON or as a table.
    pub(crate) fn print(&self, json: bool) {
        if json {
            output::print_json(&self.to_json());
            return;
        }
        println!("tutti bench {} (agents: {})", self.scenario, self.agents);
        let mut table = output::table(&["", "metric", "value"]);
        for (name, value) in &self.metrics {
            table.add_row(vec!["tutti", name, &display(value)]);
        }
        for (name, value) in self.baseline.iter().flatten() {
            table.add_row(vec!["baseline", name, &display(value)]);
        }
        if let Some(ratio) = self.ratio {
            table.add_row(vec!["ratio", "tutti / baseline", &format!("{ratio:.2}")]);
        }
        println!("{table}");
    }
}

fn display(value: &Value) -> String {
    match value {
        Value::Number(number) => match number.as_f64() {
            Some(float) if number.is_f64() => format!("{float:.2}"),
            _ => number.to_string(),
        },
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Milliseconds with three decimals, for JSON.
pub(crate) fn millis(duration: Duration) -> f64 {
    round3(duration.as_secs_f64() * 1000.0)
}

/// Rounds to three decimals (JSON readers do not need nanoseconds).
pub(crate) fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// The nearest-rank percentile `pct` (0–100) of sorted `values`; 0 when empty.
pub(crate) fn percentile(sorted: &[f64], pct: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Progress on stderr: a spinner or a counting bar on a terminal, nothing otherwise.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    spinner: ProgressBar,
}

impl Progress {
    /// A spinner (hidden when stderr is not a terminal).
    pub(crate) fn new() -> Progress {
        let spinner = match std::io::stderr().is_terminal() {
            true => ProgressBar::new_spinner(),
            false => ProgressBar::hidden(),
        };
        spinner.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        spinner.enable_steady_tick(Duration::from_millis(100));
        Progress { spinner }
    }

    /// Shows what is happening now.
    pub(crate) fn say(&self, message: impl Into<String>) {
        self.spinner.set_message(message.into());
    }

    /// A bar counting to `len` (hidden when stderr is not a terminal).
    pub(crate) fn bar(&self, len: usize, message: &str) -> ProgressBar {
        if self.spinner.is_hidden() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len as u64);
        bar.set_style(
            ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} ({per_sec})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(message.to_string());
        bar
    }

    /// Clears the spinner.
    pub(crate) fn finish(&self) {
        self.spinner.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 50.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&values, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 95.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn the_json_has_the_documented_shape() {
        let mut report = Report::new("fanout", 5);
        report.metric("p50_ms", 1.5);
        let value = report.to_json();
        assert_eq!(value["scenario"], "fanout");
        assert_eq!(value["agents"], 5);
        assert_eq!(value["metrics"]["p50_ms"], 1.5);
        assert!(value["baseline"].is_null() && value["ratio"].is_null());
    }
}
