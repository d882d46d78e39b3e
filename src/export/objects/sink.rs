//! The collector's OTLP metrics service as a [`Sink`] for object series: the requests come
//! encoded (encode.rs), so the call is made with a codec that sends bytes as they are.

use std::time::Duration;

use bytes::{BufMut, Bytes};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

use super::Sink;
use crate::export::headers::Headers;

/// Requests smaller than this go uncompressed, whatever `--otlp-compression` says: tonic
/// builds a new compressor for every request, and setting up gzip's (zeroing its tables)
/// cost more than the rest of a one-change export together, for the few hundred bytes it
/// would save (profiled in docs/benchmarks.md). The refresh's slices and full exports are
/// larger and compressed.
pub const COMPRESS_FROM_BYTES: usize = 16 * 1024;

/// The collector's OTLP metrics service, with a per-request timeout, compression and the
/// configured headers (`OTEL_EXPORTER_OTLP_HEADERS`) on every request.
#[derive(Clone)]
pub struct GrpcSink {
    /// For requests of [`COMPRESS_FROM_BYTES`] and more.
    client: tonic::client::Grpc<Channel>,
    /// For smaller ones: the same channel, no compression.
    plain: tonic::client::Grpc<Channel>,
    timeout: Duration,
    headers: Headers,
}

impl GrpcSink {
    pub fn new(
        channel: Channel,
        timeout: Duration,
        compression: crate::export::Compression,
    ) -> Self {
        let plain = tonic::client::Grpc::new(channel)
            // The collector enforces its own receive limit; the watcher's requests are cut
            // below --max-request-bytes before they get here.
            .max_encoding_message_size(usize::MAX);
        let mut client = plain.clone();
        let encoding = match compression {
            crate::export::Compression::None => None,
            crate::export::Compression::Gzip => Some(tonic::codec::CompressionEncoding::Gzip),
            crate::export::Compression::Zstd => Some(tonic::codec::CompressionEncoding::Zstd),
        };
        if let Some(encoding) = encoding {
            // The collector answers in the request's encoding: accept it too.
            client = client.send_compressed(encoding).accept_compressed(encoding);
        }
        Self {
            client,
            plain,
            timeout,
            headers: Headers::default(),
        }
    }

    /// Sends `headers` with every request.
    pub fn with_headers(mut self, headers: &Headers) -> Self {
        self.headers = headers.clone();
        self
    }
}

impl Sink for GrpcSink {
    async fn send(&mut self, request: Bytes) -> Result<(), tonic::Status> {
        let mut request = tonic::Request::new(request);
        request.set_timeout(self.timeout);
        self.headers.apply(request.metadata_mut());
        let client = if request.get_ref().len() >= COMPRESS_FROM_BYTES {
            &mut self.client
        } else {
            &mut self.plain
        };
        client
            .ready()
            .await
            .map_err(|e| tonic::Status::unknown(format!("collector connection: {e}")))?;
        let response = client
            .unary(request, http::uri::PathAndQuery::from_static(EXPORT), Raw)
            .await
            .map_err(with_cause)?
            .into_inner();
        if let Some(partial) = response.partial_success {
            if partial.rejected_data_points > 0 {
                return Err(tonic::Status::invalid_argument(format!(
                    "the collector rejected {} data points: {}",
                    partial.rejected_data_points, partial.error_message
                )));
            }
        }
        Ok(())
    }
}

const EXPORT: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

/// Sends an encoded request as it is and decodes the collector's answer.
#[derive(Debug, Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Bytes;
    type Decode = ExportMetricsServiceResponse;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = ExportMetricsServiceResponse;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, tonic::Status> {
        prost::Message::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("the collector's answer: {e}")))
    }
}

/// Some transport failures (a TLS alert from the collector after the handshake, a reset
/// connection) arrive as a status whose message is only "transport error", the cause being
/// in its source chain. Folds the chain into the message, so the one log line (and its
/// hint, `hint::export_hint`) can say what failed.
fn with_cause(status: tonic::Status) -> tonic::Status {
    let mut message = status.message().to_owned();
    let mut source = std::error::Error::source(&status);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) && text != "transport error" {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    if message == status.message() {
        status
    } else {
        tonic::Status::new(status.code(), message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transport_failure_carries_its_cause() {
        let alert = std::io::Error::other("received fatal alert: CertificateRequired");
        let connection: std::sync::Arc<dyn std::error::Error + Send + Sync> =
            std::sync::Arc::new(std::io::Error::other(Wrapped("connection error", alert)));
        let mut status = tonic::Status::unknown("transport error");
        status.set_source(connection);
        let folded = with_cause(status);
        assert_eq!(folded.code(), tonic::Code::Unknown);
        assert_eq!(
            folded.message(),
            "transport error: connection error: received fatal alert: CertificateRequired"
        );
        let plain = with_cause(tonic::Status::unauthenticated("no token"));
        assert_eq!(plain.message(), "no token");
    }

    #[derive(Debug)]
    struct Wrapped(&'static str, std::io::Error);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.1)
        }
    }
}
