//! The integration tests, in one binary: one module per area, and the harness they share.
//!
//! Tests that need the local stack (a real API server, collector, Prometheus, Alertmanager)
//! are compiled with the `stack-tests` feature only: `tests/run` starts a stack and runs
//! `cargo test --features stack-tests`; a plain `cargo test` runs the rest.

mod harness;

#[cfg(feature = "stack-tests")]
// Named to sort first: libtest starts tests in the order of their names, and this one lasts
// about 9.5 minutes on a stack of its own (it holds no share of the common stack, so the
// tests that take that stack alone do not wait for it): started first, it runs beside the
// rest instead of after them.
#[path = "outage.rs"]
mod a_long_outage;
#[cfg(feature = "stack-tests")]
mod alertmanager_inhibit;
#[cfg(feature = "stack-tests")]
mod api_server_lifecycle;
#[cfg(feature = "stack-tests")]
mod check;
#[cfg(feature = "stack-tests")]
mod cluster_identity;
#[cfg(feature = "stack-tests")]
mod conditions;
mod crd_compat;
mod dashboard;
mod deploy;
mod docs;
#[cfg(feature = "stack-tests")]
mod e2e;
#[cfg(feature = "stack-tests")]
mod faults;
#[cfg(feature = "stack-tests")]
mod fleet;
mod generated_files;
#[cfg(feature = "stack-tests")]
mod helm;
#[cfg(feature = "stack-tests")]
mod image;
#[cfg(feature = "stack-tests")]
mod labels_filters;
#[cfg(feature = "stack-tests")]
mod lease;
mod odd_inputs;
mod otlp_auth;
#[cfg(feature = "stack-tests")]
mod otlp_http;
mod otlp_tls;
#[cfg(feature = "stack-tests")]
mod pipeline;
#[cfg(feature = "stack-tests")]
mod prerequisites;
#[cfg(feature = "stack-tests")]
mod trust;
