//! `KvError`: the few failures callers of this crate branch on.
//!
//! Every async-nats error kind is matched here once and turned into one of these variants;
//! nothing in the crate inspects error strings. Whether a failure means "not connected" is
//! decided from the client's connection state, which async-nats exposes as a value.

use std::time::Duration;

use async_nats::connection::State;

/// The error type of every network operation in this crate.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The client has no connection to the broker right now (it keeps reconnecting).
    #[error("not connected to the broker")]
    NotConnected,
    /// The broker did not answer within the configured timeout.
    #[error("{operation} timed out after {after:?}")]
    Timeout {
        /// What was being done, e.g. `"put"`.
        operation: &'static str,
        /// The timeout that elapsed.
        after: Duration,
    },
    /// `create` found a live value under the key.
    #[error("key already exists")]
    AlreadyExists,
    /// A compare-and-set found another revision than the one expected.
    #[error("revision mismatch")]
    RevisionMismatch,
    /// The stream no longer holds every update after `cursor`: retention removed some before
    /// they were delivered. The local copy must be resynchronised.
    #[error("cursor {cursor} expired: the stream now starts at sequence {first_sequence}")]
    CursorExpired {
        /// The last stream sequence known to be applied.
        cursor: u64,
        /// The stream's first retained sequence when the expiry was seen.
        first_sequence: u64,
    },
    /// A key or prefix that NATS would reject or misread as a wildcard.
    #[error("invalid key or prefix {0:?}")]
    InvalidKey(String),
    /// Anything else; the source says what.
    #[error("{operation} failed: {source}")]
    Other {
        /// What was being done, e.g. `"watch"`.
        operation: &'static str,
        /// The underlying error.
        source: async_nats::Error,
    },
}

impl KvError {
    /// Whether retrying the same call later may succeed (broker unreachable or slow).
    pub fn is_transient(&self) -> bool {
        matches!(self, KvError::NotConnected | KvError::Timeout { .. })
    }

    pub(crate) fn other(operation: &'static str, source: impl Into<async_nats::Error>) -> KvError {
        KvError::Other {
            operation,
            source: source.into(),
        }
    }
}

/// Turns "the broker did not answer" into `NotConnected` or `Timeout` from the connection
/// state, so callers can tell an outage from a slow broker.
#[derive(Debug, Clone)]
pub(crate) struct FailureContext {
    pub(crate) client: async_nats::Client,
    pub(crate) timeout: Duration,
}

impl FailureContext {
    pub(crate) fn no_answer(&self, operation: &'static str) -> KvError {
        if self.client.connection_state() == State::Connected {
            KvError::Timeout {
                operation,
                after: self.timeout,
            }
        } else {
            KvError::NotConnected
        }
    }

    /// An error whose kind is not one callers branch on; while disconnected it is reported as
    /// `NotConnected`, because that is what the caller can act on.
    pub(crate) fn other(
        &self,
        operation: &'static str,
        source: impl Into<async_nats::Error>,
    ) -> KvError {
        if self.client.connection_state() == State::Connected {
            KvError::other(operation, source)
        } else {
            KvError::NotConnected
        }
    }

    /// Runs `future` bounded by the configured timeout.
    pub(crate) async fn bounded<T, F>(
        &self,
        operation: &'static str,
        future: F,
    ) -> Result<T, KvError>
    where
        F: Future<Output = Result<T, KvError>>,
    {
        match tokio::time::timeout(self.timeout, future).await {
            Ok(result) => result,
            Err(_elapsed) => Err(self.no_answer(operation)),
        }
    }
}
