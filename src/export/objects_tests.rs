//! The object exporter against a recording sink (a fake collector that can be told to
//! refuse): what each export sends, the markers it computes, and what a refusal leaves.

use std::collections::BTreeMap;
use std::sync::Mutex;

use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1 as proto;

use super::*;
use crate::conditions::Condition;
use crate::export::names;
use crate::resource::{ResourceId, ResourceSpec};
use crate::seinode::{ConditionStatus, Verdict};

/// One point as the collector would receive it.
#[derive(Debug, Clone, PartialEq)]
struct Point {
    metric: String,
    labels: BTreeMap<String, String>,
    /// `None`: a staleness marker.
    value: Option<i64>,
}

/// Records requests; refuses them while `refuse` is set.
#[derive(Clone, Default)]
struct Recorder {
    requests: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
    refuse: Arc<std::sync::atomic::AtomicBool>,
}

impl Sink for Recorder {
    async fn send(&mut self, request: ExportMetricsServiceRequest) -> Result<(), tonic::Status> {
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
    fn take(&self) -> Vec<Vec<Point>> {
        self.requests
            .lock()
            .unwrap()
            .drain(..)
            .map(|r| points(&r))
            .collect()
    }
}

fn points(request: &ExportMetricsServiceRequest) -> Vec<Point> {
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

struct Harness {
    shared: Arc<Shared>,
    recorder: Recorder,
    exporter: ObjectExporter<Recorder>,
}

impl Harness {
    fn new(max_request_bytes: usize) -> Self {
        let specs = ResourceSpec::defaults();
        let shared = Arc::new(Shared::new(&specs));
        for (i, spec) in specs.iter().enumerate() {
            shared
                .register_resource(ResourceId(i as u16), spec.known().unwrap())
                .unwrap();
        }
        let recorder = Recorder::default();
        let resource = crate::telemetry::resource("svc", Some("pod-1"), Some("prod-eu"));
        let encoder = crate::export::encoder(&resource, max_request_bytes);
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
    fn set(
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

    fn delete(&self, r: u16, name: &str) {
        let mut index = self.shared.index_mut();
        let key = index.key(ResourceId(r), "sei", name);
        index.delete(&key);
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

use ConditionStatus::*;

#[tokio::test]
async fn exports_every_condition_of_every_kind_with_exact_names_and_labels() {
    let mut h = Harness::new(1 << 20);
    h.set(
        0,
        "validator-0",
        &[("SigningKeyReady", False, "SigningKeyInvalid")],
        Some(False),
    );
    h.set(1, "net", &[("NodesReady", True, "AllNodesReady")], None);
    h.set(2, "task", &[("Failed", True, "TaskFailed")], None);
    h.set(3, "wf", &[("Adopted", False, "TargetPhaseTimeout")], None);
    let report = h.exporter.export(ExportKind::Changes).await;
    assert_eq!(report.requests, 1);
    let points: Vec<Point> = h.recorder.take().concat();
    let find = |metric: &str| {
        points
            .iter()
            .filter(|p| p.metric == metric)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        find("seinode_status_condition"),
        vec![Point {
            metric: "seinode_status_condition".into(),
            labels: labels(&[
                ("name", "validator-0"),
                ("namespace", "sei"),
                ("type", "SigningKeyReady"),
                ("status", "False"),
                ("reason", "SigningKeyInvalid")
            ]),
            value: Some(1),
        }]
    );
    assert_eq!(
        find("seinode_status_condition_last_transition_timestamp_seconds")[0].value,
        Some(1_000)
    );
    assert!(
        find("seinode_status_condition_outdated").is_empty(),
        "observedGeneration is current"
    );
    assert_eq!(
        find("seinetwork_status_condition")[0].labels["type"],
        "NodesReady"
    );
    assert_eq!(
        find("seinodetask_status_condition")[0].labels["reason"],
        "TaskFailed"
    );
    assert_eq!(
        find("seinodetaskworkflow_status_condition")[0].labels["reason"],
        "TargetPhaseTimeout"
    );
    // The seed's gauges, unchanged, for the SeiNode with sidecar TLS only.
    assert_eq!(find(names::READY).len(), 1);
    assert_eq!(find(names::READY)[0].value, Some(0));
    assert_eq!(find(names::STATUS)[0].labels["reason"], "TLSSecretNotFound");
    // Every request carries the watcher's resource and scope.
    let request = {
        h.set(
            0,
            "validator-0",
            &[("SigningKeyReady", True, "SigningKeyValidated")],
            None,
        );
        h.exporter.export(ExportKind::Changes).await;
        h.recorder.requests.lock().unwrap()[0].clone()
    };
    let rm = &request.resource_metrics[0];
    let attrs: Vec<String> = rm
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .map(|kv| kv.key.clone())
        .collect();
    for key in ["service.name", "service.instance.id", "k8s.cluster.name"] {
        assert!(attrs.contains(&key.to_owned()), "{key} in {attrs:?}");
    }
    // The literal, not the constant the code uses: a renamed scope must fail here.
    assert_eq!(
        rm.scope_metrics[0].scope.as_ref().unwrap().name,
        "sei-condition-watcher"
    );
}

#[tokio::test]
async fn a_reason_change_sends_the_new_pair_and_marks_the_old_one_in_the_same_request() {
    let mut h = Harness::new(1 << 20);
    h.set(
        0,
        "v",
        &[("SigningKeyReady", False, "SigningKeyNotReady")],
        None,
    );
    h.exporter.export(ExportKind::Changes).await;
    h.recorder.take();
    h.set(
        0,
        "v",
        &[("SigningKeyReady", False, "SigningKeyInvalid")],
        None,
    );
    let report = h.exporter.export(ExportKind::Changes).await;
    assert_eq!((report.requests, report.markers), (1, 1));
    let requests = h.recorder.take();
    assert_eq!(
        requests.len(),
        1,
        "one request: one timestamp in Prometheus"
    );
    let conditions: Vec<(String, Option<i64>)> = requests[0]
        .iter()
        .filter(|p| p.metric == "seinode_status_condition")
        .map(|p| (p.labels["reason"].clone(), p.value))
        .collect();
    assert_eq!(
        conditions,
        [
            ("SigningKeyInvalid".to_owned(), Some(1)),
            ("SigningKeyNotReady".to_owned(), None)
        ]
    );
}

#[tokio::test]
async fn deleted_objects_and_vanished_conditions_are_marked_stale_once() {
    let mut h = Harness::new(1 << 20);
    h.set(
        2,
        "t",
        &[("Ready", False, "Pending"), ("Failed", False, "NotFailed")],
        None,
    );
    h.set(2, "u", &[("Ready", True, "Complete")], None);
    h.exporter.export(ExportKind::Full).await;
    h.recorder.take();
    h.delete(2, "t");
    h.set(2, "u", &[], None);
    let report = h.exporter.export(ExportKind::Changes).await;
    // t: 2 conditions + 2 since; u: 1 condition + 1 since.
    assert_eq!(report.markers, 6);
    let points = h.recorder.take().concat();
    assert!(points.iter().all(|p| p.value.is_none()), "{points:?}");
    assert_eq!(
        h.exporter.delivered(),
        1,
        "t is forgotten, u is kept with no series"
    );
    let report = h.exporter.export(ExportKind::Full).await;
    assert_eq!(
        (report.markers, report.requests),
        (0, 0),
        "nothing to say twice"
    );
}

#[tokio::test]
async fn a_full_export_resends_every_value_and_a_change_export_only_what_changed() {
    let mut h = Harness::new(1 << 20);
    for i in 0..50 {
        h.set(
            1,
            &format!("n{i}"),
            &[
                ("NodesReady", True, "AllReady"),
                ("Paused", False, "NotPaused"),
            ],
            None,
        );
    }
    h.exporter.export(ExportKind::Changes).await;
    h.recorder.take();
    h.set(
        1,
        "n7",
        &[
            ("NodesReady", False, "NodesNotReady"),
            ("Paused", False, "NotPaused"),
        ],
        None,
    );
    let report = h.exporter.export(ExportKind::Changes).await;
    assert_eq!(report.values, 4, "n7 only: 2 conditions + 2 since");
    let names: std::collections::BTreeSet<String> = h
        .recorder
        .take()
        .concat()
        .into_iter()
        .map(|p| p.labels["name"].clone())
        .collect();
    assert_eq!(names.into_iter().collect::<Vec<_>>(), ["n7"]);
    // A change lands, then the periodic export runs before the change export: the periodic
    // one still carries everything (no side channel can narrow it), and the change export
    // that follows has nothing left to send.
    h.set(1, "n8", &[("NodesReady", False, "NodesNotReady")], None);
    let report = h.exporter.export(ExportKind::Full).await;
    assert_eq!(report.values, 50 * 4 - 2);
    assert_eq!(
        report.markers, 3,
        "n8: its old NodesReady pair, its Paused and that one's since"
    );
    assert_eq!(h.exporter.export(ExportKind::Changes).await.requests, 0);
}

#[tokio::test]
async fn a_refused_export_loses_no_marker() {
    let mut h = Harness::new(1 << 20);
    h.set(0, "v", &[("NodeKeyReady", True, "NodeKeyValidated")], None);
    h.exporter.export(ExportKind::Changes).await;
    h.set(0, "v", &[("NodeKeyReady", False, "NodeKeyInvalid")], None);
    h.recorder
        .refuse
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let report = h.exporter.export(ExportKind::Changes).await;
    assert_eq!(report.failed_requests, 1);
    assert_eq!(
        h.shared
            .stats
            .export_errors
            .get(crate::stats::ExportStage::Objects),
        1
    );
    h.recorder
        .refuse
        .store(false, std::sync::atomic::Ordering::SeqCst);
    h.recorder.take();
    // Nothing changed since: the retried keys still go with the next change export.
    let report = h.exporter.export(ExportKind::Changes).await;
    assert_eq!(report.markers, 1, "the True pair is still marked");
    let marked: Vec<Point> = h
        .recorder
        .take()
        .concat()
        .into_iter()
        .filter(|p| p.value.is_none())
        .collect();
    assert_eq!(marked[0].labels["status"], "True");
}

#[tokio::test]
async fn a_to_b_and_back_during_an_export_leaves_no_series_unmarked() {
    let mut h = Harness::new(1 << 20);
    h.set(0, "v", &[("Ready", True, "A")], None);
    h.exporter.export(ExportKind::Changes).await;
    h.set(0, "v", &[("Ready", False, "B")], None);
    h.exporter.export(ExportKind::Changes).await; // delivers B, marks A
    h.set(0, "v", &[("Ready", True, "A")], None); // back to A after that export collected
    h.recorder.take();
    let report = h.exporter.export(ExportKind::Full).await;
    assert_eq!(
        report.markers, 1,
        "B is marked by the next export, whatever its kind"
    );
    let marked: Vec<Point> = h
        .recorder
        .take()
        .concat()
        .into_iter()
        .filter(|p| p.value.is_none())
        .collect();
    assert_eq!(marked[0].labels["reason"], "B");
}

#[tokio::test]
async fn retire_marks_every_delivered_series() {
    let mut h = Harness::new(1 << 20);
    h.set(
        0,
        "v",
        &[("Ready", True, "A"), ("Paused", False, "NotPaused")],
        Some(True),
    );
    h.set(3, "w", &[("Adopted", True, "Adopted")], None);
    h.exporter.export(ExportKind::Full).await;
    h.recorder.take();
    let report = h.exporter.export(ExportKind::Retire).await;
    // v: 2 conditions, 2 since, tls ready + status; w: 1 condition + 1 since.
    assert_eq!((report.markers, report.values), (8, 0));
    assert_eq!(h.exporter.delivered(), 0);
}

/// 10,000 SeiNodes with 10 conditions each plus networks, tasks and workflows: well over
/// 100,000 series, every one exported, in requests under the budget.
#[tokio::test]
async fn a_hundred_thousand_series_export_without_folding() {
    let budget = crate::export::DEFAULT_MAX_REQUEST_BYTES;
    let mut h = Harness::new(budget);
    let types = [
        "SidecarReady",
        "ImportPVCReady",
        "SigningKeyReady",
        "NodeKeyReady",
        "OperatorKeyringReady",
        "StateSyncReady",
        "NodeUpdateInProgress",
        "Paused",
        "WorkflowInProgress",
        "ExtraReady",
    ];
    let conditions: Vec<(&str, ConditionStatus, &str)> =
        types.iter().map(|t| (*t, True, "Validated")).collect();
    for i in 0..10_000 {
        h.set(0, &format!("node-{i:05}"), &conditions, None);
    }
    for i in 0..200 {
        h.set(
            1,
            &format!("net-{i}"),
            &[
                ("NodesReady", True, "AllReady"),
                ("Paused", False, "NotPaused"),
            ],
            None,
        );
        h.set(
            2,
            &format!("task-{i}"),
            &[("Ready", True, "Complete"), ("Failed", False, "NotFailed")],
            None,
        );
        h.set(
            3,
            &format!("wf-{i}"),
            &[("Ready", True, "Complete"), ("Adopted", True, "Adopted")],
            None,
        );
    }
    let report = h.exporter.export(ExportKind::Full).await;
    let expected = 10_000 * 10 * 2 + 600 * 2 * 2;
    assert_eq!(report.values, expected, "nothing folded");
    assert_eq!(report.failed_requests, 0);
    let requests = h.recorder.requests.lock().unwrap();
    for r in requests.iter() {
        assert!(prost::Message::encoded_len(r) <= budget);
    }
    let overflow = requests
        .iter()
        .flat_map(points)
        .filter(|p| p.labels.keys().any(|k| k.contains("overflow")))
        .count();
    assert_eq!(overflow, 0);
    eprintln!(
        "{expected} series in {} requests, {} bytes uncompressed",
        report.requests, report.bytes
    );
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_changes_costs_a_few_exports_and_a_lone_change_leaves_at_once() {
    let h = Harness::new(1 << 20);
    let Harness {
        shared,
        recorder,
        mut exporter,
    } = h;
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        exporter
            .run(Duration::from_secs(3600), async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            })
            .await;
        exporter
    });
    let set = |name: &str, status| {
        let mut index = shared.index_mut();
        let key = index.key(ResourceId(0), "sei", name);
        let state = index.state(
            None,
            vec![Condition {
                type_: "Ready".into(),
                status,
                reason: "R".into(),
                since: None,
                observed_generation: None,
            }],
            None,
        );
        index.apply(key, state);
        drop(index);
        shared.changed.notify_one();
    };
    for i in 0..1_000 {
        set(&format!("n{i}"), False);
        if i % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tokio::time::sleep(DEBOUNCE * 3).await;
    let burst = recorder.take();
    let values: usize = burst.iter().map(|r| r.len()).sum();
    assert_eq!(values, 1_000, "each change exported once");
    assert!(
        (1..=5).contains(&burst.len()),
        "1,000 changes cost {} exports",
        burst.len()
    );
    set("lone", True);
    tokio::time::sleep(DEBOUNCE + Duration::from_millis(1)).await;
    assert_eq!(
        recorder.take().len(),
        1,
        "a lone change leaves after the debounce, not the interval"
    );
    let _ = stop_tx.send(true);
    let _ = task.await;
}

/// A sink that changes the index while a request is in flight: the object goes back to
/// `A` after the export collected `B` and before that export is done.
struct FlipDuringSend {
    shared: Arc<Shared>,
    inner: Recorder,
    flipped: bool,
}

impl Sink for FlipDuringSend {
    async fn send(&mut self, request: ExportMetricsServiceRequest) -> Result<(), tonic::Status> {
        if !self.flipped {
            self.flipped = true;
            let mut index = self.shared.index_mut();
            let key = index.key(ResourceId(0), "sei", "v");
            let state = index.state(Some(2), vec![ready(True, "A")], None);
            index.apply(key, state);
        }
        self.inner.send(request).await
    }
}

fn ready(status: ConditionStatus, reason: &str) -> Condition {
    Condition {
        type_: "Ready".into(),
        status,
        reason: reason.into(),
        since: Some(1_000),
        observed_generation: Some(2),
    }
}

#[tokio::test]
async fn a_to_b_then_back_to_a_while_the_export_is_in_flight_marks_b() {
    let h = Harness::new(1 << 20);
    h.set(0, "v", &[("Ready", True, "A")], None);
    let recorder = Recorder::default();
    let mut exporter = ObjectExporter::new(
        h.shared.clone(),
        FlipDuringSend {
            shared: h.shared.clone(),
            inner: recorder.clone(),
            flipped: true, // not yet
        },
        h.exporter.encoder.clone(),
        Arc::new(crate::export::failure_log()),
    );
    exporter.export(ExportKind::Changes).await; // delivers A
    h.set(0, "v", &[("Ready", False, "B")], None); // A -> B before the collection
    exporter.sink.flipped = false; // B -> A while the next export is being sent
    exporter.export(ExportKind::Changes).await;
    recorder.take();
    // The export delivered B; the index holds A again: the next export, of either kind,
    // must end B. (A journal drained after the export would have lost this marker.)
    let report = exporter.export(ExportKind::Changes).await;
    assert_eq!(report.markers, 1, "{report:?}");
    let points = recorder.take().concat();
    let marked: Vec<&Point> = points.iter().filter(|p| p.value.is_none()).collect();
    assert_eq!(marked.len(), 1);
    assert_eq!(marked[0].labels["reason"], "B");
    assert!(points
        .iter()
        .any(|p| p.value == Some(1) && p.labels.get("reason").map(String::as_str) == Some("A")));
}

#[tokio::test(start_paused = true)]
async fn a_blind_resource_is_withdrawn_until_its_watch_works_again() {
    let mut h = Harness::new(1 << 20);
    h.set(0, "v", &[("Ready", False, "B")], None);
    h.set(1, "n", &[("NodesReady", True, "AllReady")], None);
    h.exporter.export(ExportKind::Full).await;
    h.recorder.take();
    let scope = crate::index::Scope::AllNamespaces;
    // SeiNode watch errors keep coming (every 60 s) for 90 s: blind.
    h.shared.watch_failed(ResourceId(0), &scope);
    tokio::time::advance(Duration::from_secs(60)).await;
    h.shared.watch_failed(ResourceId(0), &scope);
    let report = h.exporter.export(ExportKind::Full).await;
    assert_eq!(report.markers, 0, "60 s of failures: not blind yet");
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(h.shared.blind_resources(), [true, false, false, false]);
    let report = h.exporter.export(ExportKind::Full).await;
    let points = h.recorder.take().concat();
    assert_eq!(
        report.markers, 2,
        "v's Ready pair and its since: {points:?}"
    );
    assert!(points
        .iter()
        .filter(|p| p.value.is_none())
        .all(|p| p.labels["name"] == "v"));
    assert!(
        points
            .iter()
            .any(|p| p.value.is_some() && p.labels["name"] == "n"),
        "other resources keep exporting"
    );
    // Still blind: nothing more about v.
    h.exporter.export(ExportKind::Full).await;
    let points = h.recorder.take().concat();
    assert!(points.iter().all(|p| p.labels["name"] != "v"), "{points:?}");
    // The watch delivers an event again: v is exported again.
    h.shared.watch_ok(ResourceId(0), &scope);
    h.exporter.export(ExportKind::Full).await;
    let points = h.recorder.take().concat();
    assert!(points
        .iter()
        .any(|p| p.value == Some(1) && p.labels["name"] == "v"));
}

#[tokio::test(start_paused = true)]
async fn an_undecodable_object_keeps_its_verdict_for_the_bound_then_is_withdrawn() {
    let mut h = Harness::new(1 << 20);
    h.set(0, "v", &[("Ready", True, "A")], None);
    h.exporter.export(ExportKind::Full).await;
    h.recorder.take();
    let key = h.shared.index_mut().key(ResourceId(0), "sei", "v");
    h.shared
        .index_mut()
        .mark_undecodable(&key, tokio::time::Instant::now());
    tokio::time::advance(Duration::from_secs(89)).await;
    let report = h.exporter.export(ExportKind::Full).await;
    assert_eq!(
        (report.markers, report.values),
        (0, 2),
        "kept within the bound"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    let report = h.exporter.export(ExportKind::Full).await;
    assert_eq!(
        (report.markers, report.values),
        (2, 0),
        "withdrawn after it"
    );
    assert_eq!(
        h.shared.index().count_undecodable_by_resource(4),
        [1, 0, 0, 0]
    );
    // It decodes again: back at the next export.
    h.shared.index_mut().clear_undecodable(&key);
    let report = h.exporter.export(ExportKind::Changes).await;
    assert_eq!(report.values, 2);
}

#[tokio::test]
async fn a_standby_sends_nothing_and_on_takeover_marks_what_changed_meanwhile() {
    let mut h = Harness::new(1 << 20);
    h.shared.set_leader(false);
    h.set(0, "v", &[("Ready", True, "A")], None);
    h.set(0, "gone", &[("Ready", True, "A")], None);
    let report = h.exporter.export(ExportKind::Full).await;
    assert_eq!(report, Report::default());
    assert!(h.recorder.take().is_empty(), "a standby sends nothing");
    // While standing by, v changes and `gone` is deleted (the leader sent both).
    h.set(0, "v", &[("Ready", False, "B")], None);
    h.delete(0, "gone");
    h.exporter.export(ExportKind::Changes).await;
    h.set(0, "v", &[("Ready", False, "C")], None);
    assert!(h.recorder.take().is_empty());
    // Takeover: everything current, and markers for every state the old leader may have
    // exported within the lookback (it may have missed some changes this replica saw):
    // v's A and B pairs, and the deleted object's A pair and its since series.
    h.shared.set_leader(true);
    let report = h.exporter.export(ExportKind::Full).await;
    let points = h.recorder.take().concat();
    let mut marked: Vec<(String, String)> = points
        .iter()
        .filter(|p| p.value.is_none())
        .map(|p| {
            let reason = p.labels.get("reason").cloned().unwrap_or_default();
            (p.labels["name"].clone(), reason)
        })
        .collect();
    marked.sort();
    assert_eq!(report.markers, 4, "{points:?}");
    assert_eq!(
        marked,
        [
            ("gone".to_owned(), String::new()),
            ("gone".to_owned(), "A".to_owned()),
            ("v".to_owned(), "A".to_owned()),
            ("v".to_owned(), "B".to_owned())
        ]
    );
    // Said once: the next export has nothing more to mark.
    assert_eq!(h.exporter.export(ExportKind::Full).await.markers, 0);
    assert!(points
        .iter()
        .any(|p| p.value == Some(1) && p.labels.get("reason").map(String::as_str) == Some("C")));
}

#[tokio::test]
async fn a_standby_that_never_exported_a_state_still_marks_it_on_takeover() {
    // The standby lists the object as A, and it turns B before the standby's first (dry)
    // export: the old leader may have exported A, so the takeover must end A.
    let mut h = Harness::new(1 << 20);
    h.shared.set_leader(false);
    h.set(0, "v", &[("Ready", True, "A")], None);
    h.set(0, "v", &[("Ready", False, "B")], None);
    h.exporter.export(ExportKind::Changes).await;
    assert!(h.recorder.take().is_empty());
    h.shared.set_leader(true);
    let report = h.exporter.export(ExportKind::Full).await;
    let points = h.recorder.take().concat();
    let marked: Vec<&Point> = points.iter().filter(|p| p.value.is_none()).collect();
    assert_eq!(report.markers, 1, "{points:?}");
    assert_eq!(marked[0].labels["reason"], "A");
}
