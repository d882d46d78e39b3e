//! Encoding one object's values and markers into a request: labels, metric names, units
//! and the marker flag. The helpers here also serve the chunker's tests (`chunk.rs`).

use super::*;
use crate::conditions::ConditionStatus;
use crate::resource::{ResourceId, ResourceSpec};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1 as proto;
use std::sync::Arc;

pub(crate) fn encoder(max: usize) -> Encoder {
    Encoder {
        resource: ProtoResource::default(),
        scope: InstrumentationScope::default(),
        max_request_bytes: max,
        cluster_label: None,
    }
}

pub(crate) fn key(name: &str) -> ObjectKey {
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

pub(crate) fn metrics(chunk: &Chunk) -> Vec<proto::Metric> {
    let request = ExportMetricsServiceRequest::decode(&chunk.request[..]).unwrap();
    request.resource_metrics[0].scope_metrics[0].metrics.clone()
}

pub(crate) fn gauge(m: &proto::Metric) -> &[proto::NumberDataPoint] {
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

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// The bytes written by hand are the bytes prost writes for the same request: values and
/// markers, units, a namespaced and a cluster-scoped object, the resource and the scope.
#[test]
fn the_wire_bytes_are_prosts() {
    let seinode = ResourceSpec::defaults()[0].known().unwrap();
    let mut enc = encoder(1 << 20);
    enc.resource
        .attributes
        .push(kv("service.name", "sei-condition-watcher"));
    enc.scope.name = "sei-condition-watcher".into();
    enc.set_instance("replica-0");
    let namespaced = key("validator-0");
    let cluster = ObjectKey {
        namespace: Arc::from(""),
        ..key("cluster-wide")
    };
    let updates = [
        ObjectUpdate {
            key: &namespaced,
            resource: &seinode,
            values: vec![
                (cond(ConditionStatus::False, "SigningKeyInvalid"), 1),
                (
                    Series::Since {
                        type_: "SigningKeyReady".into(),
                    },
                    1_700_000_000,
                ),
                (Series::TlsReady, 0),
            ],
            stale: vec![cond(ConditionStatus::True, "SigningKeyValidated")],
        },
        ObjectUpdate {
            key: &cluster,
            resource: &seinode,
            values: vec![(cond(ConditionStatus::Unknown, ""), 1)],
            stale: vec![Series::TlsSince],
        },
    ];
    let now = 1_764_547_200_123_456_789;
    let chunks = enc.encode(&updates, now);
    assert_eq!(chunks.len(), 1);
    let point = |labels: &[(&str, &str)], value: Option<i64>| proto::NumberDataPoint {
        attributes: labels.iter().map(|(k, v)| kv(k, v)).collect(),
        time_unix_nano: now,
        value: value.map(proto::number_data_point::Value::AsInt),
        flags: if value.is_some() { 0 } else { 1 },
        ..Default::default()
    };
    let metric = |name: &str, unit: &str, points| proto::Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(proto::metric::Data::Gauge(proto::Gauge {
            data_points: points,
        })),
        ..Default::default()
    };
    let v0 = [("name", "validator-0"), ("namespace", "ns")];
    let cond_labels = |base: &[(&'static str, &'static str)], status, reason| {
        let mut l = base.to_vec();
        l.extend([
            ("type", "SigningKeyReady"),
            ("status", status),
            ("reason", reason),
        ]);
        l
    };
    let expected = ExportMetricsServiceRequest {
        resource_metrics: vec![proto::ResourceMetrics {
            resource: Some(enc.resource.clone()),
            scope_metrics: vec![proto::ScopeMetrics {
                scope: Some(enc.scope.clone()),
                metrics: vec![
                    metric(
                        "seinode_status_condition",
                        "",
                        vec![
                            point(&cond_labels(&v0, "False", "SigningKeyInvalid"), Some(1)),
                            point(&cond_labels(&v0, "True", "SigningKeyValidated"), None),
                            point(
                                &cond_labels(&[("name", "cluster-wide")], "Unknown", ""),
                                Some(1),
                            ),
                        ],
                    ),
                    metric(
                        "seinode_status_condition_last_transition_timestamp_seconds",
                        "s",
                        vec![point(
                            &[v0[0], v0[1], ("type", "SigningKeyReady")],
                            Some(1_700_000_000),
                        )],
                    ),
                    metric(names::READY, "", vec![point(&v0, Some(0))]),
                    metric(
                        names::LAST_TRANSITION,
                        "s",
                        vec![point(&[("name", "cluster-wide")], None)],
                    ),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    assert_eq!(
        ExportMetricsServiceRequest::decode(&chunks[0].request[..]).unwrap(),
        expected,
        "decodes to the request prost would build"
    );
    assert_eq!(
        &chunks[0].request[..],
        &expected.encode_to_vec()[..],
        "byte for byte"
    );
    assert_eq!(chunks[0].bytes, expected.encoded_len());
    assert_eq!(chunks[0].markers, 2);
}

#[test]
fn for_prometheus_every_point_carries_the_cluster_and_the_resource_only_job_and_instance() {
    let resource = crate::telemetry::resource(
        "sei-condition-watcher",
        Some("pod-1"),
        Some(&crate::cluster::ClusterIdentity {
            name: "arctic-1".into(),
            uid: Some("u-1".into()),
        }),
    );
    let seinode = ResourceSpec::defaults()[0].known().unwrap();
    let k = key("validator-0");
    let update = ObjectUpdate {
        key: &k,
        resource: &seinode,
        values: vec![
            (cond(ConditionStatus::False, "SigningKeyInvalid"), 1),
            (Series::TlsReady, 1),
        ],
        stale: vec![cond(ConditionStatus::False, "SigningKeyNotReady")],
    };
    let direct = crate::export::encoder(&resource, 1 << 20, crate::export::Receiver::Prometheus);
    let chunks = direct.encode(std::slice::from_ref(&update), 42);
    let request = ExportMetricsServiceRequest::decode(&chunks[0].request[..]).unwrap();
    let mut kept: Vec<&str> = request.resource_metrics[0]
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .map(|kv| kv.key.as_str())
        .collect();
    // The SDK's resource keeps its attributes in a hash map: order is not fixed.
    kept.sort_unstable();
    assert_eq!(kept, ["service.instance.id", "service.name"]);
    let ms = metrics(&chunks[0]);
    let points: Vec<_> = ms.iter().flat_map(|m| gauge(m).iter()).collect();
    assert_eq!(points.len(), 3, "two values and the marker");
    for point in points {
        let labels = attrs(point);
        assert_eq!(
            labels.last(),
            Some(&("cluster".to_owned(), "arctic-1".to_owned())),
            "{labels:?}"
        );
    }
    // With a collector: the resource as it is, no label on the points.
    let collector = crate::export::encoder(&resource, 1 << 20, crate::export::Receiver::Collector);
    let chunks = collector.encode(&[update], 42);
    let ms = metrics(&chunks[0]);
    assert!(ms
        .iter()
        .flat_map(|m| gauge(m).iter())
        .all(|p| attrs(p).iter().all(|(k, _)| k != "cluster")));
}
