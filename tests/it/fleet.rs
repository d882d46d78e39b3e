//! Three clusters, one distributed store: `tests/stack/stack fleet up` starts three clusters
//! (an etcd and API server each) with a collector each, remote-writing into Thanos Receive
//! (a router in front of a hashring of three receivers, replication factor 2), Thanos Query
//! over the receivers, and Thanos Ruler evaluating the shipped rules (every `for:` cut to
//! 10 s, as `stack up --rule-for` does) against Thanos Query and sending to the fleet's
//! Alertmanager and webhook receiver. One watcher per cluster, each with its
//! `--cluster-name`, started here. Its own fleet, in its own directory: it shares nothing
//! with the stack the other tests use but the binaries.
//!
//! One scenario, in the order that lets its waits overlap:
//!   - every series arrives once per cluster through the deduplicating query, and twice
//!     (replication factor 2) without deduplication; the ruler evaluates every shipped rule
//!     without error;
//!   - a receiver is killed (SIGKILL); while it is dead: a condition flip in one cluster
//!     is queryable as its new pair with the old pair gone (staleness markers through the
//!     replicated path), a deleted object's series are gone; that cluster's watcher is
//!     killed; the same validator breaks in one cluster in `one`, in two in `both`: exactly
//!     one page, with its `cluster`, and two pages;
//!   - the receiver restarts: the series have no gap and no sample twice;
//!   - the ruler restarts while a third validator breaks: that page arrives, no page is
//!     sent twice, none resolves;
//!   - the killed watcher's cluster, and only it, gets SeiConditionWatcherAbsent.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster_identity::{break_signing_key, create_validator, kubectl_ok, patch_status};
use crate::harness::*;

const PAGE: &str = "SeiNodeSigningKeyNotReady";
const ABSENT: &str = "SeiConditionWatcherAbsent";
/// Every `for:` and `keep_firing_for:` of the ruler's copy of the rules.
const RULE_FOR: &str = "10s";
/// From a break to the page: an export (2 s), two evaluations (5 s each), `for` (10 s),
/// Alertmanager's group_wait (1 s), with room for a loaded machine.
const PAGE_WITHIN: Duration = Duration::from_secs(90);

/// A fleet in a fresh directory (`tests/stack/stack fleet up`), taken down when dropped.
pub(crate) struct Fleet {
    own: OwnStack,
}

impl Fleet {
    pub(crate) fn up(args: &[&str]) -> Fleet {
        let mut up = vec!["fleet", "up"];
        up.extend_from_slice(args);
        Fleet {
            own: OwnStack::up("seinode-fleet", &up, &["fleet", "env"]),
        }
    }

    /// tests/stack/stack ARGS on this fleet (`stop rule`, `kill receive-2`, ...).
    pub(crate) fn stack(&self, args: &[&str]) {
        self.own.stack(args);
    }

    fn env(&self, key: &str) -> &str {
        self.own.env(key)
    }

    pub(crate) fn kubeconfig(&self, cluster: usize) -> PathBuf {
        PathBuf::from(self.env(&format!("CLUSTER_{cluster}_KUBECONFIG")))
    }

    /// A watcher of cluster `cluster` (1-based), every namespace, `--cluster-name NAME`,
    /// writing to that cluster's collector; ready.
    pub(crate) fn watcher(&self, cluster: usize, name: &str) -> Watcher {
        Watcher::command(&format!("{name}-watcher"))
            .kubeconfig(&self.kubeconfig(cluster))
            .otlp_endpoint(self.env(&format!("CLUSTER_{cluster}_OTLP_ENDPOINT")))
            .export_interval(Some(&format!("{}ms", EXPORT_INTERVAL.as_millis())))
            .args(["--cluster-name", name])
            .ready()
    }

    /// A GET of a Thanos HTTP API (`THANOS_QUERY_URL`, `THANOS_RULE_URL`): its `data`.
    fn api(&self, base: &str, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        self.own.api(base, path, params)
    }

    /// An instant query of Thanos Query, deduplicated (as the ruler reads) or not; the
    /// labels and value of each series.
    pub(crate) fn query(&self, expr: &str, dedup: bool) -> Vec<seistack::Sample> {
        let dedup = if dedup { "true" } else { "false" };
        self.own
            .query("THANOS_QUERY_URL", &[("query", expr), ("dedup", dedup)])
    }

    /// The values of `label` over the series of a deduplicated instant query, sorted.
    fn label_values(&self, expr: &str, label: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .query(expr, true)
            .into_iter()
            .map(|(labels, _)| labels.get(label).cloned().unwrap_or_default())
            .collect();
        values.sort();
        values
    }

    /// The raw sample times of each series a range selector selects, deduplicated or not
    /// (then each receiver's copy apart), with the copy's `receive_replica` ("" when
    /// deduplicated).
    fn sample_times(&self, range_selector: &str, dedup: bool) -> Vec<(String, Vec<f64>)> {
        let dedup = if dedup { "true" } else { "false" };
        let data = self
            .api(
                "THANOS_QUERY_URL",
                "/api/v1/query",
                &[("query", range_selector), ("dedup", dedup)],
            )
            .unwrap_or_else(|e| panic!("Thanos Query {range_selector}: {e}"));
        data["result"]
            .as_array()
            .expect("a matrix")
            .iter()
            .map(|s| {
                let replica = s["metric"]["receive_replica"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                let mut times: Vec<f64> = s["values"]
                    .as_array()
                    .expect("values")
                    .iter()
                    .map(|v| v[0].as_f64().expect("timestamp"))
                    .collect();
                times.sort_by(f64::total_cmp);
                (replica, times)
            })
            .collect()
    }

    /// Every rule the ruler has loaded (`/api/v1/rules`), as it reports it.
    pub(crate) fn rules(&self) -> Vec<Value> {
        let data = self
            .api("THANOS_RULE_URL", "/api/v1/rules", &[])
            .unwrap_or_else(|e| panic!("Thanos Ruler /api/v1/rules: {e}"));
        loaded_rules(&data)
    }

    /// The alerts the fleet's webhook receiver was notified of, oldest first.
    pub(crate) fn notifications(&self) -> Vec<Value> {
        self.own.notifications()
    }

    /// The `cluster` of every notification of `alert` in `status` about namespace `ns`
    /// (None: any), one entry per notification (a page sent twice is there twice), sorted.
    fn pages(&self, alert: &str, status: &str, ns: Option<&str>) -> Vec<String> {
        let mut clusters: Vec<String> = self
            .notifications()
            .iter()
            .filter(|a| {
                a["labels"]["alertname"] == alert
                    && a["status"] == status
                    && ns.is_none_or(|ns| a["labels"]["namespace"] == ns)
            })
            .map(|a| a["labels"]["cluster"].as_str().unwrap_or("").to_owned())
            .collect();
        clusters.sort();
        clusters
    }
}

/// The names of the alerting and recording rules of deploy/prometheus/*.rules.yaml, sorted.
fn shipped_rule_names() -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(repo_path("deploy/prometheus")).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !file.ends_with(".rules.yaml") {
            continue;
        }
        let rules = yaml_file(&format!("deploy/prometheus/{file}"));
        for group in rules["groups"].as_array().expect("groups") {
            for rule in group["rules"].as_array().expect("rules") {
                let name = rule.get("alert").or_else(|| rule.get("record"));
                names.push(name.and_then(Value::as_str).expect("a name").to_owned());
            }
        }
    }
    names.sort();
    names
}

/// Every rule the ruler reports has been evaluated (health "ok": evaluated, and its last
/// evaluation had no error); Err with the ones that have not.
fn all_rules_ok(fleet: &Fleet) -> Result<Vec<String>, String> {
    let rules = fleet.rules();
    let bad: Vec<String> = rules
        .iter()
        .filter(|r| r["health"] != "ok")
        .map(|r| format!("{} {} {}", r["name"], r["health"], r["lastError"]))
        .collect();
    if !bad.is_empty() {
        return Err(bad.join("; "));
    }
    let mut names: Vec<String> = rules
        .iter()
        .map(|r| r["name"].as_str().unwrap_or("").to_owned())
        .collect();
    names.sort();
    Ok(names)
}

fn create_namespace(kubeconfig: &Path, ns: &str) {
    kubectl_ok(kubeconfig, &["create", "namespace", ns], None);
}

#[test]
fn fleet_pages_per_cluster_through_thanos() {
    let _beside = beside_the_stack();
    let started = Instant::now();
    let fleet = Fleet::up(&["--rule-for", RULE_FOR]);
    eprintln!("fleet up in {:?}", started.elapsed());
    let names = ["fleet-a", "fleet-b", "fleet-c"];
    let kubeconfigs: Vec<PathBuf> = (1..=3).map(|i| fleet.kubeconfig(i)).collect();

    // The same validator in `one`, `both` and `late` of every cluster, healthy; in the third
    // cluster also a SeiNode whose TLS condition will flip and one that will be deleted.
    let validator = fixture("current/seinode-validator.yaml");
    for kubeconfig in &kubeconfigs {
        for ns in ["one", "both", "late"] {
            create_namespace(kubeconfig, ns);
            create_validator(kubeconfig, ns, &validator);
        }
    }
    create_namespace(&kubeconfigs[2], "flip");
    let tls = seistack::seinode("flip", "tls-0", true, Some(("True", "SecretReady")));
    create_validator(&kubeconfigs[2], "flip", &tls);
    let gone = seistack::seinode("flip", "gone-0", true, Some(("True", "SecretReady")));
    create_validator(&kubeconfigs[2], "flip", &gone);

    let mut watchers: Vec<Watcher> = names
        .iter()
        .enumerate()
        .map(|(i, name)| fleet.watcher(i + 1, name))
        .collect();

    // Every cluster's series arrive, once each through the deduplicating query, and on two
    // receivers each (replication factor 2) without deduplication.
    let healthy = "seinode_status_condition{type=\"SigningKeyReady\",status=\"True\"}";
    eventually(
        Duration::from_secs(60),
        "3 validators per cluster in Thanos Query",
        || (fleet.query(healthy, true).len() == 9).then_some(()),
    );
    let mut expected_clusters: Vec<String> = names
        .iter()
        .flat_map(|n| std::iter::repeat_n(n.to_string(), 3))
        .collect();
    expected_clusters.sort();
    assert_eq!(fleet.label_values(healthy, "cluster"), expected_clusters);
    let replicas = eventually(
        Duration::from_secs(30),
        "every series on 2 receivers",
        || {
            let raw = fleet.query(healthy, false);
            (raw.len() == 18).then_some(raw)
        },
    );
    for (labels, _) in &replicas {
        assert!(
            labels.contains_key("receive_replica"),
            "a receiver's series carries its replica label: {labels:?}"
        );
    }

    // The ruler evaluates every shipped rule (the meta-alerts included) without error.
    let loaded = eventually(
        Duration::from_secs(60),
        "every rule evaluated by the ruler without error",
        || all_rules_ok(&fleet).ok(),
    );
    assert_eq!(
        loaded,
        shipped_rule_names(),
        "the ruler has loaded every shipped rule"
    );

    // The receiver that will die holds series of the watchers that stay alive: their new
    // samples there are how its return is seen below.
    let live_on_2 = "{receive_replica=\"2\",cluster=~\"fleet-a|fleet-b\",__name__=~\"sei_condition_watcher_.+\"}";
    let held = fleet.query(&format!("count({live_on_2})"), false);
    assert!(
        held.first().is_some_and(|(_, n)| *n > 0.0),
        "receiver 2 holds no self-metric of fleet-a or fleet-b: {held:?}"
    );

    // A receiver dies.
    let killed_at = unix_now();
    fleet.stack(&["kill", "receive-2"]);

    // Staleness through the replicated path, with one receiver dead: a flip shows the new
    // pair and not the old one; a deleted object's series go.
    let tls_series = "seinode_status_condition{cluster=\"fleet-c\",namespace=\"flip\",name=\"tls-0\",type=\"SidecarTLSSecretReady\"}";
    assert_eq!(fleet.label_values(tls_series, "status"), ["True"]);
    let flip = seistack::condition("SidecarTLSSecretReady", "False", "SecretMissing");
    patch_status(&kubeconfigs[2], "flip", &tls, &flip["status"]);
    let flipped = Instant::now();
    eventually(
        Duration::from_secs(30),
        "the flipped pair: False queryable, True gone",
        || (fleet.label_values(tls_series, "status") == ["False"]).then_some(()),
    );
    eprintln!(
        "flip: new pair alone in Thanos Query after {:?}",
        flipped.elapsed()
    );
    let gone_series =
        "seinode_status_condition{cluster=\"fleet-c\",namespace=\"flip\",name=\"gone-0\"}";
    assert!(!fleet.query(gone_series, true).is_empty());
    kubectl_ok(
        &kubeconfigs[2],
        &[
            "-n",
            "flip",
            "delete",
            "seinodes.sei.io",
            "gone-0",
            "--wait=true",
        ],
        None,
    );
    eventually(
        Duration::from_secs(30),
        "the deleted SeiNode's series gone",
        || fleet.query(gone_series, true).is_empty().then_some(()),
    );

    // The third cluster's watcher dies (SIGKILL: no last export).
    drop(watchers.pop());
    let watcher_killed = Instant::now();

    // The same validator breaks in the first cluster in `one`, in the first two in `both`.
    break_signing_key(&kubeconfigs[0], "one", &validator);
    break_signing_key(&kubeconfigs[0], "both", &validator);
    break_signing_key(&kubeconfigs[1], "both", &validator);
    let broken = Instant::now();
    eventually(PAGE_WITHIN, "a page per broken cluster", || {
        (fleet.pages(PAGE, "firing", Some("both")) == ["fleet-a", "fleet-b"]
            && !fleet.pages(PAGE, "firing", Some("one")).is_empty())
        .then_some(())
    });
    eprintln!(
        "pages {:?} after the break, receiver dead",
        broken.elapsed()
    );
    assert_eq!(
        fleet.pages(PAGE, "firing", Some("one")),
        ["fleet-a"],
        "exactly one page where one cluster is broken, with that cluster"
    );

    // The receiver comes back: the router writes to it again and Thanos Query reads it.
    fleet.stack(&["start", "receive-2"]);
    let restarted_at = unix_now();
    // Measured 8.6 s on a quiet machine. Any self-metric of the two live watchers: the
    // hashring puts each series on two of the three receivers, by a hash that covers the
    // receivers' (random) ports, so one given series (this test once waited for
    // `sei_condition_watcher_up`) misses the restarted receiver in about one run in nine
    // for both live clusters, and its new samples never come; dozens of self-metric
    // series cannot all miss it.
    let back = eventually(
        Duration::from_secs(180),
        "new samples on the restarted receiver, read by Thanos Query",
        || {
            let newest = fleet
                .query(
                    // timestamp() drops the name: keep it as a label, or two series collide.
                    &format!(
                        "max(timestamp(label_replace({live_on_2}, \"metric\", \"$1\", \"__name__\", \"(.+)\")))"
                    ),
                    false,
                )
                .first()
                .map(|(_, t)| *t)?;
            (newest > restarted_at).then_some(newest)
        },
    );
    eprintln!(
        "the restarted receiver has samples {:.1} s after its start",
        back - restarted_at
    );
    // Two more heartbeats after that, so that both copies overlap in the window below.
    std::thread::sleep(2 * EXPORT_INTERVAL);
    // No gap and nothing twice: the live watchers' heartbeats, every 2 s, through the time
    // the receiver was dead and since it came back.
    let window = (unix_now() - killed_at + 10.0).ceil() as u64;
    for cluster in ["fleet-a", "fleet-b"] {
        let heartbeat = format!("sei_condition_watcher_up{{cluster=\"{cluster}\"}}[{window}s]");
        let series = fleet.sample_times(&heartbeat, true);
        assert_eq!(series.len(), 1, "one heartbeat series for {cluster}");
        let times = &series[0].1;
        assert!(
            times.first().is_some_and(|t| *t < killed_at),
            "the samples start before the receiver was killed"
        );
        let gap = largest_gap(times);
        let smallest = times
            .windows(2)
            .map(|w| w[1] - w[0])
            .fold(f64::INFINITY, f64::min);
        let offsets: Vec<String> = times
            .iter()
            .map(|t| format!("{:.1}", t - killed_at))
            .collect();
        eprintln!(
            "{cluster}: {} heartbeats over {window} s, largest gap {gap:.1} s, smallest {smallest:.1} s; \
             seconds from the kill: {}",
            times.len(),
            offsets.join(" ")
        );
        for (replica, times) in fleet.sample_times(&heartbeat, false) {
            let offsets: Vec<String> = times
                .iter()
                .map(|t| format!("{:.1}", t - killed_at))
                .collect();
            eprintln!("  receive-{replica}: {}", offsets.join(" "));
        }
        assert!(gap < 5.0, "{cluster}: a {gap} s gap in the heartbeat");
        assert!(
            smallest > 1.0,
            "{cluster}: two samples {smallest} s apart: a sample counted twice"
        );
    }
    // The broken validator's series, too: one series per cluster, not one per replica.
    assert_eq!(
        fleet.label_values(
            "seinode_status_condition{namespace=\"both\",type=\"SigningKeyReady\",status=\"False\"}",
            "cluster"
        ),
        ["fleet-a", "fleet-b"]
    );

    // The ruler restarts while the second cluster's validator in `late` breaks.
    fleet.stack(&["stop", "rule"]);
    break_signing_key(&kubeconfigs[1], "late", &validator);
    std::thread::sleep(Duration::from_secs(3));
    fleet.stack(&["start", "rule"]);
    eventually(
        PAGE_WITHIN,
        "the page raised across the ruler's restart",
        || (!fleet.pages(PAGE, "firing", Some("late")).is_empty()).then_some(()),
    );
    assert_eq!(fleet.pages(PAGE, "firing", Some("late")), ["fleet-b"]);

    // The dead watcher's cluster, alone, is absent (its `max_over_time(...[1m])` window,
    // then `for`). (Before the watchers started, the rule's other arm, "no watcher
    // anywhere", may have paged without a cluster: with `for` cut to 10 s the fleet's first
    // seconds are such a fresh install. It is left out here.)
    let absent = || -> Vec<String> {
        fleet
            .pages(ABSENT, "firing", None)
            .into_iter()
            .filter(|c| !c.is_empty())
            .collect()
    };
    eventually(
        Duration::from_secs(150),
        "SeiConditionWatcherAbsent for the killed watcher's cluster",
        || (!absent().is_empty()).then_some(()),
    );
    eprintln!(
        "absent page {:?} after the watcher was killed",
        watcher_killed.elapsed()
    );
    assert_eq!(absent(), ["fleet-c"]);

    // Across the receiver's death and the ruler's restart: each page sent once, none
    // resolved (every condition is still broken).
    assert_eq!(fleet.pages(PAGE, "firing", Some("one")), ["fleet-a"]);
    assert_eq!(
        fleet.pages(PAGE, "firing", Some("both")),
        ["fleet-a", "fleet-b"]
    );
    assert_eq!(fleet.pages(PAGE, "firing", Some("late")), ["fleet-b"]);
    assert!(
        fleet.pages(PAGE, "resolved", None).is_empty(),
        "no page resolved: {:?}",
        fleet.notifications()
    );
    // And the restarted ruler evaluates every rule without error.
    eventually(
        Duration::from_secs(30),
        "every rule evaluated without error after the restarts",
        || all_rules_ok(&fleet).ok(),
    );

    for mut w in watchers {
        assert!(w.terminate().success());
    }
    eprintln!("fleet scenario took {:?}", started.elapsed());
}
