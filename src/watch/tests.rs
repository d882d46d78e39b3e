//! Tests of the watch stage against scripted event streams.

use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::watcher::{self, Event};

use super::errors::{classify, explain};
use super::handler::STREAMING_UNFINISHED_LIMIT;
use super::*;
use crate::conditions::ConditionStatus;
use crate::resource::{ResourceSpec, WatchedResource};
use crate::stats::{DecodeErrorKind, WatchErrorKind, WatchEvent};
use crate::view::ObjectView;
use kube::core::response::Status;
use serde_json::json;

fn object(ns: &str, name: &str, status: Option<&str>) -> ObjectView {
    let mut o = ObjectView::default();
    o.metadata.name = Some(name.to_owned());
    o.metadata.namespace = Some(ns.to_owned());
    let conditions = match status {
        Some(s) => json!([{"type": "SidecarTLSSecretReady", "status": s, "reason": "R",
                           "lastTransitionTime": "2026-01-01T00:00:00Z"}]),
        None => json!("not a list"),
    };
    o.data = json!({"spec": {"sidecar": {"tls": {"secretName": "x"}}},
                    "status": {"conditions": conditions}});
    o
}

/// The seed's verdict status of a SeiNode.
fn status_of(shared: &Shared, ns: &str, name: &str) -> Option<ConditionStatus> {
    let mut index = shared.index_mut();
    let key = index.key(ResourceId(0), ns, name);
    index
        .get(&key)
        .and_then(|s| s.tls.as_ref().map(|v| v.status))
}

type Events = Vec<Result<Event<ObjectView>, watcher::Error>>;

/// Shared state watching only SeiNodes (ResourceId 0), already resolved.
fn seinode_shared() -> (Arc<Shared>, Arc<WatchedResource>) {
    let specs = vec![ResourceSpec::defaults().remove(0)];
    let shared = Arc::new(Shared::new(&specs));
    let resource = shared
        .register_resource(ResourceId(0), specs[0].known().unwrap())
        .unwrap();
    (shared, resource)
}

/// Runs a watch of SeiNodes in all namespaces over `events`, into `shared`.
async fn watch_into(events: Events, shared: Arc<Shared>, streaming: bool) -> Ended {
    let resource = shared.resources()[0].clone().unwrap();
    let readiness = Readiness::new(shared.clone(), 1);
    let mut handler = ScopeHandler::new(
        ResourceId(0),
        resource,
        Scope::AllNamespaces,
        shared,
        readiness,
    );
    watch_scope(futures::stream::iter(events), &mut handler, streaming).await
}

async fn feed(events: Events, shared: Arc<Shared>) {
    watch_into(events, shared, false).await;
}

/// Runs a fresh watch over `events`; returns why it ended and the state it left.
async fn run_watch(events: Events, streaming: bool) -> (Ended, Arc<Shared>) {
    let (shared, _) = seinode_shared();
    let ended = watch_into(events, shared.clone(), streaming).await;
    (ended, shared)
}

#[tokio::test]
async fn relist_replaces_state_and_bad_objects_keep_their_verdict() {
    let (shared, _) = seinode_shared();
    feed(
        vec![
            Ok(Event::Init),
            Ok(Event::InitApply(object("ns", "a", Some("True")))),
            Ok(Event::InitApply(object("ns", "b", Some("False")))),
            Ok(Event::InitApply(object("ns", "c", Some("True")))),
            Ok(Event::InitDone),
            // A bad update of b: counted and skipped, b stays False.
            Ok(Event::Apply(object("ns", "b", None))),
            Ok(Event::Delete(object("ns", "c", Some("True")))),
            // A watch error does not end the stream handling.
            Err(watcher::Error::NoResourceVersion),
            // A relist that no longer has `a`, and where b is still malformed.
            Ok(Event::Init),
            Ok(Event::InitApply(object("ns", "b", None))),
            Ok(Event::InitApply(object("ns", "d", Some("Unknown")))),
            Ok(Event::InitDone),
        ],
        shared.clone(),
    )
    .await;
    assert!(shared.watches_synced());
    assert_eq!(status_of(&shared, "ns", "a"), None, "not relisted: removed");
    assert_eq!(
        status_of(&shared, "ns", "b"),
        Some(ConditionStatus::False),
        "malformed: kept"
    );
    assert_eq!(status_of(&shared, "ns", "c"), None, "deleted");
    assert_eq!(
        status_of(&shared, "ns", "d"),
        Some(ConditionStatus::Unknown)
    );
    let stats = shared.stats.resource(ResourceId(0));
    assert_eq!(
        stats.decode_errors.get(DecodeErrorKind::ConditionsNotAList),
        2
    );
    assert_eq!(stats.watch_errors.get(WatchErrorKind::Other), 1);
    assert_eq!(stats.watch_events.get(WatchEvent::InitApply), 5);
    assert_eq!(stats.watch_events.get(WatchEvent::InitDone), 2);
    assert!(
        stats
            .last_list_unix
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
}

#[tokio::test]
async fn objects_without_namespace_or_name_are_counted_and_skipped() {
    let (shared, _) = seinode_shared();
    let mut no_namespace = object("ns", "a", Some("True"));
    no_namespace.metadata.namespace = None;
    let mut no_name = object("ns", "b", Some("True"));
    no_name.metadata.name = None;
    feed(
        vec![
            Ok(Event::Init),
            Ok(Event::InitApply(no_namespace.clone())),
            Ok(Event::InitApply(object("ns", "ok", Some("True")))),
            Ok(Event::InitDone),
            Ok(Event::Apply(no_name)),
            Ok(Event::Delete(no_namespace)),
        ],
        shared.clone(),
    )
    .await;
    assert_eq!(
        shared
            .stats
            .resource(ResourceId(0))
            .decode_errors
            .get(DecodeErrorKind::Other),
        2
    );
    assert_eq!(shared.index().len(), 1);
    assert_eq!(status_of(&shared, "ns", "ok"), Some(ConditionStatus::True));
}

#[tokio::test]
async fn not_ready_until_first_list_completes() {
    let (shared, _) = seinode_shared();
    feed(
        vec![
            Ok(Event::Init),
            Ok(Event::InitApply(object("ns", "a", Some("True")))),
        ],
        shared.clone(),
    )
    .await;
    assert!(!shared.watches_synced());
    shared.mark_exporter_ready();
    assert!(!shared.is_ready());
}

#[test]
fn classifies_errors_by_status_code() {
    let api = |code| {
        watcher::Error::InitialListFailed(kube::Error::Api(Box::new(Status {
            code,
            ..Status::default()
        })))
    };
    assert_eq!(classify(&api(404)), WatchErrorKind::CrdMissing);
    assert_eq!(classify(&api(403)), WatchErrorKind::Forbidden);
    assert_eq!(classify(&api(401)), WatchErrorKind::Unauthorized);
    assert_eq!(classify(&api(500)), WatchErrorKind::Other);
    let gone = watcher::Error::WatchError(Box::new(Status {
        code: 410,
        ..Status::default()
    }));
    assert_eq!(classify(&gone), WatchErrorKind::Expired);
    assert!(
        explain(WatchErrorKind::CrdMissing, "seinodes.sei.io", &api(404))
            .contains("CRD is not installed")
    );
}

#[test]
fn one_watch_per_namespace_or_one_for_all() {
    let all = WatchConfig::default();
    assert_eq!(all.scopes(), vec![Scope::AllNamespaces]);
    let cluster_scoped = WatchedResource {
        namespaced: false,
        ..ResourceSpec::defaults()[0].known().unwrap()
    };
    let some = WatchConfig {
        namespaces: vec!["b".into(), "a".into(), "b".into()],
        ..WatchConfig::default()
    };
    assert_eq!(
        some.scopes(),
        vec![Scope::Namespace("a".into()), Scope::Namespace("b".into())]
    );
    assert_eq!(some.scopes_of(&cluster_scoped), vec![Scope::AllNamespaces]);
}

fn conditions(o: &ObjectView) -> serde_json::Value {
    o.data["status"]["conditions"].clone()
}

#[tokio::test]
async fn every_condition_and_the_generation_reach_the_index() {
    let (shared, _) = seinode_shared();
    let mut o = object("ns", "v", Some("True"));
    o.metadata.generation = Some(7);
    let mut list = conditions(&o).as_array().unwrap().clone();
    list.push(json!({"type": "SigningKeyReady", "status": "False", "reason": "SigningKeyInvalid", "observedGeneration": 6}));
    list.push(json!({"type": "Broken", "status": "maybe"}));
    o.data["status"]["conditions"] = serde_json::Value::Array(list);
    feed(
        vec![
            Ok(Event::Init),
            Ok(Event::InitApply(o)),
            Ok(Event::InitDone),
        ],
        shared.clone(),
    )
    .await;
    let mut index = shared.index_mut();
    let key = index.key(ResourceId(0), "ns", "v");
    let state = index.get(&key).unwrap().clone();
    assert_eq!(state.generation, Some(7));
    let types: Vec<&str> = state.conditions.iter().map(|c| &*c.type_).collect();
    // The condition with an unreadable status is exported as Unknown, never seen readable.
    assert_eq!(
        types,
        ["SidecarTLSSecretReady", "SigningKeyReady", "Broken"]
    );
    assert_eq!(
        (state.conditions[2].status, &*state.conditions[2].reason),
        (ConditionStatus::Unknown, "StatusUnreadable")
    );
    assert_eq!(state.outdated_by(&state.conditions[1]), Some(1));
    assert_eq!(state.tls.as_ref().unwrap().status, ConditionStatus::True);
    drop(index);
    assert_eq!(
        shared
            .stats
            .resource(ResourceId(0))
            .decode_errors
            .get(DecodeErrorKind::InvalidStatus),
        1,
        "the bad condition is counted"
    );
}

#[tokio::test]
async fn a_missing_crd_does_not_hold_readiness_back() {
    let (shared, _) = seinode_shared();
    let missing = watcher::Error::InitialListFailed(kube::Error::Api(Box::new(Status {
        code: 404,
        ..Status::default()
    })));
    feed(vec![Err(missing)], shared.clone()).await;
    assert!(shared.watches_synced());
    assert_eq!(
        shared
            .stats
            .resource(ResourceId(0))
            .watch_errors
            .get(WatchErrorKind::CrdMissing),
        1
    );
}

#[test]
fn a_second_resource_with_the_same_family_is_refused() {
    let specs = vec![
        ResourceSpec::parse("widgets.a.example").unwrap(),
        ResourceSpec::parse("widgets.b.example").unwrap(),
    ];
    let shared = Shared::new(&specs);
    let widget = |spec: &ResourceSpec| {
        WatchedResource::new(
            spec,
            kube::api::ApiResource {
                group: spec.group.clone(),
                version: "v1".into(),
                api_version: format!("{}/v1", spec.group),
                kind: "Widget".into(),
                plural: "widgets".into(),
            },
            true,
        )
    };
    assert!(shared
        .register_resource(ResourceId(0), widget(&specs[0]))
        .is_ok());
    assert_eq!(
        shared.register_resource(ResourceId(1), widget(&specs[1])),
        Err("widgets.a.example".to_owned())
    );
}

fn refused(code: u16) -> watcher::Error {
    watcher::Error::WatchStartFailed(kube::Error::Api(Box::new(Status {
        code,
        message:
            "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled"
                .into(),
        ..Status::default()
    })))
}

/// What the API server answers to `-l 'app in sei'` (a selector it cannot parse).
fn invalid(code: u16) -> watcher::Error {
    watcher::Error::WatchStartFailed(kube::Error::Api(Box::new(Status {
        code,
        message: "unable to parse requirement: found 'sei', expected: '('".into(),
        ..Status::default()
    })))
}

/// Runs a watch over `events`; returns why it ended and the count of `kind` errors.
async fn ended_and_errors(events: Events, streaming: bool, kind: WatchErrorKind) -> (Ended, u64) {
    let (ended, shared) = run_watch(events, streaming).await;
    let count = shared.stats.resource(ResourceId(0)).watch_errors.get(kind);
    (ended, count)
}

#[tokio::test]
async fn a_refused_streaming_list_ends_the_watch_for_the_fallback() {
    for code in [400, 422] {
        let events = vec![Err(refused(code)), Ok(Event::Init)];
        assert_eq!(
            ended_and_errors(events, true, WatchErrorKind::StreamingRefused).await,
            (Ended::StreamingRefused(code), 1)
        );
    }
}

/// Issue 19 item 9: at 100,000 SeiNodes the streaming list outlasted the 30-second watch
/// request every time, so the watch began it again forever: never ready, and never an end
/// of list to drop deleted objects. Three lists cut short in a row give way to paged lists;
/// fewer, or a list that finishes in between, do not; a paged watch never falls back.
#[tokio::test]
async fn streaming_lists_that_never_finish_give_way_to_paged_lists() {
    let apply = || Ok(Event::InitApply(object("sei", "a", Some("True"))));
    let cut = |n: usize| -> Events {
        (0..n)
            .flat_map(|_| vec![Ok(Event::Init), apply()])
            .collect()
    };
    let (ended, shared) = run_watch(cut(4), true).await;
    assert_eq!(
        ended,
        Ended::StreamingUnfinished(STREAMING_UNFINISHED_LIMIT)
    );
    assert_eq!(
        shared
            .stats
            .resource(ResourceId(0))
            .watch_events
            .get(WatchEvent::Init),
        u64::from(STREAMING_UNFINISHED_LIMIT),
        "the fourth list is left to the paged watch"
    );
    assert_eq!(run_watch(cut(3), true).await.0, Ended::Stream);
    let mut finished_between = cut(2);
    finished_between.push(Ok(Event::InitDone));
    finished_between.extend(cut(3));
    assert_eq!(run_watch(finished_between, true).await.0, Ended::Stream);
    assert_eq!(run_watch(cut(10), false).await.0, Ended::Stream);
}

#[tokio::test]
async fn other_errors_and_paged_watches_never_fall_back() {
    let synced = || vec![Ok(Event::Init), Ok(Event::InitDone)];
    let cases: Vec<(&str, Events, bool, WatchErrorKind, u64)> =
        vec![
        (
            "paged: a 422 is an ordinary error, retried",
            vec![Err(invalid(422))].into_iter().chain(synced()).collect(),
            false,
            WatchErrorKind::BadRequest,
            1,
        ),
        (
            "streaming, before sync, a 400 about the label selector: a bad request, retried as \
             it is, never fallen back from",
            vec![Err(invalid(400))].into_iter().chain(synced()).collect(),
            true,
            WatchErrorKind::BadRequest,
            1,
        ),
        (
            "streaming, after the first sync: the server did stream, so a later 400 is counted \
             but never fallen back from",
            synced().into_iter().chain(vec![Err(refused(400))]).collect(),
            true,
            WatchErrorKind::StreamingRefused,
            1,
        ),
        (
            "streaming, before sync, a 403: the identity's problem, not the server's feature",
            vec![Err(refused(403))],
            true,
            WatchErrorKind::Forbidden,
            1,
        ),
    ];
    for (case, events, streaming, kind, count) in cases {
        let (ended, counted) = ended_and_errors(events, streaming, kind).await;
        assert_eq!((ended, counted), (Ended::Stream, count), "{case}");
    }
    let line = explain(WatchErrorKind::BadRequest, "seinodes.sei.io", &invalid(400));
    assert!(line.contains("--label-selector"), "{line}");
    assert!(line.contains("unable to parse requirement"), "{line}");
}

/// Captures what the watch logs at `warn` while `f` runs (current-thread runtime).
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures this thread's `warn` lines (and above) until the guard is dropped.
fn capture_warnings() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

#[tokio::test(start_paused = true)]
async fn a_flapping_bad_object_is_warned_about_once_and_counted_every_time() {
    let (captured, _guard) = capture_warnings();
    // Another test's thread may have cached "no interest" in these callsites meanwhile.
    tracing::callsite::rebuild_interest_cache();
    let (shared, _) = seinode_shared();
    let mut events: Events = vec![Ok(Event::Init), Ok(Event::InitDone)];
    for _ in 0..20 {
        events.push(Ok(Event::Apply(object("ns", "b", Some("True")))));
        events.push(Ok(Event::Apply(object("ns", "b", None))));
    }
    feed(events, shared.clone()).await;
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert_eq!(
        text.matches("has a status that cannot be read").count(),
        1,
        "one line per object per interval:\n{text}"
    );
    assert_eq!(
        shared
            .stats
            .resource(ResourceId(0))
            .decode_errors
            .get(DecodeErrorKind::ConditionsNotAList),
        20
    );
    // Still bad one interval later: one more line (paused clock, no real wait).
    tokio::time::advance(super::handler::DECODE_LOG_INTERVAL).await;
    feed(
        vec![Ok(Event::Apply(object("ns", "b", None)))],
        shared.clone(),
    )
    .await;
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert_eq!(
        text.matches("has a status that cannot be read").count(),
        2,
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_undecodable_object_is_counted_keeps_its_state_and_is_back_when_it_decodes() {
    let (shared, _) = seinode_shared();
    feed(
        vec![
            Ok(Event::Init),
            Ok(Event::InitApply(object("ns", "b", Some("True")))),
            Ok(Event::InitDone),
            Ok(Event::Apply(object("ns", "b", None))),
        ],
        shared.clone(),
    )
    .await;
    assert_eq!(shared.index().count_undecodable_by_resource(1), [1]);
    tokio::time::advance(crate::health::BLIND_AFTER * 10).await;
    assert_eq!(
        status_of(&shared, "ns", "b"),
        Some(ConditionStatus::True),
        "the last readable state is kept, however long"
    );
    feed(
        vec![Ok(Event::Apply(object("ns", "b", Some("False"))))],
        shared.clone(),
    )
    .await;
    assert_eq!(shared.index().count_undecodable_by_resource(1), [0]);
    assert_eq!(status_of(&shared, "ns", "b"), Some(ConditionStatus::False));
}

#[tokio::test(start_paused = true)]
async fn errors_that_keep_coming_make_the_resource_blind_and_an_event_clears_it() {
    let (shared, _) = seinode_shared();
    // Errors 60 s apart (a backoff plus a hanging request), as a stream in paused time.
    let steps: Vec<(u64, Result<Event<ObjectView>, watcher::Error>)> = vec![
        (0, Ok(Event::Init)),
        (0, Ok(Event::InitDone)),
        (0, Err(watcher::Error::NoResourceVersion)),
        (60, Err(watcher::Error::NoResourceVersion)),
    ];
    let stream = futures::stream::iter(steps).then(|(wait, item)| async move {
        tokio::time::sleep(Duration::from_secs(wait)).await;
        item
    });
    let resource = shared.resources()[0].clone().unwrap();
    let mut handler = ScopeHandler::new(
        ResourceId(0),
        resource,
        Scope::AllNamespaces,
        shared.clone(),
        Readiness::new(shared.clone(), 1),
    );
    watch_scope(stream, &mut handler, false).await;
    assert_eq!(shared.blind_resources(), [false], "60 s: not yet");
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(shared.blind_resources(), [true], "90 s of failures: blind");
    watch_scope(
        futures::stream::iter(vec![Ok(Event::Apply(object("ns", "a", Some("True"))))]),
        &mut handler,
        false,
    )
    .await;
    assert_eq!(
        shared.blind_resources(),
        [false],
        "an event: the watch works"
    );
}

/// A SeiNode with these condition entries (no sidecar TLS).
fn with_conditions(name: &str, conditions: serde_json::Value) -> ObjectView {
    let mut o = ObjectView::default();
    o.metadata.name = Some(name.to_owned());
    o.metadata.namespace = Some("ns".to_owned());
    o.data = json!({"status": {"conditions": conditions}});
    o
}

/// (type, status, reason) of every condition the index holds for ns/`name`.
/// Sorted by type: a kept condition may come after the ones read now.
fn conditions_of(shared: &Shared, name: &str) -> Vec<(String, ConditionStatus, String)> {
    let mut index = shared.index_mut();
    let key = index.key(ResourceId(0), "ns", name);
    let mut conditions: Vec<_> = index
        .get(&key)
        .map(|s| {
            s.conditions
                .iter()
                .map(|c| (c.type_.to_string(), c.status, c.reason.to_string()))
                .collect()
        })
        .unwrap_or_default();
    conditions.sort();
    conditions
}

/// Issue "a malformed entry resolves its own page": a `False` whose status, then whose
/// type, turns unreadable keeps its last readable value; a healthy write replaces it.
#[tokio::test]
async fn an_unreadable_field_keeps_the_last_readable_condition() {
    let (shared, _) = seinode_shared();
    let broken =
        json!({"type": "SigningKeyReady", "status": "False", "reason": "SigningKeyInvalid"});
    let ok = json!({"type": "NodeKeyReady", "status": "True", "reason": "NodeKeyValidated"});
    let expected = vec![
        (
            "NodeKeyReady".to_owned(),
            ConditionStatus::True,
            "NodeKeyValidated".to_owned(),
        ),
        (
            "SigningKeyReady".to_owned(),
            ConditionStatus::False,
            "SigningKeyInvalid".to_owned(),
        ),
    ];
    feed(
        vec![Ok(Event::Apply(with_conditions("v", json!([broken, ok]))))],
        shared.clone(),
    )
    .await;
    assert_eq!(conditions_of(&shared, "v"), expected);
    for (what, entry) in [
        (
            "status of the wrong type",
            json!({"type": "SigningKeyReady", "status": 0}),
        ),
        (
            "status missing",
            json!({"type": "SigningKeyReady", "reason": "SigningKeyInvalid"}),
        ),
        (
            "status nested too deep",
            json!({"type": "SigningKeyReady", "status": crate::view::TOO_DEEP}),
        ),
        (
            "type unreadable",
            json!({"type": ["SigningKeyReady"], "status": "False"}),
        ),
        ("entry not an object", json!("SigningKeyReady=False")),
    ] {
        feed(
            vec![Ok(Event::Apply(with_conditions("v", json!([entry, ok]))))],
            shared.clone(),
        )
        .await;
        assert_eq!(conditions_of(&shared, "v"), expected, "{what}");
        let index = shared.index();
        assert_eq!(
            index.count_unreadable_by_resource(1),
            [1],
            "{what}: counted"
        );
    }
    // The controller writes it readable again: the new value, nothing carried.
    let fixed =
        json!({"type": "SigningKeyReady", "status": "True", "reason": "SigningKeyValidated"});
    feed(
        vec![Ok(Event::Apply(with_conditions("v", json!([fixed, ok]))))],
        shared.clone(),
    )
    .await;
    assert_eq!(conditions_of(&shared, "v")[1].1, ConditionStatus::True);
    assert_eq!(shared.index().count_unreadable_by_resource(1), [0]);
    // Never seen readable: exported as Unknown with a reason that says why.
    feed(
        vec![Ok(Event::Apply(with_conditions(
            "new",
            json!([{"type": "NodeKeyReady", "status": "yes"}]),
        )))],
        shared.clone(),
    )
    .await;
    assert_eq!(
        conditions_of(&shared, "new"),
        [(
            "NodeKeyReady".to_owned(),
            ConditionStatus::Unknown,
            "StatusUnreadable".to_owned()
        )]
    );
}

/// Issue "a 440 KB log line": 5,000 invalid entries are one line under 4 KiB that says how
/// many problems it left out.
#[tokio::test]
async fn a_status_with_thousands_of_bad_entries_is_one_bounded_line() {
    let (captured, _guard) = capture_warnings();
    tracing::callsite::rebuild_interest_cache();
    let (shared, _) = seinode_shared();
    let long_type = "T".repeat(crate::conditions::MAX_TYPE_LEN);
    let entries: Vec<serde_json::Value> = (0..5_000)
        .map(|i| json!({"type": format!("{long_type}"), "status": format!("bad-{i}-{}", "x".repeat(100))}))
        .chain((0..5_000).map(|i| json!({"type": format!("bad type {i}"), "status": "True"})))
        .collect();
    let mut o = with_conditions("v", json!(entries));
    o.metadata.namespace = Some("n".repeat(63));
    o.metadata.name = Some("m".repeat(253));
    feed(vec![Ok(Event::Apply(o))], shared.clone()).await;
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].len() <= 4096, "{} bytes", lines[0].len());
    assert!(
        lines[0].contains("more;") || lines[0].contains(" more"),
        "{}",
        lines[0]
    );
}

#[path = "filter_tests.rs"]
mod filter_tests;
