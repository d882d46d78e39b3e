//! The `check` command against the real API server: every condition that needs attention
//! across the four sei.io kinds (and the seed's condition) listed as a table, exit 1 when
//! there is any, exit 0 and no rows when there is none. The objects are the fixtures of
//! conditions.rs (tests/fixtures/current/*.yaml), each test in its own namespace.

use std::collections::BTreeSet;

use serde_json::json;

use crate::conditions::{Obj, ALL, TASK, VALIDATOR};
use crate::harness::*;

/// Runs `sei-condition-watcher check -n NS`; returns the exit code, the rows
/// (KIND, NAMESPACE, NAME, TYPE, STATUS, REASON) and the whole stdout.
fn check(s: &Scenario, ns: &str) -> (Option<i32>, BTreeSet<[String; 6]>, String) {
    let out = s.check(ns);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut rows = BTreeSet::new();
    for line in stdout.lines() {
        let cells: Vec<&str> = line.split_whitespace().collect();
        if cells.len() < 2 || cells[1] != ns {
            continue;
        }
        assert_eq!(
            cells.len(),
            7,
            "KIND NAMESPACE NAME TYPE STATUS REASON SINCE: {line:?}\n{stdout}"
        );
        rows.insert(std::array::from_fn(|i| cells[i].to_owned()));
    }
    (out.status.code(), rows, stdout)
}

fn row(kind: &str, ns: &str, name: &str, type_: &str, status: &str, reason: &str) -> [String; 6] {
    [kind, ns, name, type_, status, reason].map(str::to_owned)
}

#[test]
fn check_lists_every_condition_needing_attention_across_kinds() {
    let s = Scenario::new("cond-check");
    let ns = s.ns();
    for k in ALL {
        Obj::create(&s, ns, k);
    }
    // A failed task (Failed latched True, Ready not seeded upstream) ...
    s.create(TASK.resource, &failed_task());
    // ... a validator whose signing key is invalid (a *Ready False) ...
    let mut broken = fixture(VALIDATOR.file);
    broken["metadata"]["name"] = json!("validator-1");
    for (key, secret) in [
        ("signingKey", "validator-1-priv-validator-key"),
        ("nodeKey", "validator-1-node-key"),
    ] {
        broken["spec"]["validator"][key]["secret"]["secretName"] = json!(secret);
    }
    broken["spec"]["validator"]["operatorKeyring"]["secret"]["secretName"] =
        json!("validator-1-operator-keyring");
    broken["spec"]["validator"]["operatorKeyring"]["secret"]["passphraseSecretRef"]["secretName"] =
        json!("validator-1-keyring-passphrase");
    for c in broken["status"]["conditions"].as_array_mut().unwrap() {
        if c["type"] == "SigningKeyReady" {
            c["status"] = json!("False");
            c["reason"] = json!("SigningKeyInvalid");
        }
        if c["type"] == "NodeUpdateInProgress" {
            c["status"] = json!("True");
            c["reason"] = json!("UpdateStarted");
        }
    }
    s.create(VALIDATOR.resource, &broken);
    // ... and a #258-era SeiNode with its TLS Secret missing (the seed's condition).
    s.seinode_with("tls-0", "False", "TLSSecretNotFound");

    let (code, rows, stdout) = check(&s, ns);
    let want: BTreeSet<[String; 6]> = [
        // full-node-0: the sidecar is unreachable (Unknown is not True) and a workflow runs.
        row(
            "SeiNode",
            ns,
            "full-node-0",
            "SidecarReady",
            "Unknown",
            "Unreachable",
        ),
        row(
            "SeiNode",
            ns,
            "full-node-0",
            "WorkflowInProgress",
            "True",
            "WorkflowRunning",
        ),
        // validator-1: signing key invalid, an image update rolling out.
        row(
            "SeiNode",
            ns,
            "validator-1",
            "SigningKeyReady",
            "False",
            "SigningKeyInvalid",
        ),
        row(
            "SeiNode",
            ns,
            "validator-1",
            "NodeUpdateInProgress",
            "True",
            "UpdateStarted",
        ),
        // tls-0: the seed's condition.
        row(
            "SeiNode",
            ns,
            "tls-0",
            "SidecarTLSSecretReady",
            "False",
            "TLSSecretNotFound",
        ),
        // arctic-1: one node initializing.
        row(
            "SeiNetwork",
            ns,
            "arctic-1",
            "NodesReady",
            "False",
            "NodesInitializing",
        ),
        // the failed task.
        row(
            "SeiNodeTask",
            ns,
            "full-node-0-restart",
            "Failed",
            "True",
            "Timeout",
        ),
        // the running workflow: Ready is seeded False until it completes.
        row(
            "SeiNodeTaskWorkflow",
            ns,
            "full-node-0-state-sync",
            "Ready",
            "False",
            "NotComplete",
        ),
    ]
    .into_iter()
    .collect();
    let header = stdout.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        [
            "KIND",
            "NAMESPACE",
            "NAME",
            "TYPE",
            "STATUS",
            "REASON",
            "SINCE"
        ],
        "{stdout}"
    );
    assert_eq!(rows, want, "check rows:\n{stdout}");
    assert_eq!(code, Some(1), "rows that need attention: exit 1\n{stdout}");

    // Nothing that needs attention: exit 0, no rows.
    let healthy = s.namespace("cond-check-ok");
    Obj::create(&s, &healthy, &VALIDATOR);
    Obj::create(&s, &healthy, &TASK);
    let (code, rows, stdout) = check(&s, &healthy);
    assert!(rows.is_empty(), "no rows expected:\n{stdout}");
    assert_eq!(code, Some(0), "nothing needs attention: exit 0\n{stdout}");
}
