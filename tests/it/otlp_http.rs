//! OTLP over HTTP (`--otlp-protocol http/protobuf`) against the real receivers: the stack
//! collector's `http` protocol (otel-config/collector.yaml), a collector of the stack's
//! build with the token overlay (headers over HTTP), and Prometheus' own OTLP receiver
//! with no collector at all (`--otlp-receiver prometheus`, docs/deploy.md "Straight into
//! Prometheus"). In each: a flip's old pair is gone at once (a staleness marker, not the
//! 5-minute lookback), a deletion's series are gone, the self-metrics arrive.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::harness::*;

/// As in pipeline.rs: a change must be visible within this, far inside the lookback.
const VISIBLE_WITHIN: Duration = Duration::from_secs(30);

/// The flip and deletion every test here runs: `broken` False (TLSSecretNotFound) is
/// exported, flips to True (TLSSecretReady): the old pair goes at once; deleted: gone.
/// Returns the seconds the old pair took to go.
fn flip_then_delete(s: &Scenario, cluster: &str) -> f64 {
    let ns = s.ns();
    let status = |reason: &str| {
        format!(
            "seinode_sidecar_tls_secret_status{{namespace=\"{ns}\",name=\"broken\",reason=\"{reason}\",cluster=\"{cluster}\"}}"
        )
    };
    eventually(VISIBLE_WITHIN, "the broken pair exported", || {
        (s.query_one(&status("TLSSecretNotFound")) == Some(1.0)).then_some(())
    });
    s.set_condition("broken", "True", "TLSSecretReady");
    let flipped = Instant::now();
    eventually(VISIBLE_WITHIN, "the new pair, and the old one gone", || {
        let new = s.query_one(&status("TLSSecretReady"));
        let old = s.query_one(&status("TLSSecretNotFound"));
        (new == Some(1.0) && old.is_none()).then_some(())
    });
    let gone = flipped.elapsed().as_secs_f64();
    s.delete_seinode("broken");
    eventually(VISIBLE_WITHIN, "the deleted node's series gone", || {
        s.query(&format!("{{namespace=\"{ns}\",name=\"broken\"}}"))
            .is_empty()
            .then_some(())
    });
    gone
}

#[test]
fn http_to_the_collector_flip_delete_and_self_metrics() {
    let s = Scenario::new("otlp-http");
    let ns = s.ns();
    let cluster = format!("{ns}-cluster");
    s.seinode_with("broken", "False", "TLSSecretNotFound");
    let mut watcher = s
        .watcher()
        .otlp_endpoint(s.stack().otlp_http_endpoint())
        .args([
            "--otlp-protocol",
            "http/protobuf",
            "--cluster-name",
            &cluster,
        ])
        .ready();
    let gone = flip_then_delete(&s, &cluster);
    s.figure(&format!(
        "otlp-http (collector): old pair gone {gone:.1} s after the flip"
    ));
    eventually(VISIBLE_WITHIN, "the self-metrics over HTTP", || {
        let up = s.query_one(&format!(
            "sei_condition_watcher_up{{instance=\"{}\",cluster=\"{cluster}\",job=\"sei-condition-watcher\"}}",
            watcher.instance
        ));
        let markers = s.query_one(&format!(
            "sei_condition_watcher_staleness_markers_total{{instance=\"{}\"}}",
            watcher.instance
        ));
        (up == Some(1.0) && markers.unwrap_or(0.0) >= 3.0).then_some(())
    });
    let log = watcher.log_text();
    assert!(
        log.contains("protocol=\"http/protobuf\"") || log.contains("protocol=http/protobuf"),
        "{log}"
    );
    assert!(watcher.export_failures().is_empty(), "{log}");
    assert!(watcher.terminate().success(), "{}", watcher.log_text());
}

/// The token overlay covers the HTTP receiver too: the right token (the metrics variable,
/// over the generic one) is let through on both paths, a wrong one is refused with 401 and
/// one line, never the token; zstd bodies (a request over the compression threshold) are
/// accepted by the collector's HTTP receiver.
#[test]
fn http_headers_and_zstd_reach_the_collectors_auth() {
    let s = Scenario::new("otlp-http-auth");
    let dir = s.stack().dir().join("otlp-http-auth");
    std::fs::create_dir_all(&dir).unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let (right, wrong) = (format!("{nanos:x}a1"), format!("{nanos:x}b2"));
    let token_file = dir.join(format!("token-{}", std::process::id()));
    std::fs::write(&token_file, format!("{right}\n")).unwrap();
    let collector = OwnCollector::auth(&dir, &token_file);
    let ns = s.ns().to_owned();
    // Enough objects for the first export to pass the 16 KiB compression threshold.
    s.populate(&[
        "create",
        "--namespace",
        &ns,
        "--count",
        "120",
        "--false-every",
        "1",
    ]);
    s.seinode_with("a", "False", "TLSSecretNotFound");
    let start = |case: &str, env: &[(&str, &str)]| {
        env.iter()
            .fold(s.watcher(), |w, (k, v)| w.env(k, v))
            .instance(&format!("{ns}-{case}"))
            .otlp_endpoint(&collector.http_endpoint)
            .args([
                "--otlp-protocol",
                "http/protobuf",
                "--otlp-compression",
                "zstd",
                "--export-timeout",
                "2s",
                "--log-filter",
                "debug",
            ])
            .start()
    };
    let right_header = format!("Authorization=Bearer%20{right}");
    let wrong_header = format!("Authorization=Bearer%20{wrong}");
    let mut with_token = start(
        "right",
        &[
            ("OTEL_EXPORTER_OTLP_HEADERS", &wrong_header),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", &right_header),
        ],
    );
    let mut wrong_token = start("wrong", &[("OTEL_EXPORTER_OTLP_HEADERS", &wrong_header)]);
    eventually(
        VISIBLE_WITHIN,
        "the right token's series and heartbeat",
        || {
            let objects = s.query(&format!(
                "seinode_sidecar_tls_secret_ready{{namespace=\"{ns}\",instance=\"{ns}-right\"}}"
            ));
            let up = s.query_one(&format!(
                "sei_condition_watcher_up{{instance=\"{ns}-right\"}}"
            ));
            (objects.len() == 121 && up == Some(1.0)).then_some(())
        },
    );
    let large = with_token
        .log_text()
        .lines()
        .filter(|l| l.contains("exported object series"))
        .filter_map(|l| l.split("bytes: ").nth(1))
        .filter_map(|b| {
            b.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<usize>()
                .ok()
        })
        .max()
        .unwrap_or(0);
    assert!(
        large >= 16 * 1024,
        "an export over the compression threshold was accepted ({large} bytes)"
    );
    let refusal = wrong_token.one_export_failure(Duration::from_secs(5));
    assert!(refusal.contains("HTTP 401"), "{refusal}");
    assert!(refusal.contains("refused the credentials"), "{refusal}");
    assert!(
        s.query(&format!("{{instance=\"{ns}-wrong\"}}")).is_empty(),
        "nothing passes a wrong token"
    );
    for w in [&with_token, &wrong_token] {
        let log = w.log_text();
        assert!(!log.contains(&right) && !log.contains(&wrong), "{log}");
    }
    assert!(with_token.terminate().success());
    assert!(wrong_token.terminate().success());
}

/// No collector: the watcher posts to Prometheus' `/api/v1/otlp/v1/metrics` (the stack's
/// Prometheus runs `--web.enable-otlp-receiver` with `otlp: translation_strategy:
/// UnderscoreEscapingWithoutSuffixes`, nothing else). The series have exactly the names
/// and labels they have through the collector (pipeline.rs), the shipped rules match them,
/// staleness markers work, and the two streams (object series, self-metrics) run side by
/// side for a while without one refused request: no `target_info` is written.
#[test]
fn straight_into_prometheus_with_the_labels_the_rules_expect() {
    let s = Scenario::new("otlp-prom");
    let ns = s.ns();
    let cluster = format!("{ns}-cluster");
    s.seinode_with("broken", "False", "TLSSecretNotFound");
    s.seinode_with("held", "False", "TLSSecretMalformed");
    let mut watcher = s
        .watcher()
        .otlp_endpoint(s.stack().prometheus_otlp_endpoint())
        .args([
            "--otlp-protocol",
            "http/protobuf",
            "--otlp-receiver",
            "prometheus",
            "--cluster-name",
            &cluster,
        ])
        .ready();
    eventually(VISIBLE_WITHIN, "series in Prometheus", || {
        (s.ready("held") == Some(0.0)).then_some(())
    });
    let series = s.query(&format!("{{namespace=\"{ns}\"}}"));
    let names: BTreeSet<String> = series.iter().map(|(l, _)| l["__name__"].clone()).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "seinode_sidecar_tls_secret_ready".to_owned(),
            "seinode_sidecar_tls_secret_status".to_owned(),
            "seinode_sidecar_tls_secret_last_transition_timestamp_seconds".to_owned(),
            "seinode_status_condition".to_owned(),
            "seinode_status_condition_last_transition_timestamp_seconds".to_owned(),
        ]),
        "no suffix added"
    );
    for (labels, _) in &series {
        let keys: BTreeSet<&str> = labels.keys().map(String::as_str).collect();
        let mut expected: BTreeSet<&str> = [
            "__name__",
            "cluster",
            "instance",
            "job",
            "name",
            "namespace",
        ]
        .into();
        match labels["__name__"].as_str() {
            "seinode_sidecar_tls_secret_status" => expected.extend(["reason", "status"]),
            "seinode_status_condition" => expected.extend(["reason", "status", "type"]),
            "seinode_status_condition_last_transition_timestamp_seconds" => {
                expected.insert("type");
            }
            _ => {}
        }
        assert_eq!(keys, expected, "as through the collector: {labels:?}");
        assert_eq!(labels["cluster"], cluster);
        assert_eq!(labels["job"], "sei-condition-watcher");
        assert_eq!(labels["instance"], watcher.instance);
    }
    // The self-metrics, with the same job, instance and cluster as through the collector.
    eventually(VISIBLE_WITHIN, "the heartbeat", || {
        let up = s.query(&format!(
            "sei_condition_watcher_up{{instance=\"{}\"}}",
            watcher.instance
        ));
        (up.len() == 1).then_some(up)
    })
    .iter()
    .for_each(|(labels, value)| {
        assert_eq!(*value, 1.0);
        let keys: BTreeSet<&str> = labels.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["__name__", "cluster", "instance", "job"].into(),
            "{labels:?}"
        );
        assert_eq!(labels["cluster"], cluster);
        assert_eq!(labels["job"], "sei-condition-watcher");
    });
    // The shipped rule matches the series as they arrive (pending: its `for` is the rule's).
    eventually(
        VISIBLE_WITHIN,
        "SeiNodeSidecarTLSSecretNotReady for held",
        || {
            let rule = s.alert_rule("SeiNodeSidecarTLSSecretNotReady");
            rule["alerts"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| {
                    a["labels"]["cluster"] == cluster.as_str()
                        && a["labels"]["namespace"] == ns
                        && a["labels"]["name"] == "held"
                })
                .then_some(())
        },
    );
    // The shipped dashboard's table of broken nodes shows both, with their cluster.
    let table = crate::dashboard::dashboard()["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == "table")
        .unwrap()
        .clone();
    let rows = s.query(table["targets"][0]["expr"].as_str().unwrap());
    let mine: BTreeSet<(String, String)> = rows
        .iter()
        .filter(|(l, _)| l["namespace"] == ns)
        .map(|(l, _)| (l["name"].clone(), l["cluster"].clone()))
        .collect();
    assert_eq!(
        mine,
        BTreeSet::from([
            ("broken".to_owned(), cluster.clone()),
            ("held".to_owned(), cluster.clone())
        ]),
        "{rows:?}"
    );
    let gone = flip_then_delete(&s, &cluster);
    s.figure(&format!(
        "otlp-http (Prometheus' own receiver): old pair gone {gone:.1} s after the flip"
    ));
    // Both streams side by side: the object series (refreshed every 2 s) and the
    // self-metrics (every 2 s) for 30 s more: not one request refused.
    std::thread::sleep(Duration::from_secs(30));
    let exports = s.query_one(&format!(
        "sei_condition_watcher_exports_total{{instance=\"{}\"}}",
        watcher.instance
    ));
    assert!(exports.unwrap_or(0.0) >= 10.0, "{exports:?}");
    assert!(
        watcher.export_failures().is_empty(),
        "{}",
        watcher.log_text()
    );
    assert!(
        s.query(&format!(
            "target_info{{instance=\"{}\"}} or {{instance=\"{}\",k8s_cluster_name!=\"\"}}",
            watcher.instance, watcher.instance
        ))
        .is_empty(),
        "no target_info, no promoted resource attribute"
    );
    assert!(watcher.terminate().success(), "{}", watcher.log_text());
}

/// TLS over HTTP (rustls, not tonic's): a collector with receiver-tls.overlay.yaml requiring
/// a client certificate. Without the CA the server is not trusted, without a client
/// certificate the collector refuses; each is one line with its hint. With both, the
/// object series and the heartbeat arrive.
#[test]
fn http_over_mtls_and_its_refusals() {
    let s = Scenario::new("otlp-http-tls");
    let dir = s.stack().dir().join("otlp-http-tls");
    std::fs::create_dir_all(&dir).unwrap();
    let stack_ca = Certificate::stack_ca();
    let server = stack_ca.issue(
        &dir,
        "collector",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    );
    let client = stack_ca.issue(
        &dir,
        "watcher",
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    );
    let ca = stack_ca.crt.to_str().unwrap();
    let mtls = OwnCollector::tls(&dir, &server, Some(&stack_ca.crt));
    assert!(mtls.http_endpoint.starts_with("https://localhost:"));
    let ns = s.ns().to_owned();
    s.seinode_with("a", "False", "TLSSecretNotFound");
    let start = |case: &str, extra: &[&str]| {
        s.watcher()
            .instance(&format!("{ns}-{case}"))
            .otlp_endpoint(&mtls.http_endpoint)
            .args(["--otlp-protocol", "http/protobuf", "--export-timeout", "2s"])
            .args(extra.iter().copied())
            .start()
    };
    let mut untrusted = start("untrusted", &[]);
    let line = untrusted.one_export_failure(Duration::ZERO);
    assert!(
        line.contains("not signed by a CA the watcher trusts"),
        "{line}"
    );
    assert!(untrusted.terminate().success());
    let mut no_cert = start("nocert", &["--otlp-ca-file", ca]);
    let line = no_cert.one_export_failure(Duration::ZERO);
    assert!(line.contains("client certificate"), "{line}");
    assert!(no_cert.terminate().success());
    let mut with_cert = start(
        "mtls",
        &[
            "--otlp-ca-file",
            ca,
            "--otlp-client-cert-file",
            client.crt.to_str().unwrap(),
            "--otlp-client-key-file",
            client.key.to_str().unwrap(),
        ],
    );
    eventually(VISIBLE_WITHIN, "series and heartbeat over mTLS", || {
        let ready = s.query_one(&format!(
            "seinode_sidecar_tls_secret_ready{{namespace=\"{ns}\",name=\"a\",instance=\"{ns}-mtls\"}}"
        ));
        let up = s.query_one(&format!(
            "sei_condition_watcher_up{{instance=\"{ns}-mtls\"}}"
        ));
        (ready == Some(0.0) && up == Some(1.0)).then_some(())
    });
    assert!(
        with_cert.export_failures().is_empty(),
        "{}",
        with_cert.log_text()
    );
    assert!(with_cert.terminate().success());
}
