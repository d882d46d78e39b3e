//! The Grafana dashboard (deploy/grafana/seinode-sidecar-tls.json): its structure, and every
//! panel query run against the real Prometheus of the local stack, fed by a real watcher.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

fn dashboard() -> Value {
    let text =
        std::fs::read_to_string(repo_path("deploy/grafana/seinode-sidecar-tls.json")).unwrap();
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// (panel title, query) for every query of every panel.
fn queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push((
                panel["title"].as_str().unwrap().to_owned(),
                target["expr"].as_str().unwrap().to_owned(),
            ));
        }
    }
    out
}

#[test]
fn every_panel_is_described_and_uses_the_datasource_variable() {
    let d = dashboard();
    assert_eq!(d["uid"], "seinode-sidecar-tls");
    let panels = d["panels"].as_array().unwrap();
    let mut titles = std::collections::BTreeSet::new();
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let title = panel["title"].as_str().unwrap();
        assert!(titles.insert(title), "duplicate title {title}");
        assert!(
            panel["description"].as_str().is_some_and(|d| d.len() > 20),
            "{title}: no description"
        );
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        assert!(
            !panel["targets"].as_array().unwrap().is_empty(),
            "{title}: no query"
        );
    }
    let q = queries(&d);
    assert!(
        q.iter()
            .any(|(_, e)| e.contains("seinode_sidecar_tls_secret_status{status!=\"True\"}")),
        "a not-ready table"
    );
    assert!(
        q.iter()
            .any(|(_, e)| e.contains("sei_condition_watcher_up")),
        "watcher health"
    );
    assert!(
        q.iter().any(|(_, e)| e.contains("otelcol_exporter")),
        "pipeline health"
    );
}

#[test]
#[ignore = "needs the local stack: run tests/run"]
fn every_query_runs_on_real_prometheus_and_the_table_shows_broken_nodes() {
    let stack = Stack::get();
    let ns = stack.namespace("dashboard");
    stack.seinode(&ns, "ok", true);
    stack.set_condition(&ns, "ok", "True", "TLSSecretReady");
    stack.seinode(&ns, "broken", true);
    stack.set_condition(&ns, "broken", "False", "TLSSecretMalformed");
    let mut watcher = Watcher::start(&stack, &format!("{ns}-watcher"), &["--namespace", &ns]);
    watcher.wait_ready();
    eventually(Duration::from_secs(30), "data in Prometheus", || {
        stack
            .query_one(&format!(
                "seinode_sidecar_tls_secret_ready{{namespace=\"{ns}\",name=\"broken\"}}"
            ))
            .map(|_| ())
    });

    for (title, expr) in queries(&dashboard()) {
        let body: Value = ureq::get(format!("{}/api/v1/query", stack.prometheus_url()))
            .query("query", &expr)
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        assert_eq!(body["status"], "success", "panel {title:?}: {expr}: {body}");
    }
    let table = dashboard()["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == "table")
        .unwrap()
        .clone();
    let rows = stack.query(table["targets"][0]["expr"].as_str().unwrap());
    let broken: Vec<_> = rows.iter().filter(|(l, _)| l["namespace"] == ns).collect();
    assert_eq!(broken.len(), 1, "only the broken node: {rows:?}");
    assert_eq!(broken[0].0["name"], "broken");
    assert_eq!(broken[0].0["reason"], "TLSSecretMalformed");
    let since = stack.query(table["targets"][1]["expr"].as_str().unwrap());
    assert!(
        since
            .iter()
            .any(|(l, v)| l["namespace"] == ns && l["name"] == "broken" && *v > 1.0e12),
        "broken-since in ms: {since:?}"
    );
    assert!(watcher.terminate().success());
}
