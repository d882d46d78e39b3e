//! Integration tests that disturb the whole API server (the CRD, a restart), so each has
//! the stack to itself (`Scenario::alone`: no other stack test runs meanwhile) and restores
//! what it changed.

use std::time::Duration;

use crate::harness::*;

const VISIBLE_WITHIN: Duration = Duration::from_secs(30);
const OWN_CRD: &str = "tests/fixtures/seinode-crd.yaml";
const UPSTREAM_CRD: &str = "../shared/fixtures/upstream/sei.io_seinodes.yaml";

/// Puts the project's CRD back however the test ends.
struct RestoreCrd<'a>(&'a Stack);

impl Drop for RestoreCrd<'_> {
    fn drop(&mut self) {
        self.0.install_crd_file(OWN_CRD);
    }
}

#[test]
fn crd_installed_after_the_watcher_starts() {
    let s = Scenario::alone("late-crd");
    let _restore = RestoreCrd(s.stack());
    s.ns(); // created before the CRD goes
    s.kubectl_ok(&["delete", "crd", "seinodes.sei.io", "--wait=true"]);

    let mut watcher = s.watcher().cluster_wide().start();
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

    s.stack().install_crd_file(OWN_CRD);
    s.seinode_with("a", "False", "TLSSecretMalformed");
    // The watcher's backoff grows while the CRD is missing; it must pick the CRD up by itself.
    eventually(
        Duration::from_secs(90),
        "exported once the CRD exists",
        || (s.ready("a") == Some(0.0)).then_some(()),
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
        self.0.stack(&["restart", "kube-apiserver"], &[]);
    }
}

/// Kubernetes 1.33 (and releases before 1.32) have WatchList off: the streaming list the
/// watcher starts with is refused, and it must fall back to paged lists by itself.
#[test]
fn falls_back_to_paged_lists_where_watch_list_is_off() {
    let s = Scenario::alone("nowatchlist");
    s.seinode_with("a", "False", "TLSSecretMalformed");
    s.stack().stack(
        &["restart", "kube-apiserver"],
        &[("SEINODE_APISERVER_FEATURE_GATES", "WatchList=false")],
    );
    let _restore = DefaultFeatures(s.stack());

    let mut watcher = s.watcher().ready();
    eventually(
        VISIBLE_WITHIN,
        "the node exported after the fallback",
        || (s.ready("a") == Some(0.0)).then_some(()),
    );
    // And it keeps watching (not only listing): a change after the sync arrives.
    s.set_condition("a", "True", "TLSSecretReady");
    eventually(
        VISIBLE_WITHIN,
        "a later change arrives through the watch",
        || (s.ready("a") == Some(1.0)).then_some(()),
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
fn resync_after_an_api_server_restart() {
    let s = Scenario::alone("restart");
    let ns = s.ns();
    for name in ["keep", "flip", "gone"] {
        s.seinode_with(name, "True", "TLSSecretReady");
    }
    let mut watcher = s.watcher().ready();
    eventually(VISIBLE_WITHIN, "three nodes exported", || {
        (s.query(&format!(
            "seinode_sidecar_tls_secret_ready{{namespace=\"{ns}\"}}"
        ))
        .len()
            == 3)
            .then_some(())
    });

    s.stack().stack(&["restart", "kube-apiserver"], &[]);
    // Changes right after the restart, while the watcher is reconnecting with backoff.
    s.set_condition("flip", "False", "TLSSecretNotFound");
    s.delete_seinode("gone");
    s.seinode("new");
    s.set_condition("new", "False", "TLSSecretUnavailable");

    eventually(
        VISIBLE_WITHIN,
        "Prometheus matches the API server after the restart",
        || {
            let state = (
                s.ready("keep"),
                s.ready("flip"),
                s.ready("gone"),
                s.ready("new"),
            );
            (state == (Some(1.0), Some(0.0), None, Some(0.0))).then_some(())
        },
    );
    assert!(watcher.is_running(), "survived the restart");
    assert!(watcher.terminate().success());
}

#[test]
fn upstream_crd_and_sample_are_read() {
    let s = Scenario::alone("upstream");
    let _restore = RestoreCrd(s.stack());
    s.stack().install_crd_file(UPSTREAM_CRD);
    let ns = s.ns();

    // The upstream sample, as published, plus TLS (which the upstream schema validates).
    let sample = read("../shared/fixtures/upstream/sample-seinode-full-node.yaml");
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
    s.apply(&sample);
    // A status as upstream's controller writes it (every required field of the schema).
    let status = serde_json::json!({"status": {
        "phase": "Running",
        "sidecarTLS": {"secretName": "full-node-tls", "requiredDNSNames": [
            format!("pacific-1-full-node.{ns}.svc.cluster.local"),
            format!("pacific-1-full-node-0.pacific-1-full-node.{ns}.svc.cluster.local")]},
        "conditions": [{"type": "SidecarTLSSecretReady", "status": "False", "reason": "TLSSecretSANsMismatch",
                        "message": "cert is missing required DNS names", "observedGeneration": 1,
                        "lastTransitionTime": "2026-11-30T00:00:00Z"}]}});
    s.kubectl_ok(&[
        "-n",
        ns,
        "patch",
        "seinode",
        "pacific-1-full-node",
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);

    let mut watcher = s.watcher().ready();
    eventually(VISIBLE_WITHIN, "the upstream sample exported", || {
        let s = s.query(&format!(
            "seinode_sidecar_tls_secret_status{{namespace=\"{ns}\",name=\"pacific-1-full-node\"}}"
        ));
        (s.len() == 1 && s[0].0["reason"] == "TLSSecretSANsMismatch" && s[0].0["status"] == "False")
            .then_some(())
    });
    assert_eq!(s.ready("pacific-1-full-node"), Some(0.0));
    assert!(watcher.terminate().success());
}

/// Objects that the real CRD would reject, stored through a permissive CRD: each bad one is
/// logged once with namespace/name and why, counted, and keeps its last readable state; the
/// watch goes on and the odd-but-valid ones are exported.
#[test]
fn bad_objects_are_logged_counted_and_skipped() {
    let s = Scenario::alone("bad-input");
    let _restore = RestoreCrd(s.stack());
    s.stack()
        .install_crd_file("tests/fixtures/seinode-crd-permissive.yaml");
    let ns = s.ns();
    s.seinode_with("good", "False", "TLSSecretNotFound");
    let mut watcher = s.watcher().ready();

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
        s.seinode(name);
        let patch = serde_json::json!({"status": status}).to_string();
        let path = s.stack().dir().join("status-patch.json");
        std::fs::write(&path, &patch).unwrap();
        s.kubectl_ok(&[
            "-n",
            ns,
            "patch",
            "seinode",
            name,
            "--subresource=status",
            "--type=merge",
            "--patch-file",
            path.to_str().unwrap(),
        ]);
    }
    // The watch continues: a later change of a good node arrives.
    s.set_condition("good", "True", "TLSSecretReady");
    let ready = |name: &str| {
        s.query_one(&format!(
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
            s.query(&format!(
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
        let s = s.query(&format!(
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
            .filter(|l| l.contains("cannot be read") && l.contains(&format!("name=\"{name}\"")))
            .map(str::to_owned)
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "{name}: one log line per bad object:\n{}",
            watcher.log_text()
        );
        assert!(
            lines[0].contains(ns),
            "{name}: the line names the namespace: {}",
            lines[0]
        );
    }
    eventually(VISIBLE_WITHIN, "decode errors counted by kind", || {
        let count = |kind: &str| {
            s
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

/// Patches `name`'s status with `status` (JSON text) through a file: kubectl's argument
/// would be too long for the largest.
fn patch_status(s: &Scenario, name: &str, status: &str) {
    let path = s.stack().dir().join(format!("status-patch-{name}.json"));
    std::fs::write(&path, format!(r#"{{"status":{status}}}"#)).unwrap();
    s.kubectl_ok(&[
        "-n",
        s.ns(),
        "patch",
        "seinode",
        name,
        "--subresource=status",
        "--type=merge",
        "--patch-file",
        path.to_str().unwrap(),
    ]);
}

/// Issue 19, "one object blinds its whole kind" and "a 65th condition never arrives", on
/// the real API server through a permissive CRD (any `--resource` kind may have one):
/// - a SeiNode whose condition is nested 300 levels deep (past serde_json's 128) does not
///   fail the watch: no watch error, a healthy canary's later flip arrives, a watcher that
///   lists in pages becomes ready, and the poison's condition is exported as unreadable;
/// - a SeiNode with 70 conditions whose 70th is a broken signing key exports that key,
///   and the cut of 6.
#[test]
fn a_poison_object_blinds_nothing_and_a_late_broken_condition_is_exported() {
    let s = Scenario::alone("poison");
    let _restore = RestoreCrd(s.stack());
    s.stack()
        .install_crd_file("tests/fixtures/seinode-crd-permissive.yaml");
    let ns = s.ns();
    let condition = |type_: &str, status: &str, reason: &str| {
        serde_json::json!({"type": type_, "status": status, "reason": reason,
                           "lastTransitionTime": "2026-11-30T00:00:00Z"})
    };
    s.seinode_without_tls("canary");
    patch_status(
        &s,
        "canary",
        &serde_json::json!({"conditions": [condition("SigningKeyReady", "False", "SigningKeyInvalid")]})
            .to_string(),
    );
    let mut watcher = s.watcher().ready();
    let exported = |name: &str, type_: &str, status: &str| {
        s.query_one(&format!(
            "seinode_status_condition{{namespace=\"{ns}\",name=\"{name}\",type=\"{type_}\",status=\"{status}\"}}"
        ))
    };
    eventually(VISIBLE_WITHIN, "the canary's broken key", || {
        exported("canary", "SigningKeyReady", "False").map(|_| ())
    });

    // The poison: 300 levels of lists where the status should be.
    s.seinode_without_tls("poison");
    let deep = format!("{}\"False\"{}", "[".repeat(300), "]".repeat(300));
    patch_status(
        &s,
        "poison",
        &format!(r#"{{"conditions":[{{"type":"SigningKeyReady","status":{deep},"reason":"R"}}]}}"#),
    );
    // 70 conditions, the broken key last.
    s.seinode_without_tls("long");
    let mut many: Vec<serde_json::Value> = (0..69)
        .map(|i| condition(&format!("Extra{i}Ready"), "True", "Fine"))
        .collect();
    many.push(condition("SigningKeyReady", "False", "SigningKeyInvalid"));
    patch_status(
        &s,
        "long",
        &serde_json::json!({"conditions": many}).to_string(),
    );

    // The watch goes on: the canary's next change arrives after the poison.
    patch_status(
        &s,
        "canary",
        &serde_json::json!({"conditions": [condition("SigningKeyReady", "False", "SigningKeyMissing")]})
            .to_string(),
    );
    eventually(
        VISIBLE_WITHIN,
        "the canary's change after the poison",
        || {
            let series = s.query(&format!(
            "seinode_status_condition{{namespace=\"{ns}\",name=\"canary\",type=\"SigningKeyReady\"}}"
        ));
            (series.len() == 1 && series[0].0["reason"] == "SigningKeyMissing").then_some(())
        },
    );
    eventually(VISIBLE_WITHIN, "the poison's condition, unreadable", || {
        let series = s.query(&format!(
            "seinode_status_condition{{namespace=\"{ns}\",name=\"poison\",type=\"SigningKeyReady\"}}"
        ));
        (series.len() == 1
            && series[0].0["status"] == "Unknown"
            && series[0].0["reason"] == "StatusUnreadable")
            .then_some(())
    });
    eventually(
        VISIBLE_WITHIN,
        "the 70th condition, broken, and the cut",
        || {
            let cut = s.query_one(&format!(
                "seinode_status_conditions_truncated{{namespace=\"{ns}\",name=\"long\"}}"
            ));
            (exported("long", "SigningKeyReady", "False").is_some() && cut == Some(6.0))
                .then_some(())
        },
    );
    let errors = s.query_one(&format!(
        "sum(sei_condition_watcher_watch_errors_total{{instance=\"{}\",resource=\"seinodes.sei.io\"}})",
        watcher.instance
    ));
    assert!(
        errors.unwrap_or(0.0) == 0.0,
        "no watch error for the poison: {errors:?}\n{}",
        watcher.log_text()
    );

    // A watcher that lists in pages, started with the poison in the list, becomes ready
    // and exports the canary.
    let mut paged = s
        .watcher()
        .instance(&format!("{}-paged", watcher.instance))
        .args(["--initial-list", "paged"])
        .ready();
    eventually(VISIBLE_WITHIN, "the paged watcher's canary", || {
        s.query_one(&format!(
            "seinode_status_condition{{instance=\"{}\",namespace=\"{ns}\",name=\"canary\",status=\"False\"}}",
            paged.instance
        ))
        .map(|_| ())
    });
    for w in [&mut watcher, &mut paged] {
        assert!(!w.log_text().contains("panicked"));
        assert!(w.terminate().success());
    }
}
