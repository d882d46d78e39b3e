//! The watcher's own metrics (heartbeat, objects, watch and export counters) through the
//! OpenTelemetry SDK: a `PeriodicReader` over the OTLP exporter, with observable
//! instruments that read the shared counters at collection time. A few dozen series, so
//! the SDK's cardinality handling is no concern here (object series do not go through it).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::metrics::{AsyncInstrument, Meter, MeterProvider as _};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::Resource;

use super::failures::FailureLog;
use super::{names, SCOPE_NAME};
use crate::seinode::ConditionStatus;
use crate::state::Shared;

/// The meter provider of the self-metrics and the instruments it keeps registered.
pub struct SelfMetrics {
    provider: SdkMeterProvider,
    /// Keeps the observable instruments registered for the provider's lifetime.
    _instruments: Vec<Box<dyn std::any::Any + Send + Sync>>,
}

impl SelfMetrics {
    /// Builds the provider around any exporter (tests use the SDK's in-memory exporter).
    pub fn new<E: PushMetricExporter>(
        exporter: E,
        interval: Duration,
        resource: Resource,
        shared: &Arc<Shared>,
        failures: Arc<FailureLog<4>>,
    ) -> Self {
        let reader = PeriodicReader::builder(CountingExporter {
            inner: exporter,
            shared: shared.clone(),
            failures,
        })
        .with_interval(interval)
        .build();
        let provider = SdkMeterProvider::builder()
            .with_resource(resource)
            .with_reader(reader)
            .build();
        let meter = provider.meter_with_scope(
            InstrumentationScope::builder(SCOPE_NAME)
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        );
        let instruments = register(&meter, shared);
        Self {
            provider,
            _instruments: instruments,
        }
    }

    /// Exports once now, in the background, so the heartbeat does not wait a whole
    /// interval after start.
    pub fn flush_soon(&self) {
        let provider = self.provider.clone();
        tokio::task::spawn_blocking(move || provider.force_flush());
    }

    /// The final export and the provider's ordered shutdown; blocks.
    pub fn shutdown_blocking(&self) -> OTelSdkResult {
        self.provider.shutdown()
    }
}

/// Counts and logs the SDK exporter's failures under the `self` stage.
struct CountingExporter<E> {
    inner: E,
    shared: Arc<Shared>,
    failures: Arc<FailureLog<4>>,
}

impl<E: PushMetricExporter> PushMetricExporter for CountingExporter<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = self.inner.export(metrics).await;
        match &result {
            Ok(()) => {
                self.failures.succeeded("self", &[]);
            }
            Err(e) => {
                self.shared.stats.export_errors.inc("self");
                self.failures.failed("self", e);
            }
        }
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

type Kept = Vec<Box<dyn std::any::Any + Send + Sync>>;

fn register(meter: &Meter, shared: &Arc<Shared>) -> Kept {
    let mut keep: Kept = Vec::new();
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
            .with_description("Watched objects in the index, per resource")
            .with_callback(move |o: &dyn AsyncInstrument<u64>| {
                let counts = s.index().count_by_resource(s.stats.resources.len());
                for (stats, count) in s.stats.resources.iter().zip(counts) {
                    o.observe(count, &[KeyValue::new("resource", stats.label.clone())]);
                }
            })
            .build(),
    ));
    let s = shared.clone();
    keep.push(Box::new(
        meter
            .u64_observable_gauge(names::TLS_OBJECTS)
            .with_description("SeiNodes with sidecar TLS (the seed's condition), by its status")
            .with_callback(move |o: &dyn AsyncInstrument<u64>| {
                let counts = s.index().count_tls_by_status();
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
                "Unix time of the last completed (re)list, per resource; 0 before the first",
            )
            .with_callback(move |o: &dyn AsyncInstrument<i64>| {
                for stats in &s.stats.resources {
                    o.observe(
                        stats.last_list_unix.load(Ordering::Relaxed),
                        &[KeyValue::new("resource", stats.label.clone())],
                    );
                }
            })
            .build(),
    ));
    let s = shared.clone();
    keep.push(Box::new(
        meter
            .u64_observable_gauge(names::LEADER)
            .with_description(
                "1 on the replica that exports the object series (always, without leader election), 0 on a standby",
            )
            .with_callback(move |o: &dyn AsyncInstrument<u64>| {
                o.observe(u64::from(s.is_leader()), &[])
            })
            .build(),
    ));
    let s = shared.clone();
    keep.push(Box::new(
        meter
            .u64_observable_gauge(names::RESOURCE_BLIND)
            .with_description(
                "1 while the resource's watch has failed for 90 s or more: its object series are withdrawn",
            )
            .with_callback(move |o: &dyn AsyncInstrument<u64>| {
                let blind = s.blind_resources();
                for (stats, blind) in s.stats.resources.iter().zip(blind) {
                    o.observe(
                        u64::from(blind),
                        &[KeyValue::new("resource", stats.label.clone())],
                    );
                }
            })
            .build(),
    ));
    let s = shared.clone();
    keep.push(Box::new(
        meter
            .u64_observable_gauge(names::UNDECODABLE)
            .with_description(
                "Objects whose status cannot be decoded now; their series are withdrawn after 90 s",
            )
            .with_callback(move |o: &dyn AsyncInstrument<u64>| {
                let counts = s
                    .index()
                    .count_undecodable_by_resource(s.stats.resources.len());
                for (stats, count) in s.stats.resources.iter().zip(counts) {
                    o.observe(count, &[KeyValue::new("resource", stats.label.clone())]);
                }
            })
            .build(),
    ));
    macro_rules! per_resource_counter {
        ($name:expr, $field:ident, $description:expr) => {{
            let s = shared.clone();
            keep.push(Box::new(
                meter
                    .u64_observable_counter($name)
                    .with_description($description)
                    .with_callback(move |o: &dyn AsyncInstrument<u64>| {
                        for stats in &s.stats.resources {
                            let counter = &stats.$field;
                            for (value, count) in counter.snapshot() {
                                o.observe(
                                    count,
                                    &[
                                        KeyValue::new(counter.label, value),
                                        KeyValue::new("resource", stats.label.clone()),
                                    ],
                                );
                            }
                        }
                    })
                    .build(),
            ));
        }};
    }
    per_resource_counter!(
        names::WATCH_EVENTS,
        watch_events,
        "Watch events received, by resource and event"
    );
    per_resource_counter!(
        names::WATCH_ERRORS,
        watch_errors,
        "Watch errors, by resource and kind"
    );
    per_resource_counter!(
        names::DECODE_ERRORS,
        decode_errors,
        "Objects or conditions skipped because they could not be read, by resource and kind"
    );
    let s = shared.clone();
    keep.push(Box::new(
        meter
            .u64_observable_counter(names::EXPORT_ERRORS)
            .with_description("Failed OTLP export requests, by stage")
            .with_callback(move |o: &dyn AsyncInstrument<u64>| {
                let counter = &s.stats.export_errors;
                for (value, count) in counter.snapshot() {
                    o.observe(count, &[KeyValue::new(counter.label, value)]);
                }
            })
            .build(),
    ));
    let s = shared.clone();
    keep.push(Box::new(
        meter
            .u64_observable_counter(names::EXPORTS)
            .with_description("Object exports delivered whole (periodic and event-driven)")
            .with_callback(move |o: &dyn AsyncInstrument<u64>| {
                o.observe(s.stats.exports.load(Ordering::Relaxed), &[])
            })
            .build(),
    ));
    let s = shared.clone();
    keep.push(Box::new(
        meter
            .u64_observable_counter(names::STALENESS_MARKERS)
            .with_description("Staleness markers delivered for object series that disappeared")
            .with_callback(move |o: &dyn AsyncInstrument<u64>| {
                o.observe(s.stats.staleness_markers.load(Ordering::Relaxed), &[])
            })
            .build(),
    ));
    keep
}
