//! An 8-minute outage of the pipeline while a page fires (issue 19, item 6), on the local
//! stack with the shipped rules: a validator's signing key is invalid and pages; then the
//! collector between its watcher and Prometheus stops for 8 minutes. During the outage no
//! "resolved" is sent for the page (it stays firing, held by `keep_firing_for` once its data
//! has run out) and `SeiConditionWatcherAbsent` pages for the cluster; once the collector is
//! back the page goes on firing with the same `activeAt` (no new `for`, no second page) and
//! the Absent page resolves.
//!
//! The test runs on a stack of its own (`tests/stack/stack up` in a fresh directory:
//! etcd, API server, collector, Prometheus with the shipped rules, Alertmanager, webhook), and
//! stops that stack's collector: it shares nothing with the other tests but the binaries, so
//! it runs beside all of them, those that take the shared stack alone (restarts, faults)
//! included, instead of holding them up for its 9.5 minutes, mostly waiting.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::cluster_identity::{create_validator, kubectl_ok};
use crate::harness::*;
use serde_json::{json, Value};

/// The page: a validator's SigningKeyReady False with a terminal reason (`for: 1m`).
const PAGE: &str = "SeiNodeSigningKeyNotReady";
/// The pipeline page: no watcher of a cluster has reached Prometheus (`for: 4m`).
const ABSENT: &str = "SeiConditionWatcherAbsent";
/// The outage the issue asks for: past the Absent page (1 minute of silence, its 4-minute
/// `for`, evaluation), and short of the 10-minute hold counted from when the page's data ran
/// out (4 to 5 minutes into the gap), so the page must still be firing when data returns.
const OUTAGE: Duration = Duration::from_secs(8 * 60);
/// How often the test looks during the outage and after: the stack's rule evaluation
/// interval (tests/stack/run.sh).
const POLL: Duration = Duration::from_secs(5);
/// Time for rule evaluation, Alertmanager's group_wait/interval and the webhook on top of a
/// rule's own durations.
const SLACK: Duration = Duration::from_secs(60);

/// A validator SeiNode whose SigningKeyReady turned False/SigningKeyInvalid just now.
fn broken_validator() -> Value {
    let mut object = fixture("current/seinode-validator.yaml");
    let now = now_rfc3339();
    for c in object["status"]["conditions"].as_array_mut().unwrap() {
        if c["type"] == "SigningKeyReady" {
            c["status"] = json!("False");
            c["reason"] = json!("SigningKeyInvalid");
            c["message"] = json!("priv_validator_key.json is not valid JSON");
            c["lastTransitionTime"] = json!(now);
        }
    }
    object
}

/// The namespace of the validator, and its watcher's `--cluster-name`.
const NS: &str = "outage";

/// The test's own world: a stack of its own and the validator in it.
struct ThisCluster {
    own: OwnStack,
    name: String,
}

impl ThisCluster {
    fn ns(&self) -> &str {
        NS
    }

    /// An instant query of its Prometheus.
    fn query(&self, expr: &str) -> Vec<seistack::Sample> {
        self.own.query("PROMETHEUS_URL", &[("query", expr)])
    }

    fn prometheus(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        self.own.api("PROMETHEUS_URL", path, params)
    }

    /// The alerting rule `name` as its Prometheus has loaded it.
    fn alert_rule(&self, name: &str) -> Value {
        let data = self
            .prometheus("/api/v1/rules", &[("type", "alert")])
            .unwrap_or_else(|e| panic!("rules: {e}"));
        loaded_rule(&data, name)
    }

    /// The state (pending, firing) of `alert` about this cluster (and, for the page, this
    /// validator) in Prometheus' ALERTS; None when it is not active.
    fn state(&self, alert: &str) -> Option<String> {
        let object = if alert == PAGE {
            format!(",namespace=\"{}\",name=\"{}\"", self.ns(), self.name)
        } else {
            String::new()
        };
        let series = self.query(&format!(
            "ALERTS{{alertname=\"{alert}\",cluster=\"{}\"{object}}}",
            self.ns()
        ));
        assert!(series.len() <= 1, "{alert}: {series:?}");
        series.first().map(|(l, _)| l["alertstate"].clone())
    }

    /// The page's `activeAt` as Prometheus has it (Unix seconds).
    fn page_active_at(&self) -> Option<f64> {
        self.prometheus("/api/v1/alerts", &[])
            .unwrap_or_else(|e| panic!("alerts: {e}"))["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| {
                a["labels"]["alertname"] == PAGE
                    && a["labels"]["cluster"] == self.ns()
                    && a["labels"]["name"] == self.name.as_str()
            })
            .and_then(|a| a["activeAt"].as_str())
            .map(unix)
    }

    /// Whether the page's own expression (as Prometheus has loaded it) selects this
    /// validator now: false once its data has run out, when only `keep_firing_for` holds it.
    fn page_data(&self, expr: &str) -> bool {
        self.query(expr).iter().any(|(l, _)| {
            l.get("cluster").map(String::as_str) == Some(self.ns())
                && l.get("name") == Some(&self.name)
        })
    }

    /// The webhook notifications of `alert` about this cluster: (status, startsAt).
    fn notified(&self, alert: &str) -> Vec<(String, String)> {
        self.own
            .notifications()
            .iter()
            .filter(|a| a["labels"]["alertname"] == alert && a["labels"]["cluster"] == self.ns())
            .map(|a| {
                (
                    a["status"].as_str().unwrap_or("").to_owned(),
                    a["startsAt"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    fn notified_with(&self, alert: &str, status: &str) -> bool {
        self.notified(alert).iter().any(|(s, _)| s == status)
    }
}

/// Minutes and seconds, for the figures.
fn mmss(d: Duration) -> String {
    format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
}

#[test]
fn a_page_is_held_through_an_eight_minute_outage_and_the_pipeline_pages() {
    let own = OwnStack::up("seinode-outage", &["up"], &["env"]);
    let kubeconfig = std::path::PathBuf::from(own.env("KUBECONFIG"));
    kubectl_ok(&kubeconfig, &["create", "namespace", NS], None);
    let object = broken_validator();
    create_validator(&kubeconfig, NS, &object);
    let broken_at = Instant::now();
    let o = ThisCluster {
        own,
        name: object["metadata"]["name"].as_str().unwrap().to_owned(),
    };
    let page_rule = o.alert_rule(PAGE);
    let absent_rule = o.alert_rule(ABSENT);
    let secs = |rule: &Value, key: &str| Duration::from_secs_f64(rule[key].as_f64().unwrap_or(0.0));
    let (page_for, hold, absent_for) = (
        secs(&page_rule, "duration"),
        secs(&page_rule, "keepFiringFor"),
        secs(&absent_rule, "duration"),
    );
    assert_eq!(
        (page_for, hold, absent_for),
        (
            Duration::from_secs(60),
            Duration::from_secs(600),
            Duration::from_secs(240)
        ),
        "the own stack runs the shipped rules: {PAGE} for 1m, keep_firing_for 10m; {ABSENT} for 4m"
    );
    let page_expr = page_rule["query"].as_str().expect("the page's query");
    let mut watcher = Watcher::command("outage-watcher")
        .kubeconfig(&kubeconfig)
        .otlp_endpoint(o.own.env("OTEL_EXPORTER_OTLP_ENDPOINT"))
        .export_interval(Some(&format!("{}ms", EXPORT_INTERVAL.as_millis())))
        .args(["--cluster-name", NS])
        .ready();

    // The page fires and reaches the receiver; the pipeline page is quiet.
    eventually(page_for + SLACK * 2, "the page firing", || {
        (o.state(PAGE).as_deref() == Some("firing")).then_some(())
    });
    let starts = eventually(SLACK, "the page at the receiver", || {
        o.notified(PAGE)
            .into_iter()
            .find(|(status, _)| status == "firing")
            .map(|(_, starts)| starts)
    });
    let paged_after = broken_at.elapsed();
    let active_at = o.page_active_at().expect("the page is active");
    assert_eq!(
        o.state(ABSENT),
        None,
        "{ABSENT} quiet while the watcher reports"
    );
    assert!(
        o.page_data(page_expr),
        "the page's expression selects the validator"
    );

    // Cut the pipeline: the watcher runs on, nothing of it reaches Prometheus.
    o.own.stack(&["stop", "otelcol"]);
    let down = Instant::now();
    let (mut data_gone, mut absent_pending, mut absent_firing, mut absent_paged) =
        (None, None, None, None);
    let mut polls = 0;
    while down.elapsed() < OUTAGE {
        let at = down.elapsed();
        assert_eq!(
            o.state(PAGE).as_deref(),
            Some("firing"),
            "the page stops firing {} into the outage",
            mmss(at)
        );
        assert!(
            !o.notified_with(PAGE, "resolved"),
            "a resolution sent {} into the outage: {:?}",
            mmss(at),
            o.notified(PAGE)
        );
        if data_gone.is_none() && !o.page_data(page_expr) {
            data_gone = Some(at);
        }
        match o.state(ABSENT).as_deref() {
            Some("pending") => {
                absent_pending.get_or_insert(at);
            }
            Some("firing") => {
                absent_firing.get_or_insert(at);
            }
            _ => {}
        }
        if absent_paged.is_none() && o.notified_with(ABSENT, "firing") {
            absent_paged = Some(at);
        }
        polls += 1;
        std::thread::sleep(POLL);
    }
    assert!(watcher.is_running(), "the watcher survives the outage");
    let data_gone = data_gone.unwrap_or_else(|| {
        panic!(
            "the page's data never ran out in {}: the outage did not test the hold",
            mmss(OUTAGE)
        )
    });
    let absent_firing = absent_firing.expect("the pipeline page fired during the outage");
    let absent_paged = absent_paged.expect("the pipeline page reached the receiver");
    // It can only fire once its `for` has run on a silence; and it must, within the outage.
    assert!(
        absent_firing >= absent_for,
        "{ABSENT} fired {} into the outage, before its `for`",
        mmss(absent_firing)
    );

    // The collector is back: the data returns, the pipeline page resolves, and the page
    // goes on firing as it was.
    o.own.stack(&["start", "otelcol"]);
    let up = Instant::now();
    let mut page_states = BTreeSet::new();
    let data_back = eventually(SLACK, "the page's data back", || {
        page_states.insert(o.state(PAGE));
        o.page_data(page_expr).then(|| up.elapsed())
    });
    let absent_resolved = eventually(SLACK, "the pipeline page resolved", || {
        page_states.insert(o.state(PAGE));
        (o.state(ABSENT).is_none() && o.notified_with(ABSENT, "resolved")).then(|| up.elapsed())
    });
    // Two notification intervals (group_interval 5 s) more, for anything Alertmanager would
    // send about the page after the return.
    std::thread::sleep(POLL * 4);
    page_states.insert(o.state(PAGE));
    assert_eq!(
        page_states,
        BTreeSet::from([Some("firing".to_owned())]),
        "the page stayed firing after the collector returned"
    );
    assert_eq!(
        o.page_active_at(),
        Some(active_at),
        "the page kept its activeAt: its `for` did not start again"
    );
    let pages = o.notified(PAGE);
    assert!(
        pages.iter().all(|(status, _)| status == "firing"),
        "no resolution for the page: {pages:?}"
    );
    assert!(
        pages.iter().all(|(_, s)| *s == starts),
        "one firing alert, paged once (repeats keep its startsAt): {pages:?}"
    );

    let stack = Stack::get();
    stack.figure(&format!(
        "outage (issue 19 item 6), shipped rules, own stack's collector stopped {}: page ({PAGE}) at the receiver \
         {} after the break; its data ran out {} into the outage (held by keep_firing_for {}); \
         {ABSENT} pending {}, firing {}, at the receiver {} into the outage; page firing at all {polls} \
         polls, no resolution",
        mmss(OUTAGE),
        mmss(paged_after),
        mmss(data_gone),
        mmss(hold),
        absent_pending.map_or("never seen".to_owned(), mmss),
        mmss(absent_firing),
        mmss(absent_paged),
    ));
    stack.figure(&format!(
        "outage: collector back -> the page's data back after {data_back:.1?}, {ABSENT} resolved \
         after {absent_resolved:.1?}; the page kept its activeAt, {} notification(s) for it, all \
         firing with one startsAt",
        pages.len()
    ));
    assert!(watcher.terminate().success());
}
