//! One watch's handling of its stream: events into the index, errors classified, counted
//! and logged (rate-limited), unreadable objects kept for a while and warned about once.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::errors::{classify, explain, process_wide_line_due, status_code};
use super::{Readiness, ERROR_LOG_INTERVAL};
use crate::conditions::decode_kept_conditions;
use crate::index::{Change, Scope};
use crate::resource::{ResourceId, WatchedResource};
use crate::seinode::decode_verdict;
use crate::state::Shared;
use crate::stats::{DecodeErrorKind, ResourceStats, WatchErrorKind, WatchEvent};
use crate::view::ObjectView;

/// How often a watch logs the same unreadable object at `warn`; the rest go to `debug` (all
/// are counted). A controller that keeps writing a bad status would otherwise cost a line
/// per event.
pub(super) const DECODE_LOG_INTERVAL: Duration = Duration::from_secs(300);
/// Objects remembered for that rate limit before the memory is cleared.
const DECODE_WARNED_MAX: usize = 10_000;
/// The bytes of one warning line given to the list of an object's unreadable entries; the
/// rest are counted ("and N more"). With a namespace, a name and a resource at their
/// Kubernetes maximums around it, the line stays under 4 KiB.
const PROBLEMS_LOG_BYTES: usize = 2048;

/// Why [`watch_scope`] returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The stream ended (it does not, in practice: errors are retried).
    Stream,
    /// A streaming list was refused with this HTTP status before the first sync.
    StreamingRefused(u16),
    /// The server ended this many streaming lists in a row before they finished: each one
    /// must arrive within one watch request (`crate::health::INITIAL_LIST_TIMEOUT_SECS`),
    /// which a large enough list, or a slow enough link, never does.
    StreamingUnfinished(u32),
}

/// Streaming lists cut short in a row before a streaming watch gives way to paged lists.
/// Three: one cut short can be a server restart or a dropped connection; three in a row is
/// a list that does not fit in one watch request, or a link that drops every list (or a
/// server that stalls one for kube's idle timeout, 35 s without an event).
pub const STREAMING_UNFINISHED_LIMIT: u32 = 3;

/// Drives one watch stream into the index. With `streaming`, returns early if the API
/// server refuses the streaming list before the first sync (400 or 422: the request's
/// `sendInitialEvents`/`resourceVersionMatch` are invalid where WatchList is off).
pub async fn watch_scope<S>(stream: S, handler: &mut ScopeHandler, streaming: bool) -> Ended
where
    S: futures::Stream<Item = Result<Event<ObjectView>, watcher::Error>>,
{
    let mut stream = std::pin::pin!(stream);
    // Lists begun (`Init`) and not finished (`InitDone`) in a row.
    let mut unfinished = 0;
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => {
                match event {
                    Event::Init => unfinished += 1,
                    Event::InitDone => unfinished = 0,
                    _ => {}
                }
                // A new list begun while the last `STREAMING_UNFINISHED_LIMIT` never ended:
                // paged lists instead, before this one starts over again.
                if streaming && unfinished > STREAMING_UNFINISHED_LIMIT {
                    return Ended::StreamingUnfinished(unfinished - 1);
                }
                handler.handle_event(event)
            }
            Err(error) => {
                if streaming
                    && !handler.synced_once
                    && classify(&error) == WatchErrorKind::StreamingRefused
                {
                    handler
                        .stats()
                        .watch_errors
                        .inc(WatchErrorKind::StreamingRefused);
                    return Ended::StreamingRefused(status_code(&error).unwrap_or(400));
                }
                handler.handle_error(&error)
            }
        }
    }
    Ended::Stream
}

/// The state of one watch between events.
pub struct ScopeHandler {
    id: ResourceId,
    pub(super) resource: Arc<WatchedResource>,
    pub(super) scope: Scope,
    shared: Arc<Shared>,
    readiness: Arc<Readiness>,
    /// Inside `Init .. InitDone`: changes are not announced one by one; `InitDone` announces.
    in_resync: bool,
    /// Whether this watch has failed since its last event (the health is only touched
    /// when that changes, not on every event).
    failing: bool,
    /// Whether this watch has completed a list since it started.
    pub(super) synced_once: bool,
    /// The kind and time of the last error logged at `warn`, to rate-limit repeats.
    last_error: Option<(WatchErrorKind, Instant)>,
    /// When each unreadable object was last logged at `warn`.
    decode_warned: std::cell::RefCell<std::collections::HashMap<(String, String), Instant>>,
    /// Conditions exported per object (`--max-conditions-per-object`).
    max_conditions: usize,
    /// What is left out: this resource's type filter, denied namespaces (`crate::filters`).
    filters: Arc<crate::filters::Filters>,
    /// The labels and annotations copied onto this resource's info series, if any.
    allowlist: Option<crate::labels::Allowlist>,
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
            max_conditions: crate::conditions::MAX_CONDITIONS,
            filters: Default::default(),
            allowlist: None,
        }
    }

    /// Leaves out what `filters` say, and copies `allowlist`'s keys onto the info series
    /// (an empty allowlist: no info series).
    pub fn with_filters_and_labels(
        mut self,
        filters: Arc<crate::filters::Filters>,
        allowlist: Option<crate::labels::Allowlist>,
    ) -> Self {
        self.filters = filters;
        self.allowlist = allowlist.filter(|a| !a.is_empty());
        self
    }

    /// Exports at most `max` conditions per object (the default is
    /// [`crate::conditions::MAX_CONDITIONS`]).
    pub fn with_max_conditions(mut self, max: usize) -> Self {
        self.max_conditions = max;
        self
    }

    pub(super) fn stats(&self) -> &ResourceStats {
        self.shared.stats.resource(self.id)
    }

    fn handle_event(&mut self, event: Event<ObjectView>) {
        if std::mem::take(&mut self.failing) {
            // The first event after an error: the watch works again.
            self.shared.watch_ok(self.id, &self.scope);
        }
        match event {
            Event::Apply(object) => {
                self.stats().watch_events.inc(WatchEvent::Apply);
                self.apply(&object);
            }
            Event::Delete(object) => {
                self.stats().watch_events.inc(WatchEvent::Delete);
                if let Some((namespace, name)) = crate::watched::identity(&self.resource, &object) {
                    let mut index = self.shared.index_mut();
                    let key = index.key(self.id, namespace, name);
                    if index.delete(&key).is_change() {
                        drop(index);
                        self.announce();
                    }
                }
            }
            Event::Init => {
                self.stats().watch_events.inc(WatchEvent::Init);
                self.in_resync = true;
                self.shared
                    .index_mut()
                    .begin_resync(self.id, self.scope.clone());
            }
            Event::InitApply(object) => {
                self.stats().watch_events.inc(WatchEvent::InitApply);
                self.apply(&object);
            }
            Event::InitDone => {
                self.stats().watch_events.inc(WatchEvent::InitDone);
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
                    info!(resource = %self.resource.label, scope = ?self.scope, previous_error = %kind, "watch recovered");
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
        let Some((namespace, name)) = crate::watched::identity(&self.resource, object) else {
            self.stats().decode_errors.inc(DecodeErrorKind::Other);
            warn!(
                resource = %self.resource.label,
                "skipping a {} without metadata.name{}; check the API server's CRD for {}",
                self.resource.api.kind,
                if self.resource.namespaced { " or metadata.namespace" } else { "" },
                self.resource.label
            );
            return;
        };
        if !self.filters.keeps_namespace(namespace) {
            // Left out by --namespace-deny (the watch's field selector already does; this
            // holds whatever the server sends).
            return;
        }
        // Decoding happens before the lock is taken: the lock only guards a map insert.
        let generation = object.metadata.generation;
        let types = self.filters.types_of(self.id.0 as usize);
        let conditions =
            decode_kept_conditions(&object.data, generation, self.max_conditions, &|t| {
                types.keeps(t)
            });
        let info = self.allowlist.as_ref().map(|a| {
            a.copy(
                object.metadata.labels.as_ref(),
                object.metadata.annotations.as_ref(),
            )
        });
        let tls = self
            .resource
            .is_seinode
            .then(|| decode_verdict(&object.data));
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
                        "{} {namespace}/{name} has a status that cannot be read ({error}); its last \
                         readable conditions are kept and exported until it can be read again; fix \
                         the object's status or the controller that wrote it",
                        self.resource.api.kind,
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
        state.truncated = u32::try_from(decoded.truncated).unwrap_or(u32::MAX);
        state.filtered = u32::try_from(decoded.filtered).unwrap_or(u32::MAX);
        let mut cut_values = 0;
        if let Some((labels, cut)) = info {
            state.info = Some(index.info_labels(labels));
            cut_values = cut;
        }
        let previous = index.get(&key).cloned();
        state.carry_unreadable(
            previous.as_deref(),
            &decoded.unreadable,
            decoded.untyped,
            self.max_conditions,
        );
        if tls_error.is_some() {
            // The seed's verdict could not be read: keep the last known one.
            state.tls = previous.and_then(|s| s.tls.clone());
        }
        let change = index.apply(key, state);
        drop(index);
        let mut problems: Vec<String> = Vec::new();
        if cut_values > 0 {
            self.stats()
                .decode_errors
                .inc(DecodeErrorKind::LabelValueTooLong);
            self.decode_warning(
                namespace,
                name,
                format_args!(
                    "{} {namespace}/{name} has {cut_values} allowlisted label or annotation \
                     values longer than {} bytes: copied cut onto its info series; shorten them \
                     or take the key out of the allowlist",
                    self.resource.api.kind,
                    crate::labels::MAX_VALUE_LEN
                ),
            );
        }
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
                    "{} {namespace}/{name} has conditions that cannot be read whole ({}); what can \
                     be read is exported, the last readable values are kept{}; fix the object's \
                     status or the controller that wrote it",
                    self.resource.api.kind,
                    bounded_join(&problems, PROBLEMS_LOG_BYTES),
                    if tls_error.is_some() { ", and its last known sidecar TLS verdict" } else { "" }
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
        if kind != WatchErrorKind::CrdMissing {
            // A resource that is not served has nothing to vouch for: not blind.
            self.shared.watch_failed(self.id, &self.scope);
            self.failing = true;
        }
        if kind == WatchErrorKind::CrdMissing && !self.synced_once {
            // Definitely nothing to watch yet: do not hold /readyz back for it.
            self.readiness.not_served();
        }
        let repeat = matches!(self.last_error, Some((k, at)) if k == kind && at.elapsed() < ERROR_LOG_INTERVAL)
            // An unreachable API server or rejected credentials fail every watch alike: one
            // line for the process, not one per resource and namespace.
            || (matches!(kind, WatchErrorKind::Connect | WatchErrorKind::Unauthorized) && !process_wide_line_due(kind));
        if repeat {
            debug!(resource = %self.resource.label, scope = ?self.scope, %kind, %error, "watch error (retrying with backoff)");
            return;
        }
        self.last_error = Some((kind, Instant::now()));
        warn!(resource = %self.resource.label, scope = ?self.scope, %kind, "{}; retrying with backoff", explain(kind, &self.resource.label, error));
    }

    fn announce(&self) {
        self.shared.changed.notify_one();
    }
}

/// `items` joined with "; ", cut to about `budget` bytes (at a character boundary) with the
/// number of items left out: a status with 5,000 bad entries is one bounded line.
pub(super) fn bounded_join(items: &[String], budget: usize) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        let sep = if i == 0 { "" } else { "; " };
        if out.len() + sep.len() + item.len() > budget {
            if i == 0 {
                let mut cut = budget.min(item.len());
                while !item.is_char_boundary(cut) {
                    cut -= 1;
                }
                out.push_str(&item[..cut]);
                out.push_str("...");
                if items.len() > 1 {
                    out.push_str(&format!("; and {} more", items.len() - 1));
                }
            } else {
                out.push_str(&format!("; and {} more", items.len() - i));
            }
            return out;
        }
        out.push_str(sep);
        out.push_str(item);
    }
    out
}
