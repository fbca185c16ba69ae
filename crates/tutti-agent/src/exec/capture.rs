//! Bounded output capture: head and tail of each stream, and best-effort live chunks.
//!
//! A [`Capture`] keeps the first half of its cap verbatim and a ring of the last half, so
//! memory stays under the cap however much a script prints (the lesson of an earlier system
//! that went down on one job printing gigabytes). `exec::supervise` drives [`pump`] while it
//! waits on the process; [`LiveSink`] forwards copies of the chunks without ever waiting.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc::{self, error::TrySendError};
use tutti_proto::result::truncation_marker;

use super::{CapturedStream, LiveChunk, LiveStream};

/// Bytes read from a pipe at a time.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// One stream's captured output, bounded by its cap.
#[derive(Debug)]
pub(crate) struct Capture {
    head_limit: usize,
    tail_limit: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total_bytes: u64,
}

impl Capture {
    /// An empty capture keeping at most `limit_bytes` (half head, half tail). Nothing is
    /// allocated up front: most scripts print little.
    pub(crate) fn new(limit_bytes: u64) -> Capture {
        let limit = usize::try_from(limit_bytes).unwrap_or(usize::MAX);
        let head_limit = limit / 2;
        Capture {
            head_limit,
            tail_limit: limit - head_limit,
            head: Vec::new(),
            tail: VecDeque::new(),
            total_bytes: 0,
        }
    }

    /// Appends `bytes`: into the head while it has room, then into the tail ring, whose
    /// oldest bytes fall out into the dropped middle.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.total_bytes = self.total_bytes.saturating_add(bytes.len() as u64);
        let room = self.head_limit - self.head.len();
        let (to_head, rest) = bytes.split_at(room.min(bytes.len()));
        self.head.extend_from_slice(to_head);
        let rest = &rest[rest.len().saturating_sub(self.tail_limit)..];
        let overflow = (self.tail.len() + rest.len()).saturating_sub(self.tail_limit);
        self.tail.drain(..overflow);
        self.tail.extend(rest);
    }

    /// Head, then the marker when bytes were dropped, then tail.
    pub(crate) fn finish(self) -> CapturedStream {
        let kept = (self.head.len() + self.tail.len()) as u64;
        let dropped_bytes = self.total_bytes - kept;
        let mut bytes = self.head;
        if dropped_bytes > 0 {
            bytes.extend_from_slice(truncation_marker(dropped_bytes).as_bytes());
        }
        bytes.extend(self.tail);
        CapturedStream {
            bytes,
            total_bytes: self.total_bytes,
            dropped_bytes,
        }
    }
}

/// Forwards output chunks to a live receiver without ever waiting for it: a full channel
/// drops the chunk (and counts it), because a slow dashboard must never slow a script down.
#[derive(Debug)]
pub(crate) struct LiveSink {
    sender: Option<mpsc::Sender<LiveChunk>>,
    dropped_chunks: AtomicU64,
}

impl LiveSink {
    pub(crate) fn new(sender: Option<mpsc::Sender<LiveChunk>>) -> LiveSink {
        LiveSink {
            sender,
            dropped_chunks: AtomicU64::new(0),
        }
    }

    fn offer(&self, stream: LiveStream, bytes: &[u8]) {
        let Some(sender) = &self.sender else {
            return;
        };
        let chunk = LiveChunk {
            stream,
            bytes: Bytes::copy_from_slice(bytes),
        };
        match sender.try_send(chunk) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped_chunks.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Chunks the receiver was too slow to take.
    pub(crate) fn dropped_chunks(&self) -> u64 {
        self.dropped_chunks.load(Ordering::Relaxed)
    }
}

/// Pushes a bytes-only producer's output (the builtins) through the same capture and sink.
pub(crate) fn capture_bytes(bytes: &[u8], limit_bytes: u64, live: &LiveSink) -> CapturedStream {
    let mut capture = Capture::new(limit_bytes);
    if !bytes.is_empty() {
        capture.push(bytes);
        live.offer(LiveStream::Stdout, bytes);
    }
    capture.finish()
}

/// Reads both pipes to end of file into their captures. Completes when both writers are
/// gone, which a backgrounded grandchild can postpone forever: callers bound it.
pub(crate) async fn pump(
    stdout: Option<impl AsyncRead + Unpin>,
    stderr: Option<impl AsyncRead + Unpin>,
    captures: (&mut Capture, &mut Capture),
    live: &LiveSink,
) {
    tokio::join!(
        pump_one(stdout, captures.0, LiveStream::Stdout, live),
        pump_one(stderr, captures.1, LiveStream::Stderr, live),
    );
}

async fn pump_one(
    pipe: Option<impl AsyncRead + Unpin>,
    capture: &mut Capture,
    stream: LiveStream,
    live: &LiveSink,
) {
    let Some(mut pipe) = pipe else {
        return;
    };
    let mut buffer = vec![0; READ_BUFFER_BYTES];
    loop {
        match pipe.read(&mut buffer).await {
            Ok(0) => return,
            Ok(n) => {
                capture.push(&buffer[..n]);
                live.offer(stream, &buffer[..n]);
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => {
                tracing::warn!(?stream, %error, "Reading a script's output failed; the rest of it is lost");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(limit: u64, chunks: &[&[u8]], expected: &[u8], dropped: u64) {
        let mut capture = Capture::new(limit);
        for chunk in chunks {
            capture.push(chunk);
        }
        let total: usize = chunks.iter().map(|c| c.len()).sum();
        let captured = capture.finish();
        assert_eq!(captured.bytes, expected, "limit {limit}, chunks {chunks:?}");
        assert_eq!(captured.total_bytes, total as u64);
        assert_eq!(captured.dropped_bytes, dropped);
    }

    fn marked(head: &str, dropped: u64, tail: &str) -> Vec<u8> {
        format!("{head}{}{tail}", truncation_marker(dropped)).into_bytes()
    }

    #[test]
    fn output_under_the_cap_is_kept_whole() {
        check(10, &[b"abc", b"def"], b"abcdef", 0);
        check(10, &[b"0123456789"], b"0123456789", 0);
        check(10, &[], b"", 0);
    }

    #[test]
    fn output_over_the_cap_keeps_head_and_tail_around_the_marker() {
        check(10, &[b"0123456789X"], &marked("01234", 1, "6789X"), 1);
        check(
            10,
            &[b"01", b"234", b"56789", b"abcdef"],
            &marked("01234", 6, "bcdef"),
            6,
        );
        check(4, &[&[b'x'; 1000], b"end"], &marked("xx", 999, "nd"), 999);
    }

    #[test]
    fn odd_and_zero_caps_do_not_panic() {
        check(3, &[b"abcdef"], &marked("a", 3, "ef"), 3);
        check(0, &[b"abc"], &marked("", 3, ""), 3);
        check(u64::MAX, &[b"abc"], b"abc", 0);
    }

    #[test]
    fn a_full_live_channel_drops_chunks_instead_of_waiting() {
        let (sender, _receiver) = mpsc::channel(1);
        let live = LiveSink::new(Some(sender));
        live.offer(LiveStream::Stdout, b"one");
        live.offer(LiveStream::Stdout, b"two");
        live.offer(LiveStream::Stderr, b"three");
        assert_eq!(live.dropped_chunks(), 2);
    }
}
