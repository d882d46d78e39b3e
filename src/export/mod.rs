//! The export stage: object series encoded straight from the index into OTLP (values and
//! staleness markers in one ordered stream), and the watcher's own metrics through the
//! OpenTelemetry SDK. Both share one gRPC channel to the collector.
//!
//! ```text
//!   objects.rs: run loop: Changes at once (COALESCE apart), Refresh one slice a second
//!       │       (every object once per --refresh-interval), Full on takeover
//!       │       (finish.rs: the last export before exiting, within a deadline)
//!       ▼
//!   index ─▶ targets.rs ─▶ deliver.rs ─▶ encode.rs ─▶ chunk.rs ─▶ sink.rs ─────────┐ gzip,
//!            which keys,   values and    points,      requests    GrpcSink        │ headers
//!            withdrawals   markers       (wire.rs)    ≤ budget                    ├─▶ collector
//!               (series.rs; standby.rs: dry exports, takeover marks)              │ (channel.rs)
//!   Stats ◀── selfmetrics.rs: SDK PeriodicReader ── OTLP MetricExporter ──────────┘
//!   failures.rs (+ hint.rs): one log line per outage for both, with a plain-words hint
//! ```
//!
//! Why object series bypass the SDK (measured, docs/architecture.md): the SDK's observable
//! instruments preallocate a map for the whole cardinality limit per instrument and fold
//! everything beyond it into one overflow series; they cannot set `FLAG_NO_RECORDED_VALUE`
//! (the staleness marker); and a change-only export would need a side channel to tell the
//! callbacks what changed. Encoding from the index has none of these limits: nothing is
//! folded, markers and values travel in the same request, and what changed is simply the
//! set of keys the index hands over.

pub mod channel;
mod chunk;
mod deliver;
pub mod direct;
pub mod encode;
pub mod failures;
mod finish;
mod headers;
mod hint;
pub mod http;
mod instruments;
pub mod objects;
pub mod selfmetrics;
pub mod series;
pub mod sink;
mod standby;
mod targets;
#[cfg(test)]
mod testkit;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
use opentelemetry_proto::transform::common::tonic::Attributes;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::Resource;
use tonic::transport::Channel;

pub use channel::build_channel;
pub use finish::FinalExport;
pub use headers::Headers;
pub use hint::export_hint;
pub use http::HttpSink;
pub use objects::{ExportKind, ObjectExporter, COALESCE, REFRESH_TICK};
pub use selfmetrics::SelfMetrics;
pub use sink::GrpcSink;

use crate::state::Shared;
use crate::Error;

/// Metric names, exactly as they must arrive in Prometheus. Object families are per
/// resource (`<family>_status_condition...`, see [`crate::resource::WatchedResource`]).
pub mod names {
    pub const READY: &str = "seinode_sidecar_tls_secret_ready";
    pub const STATUS: &str = "seinode_sidecar_tls_secret_status";
    pub const LAST_TRANSITION: &str =
        "seinode_sidecar_tls_secret_last_transition_timestamp_seconds";
    pub const UP: &str = "sei_condition_watcher_up";
    pub const WATCH_EVENTS: &str = "sei_condition_watcher_watch_events_total";
    pub const WATCH_ERRORS: &str = "sei_condition_watcher_watch_errors_total";
    pub const OBJECTS: &str = "sei_condition_watcher_objects";
    pub const TLS_OBJECTS: &str = "sei_condition_watcher_sidecar_tls_objects";
    pub const DECODE_ERRORS: &str = "sei_condition_watcher_decode_errors_total";
    pub const EXPORTS: &str = "sei_condition_watcher_exports_total";
    pub const EXPORT_ERRORS: &str = "sei_condition_watcher_export_errors_total";
    pub const STALENESS_MARKERS: &str = "sei_condition_watcher_staleness_markers_total";
    pub const LAST_LIST: &str = "sei_condition_watcher_last_list_timestamp_seconds";
    pub const LEADER: &str = "sei_condition_watcher_leader";
    pub const RESOURCE_BLIND: &str = "sei_condition_watcher_resource_blind";
    pub const UNDECODABLE: &str = "sei_condition_watcher_undecodable_objects";
    pub const UNREADABLE: &str = "sei_condition_watcher_unreadable_condition_objects";
    pub const REFUSED: &str = "sei_condition_watcher_refused_conditions";
    pub const DUPLICATE_IDENTITY: &str = "sei_condition_watcher_duplicate_identity";
    pub const FILTERS: &str = "sei_condition_watcher_filters";
    pub const FILTERED: &str = "sei_condition_watcher_filtered_conditions";

    /// The object families of the default resources, as they arrive in Prometheus
    /// (`<family>_labels` only with `--metric-labels-allowlist`).
    pub const SEI_FAMILIES: [&str; 20] = [
        "seinode_status_condition",
        "seinode_status_condition_last_transition_timestamp_seconds",
        "seinode_status_condition_outdated",
        "seinode_status_conditions_truncated",
        "seinode_labels",
        "seinetwork_status_condition",
        "seinetwork_status_condition_last_transition_timestamp_seconds",
        "seinetwork_status_condition_outdated",
        "seinetwork_status_conditions_truncated",
        "seinetwork_labels",
        "seinodetask_status_condition",
        "seinodetask_status_condition_last_transition_timestamp_seconds",
        "seinodetask_status_condition_outdated",
        "seinodetask_status_conditions_truncated",
        "seinodetask_labels",
        "seinodetaskworkflow_status_condition",
        "seinodetaskworkflow_status_condition_last_transition_timestamp_seconds",
        "seinodetaskworkflow_status_condition_outdated",
        "seinodetaskworkflow_status_conditions_truncated",
        "seinodetaskworkflow_labels",
    ];

    /// Every metric the watcher exports with the default resources (docs/metrics.md
    /// documents each; tests/docs.rs checks).
    pub const ALL: [&str; 21] = [
        READY,
        STATUS,
        LAST_TRANSITION,
        UP,
        WATCH_EVENTS,
        WATCH_ERRORS,
        OBJECTS,
        TLS_OBJECTS,
        DECODE_ERRORS,
        EXPORTS,
        EXPORT_ERRORS,
        STALENESS_MARKERS,
        LAST_LIST,
        LEADER,
        RESOURCE_BLIND,
        UNDECODABLE,
        UNREADABLE,
        REFUSED,
        DUPLICATE_IDENTITY,
        FILTERS,
        FILTERED,
    ];
}

/// The instrumentation scope of every metric, object series and self-metrics alike.
pub const SCOPE_NAME: &str = "sei-condition-watcher";

/// The default largest uncompressed OTLP request. The collector's OTLP gRPC receiver
/// refuses messages over `max_recv_msg_size_mib` (4 MiB by default) counted after
/// decompression; half of that leaves room for a collector configured tighter and keeps
/// one refused request small.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 2 * 1024 * 1024;
/// Bounds of `--max-request-bytes`: below 64 KiB a single large object could not fit; above
/// 64 MiB one request would hold the exporter's memory for nothing.
pub const MAX_REQUEST_BYTES_RANGE: std::ops::RangeInclusive<usize> = 64 * 1024..=64 * 1024 * 1024;
/// The collector's default receive limit (OTLP gRPC receiver, `max_recv_msg_size_mib: 4`).
pub const COLLECTOR_DEFAULT_RECV_BYTES: usize = 4 * 1024 * 1024;

/// How OTLP requests are compressed (`--otlp-compression`, `OTEL_EXPORTER_OTLP_COMPRESSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The name as the flag and the OTel variables spell it.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "none" => Some(Self::None),
            "gzip" => Some(Self::Gzip),
            "zstd" => Some(Self::Zstd),
            _ => None,
        }
    }
}

/// The OTLP transport (`--otlp-protocol`, `OTEL_EXPORTER_OTLP_[METRICS_]PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC (port 4317): the collector's default receiver.
    Grpc,
    /// OTLP/HTTP with protobuf bodies (port 4318, path `/v1/metrics`): the collector's
    /// `http` protocol, Prometheus 3's own receiver, most hosted endpoints.
    HttpProtobuf,
}

impl Protocol {
    /// The name as the flag and the OTel variables spell it.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "grpc" => Some(Self::Grpc),
            "http/protobuf" => Some(Self::HttpProtobuf),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http/protobuf",
        }
    }
}

/// What receives the requests (`--otlp-receiver`): it decides where the `cluster` label is
/// made and which resource attributes are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Receiver {
    /// An OpenTelemetry Collector (otel-config/collector.yaml): it makes `cluster` from the
    /// resource's `k8s.cluster.name` and writes no `target_info`.
    #[default]
    Collector,
    /// A Prometheus-compatible OTLP receiver with no collector in between (Prometheus 3's
    /// `/api/v1/otlp/v1/metrics`): the watcher writes `cluster` on every point itself and
    /// sends a resource of `service.name` and `service.instance.id` only (`job`,
    /// `instance`), so Prometheus writes the labels the rules expect and no `target_info`
    /// (docs/deploy.md, "Straight into Prometheus").
    Prometheus,
}

/// Where and how to export. `Debug` shows neither header values nor credentials in the
/// endpoint.
#[derive(Clone)]
pub struct ExportConfig {
    /// OTLP/gRPC endpoint, e.g. `http://otel-collector:4317` or `https://...`; for
    /// OTLP/HTTP the whole URL requests are posted to (`.../v1/metrics`).
    pub endpoint: String,
    /// gRPC or HTTP.
    pub protocol: Protocol,
    /// A collector, or Prometheus' own OTLP receiver.
    pub receiver: Receiver,
    /// Headers sent with every export request (`OTEL_EXPORTER_OTLP_HEADERS`).
    pub headers: Headers,
    /// Export interval of the watcher's own metrics (the SDK's periodic reader).
    pub interval: Duration,
    /// Every object's series are sent again once per this interval, spread evenly over it.
    pub refresh: Duration,
    /// Timeout of one export request.
    pub timeout: Duration,
    /// PEM CA bundle to verify the collector (implies TLS); otherwise the system roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// PEM client certificate and key for mTLS.
    pub client_cert_file: Option<std::path::PathBuf>,
    pub client_key_file: Option<std::path::PathBuf>,
    /// Compression of every request (`--otlp-compression`).
    pub compression: Compression,
    /// Largest uncompressed object-series request.
    pub max_request_bytes: usize,
    /// On shutdown without a successor, mark the healthy object series stale and leave the
    /// troubled ones (`FinalExport::Retire`); off: every value once more, no markers.
    pub stale_on_shutdown: bool,
}

impl std::fmt::Debug for ExportConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportConfig")
            .field("endpoint", &channel::redact(&self.endpoint))
            .field("protocol", &self.protocol)
            .field("receiver", &self.receiver)
            .field("headers", &self.headers)
            .field("interval", &self.interval)
            .field("refresh", &self.refresh)
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .field("client_cert_file", &self.client_cert_file)
            .field("client_key_file", &self.client_key_file)
            .field("compression", &self.compression)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("stale_on_shutdown", &self.stale_on_shutdown)
            .finish()
    }
}

/// The connection to the receiver, gRPC or HTTP, shared by the object series and the
/// self-metrics.
#[derive(Clone)]
pub enum Transport {
    Grpc(Channel),
    Http(HttpSink),
}

impl Transport {
    /// Builds the gRPC channel or the HTTP client (`--otlp-protocol`). Must be called
    /// inside a tokio runtime.
    pub fn connect(config: &ExportConfig) -> Result<Self, Error> {
        match config.protocol {
            Protocol::Grpc => build_channel(config).map(Self::Grpc),
            Protocol::HttpProtobuf => HttpSink::new(config).map(Self::Http),
        }
    }
}

/// The object series' way out: the collector's gRPC service or an OTLP/HTTP receiver.
#[derive(Clone)]
pub enum OtlpSink {
    /// Boxed: the gRPC client is some 400 bytes, the HTTP one a pointer.
    Grpc(Box<GrpcSink>),
    Http(HttpSink),
}

impl objects::Sink for OtlpSink {
    async fn send(&mut self, request: bytes::Bytes) -> Result<(), tonic::Status> {
        match self {
            Self::Grpc(sink) => sink.send(request).await,
            Self::Http(sink) => sink.send(request).await,
        }
    }
}

/// The export stage, built and ready to run.
pub struct ExportStage {
    pub objects: ObjectExporter<OtlpSink>,
    pub self_metrics: SelfMetrics,
}

impl ExportStage {
    pub fn new(
        config: &ExportConfig,
        resource: Resource,
        transport: Transport,
        shared: Arc<Shared>,
    ) -> Result<Self, Error> {
        let encoder = encoder(&resource, config.max_request_bytes, config.receiver);
        let failures = Arc::new(failure_log());
        let (self_metrics, sink) = match transport {
            Transport::Grpc(channel) => {
                let otlp = grpc_metric_exporter(config, channel.clone())?;
                let self_metrics =
                    SelfMetrics::new(otlp, config.interval, resource, &shared, failures.clone());
                let sink = GrpcSink::new(channel, config.timeout, config.compression)
                    .with_headers(&config.headers);
                (self_metrics, OtlpSink::Grpc(Box::new(sink)))
            }
            Transport::Http(sink) => {
                let otlp = http::HttpMetricExporter::new(
                    sink.clone(),
                    config.receiver == Receiver::Prometheus,
                );
                let self_metrics =
                    SelfMetrics::new(otlp, config.interval, resource, &shared, failures.clone());
                (self_metrics, OtlpSink::Http(sink))
            }
        };
        let objects = ObjectExporter::new(shared.clone(), sink, encoder, failures);
        shared.mark_exporter_ready();
        Ok(Self {
            objects,
            self_metrics,
        })
    }
}

/// The SDK's OTLP/gRPC exporter on the shared channel, with the same timeout, compression
/// and headers as the object series.
fn grpc_metric_exporter(
    config: &ExportConfig,
    channel: Channel,
) -> Result<opentelemetry_otlp::MetricExporter, Error> {
    let mut otlp = opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .with_channel(channel)
        .with_timeout(config.timeout)
        .with_temporality(Temporality::Cumulative);
    match config.compression {
        Compression::None => {}
        Compression::Gzip => otlp = otlp.with_compression(opentelemetry_otlp::Compression::Gzip),
        Compression::Zstd => otlp = otlp.with_compression(opentelemetry_otlp::Compression::Zstd),
    }
    if !config.headers.is_empty() {
        otlp = otlp.with_metadata(config.headers.metadata());
    }
    otlp.build()
        .map_err(|e| Error::Config(format!("cannot build the OTLP exporter: {e}")))
}

/// The failure log shared by every exporter: the object exports by kind, and the SDK's.
pub fn failure_log() -> failures::FailureLog {
    failures::FailureLog::new()
}

/// The encoder with the same resource and scope as the SDK's exports, so that object series
/// and self-metrics get the same `job`, `instance` and `cluster` labels. For Prometheus'
/// own receiver, the resource is cut to `job` and `instance` and `cluster` goes on every
/// point (direct.rs).
pub fn encoder(
    resource: &Resource,
    max_request_bytes: usize,
    receiver: Receiver,
) -> encode::Encoder {
    let attributes = Attributes::from(
        resource
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
    );
    let resource = ProtoResource {
        attributes: attributes.0,
        ..Default::default()
    };
    let (resource, cluster_label) = match receiver {
        Receiver::Collector => (resource, None),
        Receiver::Prometheus => direct::split_resource(&resource),
    };
    encode::Encoder {
        resource,
        cluster_label,
        scope: InstrumentationScope {
            name: SCOPE_NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        },
        max_request_bytes,
    }
}
