//! tutti's wire protocol: ids, subjects, KV keys, messages, command signing and the
//! resource catalog.
//!
//! Everything that crosses the bus is defined here, and nothing here talks to the bus:
//! `tutti-bus` turns the [`catalog`] into JetStream resources, the agent and the server
//! exchange the message types through it. Changing a type in this crate is a protocol
//! change and is written down in `docs/protocol.md`.
//!
//! Wire rules, enforced by the tests of each module: readers ignore unknown fields,
//! fields added later carry `#[serde(default)]`, and enums that may grow decode an
//! unknown variant into a fallback instead of failing.

pub mod audit;
pub mod catalog;
pub mod command;
pub mod config;
pub mod digest;
pub mod enroll;
pub mod event;
pub mod fleet;
pub mod heartbeat;
pub mod ids;
pub mod inventory;
pub mod kv_keys;
pub mod result;
pub mod role;
pub mod sign;
pub mod signed_value;
pub mod subjects;
pub mod trust;

pub use ids::{AgentId, CommandId, GroupName, IdError, IdKind, JobId, KeyId, ResultId, RunId};
