//! A second collector of the stack's build, of a test's own: otel-config/collector.yaml
//! alone or plus one receiver overlay (TLS or bearer-token auth), on free loopback ports,
//! writing to the stack's Prometheus, stopped and started again on the same ports when a
//! test cuts its own pipeline; and the certificates it serves, issued with openssl as the
//! stack issues its own.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{eventually, repo_path, seistack, Stack};

/// A certificate and its key, in PEM files.
pub struct Certificate {
    pub crt: PathBuf,
    pub key: PathBuf,
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Certificate {
    /// The stack's CA, which signs its serving certificates and which the watcher trusts
    /// when given `--otlp-ca-file` of it.
    pub fn stack_ca() -> Certificate {
        let pki = Stack::get().dir().join("pki");
        Certificate {
            crt: pki.join("ca.crt"),
            key: pki.join("ca.key"),
        }
    }

    /// A CA of the test's own, in `dir`.
    pub fn new_ca(dir: &Path, name: &str) -> Certificate {
        let cert = Certificate {
            crt: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            cert.key.to_str().unwrap(),
            "-out",
            cert.crt.to_str().unwrap(),
            "-subj",
            &format!("/CN={name}"),
            "-days",
            "1",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        cert
    }

    /// A certificate for `name` with the X.509 extensions `ext` (an openssl extfile),
    /// signed by this CA, in `dir`.
    pub fn issue(&self, dir: &Path, name: &str, ext: &str) -> Certificate {
        let (csr, extfile) = (
            dir.join(format!("{name}.csr")),
            dir.join(format!("{name}.ext")),
        );
        let cert = Certificate {
            crt: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&extfile, ext).unwrap();
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            cert.key.to_str().unwrap(),
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
            self.crt.to_str().unwrap(),
            "-CAkey",
            self.key.to_str().unwrap(),
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            extfile.to_str().unwrap(),
            "-out",
            cert.crt.to_str().unwrap(),
        ]);
        cert
    }
}

/// A collector of the test's own, stopped when dropped.
pub struct OwnCollector {
    /// Taken when dropped.
    child: Option<Child>,
    /// How it was started.
    command: CollectorCommand,
    /// What the watcher's `--otlp-endpoint` takes.
    pub endpoint: String,
    /// The same for `--otlp-protocol http/protobuf`: its OTLP/HTTP metrics URL.
    pub http_endpoint: String,
    /// The collector's own log.
    pub log: PathBuf,
}

/// The collector's command line and environment.
struct CollectorCommand {
    overlay: Option<String>,
    env: Vec<(String, String)>,
    health: u16,
}

impl OwnCollector {
    /// Serves OTLP over TLS with `cert` (receiver-tls.overlay.yaml); with `client_ca`, it
    /// requires a client certificate signed by it (mTLS). The endpoint is
    /// `https://localhost:PORT`, a name the stack's certificates carry.
    pub fn tls(dir: &Path, cert: &Certificate, client_ca: Option<&Path>) -> OwnCollector {
        let client_ca = client_ca
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        OwnCollector::start(
            dir,
            Some("receiver-tls.overlay.yaml"),
            &[
                ("COLLECTOR_TLS_CERT_FILE", cert.crt.to_str().unwrap()),
                ("COLLECTOR_TLS_KEY_FILE", cert.key.to_str().unwrap()),
                ("COLLECTOR_TLS_CLIENT_CA_FILE", &client_ca),
            ],
            "https://localhost",
        )
    }

    /// Requires a bearer token listed in `token_file` (receiver-auth.overlay.yaml).
    pub fn auth(dir: &Path, token_file: &Path) -> OwnCollector {
        OwnCollector::start(
            dir,
            Some("receiver-auth.overlay.yaml"),
            &[("COLLECTOR_BEARER_TOKEN_FILE", token_file.to_str().unwrap())],
            "http://127.0.0.1",
        )
    }

    fn start(dir: &Path, overlay: Option<&str>, env: &[(&str, &str)], base: &str) -> OwnCollector {
        let [grpc, http, health, metrics] = seistack::free_ports::<4>();
        let mut vars = vec![
            (
                "PROMETHEUS_REMOTE_WRITE_URL".to_owned(),
                format!("{}/api/v1/write", Stack::env("PROMETHEUS_URL")),
            ),
            (
                "COLLECTOR_OTLP_GRPC_ENDPOINT".to_owned(),
                format!("127.0.0.1:{grpc}"),
            ),
            (
                "COLLECTOR_OTLP_HTTP_ENDPOINT".to_owned(),
                format!("127.0.0.1:{http}"),
            ),
            (
                "COLLECTOR_HEALTH_ENDPOINT".to_owned(),
                format!("127.0.0.1:{health}"),
            ),
            ("COLLECTOR_METRICS_HOST".to_owned(), "127.0.0.1".to_owned()),
            ("COLLECTOR_METRICS_PORT".to_owned(), metrics.to_string()),
        ];
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut collector = OwnCollector {
            child: None,
            command: CollectorCommand {
                overlay: overlay.map(str::to_owned),
                env: vars,
                health,
            },
            endpoint: format!("{base}:{grpc}"),
            http_endpoint: format!("{base}:{http}/v1/metrics"),
            log: dir.join(format!("otelcol-{grpc}.log")),
        };
        collector.launch();
        collector
    }

    /// Starts the collector on its ports and waits until it is healthy.
    fn launch(&mut self) {
        let mut cmd = Command::new(Stack::bin("otelcol"));
        cmd.arg("--config")
            .arg(repo_path("otel-config/collector.yaml"));
        if let Some(overlay) = &self.command.overlay {
            cmd.arg("--config")
                .arg(repo_path(&format!("otel-config/{overlay}")));
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        self.child = Some(
            cmd.envs(self.command.env.iter().map(|(k, v)| (k, v)))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("otelcol starts"),
        );
        let overlay = self.command.overlay.as_deref().unwrap_or("no overlay");
        let health = self.command.health;
        eventually(
            Duration::from_secs(30),
            &format!("collector with {overlay} healthy"),
            || {
                ureq::get(format!("http://127.0.0.1:{health}/"))
                    .call()
                    .ok()
                    .map(|_| ())
            },
        );
    }
}

impl Drop for OwnCollector {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
