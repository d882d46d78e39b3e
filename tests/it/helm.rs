//! The Helm chart (deploy/helm/sei-condition-watcher) with the pinned Helm of the stack
//! (`tests/stack/stack bin helm`): it lints; with default values it renders the same objects
//! as `kubectl kustomize deploy` (parsed and compared object by object, not as text); other
//! values render what they promise; and installed by `helm install` onto the stack's API
//! server (RBAC on), the watcher runs with the arguments, environment and ServiceAccount the
//! installed Deployment names, becomes ready and exports to the stack's Prometheus, once
//! cluster-wide (ClusterRole) and once with a Role in the watched namespace.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::harness::*;

const CHART: &str = "deploy/helm/sei-condition-watcher";

/// The path of a binary of the stack's build (helm, kubectl).
fn stack_bin(name: &str) -> PathBuf {
    let out = Command::new(repo_path("tests/stack/stack"))
        .args(["bin", name])
        .output()
        .expect("tests/stack/stack runs");
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        path.is_file(),
        "{name} is not built ({}): run tests/stack/stack build",
        path.display()
    );
    path
}

/// Runs helm with its state in a temporary directory; (success, stdout, stderr).
fn helm(args: &[&str]) -> (bool, String, String) {
    let home = std::env::temp_dir().join("seinode-helm-home");
    let out = Command::new(stack_bin("helm"))
        .args(args)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .expect("helm runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn docs(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{e}:\n{text}")))
        .filter(|v| !v.is_null())
        .collect()
}

/// `helm template` of the chart with these further arguments (`--set`, `-f`), parsed.
fn render(args: &[&str]) -> Vec<Value> {
    let chart = repo_path(CHART);
    let mut all = vec!["template", "sei-condition-watcher", chart.to_str().unwrap()];
    all.extend_from_slice(args);
    let (ok, out, err) = helm(&all);
    assert!(ok, "helm template {args:?} failed: {err}");
    docs(&out)
}

/// Objects by (kind, namespace, name), each once.
fn by_key(objects: Vec<Value>) -> BTreeMap<(String, String, String), Value> {
    let mut map = BTreeMap::new();
    for o in objects {
        let key = (
            o["kind"].as_str().unwrap_or_default().to_owned(),
            o["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            o["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
        assert!(map.insert(key.clone(), o).is_none(), "{key:?} twice");
    }
    map
}

fn object<'a>(
    objects: &'a BTreeMap<(String, String, String), Value>,
    kind: &str,
    ns: &str,
    name: &str,
) -> &'a Value {
    objects
        .get(&(kind.to_owned(), ns.to_owned(), name.to_owned()))
        .unwrap_or_else(|| {
            panic!(
                "no {kind} {ns}/{name} among {:?}",
                objects.keys().collect::<Vec<_>>()
            )
        })
}

fn watcher_container(deployment: &Value) -> &Value {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "watcher"))
        .expect("a container named watcher")
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn helm_chart_lints() {
    let chart = repo_path(CHART);
    let values = repo_path("tests/fixtures/helm/non-default-values.yaml");
    for extra in [vec![], vec!["-f", values.to_str().unwrap()]] {
        let mut args = vec!["lint", "--strict", chart.to_str().unwrap()];
        args.extend_from_slice(&extra);
        let (ok, out, err) = helm(&args);
        assert!(ok, "helm lint {extra:?}: {out}{err}");
        assert!(out.contains("0 chart(s) failed"), "{out}");
    }
}

#[test]
fn helm_template_with_defaults_is_kubectl_kustomize_deploy() {
    let out = Command::new(stack_bin("kubectl"))
        .args(["kustomize", repo_path("deploy").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kustomize = by_key(docs(&String::from_utf8_lossy(&out.stdout)));
    let chart = by_key(render(&[]));
    assert_eq!(
        chart.keys().collect::<Vec<_>>(),
        kustomize.keys().collect::<Vec<_>>(),
        "the chart's default objects (left) are not kustomize's (right)"
    );
    assert!(kustomize.len() >= 14, "{:?}", kustomize.keys());
    for (key, want) in &kustomize {
        assert_eq!(
            &chart[key], want,
            "{key:?}: the chart's default (left) differs from kubectl kustomize deploy (right)"
        );
    }
}

#[test]
fn helm_template_with_other_values() {
    let values = repo_path("tests/fixtures/helm/non-default-values.yaml");
    let objects = by_key(render(&["-f", values.to_str().unwrap()]));
    let ns = "sei-monitoring";
    let keys: Vec<_> = objects
        .keys()
        .map(|(k, n, m)| format!("{k} {n}/{m}"))
        .collect();

    // Namespaces: a Role and RoleBinding in each watched one, no sei.io ClusterRole; the
    // cluster identity's ClusterRole stays.
    for watched in ["sei", "sei-b"] {
        let role = object(&objects, "Role", watched, "scw");
        assert_eq!(
            strings(&role["rules"][0]["verbs"]),
            ["get", "list", "watch"]
        );
        assert_eq!(role["rules"][0]["apiGroups"], json!(["sei.io"]));
        let binding = object(&objects, "RoleBinding", watched, "scw");
        assert_eq!(binding["roleRef"]["kind"], "Role");
        assert_eq!(
            binding["subjects"],
            json!([{"kind": "ServiceAccount", "name": "scw", "namespace": ns}])
        );
    }
    assert!(!keys.contains(&"ClusterRole /scw".to_owned()), "{keys:?}");
    object(&objects, "ClusterRole", "", "scw-cluster-identity");
    // Its own namespace (existing: not created), the Lease Role naming the Lease.
    assert!(
        !keys.iter().any(|k| k.starts_with("Namespace ")),
        "{keys:?}"
    );
    let lease_role = object(&objects, "Role", ns, "scw-lease");
    assert_eq!(
        lease_role["rules"][0]["resourceNames"],
        json!(["sei-lease"])
    );

    let deployment = object(&objects, "Deployment", ns, "scw");
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["serviceAccountName"],
        "scw"
    );
    let container = watcher_container(deployment);
    assert_eq!(
        container["image"],
        "registry.example/sei-condition-watcher:0.1.1"
    );
    assert_eq!(
        strings(&container["args"]),
        [
            "--admin-addr=0.0.0.0:8080",
            "--log-format=json",
            "--otlp-endpoint=https://otlp.example:4318",
            "--otlp-protocol=http/protobuf",
            "--otlp-compression=zstd",
            "--leader-elect",
            "--leader-election-id=sei-lease",
            "--namespace=sei",
            "--namespace=sei-b",
            "--otlp-ca-file=/etc/sei-condition-watcher/otlp-ca/ca.crt",
            "--otlp-client-cert-file=/etc/sei-condition-watcher/otlp-client/tls.crt",
            "--otlp-client-key-file=/etc/sei-condition-watcher/otlp-client/tls.key",
        ]
    );
    let env = container["env"].as_array().unwrap();
    let var = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no env {name}: {env:?}"))
    };
    assert_eq!(var("K8S_CLUSTER_NAME")["value"], "prod-eu-1");
    // The headers come from the Secret, never as a value in the pod spec.
    assert_eq!(
        var("OTEL_EXPORTER_OTLP_HEADERS")["valueFrom"]["secretKeyRef"],
        json!({"name": "otlp-headers", "key": "headers"})
    );
    assert!(var("OTEL_EXPORTER_OTLP_HEADERS").get("value").is_none());
    assert_eq!(container["resources"]["limits"]["memory"], "512Mi");
    // TLS: the CA key alone, and the client pair, mounted read-only where the flags point.
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"],
        json!([
            {"name": "otlp-ca", "secret": {"secretName": "otel-collector-tls", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"name": "otlp-client", "secret": {"secretName": "scw-otlp-client", "items": [
                {"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}]}},
        ])
    );
    assert_eq!(
        container["volumeMounts"],
        json!([
            {"name": "otlp-ca", "mountPath": "/etc/sei-condition-watcher/otlp-ca", "readOnly": true},
            {"name": "otlp-client", "mountPath": "/etc/sei-condition-watcher/otlp-client", "readOnly": true},
        ])
    );
    // The collector serves OTLP/HTTP (beside gRPC, as deploy/collector) and writes to the
    // Prometheus given.
    let service = object(&objects, "Service", ns, "otel-collector");
    assert_eq!(
        service["spec"]["ports"][1],
        json!({"name": "otlp-http", "port": 4318, "targetPort": "otlp-http"})
    );
    let collector = object(&objects, "Deployment", ns, "otel-collector");
    assert_eq!(
        collector["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"],
        "http://prometheus.monitoring.svc:9090/api/v1/write"
    );
    // NetworkPolicies: the watcher may reach its endpoint's port (any address: the endpoint
    // is not the bundled collector), the collector admits OTLP/HTTP.
    let policy = object(&objects, "NetworkPolicy", ns, "scw");
    assert!(policy["spec"]["egress"][1].get("to").is_none(), "{policy}");
    assert_eq!(
        policy["spec"]["egress"][1]["ports"],
        json!([{"port": 4318, "protocol": "TCP"}])
    );
    let policy = object(&objects, "NetworkPolicy", ns, "otel-collector");
    assert_eq!(
        policy["spec"]["ingress"][0]["ports"],
        json!([{"port": 4317, "protocol": "TCP"}, {"port": 4318, "protocol": "TCP"}])
    );
    // The ServiceMonitor, the PrometheusRules (the same as deploy/prometheus-operator's) and
    // the Alertmanager Secret (the example file).
    let monitor = object(&objects, "ServiceMonitor", ns, "otel-collector");
    assert_eq!(
        monitor["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
    assert_eq!(
        monitor["spec"]["endpoints"],
        json!([{"port": "metrics", "interval": "15s"}])
    );
    for (name, file) in [
        (
            "sei-conditions",
            "deploy/prometheus-operator/sei-conditions.prometheusrule.yaml",
        ),
        (
            "seinode-tls",
            "deploy/prometheus-operator/prometheusrule.yaml",
        ),
    ] {
        let rule = object(&objects, "PrometheusRule", ns, name);
        assert_eq!(rule["spec"], yaml_file(file)["spec"], "{name}");
        assert_eq!(
            rule["metadata"]["labels"]["release"],
            "kube-prometheus-stack"
        );
    }
    let secret = object(&objects, "Secret", ns, "sei-condition-watcher-alertmanager");
    let config: Value =
        serde_yaml_ng::from_str(secret["stringData"]["alertmanager.yaml"].as_str().unwrap())
            .unwrap();
    assert_eq!(
        config,
        yaml_file("deploy/alertmanager/alertmanager-route.yaml")
    );
    assert!(object(&objects, "PodDisruptionBudget", ns, "scw").is_object());

    // Without the collector and the NetworkPolicies: only the watcher's objects, sending to
    // the endpoint given; the default protocol renders no --otlp-protocol.
    let objects = by_key(render(&[
        "--set",
        "collector.enabled=false,otlp.endpoint=https://otlp.example",
    ]));
    let policy = object(
        &objects,
        "NetworkPolicy",
        "sei-condition-watcher",
        "sei-condition-watcher",
    );
    assert_eq!(
        policy["spec"]["egress"][1],
        json!({"ports": [{"port": 443, "protocol": "TCP"}]}),
        "the endpoint's port, from its scheme"
    );
    let objects = by_key(render(&[
        "--set",
        "collector.enabled=false,networkPolicy.enabled=false,podDisruptionBudget.enabled=false",
        "--set",
        "otlp.endpoint=http://collector.observability:4317,leaderElection.enabled=false,replicas=1",
    ]));
    let kinds: Vec<&str> = objects.keys().map(|(k, _, _)| k.as_str()).collect();
    for absent in [
        "NetworkPolicy",
        "ConfigMap",
        "Service",
        "PodDisruptionBudget",
        "Role",
    ] {
        assert!(!kinds.contains(&absent), "{absent} rendered: {kinds:?}");
    }
    let deployment = object(
        &objects,
        "Deployment",
        "sei-condition-watcher",
        "sei-condition-watcher",
    );
    let args = strings(&watcher_container(deployment)["args"]);
    assert!(
        args.contains(&"--otlp-endpoint=http://collector.observability:4317"),
        "{args:?}"
    );
    assert!(
        !args
            .iter()
            .any(|a| a.starts_with("--otlp-protocol") || *a == "--leader-elect"),
        "{args:?}"
    );

    // A bearer token from a Secret: the header refers to it, the token is not in the spec.
    let objects = by_key(render(&[
        "--set",
        "otlp.bearerTokenSecret.name=otel-collector-token",
    ]));
    let deployment = object(
        &objects,
        "Deployment",
        "sei-condition-watcher",
        "sei-condition-watcher",
    );
    let env = &watcher_container(deployment)["env"];
    assert_eq!(
        env[3],
        json!({"name": "OTLP_BEARER_TOKEN", "valueFrom": {"secretKeyRef": {"name": "otel-collector-token", "key": "token"}}})
    );
    assert_eq!(
        env[4],
        json!({"name": "OTEL_EXPORTER_OTLP_HEADERS", "value": "Authorization=Bearer%20$(OTLP_BEARER_TOKEN)"})
    );

    // TLS, mTLS and a token on the bundled collector's receiver (the kustomize components'
    // overlays, mounted the same way), and the watcher sending to it: https://, trusting the
    // collector Secret's ca.crt alone, with its client certificate and the token. The same
    // over OTLP/HTTP: the overlays secure both of the receiver's protocols
    // (tests/it/otlp_http.rs sends over mTLS and with a token to them), so the chart takes
    // them with http/protobuf too (it refused them once).
    let ns = "sei-condition-watcher";
    for (protocol, port) in [("grpc", 4317), ("http/protobuf", 4318)] {
        let values = format!("otlp.tls.clientSecret.name=scw-otlp-client,otlp.protocol={protocol}");
        let objects = by_key(render(&[
            "--set",
            "collector.tls.secretName=otel-collector-tls,collector.tls.requireClientCert=true",
            "--set",
            "collector.tokenSecret=otel-collector-token,otlp.bearerTokenSecret.name=otel-collector-token",
            "--set",
            &values,
        ]));
        for (map, file) in [
            ("otel-collector-tls-overlay", "receiver-tls.overlay.yaml"),
            ("otel-collector-auth-overlay", "receiver-auth.overlay.yaml"),
        ] {
            let overlay = object(&objects, "ConfigMap", ns, map);
            assert_eq!(
                overlay["data"][file],
                read(&format!("otel-config/{file}")).as_str(),
                "{map}"
            );
        }
        let collector =
            &object(&objects, "Deployment", ns, "otel-collector")["spec"]["template"]["spec"];
        assert_eq!(
            strings(&collector["containers"][0]["args"]),
            [
                "--config=/etc/otelcol/collector.yaml",
                "--config=/etc/otelcol-overlays/tls/receiver-tls.overlay.yaml",
                "--config=/etc/otelcol-overlays/auth/receiver-auth.overlay.yaml",
            ]
        );
        assert_eq!(
            json!(collector["containers"][0]["env"].as_array().unwrap()[3..]),
            json!([
                {"name": "COLLECTOR_TLS_CERT_FILE", "value": "/etc/otelcol-tls/tls.crt"},
                {"name": "COLLECTOR_TLS_KEY_FILE", "value": "/etc/otelcol-tls/tls.key"},
                {"name": "COLLECTOR_TLS_CLIENT_CA_FILE", "value": "/etc/otelcol-tls/ca.crt"},
            ])
        );
        let volumes: Vec<&str> = collector["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            volumes,
            ["config", "tls", "tls-overlay", "otlp-token", "auth-overlay"]
        );
        let deployment = object(&objects, "Deployment", ns, "sei-condition-watcher");
        let container = watcher_container(deployment);
        let args = strings(&container["args"]);
        let endpoint = format!("--otlp-endpoint=https://otel-collector:{port}");
        for want in [
            endpoint.as_str(),
            "--otlp-ca-file=/etc/sei-condition-watcher/otlp-ca/ca.crt",
            "--otlp-client-cert-file=/etc/sei-condition-watcher/otlp-client/tls.crt",
        ] {
            assert!(args.contains(&want), "{protocol}: {want} not in {args:?}");
        }
        assert_eq!(
            args.contains(&"--otlp-protocol=http/protobuf"),
            protocol == "http/protobuf",
            "{args:?}"
        );
        assert_eq!(
            deployment["spec"]["template"]["spec"]["volumes"][0]["secret"],
            json!({"secretName": "otel-collector-tls", "items": [{"key": "ca.crt", "path": "ca.crt"}]})
        );
    }

    // Wrong values are refused with one line that says what to set.
    let chart = repo_path(CHART);
    for (set, says) in [
        (
            "otlp.protocol=http/json",
            "otlp.protocol \"http/json\" is not supported",
        ),
        ("collector.enabled=false", "set otlp.endpoint"),
        (
            "otlp.tls.caSecret.name=ca",
            "set collector.tls.secretName too",
        ),
        (
            "otlp.headersSecret.name=h,otlp.bearerTokenSecret.name=t",
            "otlp.headersSecret and otlp.bearerTokenSecret both set",
        ),
    ] {
        let (ok, _, err) = helm(&["template", "x", chart.to_str().unwrap(), "--set", set]);
        assert!(!ok && err.contains(says), "--set {set}: {err}");
    }
}

/// The installed chart's watcher, run as its pod would run: the installed Deployment's
/// args and env (only --admin-addr is replaced by a loopback one, and --otlp-endpoint by the
/// stack's collector; the fieldRefs resolved as the kubelet would), authenticated with a
/// token of the chart's ServiceAccount, so it has exactly the access the chart grants.
#[test]
fn helm_install_runs_the_watcher_with_what_it_renders() {
    let s = Scenario::alone("helm");
    let watched = s.ns().to_owned();
    s.seinode_with("a", "False", "TLSSecretNotFound");
    let chart = repo_path(CHART);
    let kubeconfig = s.stack().kubeconfig();
    for (variant, extra) in [
        ("cluster-wide", String::new()),
        ("role", format!(",watch.namespaces={{{watched}}}")),
    ] {
        // Its own namespace (and object names, for the cluster-scoped ones), so nothing
        // collides with deploy/'s objects that other tests apply.
        let ns = s.namespace("helm-release");
        let cluster = format!("helm-{variant}");
        let (ok, out, err) = helm(&[
            "install",
            "scw",
            chart.to_str().unwrap(),
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "-n",
            &ns,
            "--set",
            &format!(
                "namespace.create=false,namespace.name=,name={ns},clusterName={cluster},leaderElection.leaseName={ns}-lease{extra}"
            ),
        ]);
        assert!(ok, "helm install ({variant}) failed: {err}\n{out}");

        let deployment: Value = serde_json::from_str(&s.kubectl_ok(&[
            "-n",
            &ns,
            "get",
            "deployment",
            &ns,
            "-o",
            "json",
        ]))
        .unwrap();
        let pod = &deployment["spec"]["template"]["spec"];
        let container = watcher_container(&deployment);
        let instance = format!("{ns}-pod");
        let mut args = Vec::new();
        for arg in strings(&container["args"]) {
            if arg.starts_with("--admin-addr=") {
                continue; // the harness gives 127.0.0.1:0
            } else if arg.starts_with("--otlp-endpoint=") {
                args.push(format!("--otlp-endpoint={}", s.stack().otlp_endpoint()));
            } else {
                args.push(arg.to_owned());
            }
        }
        let sa_kubeconfig = s
            .stack()
            .token_kubeconfig(&ns, pod["serviceAccountName"].as_str().unwrap());
        let mut cmd = Watcher::command(&instance)
            .kubeconfig(&sa_kubeconfig)
            .args(&args);
        for var in container["env"].as_array().unwrap() {
            let name = var["name"].as_str().unwrap();
            let value = match var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                Some("metadata.name") => instance.clone(),
                Some("metadata.namespace") => ns.clone(),
                Some(other) => panic!("env {name}: fieldRef {other} is not handled by this test"),
                None => var["value"].as_str().expect("a value").to_owned(),
            };
            cmd = cmd.env(name, &value);
        }
        let mut watcher = cmd.ready();
        eventually(
            Duration::from_secs(60),
            &format!("the SeiNode's series from the chart's watcher ({variant})"),
            || {
                (s.query_one(&format!(
                    "seinode_sidecar_tls_secret_ready{{namespace=\"{watched}\",name=\"a\",cluster=\"{cluster}\"}}"
                )) == Some(0.0))
                .then_some(())
            },
        );
        // It leads on the Lease the chart's Role names, in the release's namespace.
        let holder = s.kubectl_ok(&[
            "-n",
            &ns,
            "get",
            "lease",
            &format!("{ns}-lease"),
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ]);
        assert_eq!(holder, instance, "{variant}");
        let log = watcher.log_text();
        assert!(
            !log.to_lowercase().contains("forbidden"),
            "{variant}: {log}"
        );
        assert!(watcher.terminate().success(), "{variant}");
        let (ok, _, err) = helm(&[
            "uninstall",
            "scw",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "-n",
            &ns,
        ]);
        assert!(ok, "helm uninstall ({variant}): {err}");
    }
}

/// The labels and filters values render flags the watcher accepts as meant (issue 21,
/// items 3 and 4); their defaults render none (helm_template_with_defaults_is_kubectl_kustomize_deploy).
#[test]
fn helm_template_renders_the_label_allowlists_and_filters() {
    let objects = by_key(render(&[
        "--set-json",
        r#"watch.labelsAllowlist={"seinodes.sei.io":["team","sei.io/chain"]}"#,
        "--set-json",
        r#"watch.annotationsAllowlist={"seinodes.sei.io":["owner"]}"#,
        "--set-json",
        r#"watch.conditionTypesDeny={"seinodes.sei.io":["Paused","Adopted"]}"#,
        "--set-json",
        r#"watch.conditionTypesAllow={"seinodetasks.sei.io":["Failed"]}"#,
        "--set-json",
        r#"watch.namespacesDeny=["scratch"]"#,
    ]));
    let deployment = objects
        .iter()
        .filter(|((kind, _, _), _)| kind == "Deployment")
        .map(|(_, d)| d)
        .find(|d| {
            d["spec"]["template"]["spec"]["containers"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["name"] == "watcher"))
        })
        .expect("the watcher Deployment");
    let args: Vec<String> = strings(&watcher_container(deployment)["args"])
        .into_iter()
        .map(str::to_owned)
        .collect();
    for flag in [
        "--metric-labels-allowlist=seinodes.sei.io=[team,sei.io/chain]",
        "--metric-annotations-allowlist=seinodes.sei.io=[owner]",
        "--condition-types-deny=seinodes.sei.io=Paused,Adopted",
        "--condition-types-allow=seinodetasks.sei.io=Failed",
        "--namespace-deny=scratch",
    ] {
        assert!(args.iter().any(|a| a == flag), "{flag} not in {args:?}");
    }
    use clap::Parser;
    let cli = sei_condition_watcher::config::Cli::try_parse_from(
        std::iter::once("sei-condition-watcher".to_owned()).chain(args),
    )
    .expect("the watcher accepts the rendered flags");
    let config = cli.run.watch_config().expect("a valid watch config");
    assert_eq!(config.allowlists[0].labels.len(), 2);
    assert!(!config.filters.types_of(0).keeps("Paused"));
    assert!(!config.filters.types_of(2).keeps("Complete"));
    assert!(!config.filters.keeps_namespace("scratch"));
}
