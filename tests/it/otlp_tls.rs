//! TLS and mTLS from the watcher to a real collector: a second collector of the stack's
//! build runs with otel-config/collector.yaml plus receiver-tls.overlay.yaml and
//! certificates signed by the stack's CA, writing to the stack's Prometheus. Also checks
//! that `--cluster-name` arrives as the `cluster` label, and that a server certificate the
//! watcher must not trust (another CA, or the right CA but another host name) is refused
//! and said so in one log line.

#[cfg(feature = "stack-tests")]
use std::path::Path;
#[cfg(feature = "stack-tests")]
use std::time::Duration;

use crate::harness::*;

/// The extensions of a collector's serving certificate: valid for the endpoint's host name.
#[cfg(feature = "stack-tests")]
const SERVING: &str = "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n";

#[cfg(feature = "stack-tests")]
#[test]
fn exports_over_tls_and_mtls_with_the_cluster_label() {
    let s = Scenario::new("otlp-tls");
    let dir = s.stack().dir().join("otlp-tls");
    std::fs::create_dir_all(&dir).unwrap();
    let stack_ca = Certificate::stack_ca();
    let server = stack_ca.issue(&dir, "collector", SERVING);
    let client = stack_ca.issue(
        &dir,
        "watcher",
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    );
    let ca = stack_ca.crt.to_str().unwrap();
    let ns = s.ns();
    s.seinode_with("a", "False", "TLSSecretNotFound");
    let exported_by = |instance: &str| {
        s.query_one(&format!("seinode_sidecar_tls_secret_ready{{namespace=\"{ns}\",name=\"a\",instance=\"{instance}\",cluster=\"tls-cluster\"}}"))
    };

    // TLS: the watcher verifies the collector with the CA.
    let tls = OwnCollector::tls(&dir, &server, None);
    let mut watcher = s
        .watcher()
        .instance(&format!("{ns}-tls"))
        .otlp_endpoint(&tls.endpoint)
        .args(["--otlp-ca-file", ca, "--cluster-name", "tls-cluster"])
        .start();
    eventually(
        Duration::from_secs(30),
        "exported over TLS, with the cluster label",
        || (exported_by(&watcher.instance) == Some(0.0)).then_some(()),
    );
    assert!(watcher.terminate().success());
    drop(tls);

    // mTLS: the collector requires a client certificate.
    let mtls = OwnCollector::tls(&dir, &server, Some(&stack_ca.crt));
    let mut without_cert = s
        .watcher()
        .instance(&format!("{ns}-nocert"))
        .otlp_endpoint(&mtls.endpoint)
        .args(["--otlp-ca-file", ca, "--export-timeout", "2s"])
        .start();
    let line = without_cert.one_export_failure(Duration::ZERO);
    // The collector's alert (CertificateRequired) or, when the watcher writes before
    // reading it, a broken pipe or a closed connection: each hint names the client
    // certificate.
    assert!(
        line.contains("client certificate"),
        "the line says why:\n{line}"
    );
    assert!(without_cert.terminate().success());
    let mut with_cert = s
        .watcher()
        .instance(&format!("{ns}-mtls"))
        .otlp_endpoint(&mtls.endpoint)
        .args([
            "--otlp-ca-file",
            ca,
            "--otlp-client-cert-file",
            client.crt.to_str().unwrap(),
            "--otlp-client-key-file",
            client.key.to_str().unwrap(),
            "--cluster-name",
            "tls-cluster",
        ])
        .start();
    eventually(Duration::from_secs(30), "exported over mTLS", || {
        (exported_by(&with_cert.instance) == Some(0.0)).then_some(())
    });
    assert!(
        !with_cert
            .log_text()
            .contains("export to the collector failed"),
        "{}",
        with_cert.log_text()
    );
    assert!(with_cert.terminate().success());

    // Half an mTLS configuration is a one-line error at start.
    let out = run_watcher(
        &[
            "--kubeconfig",
            s.stack().kubeconfig().to_str().unwrap(),
            "--otlp-endpoint",
            &mtls.endpoint,
            "--otlp-client-cert-file",
            client.crt.to_str().unwrap(),
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("mTLS needs both --otlp-client-cert-file and --otlp-client-key-file"),
        "{stderr}"
    );
}

/// A server certificate the watcher must not accept, however the rest is right: the
/// collector serves TLS, the watcher has the stack's CA, and the export is refused with one
/// log line that says why. Nothing from the watcher reaches Prometheus.
#[cfg(feature = "stack-tests")]
fn refused_certificate(case: &str, dir: &Path, cert: &Certificate, hint: &str) {
    let s = Scenario::new(case);
    let collector = OwnCollector::tls(dir, cert, None);
    s.seinode_with("a", "False", "TLSSecretNotFound");
    let mut watcher = s
        .watcher()
        .instance(s.ns())
        .otlp_endpoint(&collector.endpoint)
        .args([
            "--otlp-ca-file",
            Certificate::stack_ca().crt.to_str().unwrap(),
            "--export-timeout",
            "2s",
        ])
        .start();
    // Several exports (objects and self-metrics) fail meanwhile; still one line.
    let line = watcher.one_export_failure(EXPORT_INTERVAL * 3);
    assert!(line.contains(hint), "the line says why ({hint}):\n{line}");
    assert!(
        line.contains("invalid peer certificate"),
        "the line keeps the cause:\n{line}"
    );
    let instance = &watcher.instance;
    for query in [
        format!("seinode_sidecar_tls_secret_ready{{instance=\"{instance}\"}}"),
        format!("sei_condition_watcher_up{{instance=\"{instance}\"}}"),
    ] {
        assert_eq!(s.query_one(&query), None, "{query} arrived");
    }
    assert!(watcher.terminate().success());
}

#[cfg(feature = "stack-tests")]
#[test]
fn untrusted_and_wrong_name_certificates_are_refused() {
    let dir = Stack::get().dir().join("otlp-tls-refused");
    std::fs::create_dir_all(&dir).unwrap();

    // Signed by a CA the watcher was not given; the name is right.
    let untrusted = Certificate::new_ca(&dir, "untrusted-ca").issue(&dir, "untrusted", SERVING);
    refused_certificate(
        "tls-untrusted",
        &dir,
        &untrusted,
        "not signed by a CA the watcher trusts",
    );

    // Signed by the stack's CA, which the watcher trusts, but for another host name.
    let wrong_name = Certificate::stack_ca().issue(
        &dir,
        "wrong-name",
        "subjectAltName=DNS:collector.invalid\nextendedKeyUsage=serverAuth\n",
    );
    refused_certificate(
        "tls-wrong-name",
        &dir,
        &wrong_name,
        "not valid for the endpoint's host name",
    );
}

/// deploy/components/collector-tls carries the overlay as a file of its own (kustomize
/// reads no file outside the component): it must stay the same as the source.
#[test]
fn the_tls_component_carries_the_same_overlay() {
    let source = read("otel-config/receiver-tls.overlay.yaml");
    let copy = read("deploy/components/collector-tls/receiver-tls.overlay.yaml");
    assert_eq!(
        copy, source,
        "copy otel-config/receiver-tls.overlay.yaml to deploy/components/collector-tls/"
    );
}
