//! The fixture every stack test runs in: `let s = Scenario::new("pipeline");` holds the
//! stack (shared with the other tests, or to itself with [`Scenario::alone`]), creates a
//! namespace of its own on first use and cleans it up at the end (left in place when the
//! test failed, for a look), creates objects, starts watchers with the stack's defaults,
//! and queries Prometheus, Alertmanager and the webhook receiver.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use serde_json::Value;

use super::seistack::{self, Sample};
use super::watcher::{Watcher, WatcherCmd};
use super::{eventually, Stack, BIN};

/// The export interval the tests' watchers use: short, so tests take seconds.
pub const EXPORT_INTERVAL: Duration = Duration::from_secs(2);

/// The kinds whose objects a scenario's namespace is emptied of at the end.
const KINDS: [&str; 4] = [
    "seinodes",
    "seinetworks",
    "seinodetasks",
    "seinodetaskworkflows",
];

/// Held by every scenario: shared by those that share the stack, taken whole by those that
/// restart or stop its components ([`Scenario::alone`]), which then run with no other
/// stack test beside them.
static STACK: RwLock<()> = RwLock::new(());

/// For a test that runs processes of its own beside the stack, not in it (tests/it/fleet.rs):
/// held as a shared scenario holds the stack, so no test that takes the stack alone (and
/// times a restart or a fault) runs beside it.
pub fn beside_the_stack() -> RwLockReadGuard<'static, ()> {
    STACK.read().unwrap_or_else(|e| e.into_inner())
}

/// One stack test's world: see the module documentation.
pub struct Scenario {
    stack: &'static Stack,
    prefix: String,
    ns: OnceLock<String>,
    /// Every namespace this scenario created, to clean up.
    namespaces: Mutex<Vec<String>>,
    _shared: Option<RwLockReadGuard<'static, ()>>,
    _alone: Option<RwLockWriteGuard<'static, ()>>,
}

impl Scenario {
    /// A scenario sharing the stack with the other tests (each in its own namespace).
    pub fn new(prefix: &str) -> Scenario {
        let shared = STACK.read().unwrap_or_else(|e| e.into_inner());
        Scenario::with(prefix, Some(shared), None)
    }

    /// A scenario with the stack to itself: for tests that restart or stop a component,
    /// replace a CRD or change cluster-wide objects. It waits for the running stack tests
    /// to end, and none starts until it ends.
    pub fn alone(prefix: &str) -> Scenario {
        let alone = STACK.write().unwrap_or_else(|e| e.into_inner());
        Scenario::with(prefix, None, Some(alone))
    }

    fn with(
        prefix: &str,
        _shared: Option<RwLockReadGuard<'static, ()>>,
        _alone: Option<RwLockWriteGuard<'static, ()>>,
    ) -> Scenario {
        Scenario {
            stack: Stack::get(),
            prefix: prefix.to_owned(),
            ns: OnceLock::new(),
            namespaces: Mutex::new(Vec::new()),
            _shared,
            _alone,
        }
    }

    pub fn stack(&self) -> &'static Stack {
        self.stack
    }

    /// The scenario's namespace, `PREFIX-PID-N`, created on first use.
    pub fn ns(&self) -> &str {
        self.ns.get_or_init(|| self.namespace(&self.prefix))
    }

    /// Another fresh namespace, `PREFIX-PID-N`, cleaned up with the scenario's.
    pub fn namespace(&self, prefix: &str) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let ns = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        self.kubectl_ok(&["create", "namespace", &ns]);
        self.namespaces.lock().unwrap().push(ns.clone());
        ns
    }

    // ---- kubectl and objects ----

    /// kubectl against the stack; (success, stdout, stderr).
    pub fn kubectl(&self, args: &[&str]) -> (bool, String, String) {
        self.stack.kubectl(args, None)
    }

    /// kubectl that must succeed; its stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        self.stack.kubectl_ok(args, None)
    }

    /// `kubectl apply` of a manifest (YAML or JSON).
    pub fn apply(&self, manifest: &str) {
        self.stack.apply(manifest);
    }

    /// Creates `object` in the scenario's namespace with its status written through the
    /// status subresource; returns its name.
    pub fn create(&self, resource: &str, object: &Value) -> String {
        self.stack
            .create_with_status(Some(self.ns()), resource, object)
    }

    /// A SeiNode with sidecar TLS (the seed's condition applies), no condition yet.
    pub fn seinode(&self, name: &str) {
        self.put_seinode(name, true, None);
    }

    /// A SeiNode without sidecar TLS (out of the seed's scope).
    pub fn seinode_without_tls(&self, name: &str) {
        self.put_seinode(name, false, None);
    }

    /// A SeiNode with sidecar TLS and its SidecarTLSSecretReady condition at `status`,
    /// `reason` (with the fixture's fixed lastTransitionTime).
    pub fn seinode_with(&self, name: &str, status: &str, reason: &str) {
        self.put_seinode(name, true, Some((status, reason)));
    }

    fn put_seinode(&self, name: &str, tls: bool, status: Option<(&str, &str)>) {
        let manifest = seistack::seinode(self.ns(), name, tls, status);
        self.stack
            .apply_with_status(Some(self.ns()), "seinodes.sei.io", &manifest);
    }

    /// Sets a SeiNode's SidecarTLSSecretReady condition through the status subresource, as
    /// the controller does, with the current time as its lastTransitionTime.
    pub fn set_condition(&self, name: &str, status: &str, reason: &str) {
        let patch = seistack::condition("SidecarTLSSecretReady", status, reason);
        self.stack
            .patch_status(Some(self.ns()), "seinodes.sei.io", name, &patch["status"]);
    }

    pub fn delete_seinode(&self, name: &str) {
        self.stack
            .delete_object(Some(self.ns()), "seinodes.sei.io", name);
    }

    /// Runs tests/bench/populate.py against the stack (bulk objects).
    pub fn populate(&self, args: &[&str]) {
        let status = Command::new("python3")
            .arg(super::repo_path("tests/bench/populate.py"))
            .args(args)
            .env("SEINODE_STACK_DIR", self.stack.dir())
            .status()
            .expect("python3 runs populate.py");
        assert!(status.success(), "populate.py {args:?}");
    }

    // ---- the watcher ----

    /// A watcher for this scenario: the stack's kubeconfig and collector, the scenario's
    /// namespace, [`EXPORT_INTERVAL`], instance `NS-watcher`; each can be changed.
    pub fn watcher(&self) -> WatcherCmd {
        WatcherCmd {
            namespace: Some(self.ns().to_owned()),
            kubeconfig: Some(self.stack.kubeconfig().into()),
            otlp_endpoint: Some(self.stack.otlp_endpoint().to_owned()),
            export_interval: Some(format!("{}ms", EXPORT_INTERVAL.as_millis())),
            ..Watcher::command(&format!("{}-watcher", self.ns()))
        }
    }

    /// `sei-condition-watcher check -n NS` against the stack.
    pub fn check(&self, ns: &str) -> Output {
        Command::new(BIN)
            .args(["check", "--kubeconfig"])
            .arg(self.stack.kubeconfig())
            .args(["-n", ns])
            .output()
            .expect("check runs")
    }

    // ---- Prometheus, Alertmanager, the webhook receiver ----

    /// A Prometheus instant query: (labels, value) per series.
    pub fn query(&self, expr: &str) -> Vec<Sample> {
        seistack::query(expr)
    }

    /// The value of a query that must return at most one series; None when it has none.
    pub fn query_one(&self, expr: &str) -> Option<f64> {
        let result = self.query(expr);
        assert!(
            result.len() <= 1,
            "{expr} returned {} series: {result:?}",
            result.len()
        );
        result.first().map(|(_, v)| *v)
    }

    /// `seinode_sidecar_tls_secret_ready` of a SeiNode of the scenario's namespace.
    pub fn ready(&self, name: &str) -> Option<f64> {
        self.query_one(&format!(
            "seinode_sidecar_tls_secret_ready{{namespace=\"{}\",name=\"{name}\"}}",
            self.ns()
        ))
    }

    /// A GET of the Prometheus HTTP API (`/api/v1/...`); the `data` of its answer.
    pub fn prometheus(&self, path: &str, params: &[(&str, &str)]) -> Value {
        self.try_prometheus(path, params)
            .unwrap_or_else(|e| panic!("Prometheus {path} {params:?}: {e}"))
    }

    /// As [`Scenario::prometheus`]; Err with the reason when Prometheus refuses it.
    pub fn try_prometheus(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        seistack::try_prometheus(path, params)
    }

    /// An alerting rule as Prometheus has loaded it (`query`, `duration`, `alerts`, ...).
    pub fn alert_rule(&self, name: &str) -> Value {
        super::loaded_rule(
            &self.prometheus("/api/v1/rules", &[("type", "alert")]),
            name,
        )
    }

    /// The raw samples (Unix seconds, value) of the one series a range selector (or a
    /// subquery) selects, in time order; none when it selects nothing.
    pub fn samples(&self, range_selector: &str) -> Vec<(f64, f64)> {
        let data = self.prometheus("/api/v1/query", &[("query", range_selector)]);
        let series = data["result"].as_array().expect("a matrix result");
        assert!(
            series.len() <= 1,
            "{range_selector} selects {} series",
            series.len()
        );
        let mut samples: Vec<(f64, f64)> = series
            .iter()
            .flat_map(|s| s["values"].as_array().cloned().expect("values"))
            .map(|v| {
                (
                    v[0].as_f64().expect("timestamp"),
                    v[1].as_str().and_then(|x| x.parse().ok()).expect("value"),
                )
            })
            .collect();
        samples.sort_by(|a, b| a.0.total_cmp(&b.0));
        samples
    }

    /// The alerts the webhook receiver was notified of about the scenario's namespace.
    pub fn notifications(&self) -> Vec<Value> {
        seistack::notifications(Some(self.ns()))
    }

    /// Records a measured figure in the run's figures.txt.
    pub fn figure(&self, line: &str) {
        self.stack.figure(line);
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let namespaces = self.namespaces.lock().map(|n| n.join(", "));
            eprintln!("left for a look: namespaces {namespaces:?}");
            return;
        }
        // No namespace controller runs in the stack: empty each namespace of the sei.io
        // kinds (one DELETE of the collection each), then mark it deleted.
        for ns in self.namespaces.lock().unwrap().iter() {
            for kind in KINDS {
                let _ = self.kubectl(&[
                    "delete",
                    "--raw",
                    &format!("/apis/sei.io/v1alpha1/namespaces/{ns}/{kind}"),
                ]);
            }
            let _ = self.kubectl(&["delete", "namespace", ns, "--wait=false"]);
        }
    }
}

/// A YAML (or JSON) fixture under tests/fixtures, parsed.
pub fn fixture(rel: &str) -> Value {
    super::yaml_file(&format!("tests/fixtures/{rel}"))
}

impl WatcherCmd {
    pub fn instance(mut self, instance: &str) -> Self {
        self.instance = instance.to_owned();
        self
    }

    /// Every namespace (no `--namespace`).
    pub fn cluster_wide(mut self) -> Self {
        self.namespace = None;
        self
    }

    pub fn kubeconfig(mut self, path: &Path) -> Self {
        self.kubeconfig = Some(OsString::from(path));
        self
    }

    pub fn otlp_endpoint(mut self, endpoint: &str) -> Self {
        self.otlp_endpoint = Some(endpoint.to_owned());
        self
    }

    /// `--export-interval` and `--refresh-interval`, e.g. `15s`; None for the binary's defaults.
    pub fn export_interval(mut self, interval: Option<&str>) -> Self {
        self.export_interval = interval.map(str::to_owned);
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Starts the watcher and waits for /readyz.
    pub fn ready(self) -> Watcher {
        let watcher = self.start();
        watcher.wait_ready();
        watcher
    }
}

impl Watcher {
    pub fn wait_ready(&self) {
        eventually(Duration::from_secs(30), "watcher /readyz 200", || {
            (self.admin_status("/readyz") == 200).then_some(())
        });
    }

    /// Waits (30 s at most) for the watcher to say that exports fail, lets `more` pass
    /// while further exports fail, and checks that it said so once; returns that line.
    pub fn one_export_failure(&self, more: Duration) -> String {
        eventually(
            Duration::from_secs(30),
            "a line saying the export failed",
            || (!self.export_failures().is_empty()).then_some(()),
        );
        std::thread::sleep(more);
        let mut lines = self.export_failures();
        assert_eq!(
            lines.len(),
            1,
            "one line for the whole outage, not one per export:\n{}",
            self.log_text()
        );
        lines.remove(0)
    }

    /// The warn lines about failed exports (rate-limited by the watcher).
    pub fn export_failures(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| l.contains("OTLP export to the collector failed"))
            .map(str::to_owned)
            .collect()
    }
}

/// A SeiNodeTask that failed (Failed latched True; upstream seeds no Ready for it): the
/// fixture task restarting full-node-0, timed out.
pub fn failed_task() -> Value {
    let mut task = fixture("current/seinodetask.yaml");
    task["metadata"]["name"] = serde_json::json!("full-node-0-restart");
    task["spec"] = serde_json::json!({"kind": "RestartSeid", "restartSeid": {},
        "target": {"nodeRef": {"name": "full-node-0"}}});
    task["status"] = serde_json::json!({"phase": "Failed", "observedGeneration": 1, "conditions": [
        {"type": "TargetReady", "status": "True", "reason": "PhaseMet", "message": "target full-node-0 is Running",
         "lastTransitionTime": "2026-08-04T12:00:00Z", "observedGeneration": 1},
        {"type": "Failed", "status": "True", "reason": "Timeout", "message": "task exceeded timeoutSeconds",
         "lastTransitionTime": "2026-08-04T12:30:00Z", "observedGeneration": 1},
    ]});
    task
}
