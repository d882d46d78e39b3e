//! Shared helpers for the integration tests: the running local stack (API server, collector,
//! Prometheus, Alertmanager), kubectl, Prometheus queries, and the watcher as a real process.
//!
//! The tests need a stack: `tests/run` starts one, or `tests/stack/stack up` by hand, then
//! `cargo test -- --include-ignored`. Each test works in its own namespace and runs its own
//! watcher restricted to it, so tests in one binary run in parallel without interfering.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const IGNORE_REASON: &str = "needs the local stack: run tests/run";

/// The export interval the tests' watchers use: short, so tests take seconds.
pub const EXPORT_INTERVAL: Duration = Duration::from_secs(2);

/// The running stack, found through $SEINODE_STACK_DIR (default /tmp/seinode-stack).
#[derive(Debug, Clone)]
pub struct Stack {
    pub dir: PathBuf,
    pub ports: BTreeMap<String, String>,
    pub repo: PathBuf,
}

impl Stack {
    pub fn get() -> Stack {
        let dir = PathBuf::from(
            std::env::var("SEINODE_STACK_DIR").unwrap_or_else(|_| "/tmp/seinode-stack".into()),
        );
        let ports_file = dir.join("ports.env");
        let text = std::fs::read_to_string(&ports_file).unwrap_or_else(|e| {
            panic!("no local stack at {} ({e}): start one with `tests/stack/stack up` or run `tests/run`", dir.display())
        });
        let ports = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Stack {
            dir,
            ports,
            repo: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        }
    }

    pub fn port(&self, name: &str) -> &str {
        self.ports
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from ports.env"))
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    pub fn otlp_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port("OTLP_GRPC_PORT"))
    }

    pub fn prometheus_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port("PROMETHEUS_PORT"))
    }

    pub fn alertmanager_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port("ALERTMANAGER_PORT"))
    }

    /// Runs kubectl against the stack; returns (success, stdout, stderr).
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig").arg(self.kubeconfig()).args(args);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl runs");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        } else {
            drop(child.stdin.take());
        }
        let out = child.wait_with_output().expect("kubectl output");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    /// kubectl that must succeed.
    pub fn kubectl_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, out, err) = self.kubectl(args, stdin);
        assert!(ok, "kubectl {args:?} failed: {err}");
        out
    }

    pub fn apply(&self, yaml: &str) {
        self.kubectl_ok(&["apply", "-f", "-"], Some(yaml));
    }

    /// Creates a fresh namespace named after the test.
    pub fn namespace(&self, prefix: &str) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let ns = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        self.kubectl_ok(&["create", "namespace", &ns], None);
        ns
    }

    /// Creates or replaces a SeiNode (TLS enabled when `tls`).
    pub fn seinode(&self, ns: &str, name: &str, tls: bool) {
        self.apply(&seinode_yaml(ns, name, tls));
    }

    /// Sets the SidecarTLSSecretReady condition through the status subresource, as the
    /// controller does.
    pub fn set_condition(&self, ns: &str, name: &str, status: &str, reason: &str) {
        let patch = serde_json::json!({"status": {"conditions": [{
            "type": "SidecarTLSSecretReady", "status": status, "reason": reason,
            "message": format!("set by test: {reason}"),
            "lastTransitionTime": jiff::Timestamp::now().round(jiff::Unit::Second).unwrap().to_string(),
        }]}});
        self.kubectl_ok(
            &[
                "-n",
                ns,
                "patch",
                "seinode",
                name,
                "--subresource=status",
                "--type=merge",
                "-p",
                &patch.to_string(),
            ],
            None,
        );
    }

    pub fn delete_seinode(&self, ns: &str, name: &str) {
        self.kubectl_ok(&["-n", ns, "delete", "seinode", name, "--wait=true"], None);
    }

    /// Runs tests/stack/stack with a subcommand (restart a component, ...).
    pub fn stack(&self, args: &[&str]) {
        self.stack_with_env(args, &[]);
    }

    /// As [`Stack::stack`], with extra environment (e.g. SEINODE_APISERVER_FEATURE_GATES).
    pub fn stack_with_env(&self, args: &[&str], env: &[(&str, &str)]) {
        let status = Command::new(self.repo.join("tests/stack/stack"))
            .args(args)
            .env("SEINODE_STACK_DIR", &self.dir)
            .envs(env.iter().copied())
            .status()
            .expect("stack script runs");
        assert!(status.success(), "stack {args:?} failed");
    }

    /// An instant query; returns (labels, value) for each series.
    pub fn query(&self, promql: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let body: Value = ureq::get(format!("{}/api/v1/query", self.prometheus_url()))
            .query("query", promql)
            .call()
            .unwrap_or_else(|e| panic!("Prometheus query {promql:?}: {e}"))
            .body_mut()
            .read_json()
            .expect("Prometheus answers JSON");
        body["data"]["result"]
            .as_array()
            .expect("a vector result")
            .iter()
            .map(|r| {
                let labels = r["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                    .collect();
                let value = r["value"][1]
                    .as_str()
                    .unwrap_or("NaN")
                    .parse()
                    .unwrap_or(f64::NAN);
                (labels, value)
            })
            .collect()
    }

    /// `seinode_sidecar_tls_secret_ready` of one SeiNode, or None when it has no sample.
    pub fn ready(&self, ns: &str, name: &str) -> Option<f64> {
        self.query_one(&format!(
            "seinode_sidecar_tls_secret_ready{{namespace=\"{ns}\",name=\"{name}\"}}"
        ))
    }

    /// The value of a query that must return exactly one series, or None when it has none.
    pub fn query_one(&self, promql: &str) -> Option<f64> {
        let result = self.query(promql);
        assert!(
            result.len() <= 1,
            "{promql} returned {} series: {result:?}",
            result.len()
        );
        result.first().map(|(_, v)| *v)
    }
}

pub fn seinode_yaml(ns: &str, name: &str, tls: bool) -> String {
    let sidecar = if tls {
        format!("\n  sidecar:\n    tls:\n      secretName: {name}-tls")
    } else {
        String::new()
    };
    format!(
        "apiVersion: sei.io/v1alpha1\nkind: SeiNode\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  chainId: pacific-1\n  image: ghcr.io/sei-protocol/sei:v6.3.0\n  fullNode: {{}}{sidecar}\n"
    )
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

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The watcher binary running as a real process against the stack.
pub struct Watcher {
    child: Option<Child>,
    pub admin: String,
    pub log: PathBuf,
    pub instance: String,
}

impl Watcher {
    /// Starts the watcher with the stack's kubeconfig and collector, plus `args`.
    pub fn start(stack: &Stack, instance: &str, args: &[&str]) -> Watcher {
        Self::start_with(stack, instance, args, &[])
    }

    pub fn start_with(
        stack: &Stack,
        instance: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Watcher {
        let admin = format!("127.0.0.1:{}", free_port());
        let log = std::env::temp_dir().join(format!(
            "seinode-watcher-{instance}-{}.log",
            std::process::id()
        ));
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sei-condition-watcher"));
        // Defaults for the stack, unless the test passes its own.
        let defaults = [
            ("--kubeconfig", stack.kubeconfig().display().to_string()),
            ("--otlp-endpoint", stack.otlp_endpoint()),
            (
                "--export-interval",
                format!("{}ms", EXPORT_INTERVAL.as_millis()),
            ),
        ];
        for (flag, value) in defaults {
            if !args.contains(&flag) {
                cmd.args([flag, value.as_str()]);
            }
        }
        let child = cmd
            .args(["--admin-addr", &admin, "--instance-id", instance])
            .args(args)
            .envs(env.iter().copied())
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("watcher starts");
        Watcher {
            child: Some(child),
            admin,
            log,
            instance: instance.to_owned(),
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET an admin path; returns the status code (0 when not answering).
    pub fn admin_status(&self, path: &str) -> u16 {
        match ureq::get(format!("http://{}{path}", self.admin))
            .config()
            .http_status_as_error(false)
            .build()
            .call()
        {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }

    pub fn wait_ready(&self) {
        eventually(Duration::from_secs(30), "watcher /readyz 200", || {
            (self.admin_status("/readyz") == 200).then_some(())
        });
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "watcher did not exit within 20 s of SIGTERM; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Records a measured figure: printed, and appended to $SEINODE_STACK_DIR/figures.txt,
/// which tests/run prints at the end of a run.
pub fn report_figure(stack: &Stack, line: &str) {
    eprintln!("{line}");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(stack.dir.join("figures.txt"))
        .expect("figures.txt");
    writeln!(file, "{line}").expect("write figures.txt");
}

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

// ---- Helpers for objects of any kind (tests/conditions.rs): create from a fixture, write
// ---- the status subresource, patch, delete. `resource` is `plural.group` (e.g.
// ---- `seinodes.sei.io`), which kubectl resolves without ambiguity; `ns` None for a
// ---- cluster-scoped resource.

/// A YAML (or JSON) fixture under tests/fixtures, parsed.
pub fn fixture(rel: &str) -> Value {
    yaml_file(&repo_path("tests/fixtures").join(rel))
}

fn with_namespace<'a>(ns: Option<&'a str>, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = Vec::new();
    if let Some(ns) = ns {
        all.extend(["-n", ns]);
    }
    all.extend_from_slice(args);
    all
}

impl Stack {
    /// Creates `object` (its `status`, if any, left out: the API server ignores it on
    /// create) in `ns`, then writes that status through the status subresource, as a
    /// controller does. Returns the object's name.
    pub fn create_with_status(&self, ns: Option<&str>, resource: &str, object: &Value) -> String {
        let mut object = object.clone();
        let status = object.as_object_mut().and_then(|o| o.remove("status"));
        if let Some(ns) = ns {
            object["metadata"]["namespace"] = Value::String(ns.to_owned());
        }
        let name = object["metadata"]["name"]
            .as_str()
            .expect("metadata.name")
            .to_owned();
        self.kubectl_ok(
            &with_namespace(ns, &["create", "-f", "-"]),
            Some(&object.to_string()),
        );
        if let Some(status) = status {
            self.patch_status(ns, resource, &name, &status);
        }
        name
    }

    /// Writes `status` (merge patch: lists such as `conditions` are replaced whole) through
    /// the status subresource.
    pub fn patch_status(&self, ns: Option<&str>, resource: &str, name: &str, status: &Value) {
        let patch = serde_json::json!({ "status": status }).to_string();
        self.kubectl_ok(
            &with_namespace(
                ns,
                &[
                    "patch",
                    resource,
                    name,
                    "--subresource=status",
                    "--type=merge",
                    "-p",
                    &patch,
                ],
            ),
            None,
        );
    }

    /// A merge patch of the object itself (spec, metadata).
    pub fn patch_merge(&self, ns: Option<&str>, resource: &str, name: &str, patch: &Value) {
        let patch = patch.to_string();
        self.kubectl_ok(
            &with_namespace(ns, &["patch", resource, name, "--type=merge", "-p", &patch]),
            None,
        );
    }

    /// The object as JSON.
    pub fn get_object(&self, ns: Option<&str>, resource: &str, name: &str) -> Value {
        let out = self.kubectl_ok(
            &with_namespace(ns, &["get", resource, name, "-o", "json"]),
            None,
        );
        serde_json::from_str(&out).expect("kubectl get -o json")
    }

    pub fn delete_object(&self, ns: Option<&str>, resource: &str, name: &str) {
        self.kubectl_ok(
            &with_namespace(ns, &["delete", resource, name, "--wait=true"]),
            None,
        );
    }

    /// Applies a CRD file (path relative to the repository) and waits until it is Established.
    pub fn install_crd_file(&self, rel: &str) {
        let path = repo_path(rel);
        let crd = yaml_file(&path);
        let name = crd["metadata"]["name"]
            .as_str()
            .expect("CRD name")
            .to_owned();
        self.kubectl_ok(&["apply", "-f", path.to_str().unwrap()], None);
        self.kubectl_ok(
            &[
                "wait",
                "--for",
                "condition=Established",
                "--timeout",
                "30s",
                &format!("crd/{name}"),
            ],
            None,
        );
    }
}

fn yaml_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Polls `f` every `every` until it returns Some, for at most `limit`; returns the value
/// and the time it took, or None at the limit (for measuring, where `eventually` panics).
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
