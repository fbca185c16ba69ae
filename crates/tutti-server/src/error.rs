//! The server's one error type, [`Error`], with the variants an HTTP client can act on.
//!
//! The run engine, enrollment and every handler return it; `api/error.rs` turns it into a
//! response. Store, KV and bus errors are converted here, once: `NotFound` and `Conflict`
//! keep their meaning, an unreachable broker is `Unavailable` (503, try again), and
//! anything else is `Internal`, which is logged in full and answered with a bare 500 so
//! internals never leak to a client.

use tutti_bus::BusError;
use tutti_kv::KvError;
use tutti_store::StoreError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is malformed or breaks a rule; the message says where and why.
    #[error("{0}")]
    BadRequest(String),
    /// The request is well-formed but the credentials in it are not accepted.
    #[error("{0}")]
    Unauthorized(String),
    /// The caller is known but its role (or state, e.g. a password to change) does not
    /// allow this action.
    #[error("{0}")]
    Forbidden(String),
    /// Too many failed attempts; the message says when to try again.
    #[error("{message}")]
    TooManyRequests {
        /// What to tell the client.
        message: String,
        /// Seconds until another attempt is considered.
        retry_after_secs: u64,
    },
    /// The addressed thing does not exist, e.g. `run 01hw… not found`.
    #[error("{0}")]
    NotFound(String),
    /// The write contradicts what is stored.
    #[error("{0}")]
    Conflict(String),
    /// The route exists, but not for this method; `allow` lists the methods it has.
    #[error("{method} is not allowed here; use {allow}")]
    MethodNotAllowed {
        /// The method of the request.
        method: String,
        /// The route's methods, as the `Allow` header lists them.
        allow: String,
    },
    /// The body is larger than the limit.
    #[error("{0}")]
    TooLarge(String),
    /// The body's media type is not one this route reads.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The broker (or another dependency) is out of reach; the client may retry.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or a broken dependency; logged, never shown to the client.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

/// Results of the server's own operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A `BadRequest` from anything printable.
    pub fn bad_request(message: impl Into<String>) -> Error {
        Error::BadRequest(message.into())
    }

    /// An `Internal` error with context; the error's own sources stay in the chain, which
    /// the response logs whole (`{:#}`) and never sends to the client.
    pub fn internal(context: &str, err: impl Into<anyhow::Error>) -> Error {
        Error::Internal(err.into().context(context.to_string()))
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => Error::NotFound(format!("{what} not found")),
            StoreError::Conflict(what) => Error::Conflict(what),
            other => Error::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<BusError> for Error {
    fn from(err: BusError) -> Self {
        match err {
            BusError::Unavailable(_) | BusError::Timeout { .. } => {
                Error::Unavailable(format!("the broker is unavailable: {err}"))
            }
            other => Error::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<KvError> for Error {
    fn from(err: KvError) -> Self {
        match err {
            KvError::NotConnected | KvError::Timeout { .. } => {
                Error::Unavailable(format!("the broker is unavailable: {err}"))
            }
            other => Error::Internal(anyhow::Error::new(other)),
        }
    }
}
