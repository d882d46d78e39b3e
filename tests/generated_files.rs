//! Files under deploy/ that are generated from one source, and checked here so the
//! committed copies never drift:
//!
//! - deploy/collector/configmap.yaml            <- otel-config/collector.yaml
//! - deploy/prometheus-operator/prometheusrule.yaml <- deploy/prometheus/seinode-tls.rules.yaml
//!
//! After editing a source: `SEINODE_BLESS=1 cargo test --test generated_files`.

use std::path::Path;

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The source without its leading comment block (kept in the source, not repeated).
fn body(text: &str) -> &str {
    let start = text
        .lines()
        .take_while(|l| l.starts_with('#') || l.is_empty())
        .map(|l| l.len() + 1)
        .sum::<usize>();
    &text[start..]
}

fn collector_configmap() -> String {
    let source = read("otel-config/collector.yaml");
    format!(
        "# GENERATED from otel-config/collector.yaml by tests/generated_files.rs; do not edit.\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: otel-collector\n  labels: {{app.kubernetes.io/name: otel-collector}}\n\
         data:\n  collector.yaml: |\n{}\n",
        indent(&source, 4)
    )
}

fn prometheus_rule() -> String {
    let source = read("deploy/prometheus/seinode-tls.rules.yaml");
    format!(
        "# GENERATED from deploy/prometheus/seinode-tls.rules.yaml by tests/generated_files.rs; do not edit.\n\
         apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: seinode-tls\n  labels: {{app.kubernetes.io/name: seinode-tls-watcher}}\n\
         spec:\n{}\n",
        indent(body(&source).trim_end(), 2)
    )
}

fn check(rel: &str, expected: String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    if std::env::var_os("SEINODE_BLESS").is_some() {
        std::fs::write(&path, &expected).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == expected,
        "{rel} is out of date with its source: run `SEINODE_BLESS=1 cargo test --test generated_files` and commit"
    );
}

#[test]
fn collector_configmap_is_generated_from_otel_config() {
    check("deploy/collector/configmap.yaml", collector_configmap());
}

#[test]
fn prometheus_rule_is_generated_from_the_rules_file() {
    check(
        "deploy/prometheus-operator/prometheusrule.yaml",
        prometheus_rule(),
    );
}

#[test]
fn generated_files_parse_and_embed_their_source_unchanged() {
    let cm: serde_json::Value = serde_yaml_ng::from_str(&collector_configmap()).unwrap();
    assert_eq!(
        cm["data"]["collector.yaml"].as_str().map(str::trim_end),
        Some(read("otel-config/collector.yaml").trim_end())
    );
    let rule: serde_json::Value = serde_yaml_ng::from_str(&prometheus_rule()).unwrap();
    let source: serde_json::Value =
        serde_yaml_ng::from_str(&read("deploy/prometheus/seinode-tls.rules.yaml")).unwrap();
    assert_eq!(
        rule["spec"], source,
        "the PrometheusRule's spec is the rules file"
    );
}
