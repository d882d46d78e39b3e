//! Files under deploy/ that are generated from one source, and checked here so the
//! committed copies never drift:
//!
//! - deploy/collector/configmap.yaml <- otel-config/collector.yaml
//! - deploy/prometheus-operator/prometheusrule.yaml <- deploy/prometheus/seinode-tls.rules.yaml
//! - deploy/prometheus-operator/sei-conditions.prometheusrule.yaml <-
//!   deploy/prometheus/sei-conditions.rules.yaml
//!
//! and deploy/prometheus-operator/kustomization.yaml lists every generated PrometheusRule;
//! the Helm chart's files/ (a chart cannot read files outside itself) are copies of
//! otel-config/collector.yaml and its two receiver overlays, deploy/prometheus/*.rules.yaml and
//! deploy/alertmanager/alertmanager-route.yaml.
//!
//! After editing a source: `SEINODE_BLESS=1 cargo test --test it generated_files` writes the
//! generated files and fails (a run with SEINODE_BLESS never passes), then
//! `cargo test --test it generated_files` checks them.

use crate::harness::{read, repo_path};

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
        "# GENERATED from otel-config/collector.yaml by tests/it/generated_files.rs; do not edit.\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: otel-collector\n  labels: {{app.kubernetes.io/name: otel-collector}}\n\
         data:\n  collector.yaml: |\n{}\n",
        indent(&source, 4)
    )
}

/// Every rules file under deploy/prometheus/ and the PrometheusRule generated from it:
/// (source, generated file, metadata.name).
const RULES: &[(&str, &str, &str)] = &[
    (
        "deploy/prometheus/seinode-tls.rules.yaml",
        "deploy/prometheus-operator/prometheusrule.yaml",
        "seinode-tls",
    ),
    (
        "deploy/prometheus/sei-conditions.rules.yaml",
        "deploy/prometheus-operator/sei-conditions.prometheusrule.yaml",
        "sei-conditions",
    ),
];

fn prometheus_rule(source_rel: &str, name: &str) -> String {
    let source = read(source_rel);
    format!(
        "# GENERATED from {source_rel} by tests/it/generated_files.rs; do not edit.\n\
         apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: {name}\n  labels: {{app.kubernetes.io/name: sei-condition-watcher}}\n\
         spec:\n{}\n",
        indent(body(&source).trim_end(), 2)
    )
}

fn blessing() -> bool {
    std::env::var_os("SEINODE_BLESS").is_some()
}

/// Checks a generated file; with SEINODE_BLESS set, writes it instead (see [`blessed`]).
fn check(rel: &str, expected: String) {
    let path = repo_path(rel);
    if blessing() {
        std::fs::write(&path, &expected).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == expected,
        "{rel} is out of date with its source: run `SEINODE_BLESS=1 cargo test --test it generated_files` \
         (it writes the file and fails), then rerun without SEINODE_BLESS and commit"
    );
}

/// Blessing writes the files and then fails, so that a run with SEINODE_BLESS set (in CI,
/// say) can never pass: only a run without it checks the files.
fn blessed(written: &[&str]) {
    if blessing() {
        panic!(
            "SEINODE_BLESS is set: wrote {}; this test fails on purpose while it is set. \
             Review the change, then rerun without SEINODE_BLESS: `cargo test --test it generated_files`",
            written.join(", ")
        );
    }
}

#[test]
fn collector_configmap_is_generated_from_otel_config() {
    check("deploy/collector/configmap.yaml", collector_configmap());
    blessed(&["deploy/collector/configmap.yaml"]);
}

#[test]
fn prometheus_rules_are_generated_from_the_rules_files() {
    for (source, generated, name) in RULES {
        check(generated, prometheus_rule(source, name));
    }
    blessed(&RULES.iter().map(|(_, g, _)| *g).collect::<Vec<_>>());
}

/// Every rules file has its generated PrometheusRule, and the kustomization applies each one.
#[test]
fn every_rules_file_has_a_listed_prometheus_rule() {
    let dir = repo_path("deploy/prometheus");
    let mut sources: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".rules.yaml"))
        .map(|f| format!("deploy/prometheus/{f}"))
        .collect();
    sources.sort();
    let mut known: Vec<String> = RULES.iter().map(|(s, _, _)| s.to_string()).collect();
    known.sort();
    assert_eq!(
        sources, known,
        "every deploy/prometheus/*.rules.yaml needs an entry in RULES (tests/it/generated_files.rs)"
    );
    let kustomization: serde_json::Value =
        serde_yaml_ng::from_str(&read("deploy/prometheus-operator/kustomization.yaml")).unwrap();
    let resources: Vec<&str> = kustomization["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r.as_str())
        .collect();
    for (_, generated, _) in RULES {
        let file = generated.trim_start_matches("deploy/prometheus-operator/");
        assert!(
            resources.contains(&file),
            "deploy/prometheus-operator/kustomization.yaml does not list {file}"
        );
    }
}

#[test]
fn generated_files_parse_and_embed_their_source_unchanged() {
    let cm: serde_json::Value = serde_yaml_ng::from_str(&collector_configmap()).unwrap();
    assert_eq!(
        cm["data"]["collector.yaml"].as_str().map(str::trim_end),
        Some(read("otel-config/collector.yaml").trim_end())
    );
    for (source, _, name) in RULES {
        let rule: serde_json::Value =
            serde_yaml_ng::from_str(&prometheus_rule(source, name)).unwrap();
        let parsed: serde_json::Value = serde_yaml_ng::from_str(&read(source)).unwrap();
        assert_eq!(
            rule["spec"], parsed,
            "the PrometheusRule's spec is the rules file {source}"
        );
        assert_eq!(rule["metadata"]["name"], *name);
    }
}

/// The Helm chart's copies, each the same bytes as its source: (source, copy).
const CHART_COPIES: &[(&str, &str)] = &[
    (
        "otel-config/collector.yaml",
        "deploy/helm/sei-condition-watcher/files/collector.yaml",
    ),
    (
        "otel-config/receiver-tls.overlay.yaml",
        "deploy/helm/sei-condition-watcher/files/receiver-tls.overlay.yaml",
    ),
    (
        "otel-config/receiver-auth.overlay.yaml",
        "deploy/helm/sei-condition-watcher/files/receiver-auth.overlay.yaml",
    ),
    (
        "deploy/prometheus/sei-conditions.rules.yaml",
        "deploy/helm/sei-condition-watcher/files/sei-conditions.rules.yaml",
    ),
    (
        "deploy/prometheus/seinode-tls.rules.yaml",
        "deploy/helm/sei-condition-watcher/files/seinode-tls.rules.yaml",
    ),
    (
        "deploy/alertmanager/alertmanager-route.yaml",
        "deploy/helm/sei-condition-watcher/files/alertmanager-route.yaml",
    ),
];

#[test]
fn helm_chart_files_are_copies_of_their_sources() {
    for (source, copy) in CHART_COPIES {
        check(copy, read(source));
    }
    blessed(&CHART_COPIES.iter().map(|(_, c)| *c).collect::<Vec<_>>());
}
