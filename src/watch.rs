//! The watch stage: for every watched resource, one kube-runtime watcher per scope (all
//! namespaces, or each `--namespace`; cluster-scoped resources once), feeding object states
//! into the condition index.
//!
//! ```text
//!   ResourceSpec ──resolve (retried while not served)──▶ WatchedResource ──register family──┐
//!                                                                                          ▼
//!   API server ──list+watch──▶ watcher(Api<ObjectView>) ──Event──▶ handle_event ──▶ index ──▶ Shared::changed
//!                                   │ default_backoff
//!                                   └─ Err ─▶ classify, count, log (rate-limited)
//! ```
//!
//! Objects are watched as [`ObjectView`], not as a typed struct: with a typed watcher one
//! object whose status does not deserialize fails the whole list page and stalls the watch.
//! The view accepts any shape and keeps only the few fields read, so memory does not grow
//! with the size of the objects. Each object is then decoded on its own
//! ([`crate::conditions::decode_conditions`]); a bad condition is skipped and counted, a bad
//! object is logged, counted and skipped, and its last known state stays in the index.
//!
//! A resource whose CRD is missing is reported in one line and does not hold the others
//! back: it counts as synced for `/readyz` (the API server answered: nothing to watch), and
//! its watch (or discovery) keeps retrying, so a CRD installed later is picked up.
//!
//! `Init / InitApply / InitDone` is a resync: objects not re-listed are removed at
//! `InitDone`. Nothing is stored but the state: there is no reflector cache.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use tracing::{debug, error, info, warn};

use crate::conditions::decode_conditions;
use crate::index::{Change, Scope};
use crate::resource::{ResourceId, ResourceSpec, WatchedResource};
use crate::seinode::decode_verdict;
use crate::state::Shared;
use crate::stats::ResourceStats;
use crate::view::ObjectView;

/// The SeiNode's group and plural (the seed's resource), kept for callers that name it.
pub const GROUP: &str = crate::resource::SEI_GROUP;
pub const PLURAL: &str = "seinodes";

/// How often a persisting watch error is logged again at `warn` (every occurrence is
/// counted and logged at `debug`). Long enough not to flood, short enough that an operator
/// tailing logs sees the problem within minutes.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(300);

/// How often a watch logs the same unreadable object at `warn`; the rest go to `debug` (all
/// are counted). A controller that keeps writing a bad status would otherwise cost a line
/// per event.
const DECODE_LOG_INTERVAL: Duration = Duration::from_secs(300);
/// Objects remembered for that rate limit before the memory is cleared.
const DECODE_WARNED_MAX: usize = 10_000;

/// How long discovery waits before asking again for a resource that is not served: first
/// quickly (a CRD being installed with the watcher), then at most once a minute.
const DISCOVERY_RETRY: (Duration, Duration) = (Duration::from_secs(5), Duration::from_secs(60));

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
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// The resources; their positions are their [`ResourceId`]s.
    pub resources: Vec<ResourceSpec>,
    /// Namespaces to watch; empty means all namespaces (one cluster-wide watch).
    pub namespaces: Vec<String>,
    /// Server-side label selector, as `kubectl -l`.
    pub label_selector: Option<String>,
    /// How to get the full state.
    pub list: ListStrategy,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            resources: ResourceSpec::defaults(),
            namespaces: Vec::new(),
            label_selector: None,
            list: ListStrategy::default(),
        }
    }
}

impl WatchConfig {
    /// One scope per watch of a namespaced resource.
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

    /// The scopes of one resource: cluster-scoped resources are watched once.
    pub fn scopes_of(&self, resource: &WatchedResource) -> Vec<Scope> {
        if resource.namespaced {
            self.scopes()
        } else {
            vec![Scope::AllNamespaces]
        }
    }

    pub fn api(
        &self,
        client: Client,
        resource: &WatchedResource,
        scope: &Scope,
    ) -> Api<ObjectView> {
        match scope {
            Scope::AllNamespaces => Api::all_with(client, &resource.api),
            Scope::Namespace(ns) => Api::namespaced_with(client, ns, &resource.api),
        }
    }

    pub fn watcher_config(&self, strategy: ListStrategy) -> watcher::Config {
        // A short server-side timeout re-establishes quiet watches often, so that a
        // connection that hangs fails within the client's read timeout (crate::health).
        let base = watcher::Config::default().timeout(crate::health::WATCH_TIMEOUT_SECS);
        let config = match strategy {
            ListStrategy::Stream => base.streaming_lists(),
            ListStrategy::Paged => base.page_size(LIST_PAGE_SIZE),
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
    let watches = config.resources.iter().enumerate().map(|(i, spec)| {
        run_resource(
            client.clone(),
            &config,
            ResourceId(i as u16),
            spec.clone(),
            shared.clone(),
        )
    });
    futures::future::join_all(watches).await;
}

/// Marks a resource synced for `/readyz` once: when all its scopes have listed, or when the
/// API server says it does not serve it.
#[derive(Debug)]
pub struct Readiness {
    shared: Arc<Shared>,
    unsynced_scopes: AtomicUsize,
    done: AtomicBool,
}

impl Readiness {
    pub fn new(shared: Arc<Shared>, scopes: usize) -> Arc<Self> {
        Arc::new(Self {
            shared,
            unsynced_scopes: AtomicUsize::new(scopes),
            done: AtomicBool::new(false),
        })
    }

    fn scope_synced(&self) {
        let left = self
            .unsynced_scopes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .map_or(0, |n| n - 1);
        if left == 0 {
            self.mark();
        }
    }

    fn not_served(&self) {
        self.mark();
    }

    fn mark(&self) {
        if !self.done.swap(true, Ordering::SeqCst) {
            self.shared.mark_resource_synced();
        }
    }
}

/// Resolves one resource, then watches each of its scopes.
async fn run_resource(
    client: Client,
    config: &WatchConfig,
    id: ResourceId,
    spec: ResourceSpec,
    shared: Arc<Shared>,
) {
    // Scopes are known once resolved; until then one pending mark stands for the resource.
    let pending = Readiness::new(shared.clone(), 1);
    let resource = resolve(
        &client,
        &spec,
        &shared.stats.resources[id.0 as usize],
        &pending,
    )
    .await;
    let resource = match shared.register_resource(id, resource) {
        Ok(resource) => resource,
        Err(other) => {
            shared
                .stats
                .resource(id)
                .watch_errors
                .inc("family_conflict");
            error!(
                resource = %spec,
                other,
                "not watching {spec}: its metric family is already used by {other} (two groups \
                 share a kind name); give one of them its own family, e.g. --resource {spec}=<family>"
            );
            pending.not_served();
            return std::future::pending().await;
        }
    };
    let scopes = config.scopes_of(&resource);
    let readiness = if pending.done.load(Ordering::SeqCst) {
        // Already counted as synced (it was not served at first): later lists change nothing.
        pending
    } else {
        Readiness::new(shared.clone(), scopes.len())
    };
    let watches = scopes.into_iter().map(|scope| {
        run_scope(
            client.clone(),
            config,
            id,
            resource.clone(),
            scope,
            shared.clone(),
            readiness.clone(),
        )
    });
    futures::future::join_all(watches).await;
}

/// Resolves a resource, asking discovery again (with backoff) while it is not served.
async fn resolve(
    client: &Client,
    spec: &ResourceSpec,
    stats: &ResourceStats,
    readiness: &Readiness,
) -> WatchedResource {
    let mut wait = DISCOVERY_RETRY.0;
    let mut logged: Option<(&'static str, Instant)> = None;
    loop {
        let kind = match spec.resolve(client).await {
            Ok(Some(resource)) => {
                if logged.is_some() {
                    info!(resource = %spec, kind = %resource.api.kind, "resource is served now: watching it");
                }
                return resource;
            }
            Ok(None) => "crd_missing",
            Err(kube::Error::Api(status)) if status.code == 403 => "forbidden",
            Err(kube::Error::Api(status)) if status.code == 401 => "unauthorized",
            Err(_) => "connect",
        };
        stats.watch_errors.inc(kind);
        if kind == "crd_missing" {
            readiness.not_served();
        }
        if !matches!(logged, Some((k, at)) if k == kind && at.elapsed() < ERROR_LOG_INTERVAL) {
            logged = Some((kind, Instant::now()));
            warn!(resource = %spec, kind, "{}; asking again", explain_resource(kind, spec));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(DISCOVERY_RETRY.1);
    }
}

/// Watches one scope with the configured list strategy, falling back from a streaming list
/// to paged lists if the API server refuses streaming.
async fn run_scope(
    client: Client,
    config: &WatchConfig,
    id: ResourceId,
    resource: Arc<WatchedResource>,
    scope: Scope,
    shared: Arc<Shared>,
    readiness: Arc<Readiness>,
) {
    let api = config.api(client, &resource, &scope);
    let mut handler = ScopeHandler::new(id, resource, scope, shared, readiness);
    if config.list == ListStrategy::Stream {
        let stream =
            watcher(api.clone(), config.watcher_config(ListStrategy::Stream)).default_backoff();
        match watch_scope(stream, &mut handler, true).await {
            Ended::StreamEnded => return,
            // The same server refuses it for every resource: say so once per process.
            Ended::StreamingRefused(code)
                if STREAMING_REFUSAL_LOGGED.swap(true, Ordering::SeqCst) =>
            {
                debug!(
                    resource = %handler.resource.label,
                    code,
                    "streaming list refused: using paged lists"
                )
            }
            Ended::StreamingRefused(code) => warn!(
                resource = %handler.resource.label,
                scope = ?handler.scope,
                code,
                "the API server refused a streaming list (sendInitialEvents; the WatchList feature \
                 is off on this server, as by default in Kubernetes 1.33 and before 1.32): using \
                 paged lists instead; pass --initial-list paged to skip this attempt"
            ),
        }
    }
    let stream = watcher(api, config.watcher_config(ListStrategy::Paged)).default_backoff();
    watch_scope(stream, &mut handler, false).await;
}

/// When each process-wide watch error (same API server, same credentials for every watch)
/// was last logged at `warn`.
static PROCESS_WIDE_ERRORS: std::sync::Mutex<Vec<(&'static str, Instant)>> =
    std::sync::Mutex::new(Vec::new());

/// Whether a process-wide error of `kind` is due for a `warn` line; records it if so.
fn process_wide_line_due(kind: &'static str) -> bool {
    let mut logged = PROCESS_WIDE_ERRORS
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    match logged.iter_mut().find(|(k, _)| *k == kind) {
        Some((_, at)) if now.duration_since(*at) < ERROR_LOG_INTERVAL => false,
        Some((_, at)) => {
            *at = now;
            true
        }
        None => {
            logged.push((kind, now));
            true
        }
    }
}

/// Whether a refused streaming list was logged at `warn` already.
static STREAMING_REFUSAL_LOGGED: AtomicBool = AtomicBool::new(false);

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
pub async fn watch_scope<S>(stream: S, handler: &mut ScopeHandler, streaming: bool) -> Ended
where
    S: futures::Stream<Item = Result<Event<ObjectView>, watcher::Error>>,
{
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => handler.handle_event(event),
            Err(error) => {
                if streaming && !handler.synced_once && classify(&error) == "streaming_refused" {
                    handler.stats().watch_errors.inc("streaming_refused");
                    return Ended::StreamingRefused(status_code(&error).unwrap_or(400));
                }
                handler.handle_error(&error)
            }
        }
    }
    Ended::StreamEnded
}

/// The state of one watch between events.
pub struct ScopeHandler {
    id: ResourceId,
    resource: Arc<WatchedResource>,
    scope: Scope,
    shared: Arc<Shared>,
    readiness: Arc<Readiness>,
    /// Inside `Init .. InitDone`: changes are not announced one by one; `InitDone` announces.
    in_resync: bool,
    /// Whether this watch has failed since its last event (the health is only touched
    /// when that changes, not on every event).
    failing: bool,
    /// Whether this watch has completed a list since it started.
    synced_once: bool,
    /// The kind and time of the last error logged at `warn`, to rate-limit repeats.
    last_error: Option<(&'static str, Instant)>,
    /// When each unreadable object was last logged at `warn`.
    decode_warned: std::cell::RefCell<std::collections::HashMap<(String, String), Instant>>,
}

impl ScopeHandler {
    pub fn new(
        id: ResourceId,
        resource: Arc<WatchedResource>,
        scope: Scope,
        shared: Arc<Shared>,
        readiness: Arc<Readiness>,
    ) -> Self {
        Self {
            id,
            resource,
            scope,
            shared,
            readiness,
            in_resync: false,
            failing: false,
            synced_once: false,
            last_error: None,
            decode_warned: Default::default(),
        }
    }

    fn stats(&self) -> &ResourceStats {
        self.shared.stats.resource(self.id)
    }

    fn handle_event(&mut self, event: Event<ObjectView>) {
        if std::mem::take(&mut self.failing) {
            // The first event after an error: the watch works again.
            self.shared.watch_ok(self.id, &self.scope);
        }
        match event {
            Event::Apply(object) => {
                self.stats().watch_events.inc("apply");
                self.apply(&object);
            }
            Event::Delete(object) => {
                self.stats().watch_events.inc("delete");
                if let Some((namespace, name)) = self.identity(&object) {
                    let mut index = self.shared.index_mut();
                    let key = index.key(self.id, namespace, name);
                    if index.delete(&key).is_change() {
                        drop(index);
                        self.announce();
                    }
                }
            }
            Event::Init => {
                self.stats().watch_events.inc("init");
                self.in_resync = true;
                self.shared
                    .index_mut()
                    .begin_resync(self.id, self.scope.clone());
            }
            Event::InitApply(object) => {
                self.stats().watch_events.inc("init_apply");
                self.apply(&object);
            }
            Event::InitDone => {
                self.stats().watch_events.inc("init_done");
                self.in_resync = false;
                let (removed, total) = {
                    let mut index = self.shared.index_mut();
                    let removed = index.finish_resync(self.id, &self.scope);
                    (
                        removed,
                        index.count_by_resource(self.id.0 as usize + 1)[self.id.0 as usize],
                    )
                };
                self.stats()
                    .last_list_unix
                    .store(jiff::Timestamp::now().as_second(), Ordering::Relaxed);
                if let Some((kind, _)) = self.last_error.take() {
                    info!(resource = %self.resource.label, scope = ?self.scope, previous_error = kind, "watch recovered");
                }
                // The list pages are parsed and dropped: give their memory back.
                crate::memory::release_free_memory();
                if !self.synced_once {
                    self.synced_once = true;
                    self.readiness.scope_synced();
                    info!(resource = %self.resource.label, scope = ?self.scope, objects = total, "initial list complete");
                } else {
                    info!(resource = %self.resource.label, scope = ?self.scope, objects = total, removed, "relisted");
                }
                self.announce();
            }
        }
    }

    /// Decodes one object and records its state; a malformed object keeps its last state.
    fn apply(&mut self, object: &ObjectView) {
        let Some((namespace, name)) = self.identity(object) else {
            self.stats().decode_errors.inc("other");
            warn!(
                resource = %self.resource.label,
                "skipping a {} without metadata.name{}; check the API server's CRD for {}",
                self.resource.api.kind,
                if self.resource.namespaced { " or metadata.namespace" } else { "" },
                self.resource.label
            );
            return;
        };
        // Decoding happens before the lock is taken: the lock only guards a map insert.
        let conditions = decode_conditions(&object.data);
        let tls = self
            .resource
            .is_seinode
            .then(|| decode_verdict(&object.data));
        let generation = object.metadata.generation;
        let mut index = self.shared.index_mut();
        let key = index.key(self.id, namespace, name);
        index.touch(&self.scope, &key);
        let decoded = match conditions {
            Ok(decoded) => {
                index.clear_undecodable(&key);
                decoded
            }
            Err(error) => {
                index.mark_undecodable(&key, tokio::time::Instant::now());
                drop(index);
                self.stats().decode_errors.inc(error.kind());
                self.decode_warning(
                    namespace,
                    name,
                    format_args!(
                        "skipping {} {namespace}/{name} whose status cannot be read ({error}); its \
                         last known conditions are kept for {}s, then withdrawn; fix the object's \
                         status or the controller that wrote it",
                        self.resource.api.kind,
                        crate::health::BLIND_AFTER.as_secs()
                    ),
                );
                return;
            }
        };
        let (tls, tls_error) = match tls {
            None => (None, None),
            Some(Ok(verdict)) => (verdict, None),
            Some(Err(error)) => (None, Some(error)),
        };
        let mut state = index.state(generation, decoded.conditions, tls);
        if tls_error.is_some() {
            // The seed's verdict could not be read: keep the last known one.
            state.tls = index.get(&key).and_then(|s| s.tls.clone());
        }
        let change = index.apply(key, state);
        drop(index);
        let mut problems: Vec<String> = Vec::new();
        for skipped in &decoded.skipped {
            self.stats().decode_errors.inc(skipped.kind());
            problems.push(skipped.to_string());
        }
        if let Some(error) = &tls_error {
            // The same bad SidecarTLSSecretReady entry is one problem, counted once.
            if !problems
                .iter()
                .any(|p| p.contains(crate::seinode::CONDITION_TYPE))
            {
                self.stats().decode_errors.inc(error.kind());
                problems.push(error.to_string());
            }
        }
        if !problems.is_empty() {
            self.decode_warning(
                namespace,
                name,
                format_args!(
                    "skipping {} {namespace}/{name} conditions that cannot be read ({}); its other \
                     conditions are exported{}",
                    self.resource.api.kind,
                    problems.join("; "),
                    if tls_error.is_some() { " and its last known sidecar TLS verdict is kept" } else { "" }
                ),
            );
        }
        if change.is_change() && !self.in_resync {
            self.announce();
        }
        if change == Change::Added {
            debug!(resource = %self.resource.label, namespace, name, "object watched");
        }
    }

    /// Logs an unreadable object at `warn`, at most once per [`DECODE_LOG_INTERVAL`] per
    /// object (a controller that keeps rewriting a bad status would otherwise cost a line per
    /// event); at `debug` otherwise. Every occurrence is counted by the caller.
    fn decode_warning(&self, namespace: &str, name: &str, text: std::fmt::Arguments<'_>) {
        let now = Instant::now();
        let mut warned = self.decode_warned.borrow_mut();
        let key = (namespace.to_owned(), name.to_owned());
        if warned
            .get(&key)
            .is_some_and(|at| now.duration_since(*at) < DECODE_LOG_INTERVAL)
        {
            debug!(resource = %self.resource.label, namespace, name, "{text}");
            return;
        }
        if warned.len() >= DECODE_WARNED_MAX {
            // Bounded memory: forget who was warned about; worst case, a line more.
            warned.clear();
        }
        warned.insert(key, now);
        warn!(resource = %self.resource.label, namespace, name, "{text}");
    }

    fn handle_error(&mut self, error: &watcher::Error) {
        let kind = classify(error);
        self.stats().watch_errors.inc(kind);
        if kind != "crd_missing" {
            // A resource that is not served has nothing to vouch for: not blind.
            self.shared.watch_failed(self.id, &self.scope);
            self.failing = true;
        }
        if kind == "crd_missing" && !self.synced_once {
            // Definitely nothing to watch yet: do not hold /readyz back for it.
            self.readiness.not_served();
        }
        let repeat = matches!(self.last_error, Some((k, at)) if k == kind && at.elapsed() < ERROR_LOG_INTERVAL)
            // An unreachable API server or rejected credentials fail every watch alike: one
            // line for the process, not one per resource and namespace.
            || (matches!(kind, "connect" | "unauthorized") && !process_wide_line_due(kind));
        if repeat {
            debug!(resource = %self.resource.label, scope = ?self.scope, kind, %error, "watch error (retrying with backoff)");
            return;
        }
        self.last_error = Some((kind, Instant::now()));
        warn!(resource = %self.resource.label, scope = ?self.scope, kind, "{}; retrying with backoff", explain(kind, &self.resource.label, error));
    }

    fn announce(&self) {
        self.shared.changed.notify_one();
    }

    /// (namespace, name) of an object; cluster-scoped objects have an empty namespace.
    fn identity<'a>(&self, object: &'a ObjectView) -> Option<(&'a str, &'a str)> {
        let name = object.metadata.name.as_deref()?;
        if self.resource.namespaced {
            Some((object.metadata.namespace.as_deref()?, name))
        } else {
            Some(("", name))
        }
    }
}

/// The API server's message of a watch error, or the error itself.
fn status_message(error: &watcher::Error) -> String {
    match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.message.clone(),
        watcher::Error::WatchError(status) => status.message.clone(),
        other => other.to_string(),
    }
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
        (Some(400 | 422), _) if refuses_streaming(error) => "streaming_refused",
        (Some(400 | 422), _) => "bad_request",
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

/// Whether a 400/422 refuses the streaming list itself (WatchList off: the server rejects
/// `sendInitialEvents`/`resourceVersionMatch`), rather than something else in the request
/// such as a label selector it cannot parse.
fn refuses_streaming(error: &watcher::Error) -> bool {
    let message = match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => &status.message,
        watcher::Error::WatchError(status) => &status.message,
        _ => return false,
    };
    let message = message.to_ascii_lowercase();
    ["sendinitialevents", "resourceversionmatch", "watchlist"]
        .iter()
        .any(|m| message.contains(m))
}

/// One line for an operator: what is wrong and what to do.
fn explain(kind: &str, resource: &str, error: &watcher::Error) -> String {
    match kind {
        "bad_request" => format!(
            "the API server refused the list/watch of {resource} as invalid: {}; check \
             -l/--label-selector (kubectl -l syntax, e.g. app=sei,tier!=test)",
            status_message(error)
        ),
        "crd_missing" => format!(
            "the API server does not serve {resource}: its CRD is not installed (install it; the \
             watcher starts exporting as soon as it appears; the other resources are not held back)"
        ),
        "forbidden" => format!(
            "the API server refused to list/watch {resource}: grant this identity get, list \
             and watch on {resource} (see deploy/watcher/rbac.yaml) ({error})"
        ),
        "unauthorized" => format!(
            "the API server rejected the watcher's credentials: check the kubeconfig or service \
             account token ({error})"
        ),
        "expired" => "the watch's resourceVersion expired (410 Gone): relisting".to_owned(),
        "connect" => format!("cannot reach the API server: {error}"),
        _ => format!("watch of {resource} failed: {error}"),
    }
}

/// The line for a resource that discovery could not resolve.
fn explain_resource(kind: &str, spec: &ResourceSpec) -> String {
    match kind {
        "crd_missing" => format!(
            "the API server does not serve {spec}: its CRD is not installed, or the name is \
             wrong (check `kubectl api-resources`); it is picked up as soon as it is served, and \
             the other resources are not held back"
        ),
        "forbidden" | "unauthorized" => format!(
            "the API server refused discovery of {spec}: grant this identity access to the \
             discovery endpoints (system:discovery)"
        ),
        _ => format!("cannot reach the API server to resolve {spec}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seinode::ConditionStatus;
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
                .get("other"),
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
        assert_eq!(classify(&api(404)), "crd_missing");
        assert_eq!(classify(&api(403)), "forbidden");
        assert_eq!(classify(&api(401)), "unauthorized");
        assert_eq!(classify(&api(500)), "other");
        let gone = watcher::Error::WatchError(Box::new(Status {
            code: 410,
            ..Status::default()
        }));
        assert_eq!(classify(&gone), "expired");
        assert!(
            explain("crd_missing", "seinodes.sei.io", &api(404)).contains("CRD is not installed")
        );
        for kind in [
            "family_conflict",
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
        assert_eq!(types, ["SidecarTLSSecretReady", "SigningKeyReady"]);
        assert_eq!(state.outdated_by(&state.conditions[1]), Some(1));
        assert_eq!(state.tls.as_ref().unwrap().status, ConditionStatus::True);
        drop(index);
        assert_eq!(
            shared
                .stats
                .resource(ResourceId(0))
                .decode_errors
                .get("invalid_status"),
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
                .get("crd_missing"),
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
            message: "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled".into(),
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

    #[tokio::test]
    async fn a_refused_streaming_list_ends_the_watch_for_the_fallback() {
        for code in [400, 422] {
            let (ended, shared) = run_watch(vec![Err(refused(code)), Ok(Event::Init)], true).await;
            assert_eq!(ended, Ended::StreamingRefused(code));
            assert_eq!(
                shared
                    .stats
                    .resource(ResourceId(0))
                    .watch_errors
                    .get("streaming_refused"),
                1
            );
        }
    }

    #[tokio::test]
    async fn other_errors_and_paged_watches_never_fall_back() {
        // Paged: a 422 is an ordinary error, retried.
        let (ended, shared) = run_watch(
            vec![Err(invalid(422)), Ok(Event::Init), Ok(Event::InitDone)],
            false,
        )
        .await;
        assert_eq!(ended, Ended::StreamEnded);
        let errors = &shared.stats.resource(ResourceId(0)).watch_errors;
        assert_eq!(errors.get("streaming_refused"), 0);
        assert_eq!(errors.get("bad_request"), 1);
        // Streaming, before sync, a 400 about the label selector: a bad request, not a
        // refused streaming list; retried as it is, never "fallen back" from.
        let (ended, shared) = run_watch(
            vec![Err(invalid(400)), Ok(Event::Init), Ok(Event::InitDone)],
            true,
        )
        .await;
        assert_eq!(ended, Ended::StreamEnded);
        let errors = &shared.stats.resource(ResourceId(0)).watch_errors;
        assert_eq!(errors.get("streaming_refused"), 0);
        assert_eq!(errors.get("bad_request"), 1);
        let line = explain("bad_request", "seinodes.sei.io", &invalid(400));
        assert!(line.contains("--label-selector"), "{line}");
        assert!(line.contains("unable to parse requirement"), "{line}");
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
        assert_eq!(
            shared
                .stats
                .resource(ResourceId(0))
                .watch_errors
                .get("forbidden"),
            1
        );
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

    #[tokio::test]
    async fn a_flapping_bad_object_is_warned_about_once_and_counted_every_time() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let (shared, _) = seinode_shared();
        let mut events: Events = vec![Ok(Event::Init), Ok(Event::InitDone)];
        for _ in 0..20 {
            events.push(Ok(Event::Apply(object("ns", "b", Some("True")))));
            events.push(Ok(Event::Apply(object("ns", "b", None))));
        }
        feed(events, shared.clone()).await;
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text.matches("whose status cannot be read").count(),
            1,
            "one line per object per interval:\n{text}"
        );
        assert_eq!(
            shared
                .stats
                .resource(ResourceId(0))
                .decode_errors
                .get("conditions_not_a_list"),
            20
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_undecodable_object_is_counted_then_withdrawn_and_back_when_it_decodes() {
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
        let key = shared.index_mut().key(ResourceId(0), "ns", "b");
        let now = tokio::time::Instant::now;
        assert_eq!(shared.index().count_undecodable_by_resource(1), [1]);
        assert!(
            !shared.index().withdrawn(&key, now()),
            "kept within the bound"
        );
        tokio::time::advance(crate::health::BLIND_AFTER).await;
        assert!(shared.index().withdrawn(&key, now()), "withdrawn after it");
        feed(
            vec![Ok(Event::Apply(object("ns", "b", Some("False"))))],
            shared.clone(),
        )
        .await;
        assert_eq!(shared.index().count_undecodable_by_resource(1), [0]);
        assert!(!shared.index().withdrawn(&key, now()));
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
}
