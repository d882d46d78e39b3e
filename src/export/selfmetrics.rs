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

use super::failures::{Failing, FailureLog};
use super::{names, SCOPE_NAME};
use crate::seinode::ConditionStatus;
use crate::state::Shared;
use crate::stats::{Counter, ExportStage, Label, ResourceStats};

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
        failures: Arc<FailureLog>,
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
    failures: Arc<FailureLog>,
}

impl<E: PushMetricExporter> PushMetricExporter for CountingExporter<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = self.inner.export(metrics).await;
        match &result {
            Ok(()) => {
                self.failures.succeeded(Failing::SelfMetrics, &[]);
            }
            Err(e) => {
                self.shared
                    .stats
                    .export_errors
                    .inc(ExportStage::SelfMetrics);
                self.failures.failed(Failing::SelfMetrics, e);
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

/// A gauge with one value per watched resource, labelled `resource`, read by `values` at
/// collection time (in the order of `stats.resources`).
fn per_resource_gauge(
    meter: &Meter,
    shared: &Arc<Shared>,
    name: &'static str,
    description: &'static str,
    values: impl Fn(&Shared) -> Vec<u64> + Send + Sync + 'static,
) -> Box<dyn std::any::Any + Send + Sync> {
    let s = shared.clone();
    Box::new(
        meter
            .u64_observable_gauge(name)
            .with_description(description)
            .with_callback(move |o: &dyn AsyncInstrument<u64>| {
                for (stats, value) in s.stats.resources.iter().zip(values(&s)) {
                    o.observe(value, &[KeyValue::new("resource", stats.label.clone())]);
                }
            })
            .build(),
    )
}

/// A counter per watched resource and value of the label `L`.
fn per_resource_counter<L: Label>(
    meter: &Meter,
    shared: &Arc<Shared>,
    name: &'static str,
    description: &'static str,
    counter: fn(&ResourceStats) -> &Counter<L>,
) -> Box<dyn std::any::Any + Send + Sync> {
    let s = shared.clone();
    Box::new(
        meter
            .u64_observable_counter(name)
            .with_description(description)
            .with_callback(move |o: &dyn AsyncInstrument<u64>| {
                for stats in &s.stats.resources {
                    for (value, count) in counter(stats).snapshot() {
                        o.observe(
                            count,
                            &[
                                KeyValue::new(L::KEY, value.as_str()),
                                KeyValue::new("resource", stats.label.clone()),
                            ],
                        );
                    }
                }
            })
            .build(),
    )
}

/// A gauge or counter without labels, read by `value` at collection time.
fn single(
    meter: &Meter,
    shared: &Arc<Shared>,
    name: &'static str,
    description: &'static str,
    counter: bool,
    value: impl Fn(&Shared) -> u64 + Send + Sync + 'static,
) -> Box<dyn std::any::Any + Send + Sync> {
    let s = shared.clone();
    let callback = move |o: &dyn AsyncInstrument<u64>| o.observe(value(&s), &[]);
    if counter {
        Box::new(
            meter
                .u64_observable_counter(name)
                .with_description(description)
                .with_callback(callback)
                .build(),
        )
    } else {
        Box::new(
            meter
                .u64_observable_gauge(name)
                .with_description(description)
                .with_callback(callback)
                .build(),
        )
    }
}

fn register(meter: &Meter, shared: &Arc<Shared>) -> Kept {
    let n = shared.stats.resources.len();
    let s = shared.clone();
    vec![
        single(
            meter,
            shared,
            names::UP,
            "Always 1 while the watcher runs; alert on absent() to catch a dead pipeline",
            false,
            |_| 1,
        ),
        per_resource_gauge(
            meter,
            shared,
            names::OBJECTS,
            "Watched objects in the index, per resource",
            move |s| s.index().count_by_resource(n),
        ),
        Box::new(
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
        ),
        last_list_gauge(meter, shared),
        single(
            meter,
            shared,
            names::LEADER,
            "1 on the replica that exports the object series (always, without leader election), 0 on a standby",
            false,
            |s| u64::from(s.is_leader()),
        ),
        per_resource_gauge(
            meter,
            shared,
            names::RESOURCE_BLIND,
            "1 while the resource's watch has failed for 90 s or more: its object series are withdrawn",
            |s| s.blind_resources().into_iter().map(u64::from).collect(),
        ),
        per_resource_gauge(
            meter,
            shared,
            names::UNDECODABLE,
            "Objects whose status cannot be decoded now; their series are withdrawn after 90 s",
            move |s| s.index().count_undecodable_by_resource(n),
        ),
        per_resource_counter(
            meter,
            shared,
            names::WATCH_EVENTS,
            "Watch events received, by resource and event",
            |r| &r.watch_events,
        ),
        per_resource_counter(
            meter,
            shared,
            names::WATCH_ERRORS,
            "Watch errors, by resource and kind",
            |r| &r.watch_errors,
        ),
        per_resource_counter(
            meter,
            shared,
            names::DECODE_ERRORS,
            "Objects or conditions skipped because they could not be read, by resource and kind",
            |r| &r.decode_errors,
        ),
        export_errors_counter(meter, shared),
        single(
            meter,
            shared,
            names::EXPORTS,
            "Object exports delivered whole (periodic and event-driven)",
            true,
            |s| s.stats.exports.load(Ordering::Relaxed),
        ),
        single(
            meter,
            shared,
            names::STALENESS_MARKERS,
            "Staleness markers delivered for object series that disappeared",
            true,
            |s| s.stats.staleness_markers.load(Ordering::Relaxed),
        ),
    ]
}

/// The last completed (re)list per resource, in Unix seconds (an i64 gauge).
fn last_list_gauge(meter: &Meter, shared: &Arc<Shared>) -> Box<dyn std::any::Any + Send + Sync> {
    let s = shared.clone();
    Box::new(
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
    )
}

/// Failed export requests by stage.
fn export_errors_counter(
    meter: &Meter,
    shared: &Arc<Shared>,
) -> Box<dyn std::any::Any + Send + Sync> {
    let s = shared.clone();
    Box::new(
        meter
            .u64_observable_counter(names::EXPORT_ERRORS)
            .with_description("Failed OTLP export requests, by stage")
            .with_callback(move |o: &dyn AsyncInstrument<u64>| {
                for (stage, count) in s.stats.export_errors.snapshot() {
                    o.observe(count, &[KeyValue::new(ExportStage::KEY, stage.as_str())]);
                }
            })
            .build(),
    )
}
