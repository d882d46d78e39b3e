//! The docs and the code agree: every runbook link of the alert rules lands on a heading
//! of docs/runbook.md, every condition type and reason the controller can report has its
//! section, and every exported metric is documented in docs/metrics.md, every flag in
//! docs/configuration.md.

use std::collections::BTreeSet;

use crate::harness::read;

/// GitHub's anchors of the runbook's headings (lower case, spaces to dashes).
fn runbook_anchors() -> BTreeSet<String> {
    read("docs/runbook.md")
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            l.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .replace(' ', "-")
                .replace(|c: char| !c.is_alphanumeric() && c != '-', "")
        })
        .collect()
}

/// The rule files whose alerts link the runbook.
const RULE_FILES: &[&str] = &[
    "deploy/prometheus/seinode-tls.rules.yaml",
    "deploy/prometheus/sei-conditions.rules.yaml",
];

#[test]
fn every_runbook_link_has_a_section() {
    let anchors = runbook_anchors();
    for file in RULE_FILES {
        let rules = read(file);
        let mut linked = 0;
        for part in rules.split("runbook.md#").skip(1) {
            let anchor: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if anchor.is_empty() {
                continue; // the seed's per-reason anchor, checked below
            }
            linked += 1;
            assert!(
                anchors.contains(&anchor),
                "{file} links runbook.md#{anchor}, which has no heading"
            );
        }
        assert!(linked >= 7, "every alert of {file} links the runbook");
    }
    for reason in [
        "TLSSecretNotFound",
        "TLSSecretUnavailable",
        "TLSSecretMalformed",
        "TLSSecretSANsMismatch",
    ] {
        assert!(
            anchors.contains(&reason.to_lowercase()),
            "no runbook section for {reason}"
        );
    }
}

/// Every alert of the condition rules links the runbook section named after itself, so
/// an alert cannot ship without its section (or point at another alert's).
#[test]
fn every_condition_alert_links_its_own_section() {
    let anchors = runbook_anchors();
    let rules: serde_json::Value =
        serde_yaml_ng::from_str(&read("deploy/prometheus/sei-conditions.rules.yaml")).unwrap();
    let mut alerts = 0;
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let Some(alert) = rule["alert"].as_str() else {
                continue;
            };
            alerts += 1;
            let anchor = alert.to_lowercase();
            assert_eq!(
                rule["annotations"]["runbook_url"].as_str(),
                Some(
                    format!(
                        "https://github.com/sei-protocol/sei-condition-watcher/blob/main/docs/runbook.md#{anchor}"
                    )
                    .as_str()
                ),
                "{alert} must link its own runbook section"
            );
            assert!(anchors.contains(&anchor), "no runbook section for {alert}");
        }
    }
    assert!(alerts >= 22, "the condition rules define every alert");
}

/// Every condition type and reason sei-k8s-controller sets at commit 2d670ad, per kind.
/// docs/runbook.md has a section `### <Kind> <Type>` per type and `#### <Kind> <Type>
/// <Reason>` per reason (what it means, where upstream sets it, what to do).
const CONDITIONS: &[(&str, &str, &[&str])] = &[
    (
        "SeiNode",
        "SigningKeyReady",
        &[
            "SigningKeyValidated",
            "SigningKeyNotReady",
            "SigningKeyInvalid",
        ],
    ),
    (
        "SeiNode",
        "NodeKeyReady",
        &["NodeKeyValidated", "NodeKeyNotReady", "NodeKeyInvalid"],
    ),
    (
        "SeiNode",
        "OperatorKeyringReady",
        &[
            "OperatorKeyringValidated",
            "OperatorKeyringNotReady",
            "OperatorKeyringInvalid",
        ],
    ),
    (
        "SeiNode",
        "ImportPVCReady",
        &["PVCValidated", "PVCNotReady", "PVCInvalid"],
    ),
    (
        "SeiNode",
        "SidecarReady",
        &["Ready", "NotReady", "Unreachable"],
    ),
    (
        "SeiNode",
        "StateSyncReady",
        &[
            "Ready",
            "NotApplicable",
            "NoSyncersConfigured",
            "SyncerSourceError",
        ],
    ),
    (
        "SeiNode",
        "NodeUpdateInProgress",
        &["UpdateStarted", "UpdateComplete", "UpdateFailed"],
    ),
    ("SeiNode", "Paused", &["Paused", "NotPaused"]),
    (
        "SeiNode",
        "WorkflowInProgress",
        &["NoWorkflow", "WorkflowRunning", "WorkflowFailedHeld"],
    ),
    (
        "SeiNetwork",
        "NodesReady",
        &[
            "AllNodesReady",
            "Pending",
            "NodesInitializing",
            "NodesFailed",
        ],
    ),
    (
        "SeiNetwork",
        "GenesisCeremonyComplete",
        &["Complete", "NotStarted", "InProgress", "CeremonyFailed"],
    ),
    (
        "SeiNetwork",
        "PlanInProgress",
        &["PlanStarted", "NotStarted", "PlanComplete", "PlanFailed"],
    ),
    (
        "SeiNetwork",
        "RolloutInProgress",
        &["ImageRolling", "AllUpToDate"],
    ),
    ("SeiNetwork", "Paused", &["Paused", "NotPaused"]),
    ("SeiNodeTask", "Ready", &["TaskComplete", "Confirmed"]),
    ("SeiNodeTask", "TargetReady", &["PhaseMet", "PhaseNotMet"]),
    (
        "SeiNodeTask",
        "Failed",
        &[
            "TargetResolveFailed",
            "UnsupportedKind",
            "ParamsBuildFailed",
            "DeserializeFailed",
            "TaskTerminalError",
            "TaskFailed",
            "TxFailed",
            "InclusionUndetermined",
            "Timeout",
        ],
    ),
    (
        "SeiNodeTaskWorkflow",
        "Ready",
        &["NotComplete", "WorkflowComplete"],
    ),
    (
        "SeiNodeTaskWorkflow",
        "Failed",
        &[
            "NotFailed",
            "WorkflowFailed",
            "TargetRejected",
            "TargetPhaseTimeout",
            "PlanBuildFailed",
        ],
    ),
    (
        "SeiNodeTaskWorkflow",
        "Adopted",
        &["Adopted", "QueuedBehindActive", "TargetNotReady"],
    ),
];

#[test]
fn every_condition_type_and_reason_has_a_section() {
    let anchors = runbook_anchors();
    let mut missing = Vec::new();
    for (kind, ty, reasons) in CONDITIONS {
        let section = format!("{kind}-{ty}").to_lowercase();
        if !anchors.contains(&section) {
            missing.push(format!("### {kind} {ty}"));
        }
        for reason in *reasons {
            if !anchors.contains(&format!("{section}-{}", reason.to_lowercase())) {
                missing.push(format!("#### {kind} {ty} {reason}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/runbook.md lacks these sections: {missing:#?}"
    );
}

#[test]
fn every_metric_is_documented() {
    let metrics = read("docs/metrics.md");
    let names = sei_condition_watcher::export::names::ALL;
    for name in names {
        assert!(
            metrics.contains(&format!("`{name}`")),
            "docs/metrics.md does not document {name}"
        );
    }
    // The condition families of the default resources, by their own names.
    for name in sei_condition_watcher::export::names::SEI_FAMILIES {
        assert!(
            metrics.contains(&format!("`{name}`")) || metrics.contains(&format!("`{name}_")),
            "docs/metrics.md does not name {name}"
        );
    }
}

/// Every flag the watcher accepts is in docs/configuration.md, so a new flag cannot ship
/// undocumented.
#[test]
fn every_flag_is_documented() {
    let doc = read("docs/configuration.md");
    let mut missing = Vec::new();
    for args in [&["--help"][..], &["check", "--help"][..]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sei-condition-watcher"))
            .args(args)
            .output()
            .expect("the watcher binary runs");
        assert!(out.status.success(), "{args:?} failed: {out:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        let flags = help
            .split_whitespace()
            .filter(|w| w.starts_with("--"))
            .count();
        assert!(flags >= 4, "{args:?} printed only {flags} flags:\n{help}");
        for word in help.split_whitespace() {
            let flag = word.trim_end_matches([',', '=']);
            let flag = flag.split('=').next().unwrap_or(flag);
            if flag.starts_with("--")
                && flag.len() > 2
                && !["--help", "--version"].contains(&flag)
                && !doc.contains(&format!("{flag} "))
                && !doc.contains(&format!("{flag}`"))
            {
                missing.push(flag.to_owned());
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "flags missing from docs/configuration.md: {missing:?}"
    );
}
