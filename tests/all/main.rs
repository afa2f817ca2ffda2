//! Sluice's end-to-end suite: one test binary that starts the real `sluice`
//! binary on port 0 with a real data directory and talks to it over real
//! HTTP, as wasmtime's `tests/all` and mini-redis's `tests/server.rs` do.

mod support;

#[path = "../../guest-examples/guests.rs"]
mod guests;

mod cli;
mod config;
mod crash;
mod dedup;
mod groups;
mod http_api;
mod http_auth;
mod invariants;
mod mqtt;
mod mqtt_auth;
mod mqtt_client;
mod mqtt_transports;
mod paho;
mod pipelines;
mod retention;
mod tenants;
