//! A signal you can trust (issue 11), on the local stack with the shipped rules:
//!
//! - two replicas with leader election: the leader's API access hangs while a validator's
//!   signing key breaks, and the page still arrives; then the new leader is killed
//!   (SIGKILL) while the alert fires: the other replica continues the same series, the
//!   alert keeps its `activeAt`, and Alertmanager sends no second page and no resolution;
//!   then a leader stopped with SIGTERM hands the lease over at once;
//! - one replica whose API access hangs withdraws its series and says it is blind;
//! - a bad label selector is one clear line, not "streaming lists refused";
//! - a streaming list that takes longer than one 30 s watch request, on a slow link,
//!   arrives whole in one request and the watcher becomes ready;
//! - SIGTERM with a hanging collector exits within the shutdown deadline, saying what was
//!   not sent; SIGTERM with 50,000 series marks every one stale within the deadline.
//!
//! The hanging API server and collector, and the slow link, are a FAKE: a TCP proxy in front
//! of the real one that stops forwarding on request, or passes the server's bytes on at a
//! set rate (the real components cannot be made to hang, nor loopback to be slow).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::*;
use serde_json::{json, Value};

/// The lease timings the watcher uses (src/lease.rs) and the default export interval.
const LEASE: Duration = Duration::from_secs(15);
const RETRY: Duration = Duration::from_secs(2);
const INTERVAL: Duration = Duration::from_secs(15);
/// The longest gap between two samples of a series across a SIGKILL failover, as
/// documented in docs/architecture.md: the dead leader's last periodic export can be one
/// interval old, the standby waits one lease duration after it last saw the lease renewed
/// (it looks every retry period, and the leader renewed up to a retry period before dying),
/// then exports at once.
const FAILOVER_GAP: Duration = Duration::from_secs(15 + 15 + 2 * 2 + 1);
const PAGE: &str = "SeiNodeSigningKeyNotReady";

/// A FAKE fault: a TCP proxy in front of the API server that can be told to hang (stop
/// forwarding in both directions and keep every connection open), which the real API
/// server cannot be made to do; or, started [`FakeHangingProxy::slow`], a slow link.
struct FakeHangingProxy {
    port: u16,
    hang: Arc<AtomicBool>,
}

impl FakeHangingProxy {
    fn start(upstream: u16) -> Self {
        Self::with_rate(upstream, None)
    }

    /// A slow link: every connection gets the server's bytes at `bytes_per_second` at most
    /// (what the client sends passes at once).
    fn slow(upstream: u16, bytes_per_second: usize) -> Self {
        Self::with_rate(upstream, Some(bytes_per_second))
    }

    fn with_rate(upstream: u16, rate: Option<usize>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hang = Arc::new(AtomicBool::new(false));
        let h = hang.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let hang = h.clone();
                std::thread::spawn(move || {
                    if hang.load(Ordering::SeqCst) {
                        // Accept and never answer.
                        hold(client, &hang);
                        return;
                    }
                    let Ok(server) = connect(upstream, rate.is_some()) else {
                        return;
                    };
                    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let h2 = hang.clone();
                    std::thread::spawn(move || pipe(c2, s2, &h2, None));
                    pipe(server, client, &hang, rate);
                });
            }
        });
        Self { port, hang }
    }

    fn set_hang(&self, hang: bool) {
        self.hang.store(hang, Ordering::SeqCst);
    }
}

/// Connects to the upstream; for a slow link with a small receive buffer, so that the
/// server, not the kernel's buffers, waits for the slow reader (loopback's buffers hold
/// megabytes: a server would write a whole list into them at once and never be slowed).
fn connect(upstream: u16, small_buffer: bool) -> std::io::Result<TcpStream> {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], upstream));
    if !small_buffer {
        return TcpStream::connect(address);
    }
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.set_recv_buffer_size(4096)?;
    socket.connect(&address.into())?;
    Ok(socket.into())
}

/// Keeps a connection open without a byte while the proxy hangs, then closes it.
fn hold(stream: TcpStream, hang: &AtomicBool) {
    while hang.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(stream);
}

/// Copies `from` to `to` until either closes; with `rate`, at most that many bytes a second.
fn pipe(mut from: TcpStream, mut to: TcpStream, hang: &AtomicBool, rate: Option<usize>) {
    let mut buf = [0u8; 16384];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if hang.load(Ordering::SeqCst) {
            // What arrived is never forwarded; the connection stays open until unhung.
            hold(from.try_clone().unwrap(), hang);
            break;
        }
        let sent = match rate {
            None => to.write_all(&buf[..n]),
            Some(rate) => buf[..n].chunks(1024).try_for_each(|chunk| {
                std::thread::sleep(Duration::from_secs_f64(chunk.len() as f64 / rate as f64));
                to.write_all(chunk)
            }),
        };
        if sent.is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
    let _ = from.shutdown(std::net::Shutdown::Both);
}

fn lease_holder(s: &Scenario, lease: &str) -> Option<String> {
    let (ok, out, _) = s.kubectl(&[
        "-n",
        s.ns(),
        "get",
        "lease",
        lease,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    (ok && !out.trim().is_empty()).then(|| out.trim().to_owned())
}

/// A validator SeiNode whose SigningKeyReady is True, created in the scenario's namespace.
fn validator(s: &Scenario) -> Value {
    let object = fixture("current/seinode-validator.yaml");
    s.create("seinodes", &object);
    object
}

/// Sets SigningKeyReady of the validator to False/SigningKeyInvalid, now.
fn break_signing_key(s: &Scenario, object: &Value) {
    let name = object["metadata"]["name"].as_str().unwrap();
    let mut status = object["status"].clone();
    let now = now_rfc3339();
    for c in status["conditions"].as_array_mut().unwrap() {
        if c["type"] == "SigningKeyReady" {
            c["status"] = json!("False");
            c["reason"] = json!("SigningKeyInvalid");
            c["message"] = json!("priv_validator_key.json is not valid JSON");
            c["lastTransitionTime"] = json!(now);
        }
    }
    s.stack()
        .patch_status(Some(s.ns()), "seinodes", name, &status);
}

/// The webhook notifications of the page about the scenario's namespace: (status, startsAt).
fn pages(s: &Scenario) -> Vec<(String, String)> {
    s.notifications()
        .iter()
        .filter(|a| a["labels"]["alertname"] == PAGE)
        .map(|a| {
            (
                a["status"].as_str().unwrap().to_owned(),
                a["startsAt"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// The time of the first log line containing `text`, as Unix seconds.
fn log_time(log: &str, text: &str) -> f64 {
    let line = log
        .lines()
        .find(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no line with {text:?} in:\n{log}"));
    unix(line.split_whitespace().next().unwrap())
}

fn alert_active_at(s: &Scenario) -> Option<f64> {
    s.prometheus("/api/v1/alerts", &[])["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == PAGE && a["labels"]["namespace"] == s.ns())
        .and_then(|a| a["activeAt"].as_str())
        .map(unix)
}

fn replica(s: &Scenario, id: &str, lease: &str, kubeconfig: &std::path::Path) -> Watcher {
    s.watcher()
        .instance(id)
        .kubeconfig(kubeconfig)
        .export_interval(Some("15s"))
        .args([
            "--leader-elect",
            "--leader-election-namespace",
            s.ns(),
            "--leader-election-id",
            lease,
        ])
        .start()
}

fn signing_key_false(ns: &str) -> String {
    format!(
        "seinode_status_condition{{namespace=\"{ns}\",type=\"SigningKeyReady\",status=\"False\"}}"
    )
}

#[test]
fn two_replicas_survive_a_hanging_leader_and_a_killed_one() {
    let s = Scenario::new("trust-replicas");
    let ns = s.ns();
    let lease = format!("watcher-{ns}");
    let object = validator(&s);
    let name = object["metadata"]["name"].as_str().unwrap().to_owned();
    let proxy = FakeHangingProxy::start(Stack::env("APISERVER_PORT").parse().unwrap());
    let via_proxy = s.stack().kubeconfig_via(proxy.port, ns);

    // A starts first (through the proxy) and takes the lease; B stands by.
    let mut a = replica(&s, "replica-a", &lease, &via_proxy);
    a.wait_ready();
    eventually(Duration::from_secs(20), "A holds the lease", || {
        (lease_holder(&s, &lease).as_deref() == Some("replica-a")).then_some(())
    });
    let b = replica(&s, "replica-b", &lease, &s.stack().kubeconfig());
    b.wait_ready();
    let ok = format!(
        "seinode_status_condition{{namespace=\"{ns}\",name=\"{name}\",type=\"SigningKeyReady\",status=\"True\"}}"
    );
    let labels = eventually(Duration::from_secs(30), "the leader's series", || {
        s.query(&ok).into_iter().next().map(|(l, _)| l)
    });
    assert_eq!(
        labels["instance"], lease,
        "object series carry the lease's name, the same for every replica"
    );
    assert_eq!(
        s.query_one("sei_condition_watcher_leader{instance=\"replica-b\"}"),
        Some(0.0)
    );

    // (a) A's API access hangs, and the signing key breaks: A cannot see it, B must.
    proxy.set_hang(true);
    let broke = Instant::now();
    break_signing_key(&s, &object);
    let took_over = eventually(Duration::from_secs(60), "B takes the lease", || {
        (lease_holder(&s, &lease).as_deref() == Some("replica-b")).then(|| broke.elapsed())
    });
    eventually(Duration::from_secs(30), "the False series from B", || {
        s.query_one(&signing_key_false(ns)).map(|_| ())
    });
    let exported = broke.elapsed();
    // The shipped rule: terminal reason, 1 m `for`; the page must come within 5 m plus one
    // evaluation (5 s here) of the break, as with one healthy replica.
    let paged = eventually(
        Duration::from_secs(5 * 60 + 5),
        "the page reaches Alertmanager's receiver",
        || {
            pages(&s)
                .iter()
                .any(|(s, _)| s == "firing")
                .then(|| broke.elapsed())
        },
    );
    assert!(
        a.log_text().contains("could not renew the lease"),
        "A says why it stopped: {}",
        a.log_text()
    );
    // Never two writers: A stopped exporting before B took the lease.
    let a_stopped = log_time(&a.log_text(), "could not renew the lease");
    let b_took = log_time(&b.log_text(), "acquired the lease");
    assert!(
        a_stopped < b_took,
        "A stopped at {a_stopped}, B took over at {b_took}: two writers overlapped"
    );
    s.figure(
        &format!(
            "two replicas, leader's API access hanging: B took the lease {took_over:.1?} after the break, \
             the False series was queryable after {exported:.1?}, the page reached the receiver after {paged:.1?}"
        ),
    );

    // (b) A's access comes back (it stays a standby); B, now leading, is killed while the
    // alert fires: A takes over and continues the same series.
    proxy.set_hang(false);
    eventually(
        Duration::from_secs(120),
        "A's view is healthy again",
        || {
            s.query_one("max_over_time(sei_condition_watcher_leader{instance=\"replica-a\"}[20s])")
                .filter(|v| *v == 0.0)
                .and_then(|_| a.log_text().contains("not leading").then_some(()))
        },
    );
    let active_before = alert_active_at(&s).expect("the page is active");
    let killed_at = Instant::now();
    let killed_unix = unix_now();
    let pid = b.pid();
    Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    let a_leads = eventually(
        Duration::from_secs(60),
        "A takes over from the killed B",
        || (lease_holder(&s, &lease).as_deref() == Some("replica-a")).then(|| killed_at.elapsed()),
    );
    // Wait for two of A's periodic exports after the takeover, then look at raw samples.
    std::thread::sleep(INTERVAL * 2 + Duration::from_secs(5));
    let range = format!("{}s", (killed_at.elapsed() + INTERVAL * 3).as_secs());
    let times: Vec<f64> = s
        .samples(&format!("{}[{range}]", signing_key_false(ns)))
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    let around: Vec<f64> = times
        .iter()
        .copied()
        .filter(|t| *t >= killed_unix - INTERVAL.as_secs_f64() - 1.0)
        .collect();
    assert!(
        around.len() >= 3,
        "samples before and after the kill: {times:?}"
    );
    let gap = largest_gap(&around);
    assert!(
        gap <= FAILOVER_GAP.as_secs_f64(),
        "gap of {gap:.1} s in the series across the failover (documented bound {FAILOVER_GAP:?}): {times:?}"
    );
    let active_after = alert_active_at(&s).expect("still active after the failover");
    assert_eq!(
        active_before, active_after,
        "the alert's `for` did not restart"
    );
    let pages = pages(&s);
    assert!(
        pages.iter().all(|(s, _)| s == "firing"),
        "no resolution in between: {pages:?}"
    );
    let starts: std::collections::BTreeSet<&String> = pages.iter().map(|(_, s)| s).collect();
    assert_eq!(starts.len(), 1, "one alert, paged once: {pages:?}");
    drop(b); // reaps the killed process
    s.figure(
        &format!(
            "two replicas, leader SIGKILLed: the standby took the lease after {a_leads:.1?}; longest gap between \
             samples {gap:.1} s (bound {FAILOVER_GAP:?}); the alert kept its activeAt, no second page"
        ),
    );

    // (c) A new B stands by; A (leading) gets SIGTERM: it hands the lease over at once and
    // sends no markers, so the series continue.
    let mut b = replica(&s, "replica-b2", &lease, &s.stack().kubeconfig());
    b.wait_ready();
    std::thread::sleep(RETRY * 2);
    let stopped = Instant::now();
    let status = a.terminate();
    let exit = stopped.elapsed();
    assert!(status.success(), "{status:?}\n{}", a.log_text());
    assert!(
        a.log_text().contains("handed the lease over"),
        "{}",
        a.log_text()
    );
    let handed = eventually(Duration::from_secs(10), "B2 leads", || {
        (lease_holder(&s, &lease).as_deref() == Some("replica-b2")).then(|| stopped.elapsed())
    });
    assert!(
        handed < LEASE,
        "a hand-over does not wait for the lease to expire: {handed:?}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        s.query_one(&signing_key_false(ns)),
        Some(1.0),
        "no staleness marker ended the series"
    );
    s.figure(&format!(
        "two replicas, leader SIGTERMed: exit after {exit:.1?}, the standby led after {handed:.1?}"
    ));
    assert!(b.terminate().success());
}

#[test]
fn a_blind_watch_withdraws_its_series_and_says_so() {
    let s = Scenario::new("trust-blind");
    let ns = s.ns();
    let object = validator(&s);
    let name = object["metadata"]["name"].as_str().unwrap().to_owned();
    let proxy = FakeHangingProxy::start(Stack::env("APISERVER_PORT").parse().unwrap());
    let via_proxy = s.stack().kubeconfig_via(proxy.port, ns);
    let mut w = s
        .watcher()
        .instance(&format!("{ns}-w"))
        .kubeconfig(&via_proxy)
        .export_interval(Some("15s"))
        .args(["--resource", "seinodes.sei.io"])
        .ready();
    let series = format!(
        "seinode_status_condition{{namespace=\"{ns}\",name=\"{name}\",type=\"SigningKeyReady\"}}"
    );
    eventually(Duration::from_secs(30), "the series", || {
        s.query_one(&series).map(|_| ())
    });
    let blind = format!(
        "sei_condition_watcher_resource_blind{{instance=\"{ns}-w\",resource=\"seinodes.sei.io\"}}"
    );
    eventually(Duration::from_secs(30), "blind = 0", || {
        (s.query_one(&blind) == Some(0.0)).then_some(())
    });
    proxy.set_hang(true);
    let hung = Instant::now();
    // Hang detected within about 75 s, blind 90 s later, withdrawn at the next export:
    // well inside Prometheus' 5-minute lookback (docs/architecture.md).
    let withdrawn = eventually(Duration::from_secs(4 * 60), "the series withdrawn", || {
        s.query(&series).is_empty().then(|| hung.elapsed())
    });
    // The series go with the next refresh tick; the gauge with the next self-metrics export.
    eventually(Duration::from_secs(30), "blind = 1", || {
        (s.query_one(&blind) == Some(1.0)).then_some(())
    });
    assert!(
        withdrawn < Duration::from_secs(5 * 60),
        "withdrawn after {withdrawn:?}: Prometheus' lookback would have done it"
    );
    s.figure(
        &format!("one replica, API access hanging: its series were withdrawn (marked stale) {withdrawn:.1?} after the hang"),
    );
    // The API server is reachable again: the watch works, the series come back.
    proxy.set_hang(false);
    let back = Instant::now();
    eventually(Duration::from_secs(120), "the series back", || {
        s.query_one(&series).map(|_| ())
    });
    eventually(Duration::from_secs(60), "blind = 0 again", || {
        (s.query_one(&blind) == Some(0.0)).then_some(())
    });
    s.figure(&format!(
        "... and back {:.1?} after the API server answered again",
        back.elapsed()
    ));
    assert!(w.terminate().success());
}

/// The server-side timeout of every other watch request (src/health.rs WATCH_TIMEOUT_SECS),
/// which once cut streaming lists too: a list longer than this began again, forever.
const WATCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Issue 19 item 9: at 100,000 SeiNodes the streaming list outlasted the 30 s watch request
/// and began again forever. The same here with a list of 10 MB on a slow link (128 KB/s:
/// about 80 s): it must arrive whole in one request, and the watcher become ready, without
/// giving up streaming for paged lists.
///
/// The sizes are what makes the old behaviour show: the API server's socket buffer takes up
/// to 4 MB of the list at once (`net.ipv4.tcp_wmem`'s maximum here), the proxy's 4 KB, and the
/// link 3.8 MB in 30 s, so at the 30 s timeout about 2 MB of the list are still unsent and
/// the server ends the request: with the watcher's request layer removed (src/client.rs),
/// this test fails on the "streaming lists in a row" warning and the `init` count.
#[test]
fn a_streaming_list_longer_than_a_watch_request_arrives_whole() {
    const VALIDATORS: usize = 3;
    const PADDED: usize = 100;
    let s = Scenario::new("trust-slow-list");
    let ns = s.ns().to_owned();
    for i in 0..VALIDATORS {
        let mut object = fixture("current/seinode-validator.yaml");
        object["metadata"]["name"] = json!(format!("validator-{i}"));
        s.create("seinodes", &object);
    }
    // SeiNodes without a status, each with 100 KB of annotation: the list's bulk.
    let padding: String = (0..100 * 1024)
        .map(|i| (b'a' + (i * 7 % 26) as u8) as char)
        .collect();
    let items: Vec<Value> = (0..PADDED)
        .map(|i| {
            let mut object = fixture("current/seinode-validator.yaml");
            object["metadata"]["name"] = json!(format!("padded-{i}"));
            object["metadata"]["annotations"] = json!({ "test.sei.io/padding": padding });
            object.as_object_mut().unwrap().remove("status");
            object
        })
        .collect();
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string();
    s.stack()
        .kubectl_ok(&["-n", &ns, "create", "-f", "-"], Some(&list));
    let proxy = FakeHangingProxy::slow(Stack::env("APISERVER_PORT").parse().unwrap(), 128 * 1024);
    let via_proxy = s.stack().kubeconfig_via(proxy.port, &ns);
    let started = Instant::now();
    let mut w = s
        .watcher()
        .instance(&format!("{ns}-w"))
        .kubeconfig(&via_proxy)
        .args(["--resource", "seinodes.sei.io"])
        .start();
    let ready = eventually(Duration::from_secs(240), "the watcher ready", || {
        (w.admin_status("/readyz") == 200).then(|| started.elapsed())
    });
    let log = w.log_text();
    assert!(
        ready > WATCH_TIMEOUT + Duration::from_secs(5),
        "ready after {ready:?}: the list did not outlast one watch request, so this test \
         shows nothing (make the link slower or the list larger)"
    );
    assert!(
        !log.contains("streaming lists in a row"),
        "the streaming list was cut and given up:\n{log}"
    );
    let lists = log
        .lines()
        .filter(|l| l.contains("initial list complete"))
        .collect::<Vec<_>>();
    assert_eq!(lists.len(), 1, "{log}");
    let objects = VALIDATORS + PADDED;
    assert!(
        lists[0].contains(&format!("objects={objects}")),
        "{}",
        lists[0]
    );
    // One list begun, not one per cut (the self-metric counts each `Init`).
    let inits = format!(
        "sei_condition_watcher_watch_events_total{{instance=\"{ns}-w\",resource=\"seinodes.sei.io\",event=\"init\"}}"
    );
    eventually(Duration::from_secs(60), "one list begun", || {
        (s.query_one(&inits) == Some(1.0)).then_some(())
    });
    let series = format!(
        "count(seinode_status_condition{{namespace=\"{ns}\",type=\"SigningKeyReady\",status=\"True\"}})"
    );
    eventually(Duration::from_secs(60), "every validator's series", || {
        (s.query_one(&series) == Some(VALIDATORS as f64)).then_some(())
    });
    s.figure(&format!(
        "a streaming list of {objects} SeiNodes (10 MB) at 128 KB/s: ready after {ready:.1?}, in one request"
    ));
    assert!(w.terminate().success());
}

#[test]
fn a_bad_label_selector_is_one_clear_line() {
    let s = Scenario::new("trust-selector");
    let w = s
        .watcher()
        .instance(&format!("{}-w", s.ns()))
        .args(["-l", "app in sei", "--resource", "seinodes.sei.io"])
        .start();
    let line = eventually(Duration::from_secs(30), "the selector error", || {
        w.log_text()
            .lines()
            .find(|l| l.contains("--label-selector"))
            .map(str::to_owned)
    });
    assert!(
        line.contains("refused the list/watch of seinodes.sei.io as invalid"),
        "{line}"
    );
    let log = w.log_text();
    assert!(
        !log.contains("refused a streaming list"),
        "not mistaken for a refused streaming list:\n{log}"
    );
    assert_eq!(w.admin_status("/livez"), 200, "the process keeps running");
}

/// The shutdown deadline (src/run.rs SHUTDOWN_DEADLINE) plus the runtime's one second.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(25 + 2);

#[test]
fn sigterm_with_a_hanging_collector_exits_within_the_deadline() {
    let s = Scenario::new("trust-term-hang");
    let ns = s.ns();
    validator(&s);
    // The real collector behind a proxy that starts hanging once the series are delivered.
    let proxy = FakeHangingProxy::start(Stack::env("OTLP_GRPC_PORT").parse().unwrap());
    let mut watcher = s
        .watcher()
        .otlp_endpoint(&format!("http://127.0.0.1:{}", proxy.port))
        .export_interval(None)
        .start();
    eventually(Duration::from_secs(30), "the series delivered", || {
        s.query_one(&format!(
            "count(seinode_status_condition{{namespace=\"{ns}\"}})"
        ))
        .map(|_| ())
    });
    proxy.set_hang(true);
    std::thread::sleep(Duration::from_secs(1));
    let (status, took) = watcher.sigterm(SHUTDOWN_LIMIT + Duration::from_secs(10));
    let text = watcher.log_text();
    assert!(
        took <= SHUTDOWN_LIMIT,
        "exit {took:?} after SIGTERM, over the deadline {SHUTDOWN_LIMIT:?}:\n{text}"
    );
    assert!(status.code().is_some(), "exited, not killed: {status:?}");
    let line = text
        .lines()
        .find(|l| l.contains("were not sent"))
        .unwrap_or_else(|| panic!("one line says what was not sent:\n{text}"));
    assert!(line.contains("staleness markers"), "{line}");
    s.figure(&format!(
        "SIGTERM with a hanging collector: exit after {took:.1?} (deadline 25 s)"
    ));
}

#[test]
fn sigterm_with_fifty_thousand_series_marks_them_all_within_the_deadline() {
    let s = Scenario::new("trust-term-50k");
    let ns = s.ns();
    // All four kinds with every condition upstream sets: about 18 series per SeiNode.
    let count = 2_900;
    s.populate(&[
        "conditions",
        "--namespace",
        ns,
        "--count",
        &count.to_string(),
    ]);
    let mut watcher = s.watcher().export_interval(Some("15s")).start();
    let count_series =
        format!("count({{__name__=~\"sei.*_status_condition.*\",namespace=\"{ns}\"}})");
    let series = eventually(
        Duration::from_secs(120),
        "50,000 series in Prometheus",
        || s.query_one(&count_series).filter(|n| *n >= 50_000.0),
    );
    // Let a periodic export pass so that the count is whole.
    std::thread::sleep(Duration::from_secs(3));
    let (status, took) = watcher.sigterm(SHUTDOWN_LIMIT + Duration::from_secs(10));
    let text = watcher.log_text();
    assert!(status.success(), "{status:?}\n{text}");
    assert!(took <= SHUTDOWN_LIMIT, "exit after {took:?}:\n{text}");
    assert!(!text.contains("did not finish in time"), "{text}");
    // Every series ends at once (markers), not after the 5-minute lookback.
    eventually(Duration::from_secs(60), "every series marked stale", || {
        s.query(&count_series).is_empty().then_some(())
    });
    s.figure(&format!(
        "SIGTERM with {series} series: markers for all sent, exit after {took:.1?}"
    ));
}
