//! tutti's NATS plumbing: connect from a config, bootstrap and reconcile the JetStream
//! resources of the catalog, map async-nats errors to our own few variants, and find or
//! provision the `nats-server` binary.
//!
//! Neighbours: `tutti-proto` defines the catalog and subjects this crate turns into live
//! resources; `tutti-kv`, the agent and the server build on [`Bus`].

pub mod agent_permissions;
pub mod auth;
pub mod config;
pub mod connect;
pub mod error;
pub mod nats_server;
pub mod resources;
pub mod server_permissions;

pub use config::{Auth, BusConfig, TlsConfig};
pub use connect::{Bus, connect};
pub use error::{BusError, bounded};
pub use resources::{BootstrapError, Outcome, ResourceOutcome, ensure_resources};
