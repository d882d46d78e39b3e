//! Encoding one object's values and markers into a request: labels, metric names, units
//! and the marker flag. The helpers here also serve the chunker's tests (`chunk.rs`).

use super::*;
use crate::resource::{ResourceId, ResourceSpec};
use crate::seinode::ConditionStatus;
use std::sync::Arc;

pub(crate) fn encoder(max: usize) -> Encoder {
    Encoder {
        resource: ProtoResource::default(),
        scope: InstrumentationScope::default(),
        max_request_bytes: max,
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

pub(crate) fn metrics(chunk: &Chunk) -> &[proto::Metric] {
    &chunk.request.resource_metrics[0].scope_metrics[0].metrics
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
