//! Odd inputs, through the binary as a user runs it: each gets one clear line or a bound.
//! These need no stack: where an API server is needed, it is a FAKE one (a few lines of
//! std::net below) that produces the fault a real API server cannot.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::harness::{eventually, free_port, rss_kib, Watcher, BIN};

/// A FAKE API server: answers every request with `answer(n, request line)` (the n-th
/// request, from 0) as JSON, one request per connection. It stands in for a real API
/// server only to produce a fault the real one cannot.
struct FakeApiServer {
    port: u16,
    requests: Arc<AtomicUsize>,
}

impl FakeApiServer {
    fn start(answer: fn(usize, &str) -> (u16, String)) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let n = counted.fetch_add(1, Ordering::SeqCst);
                let _ = serve_one(stream, n, answer);
            }
        });
        Self { port, requests }
    }

    fn kubeconfig_path(&self, name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "odd-inputs-{name}-{}.kubeconfig",
            std::process::id()
        ))
    }

    /// A kubeconfig pointing at the fake, in a fresh temporary file.
    fn kubeconfig(&self, name: &str) -> PathBuf {
        let path = self.kubeconfig_path(name);
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \"http://127.0.0.1:{}\"}}\n\
                 users:\n- name: fake\n  user: {{token: fake}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: fake}}\n\
                 current-context: fake\n",
                self.port
            ),
        )
        .unwrap();
        path
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn serve_one(
    stream: TcpStream,
    n: usize,
    answer: fn(usize, &str) -> (u16, String),
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
    }
    let (status, body) = answer(n, request_line.trim_end());
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} Fake\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

/// An empty SeiNode list page with `token` as its continue token.
fn list_page(token: &str) -> String {
    serde_json::json!({
        "apiVersion": "sei.io/v1alpha1",
        "kind": "SeiNodeList",
        "metadata": {"resourceVersion": "1", "continue": token},
        "items": [],
    })
    .to_string()
}

#[test]
fn check_stops_on_a_repeating_continue_token_with_one_line() {
    // After 50 requests it ends the list, so that a `check` that follows the token for
    // ever fails this test instead of hanging it.
    let fake =
        FakeApiServer::start(|n, _| (200, list_page(if n < 50 { "the-same-token" } else { "" })));
    let out = Command::new(BIN)
        .args(["check", "--resource", "seinodes.sei.io", "--kubeconfig"])
        .arg(fake.kubeconfig("continue"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(
        stderr,
        "error: listing: seinodes.sei.io AllNamespaces: the API server sent a continue \
         token it had sent before (page 2): this list would never end; giving up\n"
    );
    assert_eq!(fake.requests(), 2, "the token is followed once");
    let _ = std::fs::remove_file(fake.kubeconfig_path("continue"));
}

#[test]
fn max_series_of_usize_max_is_ignored_with_a_warning() {
    // The flag is hidden and ignored; a value of usize::MAX must not reach an allocation
    // (that would abort at start-up).
    let fake = FakeApiServer::start(|_, _| {
        (
            404,
            r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#
                .into(),
        )
    });
    // A cluster name: the fake has no kube-system to derive the cluster's identity from.
    let mut watcher = Watcher::command("odd-inputs")
        .args(["--cluster-name", "odd-inputs"])
        .args(["--max-series", "18446744073709551615", "--kubeconfig"])
        .args([fake.kubeconfig("max-series")])
        .args([
            "--otlp-endpoint",
            &format!("http://127.0.0.1:{}", free_port()),
        ])
        .start();
    eventually(Duration::from_secs(30), "/livez answers 200", || {
        assert!(
            watcher.is_running(),
            "the watcher exited: {}",
            watcher.log_text()
        );
        (watcher.admin_status("/livez") == 200).then_some(())
    });
    let text = watcher.log_text();
    assert_eq!(
        text.matches("--max-series no longer applies and is ignored")
            .count(),
        1,
        "{text}"
    );
    let rss_kib = rss_kib(watcher.pid());
    assert!(
        rss_kib > 0 && rss_kib < 256 * 1024,
        "{rss_kib} KiB resident after start-up"
    );
    let (status, _) = watcher.sigterm(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", watcher.log_text());
    let _ = std::fs::remove_file(&watcher.log);
    let _ = std::fs::remove_file(fake.kubeconfig_path("max-series"));
}

#[test]
fn an_api_server_without_kube_system_and_no_cluster_name_is_one_line_and_exit_2() {
    // Nothing to derive the cluster's identity from, and no name given: the watcher
    // cannot tell its series from another cluster's, so it does not start.
    let fake = FakeApiServer::start(|_, _| {
        (
            404,
            r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#
                .into(),
        )
    });
    let out = Command::new(BIN)
        .args(["--admin-addr", "127.0.0.1:0", "--kubeconfig"])
        .arg(fake.kubeconfig("no-kube-system"))
        .env("K8S_CLUSTER_NAME", "")
        .env_remove("OTEL_RESOURCE_ATTRIBUTES")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("no kube-system namespace") && errors[0].contains("set --cluster-name"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(fake.requests(), 1, "not retried");
    let _ = std::fs::remove_file(fake.kubeconfig_path("no-kube-system"));
}
