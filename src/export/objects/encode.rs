//! Encodes object series into OTLP protobuf bytes: each value and staleness marker of an
//! object becomes a gauge point with its labels, grouped by metric under the watcher's
//! resource and scope. Cutting the points into requests under a byte budget is `chunk.rs`;
//! the wire format itself is `wire.rs`.
//!
//! ```text
//!   ObjectUpdate { key, values, stale } ──labels_of──▶ (metric, unit, labels, value)
//!       ──Builder (the points' bytes, one buffer per metric)──▶ Encoder::request ──▶ bytes
//! ```
//!
//! A marker is a gauge point flagged `FLAG_NO_RECORDED_VALUE`, which the collector's
//! remote-write exporter turns into a Prometheus staleness marker. The SDK cannot set that
//! flag, and its observable instruments cap and preallocate series per instrument, which is
//! why object series do not go through it (docs/architecture.md).

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
use prost::Message;

pub use super::chunk::Chunk;
use super::series::Series;
use super::wire;
use crate::export::names;
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
    /// A `cluster` label written on every point (`--otlp-receiver prometheus`: no
    /// collector makes it from the resource); `None` with a collector.
    pub cluster_label: Option<String>,
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

    /// The request that carries `builder`'s metrics, with the watcher's resource and scope,
    /// as protobuf bytes.
    pub(super) fn request(&self, builder: Builder) -> Vec<u8> {
        let resource = self.resource.encode_to_vec();
        let scope = self.scope.encode_to_vec();
        let metric_len = |m: &MetricPoints| {
            wire::field_len(m.name.len())
                + if m.unit.is_empty() {
                    0
                } else {
                    wire::field_len(m.unit.len())
                }
                + wire::field_len(m.points.len())
        };
        let scope_metrics = wire::field_len(scope.len())
            + builder
                .metrics
                .iter()
                .map(|m| wire::field_len(metric_len(m)))
                .sum::<usize>();
        let resource_metrics = wire::field_len(resource.len()) + wire::field_len(scope_metrics);
        let mut out = Vec::with_capacity(wire::field_len(resource_metrics));
        wire::open(&mut out, wire::FIRST, resource_metrics);
        wire::bytes_field(&mut out, wire::FIRST, &resource);
        wire::open(&mut out, wire::SECOND, scope_metrics);
        wire::bytes_field(&mut out, wire::FIRST, &scope);
        for m in &builder.metrics {
            wire::open(&mut out, wire::SECOND, metric_len(m));
            wire::bytes_field(&mut out, wire::FIRST, m.name.as_bytes());
            if !m.unit.is_empty() {
                wire::bytes_field(&mut out, wire::UNIT, m.unit.as_bytes());
            }
            wire::bytes_field(&mut out, wire::GAUGE, &m.points);
        }
        out
    }
}

/// One metric of a request being built: its encoded points so far.
struct MetricPoints {
    name: String,
    unit: &'static str,
    points: Vec<u8>,
}

/// The metrics of one request, one per name, and what they hold so far.
#[derive(Default)]
pub(super) struct Builder {
    metrics: Vec<MetricPoints>,
    /// Size of the points so far (the budget is checked on points).
    pub(super) bytes: usize,
    /// Staleness markers so far.
    pub(super) markers: usize,
}

impl Builder {
    /// Appends one point (a marker if `value` is `None`) to its metric.
    pub(super) fn push(&mut self, point: &PointOf<'_>, now_nanos: u64) {
        let at = match self.metrics.iter().position(|m| m.name == point.metric) {
            Some(at) => at,
            None => {
                self.metrics.push(MetricPoints {
                    name: point.metric.to_owned(),
                    unit: point.unit,
                    points: Vec::new(),
                });
                self.metrics.len() - 1
            }
        };
        wire::point(
            &mut self.metrics[at].points,
            point.labels(),
            point.extra(),
            now_nanos,
            point.value,
        );
        if point.value.is_none() {
            self.markers += 1;
        }
    }
}

/// One point of an object: its metric, unit, labels and value (`None`: a marker).
pub(super) struct PointOf<'a> {
    pub(super) metric: &'a str,
    pub(super) unit: &'static str,
    labels: [(&'static str, &'a str); 6],
    count: usize,
    /// The info series' copied labels (`Series::Info`); empty for every other series.
    extra: &'a [(std::sync::Arc<str>, std::sync::Arc<str>)],
    pub(super) value: Option<i64>,
}

impl<'a> PointOf<'a> {
    pub(super) fn labels(&self) -> &[(&'static str, &'a str)] {
        &self.labels[..self.count]
    }

    pub(super) fn extra(&self) -> &'a [(std::sync::Arc<str>, std::sync::Arc<str>)] {
        self.extra
    }

    /// Size of the point as a `data_points` entry.
    pub(super) fn encoded_len(&self) -> usize {
        wire::field_len(wire::point_len(self.labels(), self.extra, self.value))
    }
}

/// Every value and marker of one object, as points, with `cluster` (the encoder's
/// [`Encoder::cluster_label`]) on each if given.
pub(super) fn points_of<'a>(
    update: &'a ObjectUpdate<'_>,
    cluster: Option<&'a str>,
) -> impl Iterator<Item = PointOf<'a>> {
    let values = update.values.iter().map(|(s, v)| (s, Some(*v)));
    let stale = update.stale.iter().map(|s| (s, None));
    values.chain(stale).map(move |(series, value)| {
        let r = update.resource;
        let mut labels = [("", ""); 6];
        labels[0] = ("name", &*update.key.name);
        let mut count = 1;
        if !update.key.namespace.is_empty() {
            labels[1] = ("namespace", &*update.key.namespace);
            count = 2;
        }
        let mut add = |key: &'static str, value: &'a str| {
            labels[count] = (key, value);
            count += 1;
        };
        let mut extra: &'a [(std::sync::Arc<str>, std::sync::Arc<str>)] = &[];
        let (metric, unit): (&str, &'static str) = match series {
            Series::Condition {
                type_,
                status,
                reason,
            } => {
                add("type", type_);
                add("status", status.as_str());
                add("reason", reason);
                (&r.condition_metric, "")
            }
            Series::Since { type_ } => {
                add("type", type_);
                (&r.since_metric, "s")
            }
            Series::Outdated { type_ } => {
                add("type", type_);
                (&r.outdated_metric, "")
            }
            Series::Truncated => (&r.truncated_metric, ""),
            Series::TlsReady => (names::READY, ""),
            Series::TlsStatus { status, reason } => {
                add("status", status.as_str());
                add("reason", reason);
                (names::STATUS, "")
            }
            Series::TlsSince => (names::LAST_TRANSITION, "s"),
            Series::Info { labels } => {
                extra = labels;
                (&r.labels_metric, "")
            }
        };
        if let Some(cluster) = cluster {
            add("cluster", cluster);
        }
        PointOf {
            metric,
            unit,
            labels,
            count,
            extra,
            value,
        }
    })
}

#[cfg(test)]
pub(super) mod tests;
