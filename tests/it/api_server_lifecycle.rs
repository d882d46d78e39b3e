//! Integration tests that disturb the whole API server (the CRD, a restart), so the tests
//! of this binary run one at a time (a lock) and restore what they changed. Cargo runs test
//! binaries one after another, so no other binary's tests run meanwhile.


use std::sync::Mutex;
use std::time::Duration;

use crate::harness::*;

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
                .contains("does not serve seinodes.sei.io: its CRD is not installed")
                .then_some(())
        },
    );
    // The API server answered that there is nothing to watch: a missing CRD does not hold
    // readiness (or the other resources) back.
    eventually(VISIBLE_WITHIN, "ready although the CRD is missing", || {
        (watcher.admin_status("/readyz") == 200).then_some(())
    });
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
        .matches("does not serve seinodes.sei.io: its CRD is not installed")
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
        || (stack.ready(&ns, "a") == Some(0.0)).then_some(()),
    );
    watcher.wait_ready();
    assert!(
        watcher.log_text().contains("watch recovered"),
        "{}",
        watcher.log_text()
    );
    assert!(watcher.terminate().success());
}

/// Restores the stack's API server to its default features when the test ends, passed or not.
struct DefaultFeatures<'a>(&'a Stack);

impl Drop for DefaultFeatures<'_> {
    fn drop(&mut self) {
        self.0.stack(&["restart", "kube-apiserver"]);
    }
}

/// Kubernetes 1.33 (and releases before 1.32) have WatchList off: the streaming list the
/// watcher starts with is refused, and it must fall back to paged lists by itself.
#[test]
#[ignore = "needs the local stack: run tests/run"]
fn falls_back_to_paged_lists_where_watch_list_is_off() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::get();
    let ns = stack.namespace("nowatchlist");
    stack.seinode(&ns, "a", true);
    stack.set_condition(&ns, "a", "False", "TLSSecretMalformed");
    stack.stack_with_env(
        &["restart", "kube-apiserver"],
        &[("SEINODE_APISERVER_FEATURE_GATES", "WatchList=false")],
    );
    let _restore = DefaultFeatures(&stack);

    let mut watcher = Watcher::start(&stack, &format!("{ns}-watcher"), &["--namespace", &ns]);
    watcher.wait_ready();
    eventually(
        VISIBLE_WITHIN,
        "the node exported after the fallback",
        || (stack.ready(&ns, "a") == Some(0.0)).then_some(()),
    );
    // And it keeps watching (not only listing): a change after the sync arrives.
    stack.set_condition(&ns, "a", "True", "TLSSecretReady");
    eventually(
        VISIBLE_WITHIN,
        "a later change arrives through the watch",
        || (stack.ready(&ns, "a") == Some(1.0)).then_some(()),
    );
    let log = watcher.log_text();
    assert_eq!(
        log.matches("refused a streaming list").count(),
        1,
        "one line about the fallback:\n{log}"
    );
    assert!(
        log.contains("--initial-list paged"),
        "the line says how to skip the attempt:\n{log}"
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
                stack.ready(&ns, "keep"),
                stack.ready(&ns, "flip"),
                stack.ready(&ns, "gone"),
                stack.ready(&ns, "new"),
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
    assert_eq!(stack.ready(&ns, "pacific-1-full-node"), Some(0.0));
    assert!(watcher.terminate().success());
}

/// Objects that the real CRD would reject, stored through a permissive CRD: each bad one is
/// logged once with namespace/name and why, counted, and skipped; the watch goes on and the
/// odd-but-valid ones are exported.
#[test]
#[ignore = "needs the local stack: run tests/run"]
fn bad_objects_are_logged_counted_and_skipped() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::get();
    let _restore = RestoreCrd(&stack);
    install_crd(&stack, "tests/fixtures/seinode-crd-permissive.yaml");
    let ns = stack.namespace("bad-input");
    stack.seinode(&ns, "good", true);
    stack.set_condition(&ns, "good", "False", "TLSSecretNotFound");
    let mut watcher = Watcher::start(&stack, &format!("{ns}-watcher"), &["--namespace", &ns]);
    watcher.wait_ready();

    let long_name = format!("n{}", "x".repeat(252));
    assert_eq!(long_name.len(), 253, "the longest name Kubernetes allows");
    let condition = |status: &str, reason: &str| serde_json::json!({"type": "SidecarTLSSecretReady", "status": status, "reason": reason, "message": "m", "lastTransitionTime": "2026-11-30T00:00:00Z"});
    let cases: Vec<(&str, serde_json::Value)> = vec![
        ("not-a-list", serde_json::json!({"conditions": "oops"})),
        (
            "no-status",
            serde_json::json!({"conditions": [{"type": "SidecarTLSSecretReady", "reason": "X"}]}),
        ),
        (
            "odd-case",
            serde_json::json!({"conditions": [condition("true", "TLSSecretReady")]}),
        ),
        (
            "wrong-type",
            serde_json::json!({"conditions": [{"type": "SidecarTLSSecretReady", "status": 1}]}),
        ),
        (
            "duplicate",
            serde_json::json!({"conditions": [condition("False", "TLSSecretMalformed"), condition("True", "TLSSecretReady")]}),
        ),
        (
            "unicode",
            serde_json::json!({"conditions": [condition("False", "Sécrét→Lost")]}),
        ),
        (
            long_name.as_str(),
            serde_json::json!({"conditions": [condition("False", "TLSSecretSANsMismatch")]}),
        ),
        (
            "huge",
            serde_json::json!({"plan": "x".repeat(1_500_000), "conditions": [condition("False", "TLSSecretUnavailable")]}),
        ),
    ];
    for (name, status) in &cases {
        stack.seinode(&ns, name, true);
        let patch = serde_json::json!({"status": status}).to_string();
        let path = stack.dir.join("status-patch.json");
        std::fs::write(&path, &patch).unwrap();
        stack.kubectl_ok(
            &[
                "-n",
                &ns,
                "patch",
                "seinode",
                name,
                "--subresource=status",
                "--type=merge",
                "--patch-file",
                path.to_str().unwrap(),
            ],
            None,
        );
    }
    // The watch continues: a later change of a good node arrives.
    stack.set_condition(&ns, "good", "True", "TLSSecretReady");
    let ready = |name: &str| {
        stack.query_one(&format!(
            "seinode_sidecar_tls_secret_ready{{namespace=\"{ns}\",name=\"{name}\"}}"
        ))
    };
    eventually(
        VISIBLE_WITHIN,
        "the good node's update after the bad ones",
        || (ready("good") == Some(1.0)).then_some(()),
    );

    // Odd but valid: exported.
    eventually(VISIBLE_WITHIN, "odd-but-valid objects exported", || {
        let reason = |name: &str| {
            stack
                .query(&format!(
                    "seinode_sidecar_tls_secret_status{{namespace=\"{ns}\",name=\"{name}\"}}"
                ))
                .first()
                .map(|(l, _)| l["reason"].clone())
        };
        (reason("duplicate").as_deref() == Some("TLSSecretMalformed")
            && reason("unicode").as_deref() == Some("InvalidReason")
            && reason(&long_name).as_deref() == Some("TLSSecretSANsMismatch")
            && reason("huge").as_deref() == Some("TLSSecretUnavailable"))
        .then_some(())
    });
    // Bad: skipped, keeping the verdict they had (TLS set, no condition yet).
    for name in ["not-a-list", "no-status", "odd-case", "wrong-type"] {
        let s = stack.query(&format!(
            "seinode_sidecar_tls_secret_status{{namespace=\"{ns}\",name=\"{name}\"}}"
        ));
        assert_eq!(s.len(), 1, "{name}: {s:?}");
        assert_eq!(
            s[0].0["reason"], "ConditionMissing",
            "{name} keeps its last known verdict"
        );
        let lines: Vec<String> = watcher
            .log_text()
            .lines()
            .filter(|l| l.contains("skipping SeiNode") && l.contains(&format!("name=\"{name}\"")))
            .map(str::to_owned)
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "{name}: one log line per bad object:\n{}",
            watcher.log_text()
        );
        assert!(
            lines[0].contains(&ns),
            "{name}: the line names the namespace: {}",
            lines[0]
        );
    }
    eventually(VISIBLE_WITHIN, "decode errors counted by kind", || {
        let count = |kind: &str| {
            stack
                .query_one(&format!(
                    "sei_condition_watcher_decode_errors_total{{instance=\"{}\",resource=\"seinodes.sei.io\",kind=\"{kind}\"}}",
                    watcher.instance
                ))
                .unwrap_or(0.0)
        };
        (count("conditions_not_a_list") == 1.0
            && count("missing_status") == 1.0
            && count("invalid_status") == 1.0
            && count("wrong_type") == 1.0)
            .then_some(())
    });
    assert!(!watcher.log_text().contains("panicked"));
    assert!(watcher.terminate().success());
}
