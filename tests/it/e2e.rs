//! End to end with the shipped rule file unchanged (`for: 5m`): a SeiNode's TLS condition
//! breaks, the alert goes pending, fires, reaches Alertmanager's receiver with namespace,
//! name and reason, and resolves when fixed; a node deleted while broken never pages; and
//! 1,000 SeiNodes with 100 flipped at once report exactly those 100.
//!
//! The two 5-minute cases run in parallel (about 6 minutes for this binary).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::harness::*;
use serde_json::Value;

const ALERT: &str = "SeiNodeSidecarTLSSecretNotReady";
/// The shipped `for` plus evaluation, notification and export slack.
const PAGE_WITHIN: Duration = Duration::from_secs(5 * 60 + 90);

/// One webhook notification: (status, alert labels, annotations).
type Notification = (String, BTreeMap<String, String>, BTreeMap<String, String>);

/// The webhook notifications about the scenario's namespace.
fn notifications(s: &Scenario) -> Vec<Notification> {
    let to_map = |v: &Value| {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
            .collect::<BTreeMap<_, _>>()
    };
    s.notifications()
        .iter()
        .map(|alert| {
            (
                alert["status"].as_str().unwrap().to_owned(),
                to_map(&alert["labels"]),
                to_map(&alert["annotations"]),
            )
        })
        .collect()
}

fn alert_state(s: &Scenario, name: &str) -> Option<String> {
    s.query(&format!(
        "ALERTS{{alertname=\"{ALERT}\",namespace=\"{}\",name=\"{name}\"}}",
        s.ns()
    ))
    .first()
    .map(|(l, _)| l["alertstate"].clone())
}

#[test]
fn broken_secret_pages_and_is_held_after_the_fix_with_the_shipped_rule() {
    let s = Scenario::new("e2e-page");
    assert_eq!(
        s.alert_rule(ALERT)["duration"].as_f64(),
        Some(300.0),
        "the stack runs the shipped rule file, for: 5m"
    );
    let ns = s.ns();
    s.seinode_with("rpc-0", "True", "TLSSecretReady");
    let mut watcher = s.watcher().ready();

    let broken_at = Instant::now();
    s.set_condition("rpc-0", "False", "TLSSecretNotFound");
    eventually(Duration::from_secs(60), "alert pending", || {
        (alert_state(&s, "rpc-0").as_deref() == Some("pending")).then_some(())
    });
    assert!(notifications(&s).is_empty(), "no page while pending");
    eventually(PAGE_WITHIN, "alert firing", || {
        (alert_state(&s, "rpc-0").as_deref() == Some("firing")).then_some(())
    });
    let fired_after = broken_at.elapsed();
    assert!(
        fired_after >= Duration::from_secs(300),
        "fired after {fired_after:?}, before the 5m `for`"
    );
    let page = eventually(Duration::from_secs(60), "page at the receiver", || {
        notifications(&s)
            .into_iter()
            .find(|(status, labels, _)| status == "firing" && labels["alertname"] == ALERT)
    });
    let (_, labels, annotations) = page;
    assert_eq!(labels["namespace"], ns);
    assert_eq!(labels["name"], "rpc-0");
    assert_eq!(labels["severity"], "page");
    assert_eq!(annotations["reason"], "TLSSecretNotFound");
    assert!(
        annotations["runbook_url"].ends_with("runbook.md#tlssecretnotfound"),
        "{annotations:?}"
    );
    assert!(annotations["since"].contains("UTC"), "{annotations:?}");
    s.figure(&format!(
        "e2e, shipped rule (for: 5m): condition False -> page at the receiver after {:.1?}",
        broken_at.elapsed()
    ));

    // Fixed: the True series arrives at once, and the page is held for the rule's
    // keep_firing_for (10m: a fix looks like a gap to Prometheus, issue 19 item 6), so no
    // resolution within a minute. The resolution after the hold is in the promtool
    // timelines (tests/rules/outage.test.yaml) and the demo (tests/demo, hold shortened).
    assert_eq!(
        s.alert_rule(ALERT)["keepFiringFor"].as_f64(),
        Some(600.0),
        "the shipped rule holds a firing page 10 minutes"
    );
    let fixed_at = Instant::now();
    s.set_condition("rpc-0", "True", "TLSSecretReady");
    eventually(Duration::from_secs(30), "the True series", || {
        (s.ready("rpc-0") == Some(1.0)).then_some(())
    });
    std::thread::sleep(Duration::from_secs(60).saturating_sub(fixed_at.elapsed()));
    assert_eq!(alert_state(&s, "rpc-0").as_deref(), Some("firing"), "held");
    assert!(
        !notifications(&s)
            .iter()
            .any(|(status, labels, _)| status == "resolved" && labels["name"] == "rpc-0"),
        "no resolution during the hold"
    );
    s.figure(
        "e2e: condition True -> page held by keep_firing_for (10m), no resolution within 60 s",
    );
    assert!(watcher.terminate().success());
}

#[test]
fn deleted_while_broken_never_pages() {
    let s = Scenario::new("e2e-deleted");
    let ns = s.ns();
    s.seinode_with("gone", "True", "TLSSecretReady");
    let mut watcher = s.watcher().ready();
    let broken_at = Instant::now();
    s.set_condition("gone", "False", "TLSSecretNotFound");
    eventually(Duration::from_secs(60), "alert pending", || {
        (alert_state(&s, "gone").as_deref() == Some("pending")).then_some(())
    });

    s.delete_seinode("gone");
    let deleted_at = Instant::now();
    eventually(
        Duration::from_secs(2) * 2 + Duration::from_secs(10),
        "series stop matching",
        || {
            s.query(&format!(
                "seinode_sidecar_tls_secret_ready{{namespace=\"{ns}\"}}"
            ))
            .is_empty()
            .then_some(())
        },
    );
    s.figure(&format!(
        "e2e: SeiNode deleted while broken -> its series stop matching after {:.1?}; no page",
        deleted_at.elapsed()
    ));
    // Well past the moment the alert would have fired had the last 0 lingered.
    while broken_at.elapsed() < Duration::from_secs(6 * 60 + 30) {
        assert_ne!(
            alert_state(&s, "gone").as_deref(),
            Some("firing"),
            "a deleted node's alert fired"
        );
        std::thread::sleep(Duration::from_secs(5));
    }
    assert!(
        alert_state(&s, "gone").is_none(),
        "no alert left for the deleted node"
    );
    assert!(
        notifications(&s).is_empty(),
        "no page for a deleted node: {:?}",
        notifications(&s)
    );
    assert!(watcher.terminate().success());
}

#[test]
fn thousand_nodes_hundred_flips_report_exactly_those() {
    let s = Scenario::new("e2e-1000");
    let ns = s.ns();
    s.populate(&["create", "--namespace", ns, "--count", "1000"]);
    let mut watcher = s.watcher().ready();
    let ready_query = format!("seinode_sidecar_tls_secret_ready{{namespace=\"{ns}\"}}");
    eventually(Duration::from_secs(60), "1,000 nodes in Prometheus", || {
        (s.query(&ready_query).len() == 1000).then_some(())
    });

    let flipped: BTreeSet<String> = (0..1000).step_by(10).map(|i| format!("n-{i}")).collect();
    let names = flipped.iter().cloned().collect::<Vec<_>>().join(",");
    let stamps = s.stack().dir().join(format!("{ns}-flips.json"));
    s.populate(&[
        "flip",
        "--namespace",
        ns,
        "--names",
        &names,
        "--status",
        "False",
        "--reason",
        "TLSSecretSANsMismatch",
        "--timestamps",
        stamps.to_str().unwrap(),
    ]);

    // Poll Prometheus and note when each flipped node is first seen at 0.
    let broken_query = format!("seinode_sidecar_tls_secret_ready{{namespace=\"{ns}\"}} == 0");
    let mut seen: BTreeMap<String, f64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < flipped.len() && Instant::now() < deadline {
        let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
        for (labels, _) in s.query(&broken_query) {
            seen.entry(labels["name"].clone()).or_insert(now);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let seen_names: BTreeSet<String> = seen.keys().cloned().collect();
    assert_eq!(
        seen_names, flipped,
        "exactly the 100 flipped nodes are reported broken"
    );
    let all = s.query(&ready_query);
    assert_eq!(all.len(), 1000);
    assert_eq!(all.iter().filter(|(_, v)| *v == 0.0).count(), 100);

    let flips: BTreeMap<String, f64> =
        serde_json::from_str(&std::fs::read_to_string(&stamps).unwrap()).unwrap();
    let mut latencies: Vec<f64> = seen.iter().map(|(name, at)| at - flips[name]).collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    let report = format!("flip -> queryable in Prometheus, 100 of 1,000 SeiNodes: p50 {:.3}s p99 {:.3}s max {:.3}s (poll 100 ms)", pct(0.5), pct(0.99), latencies[latencies.len() - 1]);
    s.figure(&report);
    assert!(watcher.terminate().success());
}
