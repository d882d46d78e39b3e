//! `tests/harness/seistack.py`'s command line: the stack's ports and URLs, free ports,
//! Prometheus and Alertmanager queries and the SeiNode fixture, written once in Python for
//! the scripts and these tests. Each test thread keeps one `seistack.py serve` process and
//! sends it one command per line, so a query in a polling loop costs a request, not a
//! Python start-up; its answers are JSON (or port numbers), a failure panics with what it
//! said.

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

#[cfg(feature = "stack-tests")]
use std::collections::BTreeMap;
#[cfg(feature = "stack-tests")]
use std::sync::OnceLock;

use serde_json::Value;

/// A `seistack.py serve` process; it ends when its stdin closes (the thread's end).
struct Server {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new("python3")
            .arg(super::repo_path("tests/harness/seistack.py"))
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs tests/harness/seistack.py serve");
        Server {
            stdin: child.stdin.take().expect("stdin"),
            stdout: BufReader::new(child.stdout.take().expect("stdout")),
            _child: child,
        }
    }

    fn call(&mut self, args: &[&str]) -> std::io::Result<Value> {
        writeln!(self.stdin, "{}", serde_json::to_string(args).expect("JSON"))?;
        self.stdin.flush()?;
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(serde_json::from_str(&line).expect("seistack.py serve answers JSON"))
    }
}

thread_local! {
    static SERVER: RefCell<Option<Server>> = const { RefCell::new(None) };
}

/// Runs `seistack.py ARGS`; its stdout, or what it said on stderr when it failed.
fn try_run(args: &[&str]) -> Result<String, String> {
    let answer = SERVER.with(|server| {
        let mut server = server.borrow_mut();
        let answer = server.get_or_insert_with(Server::start).call(args);
        if answer.is_err() {
            // It died (it should not): the next call starts another.
            *server = None;
        }
        answer
    });
    let answer = answer.unwrap_or_else(|e| panic!("seistack.py serve {args:?}: {e}"));
    match (&answer["ok"], &answer["err"]) {
        (Value::String(out), _) => Ok(out.clone()),
        (_, Value::String(err)) => Err(err.clone()),
        _ => panic!("seistack.py serve {args:?}: unexpected answer {answer}"),
    }
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
    vector(expr, &json(&["query", expr]))
}

/// The series of an instant query's vector `result` (a Prometheus-compatible API's
/// `data.result`, from any server): (labels, value) per series.
#[cfg(feature = "stack-tests")]
pub fn vector(expr: &str, result: &Value) -> Vec<Sample> {
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

/// `seistack.py api URL PATH`: a GET of any JSON API (an Alertmanager a test started, say).
#[cfg(feature = "stack-tests")]
pub fn get(url: &str, path: &str) -> Result<Value, String> {
    try_json(&["api", url, path])
}

/// `seistack.py post URL PATH JSON`: a POST of `body`; the answer's JSON (null if empty).
#[cfg(feature = "stack-tests")]
pub fn post(url: &str, path: &str, body: &Value) -> Result<Value, String> {
    try_json(&["post", url, path, &body.to_string()])
}

/// `seistack.py condition TYPE STATUS REASON`: the status merge patch a controller writes
/// to set one condition, its lastTransitionTime now (`{"status": {"conditions": [...]}}`).
#[cfg(feature = "stack-tests")]
pub fn condition(type_: &str, status: &str, reason: &str) -> Value {
    let message = format!("set by test: {reason}");
    json(&["condition", type_, status, reason, "--message", &message])
}

/// `seistack.py notifications [--namespace NS]`: the alerts the stack's webhook receiver
/// was notified of (of one namespace), oldest first, one per alert per notification.
#[cfg(feature = "stack-tests")]
pub fn notifications(namespace: Option<&str>) -> Vec<Value> {
    let mut args = vec!["notifications"];
    if let Some(ns) = namespace {
        args.extend(["--namespace", ns]);
    }
    run(&args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}
