//! The object exporter: one task that owns what it last delivered for every object and
//! sends values and staleness markers, in order, on one gRPC client.
//!
//! ```text
//!                 periodic tick ──▶ Full:    snapshot + take_changed (one lock) ─┐
//!   Shared::changed ─▶ debounce ──▶ Changes: take_changed                        │
//!                      shutdown ──▶ Retire:  every delivered object, as deleted  │
//!                                                                                ▼
//!     for each target key: values = series_of(now), stale = series_of(delivered) - values
//!                                                                                │
//!                 Encoder (chunks under --max-request-bytes, gzip) ──▶ collector │
//!                 delivered[key] = now, for the chunks that were accepted ◀──────┘
//! ```
//!
//! Only the leader sends ([`Shared::is_leader`]; always, without leader election). A standby
//! runs the same exports *dry*: it records what it would have delivered without sending, so
//! that when it takes over, its first full export marks stale whatever changed while the
//! old leader was exporting (as far as this replica saw it).
//!
//! A resource whose watch is blind ([`crate::health`]) and an object that has been
//! undecodable for [`crate::health::BLIND_AFTER`] are exported as absent: markers once, then
//! nothing until they are current again.
//!
//! Nothing is journaled: a deletion, a reason change or a condition that went away is the
//! difference between the series of the state last delivered and the current one. A chunk
//! the collector refused changes nothing in `delivered`, so the next export computes the
//! same markers again; keys of a refused change export are retried with the next one.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use tracing::{debug, info, warn};

use super::encode::{Encoder, ObjectUpdate};
use super::failures::FailureLog;
use super::series::{series_of, vanished};
use crate::index::{ObjectKey, ObjectState};
use crate::state::Shared;

/// How long after a change the event-driven export runs. Changes that arrive within this
/// window share one export, so a burst of 1,000 flips costs a few exports; short enough
/// that a flip is exported well within the 1 s budget.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// Prometheus' default lookback: a series not written for this long is no longer seen, so
/// a standby need not remember older states than this.
pub const LOOKBACK: Duration = Duration::from_secs(5 * 60);

/// What an export sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    /// Every object's values (Prometheus' 5-minute lookback needs them refreshed), and
    /// markers for whatever changed since the last delivery.
    Full,
    /// Only the objects that changed since the last export.
    Changes,
    /// Markers for every delivered series: this process stops vouching for them.
    Retire,
}

impl ExportKind {
    fn as_str(self) -> &'static str {
        match self {
            ExportKind::Full => "full",
            ExportKind::Changes => "changes",
            ExportKind::Retire => "retire",
        }
    }
}

/// What one export did, for the caller and the tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub requests: usize,
    pub failed_requests: usize,
    pub values: usize,
    pub markers: usize,
    pub bytes: usize,
}

/// Where encoded requests go: the collector, or a recorder in tests.
pub trait Sink: Send {
    fn send(
        &mut self,
        request: ExportMetricsServiceRequest,
    ) -> impl std::future::Future<Output = Result<(), tonic::Status>> + Send;
}

pub struct ObjectExporter<S> {
    shared: Arc<Shared>,
    sink: S,
    encoder: Encoder,
    /// The state whose series each object's last accepted export carried.
    delivered: HashMap<ObjectKey, Arc<ObjectState>>,
    /// Keys of refused change exports, sent again with the next one.
    retry: HashSet<ObjectKey>,
    /// On a standby: the states each object had before its last changes, for
    /// [`LOOKBACK`]. The leader may have exported any of them, so a takeover marks the
    /// series of all of them that are not current.
    recent: HashMap<ObjectKey, Vec<(tokio::time::Instant, Arc<ObjectState>)>>,
    failures: Arc<FailureLog<4>>,
}

impl<S: Sink> ObjectExporter<S> {
    pub fn new(
        shared: Arc<Shared>,
        sink: S,
        encoder: Encoder,
        failures: Arc<FailureLog<4>>,
    ) -> Self {
        Self {
            shared,
            sink,
            encoder,
            delivered: HashMap::new(),
            retry: HashSet::new(),
            recent: HashMap::new(),
            failures,
        }
    }

    /// Object series go out as `instance` (see [`super::encode::Encoder::set_instance`]).
    pub fn set_instance(&mut self, instance: &str) {
        self.encoder.set_instance(instance);
    }

    /// Objects whose series were delivered.
    pub fn delivered(&self) -> usize {
        self.delivered.len()
    }

    /// Exports periodically and after every change until `shutdown` completes.
    pub async fn run(
        &mut self,
        interval: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut periodic =
            tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        periodic.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut leadership = self.shared.leadership();
        leadership.mark_unchanged();
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => return,
                Ok(()) = leadership.changed() => {
                    // Taking over: send everything at once, with markers for what changed
                    // since the old leader's last export (as this replica saw it).
                    if *leadership.borrow_and_update() {
                        info!("leading: exporting every object series");
                        self.export(ExportKind::Full).await;
                    } else {
                        info!("no longer leading: object series are left to the new leader");
                    }
                }
                _ = periodic.tick() => {
                    self.export(ExportKind::Full).await;
                    // The encoded requests are freed by now: give the pages back.
                    crate::memory::release_free_memory();
                }
                _ = self.shared.changed.notified() => {
                    tokio::select! {
                        _ = &mut shutdown => return,
                        _ = tokio::time::sleep(DEBOUNCE) => {}
                    }
                    self.export(ExportKind::Changes).await;
                }
            }
        }
    }

    /// One export of `kind`; never fails: refused requests are counted, logged and retried
    /// by later exports.
    pub async fn export(&mut self, kind: ExportKind) -> Report {
        let targets = self.targets(kind);
        if kind != ExportKind::Retire && !self.shared.is_leader() {
            self.shadow(targets);
            return Report::default();
        }
        let resources = self.shared.resources();
        // Per target: the state to remember once delivered, and how many values it sends.
        let mut outcomes: Vec<(Option<Arc<ObjectState>>, usize)> =
            Vec::with_capacity(targets.len());
        let mut refused = vec![false; targets.len()];
        let mut report = Report::default();
        // A copy (a few strings), so that sending can borrow the exporter mutably.
        let encoder = self.encoder.clone();
        let mut chunker = encoder.chunker(unix_nanos(SystemTime::now()));
        let mut pending = Vec::new();
        // Requests are cut and sent one at a time (see `Encoder::chunker`); a target whose
        // resource is not resolved (cannot happen once indexed) is skipped as delivered.
        for (key, now) in &targets {
            let Some(Some(resource)) = resources.get(key.resource.0 as usize) else {
                outcomes.push((now.clone(), 0));
                continue;
            };
            let values = match (kind, now) {
                (ExportKind::Retire, _) | (_, None) => Vec::new(),
                (_, Some(state)) => series_of(state, resource.is_seinode),
            };
            let mut stale = match self.delivered.get(key) {
                Some(old)
                    if now.as_ref().is_some_and(|n| Arc::ptr_eq(n, old))
                        && kind != ExportKind::Retire =>
                {
                    Vec::new()
                }
                Some(old) => vanished(&series_of(old, resource.is_seinode), &values),
                None => Vec::new(),
            };
            // After a takeover: whatever the old leader may have sent and is not current.
            if let Some(states) = self.recent.get(key) {
                for (_, old) in states {
                    stale.extend(vanished(&series_of(old, resource.is_seinode), &values));
                }
                stale.sort();
                stale.dedup();
            }
            let remember = if kind == ExportKind::Retire {
                None
            } else {
                now.clone()
            };
            outcomes.push((remember, values.len()));
            let update = ObjectUpdate {
                key,
                resource,
                values,
                stale,
            };
            if let Some(chunk) = chunker.push(&update) {
                pending.push(chunk);
            }
            for chunk in pending.drain(..) {
                self.send_chunk(kind, chunk, &outcomes, &mut refused, &mut report)
                    .await;
            }
        }
        if let Some(chunk) = chunker.finish() {
            self.send_chunk(kind, chunk, &outcomes, &mut refused, &mut report)
                .await;
        }
        let updates = targets.iter().zip(outcomes);
        for (((key, _), (state, _)), refused) in updates.zip(refused) {
            if refused {
                if kind == ExportKind::Changes {
                    self.retry.insert(key.clone());
                }
                continue;
            }
            self.recent.remove(key);
            match state {
                Some(state) => {
                    self.delivered.insert(key.clone(), state);
                }
                None => {
                    self.delivered.remove(key);
                }
            }
        }
        if report.failed_requests == 0 {
            // A full export delivers everything a change export would have.
            let covers: &[&'static str] = match kind {
                ExportKind::Full => &["changes"],
                _ => &[],
            };
            self.failures.succeeded(kind.as_str(), covers);
            if report.requests > 0 {
                self.shared
                    .stats
                    .exports
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        self.shared
            .stats
            .staleness_markers
            .fetch_add(report.markers as u64, std::sync::atomic::Ordering::Relaxed);
        debug!(kind = kind.as_str(), ?report, "exported object series");
        report
    }

    /// A standby's dry export: records what the leader was sent (as far as this replica
    /// sees) and the states the leader may still have out there.
    fn shadow(&mut self, targets: Vec<(ObjectKey, Option<Arc<ObjectState>>)>) {
        let now = tokio::time::Instant::now();
        for (key, state) in targets {
            let old = match &state {
                Some(state) => self.delivered.insert(key.clone(), state.clone()),
                None => self.delivered.remove(&key),
            };
            match (old, &state) {
                (Some(old), Some(new)) if Arc::ptr_eq(&old, new) => {}
                (Some(old), _) => self.recent.entry(key).or_default().push((now, old)),
                (None, _) => {}
            }
        }
        self.recent.retain(|_, states| {
            states.retain(|(at, _)| now.saturating_duration_since(*at) < LOOKBACK);
            !states.is_empty()
        });
        self.retry.clear();
    }

    /// Sends one request and accounts for it: delivered values and markers, or a refusal
    /// that marks its objects as not delivered.
    async fn send_chunk(
        &mut self,
        kind: ExportKind,
        chunk: super::encode::Chunk,
        outcomes: &[(Option<Arc<ObjectState>>, usize)],
        refused: &mut [bool],
        report: &mut Report,
    ) {
        report.requests += 1;
        let range = chunk.objects.clone();
        let (markers, bytes) = (chunk.markers, chunk.bytes);
        match self.sink.send(chunk.request).await {
            Ok(()) => {
                report.markers += markers;
                report.bytes += bytes;
                report.values += outcomes[range].iter().map(|(_, n)| n).sum::<usize>();
            }
            Err(status) => {
                report.failed_requests += 1;
                self.shared
                    .stats
                    .export_errors
                    .inc(crate::stats::ExportStage::Objects);
                self.failures.failed(
                    kind.as_str(),
                    &format_args!("{} ({bytes} bytes)", status_text(&status)),
                );
                refused[range].iter_mut().for_each(|r| *r = true);
            }
        }
    }

    /// The objects an export covers, with their current state (`None`: gone).
    fn targets(&mut self, kind: ExportKind) -> Vec<(ObjectKey, Option<Arc<ObjectState>>)> {
        let blind = self.shared.blind_resources();
        let now = tokio::time::Instant::now();
        let mut targets = self.collect_targets(kind);
        // Every state the index replaced since the last export: a standby records them
        // (the leader may have exported any); the leader has its `delivered`.
        let replaced = {
            let mut index = self.shared.index_mut();
            if kind != ExportKind::Retire {
                for (key, state) in &mut targets {
                    let withdrawn = blind.get(key.resource.0 as usize).copied().unwrap_or(false)
                        || index.withdrawn(key, now);
                    if withdrawn {
                        *state = None;
                    }
                }
            }
            index.take_replaced()
        };
        if !self.shared.is_leader() {
            for (key, states) in replaced {
                let recent = self.recent.entry(key).or_default();
                recent.extend(states.into_iter().map(|s| (now, s)));
            }
        }
        targets
    }

    /// The objects an export covers, as the index has them.
    fn collect_targets(&mut self, kind: ExportKind) -> Vec<(ObjectKey, Option<Arc<ObjectState>>)> {
        match kind {
            ExportKind::Full => {
                let snapshot = {
                    let mut index = self.shared.index_mut();
                    // The full export covers every change so far.
                    index.take_changed();
                    index.snapshot()
                };
                self.retry.clear();
                let present: HashSet<&ObjectKey> = snapshot.iter().map(|(k, _)| k).collect();
                let mut gone: Vec<ObjectKey> = self
                    .delivered
                    .keys()
                    .chain(self.recent.keys())
                    .filter(|k| !present.contains(k))
                    .cloned()
                    .collect();
                gone.sort_by(|a, b| {
                    (a.resource.0, &a.namespace, &a.name).cmp(&(
                        b.resource.0,
                        &b.namespace,
                        &b.name,
                    ))
                });
                gone.dedup();
                snapshot
                    .into_iter()
                    .map(|(k, s)| (k, Some(s)))
                    .chain(gone.into_iter().map(|k| (k, None)))
                    .collect()
            }
            ExportKind::Changes => {
                let mut index = self.shared.index_mut();
                let mut targets = index.take_changed();
                let retry: Vec<ObjectKey> = self.retry.drain().collect();
                let seen: HashSet<ObjectKey> = targets.iter().map(|(k, _)| k.clone()).collect();
                for key in retry.into_iter().filter(|k| !seen.contains(k)) {
                    let state = index.get(&key).cloned();
                    targets.push((key, state));
                }
                targets
            }
            ExportKind::Retire => self.delivered.keys().map(|k| (k.clone(), None)).collect(),
        }
    }
}

impl<S: Sink> ObjectExporter<S> {
    /// The last export before exiting, within `deadline`.
    pub async fn finish(&mut self, last: FinalExport, deadline: Duration) {
        let kind = match last {
            FinalExport::Nothing => return,
            FinalExport::Full => ExportKind::Full,
            FinalExport::Retire => ExportKind::Retire,
        };
        let objects = self.delivered.len();
        let what = match kind {
            ExportKind::Retire => "the staleness markers",
            _ => "the last values",
        };
        match tokio::time::timeout(deadline, self.export(kind)).await {
            Err(_) => warn!(
                ?deadline,
                kind = kind.as_str(),
                objects,
                "the final export did not finish in time: {what} of up to {objects} objects were \
                 not sent; exiting without them (series not marked stale go stale in \
                 Prometheus after its 5-minute lookback)"
            ),
            Ok(report) if report.failed_requests > 0 => warn!(
                kind = kind.as_str(),
                failed_requests = report.failed_requests,
                objects,
                "the final export failed: {what} of some of {objects} objects were not sent \
                 ({} of {} requests refused or timed out); exiting without them (series not \
                 marked stale go stale in Prometheus after its 5-minute lookback)",
                report.failed_requests,
                report.requests
            ),
            Ok(_) => {}
        }
    }
}

/// What the last export before exiting sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalExport {
    /// Nothing: a standby, or a leader that handed the series over to a successor.
    Nothing,
    /// Every value once more; the series linger in Prometheus for its lookback.
    Full,
    /// Staleness markers for every delivered series.
    Retire,
}

fn status_text(status: &tonic::Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
#[path = "objects_tests.rs"]
mod tests;
