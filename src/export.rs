//! The export stage: an OpenTelemetry `SdkMeterProvider` whose observable instruments read
//! the readiness index at collection time, exported over OTLP/gRPC.
//!
//! ```text
//!                   ┌──────────── periodic (every --export-interval) ─────────────┐
//!   Shared::changed ─▶ debounce (DEBOUNCE) ─▶ force_flush ─┐                      │
//!                                                          ▼                      ▼
//!   index ◀─read── observable callbacks ◀── collect ── PeriodicReader ──▶ StalenessExporter
//!     │                                                                     │ 1. OTLP MetricExporter: current values
//!     └── take_stale_series ───────────────────────────────────────────────▶│ 2. staleness markers (proto over tonic,
//!                                                                           │    FLAG_NO_RECORDED_VALUE) for series
//!                                                                           ▼    that disappeared since the last export
//!                                                                      OTel Collector
//! ```
//!
//! A periodic export reports every SeiNode. An event-driven one (after a change) reports only
//! the SeiNodes that changed since the last one (`ReadinessIndex::take_dirty`,
//! `Shared::for_each_reported`): the SDK exports only what a callback observed in that
//! collection, so the callbacks observe only those. Both go through the same reader thread,
//! so samples reach Prometheus in time order.
//!
//! Why the second step: the SDK simply stops reporting a series that is gone, and
//! Prometheus would keep its last value for its 5-minute lookback, so a deleted node's last
//! 0 could still page. A data point flagged `FLAG_NO_RECORDED_VALUE` becomes a Prometheus
//! staleness marker in the collector's remote-write exporter; the SDK cannot set that flag,
//! so those points are built with opentelemetry-proto and sent on the same gRPC channel,
//! with the same resource and scope, right after the export of current values.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry::metrics::{AsyncInstrument, Meter, MeterProvider as _};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1 as proto_common;
use opentelemetry_proto::tonic::metrics::v1 as proto;
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
use opentelemetry_proto::transform::common::tonic::Attributes;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{
    Instrument, PeriodicReader, SdkMeterProvider, Stream, Temporality,
};
use opentelemetry_sdk::Resource;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tracing::{info, warn};

use crate::index::{Series, StaleSeries};
use crate::seinode::ConditionStatus;
use crate::state::Shared;
use crate::Error;

/// Metric names, exactly as they must arrive in Prometheus.
pub mod names {
    pub const READY: &str = "seinode_sidecar_tls_secret_ready";
    pub const STATUS: &str = "seinode_sidecar_tls_secret_status";
    pub const LAST_TRANSITION: &str =
        "seinode_sidecar_tls_secret_last_transition_timestamp_seconds";
    pub const UP: &str = "seinode_tls_watcher_up";
    pub const WATCH_EVENTS: &str = "seinode_tls_watcher_watch_events_total";
    pub const WATCH_ERRORS: &str = "seinode_tls_watcher_watch_errors_total";
    pub const OBJECTS: &str = "seinode_tls_watcher_objects";
    pub const DECODE_ERRORS: &str = "seinode_tls_watcher_decode_errors_total";
    pub const EXPORTS: &str = "seinode_tls_watcher_exports_total";
    pub const EXPORT_ERRORS: &str = "seinode_tls_watcher_export_errors_total";
    pub const STALENESS_MARKERS: &str = "seinode_tls_watcher_staleness_markers_total";
    pub const LAST_LIST: &str = "seinode_tls_watcher_last_list_timestamp_seconds";

    /// Every metric the watcher exports (docs/metrics.md documents each; tests/docs.rs checks).
    pub const ALL: [&str; 12] = [
        READY,
        STATUS,
        LAST_TRANSITION,
        UP,
        WATCH_EVENTS,
        WATCH_ERRORS,
        OBJECTS,
        DECODE_ERRORS,
        EXPORTS,
        EXPORT_ERRORS,
        STALENESS_MARKERS,
        LAST_LIST,
    ];
}

/// The instrumentation scope of every metric (also used for the staleness markers, so they
/// match the SDK's series exactly).
pub const SCOPE_NAME: &str = "seinode-tls-watcher";

/// How long after a change the event-driven export runs. Changes that arrive within this
/// window share one export, so a burst of 1,000 flips costs a few exports; short enough
/// that a flip is exported well within the 1 s budget.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// How long a staleness marker that could not be delivered is retried. After Prometheus'
/// default 5-minute lookback the series has gone stale by itself, so retrying longer is
/// pointless; this also bounds the memory held while the collector is down.
pub const STALENESS_RETRY_WINDOW: Duration = Duration::from_secs(300);

/// How often a persisting export failure is logged again at `warn`.
const EXPORT_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(300);

/// Where and how to export.
#[derive(Debug, Clone)]
pub struct ExportConfig {
    /// OTLP/gRPC endpoint, e.g. `http://otel-collector:4317` or `https://...`.
    pub endpoint: String,
    /// Periodic export interval.
    pub interval: Duration,
    /// Timeout of one export request.
    pub timeout: Duration,
    /// PEM CA bundle to verify the collector (implies TLS); otherwise the system roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// PEM client certificate and key for mTLS.
    pub client_cert_file: Option<std::path::PathBuf>,
    pub client_key_file: Option<std::path::PathBuf>,
    /// Largest number of series per instrument before the SDK folds the rest into one
    /// overflow series.
    pub max_series_per_metric: usize,
    /// Send staleness markers for every node series on shutdown.
    pub stale_on_shutdown: bool,
}

/// Builds the gRPC channel to the collector, shared by the SDK exporter and the staleness
/// sender so both use the same TLS settings. Must be called inside a tokio runtime.
pub fn build_channel(config: &ExportConfig) -> Result<Channel, Error> {
    let bad = |why: String| Error::Config(format!("OTLP endpoint {:?}: {why}", config.endpoint));
    let uri: http::Uri = config.endpoint.parse().map_err(|e| {
        bad(format!(
            "not a URL ({e}); use e.g. http://otel-collector:4317"
        ))
    })?;
    let scheme = uri.scheme_str().unwrap_or("");
    if !matches!(scheme, "http" | "https") || uri.host().is_none() {
        return Err(bad(
            "needs http:// or https:// and a host, e.g. http://otel-collector:4317".into(),
        ));
    }
    let mut endpoint = Endpoint::from_shared(config.endpoint.clone())
        .map_err(|e| bad(e.to_string()))?
        .timeout(config.timeout)
        .connect_timeout(config.timeout);
    let wants_tls =
        scheme == "https" || config.ca_file.is_some() || config.client_cert_file.is_some();
    if wants_tls {
        if scheme != "https" {
            return Err(bad(
                "TLS options are set but the endpoint is http://; use https://".into(),
            ));
        }
        let mut tls = ClientTlsConfig::new().with_native_roots();
        if let Some(host) = uri.host() {
            tls = tls.domain_name(host.to_owned());
        }
        if let Some(ca) = &config.ca_file {
            tls = tls.ca_certificate(Certificate::from_pem(read_file(ca, "--otlp-ca-file")?));
        }
        match (&config.client_cert_file, &config.client_key_file) {
            (Some(cert), Some(key)) => {
                tls = tls.identity(Identity::from_pem(
                    read_file(cert, "--otlp-client-cert-file")?,
                    read_file(key, "--otlp-client-key-file")?,
                ));
            }
            (None, None) => {}
            _ => {
                return Err(Error::Config(
                    "mTLS needs both --otlp-client-cert-file and --otlp-client-key-file".into(),
                ))
            }
        }
        endpoint = endpoint.tls_config(tls).map_err(|e| bad(e.to_string()))?;
    }
    Ok(endpoint.connect_lazy())
}

fn read_file(path: &std::path::Path, flag: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|e| Error::Config(format!("{flag} {}: cannot read it: {e}", path.display())))
}

/// The running export stage: the meter provider and what it needs to flush and shut down.
pub struct Exporter {
    provider: SdkMeterProvider,
    /// Keeps the observable instruments registered for the provider's lifetime.
    _instruments: Vec<Box<dyn std::any::Any + Send + Sync>>,
    shared: Arc<Shared>,
    stale_on_shutdown: bool,
}

impl Exporter {
    /// Builds the provider with an OTLP/gRPC exporter on `channel` (see [`build_channel`]).
    pub fn new(
        config: &ExportConfig,
        resource: Resource,
        channel: Channel,
        shared: Arc<Shared>,
    ) -> Result<Self, Error> {
        let otlp = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .with_channel(channel.clone())
            .with_timeout(config.timeout)
            .with_temporality(Temporality::Cumulative)
            .build()
            .map_err(|e| Error::Config(format!("cannot build the OTLP exporter: {e}")))?;
        let staleness = StalenessSender::new(
            MetricsServiceClient::new(channel),
            &resource,
            config.timeout,
        );
        let exporter = StalenessExporter::new(otlp, staleness, shared.clone());
        Ok(Self::with_exporter(exporter, config, resource, shared))
    }

    /// Builds the provider around any exporter (tests use the SDK's in-memory exporter).
    pub fn with_exporter<E: PushMetricExporter>(
        exporter: E,
        config: &ExportConfig,
        resource: Resource,
        shared: Arc<Shared>,
    ) -> Self {
        let reader = PeriodicReader::builder(exporter)
            .with_interval(config.interval)
            .build();
        let limit = config.max_series_per_metric;
        let provider = SdkMeterProvider::builder()
            .with_resource(resource)
            .with_reader(reader)
            .with_view(move |i: &Instrument| {
                i.name()
                    .starts_with("seinode_sidecar_tls_secret_")
                    .then(|| Stream::builder().with_cardinality_limit(limit).build().ok())
                    .flatten()
            })
            .build();
        let meter = provider.meter_with_scope(
            InstrumentationScope::builder(SCOPE_NAME)
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        );
        let instruments = register_instruments(&meter, &shared, limit);
        shared.mark_exporter_ready();
        Self {
            provider,
            _instruments: instruments,
            shared,
            stale_on_shutdown: config.stale_on_shutdown,
        }
    }

    /// Collects and exports now; blocks the calling thread until the export is done.
    pub fn flush_blocking(&self) -> OTelSdkResult {
        self.provider.force_flush()
    }

    /// Exports shortly after every verdict change, until `shutdown` completes.
    pub async fn run_event_driven(
        self: Arc<Self>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = self.shared.changed.notified() => {}
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(DEBOUNCE) => {}
            }
            // Only what changed: at 10,000 SeiNodes a full export is 30,000 points and 2.7 MB,
            // too much to repeat for every change under churn. The periodic export still
            // sends everything every interval.
            let changed = self.shared.index_mut().take_dirty();
            self.shared.set_only_changed(Some(changed));
            let this = self.clone();
            // force_flush waits for the reader thread; keep it off the async workers.
            let _ = tokio::task::spawn_blocking(move || this.flush_blocking()).await;
            self.shared.set_only_changed(None);
        }
    }

    /// Final export, then the provider's ordered shutdown. With `stale_on_shutdown`, every
    /// node series is first marked stale, since this process will no longer vouch for it.
    pub fn shutdown_blocking(&self) -> OTelSdkResult {
        if self.stale_on_shutdown {
            self.shared.index_mut().reset();
        }
        let flushed = self.provider.force_flush();
        let shut = self.provider.shutdown();
        flushed.and(shut)
    }
}

/// Logs, at most every 5 minutes, that more SeiNodes are in scope than the per-metric
/// series cap: the SDK then folds the excess into one `otel.metric.overflow` series.
/// Returns whether it logged.
fn warn_if_over_cap(in_scope: usize, max_series: usize, last_warned: &AtomicI64) -> bool {
    if in_scope < max_series {
        return false;
    }
    let now = jiff::Timestamp::now().as_second();
    let last = last_warned.load(Ordering::Relaxed);
    if now - last >= 300
        && last_warned
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        warn!(
            in_scope,
            max_series,
            "more SeiNodes in scope than --max-series: the excess is exported as one \
             otel.metric.overflow series, not per node; raise --max-series above the SeiNode count"
        );
        return true;
    }
    false
}

/// Registers every instrument; each callback reads the shared state at collection time.
fn register_instruments(
    meter: &Meter,
    shared: &Arc<Shared>,
    max_series: usize,
) -> Vec<Box<dyn std::any::Any + Send + Sync>> {
    let mut keep: Vec<Box<dyn std::any::Any + Send + Sync>> = Vec::new();
    let s = shared.clone();
    let cap_warned = AtomicI64::new(0);
    keep.push(Box::new(
        meter
            .u64_observable_gauge(names::READY)
            .with_description("1 when the SeiNode's SidecarTLSSecretReady condition is True, 0 when False; no sample when Unknown or missing")
            .with_callback(move |o: &dyn AsyncInstrument<u64>| {
                warn_if_over_cap(s.index().len(), max_series, &cap_warned);
                s.for_each_reported(|key, verdict| {
                    if let Some(value) = verdict.status.ready_value() {
                        o.observe(value, &node_labels(key));
                    }
                });
            })
            .build(),
    ));
    let s = shared.clone();
    keep.push(Box::new(
        meter
            .u64_observable_gauge(names::STATUS)
            .with_description("Always 1: one series per in-scope SeiNode carrying the condition's status and reason")
            .with_callback(move |o: &dyn AsyncInstrument<u64>| {
                s.for_each_reported(|key, verdict| {
                    let [name, ns] = node_labels(key);
                    // Key order (name, namespace, reason, status): see node_labels.
                    o.observe(1, &[name, ns, KeyValue::new("reason", verdict.reason.clone()), KeyValue::new("status", verdict.status.as_str())]);
                });
            })
            .build(),
    ));
    let s = shared.clone();
    keep.push(Box::new(
        meter
            .i64_observable_gauge(names::LAST_TRANSITION)
            .with_unit("s")
            .with_description("lastTransitionTime of the SidecarTLSSecretReady condition, as Unix seconds (broken since)")
            .with_callback(move |o: &dyn AsyncInstrument<i64>| {
                s.for_each_reported(|key, verdict| {
                    if let Some(since) = verdict.since {
                        o.observe(since, &node_labels(key));
                    }
                });
            })
            .build(),
    ));
    keep.push(Box::new(
        meter
            .u64_observable_gauge(names::UP)
            .with_description(
                "Always 1 while the watcher runs; alert on absent() to catch a dead pipeline",
            )
            .with_callback(|o: &dyn AsyncInstrument<u64>| o.observe(1, &[]))
            .build(),
    ));
    let s = shared.clone();
    keep.push(Box::new(
        meter
            .u64_observable_gauge(names::OBJECTS)
            .with_description("In-scope SeiNodes by condition status")
            .with_callback(move |o: &dyn AsyncInstrument<u64>| {
                let counts = s.index().count_by_status();
                for (status, count) in ConditionStatus::ALL.iter().zip(counts) {
                    o.observe(count, &[KeyValue::new("status", status.as_str())]);
                }
            })
            .build(),
    ));
    let s = shared.clone();
    keep.push(Box::new(
        meter
            .i64_observable_gauge(names::LAST_LIST)
            .with_unit("s")
            .with_description(
                "Unix time of the last completed (re)list of SeiNodes; 0 before the first",
            )
            .with_callback(move |o: &dyn AsyncInstrument<i64>| {
                o.observe(s.stats.last_list_unix.load(Ordering::Relaxed), &[])
            })
            .build(),
    ));
    macro_rules! labeled_counter {
        ($name:expr, $field:ident, $description:expr) => {{
            let s = shared.clone();
            keep.push(Box::new(
                meter
                    .u64_observable_counter($name)
                    .with_description($description)
                    .with_callback(move |o: &dyn AsyncInstrument<u64>| {
                        let counter = &s.stats.$field;
                        for (value, count) in counter.snapshot() {
                            o.observe(count, &[KeyValue::new(counter.label, value)]);
                        }
                    })
                    .build(),
            ));
        }};
    }
    labeled_counter!(
        names::WATCH_EVENTS,
        watch_events,
        "SeiNode watch events received, by event"
    );
    labeled_counter!(
        names::WATCH_ERRORS,
        watch_errors,
        "SeiNode watch errors, by kind"
    );
    labeled_counter!(
        names::DECODE_ERRORS,
        decode_errors,
        "SeiNodes skipped because their status could not be read, by kind"
    );
    labeled_counter!(
        names::EXPORT_ERRORS,
        export_errors,
        "Failed OTLP exports, by stage"
    );
    let s = shared.clone();
    keep.push(Box::new(
        meter
            .u64_observable_counter(names::EXPORTS)
            .with_description("Successful OTLP exports of current values")
            .with_callback(move |o: &dyn AsyncInstrument<u64>| {
                o.observe(s.stats.exports.load(Ordering::Relaxed), &[])
            })
            .build(),
    ));
    let s = shared.clone();
    keep.push(Box::new(
        meter
            .u64_observable_counter(names::STALENESS_MARKERS)
            .with_description("Staleness markers sent for SeiNode series that disappeared")
            .with_callback(move |o: &dyn AsyncInstrument<u64>| {
                o.observe(s.stats.staleness_markers.load(Ordering::Relaxed), &[])
            })
            .build(),
    ));
    keep
}

/// The labels of a node's series, in key order: the SDK stores an attribute set under both
/// the order it is given and its sorted order, so giving it sorted halves its memory.
fn node_labels(key: &crate::index::ObjectKey) -> [KeyValue; 2] {
    [
        KeyValue::new("name", key.name.clone()),
        KeyValue::new("namespace", key.namespace.clone()),
    ]
}

/// The labels a stale series had, as the SDK exported them.
fn stale_labels(stale: &StaleSeries) -> Vec<KeyValue> {
    let mut labels = node_labels(&stale.key).to_vec();
    if let Series::Status { status, reason } = &stale.series {
        labels.push(KeyValue::new("status", status.as_str()));
        labels.push(KeyValue::new("reason", reason.clone()));
    }
    labels
}

fn metric_name(series: &Series) -> &'static str {
    match series {
        Series::Ready => names::READY,
        Series::Status { .. } => names::STATUS,
        Series::LastTransition => names::LAST_TRANSITION,
    }
}

/// Sends staleness markers: gauge points flagged `FLAG_NO_RECORDED_VALUE`.
#[derive(Clone)]
pub struct StalenessSender {
    client: MetricsServiceClient<Channel>,
    resource: ProtoResource,
    timeout: Duration,
}

impl StalenessSender {
    pub fn new(
        client: MetricsServiceClient<Channel>,
        resource: &Resource,
        timeout: Duration,
    ) -> Self {
        let attributes = Attributes::from(
            resource
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
        );
        Self {
            client,
            resource: ProtoResource {
                attributes: attributes.0,
                ..Default::default()
            },
            timeout,
        }
    }

    async fn send(&self, stale: &[StaleSeries]) -> Result<(), tonic::Status> {
        let request = staleness_request(&self.resource, stale, SystemTime::now());
        let mut client = self.client.clone();
        let mut request = tonic::Request::new(request);
        request.set_timeout(self.timeout);
        client.export(request).await.map(|_| ())
    }
}

/// The OTLP request that marks `stale` series stale at `now`.
pub fn staleness_request(
    resource: &ProtoResource,
    stale: &[StaleSeries],
    now: SystemTime,
) -> ExportMetricsServiceRequest {
    let now_nanos = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut metrics: Vec<proto::Metric> = Vec::new();
    for item in stale {
        let name = metric_name(&item.series);
        let point = proto::NumberDataPoint {
            attributes: Attributes::from(stale_labels(item)).0,
            time_unix_nano: now_nanos,
            flags: proto::DataPointFlags::NoRecordedValueMask as u32,
            value: None,
            ..Default::default()
        };
        match metrics.iter_mut().find(|m| m.name == name) {
            Some(proto::Metric {
                data: Some(proto::metric::Data::Gauge(g)),
                ..
            }) => g.data_points.push(point),
            _ => metrics.push(proto::Metric {
                name: name.to_owned(),
                unit: if matches!(item.series, Series::LastTransition) {
                    "s".into()
                } else {
                    String::new()
                },
                data: Some(proto::metric::Data::Gauge(proto::Gauge {
                    data_points: vec![point],
                })),
                ..Default::default()
            }),
        }
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![proto::ResourceMetrics {
            resource: Some(resource.clone()),
            scope_metrics: vec![proto::ScopeMetrics {
                scope: Some(proto_common::InstrumentationScope {
                    name: SCOPE_NAME.into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// What an operator should check, from the text of a gRPC/transport error. The raw text
/// stays in the line; the hint names the likely cause in plain words.
pub fn export_hint(error: &str) -> Option<&'static str> {
    let has = |needle: &str| error.contains(needle);
    if has("InvalidContentType") || has("corrupt message") {
        Some("the collector does not speak TLS on this port: use an http:// endpoint, or enable TLS on its OTLP receiver")
    } else if has("UnknownIssuer") || has("invalid peer certificate") || has("certificate") {
        Some("the collector's certificate is not trusted or does not match: check --otlp-ca-file and the endpoint's host name")
    } else if has("Connection refused") || has("tcp connect error") || has("dns error") {
        Some("nothing answers at the OTLP endpoint: is the collector running and reachable?")
    } else if has("deadline") || has("Timeout") || has("timed out") || has("DeadlineExceeded") {
        Some("the collector did not answer within --export-timeout")
    } else {
        None
    }
}

#[derive(Debug, Default)]
struct FailureLog {
    failing_since: Option<Instant>,
    last_logged: Option<Instant>,
}

/// Wraps the OTLP exporter: exports current values, then staleness markers for series that
/// disappeared; counts and logs (rate-limited) failures of both.
pub struct StalenessExporter<E> {
    inner: E,
    sender: StalenessSender,
    shared: Arc<Shared>,
    /// Markers not delivered yet, with when they were first due; bounded by
    /// [`STALENESS_RETRY_WINDOW`].
    pending: Mutex<Vec<(StaleSeries, Instant)>>,
    /// Failure bookkeeping for the log: since when exports fail, and when a failure was
    /// last logged at `warn` (at most once per [`EXPORT_ERROR_LOG_INTERVAL`], whatever the
    /// stage, so an outage costs a line every few minutes, not one per export).
    failures: Mutex<FailureLog>,
}

impl<E> StalenessExporter<E> {
    pub fn new(inner: E, sender: StalenessSender, shared: Arc<Shared>) -> Self {
        Self {
            inner,
            sender,
            shared,
            pending: Mutex::new(Vec::new()),
            failures: Mutex::new(FailureLog::default()),
        }
    }

    fn failed(&self, stage: &'static str, error: &dyn std::fmt::Display) {
        self.shared.stats.export_errors.inc(stage);
        let mut log = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        log.failing_since.get_or_insert(now);
        if log
            .last_logged
            .is_some_and(|at| now.duration_since(at) < EXPORT_ERROR_LOG_INTERVAL)
        {
            return;
        }
        log.last_logged = Some(now);
        let text = error.to_string();
        let hint = export_hint(&text)
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        warn!(stage, "OTLP export to the collector failed{hint}: {text}; the watch continues and the next export retries");
    }

    fn succeeded(&self) {
        let mut log = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(since) = log.failing_since.take() {
            log.last_logged = None;
            info!(failing_for = ?since.elapsed(), "OTLP export to the collector recovered");
        }
    }

    /// The markers to send now: new ones plus undelivered ones still within the retry
    /// window, minus any whose series exists again.
    fn due_markers(&self) -> Vec<StaleSeries> {
        let fresh = self.shared.index_mut().take_stale_series();
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        pending.retain(|(_, since)| now.duration_since(*since) < STALENESS_RETRY_WINDOW);
        pending.extend(fresh.into_iter().map(|s| (s, now)));
        let index = self.shared.index();
        pending.retain(|(s, _)| {
            !index
                .get(&s.key)
                .is_some_and(|v| Series::of(v).any(|now| now == s.series))
        });
        pending.iter().map(|(s, _)| s.clone()).collect()
    }
}

impl<E: PushMetricExporter> PushMetricExporter for StalenessExporter<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = self.export_and_mark(metrics).await;
        // The request and its encoding are freed by now: give the pages back.
        crate::memory::release_free_memory();
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

impl<E: PushMetricExporter> StalenessExporter<E> {
    /// Exports the SDK's batch, then the staleness markers that are due.
    async fn export_and_mark(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = self.inner.export(metrics).await;
        match &result {
            Ok(()) => {
                self.shared.stats.exports.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => self.failed("metrics", e),
        }
        let due = self.due_markers();
        if due.is_empty() {
            if result.is_ok() {
                self.succeeded();
            }
            return result;
        }
        match self.sender.send(&due).await {
            Ok(()) => {
                self.shared
                    .stats
                    .staleness_markers
                    .fetch_add(due.len() as u64, Ordering::Relaxed);
                let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                pending.retain(|(s, _)| !due.contains(s));
                if result.is_ok() {
                    self.succeeded();
                }
                result
            }
            Err(status) => {
                self.failed("staleness", &status.message());
                result.and(Err(OTelSdkError::InternalFailure(format!(
                    "staleness markers: {status}"
                ))))
            }
        }
    }
}

#[cfg(test)]
#[path = "export_tests.rs"]
mod tests;
