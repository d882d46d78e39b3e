//! The watcher's own metrics (heartbeat, objects, watch and export counters) through the
//! OpenTelemetry SDK: a `PeriodicReader` over the OTLP exporter, with observable
//! instruments (instruments.rs) that read the shared counters at collection time. A few dozen series, so
//! the SDK's cardinality handling is no concern here (object series do not go through it).

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::Resource;

mod instruments;

use super::failures::{Failing, FailureLog};
use super::SCOPE_NAME;
use crate::state::Shared;
use crate::stats::ExportStage;

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
        let instruments = instruments::register(&meter, shared);
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
