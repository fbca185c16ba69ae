//! Decoding a KV stream message delivered by a consumer into an [`Entry`] plus the delivery
//! metadata the watch logic needs (stream and consumer sequences, pending count).
//!
//! The operation is read from the `KV-Operation` header, or from `Nats-Marker-Reason` on
//! server-written markers (NATS ≥ 2.11 TTL markers), as the KV protocol defines them.

use std::str::FromStr;

use async_nats::jetstream::kv::Operation as NatsOperation;

use crate::entry::{Entry, Operation};
use crate::error::KvError;

/// One delivered KV message.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub(crate) entry: Entry,
    pub(crate) consumer_sequence: u64,
    pub(crate) pending: u64,
}

pub(crate) fn decode(
    subject_prefix: &str,
    message: &async_nats::jetstream::Message,
) -> Result<Delivery, KvError> {
    let info = message
        .info()
        .map_err(|err| KvError::other("decode delivery", err.to_string()))?;
    let key = message
        .subject
        .strip_prefix(subject_prefix)
        .ok_or_else(|| {
            KvError::other(
                "decode delivery",
                format!("subject {} outside the bucket", message.subject),
            )
        })?;
    let entry = Entry {
        key: key.to_string(),
        value: message.payload.clone(),
        revision: info.stream_sequence,
        operation: operation(message.headers.as_ref()),
    };
    Ok(Delivery {
        entry,
        consumer_sequence: info.consumer_sequence,
        pending: info.pending,
    })
}

fn operation(headers: Option<&async_nats::HeaderMap>) -> Operation {
    let Some(headers) = headers else {
        return Operation::Put;
    };
    if let Some(value) = headers.get("KV-Operation") {
        // An unknown operation is treated as a put, as async-nats and the nats CLI do.
        return NatsOperation::from_str(value.as_str())
            .map(Operation::from_nats)
            .unwrap_or(Operation::Put);
    }
    match headers
        .get("Nats-Marker-Reason")
        .map(|value| value.as_str())
    {
        Some("MaxAge" | "Purge") => Operation::Purge,
        Some("Remove") => Operation::Delete,
        _ => Operation::Put,
    }
}
