//! Two clusters writing to one Prometheus, both watchers as deploy/ ships them
//! (`--leader-elect`, K8S_CLUSTER_NAME empty): the stack's API server and a second one
//! (`tests/stack/stack up --api-only`: its own etcd and API server, same-named objects),
//! whose watcher writes to the stack's collector. Each cluster's series carry its
//! kube-system UID as `cluster`, so a healthy validator in one cluster cannot hide the
//! broken one of the same name in the other: the shipped rule pages once per broken
//! cluster, with that cluster.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::*;
use serde_json::{json, Value};

const PAGE: &str = "SeiNodeSigningKeyNotReady";
/// The shipped rule's `for: 1m` on a terminal reason, plus evaluation (5 s), Alertmanager's
/// group_wait and the exports: trust.rs measured 80-83 s from the break to the receiver.
const PAGE_WITHIN: Duration = Duration::from_secs(150);

/// A second cluster: an etcd and API server of their own, in a fresh stack directory, taken
/// down when dropped.
struct SecondCluster {
    own: OwnStack,
}

impl SecondCluster {
    fn up() -> SecondCluster {
        SecondCluster {
            own: OwnStack::up("seinode-second-cluster", &["up", "--api-only"], &[]),
        }
    }

    fn kubeconfig(&self) -> PathBuf {
        self.own.dir().join("kubeconfig")
    }

    fn kubectl_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        kubectl_ok(&self.kubeconfig(), args, stdin)
    }
}

/// kubectl with `kubeconfig`, which must succeed; its stdout.
pub(crate) fn kubectl_ok(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    let out = child.wait_with_output().expect("kubectl output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kubectl {args:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into()
}

/// The cluster's default identity, as the watcher reads it.
fn kube_system_uid(kubeconfig: &Path) -> String {
    kubectl_ok(
        kubeconfig,
        &[
            "get",
            "namespace",
            "kube-system",
            "-o",
            "jsonpath={.metadata.uid}",
        ],
        None,
    )
}

/// Creates the validator (SigningKeyReady True) in `ns`, then writes its status (any
/// SeiNode with a status will do).
pub(crate) fn create_validator(kubeconfig: &Path, ns: &str, validator: &Value) {
    let mut object = validator.clone();
    let status = object.as_object_mut().unwrap().remove("status").unwrap();
    object["metadata"]["namespace"] = json!(ns);
    kubectl_ok(
        kubeconfig,
        &["-n", ns, "create", "-f", "-"],
        Some(&object.to_string()),
    );
    patch_status(kubeconfig, ns, validator, &status);
}

pub(crate) fn patch_status(kubeconfig: &Path, ns: &str, validator: &Value, status: &Value) {
    let name = validator["metadata"]["name"].as_str().unwrap();
    let patch = json!({ "status": status }).to_string();
    kubectl_ok(
        kubeconfig,
        &[
            "-n",
            ns,
            "patch",
            "seinodes",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch,
        ],
        None,
    );
}

/// Sets the validator's SigningKeyReady to False/SigningKeyInvalid, now.
pub(crate) fn break_signing_key(kubeconfig: &Path, ns: &str, validator: &Value) {
    let mut status = validator["status"].clone();
    for c in status["conditions"].as_array_mut().unwrap() {
        if c["type"] == "SigningKeyReady" {
            c["status"] = json!("False");
            c["reason"] = json!("SigningKeyInvalid");
            c["message"] = json!("priv_validator_key.json is not valid JSON");
            c["lastTransitionTime"] = json!(now_rfc3339());
        }
    }
    patch_status(kubeconfig, ns, validator, &status);
}

/// The `cluster` labels of the firing pages the receiver got about `ns`, sorted.
fn paged_clusters(ns: &str) -> Vec<String> {
    let mut clusters: Vec<String> = seistack::notifications(Some(ns))
        .iter()
        .filter(|a| a["labels"]["alertname"] == PAGE && a["status"] == "firing")
        .map(|a| a["labels"]["cluster"].as_str().unwrap_or("").to_owned())
        .collect();
    clusters.sort();
    clusters.dedup();
    clusters
}

#[test]
fn two_clusters_without_names_page_apart() {
    let s = Scenario::new("two-clusters");
    let second = SecondCluster::up();
    let first_kubeconfig = s.stack().kubeconfig();
    let second_kubeconfig = second.kubeconfig();
    let (uid1, uid2) = (
        kube_system_uid(&first_kubeconfig),
        kube_system_uid(&second_kubeconfig),
    );
    assert!(!uid1.is_empty() && !uid2.is_empty() && uid1 != uid2);

    // Same namespaces and the same validator in both clusters, healthy. In `one`, only the
    // first cluster's breaks; in `both`, both do.
    let one = s.ns().to_owned();
    let both = s.namespace("two-clusters-both");
    let validator = fixture("current/seinode-validator.yaml");
    let name = validator["metadata"]["name"].as_str().unwrap().to_owned();
    for ns in [&one, &both] {
        second.kubectl_ok(&["create", "namespace", ns], None);
        create_validator(&first_kubeconfig, ns, &validator);
        create_validator(&second_kubeconfig, ns, &validator);
    }

    // One watcher per cluster, as deploy/ ships them: leader election on the same Lease
    // name (hence the same `instance` on their object series), no cluster name.
    let start = |kubeconfig: &Path, id: &str| {
        s.watcher()
            .instance(id)
            .kubeconfig(kubeconfig)
            .env("K8S_CLUSTER_NAME", "")
            .args([
                "-n",
                both.as_str(),
                "--leader-elect",
                "--leader-election-namespace",
                one.as_str(),
                "--leader-election-id",
                "sei-condition-watcher",
            ])
            .ready()
    };
    let mut first = start(&first_kubeconfig, &format!("{one}-first"));
    let mut second_watcher = start(&second_kubeconfig, &format!("{one}-second"));
    assert!(
        first.log_text().contains(&uid1) && second_watcher.log_text().contains(&uid2),
        "each watcher names its cluster's identity at start:\n{}\n{}",
        first.log_text(),
        second_watcher.log_text()
    );

    // Two series per namespace, one per cluster, apart only by `cluster`.
    for ns in [&one, &both] {
        let query = format!(
            "seinode_status_condition{{namespace=\"{ns}\",name=\"{name}\",type=\"SigningKeyReady\",status=\"True\"}}"
        );
        let clusters = eventually(
            Duration::from_secs(30),
            "one True series per cluster",
            || {
                let mut clusters: Vec<String> = s
                    .query(&query)
                    .iter()
                    .map(|(labels, _)| labels.get("cluster").cloned().unwrap_or_default())
                    .collect();
                clusters.sort();
                (clusters.len() == 2).then_some(clusters)
            },
        );
        let mut expected = vec![uid1.clone(), uid2.clone()];
        expected.sort();
        assert_eq!(
            clusters, expected,
            "{ns}: the two clusters' series are apart"
        );
    }

    break_signing_key(&first_kubeconfig, &one, &validator);
    break_signing_key(&first_kubeconfig, &both, &validator);
    break_signing_key(&second_kubeconfig, &both, &validator);

    let mut expected = vec![uid1.clone(), uid2.clone()];
    expected.sort();
    eventually(PAGE_WITHIN, "a page per broken cluster", || {
        (paged_clusters(&both) == expected && !paged_clusters(&one).is_empty()).then_some(())
    });
    assert_eq!(
        paged_clusters(&one),
        vec![uid1.clone()],
        "exactly one page where one cluster is broken, with that cluster"
    );
    // Prometheus agrees: one alert in `one` (the first cluster's), two in `both`.
    let alerts = |ns: &str| {
        let mut clusters: Vec<String> = s
            .query(&format!(
                "ALERTS{{alertname=\"{PAGE}\",alertstate=\"firing\",namespace=\"{ns}\"}}"
            ))
            .iter()
            .map(|(labels, _)| labels.get("cluster").cloned().unwrap_or_default())
            .collect();
        clusters.sort();
        clusters
    };
    assert_eq!(alerts(&one), vec![uid1.clone()]);
    assert_eq!(alerts(&both), expected);

    assert!(first.terminate().success());
    assert!(second_watcher.terminate().success());
}
