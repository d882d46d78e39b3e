//! The watcher binary as a real process: started from a builder, its log in a file, its
//! admin address as it logs it (`--admin-addr 127.0.0.1:0`: the kernel picks the port),
//! stopped with SIGTERM or killed when dropped.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::eventually;

/// The binary cargo built for this test run.
pub const BIN: &str = env!("CARGO_BIN_EXE_sei-condition-watcher");

/// The line the admin server logs once it listens, with `addr=IP:PORT`.
const ADMIN_LINE: &str = "admin server listening";

/// The watcher as a one-shot command (`check`, or a start that must fail): `args` after
/// an admin address of the kernel's choice; returns what it printed and its exit status.
pub fn run_watcher(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(["--admin-addr", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .output()
        .expect("the watcher runs")
}

/// The resident set of a process, in KiB (0 once it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// How to start a watcher: its instance id, flags and environment. A [`Scenario`]'s
/// builder starts from the stack's kubeconfig and collector, the test's namespace and a
/// short export interval; see `Scenario::watcher`.
///
/// [`Scenario`]: super::Scenario
pub struct WatcherCmd {
    pub(super) instance: String,
    pub(super) namespace: Option<String>,
    pub(super) kubeconfig: Option<OsString>,
    pub(super) otlp_endpoint: Option<String>,
    pub(super) export_interval: Option<String>,
    pub(super) args: Vec<OsString>,
    pub(super) env: Vec<(String, String)>,
}

impl WatcherCmd {
    /// Extra flags, after the builder's own.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Starts the process, its stdout and stderr to its log file.
    pub fn start(self) -> Watcher {
        // A number per watcher: two processes with one instance id (tests/it/lease.rs)
        // must not write one log file.
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let log = std::env::temp_dir().join(format!(
            "seinode-watcher-{}-{}-{}.log",
            self.instance,
            std::process::id(),
            STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(BIN);
        if let Some(kubeconfig) = &self.kubeconfig {
            cmd.arg("--kubeconfig").arg(kubeconfig);
        }
        if let Some(endpoint) = &self.otlp_endpoint {
            cmd.args(["--otlp-endpoint", endpoint]);
        }
        if let Some(interval) = &self.export_interval {
            // The tests' one interval: self-metrics and the refresh of object series.
            cmd.args(["--export-interval", interval]);
            cmd.args(["--refresh-interval", interval]);
        }
        if let Some(ns) = &self.namespace {
            cmd.args(["--namespace", ns]);
        }
        let child = cmd
            .args([
                "--admin-addr",
                "127.0.0.1:0",
                "--instance-id",
                &self.instance,
            ])
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("the watcher starts");
        Watcher {
            child: Some(child),
            log,
            #[cfg(feature = "stack-tests")]
            instance: self.instance,
            admin: OnceLock::new(),
        }
    }
}

/// The watcher binary running as a real process.
pub struct Watcher {
    child: Option<Child>,
    pub log: PathBuf,
    #[cfg(feature = "stack-tests")]
    pub instance: String,
    admin: OnceLock<String>,
}

impl Watcher {
    /// A watcher with no flags but its admin address and instance id.
    pub fn command(instance: &str) -> WatcherCmd {
        WatcherCmd {
            instance: instance.to_owned(),
            namespace: None,
            kubeconfig: None,
            otlp_endpoint: None,
            export_interval: None,
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The admin server's address, as the watcher logged it once listening.
    pub fn admin_addr(&self) -> &str {
        self.admin.get_or_init(|| {
            eventually(
                Duration::from_secs(30),
                "the admin server's address in the log",
                || {
                    let log = self.log_text();
                    let addr = log
                        .lines()
                        .find(|l| l.contains(ADMIN_LINE))
                        .and_then(|l| {
                            l.split_whitespace()
                                .find_map(|w| w.strip_prefix("addr="))
                                // --log-format=json: `"addr":"IP:PORT"`.
                                .or_else(|| l.split("\"addr\":").nth(1)?.split(['}', ',']).next())
                        })
                        .map(|a| a.trim_matches('"').to_owned());
                    if addr.is_none() && !self.running() {
                        panic!("the watcher exited before its admin server listened; log:\n{log}");
                    }
                    addr
                },
            )
        })
    }

    /// GET an admin path; returns the status code (0 when not answering).
    pub fn admin_status(&self, path: &str) -> u16 {
        match ureq::get(format!("http://{}{path}", self.admin_addr()))
            .config()
            .http_status_as_error(false)
            .build()
            .call()
        {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// SIGTERM, then waits up to `limit` for the exit; returns it and how long it took.
    pub fn sigterm(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let mut child = self.child.take().expect("running");
        let start = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return (status, start.elapsed());
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the watcher did not exit within {limit:?} of SIGTERM; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then the exit status (within 20 s).
    #[cfg(feature = "stack-tests")]
    pub fn terminate(&mut self) -> ExitStatus {
        self.sigterm(Duration::from_secs(20)).0
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn running(&self) -> bool {
        // try_wait needs &mut; /proc says as much for a child not yet reaped, except that a
        // zombie (exited, not reaped) still has an entry: look at its state.
        let Some(child) = &self.child else {
            return false;
        };
        std::fs::read_to_string(format!("/proc/{}/stat", child.id()))
            .map(|s| {
                s.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().next())
                    .is_some_and(|state| state != "Z")
            })
            .unwrap_or(false)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
