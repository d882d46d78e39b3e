//! `tests/harness/seistack.py`'s command line: the stack's ports and URLs, free ports,
//! Prometheus and Alertmanager queries and the SeiNode fixture, written once in Python for
//! the scripts and these tests. Every call is one `python3` process; its stdout is JSON
//! (or port numbers), a failure panics with its stderr.

use std::process::Command;

#[cfg(feature = "stack-tests")]
use std::collections::BTreeMap;
#[cfg(feature = "stack-tests")]
use std::sync::OnceLock;

#[cfg(feature = "stack-tests")]
use serde_json::Value;

/// Runs `seistack.py ARGS`; its stdout, or what it said on stderr when it failed.
fn try_run(args: &[&str]) -> Result<String, String> {
    let out = Command::new("python3")
        .arg(super::repo_path("tests/harness/seistack.py"))
        .args(args)
        .output()
        .expect("python3 runs tests/harness/seistack.py");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8(out.stdout).expect("seistack.py prints UTF-8"))
}

/// Runs `seistack.py ARGS`, which must succeed; its stdout.
fn run(args: &[&str]) -> String {
    try_run(args).unwrap_or_else(|e| panic!("seistack.py {args:?}: {e}"))
}

#[cfg(feature = "stack-tests")]
fn try_json(args: &[&str]) -> Result<Value, String> {
    let out = try_run(args)?;
    Ok(serde_json::from_str(&out).unwrap_or_else(|e| panic!("seistack.py {args:?}: {e}: {out}")))
}

#[cfg(feature = "stack-tests")]
fn json(args: &[&str]) -> Value {
    try_json(args).unwrap_or_else(|e| panic!("seistack.py {args:?}: {e}"))
}

/// `seistack.py free-port N`: N loopback ports, different from each other, free a moment ago.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let out = run(&["free-port", &N.to_string()]);
    let ports: Vec<u16> = out
        .lines()
        .map(|l| l.trim().parse().expect("a port number"))
        .collect();
    ports.try_into().expect("N ports")
}

/// One free loopback port.
pub fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// `seistack.py env`: the running stack's ports, URLs and paths (STACK_DIR, KUBECONFIG,
/// PROMETHEUS_URL, ALERTMANAGER_URL, OTLP_ENDPOINT, `*_PORT`, ...), read once.
#[cfg(feature = "stack-tests")]
pub fn env() -> &'static BTreeMap<String, String> {
    static ENV: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let Value::Object(map) = json(&["env"]) else {
            panic!("seistack.py env: not an object");
        };
        map.into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect()
    })
}

/// `seistack.py api prometheus PATH key=value...`: a GET of the Prometheus HTTP API; the
/// `data` of its answer, or Err with what seistack.py said when Prometheus refused it.
/// (Nothing here asks the stack's Alertmanager: the tests read what it sent, at the webhook
/// receiver.)
#[cfg(feature = "stack-tests")]
pub fn try_prometheus(path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
    let params: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut args = vec!["api", "prometheus", path];
    args.extend(params.iter().map(String::as_str));
    try_json(&args)
}

/// A series of an instant query: its labels and value.
#[cfg(feature = "stack-tests")]
pub type Sample = (BTreeMap<String, String>, f64);

/// `seistack.py query EXPR`: a Prometheus instant query, as (labels, value) per series.
#[cfg(feature = "stack-tests")]
pub fn query(expr: &str) -> Vec<Sample> {
    let result = json(&["query", expr]);
    result
        .as_array()
        .unwrap_or_else(|| panic!("{expr}: not a vector result: {result}"))
        .iter()
        .map(|r| {
            let labels = r["metric"]
                .as_object()
                .expect("metric labels")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                .collect();
            let value = r["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN);
            (labels, value)
        })
        .collect()
}

/// `seistack.py seinode NS NAME [--tls] [--status STATUS:REASON]`: a full-node SeiNode
/// manifest (with `--status`, a SidecarTLSSecretReady condition in `status`).
#[cfg(feature = "stack-tests")]
pub fn seinode(ns: &str, name: &str, tls: bool, status: Option<(&str, &str)>) -> Value {
    let status = status.map(|(s, r)| format!("{s}:{r}"));
    let mut args = vec!["seinode", ns, name];
    if tls {
        args.push("--tls");
    }
    if let Some(status) = &status {
        args.extend(["--status", status]);
    }
    json(&args)
}
