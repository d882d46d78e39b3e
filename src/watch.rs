//! The watch stage: one kube-runtime watcher per scope (all namespaces, or each
//! `--namespace`), feeding verdicts into the readiness index.
//!
//! ```text
//!   API server ──list+watch──▶ watcher(Api<SeiNodeView>) ──Event──▶ handle_event ──▶ index
//!                                   │ default_backoff                         │
//!                                   └─ Err ─▶ classify, count, log (rate-limited)   └─▶ Shared::changed
//! ```
//!
//! Objects are watched as [`SeiNodeView`], not as a typed struct: with a typed watcher one
//! object whose status does not deserialize fails the whole list page and stalls the watch.
//! The view accepts any shape and keeps only the few fields the verdict needs, so memory does
//! not grow with the size of the objects. Each object is then decoded on its own
//! ([`crate::seinode::decode_verdict`]); a bad one is logged, counted and skipped, and its
//! last known verdict stays in the index.
//!
//! `Init / InitApply / InitDone` is a resync: objects not re-listed are removed at
//! `InitDone`. Nothing is stored but the verdict: there is no reflector cache.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::ApiResource;
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use tracing::{debug, info, warn};

use crate::index::{Change, Scope};
use crate::seinode::decode_verdict;
use crate::state::Shared;
use crate::view::SeiNodeView;

/// The API group, version and plural of the resource, as in the upstream CRD.
pub const GROUP: &str = "sei.io";
pub const VERSION: &str = "v1alpha1";
pub const KIND: &str = "SeiNode";
pub const PLURAL: &str = "seinodes";

/// How often a persisting watch error is logged again at `warn` (every occurrence is
/// counted and logged at `debug`). Long enough not to flood, short enough that an operator
/// tailing logs sees the problem within minutes.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(300);

/// The `ApiResource` for SeiNode, so the watch needs no discovery round-trip.
pub fn seinode_resource() -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: VERSION.into(),
        api_version: format!("{GROUP}/{VERSION}"),
        kind: KIND.into(),
        plural: PLURAL.into(),
    }
}

/// Objects per page when lists are paged. kube's default is 500; at ~20 KB per SeiNode a
/// page of 500 is a 10 MB response that is buffered whole (about three times over, in
/// hyper's read buffer and the collected body) before it is parsed.
pub const LIST_PAGE_SIZE: u32 = 100;

/// How a watch gets the full state at start and after a relist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ListStrategy {
    /// A streaming list: one watch request whose first events are the current objects
    /// (`sendInitialEvents`, the WatchList feature; on by default in Kubernetes 1.32 and from
    /// 1.34). Objects arrive one by one, so memory does not grow with a page. When the API
    /// server refuses it (WatchList off, as in 1.33), the watch falls back to `paged`.
    #[default]
    Stream,
    /// Paged list requests (LIST_PAGE_SIZE objects each), then a watch.
    Paged,
}

/// What to watch.
#[derive(Debug, Clone, Default)]
pub struct WatchConfig {
    /// Namespaces to watch; empty means all namespaces (one cluster-wide watch).
    pub namespaces: Vec<String>,
    /// Server-side label selector, as `kubectl -l`.
    pub label_selector: Option<String>,
    /// How to get the full state.
    pub list: ListStrategy,
}

impl WatchConfig {
    /// One scope per watch.
    pub fn scopes(&self) -> Vec<Scope> {
        if self.namespaces.is_empty() {
            vec![Scope::AllNamespaces]
        } else {
            let mut namespaces = self.namespaces.clone();
            namespaces.sort();
            namespaces.dedup();
            namespaces.into_iter().map(Scope::Namespace).collect()
        }
    }

    pub fn api(&self, client: Client, scope: &Scope) -> Api<SeiNodeView> {
        let resource = seinode_resource();
        match scope {
            Scope::AllNamespaces => Api::all_with(client, &resource),
            Scope::Namespace(ns) => Api::namespaced_with(client, ns, &resource),
        }
    }

    pub fn watcher_config(&self, strategy: ListStrategy) -> watcher::Config {
        let config = match strategy {
            ListStrategy::Stream => watcher::Config::default().streaming_lists(),
            ListStrategy::Paged => watcher::Config::default().page_size(LIST_PAGE_SIZE),
        };
        match &self.label_selector {
            Some(selector) => config.labels(selector),
            None => config,
        }
    }
}

/// Runs every watch until the process stops; never returns an error: watch errors are
/// retried with backoff, counted and logged.
pub async fn run(client: Client, config: WatchConfig, shared: Arc<Shared>) {
    let watches = config
        .scopes()
        .into_iter()
        .map(|scope| run_scope(client.clone(), &config, scope, shared.clone()));
    futures::future::join_all(watches).await;
}

/// Watches one scope with the configured list strategy, falling back from a streaming list
/// to paged lists if the API server refuses streaming.
async fn run_scope(client: Client, config: &WatchConfig, scope: Scope, shared: Arc<Shared>) {
    let api = config.api(client, &scope);
    if config.list == ListStrategy::Stream {
        let stream =
            watcher(api.clone(), config.watcher_config(ListStrategy::Stream)).default_backoff();
        match watch_scope(stream, scope.clone(), shared.clone(), true).await {
            Ended::StreamEnded => return,
            Ended::StreamingRefused(code) => warn!(
                scope = ?scope,
                code,
                "the API server refused a streaming list (sendInitialEvents; the WatchList feature \
                 is off on this server, as by default in Kubernetes 1.33 and before 1.32): using \
                 paged lists instead; pass --initial-list paged to skip this attempt"
            ),
        }
    }
    let stream = watcher(api, config.watcher_config(ListStrategy::Paged)).default_backoff();
    watch_scope(stream, scope, shared, false).await;
}

/// Why [`watch_scope`] returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The stream ended (it does not, in practice: errors are retried).
    StreamEnded,
    /// A streaming list was refused with this HTTP status before the first sync.
    StreamingRefused(u16),
}

/// Drives one watch stream into the index. With `streaming`, returns early if the API
/// server refuses the streaming list before the first sync (400 or 422: the request's
/// `sendInitialEvents`/`resourceVersionMatch` are invalid where WatchList is off).
pub async fn watch_scope<S>(stream: S, scope: Scope, shared: Arc<Shared>, streaming: bool) -> Ended
where
    S: futures::Stream<Item = Result<Event<SeiNodeView>, watcher::Error>>,
{
    let mut handler = ScopeHandler::new(scope, shared);
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => handler.handle_event(event),
            Err(error) => {
                if streaming && !handler.synced_once {
                    if let Some(code @ (400 | 422)) = status_code(&error) {
                        handler.shared.stats.watch_errors.inc("streaming_refused");
                        return Ended::StreamingRefused(code);
                    }
                }
                handler.handle_error(&error)
            }
        }
    }
    Ended::StreamEnded
}

/// The state of one watch between events.
struct ScopeHandler {
    scope: Scope,
    shared: Arc<Shared>,
    /// Inside `Init .. InitDone`: changes are not announced one by one; `InitDone` announces.
    in_resync: bool,
    /// Whether this watch has completed a list since it started.
    synced_once: bool,
    /// The kind and time of the last error logged at `warn`, to rate-limit repeats.
    last_error: Option<(&'static str, Instant)>,
}

impl ScopeHandler {
    fn new(scope: Scope, shared: Arc<Shared>) -> Self {
        Self {
            scope,
            shared,
            in_resync: false,
            synced_once: false,
            last_error: None,
        }
    }

    fn handle_event(&mut self, event: Event<SeiNodeView>) {
        let stats = &self.shared.stats;
        match event {
            Event::Apply(object) => {
                stats.watch_events.inc("apply");
                self.apply(&object);
            }
            Event::Delete(object) => {
                stats.watch_events.inc("delete");
                if let Some((namespace, name)) = identity(&object) {
                    let mut index = self.shared.index_mut();
                    let key = index.key(namespace, name);
                    if index.delete(&key).is_change() {
                        drop(index);
                        self.announce();
                    }
                }
            }
            Event::Init => {
                stats.watch_events.inc("init");
                self.in_resync = true;
                self.shared.index_mut().begin_resync(self.scope.clone());
            }
            Event::InitApply(object) => {
                stats.watch_events.inc("init_apply");
                self.apply(&object);
            }
            Event::InitDone => {
                stats.watch_events.inc("init_done");
                self.in_resync = false;
                let (removed, total) = {
                    let mut index = self.shared.index_mut();
                    (index.finish_resync(&self.scope), index.len())
                };
                stats.last_list_unix.store(
                    jiff::Timestamp::now().as_second(),
                    std::sync::atomic::Ordering::Relaxed,
                );
                if let Some((kind, _)) = self.last_error.take() {
                    info!(scope = ?self.scope, previous_error = kind, "SeiNode watch recovered");
                }
                // The list pages are parsed and dropped: give their memory back.
                crate::memory::release_free_memory();
                if !self.synced_once {
                    self.synced_once = true;
                    self.shared.mark_watch_synced();
                    info!(scope = ?self.scope, in_scope = total, "initial list of SeiNodes complete");
                } else {
                    info!(scope = ?self.scope, in_scope = total, removed, "SeiNodes relisted");
                }
                self.announce();
            }
        }
    }

    /// Decodes one object and records its verdict; a malformed object keeps its last verdict.
    fn apply(&mut self, object: &SeiNodeView) {
        let Some((namespace, name)) = identity(object) else {
            self.shared.stats.decode_errors.inc("other");
            warn!(
                "skipping a SeiNode without metadata.name or metadata.namespace; \
                 check the API server's SeiNode CRD (it must be namespaced)"
            );
            return;
        };
        // Decoding happens before the lock is taken: the lock only guards a map insert.
        let verdict = decode_verdict(&object.data);
        let mut index = self.shared.index_mut();
        let key = index.key(namespace, name);
        index.touch(&self.scope, &key);
        match verdict {
            Ok(verdict) => {
                let change = index.apply(key, verdict);
                drop(index);
                if change.is_change() && !self.in_resync {
                    self.announce();
                }
                if change == Change::Added {
                    debug!(namespace, name, "SeiNode in scope");
                }
            }
            Err(error) => {
                drop(index);
                self.shared.stats.decode_errors.inc(error.kind());
                warn!(
                    namespace,
                    name,
                    kind = error.kind(),
                    "skipping SeiNode whose status cannot be read ({error}); its last known \
                     verdict is kept; fix the object's status or the controller that wrote it"
                );
            }
        }
    }

    fn handle_error(&mut self, error: &watcher::Error) {
        let kind = classify(error);
        self.shared.stats.watch_errors.inc(kind);
        let repeat = matches!(self.last_error, Some((k, at)) if k == kind && at.elapsed() < ERROR_LOG_INTERVAL);
        if repeat {
            debug!(scope = ?self.scope, kind, %error, "SeiNode watch error (retrying with backoff)");
            return;
        }
        self.last_error = Some((kind, Instant::now()));
        warn!(scope = ?self.scope, kind, "{}; retrying with backoff", explain(kind, error));
    }

    fn announce(&self) {
        self.shared.changed.notify_one();
    }
}

fn identity(object: &SeiNodeView) -> Option<(&str, &str)> {
    Some((
        object.metadata.namespace.as_deref()?,
        object.metadata.name.as_deref()?,
    ))
}

/// The API status code of a watch error, if the API server answered with one.
fn status_code(error: &watcher::Error) -> Option<u16> {
    match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => Some(status.code),
        watcher::Error::WatchError(status) => Some(status.code),
        _ => None,
    }
}

/// A fixed label value for a watch error (see [`crate::stats::WATCH_ERRORS`]).
pub fn classify(error: &watcher::Error) -> &'static str {
    match (status_code(error), error) {
        (Some(404), _) => "crd_missing",
        (Some(403), _) => "forbidden",
        (Some(401), _) => "unauthorized",
        (Some(410), _) => "expired",
        (
            None,
            watcher::Error::InitialListFailed(_)
            | watcher::Error::WatchStartFailed(_)
            | watcher::Error::WatchFailed(_),
        ) => "connect",
        _ => "other",
    }
}

/// One line for an operator: what is wrong and what to do.
fn explain(kind: &str, error: &watcher::Error) -> String {
    match kind {
        "crd_missing" => format!(
            "the API server does not serve {PLURAL}.{GROUP}/{VERSION}: the SeiNode CRD is not \
             installed (install sei-k8s-controller's CRD; the watcher starts exporting as soon as \
             it appears)"
        ),
        "forbidden" => format!(
            "the API server refused to list/watch {PLURAL}.{GROUP}: grant this identity get, list \
             and watch on {PLURAL}.{GROUP} (see deploy/watcher/rbac.yaml) ({error})"
        ),
        "unauthorized" => format!(
            "the API server rejected the watcher's credentials: check the kubeconfig or service \
             account token ({error})"
        ),
        "expired" => "the watch's resourceVersion expired (410 Gone): relisting".to_owned(),
        "connect" => format!("cannot reach the API server: {error}"),
        _ => format!("SeiNode watch failed: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seinode::ConditionStatus;
    use kube::core::response::Status;
    use serde_json::json;

    fn object(ns: &str, name: &str, status: Option<&str>) -> SeiNodeView {
        let mut o = SeiNodeView::default();
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

    fn status_of(shared: &Shared, ns: &str, name: &str) -> Option<ConditionStatus> {
        let mut index = shared.index_mut();
        let key = index.key(ns, name);
        index.get(&key).map(|v| v.status)
    }

    type Events = Vec<Result<Event<SeiNodeView>, watcher::Error>>;

    async fn feed(events: Events, shared: Arc<Shared>) {
        watch_scope(
            futures::stream::iter(events),
            Scope::AllNamespaces,
            shared,
            false,
        )
        .await;
    }

    /// Runs a fresh watch over `events`; returns why it ended and the state it left.
    async fn run_watch(events: Events, streaming: bool) -> (Ended, Arc<Shared>) {
        let shared = Arc::new(Shared::new(1));
        let ended = watch_scope(
            futures::stream::iter(events),
            Scope::AllNamespaces,
            shared.clone(),
            streaming,
        )
        .await;
        (ended, shared)
    }

    #[tokio::test]
    async fn relist_replaces_state_and_bad_objects_keep_their_verdict() {
        let shared = Arc::new(Shared::new(1));
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
        let stats = &shared.stats;
        assert_eq!(stats.decode_errors.get("conditions_not_a_list"), 2);
        assert_eq!(stats.watch_errors.get("other"), 1);
        assert_eq!(stats.watch_events.get("init_apply"), 5);
        assert_eq!(stats.watch_events.get("init_done"), 2);
        assert!(
            stats
                .last_list_unix
                .load(std::sync::atomic::Ordering::Relaxed)
                > 0
        );
    }

    #[tokio::test]
    async fn objects_without_namespace_or_name_are_counted_and_skipped() {
        let shared = Arc::new(Shared::new(1));
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
        assert_eq!(shared.stats.decode_errors.get("other"), 2);
        assert_eq!(shared.index().len(), 1);
        assert_eq!(status_of(&shared, "ns", "ok"), Some(ConditionStatus::True));
    }

    #[tokio::test]
    async fn not_ready_until_first_list_completes() {
        let shared = Arc::new(Shared::new(1));
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
        assert_eq!(classify(&api(404)), "crd_missing");
        assert_eq!(classify(&api(403)), "forbidden");
        assert_eq!(classify(&api(401)), "unauthorized");
        assert_eq!(classify(&api(500)), "other");
        let gone = watcher::Error::WatchError(Box::new(Status {
            code: 410,
            ..Status::default()
        }));
        assert_eq!(classify(&gone), "expired");
        assert!(explain("crd_missing", &api(404)).contains("CRD is not installed"));
        for kind in [
            "crd_missing",
            "forbidden",
            "unauthorized",
            "expired",
            "connect",
            "other",
        ] {
            assert!(crate::stats::WATCH_ERRORS.contains(&kind));
        }
    }

    #[test]
    fn one_watch_per_namespace_or_one_for_all() {
        let all = WatchConfig::default();
        assert_eq!(all.scopes(), vec![Scope::AllNamespaces]);
        let some = WatchConfig {
            namespaces: vec!["b".into(), "a".into(), "b".into()],
            ..WatchConfig::default()
        };
        assert_eq!(
            some.scopes(),
            vec![Scope::Namespace("a".into()), Scope::Namespace("b".into())]
        );
    }

    fn refused(code: u16) -> watcher::Error {
        watcher::Error::WatchStartFailed(kube::Error::Api(Box::new(Status {
            code,
            message: "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled".into(),
            ..Status::default()
        })))
    }

    #[tokio::test]
    async fn a_refused_streaming_list_ends_the_watch_for_the_fallback() {
        for code in [400, 422] {
            let (ended, shared) = run_watch(vec![Err(refused(code)), Ok(Event::Init)], true).await;
            assert_eq!(ended, Ended::StreamingRefused(code));
            assert_eq!(shared.stats.watch_errors.get("streaming_refused"), 1);
        }
    }

    #[tokio::test]
    async fn other_errors_and_paged_watches_never_fall_back() {
        // Paged: a 422 is an ordinary error, retried.
        let (ended, shared) = run_watch(
            vec![Err(refused(422)), Ok(Event::Init), Ok(Event::InitDone)],
            false,
        )
        .await;
        assert_eq!(ended, Ended::StreamEnded);
        assert_eq!(shared.stats.watch_errors.get("streaming_refused"), 0);
        // Streaming, after the first sync: the server did stream, so a later 400 is not a refusal.
        let (ended, _) = run_watch(
            vec![Ok(Event::Init), Ok(Event::InitDone), Err(refused(400))],
            true,
        )
        .await;
        assert_eq!(ended, Ended::StreamEnded);
        // Streaming, before sync, a 403: the identity's problem, not the server's feature.
        let (ended, shared) = run_watch(vec![Err(refused(403))], true).await;
        assert_eq!(ended, Ended::StreamEnded);
        assert_eq!(shared.stats.watch_errors.get("forbidden"), 1);
    }
}
