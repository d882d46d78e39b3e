//! TLS and mTLS from the watcher to a real collector: a second collector of the stack's
//! build runs with otel-config/collector.yaml plus receiver-tls.overlay.yaml and
//! certificates signed by the stack's CA, writing to the stack's Prometheus. Also checks
//! that `--cluster-name` arrives as the `cluster` label.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// Issues a certificate signed by the stack's CA with openssl (as the stack itself does).
fn issue(stack: &Stack, dir: &Path, name: &str, ext: &str) -> (PathBuf, PathBuf) {
    let pki = stack.dir.join("pki");
    let (key, csr, crt, extfile) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.csr")),
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.ext")),
    );
    std::fs::write(&extfile, ext).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
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
    run(&[
        "x509",
        "-req",
        "-in",
        csr.to_str().unwrap(),
        "-CA",
        pki.join("ca.crt").to_str().unwrap(),
        "-CAkey",
        pki.join("ca.key").to_str().unwrap(),
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
    let (grpc, http, health, metrics) = (free_port(), free_port(), free_port(), free_port());
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
        .env("COLLECTOR_OTLP_HTTP_ENDPOINT", format!("127.0.0.1:{http}"))
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
