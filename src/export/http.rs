//! OTLP over HTTP (`--otlp-protocol http/protobuf`): one client for the object series and
//! the self-metrics, with the same TLS, headers, compression and timeout as the gRPC
//! channel, and the answers mapped to the gRPC codes the rest of the exporter (failure log,
//! hints, counters) already knows.
//!
//! ```text
//!   request bytes ──gzip/zstd (≥ COMPRESS_FROM_BYTES)──▶ POST <endpoint>
//!        Content-Type: application/x-protobuf, Content-Encoding, OTEL_EXPORTER_OTLP_HEADERS
//!   answer: 2xx ─▶ ExportMetricsServiceResponse (partial success: rejected points = refused)
//!           4xx/5xx ─▶ tonic::Status (400 InvalidArgument, 401 Unauthenticated,
//!                      403 PermissionDenied, 404 Unimplemented, 413 ResourceExhausted,
//!                      429/502/503/504 Unavailable, ...) with the body's message
//! ```
//!
//! No request is retried here, as on gRPC: a refused request leaves the exporter's memory
//! of what was delivered unchanged, so a later export (deliver.rs: a change at once, the
//! refresh within a second, refused changes after a pause; finish.rs for the final one;
//! the self-metrics at the next interval) sends the same values and markers again. A
//! `Retry-After` is reported in the log line, not waited for.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use prost::Message;
use tonic::{Code, Status};

use super::channel::checked_endpoint;
use super::objects::sink::COMPRESS_FROM_BYTES;
use super::objects::Sink;
use super::{Compression, ExportConfig};
use crate::Error;

/// The largest answer read: an OTLP answer is a few bytes (a partial success, an error
/// message); a proxy's error page is cut here.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// The part of an error answer's body that goes into the log line.
const MAX_MESSAGE_CHARS: usize = 300;

/// The OTLP/HTTP client: cheap to clone (one connection pool), shared by the object
/// exporter and the self-metrics exporter.
#[derive(Clone)]
pub struct HttpSink {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    uri: http::Uri,
    timeout: Duration,
    compression: Compression,
    headers: http::HeaderMap,
}

impl HttpSink {
    /// Builds the client: the endpoint checked as for gRPC (scheme, host, TLS options only
    /// with https://), TLS with the system roots plus `--otlp-ca-file`, and the mTLS
    /// identity. Must be called inside a tokio runtime.
    pub fn new(config: &ExportConfig) -> Result<Self, Error> {
        let (uri, tls) = checked_endpoint(config)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.timeout));
        http.set_nodelay(true);
        let builder =
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls_config(config, tls)?);
        let connector = if tls {
            builder.https_only().enable_http1().wrap_connector(http)
        } else {
            builder.https_or_http().enable_http1().wrap_connector(http)
        };
        let client = Client::builder(TokioExecutor::new())
            // Idle connections are closed before a load balancer or the receiver would
            // close them under a request.
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                uri,
                timeout: config.timeout,
                compression: config.compression,
                headers: config.headers.metadata().into_headers(),
            }),
        })
    }

    /// Posts one encoded `ExportMetricsServiceRequest`; `Ok` only if every point was
    /// accepted.
    pub async fn post(&self, body: Bytes) -> Result<(), Status> {
        let inner = &self.inner;
        let request = build_request(&inner.uri, &inner.headers, inner.compression, body)?;
        let exchange = async {
            let response = inner
                .client
                .request(request)
                .await
                .map_err(|e| Status::unavailable(with_causes(&e)))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_ANSWER_BYTES)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok::<_, Status>((parts, body))
        };
        let (parts, body) = tokio::time::timeout(inner.timeout, exchange)
            .await
            .map_err(|_| {
                Status::deadline_exceeded(format!(
                    "no answer within {:?} (timed out)",
                    inner.timeout
                ))
            })??;
        answer(parts.status, &parts.headers, &body)
    }
}

impl Sink for HttpSink {
    async fn send(&mut self, request: Bytes) -> Result<(), Status> {
        self.post(request).await
    }
}

/// The POST of one request: compressed from [`COMPRESS_FROM_BYTES`] on (as on gRPC, for
/// the same reason: a compressor per request costs more than it saves on a few hundred
/// bytes), with the configured headers.
pub(super) fn build_request(
    uri: &http::Uri,
    headers: &http::HeaderMap,
    compression: Compression,
    body: Bytes,
) -> Result<http::Request<Full<Bytes>>, Status> {
    let (body, encoding) = if body.len() < COMPRESS_FROM_BYTES {
        (body, None)
    } else {
        compress(compression, &body)?
    };
    let mut request = http::Request::post(uri.clone())
        .header(http::header::CONTENT_TYPE, "application/x-protobuf")
        .header(
            http::header::USER_AGENT,
            concat!("sei-condition-watcher/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(encoding) = encoding {
        request = request.header(http::header::CONTENT_ENCODING, encoding);
    }
    let mut request = request
        .body(Full::new(body))
        .map_err(|e| Status::internal(format!("cannot build the HTTP request: {e}")))?;
    for (key, value) in headers {
        request.headers_mut().append(key.clone(), value.clone());
    }
    Ok(request)
}

fn compress(
    compression: Compression,
    body: &[u8],
) -> Result<(Bytes, Option<&'static str>), Status> {
    use std::io::Write;
    let failed = |e: std::io::Error| Status::internal(format!("cannot compress the request: {e}"));
    match compression {
        Compression::None => Ok((Bytes::copy_from_slice(body), None)),
        Compression::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::default(),
            );
            encoder.write_all(body).map_err(failed)?;
            Ok((encoder.finish().map_err(failed)?.into(), Some("gzip")))
        }
        Compression::Zstd => Ok((
            zstd::bulk::compress(body, 0).map_err(failed)?.into(),
            Some("zstd"),
        )),
    }
}

/// `google.rpc.Status`, as the collector writes an error answer's body in protobuf.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// The receiver's answer as the exporter's result: the OTLP/HTTP status codes mapped to
/// the gRPC codes of the same meaning (the OTLP specification's table), the body's message
/// kept for the log line.
pub(super) fn answer(
    status: http::StatusCode,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<(), Status> {
    let protobuf = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-protobuf"));
    if status.is_success() {
        // An empty body is a full success; a body that is not an OTLP answer (a proxy's
        // page) says nothing about rejected points either.
        if let Ok(response) = ExportMetricsServiceResponse::decode(body) {
            if let Some(partial) = response.partial_success {
                if partial.rejected_data_points > 0 {
                    return Err(Status::invalid_argument(format!(
                        "the receiver rejected {} data points: {}",
                        partial.rejected_data_points, partial.error_message
                    )));
                }
            }
        }
        return Ok(());
    }
    let message = if protobuf {
        RpcStatus::decode(body)
            .map(|s| s.message)
            .unwrap_or_default()
    } else {
        String::from_utf8_lossy(body).trim().to_owned()
    };
    let message: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
    let code = match status.as_u16() {
        400 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 | 405 => Code::Unimplemented,
        413 => Code::ResourceExhausted,
        415 => Code::InvalidArgument,
        429 | 502 | 503 | 504 => Code::Unavailable,
        500 => Code::Internal,
        _ => Code::Unknown,
    };
    let retry_after = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(|v| format!(" (Retry-After: {v})"))
        .unwrap_or_default();
    let mut text = format!("HTTP {status}{retry_after}");
    if code == Code::Unimplemented {
        text.push_str(": no OTLP receiver at this path");
    }
    if !message.is_empty() {
        text.push_str(": ");
        text.push_str(&message);
    }
    Err(Status::new(code, text))
}

/// A transport error with its causes (the TLS alert, the refused connection), for the log
/// line and its hint.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// The self-metrics over OTLP/HTTP: the SDK's collection converted to the protobuf request
/// (opentelemetry-proto) and posted by the same [`HttpSink`] as the object series, so both
/// have one TLS setup, one status mapping and errors with their cause (the SDK's own
/// OTLP/HTTP exporter reports a failed connection as "network error", no more).
pub struct HttpMetricExporter {
    sink: HttpSink,
    /// The SDK's periodic reader exports from its own thread, outside the runtime; the
    /// request runs on the runtime (hyper needs its reactor).
    runtime: tokio::runtime::Handle,
    /// `--otlp-receiver prometheus`: the resource cut and `cluster` on every point
    /// (direct.rs).
    labels_on_points: bool,
}

impl HttpMetricExporter {
    /// Must be called inside the tokio runtime that will carry the requests.
    pub fn new(sink: HttpSink, labels_on_points: bool) -> Self {
        Self {
            sink,
            runtime: tokio::runtime::Handle::current(),
            labels_on_points,
        }
    }

    /// The request body for one collection.
    pub fn body(&self, metrics: &opentelemetry_sdk::metrics::data::ResourceMetrics) -> Bytes {
        use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
        let mut request = ExportMetricsServiceRequest::from(metrics);
        if self.labels_on_points {
            super::direct::labels_on_points(&mut request);
        }
        request.encode_to_vec().into()
    }
}

impl opentelemetry_sdk::metrics::exporter::PushMetricExporter for HttpMetricExporter {
    async fn export(
        &self,
        metrics: &opentelemetry_sdk::metrics::data::ResourceMetrics,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        use opentelemetry_sdk::error::OTelSdkError;
        let body = self.body(metrics);
        let sink = self.sink.clone();
        let sent = self.runtime.spawn(async move { sink.post(body).await });
        match sent.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(status)) => Err(OTelSdkError::InternalFailure(format!(
                "{:?}: {}",
                status.code(),
                status.message()
            ))),
            Err(e) => Err(OTelSdkError::InternalFailure(format!(
                "the export task failed: {e}"
            ))),
        }
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> opentelemetry_sdk::metrics::Temporality {
        opentelemetry_sdk::metrics::Temporality::Cumulative
    }
}

/// rustls settings: the system roots plus `--otlp-ca-file` (as the gRPC channel), and the
/// client certificate for mTLS.
fn tls_config(config: &ExportConfig, tls: bool) -> Result<rustls::ClientConfig, Error> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    if tls {
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if let Some(ca) = &config.ca_file {
            let pem = super::channel::read_file(ca, "--otlp-ca-file")?;
            let certs: Vec<CertificateDer> = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<_, _>>()
                .map_err(|e| {
                    Error::Config(format!(
                        "--otlp-ca-file {}: not a PEM certificate bundle ({e})",
                        ca.display()
                    ))
                })?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(Error::Config(format!(
                    "--otlp-ca-file {}: no certificate in it",
                    ca.display()
                )));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS settings: {e}")))?
        .with_root_certificates(roots);
    match (&config.client_cert_file, &config.client_key_file) {
        (Some(cert), Some(key)) => {
            let cert_pem = super::channel::read_file(cert, "--otlp-client-cert-file")?;
            let key_pem = super::channel::read_file(key, "--otlp-client-key-file")?;
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
                .collect::<Result<_, _>>()
                .map_err(|e| {
                    Error::Config(format!(
                        "--otlp-client-cert-file {}: not a PEM certificate ({e})",
                        cert.display()
                    ))
                })?;
            let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
                Error::Config(format!(
                    "--otlp-client-key-file {}: not a PEM private key ({e})",
                    key.display()
                ))
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                Error::Config(format!(
                    "--otlp-client-cert-file and --otlp-client-key-file do not make a client \
                     identity: {e}"
                ))
            })
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err(Error::Config(
            "mTLS needs both --otlp-client-cert-file and --otlp-client-key-file".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    //! The OTLP/HTTP request as built (headers, compression, content type) and the answers'
    //! mapping to the exporter's results, without a receiver; the real collector and
    //! Prometheus are in tests/it/otlp_http.rs.

    use super::*;
    use crate::export::headers::Headers;
    use std::io::Read;

    fn headers() -> http::HeaderMap {
        Headers::parse(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "Authorization=Bearer%20s3cr3t,x-tenant=a",
        )
        .unwrap()
        .metadata()
        .into_headers()
    }

    async fn body_of(request: http::Request<Full<Bytes>>) -> (http::request::Parts, Bytes) {
        let (parts, body) = request.into_parts();
        (parts, body.collect().await.unwrap().to_bytes())
    }

    #[tokio::test]
    async fn a_large_request_is_compressed_and_carries_the_headers() {
        let uri: http::Uri = "http://collector:4318/v1/metrics".parse().unwrap();
        let payload: Bytes = (0..COMPRESS_FROM_BYTES * 2)
            .map(|i| (i % 7) as u8)
            .collect::<Vec<u8>>()
            .into();
        let request = build_request(&uri, &headers(), Compression::Gzip, payload.clone()).unwrap();
        let (parts, body) = body_of(request).await;
        assert_eq!(parts.method, http::Method::POST);
        assert_eq!(parts.uri, uri);
        assert_eq!(parts.headers["content-type"], "application/x-protobuf");
        assert_eq!(parts.headers["content-encoding"], "gzip");
        assert_eq!(parts.headers["authorization"], "Bearer s3cr3t");
        assert!(parts.headers["authorization"].is_sensitive());
        assert_eq!(parts.headers["x-tenant"], "a");
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, payload);
        assert!(body.len() < payload.len() / 4, "{} bytes", body.len());

        let request = build_request(&uri, &headers(), Compression::Zstd, payload.clone()).unwrap();
        let (parts, body) = body_of(request).await;
        assert_eq!(parts.headers["content-encoding"], "zstd");
        assert_eq!(zstd::decode_all(&body[..]).unwrap(), payload);

        let request = build_request(&uri, &headers(), Compression::None, payload.clone()).unwrap();
        let (parts, body) = body_of(request).await;
        assert!(!parts.headers.contains_key("content-encoding"));
        assert_eq!(body, payload);
    }

    #[tokio::test]
    async fn a_small_request_goes_plain() {
        let uri: http::Uri = "http://collector:4318/v1/metrics".parse().unwrap();
        let payload = Bytes::from_static(b"\x0a\x00");
        let request = build_request(
            &uri,
            &http::HeaderMap::new(),
            Compression::Gzip,
            payload.clone(),
        )
        .unwrap();
        let (parts, body) = body_of(request).await;
        assert!(!parts.headers.contains_key("content-encoding"));
        assert_eq!(body, payload);
    }

    fn status(code: u16) -> http::StatusCode {
        http::StatusCode::from_u16(code).unwrap()
    }

    #[test]
    fn answers_map_to_the_grpc_codes() {
        let text = http::HeaderMap::new();
        assert!(answer(status(200), &text, b"").is_ok());
        let cases = [
            (400, Code::InvalidArgument),
            (401, Code::Unauthenticated),
            (403, Code::PermissionDenied),
            (404, Code::Unimplemented),
            (413, Code::ResourceExhausted),
            (429, Code::Unavailable),
            (500, Code::Internal),
            (502, Code::Unavailable),
            (503, Code::Unavailable),
            (504, Code::Unavailable),
            (418, Code::Unknown),
        ];
        for (http_code, grpc) in cases {
            let err = answer(status(http_code), &text, b"why").unwrap_err();
            assert_eq!(err.code(), grpc, "{http_code}");
            assert!(
                err.message().contains(&format!("HTTP {http_code}")),
                "{}",
                err.message()
            );
            assert!(err.message().ends_with(": why"), "{}", err.message());
        }
        let mut retry = http::HeaderMap::new();
        retry.insert("retry-after", "7".parse().unwrap());
        let err = answer(status(503), &retry, b"").unwrap_err();
        assert!(
            err.message().contains("Retry-After: 7"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn a_protobuf_error_body_and_a_partial_success_are_read() {
        let mut proto = http::HeaderMap::new();
        proto.insert("content-type", "application/x-protobuf".parse().unwrap());
        let body = RpcStatus {
            code: 3,
            message: "request body too large".into(),
        }
        .encode_to_vec();
        let err = answer(status(400), &proto, &body).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(
            err.message().ends_with("request body too large"),
            "{}",
            err.message()
        );

        use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsPartialSuccess;
        let partial = ExportMetricsServiceResponse {
            partial_success: Some(ExportMetricsPartialSuccess {
                rejected_data_points: 3,
                error_message: "bad points".into(),
            }),
        }
        .encode_to_vec();
        let err = answer(status(200), &proto, &partial).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("rejected 3 data points: bad points"));
        let nothing_rejected = ExportMetricsServiceResponse {
            partial_success: Some(ExportMetricsPartialSuccess {
                rejected_data_points: 0,
                error_message: "a warning".into(),
            }),
        }
        .encode_to_vec();
        assert!(answer(status(200), &proto, &nothing_rejected).is_ok());
    }
}
