//! Issue 21, items 3 and 4, through the whole real pipeline (kube-apiserver -> watcher
//! process -> collector -> Prometheus): labels from objects on the info series
//! `seinode_labels` (they appear, change with the object and vanish with it), and filters
//! (a denied condition type and a denied namespace are not exported while the rest is,
//! said at start-up and by the self-metrics).

use std::time::Duration;

use crate::harness::*;
use serde_json::Value;

/// First arrival of an object's series (start-up, list, first export).
const VISIBLE_WITHIN: Duration = Duration::from_secs(30);
/// A label change or a delete: the new info series queryable and the old one gone.
const CHANGE_BUDGET: Duration = Duration::from_secs(10);

/// The validator fixture (labels `sei.io/chain: arctic-1`, `sei.io/role: validator`) named
/// `name`, with `extra` labels, created in `ns` with its status; returns its name.
fn validator(s: &Scenario, ns: &str, name: &str, extra: &[(&str, &str)]) -> String {
    let mut object = fixture("current/seinode-validator.yaml");
    object["metadata"]["name"] = Value::from(name);
    for (k, v) in extra {
        object["metadata"]["labels"][*k] = Value::from(*v);
    }
    s.stack()
        .create_with_status(Some(ns), "seinodes.sei.io", &object)
}

/// The info series of one SeiNode: the labels of each (job and instance left out).
fn info_of(s: &Scenario, ns: &str, name: &str) -> Vec<Vec<(String, String)>> {
    s.query(&format!(
        r#"seinode_labels{{namespace="{ns}",name="{name}"}}"#
    ))
    .into_iter()
    .map(|(labels, value)| {
        assert_eq!(value, 1.0);
        labels
            .into_iter()
            .filter(|(k, _)| k.starts_with("label_") || k.starts_with("annotation_"))
            .collect()
    })
    .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<Vec<(String, String)>> {
    vec![list
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()]
}

#[test]
fn allowlisted_labels_appear_on_the_info_series_change_with_the_object_and_vanish_with_it() {
    let s = Scenario::new("labels");
    let ns = s.ns().to_owned();
    let a = validator(&s, &ns, "with-team", &[("team", "payments")]);
    let b = validator(&s, &ns, "no-team", &[]);
    let _watcher = s
        .watcher()
        .args([
            "--metric-labels-allowlist",
            "seinodes=[team,sei.io/chain]",
            "--metric-annotations-allowlist",
            "seinodes=[owner]",
        ])
        .ready();
    eventually(VISIBLE_WITHIN, "the info series with the team", || {
        (info_of(&s, &ns, &a)
            == pairs(&[
                ("label_sei_io_chain", "arctic-1"),
                ("label_team", "payments"),
            ]))
        .then_some(())
    });
    // An allowlisted resource's object without the label has its info series, without
    // label_team; `sei.io/role` is not allowlisted and never copied.
    assert_eq!(
        info_of(&s, &ns, &b),
        pairs(&[("label_sei_io_chain", "arctic-1")])
    );
    // A label changes: the new info series, the old one marked stale at once.
    s.kubectl_ok(&[
        "label",
        "-n",
        &ns,
        "seinodes.sei.io",
        &a,
        "team=core",
        "--overwrite",
    ]);
    s.kubectl_ok(&["annotate", "-n", &ns, "seinodes.sei.io", &a, "owner=alice"]);
    eventually(CHANGE_BUDGET, "the new team only", || {
        (info_of(&s, &ns, &a)
            == pairs(&[
                ("annotation_owner", "alice"),
                ("label_sei_io_chain", "arctic-1"),
                ("label_team", "core"),
            ]))
        .then_some(())
    });
    // The label goes away: the info series without it.
    s.kubectl_ok(&["label", "-n", &ns, "seinodes.sei.io", &a, "team-"]);
    eventually(CHANGE_BUDGET, "the info series without the team", || {
        (info_of(&s, &ns, &a)
            == pairs(&[
                ("annotation_owner", "alice"),
                ("label_sei_io_chain", "arctic-1"),
            ]))
        .then_some(())
    });
    // The object is deleted: its info series goes with its condition series.
    s.stack().delete_object(Some(&ns), "seinodes.sei.io", &a);
    eventually(CHANGE_BUDGET, "the info series gone", || {
        info_of(&s, &ns, &a).is_empty().then_some(())
    });
    assert!(s
        .query(&format!(
            r#"seinode_status_condition{{namespace="{ns}",name="{a}"}}"#
        ))
        .is_empty());
    assert_eq!(
        info_of(&s, &ns, &b).len(),
        1,
        "the other object keeps its own"
    );
}

#[test]
fn a_denied_type_and_a_denied_namespace_are_not_exported_while_the_rest_is() {
    let s = Scenario::new("filters");
    let ns = s.ns().to_owned();
    let denied_ns = s.namespace("filters-denied");
    // The watcher watches every namespace (a namespace deny list needs that), restricted by
    // a label selector to this test's objects so that it exports nobody else's.
    let selector = format!("filters-test={ns}");
    let kept = validator(&s, &ns, "kept", &[("filters-test", &ns)]);
    let hidden = validator(&s, &denied_ns, "hidden", &[("filters-test", &ns)]);
    let watcher = s
        .watcher()
        .cluster_wide()
        .args([
            "-l",
            &selector,
            "--condition-types-deny",
            "seinodes=Paused,SigningKeyReady",
            "--namespace-deny",
            &denied_ns,
        ])
        .ready();
    let types = |ns: &str, name: &str| -> Vec<String> {
        s.query(&format!(
            r#"seinode_status_condition{{namespace="{ns}",name="{name}"}}"#
        ))
        .into_iter()
        .map(|(labels, _)| labels["type"].clone())
        .collect()
    };
    let got = eventually(VISIBLE_WITHIN, "the kept object's conditions", || {
        let t = types(&ns, &kept);
        (t.len() == 6).then_some(t)
    });
    assert!(
        !got.iter().any(|t| t == "Paused" || t == "SigningKeyReady"),
        "{got:?}"
    );
    assert!(got.iter().any(|t| t == "NodeKeyReady"), "{got:?}");
    let instance = &watcher.instance;
    eventually(VISIBLE_WITHIN, "the self-metrics of the filters", || {
        let filtered = s.query_one(&format!(
            r#"sei_condition_watcher_filtered_conditions{{instance="{instance}",resource="seinodes.sei.io"}}"#
        ))?;
        let configured = s.query_one(&format!(
            r#"sei_condition_watcher_filters{{instance="{instance}",filter="namespace_deny"}}"#
        ))?;
        (filtered == 2.0 && configured == 1.0).then_some(())
    });
    assert!(
        types(&denied_ns, &hidden).is_empty(),
        "a denied namespace is not exported"
    );
    assert!(s
        .query(&format!(r#"sei_condition_watcher_objects{{instance="{instance}",resource="seinodes.sei.io"}} == 1"#))
        .len()
        == 1, "only the kept object is watched");
    // Said at start-up: one line per filter, the paging type as a warning.
    let log = watcher.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("these condition types are not exported"))
        .unwrap_or_else(|| panic!("no start-up line for the type filter:\n{log}"));
    assert!(
        line.contains("WARN") && line.contains("SigningKeyReady is left out"),
        "{line}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("namespaces not watched") && l.contains(&denied_ns)),
        "{log}"
    );
}

/// `check` honours the filters (it shares the scope flags), and a contradiction is one
/// line and exit 2.
#[test]
fn check_honours_the_filters_and_a_contradiction_is_one_line() {
    let s = Scenario::new("filters-check");
    let ns = s.ns().to_owned();
    let mut object = fixture("current/seinode-validator.yaml");
    // A broken signing key: `check` reports it, unless the type is filtered out.
    for c in object["status"]["conditions"].as_array_mut().unwrap() {
        if c["type"] == "SigningKeyReady" {
            c["status"] = Value::from("False");
            c["reason"] = Value::from("SigningKeyInvalid");
        }
    }
    s.stack()
        .create_with_status(Some(&ns), "seinodes.sei.io", &object);
    let run = |extra: &[&str]| {
        std::process::Command::new(BIN)
            .args(["check", "--kubeconfig"])
            .arg(s.stack().kubeconfig())
            .args(extra)
            .output()
            .expect("check runs")
    };
    let plain = run(&["-n", &ns]);
    assert_eq!(plain.status.code(), Some(1), "{plain:?}");
    assert!(String::from_utf8_lossy(&plain.stdout).contains("SigningKeyInvalid"));
    let filtered = run(&[
        "-n",
        &ns,
        "--condition-types-deny",
        "seinodes=SigningKeyReady",
    ]);
    assert_eq!(filtered.status.code(), Some(0), "{filtered:?}");
    let said = String::from_utf8_lossy(&filtered.stderr);
    assert!(
        said.contains(
            "filter: seinodes.sei.io: these condition types are not exported: SigningKeyReady"
        ),
        "check says what it leaves out: {said}"
    );
    let both = run(&["-n", &ns, "--namespace-deny", "kube-system"]);
    assert_eq!(both.status.code(), Some(2), "{both:?}");
    let err = String::from_utf8_lossy(&both.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--namespace-deny and -n"), "{err}");
}

/// The routing example end to end: with `--metric-labels-allowlist seinodes=[team]`, the
/// shipped SeiNodeSigningKeyNotReady page of a validator labelled `team=payments` reaches
/// Alertmanager with `label_team="payments"`, and the page of a validator without the
/// label still fires, without it (the rule's `or on (...)`).
#[test]
fn the_signing_key_page_carries_the_team_label_and_pages_without_it() {
    const PAGE: &str = "SeiNodeSigningKeyNotReady";
    // The rule's `for: 1m` on a terminal reason, evaluation, group_wait and the exports
    // (tests/it/cluster_identity.rs uses the same bound).
    const PAGE_WITHIN: Duration = Duration::from_secs(150);
    let s = Scenario::new("labels-page");
    let ns = s.ns().to_owned();
    let broken = |name: &str, team: Option<&str>| {
        let mut object = fixture("current/seinode-validator.yaml");
        object["metadata"]["name"] = Value::from(name);
        if let Some(team) = team {
            object["metadata"]["labels"]["team"] = Value::from(team);
        }
        for c in object["status"]["conditions"].as_array_mut().unwrap() {
            if c["type"] == "SigningKeyReady" {
                c["status"] = Value::from("False");
                c["reason"] = Value::from("SigningKeyInvalid");
            }
        }
        s.stack()
            .create_with_status(Some(&ns), "seinodes.sei.io", &object)
    };
    let with_team = broken("with-team", Some("payments"));
    let without = broken("without-team", None);
    let _watcher = s
        .watcher()
        .args(["--metric-labels-allowlist", "seinodes=[team]"])
        .ready();
    // And a watcher without the allowlist (no info series at all), in a namespace of its
    // own: its validator pages all the same.
    let plain_ns = s.namespace("labels-page-plain");
    let mut object = fixture("current/seinode-validator.yaml");
    for c in object["status"]["conditions"].as_array_mut().unwrap() {
        if c["type"] == "SigningKeyReady" {
            c["status"] = Value::from("False");
            c["reason"] = Value::from("SigningKeyInvalid");
        }
    }
    let plain = s
        .stack()
        .create_with_status(Some(&plain_ns), "seinodes.sei.io", &object);
    let _plain_watcher = s
        .watcher()
        .cluster_wide()
        .args(["-n", &plain_ns])
        .instance(&format!("{plain_ns}-watcher"))
        .ready();
    let firing = |ns: &str| -> Vec<(String, Option<String>)> {
        let mut pages: Vec<(String, Option<String>)> = seistack::notifications(Some(ns))
            .iter()
            .filter(|a| a["labels"]["alertname"] == PAGE && a["status"] == "firing")
            .map(|a| {
                (
                    a["labels"]["name"].as_str().unwrap_or_default().to_owned(),
                    a["labels"]["label_team"].as_str().map(str::to_owned),
                )
            })
            .collect();
        pages.sort();
        pages.dedup();
        pages
    };
    let pages = eventually(
        PAGE_WITHIN,
        "the three pages at Alertmanager's receiver",
        || {
            let pages = firing(&ns);
            (pages.len() >= 2 && !firing(&plain_ns).is_empty()).then_some(pages)
        },
    );
    assert_eq!(firing(&plain_ns), vec![(plain, None)]);
    assert_eq!(
        pages,
        vec![
            (with_team.clone(), Some("payments".to_owned())),
            (without.clone(), None)
        ]
    );
    // Prometheus agrees: one alert per object, no second one without the label.
    let alerts = s.query(&format!(
        r#"ALERTS{{alertname="{PAGE}",alertstate="firing",namespace="{ns}"}}"#
    ));
    assert_eq!(alerts.len(), 2, "{alerts:?}");
}
