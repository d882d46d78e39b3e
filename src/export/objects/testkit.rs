//! Test support for the object exporter: a recording sink (a fake collector that can be
//! told to refuse), the points of a request as Prometheus would get them, and a harness
//! that sets objects in the index of the default resources.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1 as proto;

use super::{ObjectExporter, Sink};
use crate::conditions::{Condition, ConditionStatus};
use crate::resource::{ResourceId, ResourceSpec};
use crate::seinode::Verdict;
use crate::state::Shared;

/// One point as the collector would receive it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Point {
    pub(super) metric: String,
    pub(super) labels: BTreeMap<String, String>,
    /// `None`: a staleness marker.
    pub(super) value: Option<i64>,
}

/// Records requests; refuses them while `refuse` is set.
#[derive(Clone, Default)]
pub(super) struct Recorder {
    pub(super) requests: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
    pub(super) refuse: Arc<std::sync::atomic::AtomicBool>,
}

impl Sink for Recorder {
    async fn send(&mut self, request: bytes::Bytes) -> Result<(), tonic::Status> {
        let request = decode(&request);
        if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(tonic::Status::resource_exhausted(
                "grpc: received message larger than max",
            ));
        }
        self.requests.lock().unwrap().push(request);
        Ok(())
    }
}

impl Recorder {
    /// The points of every request since the last call, request by request.
    pub(super) fn take(&self) -> Vec<Vec<Point>> {
        self.requests
            .lock()
            .unwrap()
            .drain(..)
            .map(|r| points(&r))
            .collect()
    }

    /// The staleness markers of every request since the last take.
    pub(super) fn take_markers(&self) -> Vec<Point> {
        let points = self.take().concat();
        points.into_iter().filter(|p| p.value.is_none()).collect()
    }

    /// Refuses every request from now on (`true`), or accepts them again.
    pub(super) fn set_refusing(&self, refusing: bool) {
        self.refuse
            .store(refusing, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The request as the collector decodes it.
pub(super) fn decode(request: &[u8]) -> ExportMetricsServiceRequest {
    prost::Message::decode(request).expect("a request the collector can decode")
}

pub(super) fn points(request: &ExportMetricsServiceRequest) -> Vec<Point> {
    let mut out = Vec::new();
    for rm in &request.resource_metrics {
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let Some(proto::metric::Data::Gauge(g)) = &m.data else {
                    panic!("{} is not a gauge", m.name)
                };
                for p in &g.data_points {
                    let labels = p
                        .attributes
                        .iter()
                        .map(
                            |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                                Some(any_value::Value::StringValue(v)) => {
                                    (kv.key.clone(), v.clone())
                                }
                                other => panic!("{other:?}"),
                            },
                        )
                        .collect();
                    let value = match p.value {
                        Some(proto::number_data_point::Value::AsInt(v)) => {
                            assert_eq!(p.flags, 0);
                            Some(v)
                        }
                        None => {
                            assert_eq!(p.flags, proto::DataPointFlags::NoRecordedValueMask as u32);
                            None
                        }
                        other => panic!("{other:?}"),
                    };
                    out.push(Point {
                        metric: m.name.clone(),
                        labels,
                        value,
                    });
                }
            }
        }
    }
    out
}

/// An exporter of the default resources, its index and its recording sink.
pub(super) struct Harness {
    pub(super) shared: Arc<Shared>,
    pub(super) recorder: Recorder,
    pub(super) exporter: ObjectExporter<Recorder>,
}

impl Harness {
    pub(super) fn new(max_request_bytes: usize) -> Self {
        let specs = ResourceSpec::defaults();
        let shared = Arc::new(Shared::new(&specs));
        for (i, spec) in specs.iter().enumerate() {
            shared
                .register_resource(ResourceId(i as u16), spec.known().unwrap())
                .unwrap();
        }
        let recorder = Recorder::default();
        let resource = crate::telemetry::resource(
            "svc",
            Some("pod-1"),
            Some(&crate::cluster::ClusterIdentity {
                name: "prod-eu".into(),
                uid: None,
            }),
        );
        let encoder = crate::export::encoder(
            &resource,
            max_request_bytes,
            crate::export::Receiver::Collector,
        );
        let exporter = ObjectExporter::new(
            shared.clone(),
            recorder.clone(),
            encoder,
            Arc::new(crate::export::failure_log()),
        );
        Self {
            shared,
            recorder,
            exporter,
        }
    }

    /// Sets the conditions of object `name` of resource `r` (0 SeiNode ... 3 workflow).
    pub(super) fn set(
        &self,
        r: u16,
        name: &str,
        conditions: &[(&str, ConditionStatus, &str)],
        tls: Option<ConditionStatus>,
    ) {
        let mut index = self.shared.index_mut();
        let key = index.key(ResourceId(r), "sei", name);
        let state = index.state(
            Some(2),
            conditions
                .iter()
                .map(|(t, status, reason)| Condition {
                    type_: (*t).into(),
                    status: *status,
                    reason: (*reason).into(),
                    since: Some(1_000),
                    observed_generation: Some(2),
                })
                .collect(),
            tls.map(|status| Verdict {
                status,
                reason: "TLSSecretNotFound".into(),
                since: None,
            }),
        );
        index.apply(key, state);
    }

    pub(super) fn delete(&self, r: u16, name: &str) {
        let mut index = self.shared.index_mut();
        let key = index.key(ResourceId(r), "sei", name);
        index.delete(&key);
    }
}

pub(super) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
