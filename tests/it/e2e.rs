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

/// The webhook notifications about one namespace, as (status, alert labels, annotations).
fn notifications(
    stack: &Stack,
    ns: &str,
) -> Vec<(String, BTreeMap<String, String>, BTreeMap<String, String>)> {
    let text =
        std::fs::read_to_string(stack.dir.join("webhook/notifications.jsonl")).unwrap_or_default();
    let to_map = |v: &Value| {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
            .collect::<BTreeMap<_, _>>()
    };
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let n: Value = serde_json::from_str(line).unwrap();
        for alert in n["alerts"].as_array().unwrap() {
            if alert["labels"]["namespace"] == ns {
                out.push((
                    alert["status"].as_str().unwrap().to_owned(),
                    to_map(&alert["labels"]),
                    to_map(&alert["annotations"]),
                ));
            }
        }
    }
    out
}

fn alert_state(stack: &Stack, ns: &str, name: &str) -> Option<String> {
    stack
        .query(&format!(
            "ALERTS{{alertname=\"{ALERT}\",namespace=\"{ns}\",name=\"{name}\"}}"
        ))
        .first()
        .map(|(l, _)| l["alertstate"].clone())
}

fn shipped_rule_for(stack: &Stack) -> f64 {
    let body: Value = ureq::get(format!("{}/api/v1/rules", stack.prometheus_url()))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    body["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .find(|r| r["name"] == ALERT)
        .and_then(|r| r["duration"].as_f64())
        .expect("the paging rule is loaded")
}

#[test]
#[ignore = "needs the local stack: run tests/run"]
fn broken_secret_pages_and_resolves_with_the_shipped_rule() {
    let stack = Stack::get();
    assert_eq!(
        shipped_rule_for(&stack),
        300.0,
        "the stack runs the shipped rule file, for: 5m"
    );
    let ns = stack.namespace("e2e-page");
    stack.seinode(&ns, "rpc-0", true);
    stack.set_condition(&ns, "rpc-0", "True", "TLSSecretReady");
    let mut watcher = Watcher::start(&stack, &format!("{ns}-watcher"), &["--namespace", &ns]);
    watcher.wait_ready();

    let broken_at = Instant::now();
    stack.set_condition(&ns, "rpc-0", "False", "TLSSecretNotFound");
    eventually(Duration::from_secs(60), "alert pending", || {
        (alert_state(&stack, &ns, "rpc-0").as_deref() == Some("pending")).then_some(())
    });
    assert!(
        notifications(&stack, &ns).is_empty(),
        "no page while pending"
    );
    eventually(PAGE_WITHIN, "alert firing", || {
        (alert_state(&stack, &ns, "rpc-0").as_deref() == Some("firing")).then_some(())
    });
    let fired_after = broken_at.elapsed();
    assert!(
        fired_after >= Duration::from_secs(300),
        "fired after {fired_after:?}, before the 5m `for`"
    );
    let page = eventually(Duration::from_secs(60), "page at the receiver", || {
        notifications(&stack, &ns)
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
    report_figure(
        &stack,
        &format!(
            "e2e, shipped rule (for: 5m): condition False -> page at the receiver after {:.1?}",
            broken_at.elapsed()
        ),
    );

    let fixed_at = Instant::now();
    stack.set_condition(&ns, "rpc-0", "True", "TLSSecretReady");
    eventually(Duration::from_secs(90), "resolved notification", || {
        notifications(&stack, &ns)
            .into_iter()
            .find(|(status, labels, _)| status == "resolved" && labels["name"] == "rpc-0")
            .map(|_| ())
    });
    report_figure(
        &stack,
        &format!(
            "e2e: condition True -> resolved notification after {:.1?}",
            fixed_at.elapsed()
        ),
    );
    assert!(watcher.terminate().success());
}

#[test]
#[ignore = "needs the local stack: run tests/run"]
fn deleted_while_broken_never_pages() {
    let stack = Stack::get();
    let ns = stack.namespace("e2e-deleted");
    stack.seinode(&ns, "gone", true);
    stack.set_condition(&ns, "gone", "True", "TLSSecretReady");
    let mut watcher = Watcher::start(&stack, &format!("{ns}-watcher"), &["--namespace", &ns]);
    watcher.wait_ready();
    let broken_at = Instant::now();
    stack.set_condition(&ns, "gone", "False", "TLSSecretNotFound");
    eventually(Duration::from_secs(60), "alert pending", || {
        (alert_state(&stack, &ns, "gone").as_deref() == Some("pending")).then_some(())
    });

    stack.delete_seinode(&ns, "gone");
    let deleted_at = Instant::now();
    eventually(
        Duration::from_secs(2) * 2 + Duration::from_secs(10),
        "series stop matching",
        || {
            stack
                .query(&format!(
                    "seinode_sidecar_tls_secret_ready{{namespace=\"{ns}\"}}"
                ))
                .is_empty()
                .then_some(())
        },
    );
    report_figure(
        &stack,
        &format!(
            "e2e: SeiNode deleted while broken -> its series stop matching after {:.1?}; no page",
            deleted_at.elapsed()
        ),
    );
    // Well past the moment the alert would have fired had the last 0 lingered.
    while broken_at.elapsed() < Duration::from_secs(6 * 60 + 30) {
        assert_ne!(
            alert_state(&stack, &ns, "gone").as_deref(),
            Some("firing"),
            "a deleted node's alert fired"
        );
        std::thread::sleep(Duration::from_secs(5));
    }
    assert!(
        alert_state(&stack, &ns, "gone").is_none(),
        "no alert left for the deleted node"
    );
    assert!(
        notifications(&stack, &ns).is_empty(),
        "no page for a deleted node: {:?}",
        notifications(&stack, &ns)
    );
    assert!(watcher.terminate().success());
}

#[test]
#[ignore = "needs the local stack: run tests/run"]
fn thousand_nodes_hundred_flips_report_exactly_those() {
    let stack = Stack::get();
    let ns = stack.namespace("e2e-1000");
    let populate = |args: &[&str]| {
        let status = std::process::Command::new("python3")
            .arg(repo_path("tests/bench/populate.py"))
            .args(args)
            .env("SEINODE_STACK_DIR", &stack.dir)
            .status()
            .unwrap();
        assert!(status.success(), "populate.py {args:?}");
    };
    populate(&["create", "--namespace", &ns, "--count", "1000"]);
    let mut watcher = Watcher::start(&stack, &format!("{ns}-watcher"), &["--namespace", &ns]);
    watcher.wait_ready();
    let ready_query = format!("seinode_sidecar_tls_secret_ready{{namespace=\"{ns}\"}}");
    eventually(Duration::from_secs(60), "1,000 nodes in Prometheus", || {
        (stack.query(&ready_query).len() == 1000).then_some(())
    });

    let flipped: BTreeSet<String> = (0..1000).step_by(10).map(|i| format!("n-{i}")).collect();
    let names = flipped.iter().cloned().collect::<Vec<_>>().join(",");
    let stamps = stack.dir.join(format!("{ns}-flips.json"));
    populate(&[
        "flip",
        "--namespace",
        &ns,
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
        for (labels, _) in stack.query(&broken_query) {
            seen.entry(labels["name"].clone()).or_insert(now);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let seen_names: BTreeSet<String> = seen.keys().cloned().collect();
    assert_eq!(
        seen_names, flipped,
        "exactly the 100 flipped nodes are reported broken"
    );
    let all = stack.query(&ready_query);
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
    report_figure(&stack, &report);
    assert!(watcher.terminate().success());
}
