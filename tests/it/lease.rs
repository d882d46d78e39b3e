//! A Lease cannot be turned against the watcher (issue 19, item 7), on the local stack's
//! real API server:
//!
//! - a Lease written by someone else with `leaseDurationSeconds: 3600` and
//!   `leaseTransitions: 2147483647`, whose holder never renews, is taken over within the
//!   60 s bound (with a warning), and the transition count stays at its maximum (the API
//!   server accepts it; an overflow to a negative count would be refused for ever);
//! - a second process with the same identity does not lead beside the holder: it stands by,
//!   says so in one line and in `sei_condition_watcher_duplicate_identity`, and takes over
//!   when the holder hands the Lease over on SIGTERM.

use std::time::{Duration, Instant};

use crate::harness::*;
use serde_json::Value;

/// The longest lease duration the watcher honours (`MAX_LEASE_DURATION` in src/lease.rs).
const MAX_LEASE: Duration = Duration::from_secs(60);
/// The annotation that carries the holding process' token (`PROCESS_ANNOTATION`).
const PROCESS_ANNOTATION: &str = "sei-condition-watcher.sei.io/holder-process";

fn lease(s: &Scenario, name: &str) -> Value {
    serde_json::from_str(&s.kubectl_ok(&["-n", s.ns(), "get", "lease", name, "-o", "json"]))
        .expect("kubectl prints the Lease as JSON")
}

fn holder(lease: &Value) -> Option<&str> {
    lease["spec"]["holderIdentity"]
        .as_str()
        .filter(|h| !h.is_empty())
}

fn process(lease: &Value) -> Option<&str> {
    lease["metadata"]["annotations"][PROCESS_ANNOTATION].as_str()
}

fn replica(s: &Scenario, id: &str, lease: &str) -> Watcher {
    s.watcher()
        .instance(id)
        .export_interval(Some("2s"))
        .args([
            "--leader-elect",
            "--leader-election-namespace",
            s.ns(),
            "--leader-election-id",
            lease,
        ])
        .start()
}

#[test]
fn a_lease_written_by_someone_else_cannot_stop_the_watcher() {
    let s = Scenario::new("lease-trust");
    let name = "written-by-someone-else";
    let now = now_rfc3339().replace('Z', ".000000Z");
    s.apply(&format!(
        r#"{{"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {{"name": "{name}", "namespace": "{ns}"}},
            "spec": {{"holderIdentity": "a-writer-that-died", "leaseDurationSeconds": 3600,
                      "leaseTransitions": 2147483647, "acquireTime": "{now}", "renewTime": "{now}"}}}}"#,
        ns = s.ns(),
    ));
    let started = Instant::now();
    let a = replica(&s, "replica-a", name);
    let took = eventually(
        MAX_LEASE + Duration::from_secs(40),
        "the watcher takes the Lease within the bound",
        || (holder(&lease(&s, name)) == Some("replica-a")).then(|| started.elapsed()),
    );
    assert!(
        took >= MAX_LEASE,
        "took over after {took:?}: before the bound, so not by waiting it out"
    );
    assert!(
        a.log_text().contains("longer than 60s"),
        "no warning about the lease duration:\n{}",
        a.log_text()
    );
    let held = lease(&s, name);
    assert_eq!(held["spec"]["leaseTransitions"], 2147483647, "{held}");
    assert_eq!(held["spec"]["leaseDurationSeconds"], 15, "{held}");
    let token = process(&held)
        .expect("the holder's process token")
        .to_owned();
    s.figure(&format!(
        "lease written with leaseDurationSeconds 3600 by a holder that never renews: taken over after {:.1} s (bound 60 s), leaseTransitions stays 2147483647",
        took.as_secs_f64()
    ));

    // A second process with the same identity stands by and says so.
    let mut twin = replica(&s, "replica-a", name);
    eventually(
        Duration::from_secs(30),
        "the twin reports the other process",
        || {
            twin.log_text()
                .contains("another process with this replica's identity holds and renews the lease")
                .then_some(())
        },
    );
    eventually(
        Duration::from_secs(30),
        "sei_condition_watcher_duplicate_identity in Prometheus",
        || {
            (s.query_one(
                "max_over_time(sei_condition_watcher_duplicate_identity{instance=\"replica-a\"}[1m])",
            ) == Some(1.0))
            .then_some(())
        },
    );
    let still = lease(&s, name);
    assert_eq!(
        process(&still),
        Some(token.as_str()),
        "the first process keeps the Lease: {still}"
    );
    assert!(
        !twin.log_text().contains("acquired the lease"),
        "the twin led beside the holder:\n{}",
        twin.log_text()
    );

    // The holder hands over on SIGTERM: the twin is its successor, with its own token.
    let mut a = a;
    let (status, _) = a.sigterm(Duration::from_secs(25));
    assert!(status.success(), "{status:?}\n{}", a.log_text());
    assert!(
        a.log_text().contains("handed the lease over"),
        "{}",
        a.log_text()
    );
    let after = eventually(Duration::from_secs(10), "the twin leads", || {
        let l = lease(&s, name);
        (holder(&l) == Some("replica-a") && process(&l).is_some_and(|p| p != token)).then_some(l)
    });
    assert_eq!(after["spec"]["leaseTransitions"], 2147483647, "{after}");
    assert!(twin.log_text().contains("acquired the lease"));
    twin.terminate();
}
