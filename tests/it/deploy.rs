//! deploy/ against the real API server (RBAC on): the manifests apply server-side, and the
//! watcher runs as the ServiceAccount those manifests define, with exactly the access they
//! grant: it reads SeiNodes and its own Lease; it is refused Secrets, writes, and every other
//! Lease. Without a stack, the shape of the shipped manifests: two replicas with leader
//! election, a PodDisruptionBudget, Lease RBAC in the watcher's namespace only, and a
//! NetworkPolicy that admits no pod.

use std::collections::BTreeSet;
#[cfg(feature = "stack-tests")]
use std::time::Duration;

use crate::harness::*;
use serde_json::{json, Value};

/// The watcher's namespace, which the stack tests share: each has the stack to itself
/// (`Scenario::alone`), as they share its RBAC objects and Lease.
#[cfg(feature = "stack-tests")]
const NAMESPACE: &str = "sei-condition-watcher";

/// `kubectl apply --server-side --dry-run=server -k DIR`; returns what kubectl printed.
#[cfg(feature = "stack-tests")]
fn dry_run_apply(s: &Scenario, dir: &str) -> String {
    let path = repo_path(dir);
    let (ok, out, err) = s.kubectl(&[
        "apply",
        "--server-side",
        "--dry-run=server",
        "-k",
        path.to_str().unwrap(),
    ]);
    assert!(ok, "{dir} does not apply: {err}\n{out}");
    out
}

/// Applies the watcher's ServiceAccount, ClusterRole and Lease Role to NAMESPACE.
#[cfg(feature = "stack-tests")]
fn apply_watcher_identity(s: &Scenario) {
    s.stack().ensure_namespace(NAMESPACE);
    for file in [
        "deploy/watcher/serviceaccount.yaml",
        "deploy/watcher/rbac.yaml",
        "deploy/watcher/lease-rbac.yaml",
    ] {
        s.kubectl_ok(&[
            "-n",
            NAMESPACE,
            "apply",
            "--server-side",
            "-f",
            repo_path(file).to_str().unwrap(),
        ]);
    }
}

/// A kubeconfig that authenticates as a ServiceAccount of NAMESPACE (a TokenRequest token).
#[cfg(feature = "stack-tests")]
fn token_kubeconfig(s: &Scenario, service_account: &str) -> std::path::PathBuf {
    s.stack().token_kubeconfig(NAMESPACE, service_account)
}

#[cfg(feature = "stack-tests")]
#[test]
fn manifests_apply_server_side() {
    let s = Scenario::alone("deploy");
    s.stack().ensure_namespace(NAMESPACE);
    let out = dry_run_apply(&s, "deploy");
    for object in [
        "deployment.apps/sei-condition-watcher",
        "clusterrole.rbac.authorization.k8s.io/sei-condition-watcher",
        "role.rbac.authorization.k8s.io/sei-condition-watcher-lease",
        "rolebinding.rbac.authorization.k8s.io/sei-condition-watcher-lease",
        "poddisruptionbudget.policy/sei-condition-watcher",
        "networkpolicy.networking.k8s.io/sei-condition-watcher",
        "deployment.apps/otel-collector",
        "configmap/otel-collector",
        "service/otel-collector",
    ] {
        assert!(out.contains(object), "{object} not applied: {out}");
    }
    // The namespaced variant needs its target namespace; it keeps the Lease Role (in the
    // watcher's own namespace) and the PodDisruptionBudget.
    s.stack().ensure_namespace("sei");
    let out = dry_run_apply(&s, "deploy/watcher-namespaced");
    for object in [
        "role.rbac.authorization.k8s.io/sei-condition-watcher ",
        "role.rbac.authorization.k8s.io/sei-condition-watcher-lease",
        "rolebinding.rbac.authorization.k8s.io/sei-condition-watcher-lease",
        "poddisruptionbudget.policy/sei-condition-watcher",
    ] {
        assert!(out.contains(object), "{object} not applied: {out}");
    }
    // Its only cluster-wide grant is the cluster identity's (get on namespaces/kube-system).
    let cluster_roles: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("clusterrole.rbac.authorization.k8s.io/"))
        .collect();
    assert_eq!(
        cluster_roles.len(),
        1,
        "the namespaced variant must not apply the sei.io ClusterRole: {out}"
    );
    assert!(
        cluster_roles[0].contains("/sei-condition-watcher-cluster-identity "),
        "{out}"
    );
}

#[cfg(feature = "stack-tests")]
#[test]
fn watcher_runs_with_least_privilege() {
    let s = Scenario::alone("rbac");
    apply_watcher_identity(&s);
    let kubeconfig = token_kubeconfig(&s, "sei-condition-watcher");
    let as_watcher = |args: &[&str]| {
        let mut full = vec!["--kubeconfig", kubeconfig.to_str().unwrap()];
        full.extend_from_slice(args);
        let out = std::process::Command::new("kubectl")
            .args(&full)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };

    // Allowed: reading SeiNodes, and the kube-system Namespace (the cluster's identity).
    let (ok, err) = as_watcher(&["get", "seinodes", "-A"]);
    assert!(ok, "the watcher's identity cannot list SeiNodes: {err}");
    let (ok, err) = as_watcher(&["get", "namespace", "kube-system"]);
    assert!(ok, "the watcher's identity cannot read kube-system: {err}");
    // Refused: Secrets, and any write to SeiNodes.
    let ns = s.ns();
    s.seinode_with("a", "False", "TLSSecretNotFound");
    for (what, args) in [
        ("read Secrets", vec!["-n", ns, "get", "secrets"]),
        ("read Secrets cluster-wide", vec!["get", "secrets", "-A"]),
        ("list Namespaces", vec!["get", "namespaces"]),
        ("read another Namespace", vec!["get", "namespace", ns]),
        (
            "patch SeiNode status",
            vec![
                "-n",
                ns,
                "patch",
                "seinode",
                "a",
                "--subresource=status",
                "--type=merge",
                "-p",
                r#"{"status":{"phase":"x"}}"#,
            ],
        ),
        ("delete SeiNodes", vec!["-n", ns, "delete", "seinode", "a"]),
        (
            "create SeiNodes",
            vec!["-n", ns, "create", "-f", "/dev/null"],
        ),
    ] {
        let (ok, err) = as_watcher(&args);
        assert!(!ok, "the watcher's identity may {what}");
        if what != "create SeiNodes" {
            assert!(
                err.contains("Forbidden") || err.contains("forbidden"),
                "{what}: {err}"
            );
        }
    }

    // And the watcher itself works under that identity, its series labelled with the
    // cluster's identity (no --cluster-name): kube-system's UID.
    let uid = s.kubectl_ok(&[
        "get",
        "namespace",
        "kube-system",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let mut watcher = s
        .watcher()
        .instance(&format!("{ns}-sa-watcher"))
        .cluster_wide()
        .kubeconfig(&kubeconfig)
        .ready();
    eventually(
        Duration::from_secs(30),
        "exported by the least-privileged watcher",
        || {
            (s.query_one(&format!(
                "seinode_sidecar_tls_secret_ready{{namespace=\"{ns}\",name=\"a\",instance=\"{}\",cluster=\"{uid}\"}}",
                watcher.instance
            )) == Some(0.0))
            .then_some(())
        },
    );
    assert!(
        !watcher.log_text().contains("forbidden"),
        "{}",
        watcher.log_text()
    );
    assert!(watcher.terminate().success());
}

#[cfg(feature = "stack-tests")]
#[test]
fn missing_permission_is_one_clear_line() {
    let s = Scenario::alone("unbound");
    s.stack().ensure_namespace(NAMESPACE);
    // A ServiceAccount without the ClusterRoleBinding: the namespaced variant's identity
    // watching cluster-wide by mistake. (It may exist from an earlier run on this stack.)
    let _ = s.kubectl(&[
        "-n",
        NAMESPACE,
        "create",
        "serviceaccount",
        "unbound-watcher",
    ]);
    let path = token_kubeconfig(&s, "unbound-watcher");
    // Without a cluster name, the first refusal is kube-system's (the cluster's identity):
    // said once, retried, nothing exported, not ready.
    let mut watcher = s
        .watcher()
        .instance("unbound-watcher")
        .cluster_wide()
        .kubeconfig(&path)
        .start();
    let line = "grant this identity get on namespaces/kube-system";
    eventually(Duration::from_secs(20), "a cluster identity line", || {
        watcher.log_text().contains(line).then_some(())
    });
    assert_eq!(watcher.admin_status("/readyz"), 503);
    assert!(watcher.is_running(), "no crash on forbidden");
    assert_eq!(watcher.log_text().matches(line).count(), 1, "said once");
    assert!(watcher.terminate().success());
    // With a cluster name, kube-system is not read: the refusal is the SeiNodes'.
    let mut watcher = s
        .watcher()
        .instance("unbound-watcher")
        .cluster_wide()
        .kubeconfig(&path)
        .args(["--cluster-name", "unbound"])
        .start();
    eventually(Duration::from_secs(20), "a forbidden log line", || {
        watcher
            .log_text()
            .contains("grant this identity get, list and watch on seinodes.sei.io")
            .then_some(())
    });
    assert!(
        !watcher.log_text().contains("kube-system"),
        "{}",
        watcher.log_text()
    );
    assert_eq!(watcher.admin_status("/readyz"), 503);
    assert!(watcher.is_running(), "no crash on forbidden");
    assert!(watcher.terminate().success());
}

// ---- Leader election: the Lease RBAC against the real API server ----

/// The watcher's identity (deploy/watcher/serviceaccount.yaml, rbac.yaml, lease-rbac.yaml)
/// can create, get and update its own Lease `sei-condition-watcher` in its own namespace,
/// which is all leader election needs, and nothing else on Leases: no list or watch, no
/// patch or delete, no other Lease name for get or update, no Lease in another namespace
/// (kube-system's included).
#[cfg(feature = "stack-tests")]
#[test]
fn lease_access_is_the_watchers_own_lease_only() {
    let s = Scenario::alone("lease-rbac");
    apply_watcher_identity(&s);
    // Start from no Lease, so that `create` is exercised (an earlier run may have left it).
    let delete_lease = [
        "-n",
        NAMESPACE,
        "delete",
        "lease",
        LEASE,
        "--ignore-not-found",
    ];
    s.kubectl_ok(&delete_lease);
    let kubeconfig = token_kubeconfig(&s, "sei-condition-watcher");
    let as_watcher = |args: &[&str]| {
        let out = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let lease_file = s.stack().dir().join("deploy-test-lease.json");
    let write_lease = |lease: &Value| std::fs::write(&lease_file, lease.to_string()).unwrap();

    // Allowed: create, get, update (a PUT with the resourceVersion read, as an elector does).
    write_lease(&json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": LEASE, "namespace": NAMESPACE},
        "spec": {"holderIdentity": "pod-a", "leaseDurationSeconds": 15},
    }));
    let (ok, _, err) = as_watcher(&["create", "-f", lease_file.to_str().unwrap()]);
    assert!(ok, "the watcher's identity cannot create its Lease: {err}");
    let (ok, out, err) = as_watcher(&["-n", NAMESPACE, "get", "lease", LEASE, "-o", "json"]);
    assert!(ok, "the watcher's identity cannot get its Lease: {err}");
    let mut lease: Value = serde_json::from_str(&out).unwrap();
    lease["spec"]["holderIdentity"] = json!("pod-b");
    write_lease(&lease);
    let (ok, _, err) = as_watcher(&["replace", "-f", lease_file.to_str().unwrap()]);
    assert!(ok, "the watcher's identity cannot update its Lease: {err}");
    let holder = s.kubectl_ok(&[
        "-n",
        NAMESPACE,
        "get",
        "lease",
        LEASE,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    assert_eq!(holder, "pod-b", "the update did not land");

    // Refused, each with a Forbidden from RBAC.
    let other_ns = s.ns();
    write_lease(&json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": LEASE, "namespace": other_ns},
        "spec": {"holderIdentity": "pod-a", "leaseDurationSeconds": 15},
    }));
    let lease_path = lease_file.to_str().unwrap().to_owned();
    for (what, args) in [
        (
            "list Leases in its namespace",
            vec!["-n", NAMESPACE, "get", "leases"],
        ),
        (
            "get another Lease in its namespace",
            vec!["-n", NAMESPACE, "get", "lease", "another-lease"],
        ),
        (
            "patch its Lease",
            vec![
                "-n",
                NAMESPACE,
                "patch",
                "lease",
                LEASE,
                "--type=merge",
                "-p",
                r#"{"spec":{"holderIdentity":"x"}}"#,
            ],
        ),
        (
            "delete its Lease",
            vec!["-n", NAMESPACE, "delete", "lease", LEASE],
        ),
        (
            "create a Lease in another namespace",
            vec!["create", "-f", lease_path.as_str()],
        ),
        (
            "get a Lease in another namespace",
            vec!["-n", other_ns, "get", "lease", LEASE],
        ),
        (
            "list kube-system's Leases",
            vec!["-n", "kube-system", "get", "leases"],
        ),
        ("list Leases cluster-wide", vec!["get", "leases", "-A"]),
    ] {
        let (ok, _, err) = as_watcher(&args);
        assert!(!ok, "the watcher's identity may {what}");
        assert!(
            err.contains("Forbidden") || err.contains("forbidden"),
            "{what}: {err}"
        );
    }
    s.kubectl_ok(&delete_lease);
    let _ = std::fs::remove_file(&lease_file);
}

// ---- The shape of the shipped manifests (no stack needed) ----

/// The Lease name: --leader-election-id's default, named in lease-rbac.yaml's resourceNames.
const LEASE: &str = "sei-condition-watcher";

/// The one document of `kind` in a file.
fn one(rel: &str, kind: &str) -> Value {
    let mut found: Vec<Value> = yaml_docs(rel)
        .into_iter()
        .filter(|d| d["kind"] == kind)
        .collect();
    assert_eq!(found.len(), 1, "{rel}: want exactly one {kind}");
    found.pop().unwrap()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect()
}

/// Two replicas that elect a leader on a Lease in their own namespace, spread over nodes,
/// with a 30 s grace period (the watcher's shutdown is bounded by 15 s + the SDK's).
#[test]
fn deployment_runs_two_replicas_with_leader_election() {
    let deployment = one("deploy/watcher/deployment.yaml", "Deployment");
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 2);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);
    let container = &pod["containers"][0];
    assert_eq!(container["name"], "watcher");
    let args = strings(&container["args"]);
    assert!(args.contains("--leader-elect"), "args: {args:?}");
    assert!(
        !args.iter().any(|a| a.starts_with("--leader-election-id")
            || a.starts_with("--leader-election-namespace")),
        "the Lease's name and namespace are the defaults that lease-rbac.yaml names: {args:?}"
    );
    let env = |name: &str| {
        container["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("env {name} missing"))
            .clone()
    };
    assert_eq!(
        env("POD_NAMESPACE")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert_eq!(
        env("POD_NAME")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    // Prefer different nodes, without refusing to schedule on one node.
    let labels = &spec["template"]["metadata"]["labels"];
    let spread = pod["topologySpreadConstraints"]
        .as_array()
        .expect("topologySpreadConstraints");
    assert!(
        spread
            .iter()
            .any(|c| c["topologyKey"] == "kubernetes.io/hostname"
                && c["whenUnsatisfiable"] == "ScheduleAnyway"
                && c["maxSkew"] == 1
                && c["labelSelector"]["matchLabels"] == *labels),
        "no soft spread over nodes: {spread:?}"
    );
    assert_eq!(spec["selector"]["matchLabels"], *labels);
}

/// The PodDisruptionBudget covers the watcher's pods and lets one go at a time.
#[test]
fn disruption_budget_keeps_one_replica() {
    let deployment = one("deploy/watcher/deployment.yaml", "Deployment");
    let pdb = one("deploy/watcher/pdb.yaml", "PodDisruptionBudget");
    assert_eq!(pdb["apiVersion"], "policy/v1");
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        deployment["spec"]["template"]["metadata"]["labels"]
    );
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert!(pdb["spec"]["minAvailable"].is_null(), "one of the two only");
    assert!(
        deployment["spec"]["replicas"].as_u64().unwrap() >= 2,
        "with fewer than two replicas the budget protects nothing"
    );
    let kustomization = one("deploy/watcher/kustomization.yaml", "Kustomization");
    let resources = strings(&kustomization["resources"]);
    for file in [
        "lease-rbac.yaml",
        "pdb.yaml",
        "deployment.yaml",
        "networkpolicy.yaml",
    ] {
        assert!(
            resources.contains(file),
            "deploy/watcher/kustomization.yaml lacks {file}"
        );
    }
}

/// Lease RBAC: a Role and RoleBinding (namespaced: the kustomization puts them in the
/// watcher's namespace), get/update on the one Lease name, create (which RBAC cannot
/// restrict by name), nothing more; and no Lease access in the ClusterRole.
#[test]
fn lease_rbac_is_the_minimum_in_the_watchers_namespace() {
    let docs = yaml_docs("deploy/watcher/lease-rbac.yaml");
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Role", "RoleBinding"]);
    for doc in &docs {
        assert!(
            doc["metadata"]["namespace"].is_null(),
            "lease-rbac.yaml objects take the kustomization's namespace (the watcher's)"
        );
    }
    let role = &docs[0];
    let mut verbs = BTreeSet::new();
    for rule in role["rules"].as_array().unwrap() {
        assert_eq!(
            strings(&rule["apiGroups"]),
            BTreeSet::from(["coordination.k8s.io".to_owned()])
        );
        assert_eq!(
            strings(&rule["resources"]),
            BTreeSet::from(["leases".to_owned()])
        );
        let rule_verbs = strings(&rule["verbs"]);
        if rule_verbs.contains("create") {
            assert_eq!(rule_verbs.len(), 1, "create has a rule of its own: {rule}");
            assert!(
                rule["resourceNames"].is_null(),
                "a resourceNames rule never matches a create: {rule}"
            );
        } else {
            assert_eq!(
                strings(&rule["resourceNames"]),
                BTreeSet::from([LEASE.to_owned()]),
                "get and update only on the watcher's Lease: {rule}"
            );
        }
        verbs.extend(rule_verbs);
    }
    assert_eq!(
        verbs,
        ["create", "get", "update"]
            .map(str::to_owned)
            .into_iter()
            .collect(),
        "exactly the verbs leader election uses"
    );
    let binding = &docs[1];
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "sei-condition-watcher", "namespace": "sei-condition-watcher"}])
    );
    for doc in yaml_docs("deploy/watcher/rbac.yaml") {
        for rule in doc["rules"].as_array().into_iter().flatten() {
            assert!(
                !strings(&rule["resources"]).contains("leases"),
                "no Lease access cluster-wide: {rule}"
            );
        }
    }
}

/// The cluster identity's ClusterRole (rbac.yaml) is `get` on the kube-system Namespace and
/// nothing else, bound to the watcher's ServiceAccount; the namespaced variant keeps it (it
/// deletes the sei.io ClusterRole by name only).
#[test]
fn cluster_identity_rbac_is_get_on_kube_system_only() {
    let docs = yaml_docs("deploy/watcher/rbac.yaml");
    let named = |kind: &str| {
        docs.iter()
            .find(|d| {
                d["kind"] == kind
                    && d["metadata"]["name"] == "sei-condition-watcher-cluster-identity"
            })
            .unwrap_or_else(|| {
                panic!("rbac.yaml has no {kind} sei-condition-watcher-cluster-identity")
            })
    };
    assert_eq!(
        named("ClusterRole")["rules"],
        json!([{"apiGroups": [""], "resources": ["namespaces"], "resourceNames": ["kube-system"], "verbs": ["get"]}])
    );
    let binding = named("ClusterRoleBinding");
    assert_eq!(
        binding["roleRef"]["name"],
        "sei-condition-watcher-cluster-identity"
    );
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "sei-condition-watcher", "namespace": "sei-condition-watcher"}])
    );
    let namespaced = read("deploy/watcher-namespaced/kustomization.yaml");
    assert!(
        !namespaced.contains("name: sei-condition-watcher-cluster-identity"),
        "the namespaced variant keeps the cluster identity's grant"
    );
}

/// The NetworkPolicy admits no pod at all (only the node's own traffic, the kubelet's
/// probes, which no policy can block), and lets the watcher reach the API server, DNS and
/// the collector's OTLP gRPC port.
#[test]
fn network_policy_admits_no_pod_and_allows_what_the_watcher_needs() {
    let policy = one("deploy/watcher/networkpolicy.yaml", "NetworkPolicy");
    let deployment = one("deploy/watcher/deployment.yaml", "Deployment");
    let spec = &policy["spec"];
    assert_eq!(
        spec["podSelector"]["matchLabels"],
        deployment["spec"]["template"]["metadata"]["labels"]
    );
    assert_eq!(
        strings(&spec["policyTypes"]),
        ["Egress", "Ingress"]
            .map(str::to_owned)
            .into_iter()
            .collect()
    );
    assert!(
        spec["ingress"]
            .as_array()
            .is_none_or(|rules| rules.is_empty()),
        "ingress must admit nothing: {}",
        spec["ingress"]
    );
    let egress = spec["egress"].as_array().expect("egress rules");
    let allows = |port: u64, protocol: &str, to_collector: bool| {
        egress.iter().any(|rule| {
            let to_ok = if to_collector {
                rule["to"].as_array().is_some_and(|to| {
                    to.iter().any(|peer| {
                        peer["podSelector"]["matchLabels"]
                            == json!({"app.kubernetes.io/name": "otel-collector"})
                    })
                })
            } else {
                rule["to"].is_null()
            };
            to_ok
                && rule["ports"].as_array().is_some_and(|ports| {
                    ports
                        .iter()
                        .any(|p| p["port"] == port && p["protocol"] == protocol)
                })
        })
    };
    assert!(allows(443, "TCP", false), "API server on 443");
    assert!(allows(6443, "TCP", false), "API server on 6443");
    assert!(allows(53, "UDP", false) && allows(53, "TCP", false), "DNS");
    assert!(allows(4317, "TCP", true), "the collector's OTLP gRPC");
    assert!(allows(4318, "TCP", true), "the collector's OTLP HTTP");
    // The probes use the admin port the container listens on.
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["ports"][0]["name"], "admin");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "admin");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "admin");
}
