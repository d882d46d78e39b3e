//! A stack of a test's own: `tests/stack/stack up` (or `up --api-only`, or `fleet up`) in a
//! fresh directory. It shares nothing with the stack the other tests use but the binaries,
//! so a test on it neither waits for nor holds up the tests that take that stack alone
//! ([`super::Scenario::alone`]): the 8-minute outage runs beside all of them. Taken down
//! when dropped; on a failure its logs and notifications are kept in the temp directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::repo_path;
use super::stack::{fresh_stack_dir, stack_in};

pub struct OwnStack {
    dir: PathBuf,
    env: BTreeMap<String, String>,
}

impl OwnStack {
    /// `tests/stack/stack UP...` in a fresh directory named after `prefix`; then the
    /// variables `tests/stack/stack ENV...` prints (`env`, `fleet env`; none when empty).
    pub fn up(prefix: &str, up: &[&str], env: &[&str]) -> OwnStack {
        let mut own = OwnStack {
            dir: fresh_stack_dir(prefix),
            env: BTreeMap::new(),
        };
        own.stack(up);
        if !env.is_empty() {
            let out = Command::new(repo_path("tests/stack/stack"))
                .args(env)
                .env("SEINODE_STACK_DIR", &own.dir)
                .output()
                .expect("tests/stack/stack runs");
            assert!(out.status.success(), "tests/stack/stack {env:?}");
            own.env = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.strip_prefix("export ").unwrap_or(l))
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        }
        own
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// tests/stack/stack ARGS on this stack (`stop otelcol`, `kill receive-2`, ...).
    pub fn stack(&self, args: &[&str]) {
        stack_in(&self.dir, args);
    }

    /// A variable its `env` command printed (`PROMETHEUS_URL`, `WEBHOOK_LOG`, ...).
    pub fn env(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from the own stack's env"))
    }

    /// A GET of a Prometheus-style HTTP API at the URL in variable `base` (`PROMETHEUS_URL`,
    /// `THANOS_QUERY_URL`, ...): its `data`, or what went wrong.
    pub fn api(&self, base: &str, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        let mut request = ureq::get(format!("{}{path}", self.env(base)));
        for (k, v) in params {
            request = request.query(*k, *v);
        }
        let mut response = request
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .map_err(|e| e.to_string())?;
        let body: Value = response.body_mut().read_json().map_err(|e| e.to_string())?;
        if body["status"] != "success" {
            return Err(body.to_string());
        }
        Ok(body["data"].clone())
    }

    /// An instant query (`params`: the `query` and any other, e.g. Thanos' `dedup`) of the
    /// Prometheus-style API at `base`: the labels and value of each series; panics naming
    /// the query if it fails.
    pub fn query(&self, base: &str, params: &[(&str, &str)]) -> Vec<super::seistack::Sample> {
        let expr = params
            .iter()
            .find(|(k, _)| *k == "query")
            .map_or("", |(_, v)| *v);
        let data = self
            .api(base, "/api/v1/query", params)
            .unwrap_or_else(|e| panic!("{base} {expr}: {e}"));
        super::seistack::vector(expr, &data["result"])
    }

    /// The alerts its webhook receiver was notified of (`WEBHOOK_LOG`), oldest first, one
    /// per alert per notification.
    pub fn notifications(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.env("WEBHOOK_LOG")).unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .flat_map(|l| {
                let n: Value = serde_json::from_str(l).expect("a JSON notification");
                n["alerts"].as_array().cloned().unwrap_or_default()
            })
            .collect()
    }
}

impl Drop for OwnStack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The logs are in the stack's directory, which `down` removes: keep a copy.
            let name = self.dir.file_name().unwrap_or_default().to_string_lossy();
            let keep = std::env::temp_dir().join(format!("{name}-logs"));
            let _ = Command::new("cp")
                .arg("-a")
                .arg(self.dir.join("logs"))
                .arg(&keep)
                .status();
            if let Some(log) = self.env.get("WEBHOOK_LOG") {
                let _ = std::fs::copy(log, keep.join("notifications.jsonl"));
            }
            eprintln!("logs of the own stack kept in {}", keep.display());
        }
        let _ = Command::new(repo_path("tests/stack/stack"))
            .arg("down")
            .env("SEINODE_STACK_DIR", &self.dir)
            .status();
    }
}
