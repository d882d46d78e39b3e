//! The admin HTTP server: `/livez` and `/readyz` for Kubernetes probes.
//!
//! `/readyz` answers 200 only after every watch has completed its first list and the
//! exporter exists, so a rollout waits until the new pod exports the whole fleet.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Method, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tracing::{debug, info};

use crate::state::Shared;
use crate::Error;

/// Binds the admin address; fails with a clear error if it is taken.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr).await.map_err(|e| Error::Admin {
        addr: addr.to_string(),
        reason: format!("{e}; choose another with --admin-addr"),
    })
}

/// Serves probes until the task is dropped.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "admin server listening (/livez, /readyz)");
    }
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                debug!("admin accept failed: {e}");
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: hyper::Request<Incoming>| {
                let response = respond(req.method(), req.uri().path(), &shared);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!("admin connection error: {e}");
            }
        });
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
mod tests {
    use super::*;

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
}
