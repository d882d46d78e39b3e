//! The admin server over real TCP connections: readiness, probes, slow and half-open clients, the connection cap, the accept backoff.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn shared() -> Arc<Shared> {
    Arc::new(Shared::new(&crate::resource::ResourceSpec::defaults()[..1]))
}

#[test]
fn ready_only_after_sync_and_exporter() {
    let shared = Shared::new(&crate::resource::ResourceSpec::defaults()[..1]);
    assert_eq!(
        respond(&Method::GET, "/livez", &shared).status(),
        StatusCode::OK
    );
    assert_eq!(
        respond(&Method::GET, "/readyz", &shared).status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    shared.mark_resource_synced();
    assert_eq!(
        respond(&Method::GET, "/readyz", &shared).status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    shared.mark_exporter_ready();
    assert_eq!(
        respond(&Method::GET, "/readyz", &shared).status(),
        StatusCode::OK
    );
    assert_eq!(
        respond(&Method::GET, "/nope", &shared).status(),
        StatusCode::NOT_FOUND
    );
}

/// Starts the server on a free loopback port; it stops when the test's runtime ends.
async fn start(limits: Limits) -> SocketAddr {
    let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_with(listener, shared(), limits));
    addr
}

/// Everything the server sends on `stream` until it closes the connection (a reset
/// counts as closed); panics if it is still open after 10 s.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    match tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionReset => {}
        Ok(Err(e)) => panic!("reading from the admin server: {e}"),
        Err(_) => panic!(
            "the admin server kept the connection open for 10 s; it sent: {:?}",
            String::from_utf8_lossy(&buf)
        ),
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// One GET on a new connection; the response's status line.
async fn get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: probe\r\n\r\n");
    // A refused connection may be closed before the request is written.
    let _ = stream.write_all(request.as_bytes()).await;
    until_closed(&mut stream)
        .await
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn probes_are_answered_over_tcp() {
    let addr = start(Limits::default()).await;
    assert_eq!(get(addr, "/livez").await, "HTTP/1.1 200 OK");
    assert_eq!(
        get(addr, "/readyz").await,
        "HTTP/1.1 503 Service Unavailable"
    );
    assert_eq!(get(addr, "/metrics").await, "HTTP/1.1 404 Not Found");
}

#[tokio::test]
async fn a_client_that_sends_half_a_header_is_disconnected_after_the_timeout() {
    let timeout = Duration::from_millis(300);
    let addr = start(Limits {
        header_read_timeout: timeout,
        max_connections: 1,
    })
    .await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let sent = Instant::now();
    slow.write_all(b"GET /livez HTTP/1.1\r\nHost: probe\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut slow).await;
    assert!(
        sent.elapsed() >= timeout,
        "closed after {:?}, before the header-read timeout: not by it",
        sent.elapsed()
    );
    assert!(
        !answer.contains(" 200 "),
        "a request with half a header was served: {answer:?}"
    );
    // Its slot (the only one) is free again: a whole request is served.
    assert_eq!(get(addr, "/livez").await, "HTTP/1.1 200 OK");
}

#[tokio::test]
async fn a_client_that_sends_nothing_is_disconnected_after_the_timeout() {
    let addr = start(Limits {
        header_read_timeout: Duration::from_millis(300),
        max_connections: 1,
    })
    .await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert_eq!(until_closed(&mut silent).await, "");
}

#[tokio::test]
async fn the_connection_closes_after_one_response_whatever_the_client_still_sends() {
    let addr = start(Limits {
        header_read_timeout: Duration::from_secs(30),
        max_connections: 1,
    })
    .await;
    // A body announced but never sent must not hold the connection (or its slot).
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /livez HTTP/1.1\r\nHost: probe\r\nContent-Length: 1000000\r\n\r\nabc")
        .await
        .unwrap();
    let answer = until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer:?}");
    assert_eq!(get(addr, "/livez").await, "HTTP/1.1 200 OK");
}

/// Opens a connection that sends half a request head and then nothing.
async fn half_a_head(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /livez HTTP/1.1\r\nHost: probe\r\n")
        .await
        .unwrap();
    stream
}

#[tokio::test]
async fn a_connection_over_the_cap_closes_the_oldest_and_is_served() {
    let addr = start(Limits {
        header_read_timeout: Duration::from_secs(30),
        max_connections: 2,
    })
    .await;
    // Two connections hold both places: each has sent half a request.
    let mut oldest = half_a_head(addr).await;
    let mut second = half_a_head(addr).await;
    // Let the server accept both, in this order, before the probe comes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The probe is served, long before the 30 s header timeout could have freed a place...
    assert_eq!(get(addr, "/livez").await, "HTTP/1.1 200 OK");
    // ...because the oldest connection was closed to make room, without an answer.
    assert_eq!(until_closed(&mut oldest).await, "");
    // The other one still finishes its request.
    second.write_all(b"\r\n").await.unwrap();
    let answer = until_closed(&mut second).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer:?}");
}

/// How a slow client behaves.
#[derive(Clone, Copy, Debug)]
enum Slow {
    /// Connects and sends nothing.
    Silent,
    /// Sends half a request head, then nothing.
    HalfHead,
    /// Sends its request head one byte every 100 ms (it never completes within the test).
    Trickle,
}

/// Opens a slow connection; a trickling one keeps writing from its own task until the
/// server closes it.
async fn slow_client(addr: SocketAddr, how: Slow) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    match how {
        Slow::Silent => Some(stream),
        Slow::HalfHead => {
            stream
                .write_all(b"GET /readyz HTTP/1.1\r\nHost: probe\r\n")
                .await
                .unwrap();
            Some(stream)
        }
        Slow::Trickle => {
            tokio::spawn(async move {
                for byte in b"GET /livez HTTP/1.1\r\nHost: probe\r\nX-Slow: "
                    .iter()
                    .cycle()
                {
                    if stream.write_all(&[*byte]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
            None
        }
    }
}

/// The slowloris: 200 connections that are open and slow (silent, half a head,
/// a byte at a time) do not keep the kubelet's probes from an answer within its default
/// 1 s timeout. Latencies: `cargo test --lib two_hundred_slow -- --nocapture`.
#[tokio::test]
async fn two_hundred_slow_connections_do_not_starve_the_probes() {
    let addr = start(Limits::default()).await;
    let mut held = Vec::new();
    for i in 0..200 {
        let how = [Slow::Silent, Slow::HalfHead, Slow::Trickle][i % 3];
        held.extend(slow_client(addr, how).await);
    }
    // Let the server accept every one before the probes come.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut latencies = Vec::new();
    for path in ["/livez", "/readyz", "/livez", "/readyz", "/livez"] {
        let asked = Instant::now();
        let status = get(addr, path).await;
        let took = asked.elapsed();
        let expected = if path == "/livez" {
            "HTTP/1.1 200 OK"
        } else {
            "HTTP/1.1 503 Service Unavailable"
        };
        assert_eq!(status, expected, "{path} with 200 slow connections open");
        assert!(
            took < Duration::from_secs(1),
            "{path} answered after {took:?}: the kubelet's default probe timeout is 1 s"
        );
        latencies.push(took);
    }
    println!("probe latencies with 200 slow connections open: {latencies:?}");
    drop(held);
}

#[test]
fn accept_backoff_doubles_from_5ms_to_1s_and_restarts_after_a_success() {
    let mut pauses = Vec::new();
    let mut previous = None;
    for _ in 0..11 {
        let pause = next_backoff(previous);
        pauses.push(pause.as_millis());
        previous = Some(pause);
    }
    assert_eq!(pauses, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
    assert_eq!(next_backoff(None), Duration::from_millis(5));
}

#[tokio::test(start_paused = true)]
async fn accept_errors_back_off_instead_of_spinning() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let accept = move || {
        let call = counted.fetch_add(1, Ordering::SeqCst);
        async move {
            // A bound, so that a loop without a pause ends (and fails below) instead
            // of spinning for ever.
            if call >= 1_000 {
                std::future::pending::<()>().await;
            }
            Err::<TcpStream, _>(io::Error::from_raw_os_error(24)) // EMFILE
        }
    };
    let server = tokio::spawn(serve_loop(accept, shared(), Limits::default()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Accepts at 0, 5, 15, 35, 75, 155, 315, 635 and 1275 ms; the next at 2275 ms.
    assert_eq!(calls.load(Ordering::SeqCst), 9);
    server.abort();
}

#[tokio::test(start_paused = true)]
async fn a_success_restarts_the_backoff() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    // Ten errors (pauses 5, 10, ..., 640, 1000, 1000 ms: 3275 ms), one connection, then
    // errors again: the first pause after the connection is 5 ms again.
    let accept = move || {
        let call = counted.fetch_add(1, Ordering::SeqCst);
        async move {
            match call {
                10 => Ok(tokio::io::duplex(64).0),
                12.. => std::future::pending().await,
                _ => Err(io::Error::from_raw_os_error(24)),
            }
        }
    };
    let server = tokio::spawn(serve_loop(accept, shared(), Limits::default()));
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 10);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Call 10 (at 2275 + 1000 ms) connected, call 11 failed at once, and call 12 came
    // 5 ms later, not 1 s later.
    assert_eq!(calls.load(Ordering::SeqCst), 13);
    server.abort();
}

#[test]
fn throttled_logs_say_how_many_events_they_stand_for() {
    let t0 = Instant::now();
    let mut throttle = Throttle::new(Duration::from_secs(60));
    assert_eq!(throttle.hit(t0), Some(1), "the first event is logged");
    for s in 1..60 {
        assert_eq!(throttle.hit(t0 + Duration::from_secs(s)), None);
    }
    assert_eq!(
        throttle.hit(t0 + Duration::from_secs(60)),
        Some(60),
        "one line a minute, counting the events held back"
    );
    assert_eq!(throttle.hit(t0 + Duration::from_secs(61)), None);
}
