//! The inhibitions and routes of the shipped Alertmanager configuration
//! (deploy/alertmanager/alertmanager-route.yaml), checked with a real Alertmanager of the
//! pinned version: a source alert (SeiNodePaused, SeiNodeWorkflowHeld, SeiNetworkPaused)
//! mutes exactly the targets docs/runbook.md#inhibitions lists, on the same cluster,
//! namespace and name, only while it fires; the watcher's meta-alerts route by severity
//! and SeiConditionWatcherBlind mutes nothing (docs/runbook.md#meta-alerts-the-pipeline-itself).
//!
//! The stack's own Alertmanager runs a test configuration (everything to the webhook
//! receiver, no inhibit_rules: tests/stack/run.sh), not the shipped file. So each test
//! starts the stack's alertmanager binary itself with the shipped file, on a free loopback
//! port with its storage in the stack's directory, and posts alerts through the v2 API as
//! Prometheus does; `status.inhibitedBy` of an alert says whether (and by what) it is muted.
//!
//! Alerts are posted and read through `seistack.py post/api` with that Alertmanager's URL;
//! only its readiness probe (a status code, not JSON) is asked directly.
//!
//! No test waits for a notification: every test ends well within the routes' 30 s
//! group_wait, so nothing is sent to the example receivers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;
use serde_json::{json, Value};

const CONFIG: &str = "deploy/alertmanager/alertmanager-route.yaml";

/// A real Alertmanager running the shipped configuration; stopped and cleaned up on drop.
struct Alertmanager {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl Alertmanager {
    /// Started for the scenario `s`, its storage in the stack's directory.
    fn start(s: &Scenario) -> Alertmanager {
        let bin = Stack::bin("alertmanager");
        let port = free_port();
        let dir = s.stack().dir().join(format!("alertmanager-inhibit-{port}"));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let log = std::fs::File::create(dir.join("alertmanager.log")).unwrap();
        let child = Command::new(&bin)
            .arg("--config.file")
            .arg(repo_path(CONFIG))
            .arg("--storage.path")
            .arg(dir.join("data"))
            .args(["--web.listen-address", &format!("127.0.0.1:{port}")])
            // No gossip: a single instance, nothing listening beyond the API port.
            .args(["--cluster.listen-address", ""])
            .args(["--log.level", "warn"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("alertmanager starts");
        let mut am = Alertmanager {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = ureq::get(format!("{}/-/ready", am.url))
                .call()
                .is_ok_and(|r| r.status() == 200);
            if ready {
                return am;
            }
            let exited = am.child.try_wait().unwrap().is_some();
            if exited || Instant::now() > deadline {
                panic!(
                    "Alertmanager with {CONFIG} did not become ready (exited: {exited}); log:\n{}",
                    am.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("alertmanager.log")).unwrap_or_default()
    }

    /// Posts alerts as Prometheus does: firing since a minute ago, until `ends` from now
    /// (negative: already resolved).
    fn post(&self, alerts: &[&Labels], ends: jiff::SignedDuration) {
        let now = jiff::Timestamp::now();
        let body: Vec<Value> = alerts
            .iter()
            .map(|labels| {
                json!({
                    "labels": labels,
                    "annotations": {"summary": "posted by tests/it/alertmanager_inhibit.rs"},
                    "startsAt": (now - jiff::SignedDuration::from_mins(1)).to_string(),
                    "endsAt": (now + ends).to_string(),
                    "generatorURL": "http://prometheus.invalid/graph",
                })
            })
            .collect();
        seistack::post(&self.url, "/api/v2/alerts", &Value::Array(body))
            .unwrap_or_else(|e| panic!("POST /api/v2/alerts: {e}; log:\n{}", self.log()));
    }

    fn fire(&self, alerts: &[&Labels]) {
        self.post(alerts, jiff::SignedDuration::from_hours(1));
    }

    fn resolve(&self, alerts: &[&Labels]) {
        self.post(alerts, -jiff::SignedDuration::from_secs(1));
    }

    /// Every alert Alertmanager holds (active, inhibited or silenced), with its status as
    /// the v2 API computes it at this moment.
    fn alerts(&self) -> Vec<Value> {
        let alerts = seistack::get(&self.url, "/api/v2/alerts")
            .unwrap_or_else(|e| panic!("GET /api/v2/alerts: {e}; log:\n{}", self.log()));
        serde_json::from_value(alerts).expect("Alertmanager answers a list of alerts")
    }

    /// The held alert with exactly these labels, once Alertmanager has it.
    fn get(&self, labels: &Labels) -> Value {
        let want = serde_json::to_value(labels).unwrap();
        eventually(
            Duration::from_secs(10),
            &format!("Alertmanager holds {want}"),
            || self.alerts().into_iter().find(|a| a["labels"] == want),
        )
    }

    /// Waits until the alert's inhibition is `inhibited`; returns its inhibitedBy.
    fn wait_inhibited(&self, labels: &Labels, inhibited: bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let alert = self.get(labels);
            let by = inhibited_by(&alert);
            if by.is_empty() != inhibited {
                return by;
            }
            assert!(
                Instant::now() < deadline,
                "{} should {}be inhibited; Alertmanager says {}",
                labels["alertname"],
                if inhibited { "" } else { "not " },
                alert["status"]
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Fires `muted` and `kept` (nothing mutes them yet), then `source`: exactly `muted`
    /// are inhibited, by `source`, and `kept` stay active.
    fn assert_mutes(&self, source: &Labels, muted: &[&Labels], kept: &[&Labels]) {
        let targets: Vec<&Labels> = muted.iter().chain(kept).copied().collect();
        self.fire(&targets);
        for t in &targets {
            self.wait_inhibited(t, false);
        }
        self.fire(&[source]);
        let fingerprint = self.fingerprint(source);
        for t in muted {
            assert_eq!(self.wait_inhibited(t, true), vec![fingerprint.clone()]);
        }
        for t in kept {
            assert!(
                inhibited_by(&self.get(t)).is_empty(),
                "{t:?} must not be inhibited by {}",
                source["alertname"]
            );
        }
    }

    fn fingerprint(&self, labels: &Labels) -> String {
        self.get(labels)["fingerprint"]
            .as_str()
            .expect("fingerprint")
            .to_owned()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

type Labels = BTreeMap<&'static str, String>;

/// An alert's labels as the rules in deploy/prometheus/sei-conditions.rules.yaml produce
/// them: object labels, `type` for the per-condition alerts, and `severity`.
fn alert(alertname: &'static str, name: &str, ty: Option<&str>, severity: &str) -> Labels {
    let mut labels = Labels::new();
    labels.insert("alertname", alertname.to_owned());
    labels.insert("cluster", "test".to_owned());
    labels.insert("namespace", "sei".to_owned());
    labels.insert("name", name.to_owned());
    if let Some(ty) = ty {
        labels.insert("type", ty.to_owned());
    }
    labels.insert("severity", severity.to_owned());
    labels
}

fn inhibited_by(alert: &Value) -> Vec<String> {
    alert["status"]["inhibitedBy"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn receivers(alert: &Value) -> Vec<String> {
    alert["receivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

/// A paused SeiNode mutes the alerts on what the pause freezes (SidecarReady,
/// NodeUpdateInProgress) of the same node, and only those: not the key page, not its
/// StateSync Unknown, not its workflow ticket, not another node's alerts. Before the
/// source fires nothing is muted; once it resolves, the targets are active again.
#[test]
fn paused_seinode_inhibits_only_what_the_freeze_explains() {
    let s = Scenario::new("am-inhibit");
    let am = Alertmanager::start(&s);
    let source = alert("SeiNodePaused", "rpc-0", None, "info");
    let muted = [
        alert(
            "SeiNodeSidecarNotReady",
            "rpc-0",
            Some("SidecarReady"),
            "ticket",
        ),
        alert(
            "SeiNodeUpdateStuck",
            "rpc-0",
            Some("NodeUpdateInProgress"),
            "ticket",
        ),
        alert(
            "SeiNodeConditionUnknown",
            "rpc-0",
            Some("SidecarReady"),
            "ticket",
        ),
    ];
    let kept = [
        alert(
            "SeiNodeSigningKeyNotReady",
            "rpc-0",
            Some("SigningKeyReady"),
            "page",
        ),
        alert(
            "SeiNodeConditionUnknown",
            "rpc-0",
            Some("StateSyncReady"),
            "ticket",
        ),
        alert(
            "SeiNodeWorkflowStuck",
            "rpc-0",
            Some("WorkflowInProgress"),
            "ticket",
        ),
        // Same alert, another node: `equal: [cluster, namespace, name]`.
        alert(
            "SeiNodeSidecarNotReady",
            "rpc-1",
            Some("SidecarReady"),
            "ticket",
        ),
    ];
    // No source: every target is active; the source fires: exactly the muted ones are
    // inhibited, by it.
    am.assert_mutes(&source, &muted.each_ref(), &kept.each_ref());
    // The source itself goes nowhere; pages and tickets to their receivers.
    assert_eq!(receivers(&am.get(&source)), ["null"]);
    assert_eq!(receivers(&am.get(&kept[0])), ["sei-page"]);
    assert_eq!(receivers(&am.get(&muted[0])), ["sei-ticket"]);

    // Unpaused: the source resolves and the targets are active again.
    am.resolve(&[&source]);
    for t in &muted {
        am.wait_inhibited(t, false);
    }
}

/// A node held by a workflow (WorkflowInProgress True, any reason) mutes its frozen
/// SidecarReady verdicts, but never the held node's own ticket, SeiNodeWorkflowStuck
/// (WorkflowFailedHeld must still reach someone).
#[test]
fn workflow_held_seinode_keeps_its_own_workflow_ticket() {
    let s = Scenario::new("am-inhibit");
    let am = Alertmanager::start(&s);
    let source = alert("SeiNodeWorkflowHeld", "rpc-0", None, "info");
    let sidecar = alert(
        "SeiNodeSidecarNotReady",
        "rpc-0",
        Some("SidecarReady"),
        "ticket",
    );
    let unknown = alert(
        "SeiNodeConditionUnknown",
        "rpc-0",
        Some("SidecarReady"),
        "ticket",
    );
    let stuck = alert(
        "SeiNodeWorkflowStuck",
        "rpc-0",
        Some("WorkflowInProgress"),
        "ticket",
    );
    let state_sync = alert(
        "SeiNodeConditionUnknown",
        "rpc-0",
        Some("StateSyncReady"),
        "ticket",
    );

    // The held node's SeiNodeWorkflowStuck is not inhibited.
    am.assert_mutes(&source, &[&sidecar, &unknown], &[&stuck, &state_sync]);
    assert_eq!(receivers(&am.get(&stuck)), ["sei-ticket"]);
}

/// A paused SeiNetwork mutes its stuck/not-ready tickets, not a failed genesis ceremony,
/// not another network's tickets.
#[test]
fn paused_seinetwork_inhibits_its_stuck_alerts_not_a_failed_ceremony() {
    let s = Scenario::new("am-inhibit");
    let am = Alertmanager::start(&s);
    let source = alert("SeiNetworkPaused", "net", None, "info");
    let muted = [
        alert(
            "SeiNetworkNodesNotReady",
            "net",
            Some("NodesReady"),
            "ticket",
        ),
        alert(
            "SeiNetworkPlanStuck",
            "net",
            Some("PlanInProgress"),
            "ticket",
        ),
        alert(
            "SeiNetworkRolloutStuck",
            "net",
            Some("RolloutInProgress"),
            "ticket",
        ),
    ];
    let kept = [
        alert(
            "SeiNetworkGenesisCeremonyFailed",
            "net",
            Some("GenesisCeremonyComplete"),
            "ticket",
        ),
        alert(
            "SeiNetworkRolloutStuck",
            "other-net",
            Some("RolloutInProgress"),
            "ticket",
        ),
    ];
    am.assert_mutes(&source, &muted.each_ref(), &kept.each_ref());
}

/// A meta-alert's labels as deploy/prometheus/seinode-tls.rules.yaml produces them:
/// `cluster`, the alert's own labels (`resource`, `instance`, ...), and `severity`.
fn meta(alertname: &'static str, own: &[(&'static str, &str)], severity: &str) -> Labels {
    let mut labels = Labels::new();
    labels.insert("alertname", alertname.to_owned());
    labels.insert("cluster", "test".to_owned());
    for (k, v) in own {
        labels.insert(k, (*v).to_owned());
    }
    labels.insert("severity", severity.to_owned());
    labels
}

/// The meta-alerts reach the pager or the ticket queue by their severity (Blind pages for
/// SeiNodes and is a ticket for other kinds), and SeiConditionWatcherBlind, firing, mutes
/// nothing: not NoLeader (its expression already excludes the blind case), not a condition
/// page of the same cluster.
#[test]
fn meta_alerts_route_by_severity_and_blind_mutes_nothing() {
    let s = Scenario::new("am-inhibit");
    let am = Alertmanager::start(&s);
    let blind_page = meta(
        "SeiConditionWatcherBlind",
        &[("resource", "seinodes.sei.io")],
        "page",
    );
    let blind_ticket = meta(
        "SeiConditionWatcherBlind",
        &[("resource", "seinetworks.sei.io")],
        "ticket",
    );
    let no_leader = meta("SeiConditionWatcherNoLeader", &[], "page");
    let absent = meta("SeiConditionWatcherAbsent", &[], "page");
    let undecodable = meta(
        "SeiConditionWatcherUndecodableObjects",
        &[("resource", "seinodes.sei.io")],
        "ticket",
    );
    let watch_failing = meta(
        "SeiConditionWatcherWatchFailing",
        &[
            ("instance", "watcher-0"),
            ("resource", "seinodes.sei.io"),
            ("kind", "forbidden"),
        ],
        "ticket",
    );
    let condition_page = alert(
        "SeiNodeSigningKeyNotReady",
        "rpc-0",
        Some("SigningKeyReady"),
        "page",
    );
    let all = [
        &blind_page,
        &blind_ticket,
        &no_leader,
        &absent,
        &undecodable,
        &watch_failing,
        &condition_page,
    ];
    am.fire(&all);
    for a in all {
        am.wait_inhibited(a, false);
    }
    for (a, receiver) in [
        (&blind_page, "sei-page"),
        (&blind_ticket, "sei-ticket"),
        (&no_leader, "sei-page"),
        (&absent, "sei-page"),
        (&undecodable, "sei-ticket"),
        (&watch_failing, "sei-ticket"),
        (&condition_page, "sei-page"),
    ] {
        assert_eq!(receivers(&am.get(a)), [receiver], "{}", a["alertname"]);
    }
    // Still nothing muted once everything has been evaluated together.
    std::thread::sleep(Duration::from_secs(1));
    for a in all {
        assert!(
            inhibited_by(&am.get(a)).is_empty(),
            "{a:?} must not be inhibited"
        );
    }
}
