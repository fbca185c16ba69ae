//! The tutti agent: the small daemon on every endpoint.
//!
//! It connects outbound to NATS, takes the commands addressed to it (exactly once, in
//! order, including those sent while it was offline), verifies their signatures, runs them,
//! and reports every result through a durable outbox.
//!
//! Module map: `agent` wires everything and runs the main loop; `intake` reads commands
//! into the local queue; `runner` applies the gates (and the machine's `allowlist`) and executes through `exec`; `outbox`
//! publishes results and events; `state` is the durable local database behind all three;
//! `fleet` and `fleet_sync` follow groups, revocations, freeze and layered configuration
//! from KV replicas; `heartbeat` reports liveness, `inventory` what the machine is and has, `rpc` answers
//! pings, log tails and inventory requests; `identity` and `config` are what the
//! agent is told at enrollment and by its config file; `install` makes the agent a
//! service of the machine's service manager.

pub mod agent;
pub mod allowlist;
pub mod config;
pub mod enroll;
pub mod exec;
pub mod fleet;
pub mod fleet_sync;
pub mod heartbeat;
pub mod identity;
pub mod install;
pub mod intake;
pub mod inventory;
pub mod log_ring;
pub mod outbox;
pub mod report;
pub mod rpc;
pub mod runner;
pub mod state;
pub mod trust;

pub use agent::{AgentOptions, run};
pub use config::LocalConfig;
pub use identity::Identity;
