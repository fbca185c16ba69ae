//! The tutti server: the control plane between operators and the fleet.
//!
//! It turns the bus into tables (`projector/`: results, events, inventory, audit and
//! heartbeats into `tutti-store`), operator requests into signed commands (`engine/`: runs,
//! kills, revocations, expiry), and serves both over an HTTP API (`api/`, axum, one file
//! per route group). `auth/` signs operators in and holds the one access table every
//! route is checked against; `actor.rs` is who a request comes from. `schedule/` parses
//! schedule manifests, elects one scheduler among servers and fires or reconciles
//! schedules; `engine/rollout/` releases runs in waves. `enroll.rs` and
//! `tokens.rs` let agents join; `fleet_kv.rs` writes the KV buckets agents follow;
//! `audit.rs` publishes an audit record for every change; `keys.rs` owns the
//! command-signing key. `app.rs` holds the shared live resources and `server.rs` starts
//! and stops everything. `tls.rs` serves the API over HTTPS with a reloadable certificate;
//! `pki.rs` is a local CA that issues certificates for development and tests.
//! `config/` is the config file and its checks; `broker_identity.rs` gives each agent its
//! own broker user; `public_url.rs` is the URL written into install commands. `http.rs`
//! assembles the API's and the dashboard's (`web/`) routers behind the guard; `views/`
//! holds what both read.
//!
//! Modules other crates or the integration tests use are `pub`; the rest are `pub(crate)`.
//!
//! Libraries never read the environment or signals: [`run`] takes a parsed
//! [`ServerConfig`], a bound listener and a shutdown future. The crate README records the
//! design decisions.

pub(crate) mod actor;
pub mod api;
pub mod app;
pub(crate) mod audit;
pub mod auth;
pub mod broker_identity;
pub mod config;
pub(crate) mod engine;
pub(crate) mod enroll;
pub mod error;
pub(crate) mod fleet_kv;
pub(crate) mod http;
pub(crate) mod keyring;
pub(crate) mod keys;
pub(crate) mod manifest;
pub(crate) mod metrics;
pub mod pki;
pub(crate) mod projector;
pub(crate) mod public_url;
pub mod schedule;
pub mod server;
pub mod tls;
pub mod tokens;
pub(crate) mod views;
pub(crate) mod web;

pub use app::App;
pub use config::ServerConfig;
pub use error::Error;
pub use server::{Server, run};
pub use tokens::{CreatedToken, TokenRequest};
