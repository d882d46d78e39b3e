//! Encodes object series straight into OTLP protobuf (opentelemetry-proto): each value
//! and staleness marker of an object becomes a gauge point with its labels, grouped by
//! metric under the watcher's resource and scope. Cutting the points into requests under a
//! byte budget is `chunk.rs`.
//!
//! ```text
//!   ObjectUpdate { key, values, stale } ──points_of──▶ [(metric, unit, point)]
//!       ──Builder (one metric per name)──▶ Encoder::request ──▶ ExportMetricsServiceRequest
//! ```
//!
//! A marker is a gauge point flagged `FLAG_NO_RECORDED_VALUE`, which the collector's
//! remote-write exporter turns into a Prometheus staleness marker. The SDK cannot set that
//! flag, and its observable instruments cap and preallocate series per instrument, which is
//! why object series do not go through it (docs/architecture.md).

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1 as proto;
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;

pub use super::chunk::{Chunk, Chunker};
use super::names;
use super::series::Series;
use crate::index::ObjectKey;
use crate::resource::WatchedResource;

/// What one export says about one object: its current series and the ones to mark stale.
#[derive(Debug, Clone)]
pub struct ObjectUpdate<'a> {
    pub key: &'a ObjectKey,
    pub resource: &'a WatchedResource,
    pub values: Vec<(Series, i64)>,
    pub stale: Vec<Series>,
}

/// Builds requests with the watcher's resource and scope.
#[derive(Debug, Clone)]
pub struct Encoder {
    pub resource: ProtoResource,
    pub scope: InstrumentationScope,
    /// Largest uncompressed request; see `--max-request-bytes`.
    pub max_request_bytes: usize,
}

impl Encoder {
    /// Replaces the `service.instance.id` resource attribute (the `instance` label): under
    /// leader election every replica exports object series as the Lease's name, so that a
    /// failover continues the same series.
    pub fn set_instance(&mut self, instance: &str) {
        use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
        self.resource
            .attributes
            .retain(|kv| kv.key != "service.instance.id");
        self.resource.attributes.push(KeyValue {
            key: "service.instance.id".into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(instance.to_owned())),
            }),
            ..Default::default()
        });
    }

    /// The request that carries `builder`'s metrics, with the watcher's resource and scope.
    pub(super) fn request(&self, builder: Builder) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![proto::ResourceMetrics {
                resource: Some(self.resource.clone()),
                scope_metrics: vec![proto::ScopeMetrics {
                    scope: Some(self.scope.clone()),
                    metrics: builder.metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }
}

/// The metrics of one request, one per name, and what they hold so far.
#[derive(Default)]
pub(super) struct Builder {
    metrics: Vec<proto::Metric>,
    by_name: HashMap<String, usize>,
    /// Size of the points so far (the budget is checked on points).
    pub(super) bytes: usize,
    /// Staleness markers so far.
    pub(super) markers: usize,
}

impl Builder {
    pub(super) fn push(&mut self, name: &str, unit: &'static str, point: proto::NumberDataPoint) {
        let at = match self.by_name.get(name) {
            Some(at) => *at,
            None => {
                self.metrics.push(proto::Metric {
                    name: name.to_owned(),
                    unit: unit.to_owned(),
                    data: Some(proto::metric::Data::Gauge(proto::Gauge::default())),
                    ..Default::default()
                });
                self.by_name.insert(name.to_owned(), self.metrics.len() - 1);
                self.metrics.len() - 1
            }
        };
        if let Some(proto::metric::Data::Gauge(g)) = &mut self.metrics[at].data {
            g.data_points.push(point);
        }
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

/// (metric name, unit, point) for every value and marker of one object.
pub(super) fn points_of<'a>(
    update: &'a ObjectUpdate<'_>,
    now_nanos: u64,
) -> Vec<(&'a str, &'static str, proto::NumberDataPoint)> {
    let values = update.values.iter().map(|(s, v)| (s, Some(*v)));
    let stale = update.stale.iter().map(|s| (s, None));
    values
        .chain(stale)
        .map(|(series, value)| {
            let mut attributes = vec![kv("name", &update.key.name)];
            if !update.key.namespace.is_empty() {
                attributes.push(kv("namespace", &update.key.namespace));
            }
            let r = update.resource;
            let (metric, unit): (&str, &'static str) = match series {
                Series::Condition {
                    type_,
                    status,
                    reason,
                } => {
                    attributes.push(kv("type", type_));
                    attributes.push(kv("status", status.as_str()));
                    attributes.push(kv("reason", reason));
                    (&r.condition_metric, "")
                }
                Series::Since { type_ } => {
                    attributes.push(kv("type", type_));
                    (&r.since_metric, "s")
                }
                Series::Outdated { type_ } => {
                    attributes.push(kv("type", type_));
                    (&r.outdated_metric, "")
                }
                Series::TlsReady => (names::READY, ""),
                Series::TlsStatus { status, reason } => {
                    attributes.push(kv("status", status.as_str()));
                    attributes.push(kv("reason", reason));
                    (names::STATUS, "")
                }
                Series::TlsSince => (names::LAST_TRANSITION, "s"),
            };
            let point = proto::NumberDataPoint {
                attributes,
                time_unix_nano: now_nanos,
                value: value.map(proto::number_data_point::Value::AsInt),
                flags: match value {
                    Some(_) => 0,
                    None => proto::DataPointFlags::NoRecordedValueMask as u32,
                },
                ..Default::default()
            };
            (metric, unit, point)
        })
        .collect()
}

#[cfg(test)]
#[path = "encode_tests.rs"]
pub(super) mod tests;
