//! The running local stack: where it is (from `seistack.py env`), kubectl against it, objects
//! of any kind, its components, its webhook receiver and the figures file.
//!
//! `resource` arguments are `plural.group` (e.g. `seinodes.sei.io`), which kubectl resolves
//! without ambiguity; `ns` is None for a cluster-scoped resource.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use super::seistack;

/// The running stack (`$SEINODE_STACK_DIR`, default /tmp/seinode-stack).
#[derive(Debug)]
pub struct Stack {
    dir: PathBuf,
}

impl Stack {
    /// The stack, as `seistack.py env` describes it (read once).
    pub fn get() -> &'static Stack {
        static STACK: OnceLock<Stack> = OnceLock::new();
        STACK.get_or_init(|| Stack {
            dir: PathBuf::from(Stack::env("STACK_DIR")),
        })
    }

    /// A value of `seistack.py env`: a port (`APISERVER_PORT`, `OTLP_GRPC_PORT`, ...), a URL
    /// (`PROMETHEUS_URL`, `OTLP_ENDPOINT`, ...) or a path.
    pub fn env(name: &str) -> &'static str {
        Stack::env_opt(name).unwrap_or_else(|| panic!("{name} missing from `seistack.py env`"))
    }

    /// As [`Stack::env`], None when it is not set.
    pub fn env_opt(name: &str) -> Option<&'static str> {
        seistack::env().get(name).map(String::as_str)
    }

    /// The stack's directory: its kubeconfig, CA (`pki/`), webhook log, figures.
    pub fn dir(&self) -> &PathBuf {
        &self.dir
    }

    pub fn kubeconfig(&self) -> PathBuf {
        PathBuf::from(Stack::env("KUBECONFIG"))
    }

    pub fn otlp_endpoint(&self) -> &'static str {
        Stack::env("OTLP_ENDPOINT")
    }

    /// The stack collector's OTLP/HTTP metrics URL.
    pub fn otlp_http_endpoint(&self) -> &'static str {
        Stack::env("OTLP_HTTP_ENDPOINT")
    }

    /// Prometheus' own OTLP receiver (`--web.enable-otlp-receiver`).
    pub fn prometheus_otlp_endpoint(&self) -> &'static str {
        Stack::env("PROMETHEUS_OTLP_ENDPOINT")
    }

    /// A copy of the stack's kubeconfig whose server is `port` on loopback (a proxy, or a
    /// port where nothing listens), written to the stack's directory as `kubeconfig-TAG`.
    pub fn kubeconfig_via(&self, port: u16, tag: &str) -> PathBuf {
        let text = std::fs::read_to_string(self.kubeconfig()).unwrap();
        let server = format!("127.0.0.1:{}", Stack::env("APISERVER_PORT"));
        assert!(text.contains(&server), "{text}");
        let path = self.dir.join(format!("kubeconfig-{tag}"));
        std::fs::write(&path, text.replace(&server, &format!("127.0.0.1:{port}"))).unwrap();
        path
    }

    /// A kubeconfig that authenticates as ServiceAccount `service_account` of `ns` (a
    /// TokenRequest token, one hour), written to the stack's directory.
    pub fn token_kubeconfig(&self, ns: &str, service_account: &str) -> PathBuf {
        let token = self.kubectl_ok(
            &[
                "-n",
                ns,
                "create",
                "token",
                service_account,
                "--duration",
                "1h",
            ],
            None,
        );
        let path = self.dir.join(format!("{ns}-{service_account}.kubeconfig"));
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: s\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority: {}\n\
                 users:\n- name: sa\n  user:\n    token: {}\ncontexts:\n- name: sa\n  context: {{cluster: s, user: sa}}\ncurrent-context: sa\n",
                Stack::env("APISERVER_PORT"),
                self.dir.join("pki/ca.crt").display(),
                token.trim()
            ),
        )
        .unwrap();
        path
    }

    /// Runs kubectl against the stack; returns (success, stdout, stderr).
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("write stdin");
        }
        drop(input);
        let out = child.wait_with_output().expect("kubectl output");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    /// kubectl that must succeed; its stdout.
    /// The cluster identity a watcher of this stack exports without `--cluster-name`: the
    /// kube-system namespace's UID (read once).
    pub fn cluster_uid(&self) -> &'static str {
        static UID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        UID.get_or_init(|| {
            self.kubectl_ok(
                &[
                    "get",
                    "namespace",
                    "kube-system",
                    "-o",
                    "jsonpath={.metadata.uid}",
                ],
                None,
            )
            .trim()
            .to_owned()
        })
    }

    pub fn kubectl_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, out, err) = self.kubectl(args, stdin);
        assert!(ok, "kubectl {args:?} failed: {err}");
        out
    }

    /// `kubectl apply` of a manifest (YAML or JSON).
    pub fn apply(&self, manifest: &str) {
        self.kubectl_ok(&["apply", "-f", "-"], Some(manifest));
    }

    /// Creates the namespace unless it exists (tests may race to create it).
    pub fn ensure_namespace(&self, name: &str) {
        let (exists, _, _) = self.kubectl(&["get", "namespace", name], None);
        if !exists {
            let (ok, _, err) = self.kubectl(&["create", "namespace", name], None);
            assert!(ok || err.contains("AlreadyExists"), "{err}");
        }
    }

    /// Creates `object` (its `status`, if any, left out: the API server ignores it on
    /// create) in `ns`, then writes that status through the status subresource, as a
    /// controller does. Returns the object's name.
    pub fn create_with_status(&self, ns: Option<&str>, resource: &str, object: &Value) -> String {
        self.put_with_status("create", ns, resource, object)
    }

    /// As [`Stack::create_with_status`], replacing the object when it exists.
    pub fn apply_with_status(&self, ns: Option<&str>, resource: &str, object: &Value) -> String {
        self.put_with_status("apply", ns, resource, object)
    }

    fn put_with_status(
        &self,
        verb: &str,
        ns: Option<&str>,
        resource: &str,
        object: &Value,
    ) -> String {
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
            &in_namespace(ns, &[verb, "-f", "-"]),
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
            &in_namespace(
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
            &in_namespace(ns, &["patch", resource, name, "--type=merge", "-p", &patch]),
            None,
        );
    }

    /// The object as JSON.
    pub fn get_object(&self, ns: Option<&str>, resource: &str, name: &str) -> Value {
        let out = self.kubectl_ok(
            &in_namespace(ns, &["get", resource, name, "-o", "json"]),
            None,
        );
        serde_json::from_str(&out).expect("kubectl get -o json")
    }

    pub fn delete_object(&self, ns: Option<&str>, resource: &str, name: &str) {
        self.kubectl_ok(
            &in_namespace(ns, &["delete", resource, name, "--wait=true"]),
            None,
        );
    }

    /// Applies a CRD file of the repository (server-side, taking over fields another
    /// manager set) and waits until it is Established.
    pub fn install_crd_file(&self, rel: &str) {
        let path = super::repo_path(rel);
        let name = super::yaml_file(rel)["metadata"]["name"]
            .as_str()
            .expect("CRD name")
            .to_owned();
        self.kubectl_ok(
            &[
                "apply",
                "--server-side",
                "--force-conflicts",
                "-f",
                path.to_str().unwrap(),
            ],
            None,
        );
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

    /// Runs tests/stack/stack with a subcommand (restart a component, ...) and extra
    /// environment (e.g. SEINODE_APISERVER_FEATURE_GATES).
    pub fn stack(&self, args: &[&str], env: &[(&str, &str)]) {
        let status = Command::new(super::repo_path("tests/stack/stack"))
            .args(args)
            .env("SEINODE_STACK_DIR", &self.dir)
            .envs(env.iter().copied())
            .status()
            .expect("tests/stack/stack runs");
        assert!(status.success(), "tests/stack/stack {args:?} failed");
    }

    /// The path of a built stack binary (`tests/stack/stack bin COMPONENT`).
    pub fn bin(component: &str) -> PathBuf {
        let out = Command::new(super::repo_path("tests/stack/stack"))
            .args(["bin", component])
            .output()
            .expect("tests/stack/stack runs");
        let bin = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        assert!(
            bin.is_file(),
            "{} is not built: run `tests/stack/stack build {component}`",
            bin.display()
        );
        bin
    }

    /// Records a measured figure: printed, and appended to the stack's figures.txt, which
    /// tests/run prints at the end of a run.
    pub fn figure(&self, line: &str) {
        eprintln!("{line}");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("figures.txt"))
            .expect("figures.txt");
        writeln!(file, "{line}").expect("write figures.txt");
    }
}

fn in_namespace<'a>(ns: Option<&'a str>, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = Vec::new();
    if let Some(ns) = ns {
        all.extend(["-n", ns]);
    }
    all.extend_from_slice(args);
    all
}

/// A fresh directory for a stack or a fleet of a test's own (`mktemp -d`, named PREFIX.XXXXXX).
pub fn fresh_stack_dir(prefix: &str) -> PathBuf {
    let out = Command::new("mktemp")
        .args(["-d", "-t", &format!("{prefix}.XXXXXX")])
        .output()
        .expect("mktemp runs");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// tests/stack/stack ARGS on the stack (or fleet) in `dir`, which must succeed.
pub fn stack_in(dir: &std::path::Path, args: &[&str]) {
    let status = Command::new(super::repo_path("tests/stack/stack"))
        .args(args)
        .env("SEINODE_STACK_DIR", dir)
        .status()
        .expect("tests/stack/stack runs");
    assert!(status.success(), "tests/stack/stack {args:?} in {dir:?}");
}
