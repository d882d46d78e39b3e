//! Straight into Prometheus (`--otlp-receiver prometheus`): the labels a collector would
//! have made, made by the watcher. With the shipped collector, `k8s.cluster.name` becomes
//! the `cluster` label on every series (its `resource` processor and
//! `resource_constant_labels`) and no `target_info` is written. Prometheus' own OTLP
//! receiver makes `job` and `instance` from `service.name` and `service.instance.id` as the
//! collector does, but would make `cluster` only from a promoted resource attribute, and
//! writes a `target_info` sample per request whenever the resource has any other attribute.
//!
//! ```text
//!   resource {service.name, service.instance.id, service.version, k8s.cluster.name, ...}
//!      ──▶ resource {service.name, service.instance.id}     (job, instance; no target_info)
//!          + cluster="<k8s.cluster.name>" on every point     (object series: encode.rs;
//!                                                             self-metrics: here)
//! ```
//!
//! Why no `target_info`: the object series and the self-metrics are two streams with one
//! resource, so their `target_info` would be one series written by both, each request
//! stamping it with its own newest timestamp. A request whose stamp is older than the
//! other stream's last one (a self-metrics collection sent while a long export is under
//! way) is out of order for that one series, and Prometheus refuses the WHOLE request with
//! 400 (`storage/remote/write_otlp_handler.go`). The collector path has `target_info`
//! disabled for the same reason (otel-config/collector.yaml); Prometheus 3.16 has no
//! setting for it, and its receiver writes none for a resource of only
//! `service.namespace`, `service.name` and `service.instance.id`.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;

use crate::cluster::CLUSTER_NAME_ATTRIBUTE;

/// The resource attributes Prometheus' OTLP receiver identifies a target by: they become
/// `job` and `instance` and never make a `target_info`.
pub const IDENTIFYING: [&str; 3] = ["service.namespace", "service.name", "service.instance.id"];

/// The label the collector makes from `k8s.cluster.name` (otel-config/collector.yaml).
pub const CLUSTER_LABEL: &str = "cluster";

/// Splits a resource for Prometheus: the identifying attributes stay, and the cluster's
/// name is returned to be written on every point.
pub fn split_resource(resource: &ProtoResource) -> (ProtoResource, Option<String>) {
    let cluster = resource
        .attributes
        .iter()
        .find(|kv| kv.key == CLUSTER_NAME_ATTRIBUTE)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        });
    let kept = ProtoResource {
        attributes: resource
            .attributes
            .iter()
            .filter(|kv| IDENTIFYING.contains(&kv.key.as_str()))
            .cloned()
            .collect(),
        ..Default::default()
    };
    (kept, cluster)
}

/// The self-metrics' request as Prometheus should get it: each resource cut to its
/// identifying attributes, its cluster's name on every point.
pub fn labels_on_points(request: &mut ExportMetricsServiceRequest) {
    for resource_metrics in &mut request.resource_metrics {
        let Some(resource) = resource_metrics.resource.as_mut() else {
            continue;
        };
        let (kept, cluster) = split_resource(resource);
        *resource = kept;
        let Some(cluster) = cluster else { continue };
        let label = KeyValue {
            key: CLUSTER_LABEL.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(cluster)),
            }),
            ..Default::default()
        };
        let metrics = resource_metrics
            .scope_metrics
            .iter_mut()
            .flat_map(|s| s.metrics.iter_mut());
        for metric in metrics {
            let add = |attributes: &mut Vec<KeyValue>| {
                attributes.retain(|kv| kv.key != CLUSTER_LABEL);
                attributes.push(label.clone());
            };
            match metric.data.as_mut() {
                Some(Data::Gauge(g)) => g
                    .data_points
                    .iter_mut()
                    .for_each(|p| add(&mut p.attributes)),
                Some(Data::Sum(s)) => s
                    .data_points
                    .iter_mut()
                    .for_each(|p| add(&mut p.attributes)),
                Some(Data::Histogram(h)) => h
                    .data_points
                    .iter_mut()
                    .for_each(|p| add(&mut p.attributes)),
                Some(Data::ExponentialHistogram(h)) => h
                    .data_points
                    .iter_mut()
                    .for_each(|p| add(&mut p.attributes)),
                Some(Data::Summary(s)) => s
                    .data_points
                    .iter_mut()
                    .for_each(|p| add(&mut p.attributes)),
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    };

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.into())),
            }),
            ..Default::default()
        }
    }

    fn keys(attributes: &[KeyValue]) -> Vec<&str> {
        attributes.iter().map(|kv| kv.key.as_str()).collect()
    }

    #[test]
    fn the_resource_keeps_job_and_instance_and_every_point_gets_the_cluster() {
        let resource = ProtoResource {
            attributes: vec![
                kv("service.name", "sei-condition-watcher"),
                kv("service.instance.id", "pod-1"),
                kv("service.version", "0.1.0"),
                kv(CLUSTER_NAME_ATTRIBUTE, "arctic-1"),
                kv("k8s.cluster.uid", "u-1"),
            ],
            ..Default::default()
        };
        let point = |attributes| NumberDataPoint {
            attributes,
            ..Default::default()
        };
        let mut request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(resource),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        Metric {
                            name: "sei_condition_watcher_up".into(),
                            data: Some(Data::Gauge(Gauge {
                                data_points: vec![point(vec![])],
                            })),
                            ..Default::default()
                        },
                        Metric {
                            name: "sei_condition_watcher_exports_total".into(),
                            data: Some(Data::Sum(Sum {
                                data_points: vec![point(vec![kv("stage", "objects")])],
                                ..Default::default()
                            })),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        labels_on_points(&mut request);
        let rm = &request.resource_metrics[0];
        assert_eq!(
            keys(&rm.resource.as_ref().unwrap().attributes),
            ["service.name", "service.instance.id"],
            "nothing that would make a target_info"
        );
        let metrics = &rm.scope_metrics[0].metrics;
        let Some(Data::Gauge(up)) = &metrics[0].data else {
            panic!()
        };
        assert_eq!(
            up.data_points[0].attributes,
            vec![kv("cluster", "arctic-1")]
        );
        let Some(Data::Sum(exports)) = &metrics[1].data else {
            panic!()
        };
        assert_eq!(
            exports.data_points[0].attributes,
            vec![kv("stage", "objects"), kv("cluster", "arctic-1")]
        );
    }

    #[test]
    fn no_cluster_name_no_label() {
        let resource = ProtoResource {
            attributes: vec![kv("service.name", "w"), kv(CLUSTER_NAME_ATTRIBUTE, "")],
            ..Default::default()
        };
        let (kept, cluster) = split_resource(&resource);
        assert_eq!(keys(&kept.attributes), ["service.name"]);
        assert_eq!(cluster, None);
    }
}
