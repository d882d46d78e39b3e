//! TLS and mTLS from the watcher to a real collector: a second collector of the stack's
//! build runs with otel-config/collector.yaml plus receiver-tls.overlay.yaml and
//! certificates signed by the stack's CA, writing to the stack's Prometheus. Also checks
//! that `--cluster-name` arrives as the `cluster` label, and that a server certificate the
//! watcher must not trust (another CA, or the right CA but another host name) is refused
//! and said so in one log line.


use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::*;

/// Issues a certificate signed by the stack's CA with openssl (as the stack itself does).
fn issue(stack: &Stack, dir: &Path, name: &str, ext: &str) -> (PathBuf, PathBuf) {
    let pki = stack.dir.join("pki");
    issue_with(&pki.join("ca.crt"), &pki.join("ca.key"), dir, name, ext)
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issues a certificate signed by the CA `ca_crt`/`ca_key`.
fn issue_with(
    ca_crt: &Path,
    ca_key: &Path,
    dir: &Path,
    name: &str,
    ext: &str,
) -> (PathBuf, PathBuf) {
    let (key, csr, crt, extfile) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.csr")),
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.ext")),
    );
    std::fs::write(&extfile, ext).unwrap();
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        csr.to_str().unwrap(),
        "-subj",
        &format!("/CN={name}"),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        csr.to_str().unwrap(),
        "-CA",
        ca_crt.to_str().unwrap(),
        "-CAkey",
        ca_key.to_str().unwrap(),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        extfile.to_str().unwrap(),
        "-out",
        crt.to_str().unwrap(),
    ]);
    (crt, key)
}

/// A CA of the test's own, which the watcher is never given.
fn new_ca(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (crt, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        crt.to_str().unwrap(),
        "-subj",
        &format!("/CN={name}"),
        "-days",
        "1",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    (crt, key)
}

/// The watcher's warn lines about a failed export.
fn failure_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("OTLP export to the collector failed"))
        .collect()
}

struct TlsCollector {
    child: Child,
    endpoint: String,
}

impl Drop for TlsCollector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_tls_collector(
    stack: &Stack,
    dir: &Path,
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> TlsCollector {
    let otelcol = String::from_utf8(
        Command::new(stack.repo.join("tests/stack/stack"))
            .args(["bin", "otelcol"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let (grpc, health, metrics) = (free_port(), free_port(), free_port());
    let log = std::fs::File::create(dir.join(format!("otelcol-{grpc}.log"))).unwrap();
    let child = Command::new(otelcol.trim())
        .args([
            "--config",
            stack
                .repo
                .join("otel-config/collector.yaml")
                .to_str()
                .unwrap(),
        ])
        .args([
            "--config",
            stack
                .repo
                .join("otel-config/receiver-tls.overlay.yaml")
                .to_str()
                .unwrap(),
        ])
        .env(
            "PROMETHEUS_REMOTE_WRITE_URL",
            format!("{}/api/v1/write", stack.prometheus_url()),
        )
        .env("COLLECTOR_OTLP_GRPC_ENDPOINT", format!("127.0.0.1:{grpc}"))
        .env("COLLECTOR_HEALTH_ENDPOINT", format!("127.0.0.1:{health}"))
        .env("COLLECTOR_METRICS_HOST", "127.0.0.1")
        .env("COLLECTOR_METRICS_PORT", metrics.to_string())
        .env("COLLECTOR_TLS_CERT_FILE", cert)
        .env("COLLECTOR_TLS_KEY_FILE", key)
        .env(
            "COLLECTOR_TLS_CLIENT_CA_FILE",
            client_ca
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        )
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(30), "TLS collector healthy", || {
        ureq::get(format!("http://127.0.0.1:{health}/"))
            .call()
            .ok()
            .map(|_| ())
    });
    TlsCollector {
        child,
        endpoint: format!("https://localhost:{grpc}"),
    }
}

#[test]
#[ignore = "needs the local stack: run tests/run"]
fn exports_over_tls_and_mtls_with_the_cluster_label() {
    let stack = Stack::get();
    let dir = stack.dir.join("otlp-tls");
    std::fs::create_dir_all(&dir).unwrap();
    let (server_crt, server_key) = issue(
        &stack,
        &dir,
        "collector",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    );
    let (client_crt, client_key) = issue(
        &stack,
        &dir,
        "watcher",
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    );
    let ca = stack.dir.join("pki/ca.crt");
    let ns = stack.namespace("otlp-tls");
    stack.seinode(&ns, "a", true);
    stack.set_condition(&ns, "a", "False", "TLSSecretNotFound");
    let exported_by = |instance: &str| {
        stack.query_one(&format!("seinode_sidecar_tls_secret_ready{{namespace=\"{ns}\",name=\"a\",instance=\"{instance}\",cluster=\"tls-cluster\"}}"))
    };

    // TLS: the watcher verifies the collector with the CA.
    let tls = start_tls_collector(&stack, &dir, &server_crt, &server_key, None);
    let mut watcher = Watcher::start(
        &stack,
        &format!("{ns}-tls"),
        &[
            "--namespace",
            &ns,
            "--otlp-endpoint",
            &tls.endpoint,
            "--otlp-ca-file",
            ca.to_str().unwrap(),
            "--cluster-name",
            "tls-cluster",
        ],
    );
    eventually(
        Duration::from_secs(30),
        "exported over TLS, with the cluster label",
        || (exported_by(&watcher.instance) == Some(0.0)).then_some(()),
    );
    assert!(watcher.terminate().success());
    drop(tls);

    // mTLS: the collector requires a client certificate.
    let mtls = start_tls_collector(&stack, &dir, &server_crt, &server_key, Some(&ca));
    let mut without_cert = Watcher::start(
        &stack,
        &format!("{ns}-nocert"),
        &[
            "--namespace",
            &ns,
            "--otlp-endpoint",
            &mtls.endpoint,
            "--otlp-ca-file",
            ca.to_str().unwrap(),
            "--export-timeout",
            "2s",
        ],
    );
    eventually(
        Duration::from_secs(30),
        "refused without a client certificate",
        || {
            without_cert
                .log_text()
                .contains("OTLP export to the collector failed")
                .then_some(())
        },
    );
    let log = without_cert.log_text();
    let lines = failure_lines(&log);
    assert_eq!(lines.len(), 1, "one line for the outage:\n{log}");
    // The collector's alert (CertificateRequired) or, when the watcher writes before
    // reading it, a broken pipe or a closed connection: each hint names the client
    // certificate.
    assert!(
        lines[0].contains("client certificate"),
        "the line says why:\n{log}"
    );
    assert!(without_cert.terminate().success());
    let mut with_cert = Watcher::start(
        &stack,
        &format!("{ns}-mtls"),
        &[
            "--namespace",
            &ns,
            "--otlp-endpoint",
            &mtls.endpoint,
            "--otlp-ca-file",
            ca.to_str().unwrap(),
            "--otlp-client-cert-file",
            client_crt.to_str().unwrap(),
            "--otlp-client-key-file",
            client_key.to_str().unwrap(),
            "--cluster-name",
            "tls-cluster",
        ],
    );
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
    let out = Command::new(env!("CARGO_BIN_EXE_sei-condition-watcher"))
        .args([
            "--kubeconfig",
            stack.kubeconfig().to_str().unwrap(),
            "--otlp-endpoint",
            &mtls.endpoint,
            "--otlp-client-cert-file",
            client_crt.to_str().unwrap(),
        ])
        .args(["--admin-addr", &format!("127.0.0.1:{}", free_port())])
        .output()
        .unwrap();
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
fn refused_certificate(stack: &Stack, case: &str, cert: &Path, key: &Path, hint: &str) {
    let dir = cert.parent().unwrap();
    let collector = start_tls_collector(stack, dir, cert, key, None);
    let ns = stack.namespace(case);
    stack.seinode(&ns, "a", true);
    stack.set_condition(&ns, "a", "False", "TLSSecretNotFound");
    let ca = stack.dir.join("pki/ca.crt");
    let mut watcher = Watcher::start(
        stack,
        &ns,
        &[
            "--namespace",
            &ns,
            "--otlp-endpoint",
            &collector.endpoint,
            "--otlp-ca-file",
            ca.to_str().unwrap(),
            "--export-timeout",
            "2s",
        ],
    );
    eventually(Duration::from_secs(30), "the refusal is logged", || {
        (!failure_lines(&watcher.log_text()).is_empty()).then_some(())
    });
    // Several exports (objects and self-metrics) fail in this time; still one line.
    std::thread::sleep(EXPORT_INTERVAL * 3);
    let log = watcher.log_text();
    let lines = failure_lines(&log);
    assert_eq!(lines.len(), 1, "one line for the whole outage:\n{log}");
    assert!(
        lines[0].contains(hint),
        "the line says why ({hint}):\n{log}"
    );
    assert!(
        lines[0].contains("invalid peer certificate"),
        "the line keeps the cause:\n{log}"
    );
    let instance = &watcher.instance;
    for query in [
        format!("seinode_sidecar_tls_secret_ready{{instance=\"{instance}\"}}"),
        format!("sei_condition_watcher_up{{instance=\"{instance}\"}}"),
    ] {
        assert_eq!(stack.query_one(&query), None, "{query} arrived");
    }
    assert!(watcher.terminate().success());
}

#[test]
#[ignore = "needs the local stack: run tests/run"]
fn untrusted_and_wrong_name_certificates_are_refused() {
    let stack = Stack::get();
    let dir = stack.dir.join("otlp-tls-refused");
    std::fs::create_dir_all(&dir).unwrap();

    // Signed by a CA the watcher was not given; the name is right.
    let (other_ca, other_ca_key) = new_ca(&dir, "untrusted-ca");
    let (cert, key) = issue_with(
        &other_ca,
        &other_ca_key,
        &dir,
        "untrusted",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    );
    refused_certificate(
        &stack,
        "tls-untrusted",
        &cert,
        &key,
        "not signed by a CA the watcher trusts",
    );

    // Signed by the stack's CA, which the watcher trusts, but for another host name.
    let (cert, key) = issue(
        &stack,
        &dir,
        "wrong-name",
        "subjectAltName=DNS:collector.invalid\nextendedKeyUsage=serverAuth\n",
    );
    refused_certificate(
        &stack,
        "tls-wrong-name",
        &cert,
        &key,
        "not valid for the endpoint's host name",
    );
}

/// deploy/components/collector-tls carries the overlay as a file of its own (kustomize
/// reads no file outside the component): it must stay the same as the source.
#[test]
fn the_tls_component_carries_the_same_overlay() {
    let source =
        std::fs::read_to_string(repo_path("otel-config/receiver-tls.overlay.yaml")).unwrap();
    let copy = std::fs::read_to_string(repo_path(
        "deploy/components/collector-tls/receiver-tls.overlay.yaml",
    ))
    .unwrap();
    assert_eq!(
        copy, source,
        "copy otel-config/receiver-tls.overlay.yaml to deploy/components/collector-tls/"
    );
}
