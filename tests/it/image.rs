//! The container image, built from `deploy/watcher/Dockerfile` and run as a cluster runs it:
//! podman (no Docker engine here) runs it as the shipped Deployment says (user 65532, a
//! read-only root file system with no tmpfs, no capabilities, no privilege escalation, its
//! memory limit, its args and env), with a ServiceAccount token, CA and namespace mounted at
//! the standard path and `KUBERNETES_SERVICE_HOST`/`_PORT` pointing at the stack's API server,
//! so the watcher takes the in-cluster configuration path (no kubeconfig anywhere in the
//! container). The ServiceAccount and its RBAC are the shipped manifests. The series arrive
//! in the stack's Prometheus, follow a change, and on `podman stop` (SIGTERM) the container
//! exits 0 within the grace period and the series are withdrawn.
//!
//! The image is the Dockerfile's `prebuilt` target on a stand-in for the distroless base,
//! both built by `tests/image/image` (docs/image.md); the binary is the one cargo built for
//! this test run, or `$SEINODE_IMAGE_BINARY` (e.g. a `cargo build --release` binary); or
//! `$SEINODE_IMAGE` names an image built beforehand (`tests/image/image build-full`: the
//! Dockerfile's own build stage), which the test runs as it is.

use std::collections::BTreeMap;
use std::os::unix::fs::{chown, symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::*;
use serde_json::{json, Value};

/// The standard mount point of a Pod's ServiceAccount token, CA and namespace.
const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The user and group the image and the Deployment run as (distroless `nonroot`).
const NONROOT: u32 = 65532;

/// Runs `tests/image/image ARGS`; returns (success, stdout, stderr).
fn image_script(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(repo_path("tests/image/image"))
        .args(args)
        .output()
        .expect("tests/image/image runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// podman with the project's containers.conf and image store; must succeed.
fn podman(args: &[&str]) -> String {
    let mut all = vec!["podman"];
    all.extend_from_slice(args);
    let (ok, out, err) = image_script(&all);
    assert!(ok, "podman {args:?} failed: {err}");
    out
}

/// What is left to remove when the test ends, however it ends.
struct Cleanup {
    stack: &'static Stack,
    container: String,
    tag: String,
    cluster_objects: Vec<(String, String)>,
    dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = image_script(&["podman", "rm", "-f", "-t", "0", &self.container]);
        if !self.tag.is_empty() {
            let _ = image_script(&["podman", "rmi", "-f", &self.tag]);
        }
        for (kind, name) in &self.cluster_objects {
            let _ = self
                .stack
                .kubectl(&["delete", kind, name, "--ignore-not-found"], None);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The shipped ServiceAccount and RBAC (every such object among the resources of
/// deploy/watcher/kustomization.yaml), for a watcher in `ns`: namespaced objects go to `ns`,
/// cluster-scoped ones get `-<ns>` appended to their names (the stack is shared), and
/// bindings follow. Returns the cluster-scoped (kind, name) pairs created.
fn apply_shipped_access(s: &Scenario) -> Vec<(String, String)> {
    let ns = s.ns();
    let kustomization = &yaml_docs("deploy/watcher/kustomization.yaml")[0];
    let mut items: Vec<Value> = kustomization["resources"]
        .as_array()
        .expect("kustomization resources")
        .iter()
        .flat_map(|r| yaml_docs(&format!("deploy/watcher/{}", r.as_str().unwrap())))
        .filter(|d| {
            matches!(
                d["kind"].as_str(),
                Some(
                    "ServiceAccount"
                        | "Role"
                        | "RoleBinding"
                        | "ClusterRole"
                        | "ClusterRoleBinding"
                )
            )
        })
        .collect();
    let mut cluster_objects = Vec::new();
    for item in &mut items {
        let kind = item["kind"].as_str().expect("kind").to_owned();
        let name = item["metadata"]["name"].as_str().expect("name").to_owned();
        if kind.starts_with("Cluster") {
            let renamed = format!("{name}-{ns}");
            item["metadata"]["name"] = json!(renamed);
            cluster_objects.push((kind.to_lowercase(), renamed));
        } else {
            item["metadata"]["namespace"] = json!(ns);
        }
        if item["roleRef"]["kind"] == "ClusterRole" {
            let role = item["roleRef"]["name"].as_str().unwrap().to_owned();
            item["roleRef"]["name"] = json!(format!("{role}-{ns}"));
        }
        for subject in item["subjects"].as_array_mut().into_iter().flatten() {
            if subject["kind"] == "ServiceAccount" {
                subject["namespace"] = json!(ns);
            }
        }
    }
    assert!(
        items.iter().any(|i| i["kind"] == "ServiceAccount"),
        "the kustomization ships a ServiceAccount"
    );
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
    s.apply(&list.to_string());
    cluster_objects
}

/// A projected ServiceAccount volume as the kubelet writes it: the files in a timestamped
/// directory, `..data` pointing at it, and each name a link through `..data`; the token
/// readable by the Pod's user only.
fn write_service_account_volume(dir: &Path, token: &str, ca: &[u8], ns: &str) {
    let data = dir.join("..2026_01_01_00_00_00.000000001");
    std::fs::create_dir_all(&data).unwrap();
    for (name, content, mode) in [
        ("token", token.as_bytes(), 0o600),
        ("ca.crt", ca, 0o644),
        ("namespace", ns.as_bytes(), 0o644),
    ] {
        let path = data.join(name);
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        chown(&path, Some(NONROOT), Some(NONROOT)).expect("chown (podman runs as root here)");
        symlink(format!("..data/{name}"), dir.join(name)).unwrap();
    }
    symlink(data.file_name().unwrap(), dir.join("..data")).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The Deployment's Pod spec and its watcher container.
fn shipped_deployment() -> (Value, Value) {
    let deployment = yaml_docs("deploy/watcher/deployment.yaml")
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("deploy/watcher/deployment.yaml has a Deployment");
    let pod = deployment["spec"]["template"]["spec"].clone();
    let container = pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "watcher")
        .expect("a container named watcher")
        .clone();
    (pod, container)
}

/// A memory quantity (`192Mi`) as podman's flag (`192m`) and in bytes.
fn memory_limit(quantity: &str) -> (String, u64) {
    let (n, unit, shift) = if let Some(n) = quantity.strip_suffix("Mi") {
        (n, "m", 20)
    } else if let Some(n) = quantity.strip_suffix("Gi") {
        (n, "g", 30)
    } else {
        panic!("memory limit {quantity:?}: only Mi and Gi are handled here")
    };
    let n: u64 = n.parse().unwrap();
    (format!("{n}{unit}"), n << shift)
}

/// The memory limit of PID's cgroup, in bytes (cgroup v1 memory controller, else v2).
fn cgroup_memory_limit(pid: &str) -> u64 {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let file = match cgroups.lines().find_map(|l| l.split_once(":memory:")) {
        Some((_, path)) => format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"),
        None => {
            let path = cgroups
                .lines()
                .find_map(|l| l.strip_prefix("0::"))
                .unwrap_or_else(|| panic!("no memory cgroup in {cgroups}"));
            format!("/sys/fs/cgroup{path}/memory.max")
        }
    };
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{file}: {text:?}"))
}

/// The `Name:\tvalue...` fields of /proc/PID/status.
fn proc_status(pid: &str) -> BTreeMap<String, String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| {
            (
                k.to_owned(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect()
}

/// (mount point, options, file system type) of each mount seen by PID.
fn mounts(pid: &str) -> Vec<(String, String, String)> {
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-").unwrap();
            (f[4].to_owned(), f[5].to_owned(), f[sep + 1].to_owned())
        })
        .collect()
}

#[test]
fn image_runs_read_only_as_nonroot_with_the_in_cluster_config() {
    let s = Scenario::new("image");
    let stack = s.stack();
    let ns = s.ns();
    let pod = format!("sei-condition-watcher-{ns}");
    // `$SEINODE_IMAGE`: an image built beforehand (e.g. by `tests/image/image build-full`,
    // the Dockerfile's own build stage), used as it is and kept.
    let given = std::env::var("SEINODE_IMAGE")
        .ok()
        .filter(|t| !t.is_empty());
    let tag = given
        .clone()
        .unwrap_or_else(|| format!("localhost/sei-condition-watcher:{ns}"));
    let dir = stack.dir().join(format!("image-{ns}"));
    let mut cleanup = Cleanup {
        stack,
        container: pod.clone(),
        tag: if given.is_some() {
            String::new()
        } else {
            tag.clone()
        },
        cluster_objects: Vec::new(),
        dir: dir.clone(),
    };

    // The image: stand-in bases (cached after the first build), then the `prebuilt` target.
    if given.is_none() {
        let binary = std::env::var("SEINODE_IMAGE_BINARY")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_sei-condition-watcher").to_owned());
        let started = Instant::now();
        let (ok, out, err) = image_script(&["build", &binary, &tag]);
        assert!(ok, "tests/image/image build failed:\n{err}");
        assert_eq!(out, tag);
        s.figure(&format!(
            "image: built {tag} (bases cached or not) in {:.1?}",
            started.elapsed()
        ));
    }
    let config: Value = serde_json::from_str(&podman(&[
        "image",
        "inspect",
        &tag,
        "--format",
        "{{json .Config}}",
    ]))
    .unwrap();
    assert_eq!(config["User"], "65532:65532", "{config}");
    assert_eq!(
        config["Entrypoint"],
        json!(["/usr/local/bin/sei-condition-watcher"]),
        "the Deployment gives args only: the image's entrypoint must be the watcher"
    );

    // What the Deployment asks of the container runtime, mirrored by the podman flags below.
    let (pod_spec, container) = shipped_deployment();
    let psc = &pod_spec["securityContext"];
    let csc = &container["securityContext"];
    assert_eq!(psc["runAsNonRoot"], true);
    assert_eq!(psc["runAsUser"], NONROOT);
    assert_eq!(psc["runAsGroup"], NONROOT);
    assert_eq!(csc["readOnlyRootFilesystem"], true);
    assert_eq!(csc["allowPrivilegeEscalation"], false);
    assert_eq!(csc["capabilities"]["drop"], json!(["ALL"]));
    let grace = Duration::from_secs(
        pod_spec["terminationGracePeriodSeconds"]
            .as_u64()
            .expect("terminationGracePeriodSeconds"),
    );
    let (memory, memory_bytes) = memory_limit(
        container["resources"]["limits"]["memory"]
            .as_str()
            .expect("a memory limit"),
    );
    assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault");

    // The shipped ServiceAccount and RBAC (Lease access included), a token for it, and the
    // volume the kubelet mounts.
    cleanup.cluster_objects = apply_shipped_access(&s);
    let token = s
        .kubectl_ok(&[
            "-n",
            ns,
            "create",
            "token",
            "sei-condition-watcher",
            "--duration",
            "1h",
        ])
        .trim()
        .to_owned();
    let sa_dir = dir.join("serviceaccount");
    let ca = std::fs::read(stack.dir().join("pki/ca.crt")).unwrap();
    write_service_account_volume(&sa_dir, &token, &ca, ns);

    // A SeiNode whose TLS condition is broken.
    s.seinode_with("img-0", "False", "TLSSecretNotFound");

    // The container's args: the Deployment's, with the collector and admin address of this
    // machine (host network, so loopback only), scoped to the test's namespace.
    let admin = format!("127.0.0.1:{}", free_port());
    let mut args: Vec<String> = Vec::new();
    for arg in container["args"].as_array().into_iter().flatten() {
        let arg = arg.as_str().unwrap();
        if arg.starts_with("--otlp-endpoint=") {
            args.push(format!("--otlp-endpoint={}", stack.otlp_endpoint()));
        } else if arg.starts_with("--admin-addr=") {
            args.push(format!("--admin-addr={admin}"));
        } else {
            args.push(arg.to_owned());
        }
    }
    args.extend([
        format!("--namespace={ns}"),
        format!("--export-interval={}ms", EXPORT_INTERVAL.as_millis()),
        format!("--refresh-interval={}ms", EXPORT_INTERVAL.as_millis()),
    ]);
    let mut env = vec![
        "KUBERNETES_SERVICE_HOST=127.0.0.1".to_owned(),
        format!("KUBERNETES_SERVICE_PORT={}", Stack::env("APISERVER_PORT")),
    ];
    for var in container["env"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().unwrap();
        let value = match var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            None => var["value"].as_str().unwrap_or("").to_owned(),
            Some("metadata.name") => pod.clone(),
            Some("metadata.namespace") => ns.to_owned(),
            Some(other) => panic!("env {name}: fieldRef {other} is not handled by this test"),
        };
        env.push(format!("{name}={value}"));
    }
    let user = format!("{NONROOT}:{NONROOT}");
    let volume = format!("{}:{SA_DIR}:ro", sa_dir.display());
    let mut run: Vec<&str> = vec![
        "run",
        "--detach",
        "--name",
        &pod,
        "--hostname",
        &pod,
        "--network=host",
        "--user",
        &user,
        // readOnlyRootFilesystem, and no tmpfs that podman would add by itself (/tmp,
        // /var/tmp, /run): a cluster gives none either.
        "--read-only",
        "--read-only-tmpfs=false",
        "--cap-drop=ALL",
        "--security-opt",
        "no-new-privileges",
        "--memory",
        &memory,
        "--volume",
        &volume,
        "--pull=never",
    ];
    for e in &env {
        run.extend(["--env", e]);
    }
    run.push(&tag);
    run.extend(args.iter().map(String::as_str));
    let started = Instant::now();
    podman(&run);
    let logs = || {
        let (_, out, err) = image_script(&["podman", "logs", &pod]);
        format!("{out}{err}")
    };

    // The process as the kernel sees it.
    let pid = podman(&["inspect", &pod, "--format", "{{.State.Pid}}"]);
    assert_ne!(pid, "0", "the container is not running; log:\n{}", logs());
    let status = proc_status(&pid);
    assert_eq!(status["Uid"], "65532 65532 65532 65532", "{status:?}");
    assert_eq!(status["Gid"], "65532 65532 65532 65532", "{status:?}");
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(status[cap], "0000000000000000", "{cap}: {status:?}");
    }
    assert_eq!(status["NoNewPrivs"], "1", "{status:?}");
    // seccompProfile RuntimeDefault: podman's default profile, a filter (mode 2).
    assert_eq!(status["Seccomp"], "2", "{status:?}");
    assert_eq!(
        cgroup_memory_limit(&pid),
        memory_bytes,
        "the Deployment's memory limit"
    );
    let mounts = mounts(&pid);
    let root = mounts
        .iter()
        .rev()
        .find(|(point, _, _)| point == "/")
        .unwrap();
    assert!(
        root.1.split(',').any(|o| o == "ro"),
        "root file system not read-only: {root:?}"
    );
    for path in ["/tmp", "/var/tmp", "/run", "/home/nonroot"] {
        assert!(
            !mounts.iter().any(|(point, _, _)| point == path),
            "{path} is mounted: the test must show that the watcher needs no writable path ({mounts:?})"
        );
    }
    let sa_mount = mounts
        .iter()
        .find(|(point, _, _)| point.ends_with("/secrets/kubernetes.io/serviceaccount"))
        .unwrap_or_else(|| panic!("no ServiceAccount mount: {mounts:?}"));
    assert!(sa_mount.1.split(',').any(|o| o == "ro"), "{sa_mount:?}");
    let container_env: Vec<String> = serde_json::from_str(&podman(&[
        "inspect",
        &pod,
        "--format",
        "{{json .Config.Env}}",
    ]))
    .unwrap();
    assert!(
        !container_env.iter().any(|e| e.starts_with("KUBECONFIG=")),
        "no kubeconfig may reach the container: {container_env:?}"
    );

    // The kubelet's probes, then the series, through the in-cluster client only.
    eventually(
        Duration::from_secs(60),
        "/readyz 200 from the container",
        || match ureq::get(format!("http://{admin}/readyz")).call() {
            Ok(r) if r.status() == 200 => Some(()),
            _ => None,
        },
    );
    let condition = |status: &str, reason: &str| {
        format!(
            "seinode_status_condition{{namespace=\"{ns}\",name=\"img-0\",type=\"SidecarTLSSecretReady\",status=\"{status}\",reason=\"{reason}\"}}"
        )
    };
    let broken = condition("False", "TLSSecretNotFound");
    let arrived = measure(Duration::from_secs(90), Duration::from_millis(500), || {
        (s.query_one(&broken) == Some(1.0)).then_some(())
    });
    if arrived.is_none() {
        panic!(
            "{broken} did not arrive in Prometheus within 90 s; container log:\n{}",
            logs()
        )
    }
    s.figure(&format!(
        "image: container started -> its SeiNode series in Prometheus after {:.1?}",
        started.elapsed()
    ));
    let up = format!("sei_condition_watcher_up{{instance=\"{pod}\"}}");
    eventually(
        Duration::from_secs(30),
        "self-metrics from the container",
        || (s.query_one(&up) == Some(1.0)).then_some(()),
    );
    if args.iter().any(|a| a == "--leader-elect") {
        // The Lease in the Pod's namespace, through the shipped Role: this replica leads
        // (its self-metrics are exported on their own schedule, hence the wait).
        let leader = format!("sei_condition_watcher_leader{{instance=\"{pod}\"}}");
        if measure(Duration::from_secs(30), Duration::from_millis(500), || {
            (s.query_one(&leader) == Some(1.0)).then_some(())
        })
        .is_none()
        {
            panic!(
                "{leader} is not 1: the only replica must hold the Lease; log:\n{}",
                logs()
            );
        }
    }
    s.set_condition("img-0", "True", "TLSSecretReady");
    let fixed = condition("True", "TLSSecretReady");
    eventually(Duration::from_secs(60), "the change arrives", || {
        (s.query_one(&fixed) == Some(1.0)).then_some(())
    });
    let text = logs();
    assert!(
        !text.contains("\"level\":\"ERROR\""),
        "errors in the container's log:\n{text}"
    );

    // SIGTERM, as the kubelet sends it, with the Deployment's grace period.
    let stop_at = Instant::now();
    let grace_arg = grace.as_secs().to_string();
    podman(&["stop", "--time", &grace_arg, &pod]);
    let stopped_after = stop_at.elapsed();
    let exit = podman(&["inspect", &pod, "--format", "{{.State.ExitCode}}"]);
    assert_eq!(
        exit,
        "0",
        "exit code after SIGTERM (137 = killed at the end of the grace period); log:\n{}",
        logs()
    );
    assert!(
        stopped_after < grace,
        "stopped after {stopped_after:?}, not within the {grace:?} grace period"
    );
    s.figure(&format!(
        "image: podman stop (SIGTERM) -> exit 0 after {stopped_after:.1?} (grace {grace:?})"
    ));
    eventually(
        Duration::from_secs(30),
        "series withdrawn after the stop",
        || {
            s.query(&format!("seinode_status_condition{{namespace=\"{ns}\"}}"))
                .is_empty()
                .then_some(())
        },
    );
    drop(cleanup);
}
