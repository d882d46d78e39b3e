//! The admin HTTP server: `/livez` and `/readyz` for Kubernetes probes.
//!
//! `/readyz` answers 200 only after every watch has completed its first list and the
//! exporter exists, so a rollout waits until the new pod exports the whole fleet.
//!
//! It does not say whether object series are being *delivered*: the standby delivers
//! nothing by design, and a collector outage is the same for every replica, so a `/readyz`
//! that failed with the exports would only block rollouts and node drains (the
//! PodDisruptionBudget counts unready pods) without sending a sample. Delivery has its own
//! alerts (`SeiConditionWatcherNotDelivering`, `SeiConditionWatcherAbsent`).
//!
//! It serves the kubelet's probes, a few requests a minute, so it is bounded so that no
//! client can starve them or make the process spin:
//!
//! - a connection that has not sent a whole request head within
//!   [`Limits::header_read_timeout`] is closed (hyper's header-read timeout);
//! - one request per connection (the kubelet opens one per probe): the connection closes
//!   once the response is written, whatever the client still sends;
//! - at most [`Limits::max_connections`] connections at once, and a new connection is
//!   always accepted: at the cap, the *oldest* open connection is closed to make room. A
//!   probe sends its whole request as soon as it connects and is answered within a
//!   millisecond, so slow or silent clients (slowloris) only ever push each other out,
//!   never the probe; the evictions are logged at `debug`, at most one line per
//!   [`LOG_EVERY`];
//! - an accept error (EMFILE when the process is out of file descriptors, say) is retried
//!   after a pause growing from [`ACCEPT_BACKOFF_MIN`] to [`ACCEPT_BACKOFF_MAX`] instead of
//!   at once in a loop, and logged at `warn` at most once per [`LOG_EVERY`].

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::state::Shared;
use crate::Error;

/// The first pause after an accept error; it doubles with each error in a row.
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
/// The longest pause after accept errors in a row.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// At most one log line per this interval for accept errors, and one for refused
/// connections.
pub const LOG_EVERY: Duration = Duration::from_secs(60);

/// Bounds of the admin server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A connection that has not sent a whole request head within this is closed. The
    /// kubelet's probes send theirs at once; their own timeout is 1 s by default.
    pub header_read_timeout: Duration,
    /// Connections open at once; a new one over the cap closes the oldest.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(5),
            // Bounds the file descriptors and memory held by connections (a hyper
            // connection task with its read buffer, a few KiB each: well under 1 MiB in
            // all). It does not need to cover an attack, since the oldest connection
            // makes room for a new one; 64 lets a few dozen slow but honest clients
            // (curl over a port-forward, a monitoring agent) finish side by side.
            max_connections: 64,
        }
    }
}

/// Binds the admin address; fails with a clear error if it is taken.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Admin {
            addr: addr.to_string(),
            source,
        })
}

/// Serves probes with the default [`Limits`] until the task is dropped.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    serve_with(listener, shared, Limits::default()).await
}

/// Serves probes with `limits` until the task is dropped.
pub async fn serve_with(listener: TcpListener, shared: Arc<Shared>, limits: Limits) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "admin server listening (/livez, /readyz)");
    }
    let listener = &listener;
    serve_loop(
        move || async move { listener.accept().await.map(|(stream, _)| stream) },
        shared,
        limits,
    )
    .await
}

/// The accept loop, over any source of connections (a fake one in the tests).
async fn serve_loop<S, A, F>(mut accept: A, shared: Arc<Shared>, limits: Limits)
where
    A: FnMut() -> F,
    F: Future<Output = io::Result<S>>,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // The open connections, oldest first.
    let mut open: VecDeque<AbortHandle> = VecDeque::with_capacity(limits.max_connections);
    let mut backoff = None;
    let mut accept_errors = Throttle::new(LOG_EVERY);
    let mut evictions = Throttle::new(LOG_EVERY);
    loop {
        let stream = match accept().await {
            Ok(stream) => {
                backoff = None;
                stream
            }
            Err(e) => {
                let pause = next_backoff(backoff);
                backoff = Some(pause);
                if let Some(errors) = accept_errors.hit(Instant::now()) {
                    warn!(
                        errors,
                        retry_in = ?pause,
                        "the admin server cannot accept connections: {e}; probes fail until it can"
                    );
                }
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        open.retain(|connection| !connection.is_finished());
        while open.len() >= limits.max_connections.max(1) {
            let Some(oldest) = open.pop_front() else {
                break;
            };
            // Dropping the connection's task closes its socket.
            oldest.abort();
            if let Some(evicted) = evictions.hit(Instant::now()) {
                debug!(
                    evicted,
                    max_connections = limits.max_connections,
                    "admin server: too many connections at once; closing the oldest to make room"
                );
            }
        }
        let shared = shared.clone();
        let connection = tokio::spawn(async move {
            let service = service_fn(move |req: hyper::Request<Incoming>| {
                let response = respond(req.method(), req.uri().path(), &shared);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            if let Err(e) = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!("admin connection error: {e}");
            }
        });
        open.push_back(connection.abort_handle());
    }
}

/// The pause after an accept error, given the pause after the previous one in a row
/// (`None`: the last accept succeeded).
pub fn next_backoff(previous: Option<Duration>) -> Duration {
    match previous {
        None => ACCEPT_BACKOFF_MIN,
        Some(pause) => (pause * 2).clamp(ACCEPT_BACKOFF_MIN, ACCEPT_BACKOFF_MAX),
    }
}

/// At most one log line per interval: [`Throttle::hit`] says when to log, and how many
/// events the line stands for.
#[derive(Debug)]
struct Throttle {
    every: Duration,
    last: Option<Instant>,
    held: u64,
}

impl Throttle {
    fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            held: 0,
        }
    }

    /// Records an event at `now`; `Some(n)` when it is time to log, `n` being the events
    /// since the last line (this one included).
    fn hit(&mut self, now: Instant) -> Option<u64> {
        self.held += 1;
        if self.last.is_some_and(|last| now < last + self.every) {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }
}

/// Routes one request; pure, so it is tested without sockets.
pub fn respond(method: &Method, path: &str, shared: &Shared) -> Response<Full<Bytes>> {
    let (status, body) = match (method, path) {
        (&Method::GET | &Method::HEAD, "/livez") => (StatusCode::OK, "ok\n".to_owned()),
        (&Method::GET | &Method::HEAD, "/readyz") if shared.is_ready() => {
            (StatusCode::OK, "ok\n".to_owned())
        }
        (&Method::GET | &Method::HEAD, "/readyz") => (
            StatusCode::SERVICE_UNAVAILABLE,
            if shared.watches_synced() {
                "not ready: exporter not built yet\n".to_owned()
            } else {
                "not ready: waiting for the first list of SeiNodes\n".to_owned()
            },
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "not found: try /livez or /readyz\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests;
