//! deploy/ against the real API server (RBAC on): the manifests apply server-side, and the
//! watcher runs as the ServiceAccount those manifests define, with exactly the access they
//! grant: it reads SeiNodes; it is refused Secrets and writes.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::*;

/// The tests share the watcher's namespace and RBAC objects.
static SERIAL: Mutex<()> = Mutex::new(());
const NAMESPACE: &str = "sei-condition-watcher";

fn ensure_namespace(stack: &Stack, name: &str) {
    let (exists, _, _) = stack.kubectl(&["get", "namespace", name], None);
    if !exists {
        stack.kubectl_ok(&["create", "namespace", name], None);
    }
}

/// `kubectl apply --server-side --dry-run=server -k DIR`; returns what kubectl printed.
fn dry_run_apply(stack: &Stack, dir: &str) -> String {
    let path = repo_path(dir);
    let (ok, out, err) = stack.kubectl(
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "-k",
            path.to_str().unwrap(),
        ],
        None,
    );
    assert!(ok, "{dir} does not apply: {err}\n{out}");
    out
}

/// A kubeconfig that authenticates as a ServiceAccount of NAMESPACE (a TokenRequest token).
fn token_kubeconfig(stack: &Stack, service_account: &str) -> std::path::PathBuf {
    let token = stack.kubectl_ok(
        &[
            "-n",
            NAMESPACE,
            "create",
            "token",
            service_account,
            "--duration",
            "1h",
        ],
        None,
    );
    let path = stack.dir.join(format!("{service_account}.kubeconfig"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: s\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority: {}\n\
             users:\n- name: sa\n  user:\n    token: {}\ncontexts:\n- name: sa\n  context: {{cluster: s, user: sa}}\ncurrent-context: sa\n",
            stack.port("APISERVER_PORT"),
            stack.dir.join("pki/ca.crt").display(),
            token.trim()
        ),
    )
    .unwrap();
    path
}

#[test]
#[ignore = "needs the local stack: run tests/run"]
fn manifests_apply_server_side() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::get();
    ensure_namespace(&stack, NAMESPACE);
    let out = dry_run_apply(&stack, "deploy");
    for object in [
        "deployment.apps/sei-condition-watcher",
        "clusterrole.rbac.authorization.k8s.io/sei-condition-watcher",
        "networkpolicy.networking.k8s.io/sei-condition-watcher",
        "deployment.apps/otel-collector",
        "configmap/otel-collector",
        "service/otel-collector",
    ] {
        assert!(out.contains(object), "{object} not applied: {out}");
    }
    // The namespaced variant needs its target namespace.
    ensure_namespace(&stack, "sei");
    let out = dry_run_apply(&stack, "deploy/watcher-namespaced");
    assert!(
        out.contains("role.rbac.authorization.k8s.io/sei-condition-watcher"),
        "{out}"
    );
}

#[test]
#[ignore = "needs the local stack: run tests/run"]
fn watcher_runs_with_least_privilege() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::get();
    ensure_namespace(&stack, NAMESPACE);
    for file in [
        "deploy/watcher/serviceaccount.yaml",
        "deploy/watcher/rbac.yaml",
    ] {
        stack.kubectl_ok(
            &[
                "-n",
                NAMESPACE,
                "apply",
                "--server-side",
                "-f",
                repo_path(file).to_str().unwrap(),
            ],
            None,
        );
    }
    let kubeconfig = token_kubeconfig(&stack, "sei-condition-watcher");
    let as_watcher = |args: &[&str]| {
        let mut full = vec!["--kubeconfig", kubeconfig.to_str().unwrap()];
        full.extend_from_slice(args);
        let out = std::process::Command::new("kubectl")
            .args(&full)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };

    // Allowed: reading SeiNodes.
    let (ok, err) = as_watcher(&["get", "seinodes", "-A"]);
    assert!(ok, "the watcher's identity cannot list SeiNodes: {err}");
    // Refused: Secrets, and any write to SeiNodes.
    let ns = stack.namespace("rbac");
    stack.seinode(&ns, "a", true);
    stack.set_condition(&ns, "a", "False", "TLSSecretNotFound");
    for (what, args) in [
        ("read Secrets", vec!["-n", ns.as_str(), "get", "secrets"]),
        ("read Secrets cluster-wide", vec!["get", "secrets", "-A"]),
        (
            "patch SeiNode status",
            vec![
                "-n",
                ns.as_str(),
                "patch",
                "seinode",
                "a",
                "--subresource=status",
                "--type=merge",
                "-p",
                r#"{"status":{"phase":"x"}}"#,
            ],
        ),
        (
            "delete SeiNodes",
            vec!["-n", ns.as_str(), "delete", "seinode", "a"],
        ),
        (
            "create SeiNodes",
            vec!["-n", ns.as_str(), "create", "-f", "/dev/null"],
        ),
    ] {
        let (ok, err) = as_watcher(&args);
        assert!(!ok, "the watcher's identity may {what}");
        if what != "create SeiNodes" {
            assert!(
                err.contains("Forbidden") || err.contains("forbidden"),
                "{what}: {err}"
            );
        }
    }

    // And the watcher itself works under that identity.
    let mut watcher = Watcher::start(
        &stack,
        &format!("{ns}-sa-watcher"),
        &["--kubeconfig", kubeconfig.to_str().unwrap()],
    );
    watcher.wait_ready();
    eventually(
        Duration::from_secs(30),
        "exported by the least-privileged watcher",
        || {
            (stack.query_one(&format!(
                "seinode_sidecar_tls_secret_ready{{namespace=\"{ns}\",name=\"a\",instance=\"{}\"}}",
                watcher.instance
            )) == Some(0.0))
            .then_some(())
        },
    );
    assert!(
        !watcher.log_text().contains("forbidden"),
        "{}",
        watcher.log_text()
    );
    assert!(watcher.terminate().success());
}

#[test]
#[ignore = "needs the local stack: run tests/run"]
fn missing_permission_is_one_clear_line() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::get();
    ensure_namespace(&stack, NAMESPACE);
    // A ServiceAccount without the ClusterRoleBinding: the namespaced variant's identity
    // watching cluster-wide by mistake. (It may exist from an earlier run on this stack.)
    let _ = stack.kubectl(
        &[
            "-n",
            NAMESPACE,
            "create",
            "serviceaccount",
            "unbound-watcher",
        ],
        None,
    );
    let path = token_kubeconfig(&stack, "unbound-watcher");
    let mut watcher = Watcher::start(
        &stack,
        "unbound-watcher",
        &["--kubeconfig", path.to_str().unwrap()],
    );
    eventually(Duration::from_secs(20), "a forbidden log line", || {
        watcher
            .log_text()
            .contains("grant this identity get, list and watch on seinodes.sei.io")
            .then_some(())
    });
    assert_eq!(watcher.admin_status("/readyz"), 503);
    assert!(watcher.is_running(), "no crash on forbidden");
    assert!(watcher.terminate().success());
}
