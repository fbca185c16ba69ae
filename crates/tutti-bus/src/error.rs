//! The bus's own error type, and the one place where async-nats error kinds are matched.
//!
//! async-nats has a distinct error kind enum per operation. Callers of tutti-bus branch on
//! a few outcomes only (the broker is unreachable, the request timed out, the thing does
//! not exist, JetStream said no with a code), so every conversion lands in [`BusError`]
//! here and nowhere else. Strings are never parsed where a kind exists.

use std::time::Duration;

use async_nats::jetstream::context::{
    CreateStreamError, CreateStreamErrorKind, GetStreamError, GetStreamErrorKind, PublishError,
    PublishErrorKind, RequestError, RequestErrorKind,
};

/// JetStream error code: not enough storage to reserve a stream's `max_bytes`.
pub const JS_STORAGE_RESOURCES_EXCEEDED: u64 = 10047;
/// JetStream error code: the stream does not exist.
pub const JS_STREAM_NOT_FOUND: u64 = 10059;
/// JetStream error code: a stream with this name exists with a different configuration.
pub const JS_STREAM_NAME_IN_USE: u64 = 10058;

/// What went wrong talking to the broker.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// No connection to the broker, or JetStream is not enabled on it.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// A request was not answered within its bound.
    #[error("{what} timed out after {after:?}")]
    Timeout { what: String, after: Duration },
    /// The stream, bucket or object does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// JetStream refused the request with an API error code.
    #[error("jetstream error {code}: {description}")]
    JetStream { code: u64, description: String },
    /// Anything else (invalid names, malformed responses, I/O).
    #[error("{0}")]
    Other(String),
}

impl BusError {
    /// The JetStream API error code, if the broker answered with one.
    pub fn jetstream_code(&self) -> Option<u64> {
        match self {
            BusError::JetStream { code, .. } => Some(*code),
            _ => None,
        }
    }

    fn from_js(error: &async_nats::jetstream::Error) -> BusError {
        let code = error.error_code().0;
        if code == JS_STREAM_NOT_FOUND {
            return BusError::NotFound(error.to_string());
        }
        BusError::JetStream {
            code,
            description: error.to_string(),
        }
    }
}

impl From<CreateStreamError> for BusError {
    fn from(error: CreateStreamError) -> Self {
        match error.kind() {
            CreateStreamErrorKind::JetStream(js) => BusError::from_js(&js),
            CreateStreamErrorKind::NotFound => BusError::NotFound("stream".to_string()),
            CreateStreamErrorKind::JetStreamUnavailable => {
                BusError::Unavailable("no JetStream responders".to_string())
            }
            CreateStreamErrorKind::TimedOut => BusError::Timeout {
                what: "stream request".to_string(),
                after: Duration::ZERO,
            },
            _ => BusError::Other(error.to_string()),
        }
    }
}

impl From<GetStreamError> for BusError {
    fn from(error: GetStreamError) -> Self {
        match error.kind() {
            GetStreamErrorKind::JetStream(js) => BusError::from_js(&js),
            // A failed request (no responders, timeout, broken connection) means the broker
            // or its JetStream is out of reach; async-nats does not expose finer kinds here.
            GetStreamErrorKind::Request => BusError::Unavailable(error.to_string()),
            _ => BusError::Other(error.to_string()),
        }
    }
}

impl From<RequestError> for BusError {
    fn from(error: RequestError) -> Self {
        match error.kind() {
            RequestErrorKind::NoResponders => {
                BusError::Unavailable("no JetStream responders".to_string())
            }
            RequestErrorKind::TimedOut => BusError::Timeout {
                what: "request".to_string(),
                after: Duration::ZERO,
            },
            _ => BusError::Other(error.to_string()),
        }
    }
}

impl From<PublishError> for BusError {
    fn from(error: PublishError) -> Self {
        match error.kind() {
            PublishErrorKind::TimedOut => BusError::Timeout {
                what: "publish ack".to_string(),
                after: Duration::ZERO,
            },
            PublishErrorKind::StreamNotFound => BusError::NotFound("stream for subject".into()),
            PublishErrorKind::BrokenPipe => BusError::Unavailable(error.to_string()),
            _ => BusError::Other(error.to_string()),
        }
    }
}

/// An error with its causes, `outer: cause: root`. Client libraries (reqwest, rustls) keep
/// why a connection failed (an unknown CA, a refused port) in the source chain, not in the
/// top-level message an operator would otherwise see.
pub fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Awaits `future` for at most `after`; `what` names the operation in the error.
pub async fn bounded<T, E>(
    what: &str,
    after: Duration,
    future: impl Future<Output = Result<T, E>>,
) -> Result<T, BusError>
where
    E: Into<BusError>,
{
    match tokio::time::timeout(after, future).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(BusError::Timeout {
            what: what.to_string(),
            after,
        }),
    }
}

impl From<async_nats::ConnectError> for BusError {
    fn from(error: async_nats::ConnectError) -> Self {
        use async_nats::ConnectErrorKind;
        match error.kind() {
            ConnectErrorKind::TimedOut | ConnectErrorKind::Io | ConnectErrorKind::Dns => {
                BusError::Unavailable(error.to_string())
            }
            _ => BusError::Other(error.to_string()),
        }
    }
}
