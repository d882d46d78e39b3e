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
//! Objects are watched as [`ObjectView`](crate::view::ObjectView), not as a typed struct: with a typed watcher one
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

mod errors;
mod handler;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::watcher::watcher;
use kube::runtime::WatchStreamExt;
use kube::Client;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

pub use handler::{watch_scope, Ended, ScopeHandler};

use crate::index::Scope;
use crate::resource::{ResourceId, ResourceSpec, WatchedResource};
use crate::state::Shared;
use crate::stats::{ResourceStats, WatchErrorKind};
use crate::watched::{ListStrategy, WatchConfig};
use errors::explain_resource;

/// How often a persisting watch error is logged again at `warn` (every occurrence is
/// counted and logged at `debug`). Long enough not to flood, short enough that an operator
/// tailing logs sees the problem within minutes.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(300);

/// How long discovery waits before asking again for a resource that is not served: first
/// quickly (a CRD being installed with the watcher), then at most once a minute.
const DISCOVERY_RETRY: (Duration, Duration) = (Duration::from_secs(5), Duration::from_secs(60));

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
                .inc(WatchErrorKind::FamilyConflict);
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
    let mut logged: Option<(WatchErrorKind, Instant)> = None;
    loop {
        let kind = match spec.resolve(client).await {
            Ok(Some(resource)) => {
                if logged.is_some() {
                    info!(resource = %spec, kind = %resource.api.kind, "resource is served now: watching it");
                }
                return resource;
            }
            Ok(None) => WatchErrorKind::CrdMissing,
            Err(kube::Error::Api(status)) if status.code == 403 => WatchErrorKind::Forbidden,
            Err(kube::Error::Api(status)) if status.code == 401 => WatchErrorKind::Unauthorized,
            Err(_) => WatchErrorKind::Connect,
        };
        stats.watch_errors.inc(kind);
        if kind == WatchErrorKind::CrdMissing {
            readiness.not_served();
        }
        if !matches!(logged, Some((k, at)) if k == kind && at.elapsed() < ERROR_LOG_INTERVAL) {
            logged = Some((kind, Instant::now()));
            warn!(resource = %spec, %kind, "{}; asking again", explain_resource(kind, spec));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(DISCOVERY_RETRY.1);
    }
}

/// Watches one scope with the configured list strategy, falling back from a streaming list
/// to paged lists if the API server refuses streaming, or if streaming lists keep ending
/// before they finish ([`handler::STREAMING_UNFINISHED_LIMIT`]).
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
    let mut handler = ScopeHandler::new(id, resource, scope, shared, readiness)
        .with_max_conditions(config.max_conditions)
        .with_filters_and_labels(
            config.filters.clone(),
            config.allowlists.get(id.0 as usize).cloned(),
        );
    if config.list == ListStrategy::Stream {
        let stream =
            watcher(api.clone(), config.watcher_config(ListStrategy::Stream)).default_backoff();
        match watch_scope(stream, &mut handler, true).await {
            Ended::Stream => return,
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
            Ended::StreamingUnfinished(lists) => warn!(
                resource = %handler.resource.label,
                scope = ?handler.scope,
                lists,
                initial_list_timeout_secs = crate::health::INITIAL_LIST_TIMEOUT_SECS,
                "the API server ended {lists} streaming lists in a row before they finished (each \
                 must arrive within one watch request; this list is too large or the link too \
                 slow for that): using paged lists instead; pass --initial-list paged to skip \
                 this attempt"
            ),
        }
    }
    let stream = watcher(api, config.watcher_config(ListStrategy::Paged)).default_backoff();
    watch_scope(stream, &mut handler, false).await;
}

/// Whether a refused streaming list was logged at `warn` already.
static STREAMING_REFUSAL_LOGGED: AtomicBool = AtomicBool::new(false);
