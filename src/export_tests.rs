//! Export contents, checked through the SDK's in-memory exporter: names, units, labels,
//! values, vanished series, cardinality; and the staleness markers' OTLP shape.

use std::collections::BTreeMap;

use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::InMemoryMetricExporter;

use super::*;
use crate::seinode::Verdict;

/// One exported data point: metric name, unit, labels, value.
#[derive(Debug, Clone, PartialEq)]
struct Point {
    metric: String,
    unit: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn points_of(rm: &ResourceMetrics) -> Vec<Point> {
    let mut out = Vec::new();
    for scope in rm.scope_metrics() {
        for metric in scope.metrics() {
            let mut push = |labels: Vec<(String, String)>, value: f64| {
                out.push(Point {
                    metric: metric.name().to_owned(),
                    unit: metric.unit().to_owned(),
                    labels: labels.into_iter().collect(),
                    value,
                })
            };
            let kv = |a: &mut dyn Iterator<Item = &KeyValue>| -> Vec<(String, String)> {
                a.map(|kv| (kv.key.to_string(), kv.value.to_string()))
                    .collect()
            };
            match metric.data() {
                AggregatedMetrics::U64(MetricData::Gauge(g)) => g
                    .data_points()
                    .for_each(|p| push(kv(&mut p.attributes()), p.value() as f64)),
                AggregatedMetrics::I64(MetricData::Gauge(g)) => g
                    .data_points()
                    .for_each(|p| push(kv(&mut p.attributes()), p.value() as f64)),
                AggregatedMetrics::U64(MetricData::Sum(s)) => {
                    assert!(s.is_monotonic(), "{} is a counter", metric.name());
                    s.data_points()
                        .for_each(|p| push(kv(&mut p.attributes()), p.value() as f64))
                }
                other => panic!("unexpected aggregation for {}: {other:?}", metric.name()),
            }
        }
    }
    out
}

struct Harness {
    shared: Arc<Shared>,
    memory: InMemoryMetricExporter,
    exporter: Arc<Exporter>,
}

impl Harness {
    fn new(max_series: usize) -> Self {
        let shared = Arc::new(Shared::new(1));
        let memory = InMemoryMetricExporter::default();
        let config = ExportConfig {
            endpoint: "http://unused:4317".into(),
            // Only explicit flushes export in these tests.
            interval: Duration::from_secs(3600),
            timeout: Duration::from_secs(1),
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            max_series_per_metric: max_series,
            stale_on_shutdown: true,
        };
        let resource = crate::telemetry::resource("svc", Some("pod-1"), Some("prod-eu"));
        let exporter = Arc::new(Exporter::with_exporter(
            memory.clone(),
            &config,
            resource,
            shared.clone(),
        ));
        Self {
            shared,
            memory,
            exporter,
        }
    }

    fn set(&self, ns: &str, name: &str, verdict: Option<(ConditionStatus, &str, Option<i64>)>) {
        let mut index = self.shared.index_mut();
        let key = index.key(ns, name);
        index.apply(
            key,
            verdict.map(|(status, reason, since)| Verdict {
                status,
                reason: reason.into(),
                since,
            }),
        );
    }

    /// Flushes and returns the points of that export only.
    fn export(&self) -> Vec<Point> {
        self.memory.reset();
        self.exporter.flush_blocking().expect("flush");
        let finished = self.memory.get_finished_metrics().expect("metrics");
        assert_eq!(finished.len(), 1, "one export per flush");
        points_of(&finished[0])
    }
}

fn select<'a>(points: &'a [Point], metric: &str) -> Vec<&'a Point> {
    points.iter().filter(|p| p.metric == metric).collect()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn exports_names_units_labels_and_values() {
    let h = Harness::new(100);
    h.set(
        "sei",
        "ok",
        Some((ConditionStatus::True, "TLSSecretReady", Some(100))),
    );
    h.set(
        "sei",
        "broken",
        Some((ConditionStatus::False, "TLSSecretNotFound", Some(200))),
    );
    h.set(
        "sei",
        "new",
        Some((ConditionStatus::Unknown, "ConditionMissing", None)),
    );
    let points = h.export();

    let mut ready: Vec<_> = select(&points, names::READY)
        .into_iter()
        .map(|p| (p.labels.clone(), p.value, p.unit.clone()))
        .collect();
    ready.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        ready,
        vec![
            (
                labels(&[("name", "broken"), ("namespace", "sei")]),
                0.0,
                String::new()
            ),
            (
                labels(&[("name", "ok"), ("namespace", "sei")]),
                1.0,
                String::new()
            ),
        ],
        "no ready sample for Unknown"
    );

    let mut status: Vec<_> = select(&points, names::STATUS)
        .into_iter()
        .map(|p| (p.labels.clone(), p.value))
        .collect();
    status.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        status,
        vec![
            (
                labels(&[
                    ("name", "broken"),
                    ("namespace", "sei"),
                    ("reason", "TLSSecretNotFound"),
                    ("status", "False")
                ]),
                1.0
            ),
            (
                labels(&[
                    ("name", "new"),
                    ("namespace", "sei"),
                    ("reason", "ConditionMissing"),
                    ("status", "Unknown")
                ]),
                1.0
            ),
            (
                labels(&[
                    ("name", "ok"),
                    ("namespace", "sei"),
                    ("reason", "TLSSecretReady"),
                    ("status", "True")
                ]),
                1.0
            ),
        ]
    );

    let since = select(&points, names::LAST_TRANSITION);
    assert_eq!(since.len(), 2);
    assert!(
        since.iter().all(|p| p.unit == "s"),
        "seconds, so Prometheus adds no other suffix"
    );
    assert!(since
        .iter()
        .any(|p| p.labels["name"] == "broken" && p.value == 200.0));

    let up = select(&points, names::UP);
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].value, 1.0);
    assert!(up[0].labels.is_empty());

    let objects: BTreeMap<_, _> = select(&points, names::OBJECTS)
        .into_iter()
        .map(|p| (p.labels["status"].clone(), p.value))
        .collect();
    assert_eq!(
        objects,
        [
            ("False".to_string(), 1.0),
            ("True".to_string(), 1.0),
            ("Unknown".to_string(), 1.0)
        ]
        .into()
    );

    for counter in [
        names::WATCH_EVENTS,
        names::WATCH_ERRORS,
        names::DECODE_ERRORS,
        names::EXPORT_ERRORS,
        names::EXPORTS,
        names::STALENESS_MARKERS,
    ] {
        assert!(!select(&points, counter).is_empty(), "{counter} exported");
        assert!(
            counter.ends_with("_total"),
            "{counter}: counters carry _total themselves"
        );
    }
    // No unit that Prometheus translation would turn into a suffix (`1` -> `_ratio`).
    assert!(
        points.iter().all(|p| p.unit.is_empty() || p.unit == "s"),
        "units: {:?}",
        points
            .iter()
            .map(|p| &p.unit)
            .collect::<std::collections::BTreeSet<_>>()
    );
    // Label values are bounded: no free text anywhere.
    assert!(points
        .iter()
        .all(|p| p.labels.values().all(|v| v.len() <= 253)));
}

#[test]
fn resource_carries_service_instance_and_cluster() {
    let h = Harness::new(10);
    h.memory.reset();
    h.exporter.flush_blocking().unwrap();
    let finished = h.memory.get_finished_metrics().unwrap();
    let resource = finished[0].resource();
    let get = |k: &'static str| {
        resource
            .get(&opentelemetry::Key::from_static_str(k))
            .map(|v| v.to_string())
    };
    assert_eq!(get("service.name").as_deref(), Some("svc"));
    assert_eq!(get("service.instance.id").as_deref(), Some("pod-1"));
    assert_eq!(get("k8s.cluster.name").as_deref(), Some("prod-eu"));
    let scope = finished[0].scope_metrics().next().unwrap().scope();
    assert_eq!(scope.name(), SCOPE_NAME);
}

#[test]
fn deleted_and_changed_series_are_not_reported_again() {
    let h = Harness::new(100);
    h.set(
        "sei",
        "a",
        Some((ConditionStatus::False, "TLSSecretNotFound", Some(1))),
    );
    h.set(
        "sei",
        "b",
        Some((ConditionStatus::False, "TLSSecretSANsMismatch", Some(1))),
    );
    assert_eq!(select(&h.export(), names::READY).len(), 2);

    h.set("sei", "a", None); // TLS removed / deleted
    h.set(
        "sei",
        "b",
        Some((ConditionStatus::Unknown, "Reconciling", Some(2))),
    );
    let points = h.export();
    assert!(
        points
            .iter()
            .all(|p| p.labels.get("name").map(String::as_str) != Some("a")),
        "a is gone: {points:?}"
    );
    assert!(
        select(&points, names::READY).is_empty(),
        "b has no ready sample any more"
    );
    let status = select(&points, names::STATUS);
    assert_eq!(status.len(), 1);
    assert_eq!(
        status[0].labels["reason"], "Reconciling",
        "old reason series is not reported"
    );
}

#[test]
fn ten_thousand_nodes_export_without_overflow() {
    let h = Harness::new(crate::config::DEFAULT_MAX_SERIES);
    for i in 0..10_000 {
        let status = if i % 10 == 0 {
            ConditionStatus::False
        } else {
            ConditionStatus::True
        };
        h.set(
            &format!("ns-{}", i % 7),
            &format!("node-{i}"),
            Some((status, "TLSSecretReady", Some(i))),
        );
    }
    let points = h.export();
    for metric in [names::READY, names::STATUS, names::LAST_TRANSITION] {
        let series = select(&points, metric);
        assert_eq!(series.len(), 10_000, "{metric}");
        assert!(
            series
                .iter()
                .all(|p| !p.labels.contains_key("otel.metric.overflow")),
            "{metric} overflowed"
        );
    }
    assert_eq!(
        select(&points, names::READY)
            .iter()
            .filter(|p| p.value == 0.0)
            .count(),
        1_000
    );
}

#[test]
fn the_sdk_default_limit_would_overflow() {
    // Guards the test above: with the SDK's default-sized limit the same fleet overflows,
    // so the raised limit is what makes 10,000 work.
    let h = Harness::new(2_000);
    for i in 0..3_000 {
        h.set(
            "ns",
            &format!("node-{i}"),
            Some((ConditionStatus::True, "TLSSecretReady", None)),
        );
    }
    let points = h.export();
    assert!(select(&points, names::STATUS)
        .iter()
        .any(|p| p.labels.contains_key("otel.metric.overflow")));
}

#[test]
fn shutdown_reports_no_node_series() {
    let h = Harness::new(10);
    h.set(
        "sei",
        "a",
        Some((ConditionStatus::False, "TLSSecretNotFound", Some(1))),
    );
    h.memory.reset();
    h.exporter.shutdown_blocking().unwrap();
    let finished = h.memory.get_finished_metrics().unwrap();
    let last = points_of(finished.last().expect("a final export"));
    assert!(select(&last, names::READY).is_empty());
    assert_eq!(
        select(&last, names::UP).len(),
        1,
        "the final export still happens"
    );
}

fn stale(ns: &str, name: &str, series: Series) -> StaleSeries {
    StaleSeries {
        key: crate::index::ObjectKey {
            namespace: ns.into(),
            name: name.into(),
        },
        series,
    }
}

#[test]
fn staleness_request_has_no_recorded_value_points_with_the_same_identity() {
    let resource = ProtoResource {
        attributes: Attributes::from([KeyValue::new("service.name", "svc")]).0,
        ..Default::default()
    };
    let request = staleness_request(
        &resource,
        &[
            stale("sei", "a", Series::Ready),
            stale("sei", "b", Series::Ready),
            stale(
                "sei",
                "a",
                Series::Status {
                    status: ConditionStatus::False,
                    reason: "TLSSecretNotFound".into(),
                },
            ),
            stale("sei", "a", Series::LastTransition),
        ],
        UNIX_EPOCH + Duration::from_secs(42),
    );
    let rm = &request.resource_metrics[0];
    assert_eq!(rm.resource.as_ref(), Some(&resource));
    let scope = &rm.scope_metrics[0];
    assert_eq!(
        scope.scope.as_ref().map(|s| s.name.as_str()),
        Some(SCOPE_NAME)
    );
    let by_name: BTreeMap<&str, &proto::Metric> =
        scope.metrics.iter().map(|m| (m.name.as_str(), m)).collect();
    assert_eq!(
        by_name.keys().copied().collect::<Vec<_>>(),
        vec![names::LAST_TRANSITION, names::READY, names::STATUS]
    );
    assert_eq!(by_name[names::LAST_TRANSITION].unit, "s");
    let points = |name| match &by_name[name].data {
        Some(proto::metric::Data::Gauge(g)) => g.data_points.clone(),
        other => panic!("{name}: not a gauge: {other:?}"),
    };
    assert_eq!(points(names::READY).len(), 2);
    for p in points(names::READY).iter().chain(&points(names::STATUS)) {
        assert_eq!(p.flags, proto::DataPointFlags::NoRecordedValueMask as u32);
        assert_eq!(p.value, None);
        assert_eq!(p.time_unix_nano, 42_000_000_000);
    }
    let status_labels: BTreeMap<String, String> = points(names::STATUS)[0]
        .attributes
        .iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(proto_common::any_value::Value::StringValue(s)) => s.clone(),
                other => panic!("{other:?}"),
            };
            (kv.key.clone(), v)
        })
        .collect();
    assert_eq!(
        status_labels,
        labels(&[
            ("name", "a"),
            ("namespace", "sei"),
            ("reason", "TLSSecretNotFound"),
            ("status", "False")
        ])
    );
}

#[test]
fn export_errors_get_a_plain_hint() {
    let cases = [
        (
            "transport error: received corrupt message of type InvalidContentType",
            "does not speak TLS",
        ),
        ("invalid peer certificate: UnknownIssuer", "not trusted"),
        (
            "tcp connect error: Connection refused (os error 111)",
            "nothing answers",
        ),
        ("Timeout expired", "within --export-timeout"),
    ];
    for (error, hint) in cases {
        assert!(
            export_hint(error).is_some_and(|h| h.contains(hint)),
            "{error}"
        );
    }
    assert_eq!(export_hint("something else"), None);
}

/// Above the default cap, `--max-series` raised as docs/configuration.md says.
#[test]
fn fifty_thousand_nodes_export_without_overflow() {
    let h = Harness::new(65_536);
    for i in 0..50_000 {
        h.set(
            &format!("ns-{}", i % 50),
            &format!("node-{i}"),
            Some((ConditionStatus::True, "TLSSecretReady", Some(i))),
        );
    }
    let points = h.export();
    for metric in [names::READY, names::STATUS, names::LAST_TRANSITION] {
        let series = select(&points, metric);
        assert_eq!(series.len(), 50_000, "{metric}");
        assert!(
            series
                .iter()
                .all(|p| !p.labels.contains_key("otel.metric.overflow")),
            "{metric} overflowed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_changes_is_exported_at_once_in_a_few_exports() {
    let h = Arc::new(Harness::new(10_000));
    h.memory.reset();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(h.exporter.clone().run_event_driven(async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));
    // 1,000 verdict changes over about 200 ms, each announced as the watch stage does.
    let started = std::time::Instant::now();
    for i in 0..1_000 {
        h.set(
            "ns",
            &format!("n{i}"),
            Some((ConditionStatus::False, "TLSSecretNotFound", None)),
        );
        h.shared.changed.notify_one();
        if i % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let burst = started.elapsed();
    // Exported without waiting for the (hour-long) periodic interval. How fast is measured
    // end to end by tests/e2e.rs; here a generous bound only guards against hanging.
    let last_change = std::time::Instant::now();
    let deadline = last_change + Duration::from_secs(10);
    loop {
        let exports = h.memory.get_finished_metrics().unwrap();
        if exports
            .last()
            .is_some_and(|rm| select(&points_of(rm), names::READY).len() == 1_000)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the burst was never exported"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "burst of 1,000 changes in {burst:?} exported {:?} after the last change",
        last_change.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let exports = h.memory.get_finished_metrics().unwrap().len();
    let _ = stop_tx.send(true);
    let _ = task.await;
    assert!(
        (1..=5).contains(&exports),
        "1,000 changes in {burst:?} cost {exports} exports"
    );
}

#[test]
fn attributes_are_given_in_key_order() {
    // The SDK keeps an unsorted attribute set twice (as given and sorted); see node_labels.
    let key = crate::index::ObjectKey {
        namespace: "ns".into(),
        name: "n".into(),
    };
    let labels = node_labels(&key);
    assert!(labels
        .windows(2)
        .all(|w| w[0].key.as_str() < w[1].key.as_str()));
    assert!("name" < "namespace" && "namespace" < "reason" && "reason" < "status");
}

#[test]
fn reaching_the_series_cap_is_logged_at_most_every_five_minutes() {
    let last = AtomicI64::new(0);
    assert!(!warn_if_over_cap(99, 100, &last), "below the cap: silent");
    assert!(warn_if_over_cap(100, 100, &last), "at the cap: one line");
    assert!(
        !warn_if_over_cap(150, 100, &last),
        "again within 5 minutes: silent"
    );
    last.fetch_sub(301, Ordering::Relaxed);
    assert!(warn_if_over_cap(150, 100, &last), "5 minutes later: again");
}

#[test]
fn the_default_cap_fits_sixteen_thousand_nodes_and_folds_the_rest() {
    let h = Harness::new(crate::config::DEFAULT_MAX_SERIES);
    for i in 0..16_000 {
        h.set(
            "ns",
            &format!("node-{i}"),
            Some((ConditionStatus::False, "TLSSecretNotFound", Some(i))),
        );
    }
    let points = h.export();
    let ready = select(&points, names::READY);
    assert_eq!(ready.len(), 16_000);
    assert!(ready
        .iter()
        .all(|p| !p.labels.contains_key("otel.metric.overflow")));
    for i in 16_000..17_000 {
        h.set(
            "ns",
            &format!("node-{i}"),
            Some((ConditionStatus::False, "TLSSecretNotFound", Some(i))),
        );
    }
    let points = h.export();
    let ready = select(&points, names::READY);
    assert!(
        ready
            .iter()
            .any(|p| p.labels.contains_key("otel.metric.overflow")),
        "17,000 nodes exceed the default cap of {}",
        crate::config::DEFAULT_MAX_SERIES
    );
}

/// An export after a change carries the series of the SeiNodes that changed (and the
/// self-metrics), not all of them; the periodic export still carries all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_driven_exports_carry_only_what_changed() {
    let h = Harness::new(crate::config::DEFAULT_MAX_SERIES);
    for i in 0..1_000 {
        h.set(
            "ns",
            &format!("n-{i}"),
            Some((ConditionStatus::True, "TLSSecretReady", Some(i))),
        );
    }
    let shutdown = Arc::new(tokio::sync::Notify::new());
    let stop = shutdown.clone();
    let task = tokio::spawn(
        h.exporter
            .clone()
            .run_event_driven(async move { stop.notified().await }),
    );

    // The initial sync: every SeiNode is new, so the first event-driven export has them all.
    h.memory.reset();
    h.shared.changed.notify_one();
    let first = wait_for_export(&h).await;
    assert_eq!(select(&first, names::READY).len(), 1_000);

    // Two changes: the next event-driven export has exactly those two.
    h.set(
        "ns",
        "n-7",
        Some((ConditionStatus::False, "TLSSecretNotFound", Some(5_000))),
    );
    h.set(
        "ns",
        "n-9",
        Some((ConditionStatus::False, "TLSSecretSANsMismatch", Some(5_000))),
    );
    h.memory.reset();
    h.shared.changed.notify_one();
    let points = wait_for_export(&h).await;
    let ready = select(&points, names::READY);
    let mut names: Vec<_> = ready.iter().map(|p| p.labels["name"].as_str()).collect();
    names.sort();
    assert_eq!(names, ["n-7", "n-9"]);
    assert!(ready.iter().all(|p| p.value == 0.0));
    assert_eq!(select(&points, names::STATUS).len(), 2);
    assert_eq!(select(&points, names::LAST_TRANSITION).len(), 2);
    assert!(
        !select(&points, names::UP).is_empty(),
        "self-metrics are always reported"
    );

    // A periodic export (no change pending) has every SeiNode again.
    let all = tokio::task::spawn_blocking({
        let h_points = h.exporter.clone();
        let memory = h.memory.clone();
        move || {
            memory.reset();
            h_points.flush_blocking().expect("flush");
            points_of(&memory.get_finished_metrics().expect("metrics")[0])
        }
    })
    .await
    .unwrap();
    assert_eq!(select(&all, names::READY).len(), 1_000);
    assert_eq!(select(&all, names::STATUS).len(), 1_000);

    shutdown.notify_one();
    task.await.unwrap();
}

async fn wait_for_export(h: &Harness) -> Vec<Point> {
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        if let Ok(done) = h.memory.get_finished_metrics() {
            if let Some(last) = done.last() {
                return points_of(last);
            }
        }
    }
    panic!("no event-driven export within 5 s");
}
