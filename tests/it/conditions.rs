//! status.conditions of every watched kind, through the whole real pipeline (kube-apiserver
//! with the four current sei.io CRDs -> watcher process -> collector -> Prometheus), against
//! the metric contract (notes: `<family>_status_condition{namespace,name,type,status,reason}`,
//! `..._last_transition_timestamp_seconds`, `..._outdated`, `--resource`; `check` is in
//! check.rs, on the same fixtures).
//!
//! The objects are tests/fixtures/current/*.yaml, valid under sei-k8s-controller 2d670ad,
//! with the conditions its controller writes; each test creates them in its own namespace,
//! writes their status through the status subresource and runs its own watcher (default
//! resources, restricted to the namespace), so the tests run in parallel.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::harness::*;
use serde_json::{json, Value};

/// First arrival of an object's series (start-up, list, first export).
const VISIBLE_WITHIN: Duration = Duration::from_secs(30);
/// A condition change: the new (status, reason) queryable, the old one gone.
const FLIP_BUDGET: Duration = Duration::from_secs(2);
/// A deleted object's series gone: "promptly", i.e. well inside two export intervals.
const DELETE_BUDGET: Duration = Duration::from_secs(5);
/// How often the timing tests poll Prometheus.
const POLL: Duration = Duration::from_millis(50);

/// One fixture object: its file, metric family and `plural.group`.
pub(crate) struct Kind {
    pub(crate) file: &'static str,
    family: &'static str,
    pub(crate) resource: &'static str,
    kind: &'static str,
}

pub(crate) const VALIDATOR: Kind = Kind {
    file: "current/seinode-validator.yaml",
    family: "seinode",
    resource: "seinodes.sei.io",
    kind: "SeiNode",
};
const FULL_NODE: Kind = Kind {
    file: "current/seinode-full-node.yaml",
    family: "seinode",
    resource: "seinodes.sei.io",
    kind: "SeiNode",
};
const NETWORK: Kind = Kind {
    file: "current/seinetwork.yaml",
    family: "seinetwork",
    resource: "seinetworks.sei.io",
    kind: "SeiNetwork",
};
pub(crate) const TASK: Kind = Kind {
    file: "current/seinodetask.yaml",
    family: "seinodetask",
    resource: "seinodetasks.sei.io",
    kind: "SeiNodeTask",
};
const WORKFLOW: Kind = Kind {
    file: "current/seinodetaskworkflow.yaml",
    family: "seinodetaskworkflow",
    resource: "seinodetaskworkflows.sei.io",
    kind: "SeiNodeTaskWorkflow",
};
pub(crate) const ALL: [&Kind; 5] = [&VALIDATOR, &FULL_NODE, &NETWORK, &TASK, &WORKFLOW];

/// A fixture object created in a namespace, with the status written.
pub(crate) struct Obj {
    kind: &'static Kind,
    ns: String,
    name: String,
    status: Value,
}

impl Obj {
    pub(crate) fn create(s: &Scenario, ns: &str, kind: &'static Kind) -> Obj {
        let object = fixture(kind.file);
        let status = object["status"].clone();
        let name = s
            .stack()
            .create_with_status(Some(ns), kind.resource, &object);
        Obj {
            kind,
            ns: ns.to_owned(),
            name,
            status,
        }
    }

    fn conditions(&self) -> &Vec<Value> {
        self.status["conditions"].as_array().expect("conditions")
    }

    fn condition_mut(&mut self, type_: &str) -> &mut Value {
        self.status["conditions"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|c| c["type"] == type_)
            .unwrap_or_else(|| panic!("no {type_} condition"))
    }

    /// Writes the (changed) status through the status subresource.
    fn write_status(&self, s: &Scenario) {
        s.stack()
            .patch_status(Some(&self.ns), self.kind.resource, &self.name, &self.status);
    }

    fn selector(&self) -> String {
        format!("namespace=\"{}\",name=\"{}\"", self.ns, self.name)
    }

    fn metric(&self, suffix: &str) -> String {
        format!("{}_status_condition{suffix}", self.kind.family)
    }

    /// `<family>_status_condition{namespace,name,type[,status,reason]}`.
    fn condition_query(&self, type_: &str, status: Option<&str>, reason: Option<&str>) -> String {
        let mut q = format!("{}{{{},type=\"{type_}\"", self.metric(""), self.selector());
        if let Some(s) = status {
            q += &format!(",status=\"{s}\"");
        }
        if let Some(r) = reason {
            q += &format!(",reason=\"{r}\"");
        }
        q + "}"
    }

    /// Every series of the object in the three families.
    fn all_series_query(&self) -> String {
        format!(
            "{{{},__name__=~\"{}_status_condition(_last_transition_timestamp_seconds|_outdated)?\"}}",
            self.selector(),
            self.kind.family
        )
    }

    /// True when every condition has exactly its (status, reason) series at 1 and its
    /// lastTransitionTime series at the written time, and nothing else in the two families.
    fn exported(&self, s: &Scenario) -> bool {
        let series = s.query(&format!("{}{{{}}}", self.metric(""), self.selector()));
        let got: BTreeSet<(String, String, String)> = series
            .iter()
            .filter(|(_, v)| *v == 1.0)
            .map(|(l, _)| (l["type"].clone(), l["status"].clone(), l["reason"].clone()))
            .collect();
        let want: BTreeSet<(String, String, String)> = self
            .conditions()
            .iter()
            .map(|c| (text(&c["type"]), text(&c["status"]), text(&c["reason"])))
            .collect();
        if series.len() != want.len() || got != want {
            return false;
        }
        let times = s.query(&format!(
            "{}{{{}}}",
            self.metric("_last_transition_timestamp_seconds"),
            self.selector()
        ));
        let got: BTreeMap<String, f64> =
            times.iter().map(|(l, v)| (l["type"].clone(), *v)).collect();
        let want: BTreeMap<String, f64> = self
            .conditions()
            .iter()
            .map(|c| (text(&c["type"]), seconds(&c["lastTransitionTime"])))
            .collect();
        times.len() == want.len() && got == want
    }

    fn wait_exported(&self, s: &Scenario, within: Duration) {
        eventually(
            within,
            &format!(
                "{} {}/{} exported as written",
                self.kind.kind, self.ns, self.name
            ),
            || self.exported(s).then_some(()),
        );
    }

    /// Moves one condition to `status`/`reason` (with `message`) at `at`, as the controller
    /// would, and writes the status.
    fn transition(
        &mut self,
        s: &Scenario,
        type_: &str,
        [status, reason, message]: [&str; 3],
        at: &str,
    ) {
        let c = self.condition_mut(type_);
        c["status"] = json!(status);
        c["reason"] = json!(reason);
        c["message"] = json!(message);
        c["lastTransitionTime"] = json!(at);
        self.write_status(s);
    }
}

/// The setup the tests share: a namespace of their own with one object of each of `kinds`
/// (status written), then a watcher (default resources, that namespace) that has exported
/// every one of them as written.
fn scenario(prefix: &str, kinds: &[&'static Kind]) -> (Scenario, Vec<Obj>, Watcher) {
    scenario_with(prefix, kinds, |_, _| {})
}

/// [`scenario`], with `prepare` run on the objects before the watcher starts.
fn scenario_with(
    prefix: &str,
    kinds: &[&'static Kind],
    prepare: impl FnOnce(&Scenario, &mut [Obj]),
) -> (Scenario, Vec<Obj>, Watcher) {
    let s = Scenario::new(prefix);
    let mut objects: Vec<Obj> = kinds.iter().map(|k| Obj::create(&s, s.ns(), k)).collect();
    prepare(&s, &mut objects);
    let watcher = s.watcher().ready();
    for obj in &objects {
        obj.wait_exported(&s, VISIBLE_WITHIN);
    }
    (s, objects, watcher)
}

/// [`scenario`] with a single object.
fn scenario_of_one(prefix: &str, kind: &'static Kind) -> (Scenario, Obj, Watcher) {
    let (s, mut objects, watcher) = scenario(prefix, &[kind]);
    (s, objects.remove(0), watcher)
}

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_owned()
}

/// An RFC 3339 time (a JSON string) as Unix seconds.
fn seconds(v: &Value) -> f64 {
    unix(&text(v))
}

fn labels_of(series: &[(BTreeMap<String, String>, f64)]) -> BTreeSet<String> {
    series.iter().flat_map(|(l, _)| l.keys().cloned()).collect()
}

fn keys(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// The labels of a `<family>_status_condition` series as Prometheus stores it.
fn condition_labels() -> BTreeSet<String> {
    keys(&[
        "__name__",
        "cluster",
        "instance",
        "job",
        "name",
        "namespace",
        "reason",
        "status",
        "type",
    ])
}

/// The labels of a per-condition series without status and reason
/// (`..._last_transition_timestamp_seconds`, `..._outdated`).
fn per_type_labels() -> BTreeSet<String> {
    keys(&[
        "__name__",
        "cluster",
        "instance",
        "job",
        "name",
        "namespace",
        "type",
    ])
}

// ---------------------------------------------------------------------------------------
// a. every kind, exact names and labels
// ---------------------------------------------------------------------------------------

#[test]
fn every_kind_exports_its_conditions_with_exact_names_and_labels() {
    let (s, objects, mut watcher) = scenario("cond-kinds", &ALL);
    let ns = s.ns();

    // Exactly these families, per kind, and nothing else from these objects: no outdated
    // series (every observedGeneration is current), no seed series (no sidecar TLS).
    let all = s.query(&format!(
        "{{namespace=\"{ns}\",__name__=~\"(seinode|seinetwork|seinodetask|seinodetaskworkflow)_.*\"}}"
    ));
    let names: BTreeSet<String> = all.iter().map(|(l, _)| l["__name__"].clone()).collect();
    let mut want = BTreeSet::new();
    for family in [
        "seinode",
        "seinetwork",
        "seinodetask",
        "seinodetaskworkflow",
    ] {
        want.insert(format!("{family}_status_condition"));
        want.insert(format!(
            "{family}_status_condition_last_transition_timestamp_seconds"
        ));
    }
    assert_eq!(names, want, "metric names in {ns}");

    let condition_labels = condition_labels();
    let time_labels = per_type_labels();
    for (labels, value) in &all {
        assert_eq!(labels["job"], "sei-condition-watcher", "{labels:?}");
        assert_eq!(labels["instance"], watcher.instance, "{labels:?}");
        let got: BTreeSet<String> = labels.keys().cloned().collect();
        if labels["__name__"].ends_with("_status_condition") {
            assert_eq!(got, condition_labels, "{labels:?}");
            assert_eq!(*value, 1.0, "{labels:?}");
            assert!(
                ["True", "False", "Unknown"].contains(&labels["status"].as_str()),
                "{labels:?}"
            );
        } else {
            assert_eq!(got, time_labels, "{labels:?}");
        }
    }
    // One series per (object, condition type) in each family.
    let total: usize = objects.iter().map(|o| o.conditions().len()).sum();
    assert_eq!(all.len(), 2 * total, "{all:?}");

    // Spot checks with literal names, so a wrong family or label name cannot hide behind
    // the generic comparison above.
    for (query, want) in [
        (
            format!("seinode_status_condition{{namespace=\"{ns}\",name=\"validator-0\",type=\"SigningKeyReady\",status=\"True\",reason=\"SigningKeyValidated\"}}"),
            Some(1.0),
        ),
        (
            format!("seinode_status_condition{{namespace=\"{ns}\",name=\"validator-0\",type=\"OperatorKeyringReady\",status=\"True\",reason=\"OperatorKeyringValidated\"}}"),
            Some(1.0),
        ),
        (
            format!("seinode_status_condition_last_transition_timestamp_seconds{{namespace=\"{ns}\",name=\"validator-0\",type=\"NodeKeyReady\"}}"),
            Some(seconds(&json!("2026-08-04T09:10:05Z"))),
        ),
        (
            format!("seinetwork_status_condition{{namespace=\"{ns}\",name=\"arctic-1\",type=\"NodesReady\",status=\"False\",reason=\"NodesInitializing\"}}"),
            Some(1.0),
        ),
        (
            format!("seinodetask_status_condition{{namespace=\"{ns}\",name=\"validator-0-image-v6-4-0\",type=\"Ready\",status=\"True\",reason=\"TaskComplete\"}}"),
            Some(1.0),
        ),
        (
            format!("seinodetaskworkflow_status_condition{{namespace=\"{ns}\",name=\"full-node-0-state-sync\",type=\"Adopted\",status=\"True\",reason=\"Adopted\"}}"),
            Some(1.0),
        ),
        (
            format!("seinodetaskworkflow_status_condition_last_transition_timestamp_seconds{{namespace=\"{ns}\",name=\"full-node-0-state-sync\",type=\"Failed\"}}"),
            Some(seconds(&json!("2026-08-04T10:01:00Z"))),
        ),
    ] {
        assert_eq!(s.query_one(&query), want, "{query}");
    }
    // The SeiNode family holds both SeiNodes, and only them.
    let seinodes: BTreeSet<String> = s
        .query(&format!("seinode_status_condition{{namespace=\"{ns}\"}}"))
        .into_iter()
        .map(|(l, _)| l["name"].clone())
        .collect();
    assert_eq!(seinodes, keys(&["full-node-0", "validator-0"]));

    // The self-metrics count the objects per resource.
    for (resource, count) in [
        ("seinodes.sei.io", 2.0),
        ("seinetworks.sei.io", 1.0),
        ("seinodetasks.sei.io", 1.0),
        ("seinodetaskworkflows.sei.io", 1.0),
    ] {
        eventually(
            VISIBLE_WITHIN,
            &format!("objects{{resource={resource}}}"),
            || {
                (s.query_one(&format!(
                    "sei_condition_watcher_objects{{instance=\"{}\",resource=\"{resource}\"}}",
                    watcher.instance
                )) == Some(count))
                .then_some(())
            },
        );
    }
    assert!(watcher.terminate().success());
}

/// A #258-era SeiNode (spec.sidecar.tls, the project's CRD keeps the field) still gets the
/// seed's metrics, and its SidecarTLSSecretReady is also an ordinary condition series.
#[test]
fn seed_seinode_keeps_its_metrics_and_also_gets_the_generic_series() {
    let s = Scenario::new("cond-seed");
    let ns = s.ns();
    s.seinode_with("tls-0", "False", "TLSSecretNotFound");
    let mut watcher = s.watcher().ready();
    eventually(VISIBLE_WITHIN, "seed series and generic series", || {
        (s.ready("tls-0") == Some(0.0)
            && s.query_one(&format!(
                "seinode_status_condition{{namespace=\"{ns}\",name=\"tls-0\",type=\"SidecarTLSSecretReady\",status=\"False\",reason=\"TLSSecretNotFound\"}}"
            )) == Some(1.0))
        .then_some(())
    });
    assert_eq!(
        s.query_one(&format!(
            "seinode_sidecar_tls_secret_status{{namespace=\"{ns}\",name=\"tls-0\",status=\"False\",reason=\"TLSSecretNotFound\"}}"
        )),
        Some(1.0)
    );
    assert!(watcher.terminate().success());
}

// ---------------------------------------------------------------------------------------
// b. a flip within 2 s
// ---------------------------------------------------------------------------------------

#[test]
fn a_flipped_condition_moves_within_two_seconds() {
    let (s, mut validator, mut watcher) = scenario_of_one("cond-flip", &VALIDATOR);

    let old =
        validator.condition_query("SigningKeyReady", Some("True"), Some("SigningKeyValidated"));
    let new =
        validator.condition_query("SigningKeyReady", Some("False"), Some("SigningKeyInvalid"));
    let any = validator.condition_query("SigningKeyReady", None, None);
    assert_eq!(s.query_one(&old), Some(1.0));

    let flipped_at = now_rfc3339();
    validator.transition(
        &s,
        "SigningKeyReady",
        [
            "False",
            "SigningKeyInvalid",
            "Secret validator-0-priv-validator-key: priv_validator_key.json is not valid JSON",
        ],
        &flipped_at,
    );
    // Measured from the acknowledged write (kubectl returned).
    let written = Instant::now();
    let (mut new_after, mut old_after) = (None, None);
    let mut both_seen = false;
    while written.elapsed() < Duration::from_secs(30) {
        let series = s.query(&any);
        let t = written.elapsed();
        let has = |status: &str, reason: &str| {
            series
                .iter()
                .any(|(l, v)| l["status"] == status && l["reason"] == reason && *v == 1.0)
        };
        if new_after.is_none() && has("False", "SigningKeyInvalid") {
            new_after = Some(t);
        }
        if old_after.is_none() && !has("True", "SigningKeyValidated") {
            old_after = Some(t);
        }
        if new_after.is_some() && old_after.is_some() {
            // At most one (status, reason) per condition once settled.
            both_seen = series.len() == 1;
            if both_seen {
                break;
            }
        }
        std::thread::sleep(POLL);
    }
    let new_after = new_after.expect("the new (False, SigningKeyInvalid) series never arrived");
    let old_after =
        old_after.expect("the old (True, SigningKeyValidated) series never stopped matching");
    s.figure(
        &format!(
            "conditions: SigningKeyReady True/SigningKeyValidated -> False/SigningKeyInvalid: new pair queryable after {:.3}s, old pair gone after {:.3}s (from the acknowledged status write, poll 50 ms)",
            new_after.as_secs_f64(),
            old_after.as_secs_f64()
        ),
    );
    assert!(
        both_seen,
        "one series per condition after the flip: {:?}",
        s.query(&any)
    );
    assert!(
        new_after <= FLIP_BUDGET,
        "new pair after {new_after:?} > {FLIP_BUDGET:?}"
    );
    assert!(
        old_after <= FLIP_BUDGET,
        "old pair gone after {old_after:?} > {FLIP_BUDGET:?}"
    );
    assert_eq!(s.query_one(&new), Some(1.0));
    assert_eq!(s.query_one(&old), None);
    eventually(
        VISIBLE_WITHIN,
        "lastTransitionTime follows the flip",
        || {
            (s.query_one(&format!(
                "{}{{{},type=\"SigningKeyReady\"}}",
                validator.metric("_last_transition_timestamp_seconds"),
                validator.selector()
            )) == Some(seconds(&json!(flipped_at))))
            .then_some(())
        },
    );
    // The other conditions of the object are untouched.
    validator.wait_exported(&s, VISIBLE_WITHIN);
    assert!(watcher.terminate().success());
}

// ---------------------------------------------------------------------------------------
// c. Unknown stays Unknown
// ---------------------------------------------------------------------------------------

#[test]
fn unknown_stays_unknown() {
    let (s, mut node, mut watcher) = scenario_of_one("cond-unknown", &FULL_NODE);

    // The fixture's SidecarReady is Unknown/Unreachable (upstream's probe error).
    assert_eq!(
        s.query_one(&node.condition_query("SidecarReady", Some("Unknown"), Some("Unreachable"))),
        Some(1.0)
    );
    assert!(
        s.query(&node.condition_query("SidecarReady", Some("False"), None))
            .is_empty(),
        "Unknown exported as False"
    );

    // True -> Unknown (StateSyncReady: a syncer source error) never passes through False.
    node.transition(
        &s,
        "StateSyncReady",
        [
            "Unknown",
            "SyncerSourceError",
            "listing state syncers: connection refused",
        ],
        &now_rfc3339(),
    );
    let any = node.condition_query("StateSyncReady", None, None);
    eventually(VISIBLE_WITHIN, "StateSyncReady Unknown", || {
        let series = s.query(&any);
        assert!(
            series.iter().all(|(l, _)| l["status"] != "False"),
            "StateSyncReady exported as False: {series:?}"
        );
        (series.len() == 1
            && series[0].0["status"] == "Unknown"
            && series[0].0["reason"] == "SyncerSourceError")
            .then_some(())
    });
    // Stays so over a few export intervals.
    let until = Instant::now() + EXPORT_INTERVAL * 3;
    while Instant::now() < until {
        let series = s.query(&any);
        assert_eq!(series.len(), 1, "{series:?}");
        assert_eq!(series[0].0["status"], "Unknown", "{series:?}");
        assert!(s
            .query(&node.condition_query("SidecarReady", Some("False"), None))
            .is_empty());
        std::thread::sleep(Duration::from_millis(500));
    }

    // And a real False is False (the query above could match one).
    node.transition(
        &s,
        "SidecarReady",
        [
            "False",
            "NotReady",
            "sidecar returned 503, re-issuing mark-ready",
        ],
        &now_rfc3339(),
    );
    eventually(VISIBLE_WITHIN, "SidecarReady False/NotReady", || {
        let series = s.query(&node.condition_query("SidecarReady", None, None));
        (series.len() == 1
            && series[0].0["status"] == "False"
            && series[0].0["reason"] == "NotReady")
            .then_some(())
    });
    assert!(watcher.terminate().success());
}

// ---------------------------------------------------------------------------------------
// d. outdated: metadata.generation ahead of a condition's observedGeneration
// ---------------------------------------------------------------------------------------

#[test]
fn outdated_while_observed_generation_lags_and_gone_when_current() {
    let (s, mut objects, mut watcher) =
        scenario_with("cond-outdated", &[&VALIDATOR], |s, objects| {
            // One condition without observedGeneration: never outdated.
            objects[0]
                .condition_mut("Paused")
                .as_object_mut()
                .unwrap()
                .remove("observedGeneration");
            objects[0].write_status(s);
        });
    let ns = s.ns();
    let mut validator = objects.remove(0);

    let outdated_all = format!(
        "{}{{{}}}",
        validator.metric("_outdated"),
        validator.selector()
    );
    let (outdated_metric, selector, name) = (
        validator.metric("_outdated"),
        validator.selector(),
        validator.name.clone(),
    );
    let outdated =
        |type_: &str| s.query_one(&format!("{outdated_metric}{{{selector},type=\"{type_}\"}}"));
    let generation = |s: &Scenario| {
        s.stack().get_object(Some(ns), VALIDATOR.resource, &name)["metadata"]["generation"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(generation(&s), 1);
    assert!(
        s.query(&outdated_all).is_empty(),
        "no outdated series while every observedGeneration is current"
    );

    // A spec change (the image) without the controller catching up: generation 2.
    s.stack().patch_merge(
        Some(ns),
        VALIDATOR.resource,
        &validator.name,
        &json!({"spec": {"image": "ghcr.io/sei-protocol/sei:v6.4.0"}}),
    );
    let bumped = Instant::now();
    assert_eq!(generation(&s), 2);
    let lagging: Vec<String> = validator
        .conditions()
        .iter()
        .filter(|c| c.get("observedGeneration").is_some())
        .map(|c| text(&c["type"]))
        .collect();
    assert_eq!(lagging.len(), validator.conditions().len() - 1);
    eventually(
        VISIBLE_WITHIN,
        "outdated = 1 for every condition with observedGeneration",
        || {
            let series = s.query(&outdated_all);
            let got: BTreeMap<String, f64> = series
                .iter()
                .map(|(l, v)| (l["type"].clone(), *v))
                .collect();
            let want: BTreeMap<String, f64> = lagging.iter().map(|t| (t.clone(), 1.0)).collect();
            (series.len() == lagging.len() && got == want).then_some(())
        },
    );
    s.figure(&format!(
        "conditions: spec change -> {}_status_condition_outdated queryable after {:.3}s",
        VALIDATOR.family,
        bumped.elapsed().as_secs_f64()
    ));
    let series = s.query(&outdated_all);
    assert_eq!(labels_of(&series), per_type_labels());
    assert_eq!(
        outdated("Paused"),
        None,
        "no observedGeneration, no outdated series"
    );

    // A second spec change: the difference is 2.
    s.stack().patch_merge(
        Some(ns),
        VALIDATOR.resource,
        &validator.name,
        &json!({"spec": {"overrides": {"config.p2p.max_num_inbound_peers": "60"}}}),
    );
    assert_eq!(generation(&s), 3);
    eventually(VISIBLE_WITHIN, "outdated = 2", || {
        (outdated("SigningKeyReady") == Some(2.0) && outdated("NodeKeyReady") == Some(2.0))
            .then_some(())
    });

    // The controller catches up on one condition: only its series stops matching.
    validator.condition_mut("SigningKeyReady")["observedGeneration"] = json!(3);
    validator.write_status(&s);
    eventually(VISIBLE_WITHIN, "SigningKeyReady current again", || {
        (outdated("SigningKeyReady").is_none()).then_some(())
    });
    assert_eq!(outdated("NodeKeyReady"), Some(2.0));

    // ... then on all: no outdated series left, the conditions themselves unchanged.
    for t in &lagging {
        validator.condition_mut(t)["observedGeneration"] = json!(3);
    }
    validator.write_status(&s);
    let caught_up = Instant::now();
    eventually(VISIBLE_WITHIN, "no outdated series once current", || {
        s.query(&outdated_all).is_empty().then_some(())
    });
    s.figure(&format!(
        "conditions: observedGeneration current -> outdated series gone after {:.3}s",
        caught_up.elapsed().as_secs_f64()
    ));
    validator.wait_exported(&s, VISIBLE_WITHIN);
    assert!(watcher.terminate().success());
}

// ---------------------------------------------------------------------------------------
// e. a deleted object leaves no series
// ---------------------------------------------------------------------------------------

#[test]
fn deleted_objects_leave_no_series() {
    let (s, objects, mut watcher) = scenario("cond-delete", &ALL);
    let ns = s.ns();
    // Give the validator all three families: an outdated series too.
    let validator = &objects[0];
    s.stack().patch_merge(
        Some(ns),
        VALIDATOR.resource,
        &validator.name,
        &json!({"spec": {"image": "ghcr.io/sei-protocol/sei:v6.4.0"}}),
    );
    eventually(VISIBLE_WITHIN, "outdated series of the validator", || {
        (!s.query(&format!(
            "{}{{{}}}",
            validator.metric("_outdated"),
            validator.selector()
        ))
        .is_empty())
        .then_some(())
    });
    let families = s.query(&validator.all_series_query());
    let names: BTreeSet<String> = families
        .iter()
        .map(|(l, _)| l["__name__"].clone())
        .collect();
    assert_eq!(
        names.len(),
        3,
        "three families before the delete: {names:?}"
    );

    // Delete every object but the full node; measure until all their series stop matching.
    let (gone, kept): (Vec<&Obj>, Vec<&Obj>) =
        objects.iter().partition(|o| o.name != "full-node-0");
    for obj in &gone {
        s.stack()
            .delete_object(Some(ns), obj.kind.resource, &obj.name);
    }
    let vanished = measure(Duration::from_secs(60), POLL, || {
        gone.iter()
            .all(|o| s.query(&o.all_series_query()).is_empty())
            .then_some(())
    });
    let after = vanished.map(|(_, t)| t);
    s.figure(
        &format!(
            "conditions: 4 objects (one kind each) deleted -> every series of theirs gone after {} (from the last delete acknowledged, poll 50 ms)",
            after.map_or("never (60 s)".to_owned(), |t| format!("{:.3}s", t.as_secs_f64()))
        ),
    );
    let after = after.expect("deleted objects' series still match after 60 s");
    assert!(
        after <= DELETE_BUDGET,
        "gone after {after:?} > {DELETE_BUDGET:?}"
    );
    // The object left alone keeps its series.
    for obj in kept {
        obj.wait_exported(&s, VISIBLE_WITHIN);
    }
    // Deleted objects stay gone (no re-export of a cached copy).
    std::thread::sleep(EXPORT_INTERVAL * 2);
    for obj in &gone {
        assert!(
            s.query(&obj.all_series_query()).is_empty(),
            "{} came back",
            obj.name
        );
    }
    assert_eq!(
        s.query_one(&format!(
            "sei_condition_watcher_objects{{instance=\"{}\",resource=\"seinetworks.sei.io\"}}",
            watcher.instance
        )),
        Some(0.0)
    );
    assert!(watcher.terminate().success());
}

// ---------------------------------------------------------------------------------------
// f. --resource: a fifth CRD, and one whose CRD is missing at start
// ---------------------------------------------------------------------------------------

const WIDGET_CRD: &str = "tests/fixtures/widget-crd.yaml";
const GADGET_CRD: &str = "tests/fixtures/gadget-crd.yaml";

/// Removes the gadget CRD (cluster-scoped objects included) however the test ends, so the
/// next run starts with it missing again.
struct RemoveGadgetCrd<'a>(&'a Stack);

impl Drop for RemoveGadgetCrd<'_> {
    fn drop(&mut self) {
        let _ = self.0.kubectl(
            &[
                "delete",
                "crd",
                "gadgets.example.test",
                "--ignore-not-found",
                "--wait=true",
            ],
            None,
        );
    }
}

fn missing_crd_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("gadgets.example.test"))
        .filter(|l| {
            let l = l.to_lowercase();
            ["not installed", "missing", "not found", "no such"]
                .iter()
                .any(|w| l.contains(w))
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn resources_given_by_flag_and_a_missing_crd_picked_up_later() {
    let s = Scenario::new("cond-resource");
    let _cleanup = RemoveGadgetCrd(s.stack());
    s.kubectl_ok(&[
        "delete",
        "crd",
        "gadgets.example.test",
        "--ignore-not-found",
        "--wait=true",
    ]);
    s.stack().install_crd_file(WIDGET_CRD);
    let ns = s.ns();
    let widget = json!({
        "apiVersion": "example.test/v1beta1", "kind": "Widget",
        "metadata": {"name": "widget-a"},
        "spec": {"color": "blue", "size": 3},
        "status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "Assembled", "message": "all parts present",
             "lastTransitionTime": "2026-08-04T13:00:00Z", "observedGeneration": 1},
            {"type": "Painted", "status": "False", "reason": "PaintMissing", "message": "no blue in stock",
             "lastTransitionTime": "2026-08-04T13:05:00Z", "observedGeneration": 1},
        ]},
    });
    s.create("widgets.example.test", &widget);
    // Also an object of a default kind: it must NOT be watched (--resource replaces the list).
    Obj::create(&s, ns, &VALIDATOR);

    // No --namespace: gadgets are cluster-scoped. Only this test creates widgets and gadgets.
    let instance = format!("{ns}-watcher");
    let mut watcher = s
        .watcher()
        .instance(&instance)
        .cluster_wide()
        .args([
            "--resource",
            "widgets.example.test",
            "--resource",
            "gadgets.example.test",
        ])
        .start();
    let started = Instant::now();
    let widget_ready = format!(
        "widget_status_condition{{namespace=\"{ns}\",name=\"widget-a\",type=\"Ready\",status=\"True\",reason=\"Assembled\"}}"
    );
    eventually(
        VISIBLE_WITHIN,
        "widget series while the gadget CRD is missing",
        || (s.query_one(&widget_ready) == Some(1.0)).then_some(()),
    );
    s.figure(
        &format!(
            "conditions: --resource widgets.example.test with gadgets.example.test missing: widget series after {:.1?} from start",
            started.elapsed()
        ),
    );
    assert_eq!(
        s.query_one(&format!(
            "widget_status_condition{{namespace=\"{ns}\",name=\"widget-a\",type=\"Painted\",status=\"False\",reason=\"PaintMissing\"}}"
        )),
        Some(1.0)
    );
    assert_eq!(
        s.query_one(&format!(
            "widget_status_condition_last_transition_timestamp_seconds{{namespace=\"{ns}\",name=\"widget-a\",type=\"Painted\"}}"
        )),
        Some(seconds(&json!("2026-08-04T13:05:00Z")))
    );
    let labels = s.query(&format!("widget_status_condition{{namespace=\"{ns}\"}}"));
    assert_eq!(labels_of(&labels), condition_labels());
    // The missing CRD: one clear line (not one per retry), the watcher keeps running, and
    // the error is counted.
    eventually(
        VISIBLE_WITHIN,
        "a log line about the missing gadget CRD",
        || (!missing_crd_lines(&watcher.log_text()).is_empty()).then_some(()),
    );
    std::thread::sleep(Duration::from_secs(5));
    assert!(watcher.is_running(), "still running with one CRD missing");
    let lines = missing_crd_lines(&watcher.log_text());
    assert_eq!(
        lines.len(),
        1,
        "the missing CRD is logged once, not on every retry:\n{}",
        watcher.log_text()
    );
    eventually(
        VISIBLE_WITHIN,
        "watch_errors_total{kind=crd_missing}",
        || {
            let errors = s.query(&format!(
            "sei_condition_watcher_watch_errors_total{{instance=\"{instance}\",resource=\"gadgets.example.test\",kind=\"crd_missing\"}} > 0"
        ));
            (errors.len() == 1).then_some(())
        },
    );
    // The default kinds are not watched.
    assert!(
        s
            .query(&format!(
                "{{instance=\"{instance}\",__name__=~\"(seinode|seinetwork|seinodetask|seinodetaskworkflow)_.*\"}}"
            ))
            .is_empty(),
        "--resource replaces the default list"
    );

    // Install the CRD and an object: picked up without a restart.
    s.stack().install_crd_file(GADGET_CRD);
    let gadget_name = format!("gadget-{ns}");
    let gadget = json!({
        "apiVersion": "example.test/v1", "kind": "Gadget",
        "metadata": {"name": gadget_name},
        "spec": {"model": "g-2000"},
        "status": {"conditions": [
            {"type": "Ready", "status": "Unknown", "reason": "Calibrating", "message": "calibration running",
             "lastTransitionTime": "2026-08-04T14:00:00Z", "observedGeneration": 1},
        ]},
    });
    s.stack()
        .create_with_status(None, "gadgets.example.test", &gadget);
    let installed = Instant::now();
    let gadget_query = format!("gadget_status_condition{{name=\"{gadget_name}\"}}");
    let series = eventually(
        Duration::from_secs(90),
        "gadget series once its CRD exists",
        || {
            let series = s.query(&gadget_query);
            (!series.is_empty()).then_some(series)
        },
    );
    s.figure(&format!(
        "conditions: gadget CRD installed later -> its object's series after {:.1?}",
        installed.elapsed()
    ));
    assert_eq!(series.len(), 1, "{series:?}");
    let (labels, value) = &series[0];
    assert_eq!(*value, 1.0);
    assert_eq!(labels["type"], "Ready");
    assert_eq!(labels["status"], "Unknown");
    assert_eq!(labels["reason"], "Calibrating");
    assert_eq!(labels["instance"], instance);
    assert!(
        !labels.contains_key("namespace"),
        "a cluster-scoped object has no namespace label: {labels:?}"
    );
    // And the widget was not held back meanwhile.
    assert_eq!(s.query_one(&widget_ready), Some(1.0));
    assert!(watcher.is_running());
    assert!(watcher.terminate().success());
}
