//! The export stage: object series encoded straight from the index into OTLP (values and
//! staleness markers in one ordered stream), and the watcher's own metrics through the
//! OpenTelemetry SDK. Both share one gRPC channel to the collector.
//!
//! ```text
//!   objects/ (wing 1, the object series)
//!   mod.rs: run loop: Changes at once (COALESCE apart), Refresh one slice a second
//!       │   (every object once per --refresh-interval), Full on takeover
//!       │   (finish.rs: the last export before exiting, within a deadline)
//!       ▼
//!   index ─▶ targets.rs ─▶ deliver.rs ─▶ encode.rs ─▶ chunk.rs ─▶ sink.rs ─────────┐ gzip,
//!            which keys,   values and    points,      requests    GrpcSink        │ headers.rs
//!            withdrawals   markers       (wire.rs)    ≤ budget    (or http.rs)    ├─▶ collector
//!               (series.rs; standby.rs: dry exports, takeover marks)              │ (channel.rs,
//!   selfmetrics/ (wing 2): SDK PeriodicReader, instruments.rs read Stats ─────────┘  direct.rs)
//!   shared by both wings, here: settings.rs (flags + OpenTelemetry environment -> ExportConfig),
//!   channel.rs / http.rs / headers.rs / direct.rs (the transport), failures.rs (+ hint.rs):
//!   one log line per outage for both, with a plain-words hint
//! ```
//!
//! Why object series bypass the SDK (measured, docs/architecture.md): the SDK's observable
//! instruments preallocate a map for the whole cardinality limit per instrument and fold
//! everything beyond it into one overflow series; they cannot set `FLAG_NO_RECORDED_VALUE`
//! (the staleness marker); and a change-only export would need a side channel to tell the
//! callbacks what changed. Encoding from the index has none of these limits: nothing is
//! folded, markers and values travel in the same request, and what changed is simply the
//! set of keys the index hands over.

pub(crate) mod channel;
pub(crate) mod direct;
pub mod failures;
mod headers;
mod hint;
pub(crate) mod http;
pub(crate) mod objects;
pub(crate) mod selfmetrics;
mod settings;

use std::sync::Arc;

use opentelemetry::KeyValue;
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
use opentelemetry_proto::transform::common::tonic::Attributes;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::Resource;
use tonic::transport::Channel;

pub(crate) use channel::build_channel;
pub(crate) use http::HttpSink;
pub(crate) use objects::{FinalExport, GrpcSink, ObjectExporter};
pub(crate) use selfmetrics::SelfMetrics;
pub(crate) use settings::{
    Compression, ExportConfig, ExportFlags, Protocol, Receiver, DEFAULT_MAX_REQUEST_BYTES,
};

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
pub(crate) const SCOPE_NAME: &str = "sei-condition-watcher";

/// The connection to the receiver, gRPC or HTTP, shared by the object series and the
/// self-metrics.
#[derive(Clone)]
pub(crate) enum Transport {
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
pub(crate) enum OtlpSink {
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
pub(crate) struct ExportStage {
    pub(crate) objects: ObjectExporter<OtlpSink>,
    pub(crate) self_metrics: SelfMetrics,
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
pub(crate) fn failure_log() -> failures::FailureLog {
    failures::FailureLog::new()
}

/// The encoder with the same resource and scope as the SDK's exports, so that object series
/// and self-metrics get the same `job`, `instance` and `cluster` labels. For Prometheus'
/// own receiver, the resource is cut to `job` and `instance` and `cluster` goes on every
/// point (direct.rs).
pub(crate) fn encoder(
    resource: &Resource,
    max_request_bytes: usize,
    receiver: Receiver,
) -> objects::encode::Encoder {
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
    objects::encode::Encoder {
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
