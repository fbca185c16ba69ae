//! Counters for `/metrics`, rendered in the Prometheus text format by hand.
//!
//! A handful of atomics is all the server needs today; a metrics crate would add a
//! registry and a global without buying anything. Gauges that the store already knows
//! (projector positions, agents online) are read at scrape time in `api/health.rs`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use tutti_store::ApplyOutcome;

use crate::projector::unknown_agents::UnknownAgents;

/// The streams the projectors follow, in the order metrics list them.
pub(crate) const PROJECTED_STREAMS: [&str; 4] = [
    tutti_proto::catalog::RESULTS_STREAM,
    tutti_proto::catalog::EVENTS_STREAM,
    tutti_proto::catalog::INVENTORY_STREAM,
    tutti_proto::catalog::AUDIT_STREAM,
];

/// The status classes HTTP responses are counted by, in the order metrics list them.
pub(crate) const HTTP_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Picks one counter out of a projector's counters.
type CounterField = fn(&ProjectorCounters) -> &AtomicU64;

/// Counters of one projector.
#[derive(Debug, Default)]
pub struct ProjectorCounters {
    /// Batches committed.
    pub batches: AtomicU64,
    /// Messages stored for the first time.
    pub applied: AtomicU64,
    /// Redelivered messages that changed nothing.
    pub duplicates: AtomicU64,
    /// Messages recorded as anomalies.
    pub anomalies: AtomicU64,
    /// Messages dropped because they do not decode or claim another agent's subject.
    pub rejected: AtomicU64,
    /// Batches whose transaction failed (redelivered later).
    pub failures: AtomicU64,
}

impl ProjectorCounters {
    /// Adds one committed batch.
    pub fn record(&self, outcome: &ApplyOutcome) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.applied.fetch_add(outcome.applied, Ordering::Relaxed);
        self.duplicates
            .fetch_add(outcome.duplicates, Ordering::Relaxed);
        self.anomalies
            .fetch_add(outcome.anomalies, Ordering::Relaxed);
    }
}

/// Every counter of the server.
#[derive(Debug, Default)]
pub struct Metrics {
    /// One per entry of [`PROJECTED_STREAMS`].
    pub projectors: [ProjectorCounters; 4],
    /// Heartbeats received.
    pub heartbeats: AtomicU64,
    /// Runs created.
    pub runs_created: AtomicU64,
    /// Command messages published (runs and kills).
    pub commands_published: AtomicU64,
    /// Agents enrolled.
    pub enrollments: AtomicU64,
    /// HTTP responses, one per entry of [`HTTP_CLASSES`].
    pub http_responses: [AtomicU64; 5],
    /// Messages dropped because no enrolled agent has their agent id.
    pub unknown_agents: UnknownAgents,
}

impl Metrics {
    /// The counters of the projector of `stream`.
    pub fn projector(&self, stream: &str) -> &ProjectorCounters {
        let index = PROJECTED_STREAMS
            .iter()
            .position(|name| *name == stream)
            .unwrap_or(0);
        &self.projectors[index]
    }

    /// Counts one HTTP response.
    pub fn count_response(&self, status: u16) {
        self.http_responses[class_index(status)].fetch_add(1, Ordering::Relaxed);
    }

    /// The counters in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let fields: [(&str, &str, CounterField); 6] = [
            ("batches", "Batches committed", |c| &c.batches),
            ("applied", "Messages stored for the first time", |c| {
                &c.applied
            }),
            (
                "duplicates",
                "Redelivered messages that changed nothing",
                |c| &c.duplicates,
            ),
            ("anomalies", "Messages recorded as anomalies", |c| {
                &c.anomalies
            }),
            (
                "rejected",
                "Messages dropped as undecodable or forged",
                |c| &c.rejected,
            ),
            ("failures", "Batches whose transaction failed", |c| {
                &c.failures
            }),
        ];
        for (name, help, field) in fields {
            let _ = writeln!(out, "# HELP tutti_projector_{name}_total {help}.");
            let _ = writeln!(out, "# TYPE tutti_projector_{name}_total counter");
            for (stream, counters) in PROJECTED_STREAMS.iter().zip(&self.projectors) {
                let value = field(counters).load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "tutti_projector_{name}_total{{stream=\"{stream}\"}} {value}"
                );
            }
        }
        counter(
            out,
            "tutti_heartbeats_total",
            "Heartbeats received",
            &self.heartbeats,
        );
        counter(
            out,
            "tutti_runs_created_total",
            "Runs created",
            &self.runs_created,
        );
        counter(
            out,
            "tutti_commands_published_total",
            "Command messages published",
            &self.commands_published,
        );
        counter(
            out,
            "tutti_enrollments_total",
            "Agents enrolled",
            &self.enrollments,
        );
        self.unknown_agents.render(out);
        let _ = writeln!(
            out,
            "# HELP tutti_http_responses_total HTTP responses by status class."
        );
        let _ = writeln!(out, "# TYPE tutti_http_responses_total counter");
        for (class, value) in HTTP_CLASSES.iter().zip(&self.http_responses) {
            let value = value.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "tutti_http_responses_total{{class=\"{class}\"}} {value}"
            );
        }
    }
}

/// The index in [`HTTP_CLASSES`] of a status code. `StatusCode` admits 100 to 999; the
/// non-standard codes above 599 are counted as 5xx rather than dropped.
fn class_index(status: u16) -> usize {
    usize::from(status / 100).clamp(1, 5) - 1
}

fn counter(out: &mut String, name: &str, help: &str, value: &AtomicU64) {
    let _ = writeln!(out, "# HELP {name} {help}.");
    let _ = writeln!(out, "# TYPE {name} counter");
    let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: 1xx and 3xx responses were counted as 2xx.
    #[test]
    fn responses_are_counted_by_their_own_class() {
        let metrics = Metrics::default();
        for status in [
            100, 101, 200, 204, 301, 304, 308, 400, 404, 499, 500, 503, 599, 600, 999,
        ] {
            metrics.count_response(status);
        }
        let mut out = String::new();
        metrics.render(&mut out);
        let expected = [("1xx", 2), ("2xx", 2), ("3xx", 3), ("4xx", 3), ("5xx", 5)];
        for (class, n) in expected {
            let line = format!("tutti_http_responses_total{{class=\"{class}\"}} {n}\n");
            assert!(out.contains(&line), "{line:?} in\n{out}");
        }
    }
}
