//! Integration tests through the whole real pipeline: kube-apiserver -> watcher (as a
//! process) -> OpenTelemetry Collector -> Prometheus. Each test has its own namespace and
//! watcher, so they run in parallel.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::harness::*;

/// Two export intervals plus the collector's and Prometheus' ingestion, with room: the
/// budget within which a change must be visible. Deletions must beat Prometheus' 5-minute
/// lookback by far, which is what the staleness markers are for.
const VISIBLE_WITHIN: Duration = Duration::from_secs(30);

#[test]
fn create_update_delete_arrive_in_prometheus_with_exact_names_and_labels() {
    let s = Scenario::new("pipeline");
    let ns = s.ns();
    let mut watcher = s.watcher().start();

    // The condition written now: its lastTransitionTime is checked below.
    s.seinode("broken");
    s.set_condition("broken", "False", "TLSSecretNotFound");
    s.seinode("pending"); // TLS set, controller has not reconciled yet
    s.seinode_without_tls("plain"); // no TLS: out of scope
    watcher.wait_ready();

    eventually(VISIBLE_WITHIN, "broken node exported as 0", || {
        (s.ready("broken") == Some(0.0)).then_some(())
    });
    eventually(VISIBLE_WITHIN, "pending node has a status series", || {
        (s.query_one(&format!("seinode_sidecar_tls_secret_status{{namespace=\"{ns}\",name=\"pending\",status=\"Unknown\",reason=\"ConditionMissing\"}}")) == Some(1.0)).then_some(())
    });

    // Exactly these names arrive, with no unit or type suffix added by the translation: the
    // seed's three, and the condition itself as one of every SeiNode's conditions.
    let series = s.query(&format!("{{namespace=\"{ns}\",__name__=~\"seinode_.*\"}}"));
    let names: BTreeSet<String> = series.iter().map(|(l, _)| l["__name__"].clone()).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "seinode_sidecar_tls_secret_ready".to_owned(),
            "seinode_sidecar_tls_secret_status".to_owned(),
            "seinode_sidecar_tls_secret_last_transition_timestamp_seconds".to_owned(),
            "seinode_status_condition".to_owned(),
            "seinode_status_condition_last_transition_timestamp_seconds".to_owned(),
        ])
    );
    for (labels, _) in &series {
        assert_eq!(
            labels["namespace"], ns,
            "namespace label intact: {labels:?}"
        );
        assert_eq!(labels["job"], "sei-condition-watcher");
        assert_eq!(labels["instance"], watcher.instance);
        assert!(
            !labels.contains_key("otel_scope_name"),
            "no scope labels: {labels:?}"
        );
        let expected: BTreeSet<&str> = match labels["__name__"].as_str() {
            "seinode_sidecar_tls_secret_status" => [
                "__name__",
                "cluster",
                "instance",
                "job",
                "name",
                "namespace",
                "reason",
                "status",
            ]
            .into(),
            "seinode_status_condition" => [
                "__name__",
                "cluster",
                "instance",
                "job",
                "name",
                "namespace",
                "reason",
                "status",
                "type",
            ]
            .into(),
            "seinode_status_condition_last_transition_timestamp_seconds" => [
                "__name__",
                "cluster",
                "instance",
                "job",
                "name",
                "namespace",
                "type",
            ]
            .into(),
            _ => [
                "__name__",
                "cluster",
                "instance",
                "job",
                "name",
                "namespace",
            ]
            .into(),
        };
        assert_eq!(
            labels.keys().map(String::as_str).collect::<BTreeSet<_>>(),
            expected
        );
    }
    assert!(
        series.iter().all(|(l, _)| l["name"] != "plain"),
        "out-of-scope node not exported"
    );
    assert!(
        s.ready("pending").is_none(),
        "no ready sample while the condition is missing"
    );
    let since = s.query_one(&format!("seinode_sidecar_tls_secret_last_transition_timestamp_seconds{{namespace=\"{ns}\",name=\"broken\"}}")).unwrap();
    assert!(
        (since - jiff::Timestamp::now().as_second() as f64).abs() < 600.0,
        "lastTransitionTime exported: {since}"
    );
    let up = s.query(&format!(
        "sei_condition_watcher_up{{instance=\"{}\"}}",
        watcher.instance
    ));
    assert_eq!(up.len(), 1, "heartbeat exported without a suffix");

    // Status update: the old reason's series stops matching, the new one appears.
    s.set_condition("broken", "True", "TLSSecretReady");
    eventually(VISIBLE_WITHIN, "fixed node exported as 1", || {
        (s.ready("broken") == Some(1.0)).then_some(())
    });
    eventually(
        VISIBLE_WITHIN,
        "one status series per node after a reason change",
        || {
            let series = s.query(&format!(
                "seinode_sidecar_tls_secret_status{{namespace=\"{ns}\",name=\"broken\"}}"
            ));
            (series.len() == 1 && series[0].0["reason"] == "TLSSecretReady").then_some(())
        },
    );

    // Delete: every series of the node stops matching long before the 5-minute lookback.
    s.delete_seinode("broken");
    let deleted_at = Instant::now();
    eventually(
        VISIBLE_WITHIN,
        "deleted node's series stop matching",
        || {
            s.query(&format!("{{namespace=\"{ns}\",name=\"broken\"}}"))
                .is_empty()
                .then_some(())
        },
    );
    s.figure(&format!(
        "pipeline: deleted SeiNode's series stopped matching after {:.1?}",
        deleted_at.elapsed()
    ));
    // ... because the watcher sent staleness markers, not because anything timed out.
    eventually(VISIBLE_WITHIN, "staleness markers counted", || {
        let sent = s.query_one(&format!(
            "sei_condition_watcher_staleness_markers_total{{instance=\"{}\"}}",
            watcher.instance
        ));
        (sent.unwrap_or(0.0) >= 3.0).then_some(())
    });

    let status = watcher.terminate();
    assert!(
        status.success(),
        "clean exit on SIGTERM: {status:?}\n{}",
        watcher.log_text()
    );
    assert!(
        watcher.log_text().contains("final export done"),
        "{}",
        watcher.log_text()
    );
}

#[test]
fn check_command_reports_the_table_and_exit_code() {
    let s = Scenario::new("check");
    s.seinode_with("a", "True", "TLSSecretReady");
    let out = s.check(s.ns());
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("KIND"), "{table}");
    assert_eq!(
        table.lines().count(),
        1,
        "only the header: nothing needs attention\n{table}"
    );

    s.seinode_with("b", "False", "TLSSecretSANsMismatch");
    let out = s.check(s.ns());
    assert_eq!(
        out.status.code(),
        Some(1),
        "a not-ready node fails the check"
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.lines().any(|l| l.contains(" b ")
            && l.contains("SidecarTLSSecretReady")
            && l.contains("False")
            && l.contains("TLSSecretSANsMismatch")),
        "{table}"
    );
}

#[test]
fn bad_configuration_fails_with_one_clear_line() {
    let s = Scenario::new("bad-config");
    let kubeconfig = s.stack().kubeconfig();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--otlp-endpoint", "not a url"],
            "OTLP endpoint \"not a url\"",
        ),
        (
            vec!["--otlp-endpoint", "ftp://collector:4317"],
            "needs http:// or https://",
        ),
        (vec!["--context", "no-such-context"], "no-such-context"),
    ];
    for (args, expected) in cases {
        let mut all = vec!["--kubeconfig", kubeconfig.to_str().unwrap()];
        all.extend(&args);
        let out = run_watcher(&all, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in {stderr}"
        );
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{args:?}: one line: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn unreachable_api_server_and_tls_to_plaintext_collector_are_one_clear_line_each() {
    let s = Scenario::new("tls-mismatch");
    // An API server address where nothing listens: the watcher keeps retrying, says so once.
    let kubeconfig = s.stack().kubeconfig_via(free_port(), "unreachable");
    let mut unreachable = s
        .watcher()
        .instance("unreachable-api")
        .cluster_wide()
        .kubeconfig(&kubeconfig)
        .start();
    eventually(
        Duration::from_secs(20),
        "a line saying the API server cannot be reached",
        || {
            unreachable
                .log_text()
                .contains("cannot reach the API server")
                .then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        unreachable
            .log_text()
            .matches("cannot reach the API server")
            .count(),
        1,
        "said once, not per retry:\n{}",
        unreachable.log_text()
    );
    assert!(unreachable.is_running(), "keeps retrying");
    assert_eq!(unreachable.admin_status("/readyz"), 503);
    assert!(unreachable.terminate().success());

    // https:// to the plaintext collector: the TLS handshake fails, each export says so.
    let tls_endpoint = format!("https://127.0.0.1:{}", Stack::env("OTLP_GRPC_PORT"));
    let mut mismatch = s
        .watcher()
        .instance("tls-mismatch")
        .otlp_endpoint(&tls_endpoint)
        .args(["--export-timeout", "2s"])
        .start();
    // Rate-limited to one line.
    let line = mismatch.one_export_failure(Duration::from_secs(5));
    eprintln!("TLS to a plaintext collector logs: {line}");
    assert!(
        line.contains("the collector does not speak TLS on this port"),
        "{line}"
    );
    assert!(mismatch.is_running());
    assert!(mismatch.terminate().success());
}
