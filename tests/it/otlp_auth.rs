//! Bearer-token auth from the watcher to a real collector: a second collector of the stack's
//! build runs with otel-config/collector.yaml plus receiver-auth.overlay.yaml (the
//! bearertokenauth extension reading a token file), writing to the stack's Prometheus.
//! The watcher sends the token with OTEL_EXPORTER_OTLP_HEADERS on both of its paths (object
//! series and self-metrics); a wrong or missing token is refused and said so in one log
//! line, and no token is ever written to the log. Also renders deploy/ with the
//! collector-tls, collector-mtls and collector-auth components, validates the collector
//! configuration they produce and applies the result server-side (dry run).

#[cfg(feature = "stack-tests")]
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
#[cfg(feature = "stack-tests")]
use std::{process::Command, time::Duration};

use crate::harness::*;

/// A token no other run shares (hex, as `openssl rand -hex` would make).
fn token(tag: u64) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos:x}{:08x}{tag:04x}", std::process::id())
}

/// The watcher's object series and self-metrics, each present or not in Prometheus.
#[cfg(feature = "stack-tests")]
fn arrived(s: &Scenario, instance: &str) -> (bool, bool) {
    let ns = s.ns();
    let objects = s.query_one(&format!(
        "seinode_sidecar_tls_secret_ready{{namespace=\"{ns}\",name=\"a\",instance=\"{instance}\"}}"
    ));
    let up = s.query_one(&format!(
        "sei_condition_watcher_up{{instance=\"{instance}\"}}"
    ));
    (objects == Some(0.0), up == Some(1.0))
}

#[cfg(feature = "stack-tests")]
#[test]
fn the_token_is_required_sent_on_both_paths_and_never_logged() {
    let s = Scenario::new("otlp-auth");
    let dir = s.stack().dir().join("otlp-auth");
    std::fs::create_dir_all(&dir).unwrap();
    let (right, wrong) = (token(1), token(2));
    // One token per line; the extension ignores what follows a blank on a line.
    let token_file = dir.join(format!("token-{}", std::process::id()));
    std::fs::write(&token_file, format!("{right} the watcher's token\n")).unwrap();
    let collector = OwnCollector::auth(&dir, &token_file);
    let ns = s.ns();
    s.seinode_with("a", "False", "TLSSecretNotFound");

    let start = |case: &str, env: &[(&str, &str)]| {
        env.iter()
            .fold(s.watcher(), |w, (k, v)| w.env(k, v))
            .instance(&format!("{ns}-{case}"))
            .otlp_endpoint(&collector.endpoint)
            .args([
                "--export-timeout",
                "2s",
                // Everything the watcher itself logs (its quiet dependencies stay at warn).
                "--log-filter",
                "debug",
            ])
            .start()
    };
    let right_header = format!("Authorization=Bearer%20{right}");
    let wrong_header = format!("Authorization=Bearer%20{wrong}");
    // The metrics-specific variable wins over the generic one.
    let mut with_token = start(
        "right",
        &[
            ("OTEL_EXPORTER_OTLP_HEADERS", &wrong_header),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", &right_header),
        ],
    );
    let mut wrong_token = start(
        "wrong",
        &[
            ("OTEL_EXPORTER_OTLP_HEADERS", &wrong_header),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", ""),
        ],
    );
    let mut no_token = start(
        "missing",
        &[
            ("OTEL_EXPORTER_OTLP_HEADERS", ""),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", ""),
        ],
    );

    // The right token: object series and self-metrics both arrive.
    eventually(
        Duration::from_secs(30),
        "object series and self-metrics arrive with the right token",
        || (arrived(&s, &with_token.instance) == (true, true)).then_some(()),
    );

    // A wrong or missing token: refused, one line that says what to do.
    for watcher in [&wrong_token, &no_token] {
        // Several exports of both kinds fail meanwhile; still one line.
        let line = &watcher.one_export_failure(EXPORT_INTERVAL * 3);
        assert!(
            line.contains("the collector refused the credentials")
                && line.contains("OTEL_EXPORTER_OTLP_HEADERS"),
            "the line says what is wrong and what to check:\n{line}"
        );
        // The collector's own reason (wrong or missing) is in the line only when the object
        // exporter logs it first; the SDK's exporter reports the code alone.
        assert!(line.contains("Unauthenticated"), "{line}");
        assert_eq!(
            arrived(&s, &watcher.instance),
            (false, false),
            "nothing of {} may arrive",
            watcher.instance
        );
    }

    let mut logs = String::new();
    for watcher in [&mut with_token, &mut wrong_token, &mut no_token] {
        assert!(watcher.terminate().success());
        logs.push_str(&watcher.log_text());
    }
    assert!(
        with_token.export_failures().is_empty(),
        "{}",
        with_token.log_text()
    );
    // Debug logging was on, and no token appears anywhere.
    assert!(logs.contains("DEBUG"), "debug logging was on");
    for secret in [&right, &wrong] {
        assert!(
            !logs.contains(secret.as_str()),
            "a token leaked into the log"
        );
    }
    let collector_log = std::fs::read_to_string(&collector.log).unwrap_or_default();
    assert!(!collector_log.contains(right.as_str()), "{collector_log}");
}

/// Checked before anything else at start (no cluster needed).
#[test]
fn a_malformed_header_variable_is_a_one_line_error_without_the_value() {
    let secret = token(3);
    // A common slip: HTTP header syntax instead of key=value.
    let header = format!("Authorization: Bearer {secret}");
    let out = run_watcher(
        &[
            "--kubeconfig",
            "/nonexistent/kubeconfig",
            "--otlp-endpoint",
            "http://127.0.0.1:1",
        ],
        &[
            ("OTEL_EXPORTER_OTLP_HEADERS", &header),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", ""),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("OTEL_EXPORTER_OTLP_HEADERS: entry 1 of 1 has no '='")
            && lines[0].contains("Authorization=Bearer%20<token>"),
        "{stderr}"
    );
    assert!(!stderr.contains(&secret), "the value leaked: {stderr}");
}

/// deploy/components/collector-auth carries the overlay as a file of its own (kustomize
/// reads no file outside the component): it must stay the same as the source.
#[test]
fn the_auth_component_carries_the_same_overlay() {
    let source = read("otel-config/receiver-auth.overlay.yaml");
    let copy = read("deploy/components/collector-auth/receiver-auth.overlay.yaml");
    assert_eq!(
        copy, source,
        "copy otel-config/receiver-auth.overlay.yaml to deploy/components/collector-auth/"
    );
}

/// A path from `from` to `to`, both absolute: kustomize takes only relative ones.
#[cfg(feature = "stack-tests")]
fn relative(from: &Path, to: &Path) -> PathBuf {
    let up = from.components().count() - 1;
    let mut path = PathBuf::new();
    for _ in 0..up {
        path.push("..");
    }
    path.join(to.strip_prefix("/").unwrap())
}

#[cfg(feature = "stack-tests")]
#[test]
fn deploy_with_every_component_renders_validates_and_applies() {
    let s = Scenario::new("components");
    let dir = s
        .stack()
        .dir()
        .join(format!("components-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let deploy = repo_path("deploy");
    let deploy = deploy.canonicalize().unwrap();
    let dir = dir.canonicalize().unwrap();
    let rel = relative(&dir, &deploy);
    std::fs::write(
        dir.join("kustomization.yaml"),
        format!(
            "resources: [{0}]\ncomponents:\n  - {0}/components/collector-tls\n  - {0}/components/collector-mtls\n  - {0}/components/collector-auth\n",
            rel.display()
        ),
    )
    .unwrap();
    let rendered = s.kubectl_ok(&["kustomize", dir.to_str().unwrap()]);
    let objects: Vec<serde_json::Value> = rendered
        .split("\n---\n")
        .map(|doc| serde_yaml_ng::from_str(doc).unwrap())
        .collect();
    let find = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind}/{name} not rendered"))
    };
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };

    // The collector runs the three files, each from its ConfigMap.
    let collector = &find("Deployment", "otel-collector")["spec"]["template"]["spec"];
    let args = strings(&collector["containers"][0]["args"]);
    assert_eq!(
        args,
        [
            "--config=/etc/otelcol/collector.yaml",
            "--config=/etc/otelcol-overlays/tls/receiver-tls.overlay.yaml",
            "--config=/etc/otelcol-overlays/auth/receiver-auth.overlay.yaml",
        ]
    );
    for (prefix, key, source) in [
        (
            "otel-collector",
            "collector.yaml",
            "otel-config/collector.yaml",
        ),
        (
            "otel-collector-tls-overlay-",
            "receiver-tls.overlay.yaml",
            "otel-config/receiver-tls.overlay.yaml",
        ),
        (
            "otel-collector-auth-overlay-",
            "receiver-auth.overlay.yaml",
            "otel-config/receiver-auth.overlay.yaml",
        ),
    ] {
        let config_map = objects
            .iter()
            .find(|o| {
                o["kind"] == "ConfigMap"
                    && o["metadata"]["name"].as_str().is_some_and(|n| {
                        n == prefix || (prefix.ends_with('-') && n.starts_with(prefix))
                    })
            })
            .unwrap_or_else(|| panic!("ConfigMap {prefix} not rendered"));
        assert_eq!(
            config_map["data"][key].as_str(),
            Some(read(source).as_str()),
            "{key}"
        );
        std::fs::write(dir.join(key), config_map["data"][key].as_str().unwrap()).unwrap();
    }
    // Every file the collector is told to read is mounted.
    let env: Vec<(String, String)> = collector["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_owned(),
                e["value"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let mounts: Vec<String> = collector["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap().to_owned())
        .collect();
    let files = env
        .iter()
        .filter(|(name, _)| name.ends_with("_FILE"))
        .map(|(_, file)| file.as_str())
        .chain(args.iter().map(|a| a.trim_start_matches("--config=")))
        .chain(["/etc/otelcol-auth/token"]);
    for file in files {
        assert!(
            mounts.iter().any(|m| file.starts_with(&format!("{m}/"))),
            "{file} is not under a mount: {mounts:?}"
        );
    }
    // The collector accepts the configuration it would run with (file paths as mounted).
    let out = Command::new(Stack::bin("otelcol"))
        .arg("validate")
        .args(
            [
                "collector.yaml",
                "receiver-tls.overlay.yaml",
                "receiver-auth.overlay.yaml",
            ]
            .iter()
            .flat_map(|f| ["--config".to_owned(), dir.join(f).display().to_string()]),
        )
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "otelcol validate: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The watcher: https to the name in the certificate, CA, client certificate, token.
    let watcher = &find("Deployment", "sei-condition-watcher")["spec"]["template"]["spec"];
    let args = strings(&watcher["containers"][0]["args"]);
    let endpoints: Vec<&String> = args
        .iter()
        .filter(|a| a.starts_with("--otlp-endpoint"))
        .collect();
    assert_eq!(
        endpoints.last().map(|s| s.as_str()),
        Some("--otlp-endpoint=https://otel-collector:4317"),
        "the last one wins: {args:?}"
    );
    let env = watcher["containers"][0]["env"].as_array().unwrap();
    let at = |name: &str| {
        env.iter()
            .position(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} not set: {env:?}"))
    };
    for name in [
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_CLIENT_KEY",
    ] {
        at(name);
    }
    assert!(
        at("OTLP_BEARER_TOKEN") < at("OTEL_EXPORTER_OTLP_HEADERS"),
        "the kubelet expands $(OTLP_BEARER_TOKEN) only if it comes first"
    );
    assert_eq!(
        env[at("OTEL_EXPORTER_OTLP_HEADERS")]["value"],
        "Authorization=Bearer%20$(OTLP_BEARER_TOKEN)"
    );
    // The watcher never mounts the collector's private key.
    let volumes = watcher["volumes"].as_array().unwrap();
    let ca = volumes.iter().find(|v| v["name"] == "otlp-ca").unwrap();
    assert_eq!(ca["secret"]["items"].as_array().unwrap().len(), 1, "{ca}");
    assert_eq!(ca["secret"]["items"][0]["key"], "ca.crt");

    // The API server accepts all of it.
    s.stack().ensure_namespace("sei-condition-watcher");
    let out = s.kubectl_ok(&[
        "apply",
        "--server-side",
        "--dry-run=server",
        "-k",
        dir.to_str().unwrap(),
    ]);
    for object in [
        "deployment.apps/otel-collector",
        "networkpolicy.networking.k8s.io/otel-collector",
        "configmap/otel-collector",
        "deployment.apps/sei-condition-watcher",
    ] {
        assert!(out.contains(object), "{object} not applied: {out}");
    }
}
