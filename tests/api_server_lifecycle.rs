//! Integration tests that disturb the whole API server (the CRD, a restart), so the tests
//! of this binary run one at a time (a lock) and restore what they changed. Cargo runs test
//! binaries one after another, so no other binary's tests run meanwhile.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::*;

static SERIAL: Mutex<()> = Mutex::new(());

const VISIBLE_WITHIN: Duration = Duration::from_secs(30);
const OWN_CRD: &str = "tests/fixtures/seinode-crd.yaml";
const UPSTREAM_CRD: &str = "../shared/fixtures/upstream/sei.io_seinodes.yaml";

fn install_crd(stack: &Stack, path: &str) {
    let path = repo_path(path);
    stack.kubectl_ok(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            path.to_str().unwrap(),
        ],
        None,
    );
    stack.kubectl_ok(
        &[
            "wait",
            "--for",
            "condition=Established",
            "--timeout",
            "30s",
            "crd/seinodes.sei.io",
        ],
        None,
    );
}

/// Puts the project's CRD back however the test ends.
struct RestoreCrd<'a>(&'a Stack);

impl Drop for RestoreCrd<'_> {
    fn drop(&mut self) {
        install_crd(self.0, OWN_CRD);
    }
}

fn ready(stack: &Stack, ns: &str, name: &str) -> Option<f64> {
    stack.query_one(&format!(
        "seinode_sidecar_tls_secret_ready{{namespace=\"{ns}\",name=\"{name}\"}}"
    ))
}

#[test]
#[ignore = "needs the local stack: run tests/run"]
fn crd_installed_after_the_watcher_starts() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::get();
    let _restore = RestoreCrd(&stack);
    let ns = stack.namespace("late-crd");
    stack.kubectl_ok(&["delete", "crd", "seinodes.sei.io", "--wait=true"], None);

    let mut watcher = Watcher::start(&stack, &format!("{ns}-watcher"), &[]);
    eventually(
        VISIBLE_WITHIN,
        "a log line saying the CRD is missing",
        || {
            watcher
                .log_text()
                .contains("the SeiNode CRD is not installed")
                .then_some(())
        },
    );
    assert_eq!(
        watcher.admin_status("/readyz"),
        503,
        "not ready without the CRD"
    );
    assert_eq!(
        watcher.admin_status("/livez"),
        200,
        "but alive: no crash loop"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        watcher.is_running(),
        "still running while the CRD is missing"
    );
    let warnings = watcher
        .log_text()
        .matches("the SeiNode CRD is not installed")
        .count();
    assert_eq!(
        warnings,
        1,
        "the missing CRD is logged once, not on every retry:\n{}",
        watcher.log_text()
    );

    install_crd(&stack, OWN_CRD);
    stack.seinode(&ns, "a", true);
    stack.set_condition(&ns, "a", "False", "TLSSecretMalformed");
    // The watcher's backoff grows while the CRD is missing; it must pick the CRD up by itself.
    eventually(
        Duration::from_secs(90),
        "exported once the CRD exists",
        || (ready(&stack, &ns, "a") == Some(0.0)).then_some(()),
    );
    watcher.wait_ready();
    assert!(
        watcher.log_text().contains("SeiNode watch recovered"),
        "{}",
        watcher.log_text()
    );
    assert!(watcher.terminate().success());
}

#[test]
#[ignore = "needs the local stack: run tests/run"]
fn resync_after_an_api_server_restart() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::get();
    let ns = stack.namespace("restart");
    for name in ["keep", "flip", "gone"] {
        stack.seinode(&ns, name, true);
        stack.set_condition(&ns, name, "True", "TLSSecretReady");
    }
    let mut watcher = Watcher::start(&stack, &format!("{ns}-watcher"), &["--namespace", &ns]);
    watcher.wait_ready();
    eventually(VISIBLE_WITHIN, "three nodes exported", || {
        (stack
            .query(&format!(
                "seinode_sidecar_tls_secret_ready{{namespace=\"{ns}\"}}"
            ))
            .len()
            == 3)
            .then_some(())
    });

    stack.stack(&["restart", "kube-apiserver"]);
    // Changes right after the restart, while the watcher is reconnecting with backoff.
    stack.set_condition(&ns, "flip", "False", "TLSSecretNotFound");
    stack.delete_seinode(&ns, "gone");
    stack.seinode(&ns, "new", true);
    stack.set_condition(&ns, "new", "False", "TLSSecretUnavailable");

    eventually(
        VISIBLE_WITHIN,
        "Prometheus matches the API server after the restart",
        || {
            let state = (
                ready(&stack, &ns, "keep"),
                ready(&stack, &ns, "flip"),
                ready(&stack, &ns, "gone"),
                ready(&stack, &ns, "new"),
            );
            (state == (Some(1.0), Some(0.0), None, Some(0.0))).then_some(())
        },
    );
    assert!(watcher.is_running(), "survived the restart");
    assert!(watcher.terminate().success());
}

#[test]
#[ignore = "needs the local stack: run tests/run"]
fn upstream_crd_and_sample_are_read() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::get();
    let _restore = RestoreCrd(&stack);
    install_crd(&stack, UPSTREAM_CRD);
    let ns = stack.namespace("upstream");

    // The upstream sample, as published, plus TLS (which the upstream schema validates).
    let sample = std::fs::read_to_string(repo_path(
        "../shared/fixtures/upstream/sample-seinode-full-node.yaml",
    ))
    .unwrap();
    let sample = sample
        .replace("namespace: default", &format!("namespace: {ns}"))
        .replace(
            "  sidecar:\n    image:",
            "  sidecar:\n    tls:\n      secretName: full-node-tls\n    image:",
        );
    assert!(
        sample.contains("secretName: full-node-tls"),
        "the sample's layout changed: {sample}"
    );
    stack.apply(&sample);
    // A status as upstream's controller writes it (every required field of the schema).
    let status = serde_json::json!({"status": {
        "phase": "Running",
        "sidecarTLS": {"secretName": "full-node-tls", "requiredDNSNames": [
            format!("pacific-1-full-node.{ns}.svc.cluster.local"),
            format!("pacific-1-full-node-0.pacific-1-full-node.{ns}.svc.cluster.local")]},
        "conditions": [{"type": "SidecarTLSSecretReady", "status": "False", "reason": "TLSSecretSANsMismatch",
                        "message": "cert is missing required DNS names", "observedGeneration": 1,
                        "lastTransitionTime": "2026-11-30T00:00:00Z"}]}});
    stack.kubectl_ok(
        &[
            "-n",
            &ns,
            "patch",
            "seinode",
            "pacific-1-full-node",
            "--subresource=status",
            "--type=merge",
            "-p",
            &status.to_string(),
        ],
        None,
    );

    let mut watcher = Watcher::start(&stack, &format!("{ns}-watcher"), &["--namespace", &ns]);
    watcher.wait_ready();
    eventually(VISIBLE_WITHIN, "the upstream sample exported", || {
        let s = stack.query(&format!(
            "seinode_sidecar_tls_secret_status{{namespace=\"{ns}\",name=\"pacific-1-full-node\"}}"
        ));
        (s.len() == 1 && s[0].0["reason"] == "TLSSecretSANsMismatch" && s[0].0["status"] == "False")
            .then_some(())
    });
    assert_eq!(ready(&stack, &ns, "pacific-1-full-node"), Some(0.0));
    assert!(watcher.terminate().success());
}
