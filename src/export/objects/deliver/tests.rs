//! One export against a recording sink (a fake collector that can be told to refuse): what
//! it sends, the markers it computes, and what a refusal leaves.

use std::sync::Arc;

use crate::conditions::Condition;
use crate::conditions::ConditionStatus::{self, *};
use crate::export::names;
use crate::export::objects::testkit::{labels, points, Harness, Point, Recorder};
use crate::export::objects::{ExportKind, ObjectExporter, Sink};
use crate::resource::ResourceId;
use crate::state::Shared;

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
async fn a_refused_export_loses_no_marker() {
    let mut h = Harness::new(1 << 20);
    h.set(0, "v", &[("NodeKeyReady", True, "NodeKeyValidated")], None);
    h.exporter.export(ExportKind::Changes).await;
    h.set(0, "v", &[("NodeKeyReady", False, "NodeKeyInvalid")], None);
    h.recorder.set_refusing(true);
    let report = h.exporter.export(ExportKind::Changes).await;
    assert_eq!(report.failed_requests, 1);
    assert_eq!(
        h.shared
            .stats
            .export_errors
            .get(crate::stats::ExportStage::Objects),
        1
    );
    h.recorder.set_refusing(false);
    h.recorder.take();
    // Nothing changed since: the retried keys still go with the next change export.
    let report = h.exporter.export(ExportKind::Changes).await;
    assert_eq!(report.markers, 1, "the True pair is still marked");
    let marked = h.recorder.take_markers();
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
    let marked = h.recorder.take_markers();
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

/// A watcher stopping without a successor leaves what could hold an alert open (its last
/// view of conditions that need attention) and marks every healthy series stale; a fix
/// indexed after the last delivery counts (the current state decides, not the delivered one).
#[tokio::test]
async fn retire_keeps_troubled_series_and_marks_the_healthy_ones() {
    let mut h = Harness::new(1 << 20);
    h.set(
        0,
        "validator",
        &[
            ("SigningKeyReady", False, "SigningKeyInvalid"),
            ("NodeKeyReady", True, "NodeKeyValid"),
        ],
        Some(False),
    );
    h.set(
        0,
        "fixed",
        &[("SigningKeyReady", False, "SigningKeyInvalid")],
        None,
    );
    h.set(2, "task", &[("Failed", True, "TaskFailed")], None);
    h.exporter.export(ExportKind::Full).await;
    // Fixed after the last delivery, before the shutdown.
    h.set(
        0,
        "fixed",
        &[("SigningKeyReady", True, "SigningKeyValid")],
        None,
    );
    h.recorder.take();
    let report = h.exporter.export(ExportKind::Retire).await;
    let points = h.recorder.take().concat();
    let described = |p: &Point| {
        format!(
            "{} {} {} {}",
            p.labels["name"],
            p.metric,
            p.labels.get("type").map_or("", String::as_str),
            p.labels.get("status").map_or("", String::as_str)
        )
    };
    let mut kept: Vec<String> = points
        .iter()
        .filter(|p| p.value.is_some())
        .map(described)
        .collect();
    let mut marked: Vec<String> = points
        .iter()
        .filter(|p| p.value.is_none())
        .map(described)
        .collect();
    kept.sort();
    marked.sort();
    assert_eq!(
        kept,
        [
            "task seinodetask_status_condition Failed True",
            "task seinodetask_status_condition_last_transition_timestamp_seconds Failed ",
            "validator seinode_sidecar_tls_secret_ready  ",
            "validator seinode_sidecar_tls_secret_status  False",
            "validator seinode_status_condition SigningKeyReady False",
            "validator seinode_status_condition_last_transition_timestamp_seconds SigningKeyReady ",
        ],
        "{points:?}"
    );
    assert_eq!(
        marked,
        [
            "fixed seinode_status_condition SigningKeyReady False",
            "fixed seinode_status_condition_last_transition_timestamp_seconds SigningKeyReady ",
            "validator seinode_status_condition NodeKeyReady True",
            "validator seinode_status_condition_last_transition_timestamp_seconds NodeKeyReady ",
        ],
        "{points:?}"
    );
    assert_eq!((report.values, report.markers), (6, 4));
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

/// A sink that changes the index while a request is in flight: the object goes back to
/// `A` after the export collected `B` and before that export is done.
struct FlipDuringSend {
    shared: Arc<Shared>,
    inner: Recorder,
    flipped: bool,
}

impl Sink for FlipDuringSend {
    async fn send(&mut self, request: bytes::Bytes) -> Result<(), tonic::Status> {
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
async fn a_failure_is_logged_once_per_period_and_counted_every_time() {
    // The log goes through a pipe (`&PipeWriter` writes), read once the subscriber is gone.
    let (mut log, writer) = std::io::pipe().unwrap();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(Arc::new(writer))
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let mut h = Harness::new(1 << 20);
    h.set(0, "v", &[("Ready", True, "A")], None);
    h.recorder.set_refusing(true);
    // One export a minute for 12 minutes, all refused: a line at 0, 5 and 10 minutes.
    for _ in 0..12 {
        let report = h.exporter.export(ExportKind::Full).await;
        assert_eq!(report.failed_requests, 1);
        tokio::time::advance(std::time::Duration::from_secs(60)).await;
    }
    assert_eq!(
        h.shared
            .stats
            .export_errors
            .get(crate::stats::ExportStage::Objects),
        12
    );
    h.recorder.set_refusing(false);
    h.exporter.export(ExportKind::Full).await;
    drop(guard);
    let mut text = String::new();
    std::io::Read::read_to_string(&mut log, &mut text).unwrap();
    assert_eq!(
        text.matches("OTLP export to the collector failed").count(),
        3,
        "{text}"
    );
    assert_eq!(text.matches("recovered").count(), 1, "{text}");
}

/// Sets the info series' labels of object `name` of resource `r` (its conditions stay).
fn set_info(h: &Harness, r: u16, name: &str, info: &[(&str, &str)]) {
    let mut index = h.shared.index_mut();
    let key = index.key(ResourceId(r), "sei", name);
    let mut state = (**index.get(&key).unwrap()).clone();
    state.info = Some(
        index.info_labels(
            info.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
    );
    index.apply(key, state);
}

/// Issue 21 item 3: the info series carries the copied labels; a changed value sends the
/// new series and marks the old one stale in the same request (as a condition's pair
/// flip), and a delete marks it stale.
#[tokio::test]
async fn the_info_series_flips_like_a_condition_pair_and_goes_with_its_object() {
    let mut h = Harness::new(1 << 20);
    h.set(
        0,
        "v",
        &[("SigningKeyReady", False, "SigningKeyInvalid")],
        None,
    );
    set_info(
        &h,
        0,
        "v",
        &[("label_chain", "pacific-1"), ("label_team", "infra")],
    );
    h.exporter.export(ExportKind::Changes).await;
    let info = |points: &[Point]| {
        points
            .iter()
            .filter(|p| p.metric == "seinode_labels")
            .cloned()
            .collect::<Vec<_>>()
    };
    let sent = h.recorder.take().concat();
    assert_eq!(
        info(&sent),
        vec![Point {
            metric: "seinode_labels".into(),
            labels: labels(&[
                ("name", "v"),
                ("namespace", "sei"),
                ("label_chain", "pacific-1"),
                ("label_team", "infra")
            ]),
            value: Some(1),
        }]
    );
    set_info(
        &h,
        0,
        "v",
        &[("label_chain", "pacific-1"), ("label_team", "payments")],
    );
    h.exporter.export(ExportKind::Changes).await;
    let requests = h.recorder.take();
    assert_eq!(requests.len(), 1, "value and marker in one request");
    let flip = info(&requests[0]);
    assert_eq!(flip.len(), 2, "{flip:?}");
    assert_eq!(flip[0].labels["label_team"], "payments");
    assert_eq!(flip[0].value, Some(1));
    assert_eq!(flip[1].labels["label_team"], "infra");
    assert_eq!(flip[1].value, None, "the old info series is marked stale");
    h.delete(0, "v");
    h.exporter.export(ExportKind::Changes).await;
    let gone = info(&h.recorder.take().concat());
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].labels["label_team"], "payments");
    assert_eq!(gone[0].value, None);
}

/// On a shutdown without a successor the info series lingers with the object's troubled
/// series (a page that joins it keeps its labels) and is marked stale with a healthy
/// object's; and it never counts against the series bounds.
#[tokio::test]
async fn the_info_series_lingers_with_trouble_and_takes_no_room_under_the_bounds() {
    let mut h = Harness::new(1 << 20);
    h.set(
        0,
        "broken",
        &[("SigningKeyReady", False, "SigningKeyInvalid")],
        None,
    );
    set_info(&h, 0, "broken", &[("label_team", "infra")]);
    h.set(
        0,
        "fine",
        &[("SigningKeyReady", True, "SigningKeyValidated")],
        None,
    );
    set_info(&h, 0, "fine", &[("label_team", "infra")]);
    h.exporter.export(ExportKind::Changes).await;
    h.recorder.take();
    h.exporter.export(ExportKind::Retire).await;
    let last = h.recorder.take().concat();
    let info_of = |name: &str| {
        last.iter()
            .find(|p| p.metric == "seinode_labels" && p.labels["name"] == name)
            .map(|p| p.value)
    };
    assert_eq!(info_of("broken"), Some(Some(1)), "lingers with the page");
    assert_eq!(
        info_of("fine"),
        Some(None),
        "marked stale with the healthy object"
    );
    let index = h.shared.index();
    let state = index
        .iter()
        .find(|(k, _)| &*k.name == "broken")
        .map(|(_, s)| s.clone())
        .unwrap();
    assert_eq!(
        state.series_count(),
        2,
        "status and since; not the info series"
    );
}
