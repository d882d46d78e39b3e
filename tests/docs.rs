//! The docs and the code agree: every runbook link of the alert rules lands on a heading
//! of docs/runbook.md, every reason the controller can report has its section, and every
//! exported metric is documented in docs/metrics.md, every flag in docs/configuration.md.

use std::collections::BTreeSet;

fn read(rel: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

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

#[test]
fn every_runbook_link_has_a_section() {
    let anchors = runbook_anchors();
    let rules = read("deploy/prometheus/seinode-tls.rules.yaml");
    let mut linked = 0;
    for part in rules.split("runbook.md#").skip(1) {
        let anchor: String = part
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if anchor.is_empty() {
            continue; // the per-reason anchor, checked below
        }
        linked += 1;
        assert!(
            anchors.contains(&anchor),
            "rules link runbook.md#{anchor}, which has no heading"
        );
    }
    assert!(linked >= 7, "every alert links the runbook");
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

#[test]
fn every_metric_is_documented() {
    let metrics = read("docs/metrics.md");
    let names = seinode_tls_watcher::export::names::ALL;
    for name in names {
        assert!(
            metrics.contains(&format!("`{name}`")),
            "docs/metrics.md does not document {name}"
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
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_seinode-tls-watcher"))
            .args(args)
            .output()
            .expect("the watcher binary runs");
        let help = String::from_utf8_lossy(&out.stdout);
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
