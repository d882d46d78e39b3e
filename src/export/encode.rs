//! Encodes object series straight into OTLP requests (opentelemetry-proto), values and
//! staleness markers side by side, cut into requests no larger than a byte budget.
//!
//! ```text
//!   [ObjectUpdate { key, values, stale }] ──encode──▶ [Chunk { request, objects: 0..k }]
//!        one object's points never span two requests, so a reason change (the new pair's
//!        value and the old pair's marker) always lands in Prometheus at one timestamp
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
use prost::Message;

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

/// One request and which updates (by position in the input) it carries. Updates with no
/// point may fall outside every chunk: they need no delivery.
#[derive(Debug)]
pub struct Chunk {
    pub request: ExportMetricsServiceRequest,
    pub objects: std::ops::Range<usize>,
    /// Staleness markers in this request.
    pub markers: usize,
    /// Uncompressed size, as the collector's receive limit counts it.
    pub bytes: usize,
}

/// Builds requests with the watcher's resource and scope.
#[derive(Debug, Clone)]
pub struct Encoder {
    pub resource: ProtoResource,
    pub scope: InstrumentationScope,
    /// Largest uncompressed request; see `--max-request-bytes`.
    pub max_request_bytes: usize,
}

/// Room kept for the request's envelope (resource, scope, metric names and descriptions):
/// the budget is checked on points, this keeps the whole request below it.
const ENVELOPE_BYTES: usize = 16 * 1024;

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

    /// Encodes `updates` at time `now_nanos` into as few requests as the budget allows
    /// (all at once: for tests and small exports; the exporter streams with [`Chunker`]).
    pub fn encode(&self, updates: &[ObjectUpdate<'_>], now_nanos: u64) -> Vec<Chunk> {
        let mut chunker = self.chunker(now_nanos);
        let mut chunks: Vec<Chunk> = updates
            .iter()
            .filter_map(|update| chunker.push(update))
            .collect();
        chunks.extend(chunker.finish());
        chunks
    }

    /// A chunker that cuts requests one at a time, so that only one request is held in
    /// memory while it is sent: a full export of 200,000 series would otherwise hold every
    /// request's structures at once (about 90 MB).
    pub fn chunker(&self, now_nanos: u64) -> Chunker<'_> {
        Chunker {
            encoder: self,
            now_nanos,
            budget: self.max_request_bytes.saturating_sub(ENVELOPE_BYTES).max(1),
            builder: Builder::default(),
            first: 0,
            next: 0,
        }
    }

    fn finish(&self, builder: Builder, objects: std::ops::Range<usize>) -> Chunk {
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![proto::ResourceMetrics {
                resource: Some(self.resource.clone()),
                scope_metrics: vec![proto::ScopeMetrics {
                    scope: Some(self.scope.clone()),
                    metrics: builder.metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        Chunk {
            bytes: request.encoded_len(),
            request,
            objects,
            markers: builder.markers,
        }
    }
}

/// Takes updates one by one (numbered in the order pushed) and hands back a request each
/// time the next update would not fit in the budget.
pub struct Chunker<'e> {
    encoder: &'e Encoder,
    now_nanos: u64,
    budget: usize,
    builder: Builder,
    /// Number of the first update in the request being built.
    first: usize,
    /// Number of the next update pushed.
    next: usize,
}

impl Chunker<'_> {
    /// Adds one object's points; returns the finished previous request if they did not fit.
    pub fn push(&mut self, update: &ObjectUpdate<'_>) -> Option<Chunk> {
        let i = self.next;
        self.next += 1;
        let points = points_of(update, self.now_nanos);
        let size: usize = points.iter().map(|(_, _, p)| p.encoded_len() + 4).sum();
        let mut done = None;
        if self.builder.bytes > 0 && self.builder.bytes + size > self.budget {
            let builder = std::mem::take(&mut self.builder);
            done = Some(self.encoder.finish(builder, self.first..i));
            self.first = i;
        }
        self.builder.bytes += size;
        for (metric, unit, point) in points {
            if point.flags & proto::DataPointFlags::NoRecordedValueMask as u32 != 0 {
                self.builder.markers += 1;
            }
            self.builder.push(metric, unit, point);
        }
        done
    }

    /// The last request, if it has any point. Updates without any point (an object with no
    /// conditions) need no request; the last chunk's range covers trailing ones.
    pub fn finish(self) -> Option<Chunk> {
        (self.builder.bytes > 0).then(|| self.encoder.finish(self.builder, self.first..self.next))
    }
}

#[derive(Default)]
struct Builder {
    metrics: Vec<proto::Metric>,
    by_name: HashMap<String, usize>,
    bytes: usize,
    markers: usize,
}

impl Builder {
    fn push(&mut self, name: &str, unit: &'static str, point: proto::NumberDataPoint) {
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
fn points_of<'a>(
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
mod tests {
    use super::*;
    use crate::resource::{ResourceId, ResourceSpec};
    use crate::seinode::ConditionStatus;
    use std::sync::Arc;

    fn encoder(max: usize) -> Encoder {
        Encoder {
            resource: ProtoResource::default(),
            scope: InstrumentationScope::default(),
            max_request_bytes: max,
        }
    }

    fn key(name: &str) -> ObjectKey {
        ObjectKey {
            resource: ResourceId(0),
            namespace: Arc::from("ns"),
            name: Arc::from(name),
        }
    }

    fn cond(status: ConditionStatus, reason: &str) -> Series {
        Series::Condition {
            type_: "SigningKeyReady".into(),
            status,
            reason: reason.into(),
        }
    }

    fn attrs(p: &proto::NumberDataPoint) -> Vec<(String, String)> {
        p.attributes
            .iter()
            .map(|kv| {
                let Some(AnyValue {
                    value: Some(any_value::Value::StringValue(v)),
                }) = &kv.value
                else {
                    panic!("string attributes only")
                };
                (kv.key.clone(), v.clone())
            })
            .collect()
    }

    fn metrics(chunk: &Chunk) -> &[proto::Metric] {
        &chunk.request.resource_metrics[0].scope_metrics[0].metrics
    }

    fn gauge(m: &proto::Metric) -> &[proto::NumberDataPoint] {
        match &m.data {
            Some(proto::metric::Data::Gauge(g)) => &g.data_points,
            _ => panic!("{} is not a gauge", m.name),
        }
    }

    #[test]
    fn a_reason_change_is_one_value_and_one_marker_in_one_request() {
        let seinode = ResourceSpec::defaults()[0].known().unwrap();
        let k = key("validator-0");
        let update = ObjectUpdate {
            key: &k,
            resource: &seinode,
            values: vec![(cond(ConditionStatus::False, "SigningKeyInvalid"), 1)],
            stale: vec![cond(ConditionStatus::False, "SigningKeyNotReady")],
        };
        let chunks = encoder(1 << 20).encode(&[update], 42);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].markers, 1);
        let ms = metrics(&chunks[0]);
        assert_eq!(ms.len(), 1);
        assert_eq!(ms[0].name, "seinode_status_condition");
        let points = gauge(&ms[0]);
        assert_eq!(
            points[0].value,
            Some(proto::number_data_point::Value::AsInt(1))
        );
        assert_eq!(points[0].flags, 0);
        assert_eq!(points[1].value, None);
        assert_eq!(
            points[1].flags,
            proto::DataPointFlags::NoRecordedValueMask as u32
        );
        assert!(points.iter().all(|p| p.time_unix_nano == 42));
        assert_eq!(
            attrs(&points[1]),
            [
                ("name", "validator-0"),
                ("namespace", "ns"),
                ("type", "SigningKeyReady"),
                ("status", "False"),
                ("reason", "SigningKeyNotReady")
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn cluster_scoped_objects_have_no_namespace_and_units_are_set() {
        let spec = ResourceSpec::parse("widgets.example.test").unwrap();
        let widget = WatchedResource::new(
            &spec,
            kube::api::ApiResource {
                group: "example.test".into(),
                version: "v1".into(),
                api_version: "example.test/v1".into(),
                kind: "Widget".into(),
                plural: "widgets".into(),
            },
            false,
        );
        let k = ObjectKey {
            namespace: Arc::from(""),
            ..key("w")
        };
        let update = ObjectUpdate {
            key: &k,
            resource: &widget,
            values: vec![(
                Series::Since {
                    type_: "Ready".into(),
                },
                7,
            )],
            stale: vec![],
        };
        let chunks = encoder(1 << 20).encode(&[update], 1);
        let m = &metrics(&chunks[0])[0];
        assert_eq!(
            m.name,
            "widget_status_condition_last_transition_timestamp_seconds"
        );
        assert_eq!(m.unit, "s");
        assert_eq!(
            attrs(&gauge(m)[0]),
            [
                ("name".to_owned(), "w".to_owned()),
                ("type".into(), "Ready".into())
            ]
        );
    }

    #[test]
    fn requests_stay_under_the_budget_and_objects_are_not_split() {
        let seinode = ResourceSpec::defaults()[0].known().unwrap();
        let keys: Vec<ObjectKey> = (0..10_000).map(|i| key(&format!("node-{i:05}"))).collect();
        let types: Vec<Series> = (0..9)
            .map(|t| Series::Condition {
                type_: format!("Type{t}Ready").into(),
                status: ConditionStatus::True,
                reason: "Validated".into(),
            })
            .collect();
        let updates: Vec<ObjectUpdate> = keys
            .iter()
            .map(|k| ObjectUpdate {
                key: k,
                resource: &seinode,
                values: types.iter().map(|s| (s.clone(), 1)).collect(),
                stale: vec![],
            })
            .collect();
        let max = 1 << 20;
        let chunks = encoder(max).encode(&updates, 1);
        assert!(chunks.len() > 5, "{} chunks", chunks.len());
        let mut next = 0;
        let mut points = 0;
        for c in &chunks {
            assert!(c.bytes <= max, "{} > {max}", c.bytes);
            assert_eq!(c.bytes, c.request.encoded_len());
            assert_eq!(c.objects.start, next, "contiguous, every object once");
            next = c.objects.end;
            points += metrics(c).iter().map(|m| gauge(m).len()).sum::<usize>();
            assert_eq!(
                metrics(c).iter().map(|m| gauge(m).len()).sum::<usize>(),
                c.objects.len() * 9,
                "whole objects"
            );
        }
        assert_eq!(next, 10_000);
        assert_eq!(points, 90_000, "nothing folded, nothing lost");
    }

    #[test]
    fn nothing_to_say_is_no_request() {
        assert!(encoder(1 << 20).encode(&[], 1).is_empty());
    }
}
