//! Messages from agent ids that no enrolled agent has: counted for `/metrics` and logged
//! sparingly.
//!
//! The store drops them (`ApplyOutcome::unknown_agents`) and the projectors acknowledge
//! them with their batch, since they can never become valid. They are worth an operator's
//! attention, as an agent whose row was deleted or a credential that publishes as ids
//! nobody enrolled, but a line per message would let whoever sends them flood the log.
//! So each id is named at most once per [`LOG_WINDOW`], at most [`MAX_IDS_PER_WINDOW`]
//! ids a window, and what went unnamed is summed up in one line when the next window
//! opens; the counter `tutti_messages_from_unknown_agents_total` counts every message.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tutti_proto::AgentId;

/// How long an id stays quiet after it was named in the log.
pub(crate) const LOG_WINDOW: Duration = Duration::from_secs(60);
/// How many ids one window names before it only counts.
pub(crate) const MAX_IDS_PER_WINDOW: usize = 10;

/// What an agent sent; the `kind` label of the counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// A heartbeat (core NATS).
    Heartbeat,
    /// A `RunResult` (`TUTTI_RESULTS`).
    Result,
    /// An `AgentEvent` (`TUTTI_EVENTS`).
    Event,
    /// An `InventorySnapshot` (`TUTTI_INVENTORY`).
    Inventory,
}

impl MessageKind {
    /// Every kind, in the order metrics list them.
    pub const ALL: [MessageKind; 4] = [
        MessageKind::Heartbeat,
        MessageKind::Result,
        MessageKind::Event,
        MessageKind::Inventory,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Heartbeat => "heartbeat",
            MessageKind::Result => "result",
            MessageKind::Event => "event",
            MessageKind::Inventory => "inventory",
        }
    }
}

/// The counter per kind and the log's rate limit; one per server, in `Metrics`.
#[derive(Debug, Default)]
pub struct UnknownAgents {
    counts: [AtomicU64; 4],
    log: Mutex<LogWindow>,
}

impl UnknownAgents {
    /// Counts the messages the store dropped, one per entry of `agent_ids`, and logs
    /// within the rate limit.
    pub fn dropped(&self, kind: MessageKind, agent_ids: &[AgentId]) {
        if agent_ids.is_empty() {
            return;
        }
        self.counts[kind as usize].fetch_add(agent_ids.len() as u64, Ordering::Relaxed);
        let now = Instant::now();
        let mut log = self
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for agent_id in agent_ids {
            let admit = log.admit(now, agent_id);
            if admit.unnamed_in_last_window > 0 {
                tracing::warn!(n_messages = admit.unnamed_in_last_window, window = ?LOG_WINDOW, "More messages from agents that are not enrolled were dropped than the log names; tutti_messages_from_unknown_agents_total counts them all.");
            }
            if admit.name {
                tracing::warn!(%agent_id, kind = kind.as_str(), "Dropped a message from an agent that is not enrolled (never enrolled, or deleted); enroll it or revoke its broker credentials. This id is named again at most once a minute.");
            }
        }
    }

    /// How many messages of `kind` were dropped.
    pub fn count(&self, kind: MessageKind) -> u64 {
        self.counts[kind as usize].load(Ordering::Relaxed)
    }

    /// The counter in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let name = "tutti_messages_from_unknown_agents_total";
        let _ = writeln!(
            out,
            "# HELP {name} Messages dropped because no enrolled agent has their agent id."
        );
        let _ = writeln!(out, "# TYPE {name} counter");
        for kind in MessageKind::ALL {
            let value = self.count(kind);
            let _ = writeln!(out, "{name}{{kind=\"{}\"}} {value}", kind.as_str());
        }
    }
}

/// The ids named in the current window, and how many messages went unnamed.
#[derive(Debug, Default)]
struct LogWindow {
    started: Option<Instant>,
    named: BTreeSet<AgentId>,
    n_unnamed: u64,
}

/// Whether to name a message's id now, and what the window that just closed left unnamed.
#[derive(Debug, PartialEq, Eq)]
struct Admit {
    name: bool,
    unnamed_in_last_window: u64,
}

impl LogWindow {
    fn admit(&mut self, now: Instant, agent_id: &AgentId) -> Admit {
        let mut unnamed_in_last_window = 0;
        let expired = self
            .started
            .is_none_or(|started| now.duration_since(started) >= LOG_WINDOW);
        if expired {
            unnamed_in_last_window = std::mem::take(&mut self.n_unnamed);
            self.named.clear();
            self.started = Some(now);
        }
        let name = self.named.len() < MAX_IDS_PER_WINDOW && self.named.insert(agent_id.clone());
        if !name && !self.named.contains(agent_id) {
            self.n_unnamed += 1;
        }
        Admit {
            name,
            unnamed_in_last_window,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str) -> AgentId {
        AgentId::parse(name).unwrap()
    }

    /// An id is named once a window; ids past the cap are only counted, and the count
    /// is reported when the next window opens.
    #[test]
    fn each_id_is_named_once_a_window_and_the_rest_are_summed_up() {
        let start = Instant::now();
        let mut window = LogWindow::default();
        let named = |admit: Admit| (admit.name, admit.unnamed_in_last_window);
        assert_eq!(named(window.admit(start, &id("ghost-00"))), (true, 0));
        assert_eq!(named(window.admit(start, &id("ghost-00"))), (false, 0));
        for n in 1..MAX_IDS_PER_WINDOW {
            let admit = window.admit(start, &id(&format!("ghost-{n:02}")));
            assert_eq!(named(admit), (true, 0));
        }
        for _ in 0..3 {
            assert_eq!(named(window.admit(start, &id("ghost-99"))), (false, 0));
        }
        let later = start + LOG_WINDOW;
        assert_eq!(named(window.admit(later, &id("ghost-00"))), (true, 3));
        assert_eq!(named(window.admit(later, &id("ghost-99"))), (true, 0));
    }
}
