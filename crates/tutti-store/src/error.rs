//! The store's one error type, [`StoreError`], with the variants callers branch on.
//!
//! The server maps `NotFound` to 404 and `Conflict` to 409; everything else is `Other`,
//! which it logs and answers with 500. Backend errors are converted here and nowhere else,
//! so no caller ever matches on a `rusqlite` error.

use std::fmt;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named thing does not exist, e.g. `run 01hw…`.
    #[error("{0} not found")]
    NotFound(String),
    /// The write contradicts what is stored, e.g. a run id that already exists.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Anything else: I/O, a corrupt row, a failed migration. Not actionable by a client.
    #[error("storage error: {0}")]
    Other(#[source] BackendError),
}

/// The cause of [`StoreError::Other`], with its message and the backend's own error.
#[derive(Debug)]
pub struct BackendError {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|err| err as &(dyn std::error::Error + 'static))
    }
}

impl StoreError {
    /// An `Other` error carrying only a message.
    pub fn other(message: impl Into<String>) -> Self {
        StoreError::Other(BackendError {
            message: message.into(),
            source: None,
        })
    }

    /// An `Other` error with a message and its cause.
    pub fn other_with(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Other(BackendError {
            message: message.into(),
            source: Some(Box::new(source)),
        })
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        let message = err.to_string();
        StoreError::other_with(format!("sqlite: {message}"), err)
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(err: serde_json::Error) -> Self {
        let message = err.to_string();
        StoreError::other_with(format!("stored JSON does not decode: {message}"), err)
    }
}

/// Results of store calls.
pub type StoreResult<T> = Result<T, StoreError>;
