//! The collector's OTLP metrics service as a [`Sink`] for object series.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use tonic::transport::Channel;

use super::objects::Sink;

/// The collector's OTLP metrics service, with a per-request timeout and optional gzip.
#[derive(Clone)]
pub struct GrpcSink {
    client: MetricsServiceClient<Channel>,
    timeout: Duration,
}

impl GrpcSink {
    pub fn new(channel: Channel, timeout: Duration, gzip: bool) -> Self {
        let mut client = MetricsServiceClient::new(channel)
            // The collector enforces its own receive limit; the watcher's requests are cut
            // below --max-request-bytes before they get here.
            .max_encoding_message_size(usize::MAX);
        if gzip {
            // The collector answers a gzip request in gzip: accept it too.
            client = client
                .send_compressed(tonic::codec::CompressionEncoding::Gzip)
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        }
        Self { client, timeout }
    }
}

impl Sink for GrpcSink {
    async fn send(&mut self, request: ExportMetricsServiceRequest) -> Result<(), tonic::Status> {
        let mut request = tonic::Request::new(request);
        request.set_timeout(self.timeout);
        let response = self.client.export(request).await?.into_inner();
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
