//! The integration tests, in one binary: one module per area, and the harness they share.
//!
//! Tests that need the local stack (a real API server, collector, Prometheus, Alertmanager)
//! are compiled with the `stack-tests` feature only: `tests/run` starts a stack and runs
//! `cargo test --features stack-tests`; a plain `cargo test` runs the rest.

mod harness;

mod alertmanager_inhibit;
mod api_server_lifecycle;
mod conditions;
mod crd_compat;
mod dashboard;
mod deploy;
mod docs;
mod e2e;
mod faults;
mod generated_files;
mod image;
mod odd_inputs;
mod otlp_auth;
mod otlp_tls;
mod pipeline;
mod trust;
