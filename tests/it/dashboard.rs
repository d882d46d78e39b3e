//! The Grafana dashboards (deploy/grafana/seinode-sidecar-tls.json, the seed's, and
//! deploy/grafana/sei-conditions.json, every kind's conditions): their structure, and every
//! panel query run against the real Prometheus of the local stack, fed by a real watcher.
//! Template variables in queries are substituted as Grafana does before they are sent.

#[cfg(feature = "stack-tests")]
use std::collections::BTreeMap;
use std::collections::BTreeSet;
#[cfg(feature = "stack-tests")]
use std::time::Duration;

use crate::harness::*;
use serde_json::{json, Value};

fn load(rel: &str) -> Value {
    let text = read(rel);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"))
}

/// The sidecar-TLS dashboard (also read by otlp_http.rs, which runs its table without a
/// collector).
pub(crate) fn dashboard() -> Value {
    load("deploy/grafana/seinode-sidecar-tls.json")
}

fn conditions_dashboard() -> Value {
    load("deploy/grafana/sei-conditions.json")
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

/// The conventions every dashboard follows: unique titles, every panel described, on the
/// `${datasource}` variable, with at least one query.
fn assert_panels_described_on_the_datasource_variable(d: &Value) {
    let panels = d["panels"].as_array().unwrap();
    let mut titles = BTreeSet::new();
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
}

#[test]
fn every_panel_is_described_and_uses_the_datasource_variable() {
    let d = dashboard();
    assert_eq!(d["uid"], "seinode-sidecar-tls");
    assert_panels_described_on_the_datasource_variable(&d);
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

#[cfg(feature = "stack-tests")]
#[test]
fn every_query_runs_on_real_prometheus_and_the_table_shows_broken_nodes() {
    let s = Scenario::new("dashboard");
    let ns = s.ns();
    s.seinode_with("ok", "True", "TLSSecretReady");
    s.seinode_with("broken", "False", "TLSSecretMalformed");
    let mut watcher = s.watcher().ready();
    eventually(Duration::from_secs(30), "data in Prometheus", || {
        s.query_one(&format!(
            "seinode_sidecar_tls_secret_ready{{namespace=\"{ns}\",name=\"broken\"}}"
        ))
        .map(|_| ())
    });

    for (title, expr) in queries(&dashboard()) {
        assert_query_runs(&s, &title, &expr);
    }
    let table = dashboard()["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == "table")
        .unwrap()
        .clone();
    let rows = s.query(table["targets"][0]["expr"].as_str().unwrap());
    let broken: Vec<_> = rows.iter().filter(|(l, _)| l["namespace"] == ns).collect();
    assert_eq!(broken.len(), 1, "only the broken node: {rows:?}");
    assert_eq!(broken[0].0["name"], "broken");
    assert_eq!(broken[0].0["reason"], "TLSSecretMalformed");
    let since = s.query(table["targets"][1]["expr"].as_str().unwrap());
    assert!(
        since
            .iter()
            .any(|(l, v)| l["namespace"] == ns && l["name"] == "broken" && *v > 1.0e12),
        "broken-since in ms: {since:?}"
    );
    assert!(watcher.terminate().success());
}

/// Runs `expr` as an instant query; Prometheus must accept it (it parses and evaluates).
#[cfg(feature = "stack-tests")]
fn assert_query_runs(s: &Scenario, title: &str, expr: &str) {
    if let Err(e) = s.try_prometheus("/api/v1/query", &[("query", expr)]) {
        panic!("panel {title:?}: {expr}: {e}");
    }
}

// ---------------------------------------------------------------------------------------
// deploy/grafana/sei-conditions.json
// ---------------------------------------------------------------------------------------

/// The metric families of the four kinds watched by default.
const FAMILIES: [&str; 4] = [
    "seinode",
    "seinetwork",
    "seinodetask",
    "seinodetaskworkflow",
];

/// Values of the template variables, as Grafana sends them: `cluster` and `namespace` as
/// regexes (their All value is `.*`), `kind` as the selected families.
#[derive(Clone)]
struct Vars {
    cluster: String,
    namespace: String,
    kinds: Vec<String>,
}

impl Vars {
    /// All selected in every variable.
    fn all() -> Vars {
        Vars {
            cluster: ".*".into(),
            namespace: ".*".into(),
            kinds: FAMILIES.map(str::to_owned).to_vec(),
        }
    }

    /// One cluster and one namespace, every kind.
    #[cfg(feature = "stack-tests")]
    fn only(cluster: &str, namespace: &str) -> Vars {
        Vars {
            cluster: cluster.into(),
            namespace: namespace.into(),
            ..Vars::all()
        }
    }

    /// The same with one kind: what a panel repeated on `kind` gets.
    fn with_kind(&self, kind: &str) -> Vars {
        Vars {
            kinds: vec![kind.to_owned()],
            ..self.clone()
        }
    }

    fn value(&self, name: &str) -> String {
        match name {
            "cluster" => self.cluster.clone(),
            "namespace" => self.namespace.clone(),
            // Grafana's Prometheus formatting of a multi-value variable, and `:regex`: one
            // value as it is, several as `(a|b)`.
            "kind" if self.kinds.len() == 1 => self.kinds[0].clone(),
            "kind" => format!("({})", self.kinds.join("|")),
            other => panic!("unknown template variable ${other}"),
        }
    }
}

/// Substitutes `$var`, `${var}` and `${var:regex}` as Grafana does before it sends a query.
/// `$1` (label_replace's replacement) is not a variable and stays; an unknown variable or
/// format panics, so no query reaches Prometheus with a variable left in it.
fn substitute(expr: &str, vars: &Vars) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(braced) = after.strip_prefix('{') {
            let end = braced
                .find('}')
                .unwrap_or_else(|| panic!("unclosed ${{ in {expr}"));
            let (name, format) = match braced[..end].split_once(':') {
                Some((n, f)) => (n, Some(f)),
                None => (&braced[..end], None),
            };
            assert!(
                format.is_none_or(|f| f == "regex"),
                "format {format:?} in {expr}"
            );
            out.push_str(&vars.value(name));
            rest = &braced[end + 1..];
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            let name = &after[..len];
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_digit()) {
                out.push('$');
                out.push_str(name);
            } else {
                out.push_str(&vars.value(name));
            }
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    out
}

/// (panel title, refId, query) for every query of every panel, variables substituted; a
/// panel repeated on `kind` once per selected kind, as Grafana repeats it.
fn substituted_queries(d: &Value, vars: &Vars) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for panel in d["panels"].as_array().unwrap() {
        let copies: Vec<Vars> = match panel["repeat"].as_str() {
            Some("kind") => vars.kinds.iter().map(|k| vars.with_kind(k)).collect(),
            Some(other) => panic!("panel repeated on {other}"),
            None => vec![vars.clone()],
        };
        for v in &copies {
            for target in panel["targets"].as_array().into_iter().flatten() {
                out.push((
                    substitute(panel["title"].as_str().unwrap(), v),
                    target["refId"].as_str().unwrap().to_owned(),
                    substitute(target["expr"].as_str().unwrap(), v),
                ));
            }
        }
    }
    out
}

fn panel<'a>(d: &'a Value, title: &str) -> &'a Value {
    d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == title)
        .unwrap_or_else(|| panic!("no panel {title:?}"))
}

/// The query of `panel`'s target `ref_id`, variables substituted.
#[cfg(feature = "stack-tests")]
fn expr(panel: &Value, ref_id: &str, vars: &Vars) -> String {
    let target = panel["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["refId"] == ref_id)
        .unwrap_or_else(|| panic!("{}: no target {ref_id}", panel["title"]));
    substitute(target["expr"].as_str().unwrap(), vars)
}

fn variable<'a>(d: &'a Value, name: &str) -> &'a Value {
    d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no variable {name}"))
}

/// `label_values(SELECTOR, LABEL)` of a query variable: (selector, label).
fn label_values(v: &Value) -> (String, String) {
    let q = v["query"]["query"].as_str().expect("query variable");
    assert_eq!(v["definition"], q, "{}", v["name"]);
    let inner = q
        .strip_prefix("label_values(")
        .and_then(|q| q.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not label_values(...): {q}"));
    let (selector, label) = inner.rsplit_once(',').unwrap();
    (selector.trim().to_owned(), label.trim().to_owned())
}

#[test]
fn conditions_dashboard_structure() {
    let d = conditions_dashboard();
    assert_eq!(d["uid"], "sei-conditions");
    assert_panels_described_on_the_datasource_variable(&d);
    let panels = d["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    for p in panels {
        assert!(
            ids.insert(p["id"].as_i64().unwrap()),
            "duplicate id {}",
            p["id"]
        );
        let g = &p["gridPos"];
        assert!(
            g["x"].as_i64().unwrap() + g["w"].as_i64().unwrap() <= 24,
            "{}",
            p["title"]
        );
        for t in p["targets"].as_array().into_iter().flatten() {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        }
    }

    // Template variables: the data source, then cluster, namespace and kind (family).
    let names: Vec<&str> = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["datasource", "cluster", "namespace", "kind"]);
    let ds = variable(&d, "datasource");
    assert_eq!(
        (&ds["type"], &ds["query"]),
        (&json!("datasource"), &json!("prometheus"))
    );
    for name in ["cluster", "namespace"] {
        let v = variable(&d, name);
        assert_eq!(v["type"], "query", "{name}");
        assert_eq!(v["datasource"]["uid"], "${datasource}", "{name}");
        // All is `.*`: it also matches series without the label (no --cluster-name, or a
        // cluster-scoped resource).
        assert_eq!(
            (&v["includeAll"], &v["allValue"]),
            (&json!(true), &json!(".*")),
            "{name}"
        );
        assert_eq!(v["multi"], true, "{name}");
        assert_eq!(label_values(v).1, name);
    }
    let kind = variable(&d, "kind");
    assert_eq!(kind["type"], "custom");
    assert_eq!(kind["query"], FAMILIES.join(","));
    assert_eq!(
        (&kind["includeAll"], &kind["multi"]),
        (&json!(true), &json!(true))
    );

    // Every query is filtered by cluster, condition queries also by namespace and kind, and
    // every variable in them is defined (substitute panics otherwise).
    for (title, e) in queries(&d) {
        assert!(e.contains("cluster=~\"$cluster\""), "{title}: {e}");
        if e.contains("_status_condition") {
            assert!(e.contains("namespace=~\"$namespace\""), "{title}: {e}");
            assert!(e.contains("${kind"), "{title}: {e}");
        }
        substitute(&e, &Vars::all());
    }

    // The fleet view: one panel per kind, conditions counted by type and status after the
    // watcher replicas' series are merged.
    let fleet = panels
        .iter()
        .find(|p| p["repeat"] == "kind")
        .expect("a panel repeated per kind");
    assert!(fleet["title"].as_str().unwrap().contains("$kind"));
    let e = fleet["targets"][0]["expr"].as_str().unwrap();
    assert!(
        e.starts_with("count by (type, status) (max by (cluster, namespace, name, type, status) (${kind}_status_condition{"),
        "{e}"
    );

    // Needs attention: *Ready not True, *InProgress True, Failed True, with since.
    let attention = panel(&d, "Conditions needing attention");
    let a = attention["targets"][0]["expr"].as_str().unwrap();
    assert!(a.contains("type=~\".*Ready\", status!=\"True\""), "{a}");
    assert!(
        a.contains("type=~\".*InProgress|Failed\", status=\"True\""),
        "{a}"
    );
    assert!(
        a.contains("max by (cluster, kind, namespace, name, type, status, reason)"),
        "{a}"
    );
    let b = attention["targets"][1]["expr"].as_str().unwrap();
    assert!(
        b.contains("_status_condition_last_transition_timestamp_seconds"),
        "{b}"
    );
    assert!(
        b.contains("* 1000 and on (cluster, kind, namespace, name, type)"),
        "{b}"
    );
    let overrides = attention["fieldConfig"]["overrides"].to_string();
    assert!(overrides.contains("dateTimeFromNow"), "{overrides}");

    let outdated = panel(&d, "Outdated conditions");
    let o = outdated["targets"][0]["expr"].as_str().unwrap();
    assert!(
        o.contains("_status_condition_outdated\"") && o.ends_with("> 0"),
        "{o}"
    );

    let q: String = queries(&d).into_iter().map(|(_, e)| e).collect();
    for metric in [
        "sei_condition_watcher_up",
        "sei_condition_watcher_objects",
        "sei_condition_watcher_watch_errors_total",
        "sei_condition_watcher_decode_errors_total",
        "sei_condition_watcher_export_errors_total",
    ] {
        assert!(q.contains(metric), "watcher health: {metric}");
    }
}

#[test]
fn template_variables_are_substituted_as_grafana_does() {
    let all = Vars::all();
    assert_eq!(
        substitute(
            "{__name__=~\"${kind:regex}_x\", cluster=~\"$cluster\"}",
            &all
        ),
        "{__name__=~\"(seinode|seinetwork|seinodetask|seinodetaskworkflow)_x\", cluster=~\".*\"}"
    );
    assert_eq!(
        substitute(
            "${kind}_x{namespace=~\"$namespace\"}",
            &all.with_kind("seinode")
        ),
        "seinode_x{namespace=~\".*\"}"
    );
    assert_eq!(
        substitute(
            "label_replace(x, \"kind\", \"$1\", \"__name__\", \"(.+)_y\")",
            &all
        ),
        "label_replace(x, \"kind\", \"$1\", \"__name__\", \"(.+)_y\")"
    );
    let repeated: Vec<String> = substituted_queries(&conditions_dashboard(), &all)
        .into_iter()
        .filter(|(_, _, e)| e.starts_with("count by (type, status)"))
        .map(|(title, _, _)| title)
        .collect();
    assert_eq!(
        repeated,
        FAMILIES.map(|f| format!("{f}: conditions by type and status"))
    );
}

/// One fixture object of tests/fixtures/current, its family and `plural.group`.
#[cfg(feature = "stack-tests")]
struct Fixture {
    family: &'static str,
    resource: &'static str,
    object: Value,
}

#[cfg(feature = "stack-tests")]
impl Fixture {
    fn new(family: &'static str, resource: &'static str, file: &str) -> Fixture {
        Fixture {
            family,
            resource,
            object: fixture(file),
        }
    }

    fn name(&self) -> &str {
        self.object["metadata"]["name"].as_str().unwrap()
    }

    fn conditions(&self) -> &Vec<Value> {
        self.object["status"]["conditions"].as_array().unwrap()
    }

    fn condition_mut(&mut self, type_: &str) -> &mut Value {
        self.object["status"]["conditions"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|c| c["type"] == type_)
            .unwrap_or_else(|| panic!("no {type_}"))
    }
}

#[cfg(feature = "stack-tests")]
fn label(labels: &BTreeMap<String, String>, name: &str) -> String {
    labels.get(name).cloned().unwrap_or_default()
}

/// (kind, name, type, status, reason) of a table row.
#[cfg(feature = "stack-tests")]
type Row = [String; 5];

/// The rows of a table query, each once (no row per watcher replica).
#[cfg(feature = "stack-tests")]
fn rows(series: &[(BTreeMap<String, String>, f64)], ns: &str) -> BTreeSet<Row> {
    let rows: BTreeSet<Row> = series
        .iter()
        .map(|(l, _)| {
            assert_eq!(label(l, "namespace"), ns, "{l:?}");
            assert!(!l.contains_key("instance"), "replicas merged: {l:?}");
            ["kind", "name", "type", "status", "reason"].map(|k| label(l, k))
        })
        .collect();
    assert_eq!(rows.len(), series.len(), "a row twice: {series:?}");
    rows
}

#[cfg(feature = "stack-tests")]
fn row(kind: &str, name: &str, type_: &str, status: &str, reason: &str) -> Row {
    [kind, name, type_, status, reason].map(str::to_owned)
}

/// Label values a `label_values(SELECTOR, LABEL)` variable gets from Prometheus.
#[cfg(feature = "stack-tests")]
fn variable_values(s: &Scenario, v: &Value, vars: &Vars) -> BTreeSet<String> {
    let (selector, label) = label_values(v);
    s.prometheus(
        &format!("/api/v1/label/{label}/values"),
        &[("match[]", &substitute(&selector, vars))],
    )
    .as_array()
    .unwrap()
    .iter()
    .map(|v| v.as_str().unwrap().to_owned())
    .collect()
}

/// The new dashboard against a real watcher with objects of all four kinds in its own
/// namespace, under a cluster name of its own: every query (All selected, and this cluster
/// and namespace selected) runs, and the fleet, needs-attention, outdated and watcher panels
/// show exactly what the objects say.
#[cfg(feature = "stack-tests")]
#[test]
fn conditions_dashboard_queries_run_on_real_prometheus_and_show_the_objects() {
    let s = Scenario::new("dashboard-cond");
    let ns = s.ns();
    let cluster = format!("{ns}-cluster");
    let d = conditions_dashboard();
    let vars = Vars::only(&cluster, ns);

    // The fixture objects, a validator whose signing key went bad just now, and a failed task.
    let mut validator = Fixture::new(
        "seinode",
        "seinodes.sei.io",
        "current/seinode-validator.yaml",
    );
    let broken_since = jiff::Timestamp::now().round(jiff::Unit::Second).unwrap();
    {
        let c = validator.condition_mut("SigningKeyReady");
        c["status"] = json!("False");
        c["reason"] = json!("SigningKeyInvalid");
        c["message"] = json!("priv_validator_key.json is not valid JSON");
        c["lastTransitionTime"] = json!(broken_since.to_string());
    }
    let failed = Fixture {
        family: "seinodetask",
        resource: "seinodetasks.sei.io",
        object: failed_task(),
    };
    let objects = vec![
        validator,
        Fixture::new(
            "seinode",
            "seinodes.sei.io",
            "current/seinode-full-node.yaml",
        ),
        Fixture::new(
            "seinetwork",
            "seinetworks.sei.io",
            "current/seinetwork.yaml",
        ),
        Fixture::new(
            "seinodetask",
            "seinodetasks.sei.io",
            "current/seinodetask.yaml",
        ),
        failed,
        Fixture::new(
            "seinodetaskworkflow",
            "seinodetaskworkflows.sei.io",
            "current/seinodetaskworkflow.yaml",
        ),
    ];
    for o in &objects {
        s.create(o.resource, &o.object);
    }
    // Two watcher replicas, as during a rollout: the panels merge their series, so every
    // object and condition counts once.
    let mut watchers: Vec<Watcher> = ["a", "b"]
        .map(|replica| {
            s.watcher()
                .instance(&format!("{ns}-watcher-{replica}"))
                .args(["--cluster-name", &cluster])
                .start()
        })
        .into();
    for w in &watchers {
        w.wait_ready();
    }

    // The fleet view, per kind: conditions counted by (type, status), as the objects say.
    let fleet = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["repeat"] == "kind")
        .unwrap();
    for family in FAMILIES {
        let mut want: BTreeMap<(String, String), f64> = BTreeMap::new();
        for o in objects.iter().filter(|o| o.family == family) {
            for c in o.conditions() {
                let key = (
                    c["type"].as_str().unwrap().to_owned(),
                    c["status"].as_str().unwrap().to_owned(),
                );
                *want.entry(key).or_default() += 1.0;
            }
        }
        let q = expr(fleet, "A", &vars.with_kind(family));
        eventually(
            Duration::from_secs(30),
            &format!("fleet view of {family}: {want:?}"),
            || {
                let got: BTreeMap<(String, String), f64> = s
                    .query(&q)
                    .into_iter()
                    .map(|(l, v)| ((label(&l, "type"), label(&l, "status")), v))
                    .collect();
                (got == want).then_some(())
            },
        );
    }

    // Every panel query runs: with this cluster and namespace, and with All selected.
    for v in [&vars, &Vars::all()] {
        for (title, ref_id, e) in substituted_queries(&d, v) {
            assert_query_runs(&s, &format!("{title} {ref_id}"), &e);
        }
    }

    // The template variables find this cluster, and this cluster's namespace.
    let clusters = variable_values(&s, variable(&d, "cluster"), &Vars::all());
    assert!(clusters.contains(&cluster), "{clusters:?}");
    assert_eq!(
        variable_values(&s, variable(&d, "namespace"), &vars.clone()),
        BTreeSet::from([ns.to_owned()])
    );

    // Needs attention: exactly the conditions `check` lists, the bad signing key among them,
    // each with its lastTransitionTime as "since".
    let attention = panel(&d, "Conditions needing attention");
    let want: BTreeSet<Row> = [
        row(
            "seinode",
            "validator-0",
            "SigningKeyReady",
            "False",
            "SigningKeyInvalid",
        ),
        row(
            "seinode",
            "full-node-0",
            "SidecarReady",
            "Unknown",
            "Unreachable",
        ),
        row(
            "seinode",
            "full-node-0",
            "WorkflowInProgress",
            "True",
            "WorkflowRunning",
        ),
        row(
            "seinetwork",
            "arctic-1",
            "NodesReady",
            "False",
            "NodesInitializing",
        ),
        row(
            "seinodetask",
            "full-node-0-restart",
            "Failed",
            "True",
            "Timeout",
        ),
        row(
            "seinodetaskworkflow",
            "full-node-0-state-sync",
            "Ready",
            "False",
            "NotComplete",
        ),
    ]
    .into_iter()
    .collect();
    let table = s.query(&expr(attention, "A", &vars));
    assert_eq!(rows(&table, ns), want, "{table:?}");
    assert!(table
        .iter()
        .all(|(l, v)| label(l, "cluster") == cluster && *v == 1.0));
    let check = s.check(ns);
    let stdout = String::from_utf8_lossy(&check.stdout);
    let listed: BTreeSet<Row> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|c| c.len() == 7 && c[1] == ns)
        .map(|c| {
            [
                c[0].to_lowercase(),
                c[2].into(),
                c[3].into(),
                c[4].into(),
                c[5].into(),
            ]
        })
        .collect();
    assert_eq!(listed, want, "the same rows as check:\n{stdout}");

    let since: BTreeMap<(String, String), f64> = s
        .query(&expr(attention, "B", &vars))
        .into_iter()
        .map(|(l, v)| ((label(&l, "name"), label(&l, "type")), v))
        .collect();
    let want_since: BTreeMap<(String, String), f64> = want
        .iter()
        .map(|[_, name, type_, _, _]| {
            let o = objects.iter().find(|o| o.name() == name).unwrap();
            let c = o
                .conditions()
                .iter()
                .find(|c| c["type"] == **type_)
                .unwrap();
            let t: jiff::Timestamp = c["lastTransitionTime"].as_str().unwrap().parse().unwrap();
            ((name.clone(), type_.clone()), t.as_second() as f64 * 1000.0)
        })
        .collect();
    assert_eq!(since, want_since);
    assert_eq!(
        since[&("validator-0".to_owned(), "SigningKeyReady".to_owned())],
        broken_since.as_second() as f64 * 1000.0
    );

    let trend: BTreeMap<(String, String), f64> = s
        .query(&expr(
            panel(&d, "Conditions needing attention over time"),
            "A",
            &vars,
        ))
        .into_iter()
        .map(|(l, v)| ((label(&l, "kind"), label(&l, "type")), v))
        .collect();
    let want_trend: BTreeMap<(String, String), f64> = want
        .iter()
        .map(|[kind, _, type_, _, _]| ((kind.clone(), type_.clone()), 1.0))
        .collect();
    assert_eq!(trend, want_trend);

    // Outdated: nothing yet; after a spec change of the validator (generation 2), each of
    // its conditions is one generation behind, shown with its current status and reason.
    let outdated = panel(&d, "Outdated conditions");
    assert!(s.query(&expr(outdated, "A", &vars)).is_empty());
    s.stack().patch_merge(
        Some(ns),
        "seinodes.sei.io",
        "validator-0",
        &json!({"spec": {"image": "ghcr.io/sei-protocol/sei:v6.4.0"}}),
    );
    let validator = &objects[0];
    let want_outdated: BTreeSet<Row> = validator
        .conditions()
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap().to_owned();
            [
                "seinode".into(),
                "validator-0".into(),
                s("type"),
                s("status"),
                s("reason"),
            ]
        })
        .collect();
    let lagging = eventually(
        Duration::from_secs(30),
        "every condition of validator-0 outdated",
        || {
            let series = s.query(&expr(outdated, "A", &vars));
            (series.len() == want_outdated.len()).then_some(series)
        },
    );
    for (l, v) in &lagging {
        assert_eq!(
            (label(l, "kind"), label(l, "name"), *v),
            ("seinode".into(), "validator-0".into(), 1.0),
            "{l:?}"
        );
    }
    let with_status = s.query(&expr(outdated, "B", &vars));
    assert_eq!(rows(&with_status, ns), want_outdated);
    let outdated_trend = s.query(&expr(
        panel(&d, "Outdated conditions over time"),
        "A",
        &vars,
    ));
    assert_eq!(outdated_trend.len(), 1, "{outdated_trend:?}");
    assert_eq!(label(&outdated_trend[0].0, "kind"), "seinode");
    assert_eq!(outdated_trend[0].1, want_outdated.len() as f64);

    // Watcher health, for this cluster: one watcher, objects per resource, lists done, no
    // errors, exports flowing.
    let health = |title: &str, ref_id: &str| s.query(&expr(panel(&d, title), ref_id, &vars));
    eventually(Duration::from_secs(30), "two watchers reporting", || {
        (health("Watchers reporting", "A").first().map(|(_, v)| *v) == Some(2.0)).then_some(())
    });
    let want_objects: BTreeMap<String, f64> = [
        ("seinodes.sei.io", 2.0),
        ("seinetworks.sei.io", 1.0),
        ("seinodetasks.sei.io", 2.0),
        ("seinodetaskworkflows.sei.io", 1.0),
    ]
    .into_iter()
    .map(|(r, n)| (r.to_owned(), n))
    .collect();
    eventually(Duration::from_secs(30), "objects per resource", || {
        let got: BTreeMap<String, f64> = health("Objects per resource", "A")
            .into_iter()
            .map(|(l, v)| (label(&l, "resource"), v))
            .collect();
        (got == want_objects).then_some(())
    });
    let lists = health("Seconds since the last (re)list", "A");
    let resources: BTreeSet<String> = lists.iter().map(|(l, _)| label(l, "resource")).collect();
    assert_eq!(resources, want_objects.keys().cloned().collect());
    assert!(
        lists.iter().all(|(_, v)| (0.0..300.0).contains(v)),
        "{lists:?}"
    );
    for ref_id in ["A", "B", "C"] {
        let errors = health("Watch, decode and export errors", ref_id);
        assert!(errors.is_empty(), "errors {ref_id}: {errors:?}");
    }
    eventually(
        Duration::from_secs(30),
        "exports per second of each",
        || {
            let exporting = health("Exports and staleness markers", "A");
            watchers
                .iter()
                .all(|w| {
                    exporting
                        .iter()
                        .any(|(l, v)| label(l, "instance") == w.instance && *v > 0.0)
                })
                .then_some(())
        },
    );
    for w in &mut watchers {
        assert!(w.terminate().success());
    }
}
