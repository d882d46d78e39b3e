//! What the integration tests share: the repository's files, polling, the watcher as a real
//! process, and (with the `stack-tests` feature) the local stack and the [`Scenario`] every
//! stack test runs in.
//!
//! The stack's ports and URLs, free ports, Prometheus and Alertmanager queries and the
//! simple SeiNode fixture are written once, in `tests/harness/seistack.py`, for the scripts
//! and these tests alike; [`seistack`] runs its command line.
//!
//! Stack tests need a running stack: `tests/run` starts one, or `tests/stack/stack up` by
//! hand, then `cargo test --features stack-tests`. Each test works in its own namespace and
//! runs its own watcher restricted to it, so they run in parallel, except those that take
//! the stack to themselves ([`Scenario::alone`]).

#[cfg(feature = "stack-tests")]
mod collector;
#[cfg(feature = "stack-tests")]
mod own_stack;
#[cfg(feature = "stack-tests")]
mod scenario;
pub mod seistack;
#[cfg(feature = "stack-tests")]
mod stack;
mod watcher;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

#[cfg(feature = "stack-tests")]
pub use collector::{Certificate, OwnCollector};
#[cfg(feature = "stack-tests")]
pub use own_stack::OwnStack;
#[cfg(feature = "stack-tests")]
pub use scenario::{beside_the_stack, failed_task, fixture, Scenario, EXPORT_INTERVAL};
pub use seistack::free_port;
#[cfg(feature = "stack-tests")]
pub use stack::Stack;
pub use watcher::{rss_kib, run_watcher, Watcher, BIN};

/// Every rule of a `/api/v1/rules` answer's `data` (Prometheus, Thanos Ruler), group by
/// group, as it reports them (`name`, `query`, `duration`, `keepFiringFor`, `alerts`, ...).
#[cfg(feature = "stack-tests")]
pub fn loaded_rules(data: &Value) -> Vec<Value> {
    data["groups"]
        .as_array()
        .expect("rule groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// The rule `name` of a `/api/v1/rules` answer's `data`.
#[cfg(feature = "stack-tests")]
pub fn loaded_rule(data: &Value, name: &str) -> Value {
    loaded_rules(data)
        .into_iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no rule {name} is loaded"))
}

/// A path in the repository.
pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A file of the repository as text.
pub fn read(rel: &str) -> String {
    let path = repo_path(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A YAML (or JSON) file of the repository, parsed.
pub fn yaml_file(rel: &str) -> Value {
    serde_yaml_ng::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every YAML document of a file of the repository, parsed.
pub fn yaml_docs(rel: &str) -> Vec<Value> {
    let text = read(rel);
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{rel}: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

/// Polls `f` every 200 ms until it returns Some, or panics after `timeout` with `what`.
pub fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Polls `f` every `every` until it returns Some, for at most `limit`; returns the value
/// and the time it took, or None at the limit (for measuring, where `eventually` panics).
#[cfg(feature = "stack-tests")]
pub fn measure<T>(
    limit: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<(T, Duration)> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some((v, start.elapsed()));
        }
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// The largest gap between consecutive `times`.
#[cfg(feature = "stack-tests")]
pub fn largest_gap(times: &[f64]) -> f64 {
    times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}

/// Now, rounded to the second, as Kubernetes writes times (RFC 3339).
#[cfg(feature = "stack-tests")]
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap()
        .to_string()
}

/// An RFC 3339 time as Unix seconds (with milliseconds).
#[cfg(feature = "stack-tests")]
pub fn unix(t: &str) -> f64 {
    let t: jiff::Timestamp = t.parse().unwrap_or_else(|e| panic!("{t:?}: {e}"));
    t.as_millisecond() as f64 / 1000.0
}

/// Now as Unix seconds (with milliseconds).
#[cfg(feature = "stack-tests")]
pub fn unix_now() -> f64 {
    jiff::Timestamp::now().as_millisecond() as f64 / 1000.0
}
