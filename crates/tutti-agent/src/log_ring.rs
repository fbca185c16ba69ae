//! The agent's recent log lines, kept in memory for the `log-tail` rpc.
//!
//! `main.rs` installs a tracing writer that copies every formatted line here as well as to
//! stderr; the rpc handler reads the tail. Bounded: only the last [`LOG_RING_LINES`] lines
//! are kept, so a chatty agent cannot grow without limit.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Lines kept.
pub const LOG_RING_LINES: usize = 1000;

/// A shared ring of recent log lines.
#[derive(Debug, Clone, Default)]
pub struct LogRing {
    lines: Arc<Mutex<VecDeque<String>>>,
}

impl LogRing {
    /// Appends text, split into lines.
    pub fn push(&self, text: &str) {
        let Ok(mut lines) = self.lines.lock() else {
            return;
        };
        for line in text.lines().filter(|line| !line.is_empty()) {
            if lines.len() == LOG_RING_LINES {
                lines.pop_front();
            }
            lines.push_back(line.to_string());
        }
    }

    /// The last `count` lines, oldest first.
    pub fn tail(&self, count: usize) -> Vec<String> {
        let Ok(lines) = self.lines.lock() else {
            return Vec::new();
        };
        lines
            .iter()
            .skip(lines.len().saturating_sub(count))
            .cloned()
            .collect()
    }
}

/// A writer for `tracing_subscriber::fmt` that tees to stderr and the ring.
#[derive(Debug, Clone)]
pub struct TeeWriter {
    ring: LogRing,
}

impl TeeWriter {
    /// A writer feeding `ring`.
    pub fn new(ring: LogRing) -> TeeWriter {
        TeeWriter { ring }
    }
}

impl Write for TeeWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.ring.push(&String::from_utf8_lossy(buf));
        std::io::stderr().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for TeeWriter {
    type Writer = TeeWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_only_the_last_lines() {
        let ring = LogRing::default();
        for n in 0..(LOG_RING_LINES + 5) {
            ring.push(&format!("line {n}\n"));
        }
        let tail = ring.tail(2);
        assert_eq!(
            tail,
            vec![
                format!("line {}", LOG_RING_LINES + 3),
                format!("line {}", LOG_RING_LINES + 4)
            ]
        );
        assert_eq!(ring.tail(usize::MAX).len(), LOG_RING_LINES);
    }
}
