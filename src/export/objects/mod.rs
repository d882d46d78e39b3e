//! The object exporter: one task that owns what it last delivered for every object and
//! sends values and staleness markers, in order, on one gRPC client.
//!
//! ```text
//!   refresh tick (1 s) ──▶ Refresh: 1/60 of the keys listed as the cycle began   ─┐
//!             takeover ──▶ Full:    snapshot + take_changed (one lock)            │
//!   Shared::changed ─▶ at once ─▶ Changes: take_changed (then COALESCE apart)     │
//!             shutdown ──▶ Retire:  delivered: trouble kept, rest marked          │
//!                                                                                ▼
//!     for each target key: values = series_of(now), stale = series_of(delivered) - values
//!                                                                                │
//!                 Encoder (chunks under --max-request-bytes) ──▶ collector       │
//!                 delivered[key] = now, for the chunks that were accepted ◀──────┘
//! ```
//!
//! This file holds the exporter and its run loop; the rest of its work is one file a job:
//! `targets.rs` (which objects an export covers, and which are withdrawn), `deliver.rs`
//! (one export: values, markers, refusals), `standby.rs` (a standby's dry exports and what
//! a takeover marks) and `finish.rs` (the last export before exiting).
//!
//! Nothing is journaled: a deletion, a reason change or a condition that went away is the
//! difference between the series of the state last delivered and the current one.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tracing::info;

pub mod chunk;
mod deliver;
pub mod encode;
mod finish;
pub mod series;
pub mod sink;
mod standby;
mod targets;
#[cfg(test)]
mod testkit;
mod wire;

pub use finish::FinalExport;
pub use sink::GrpcSink;

use crate::export::failures::{Failing, FailureLog};
use crate::index::{ObjectKey, ObjectState};
use crate::state::Shared;
use encode::Encoder;

/// The least time between two change exports. A lone change leaves at once; the changes
/// that arrive within this time after an export share the next one, so a burst of 1,000
/// flips costs a few exports.
pub const COALESCE: Duration = Duration::from_millis(250);

/// The refresh (every object's series sent again, for Prometheus' lookback) is spread over
/// its interval in slices, one per tick: a steady trickle instead of a burst that a change
/// export would queue behind.
pub const REFRESH_TICK: Duration = Duration::from_secs(1);

/// What an export sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    /// Every object's values, and markers for whatever changed since the last delivery: a
    /// takeover's first export, and the final one.
    Full,
    /// Slice `slice` of `slices` of the refresh cycle: the objects of that part of the
    /// keys listed when the cycle began (slice 0), and in slice 0 also the delivered
    /// objects that are gone. Prometheus' 5-minute lookback needs every series written
    /// again now and then.
    Refresh { slice: u32, slices: u32 },
    /// Only the objects that changed since the last export.
    Changes,
    /// The last export of a watcher that stops without a successor: this process stops
    /// vouching for its view. Markers for every delivered series except the troubled ones
    /// (`series::troubled_series_of`: conditions that need attention or are Unknown), which
    /// are sent once more and left to linger for Prometheus' lookback, so that a page is
    /// held until the alerts' `keep_firing_for` and SeiConditionWatcherAbsent take over
    /// instead of resolving on a shutdown.
    Retire,
}

impl ExportKind {
    pub(super) fn as_str(self) -> &'static str {
        self.failing().as_str()
    }

    /// The kind of export in the failure log.
    pub(super) fn failing(self) -> Failing {
        match self {
            ExportKind::Full => Failing::Full,
            ExportKind::Refresh { .. } => Failing::Refresh,
            ExportKind::Changes => Failing::Changes,
            ExportKind::Retire => Failing::Retire,
        }
    }
}

/// What one export did, for the caller and the tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub requests: usize,
    pub failed_requests: usize,
    /// Requests sent again after a refusal the collector may recover from (only in the
    /// final export, which has no later export to retry them).
    pub resent_requests: usize,
    /// Requests not sent at all: after a refusal the collector may recover from (memory
    /// limiter, full queue, timeout), the rest of that export is held back for a later one
    /// instead of piling more refused requests on a collector that is already out of room.
    pub held_requests: usize,
    pub values: usize,
    pub markers: usize,
    pub bytes: usize,
    /// Set by the first refusal the collector may recover from: the rest is held.
    pub(super) holding: bool,
}

/// Where encoded requests go: the collector, or a recorder in tests. A request is an
/// encoded `ExportMetricsServiceRequest` (encode.rs).
pub trait Sink: Send {
    fn send(
        &mut self,
        request: bytes::Bytes,
    ) -> impl std::future::Future<Output = Result<(), tonic::Status>> + Send;
}

/// The object exporter; its fields are shared with the sibling modules that do its jobs.
pub struct ObjectExporter<S> {
    pub(super) shared: Arc<Shared>,
    pub(super) sink: S,
    pub(super) encoder: Encoder,
    /// The state whose series each object's last accepted export carried.
    pub(super) delivered: HashMap<ObjectKey, Arc<ObjectState>>,
    /// Keys of refused change exports, sent again with the next one.
    pub(super) retry: HashSet<ObjectKey>,
    /// On a standby: the states each object had before its last changes, for
    /// [`LOOKBACK`](standby::LOOKBACK). The leader may have exported any of them, so
    /// a takeover marks the series of all of them that are not current.
    pub(super) recent: HashMap<ObjectKey, Vec<(tokio::time::Instant, Arc<ObjectState>)>>,
    pub(super) failures: Arc<FailureLog>,
    /// The keys of the refresh cycle under way, listed when it began.
    pub(super) cycle: Vec<ObjectKey>,
    /// Set by the final export: a refused request is sent again (finish.rs), as nothing
    /// later would send it.
    pub(super) finishing: bool,
    /// After a refused change export: the refused keys are sent again at a tick no earlier
    /// than this (the pause doubles from `RETRY_FIRST_PAUSE` up to `RETRY_MAX_PAUSE` while
    /// refusals go on); a new change is still sent at once, with them.
    pub(super) retry_after: Option<(tokio::time::Instant, Duration)>,
}

/// The first and the longest pause before refused changes are sent again by the tick.
pub const RETRY_FIRST_PAUSE: Duration = Duration::from_secs(1);
pub const RETRY_MAX_PAUSE: Duration = Duration::from_secs(16);

impl<S: Sink> ObjectExporter<S> {
    pub fn new(shared: Arc<Shared>, sink: S, encoder: Encoder, failures: Arc<FailureLog>) -> Self {
        Self {
            shared,
            sink,
            encoder,
            delivered: HashMap::new(),
            retry: HashSet::new(),
            finishing: false,
            retry_after: None,
            recent: HashMap::new(),
            failures,
            cycle: Vec::new(),
        }
    }

    /// Object series go out as `instance` (see [`encode::Encoder::set_instance`]).
    pub fn set_instance(&mut self, instance: &str) {
        self.encoder.set_instance(instance);
    }

    /// Objects whose series were delivered (for the tests).
    #[cfg(test)]
    pub fn delivered(&self) -> usize {
        self.delivered.len()
    }

    /// Exports every change as it happens and refreshes every object once per `refresh`,
    /// until `shutdown` completes.
    pub async fn run(
        &mut self,
        refresh: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let mut shutdown = std::pin::pin!(shutdown);
        let slices = (refresh.as_secs_f64() / REFRESH_TICK.as_secs_f64())
            .round()
            .max(1.0) as u32;
        let tick = refresh / slices;
        let mut periodic = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
        periodic.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut slice = 0;
        let mut last_changes: Option<tokio::time::Instant> = None;
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
                        // The encoded requests are freed by now: give the pages back.
                        crate::memory::release_free_memory();
                    } else {
                        info!("no longer leading: object series are left to the new leader");
                    }
                }
                _ = periodic.tick() => {
                    self.export(ExportKind::Refresh { slice, slices }).await;
                    slice = (slice + 1) % slices;
                    // Refused changes are sent again at a tick, not only with the next
                    // change: after an outage they arrive within the pause, and the
                    // failure log sees the change export succeed (its recovery line).
                    // After refusals, not before the pause is over (a collector out of
                    // memory would only decode and refuse them again).
                    let due = self
                        .retry_after
                        .is_none_or(|(at, _)| tokio::time::Instant::now() >= at);
                    if !self.retry.is_empty() && due {
                        self.export(ExportKind::Changes).await;
                    }
                }
                _ = self.shared.changed.notified() => {
                    if let Some(last) = last_changes {
                        tokio::select! {
                            _ = &mut shutdown => return,
                            _ = tokio::time::sleep_until(last + COALESCE) => {}
                        }
                    }
                    last_changes = Some(tokio::time::Instant::now());
                    self.export(ExportKind::Changes).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::COALESCE;
    use crate::conditions::Condition;
    use crate::conditions::ConditionStatus::{False, True};
    use crate::export::objects::testkit::Harness;
    use crate::resource::ResourceId;

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
        tokio::time::sleep(COALESCE * 3).await;
        let burst = recorder.take();
        let values: usize = burst.iter().map(|r| r.len()).sum();
        assert_eq!(values, 1_000, "each change exported once");
        assert!(
            (1..=5).contains(&burst.len()),
            "1,000 changes cost {} exports",
            burst.len()
        );
        set("lone", True);
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(recorder.take().len(), 1, "a lone change leaves at once");
        let _ = stop_tx.send(true);
        let _ = task.await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_refresh_sends_every_object_once_per_interval_a_slice_at_a_time() {
        let h = Harness::new(1 << 20);
        let Harness {
            shared,
            recorder,
            mut exporter,
        } = h;
        for i in 0..600 {
            let mut index = shared.index_mut();
            let key = index.key(ResourceId(1), "sei", &format!("net-{i}"));
            let state = index.state(
                None,
                vec![Condition {
                    type_: "NodesReady".into(),
                    status: True,
                    reason: "AllReady".into(),
                    since: None,
                    observed_generation: None,
                }],
                None,
            );
            index.apply(key, state);
        }
        exporter.export(super::ExportKind::Changes).await;
        assert_eq!(recorder.take().concat().len(), 600, "each new object once");
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            exporter
                .run(Duration::from_secs(60), async move {
                    let _ = stop_rx.wait_for(|s| *s).await;
                })
                .await;
        });
        tokio::time::sleep(Duration::from_millis(60_500)).await;
        let requests = recorder.take();
        let mut seen = std::collections::HashMap::new();
        for p in requests.concat() {
            *seen.entry(p.labels["name"].clone()).or_insert(0) += 1;
        }
        assert_eq!(
            seen.len(),
            600,
            "every object refreshed within the interval"
        );
        assert!(seen.values().all(|n| *n == 1), "and only once");
        // Spread: 60 slices of about 10 objects, none of them a burst.
        assert!(requests.len() >= 50, "{} requests", requests.len());
        let largest = requests.iter().map(Vec::len).max().unwrap();
        assert!(largest <= 30, "largest slice {largest} of 600 objects");
        let _ = stop_tx.send(true);
        let _ = task.await;
    }

    #[tokio::test]
    async fn a_refresh_cycle_marks_the_gone_objects_when_it_begins() {
        let mut h = Harness::new(1 << 20);
        networks(&mut h, (0..20).map(|i| format!("net-{i}"))).await;
        // net-3 goes away and its change is never exported (as after a relist that found
        // it gone): the cycle's first slice withdraws it, and no other slice says anything
        // about it.
        h.delete(1, "net-3");
        h.shared.index_mut().take_changed();
        let slices = 7;
        let mut markers = Vec::new();
        for slice in 0..slices {
            let kind = super::ExportKind::Refresh { slice, slices };
            markers.push(h.exporter.export(kind).await.markers);
        }
        assert_eq!(
            markers,
            [2, 0, 0, 0, 0, 0, 0],
            "its pair and its since, once"
        );
        let points = h.recorder.take().concat();
        let values: Vec<&str> = points
            .iter()
            .filter(|p| p.value.is_some())
            .map(|p| p.labels["name"].as_str())
            .collect();
        assert_eq!(values.len(), 19 * 2, "the other 19 objects, each once");
        assert!(!values.contains(&"net-3"));
    }

    /// Which slice of each cycle sent each object, for two cycles with 1,000 objects added
    /// in between (the index's map grows and reorders): an object keeps its place, so it is
    /// written again about one interval after the last time, not up to two.
    #[tokio::test]
    async fn an_object_keeps_its_place_in_the_refresh_cycle() {
        let mut h = Harness::new(1 << 20);
        networks(&mut h, (0..2_000).step_by(2).map(|i| format!("net-{i:04}"))).await;
        async fn cycle(h: &mut Harness) -> std::collections::HashMap<String, i64> {
            let slices = 60;
            let mut at = std::collections::HashMap::new();
            for slice in 0..slices {
                let kind = super::ExportKind::Refresh { slice, slices };
                h.exporter.export(kind).await;
                for p in h.recorder.take().concat() {
                    at.insert(p.labels["name"].clone(), slice as i64);
                }
            }
            at
        }
        let first = cycle(&mut h).await;
        networks(&mut h, (1..2_000).step_by(2).map(|i| format!("net-{i:04}"))).await;
        let second = cycle(&mut h).await;
        assert_eq!((first.len(), second.len()), (1_000, 2_000));
        for (name, slice) in &first {
            let moved = (second[name] - slice).abs();
            assert!(moved <= 1, "{name}: slice {slice}, then {}", second[name]);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_change_is_sent_again_at_the_next_tick_without_a_new_change() {
        let h = Harness::new(1 << 20);
        let Harness {
            shared,
            recorder,
            mut exporter,
        } = h;
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        recorder.set_refusing(true);
        let task = tokio::spawn(async move {
            exporter
                .run(Duration::from_secs(60), async move {
                    let _ = stop_rx.wait_for(|s| *s).await;
                })
                .await;
        });
        {
            let mut index = shared.index_mut();
            let key = index.key(ResourceId(1), "sei", "net");
            let state = index.state(
                None,
                vec![Condition {
                    type_: "NodesReady".into(),
                    status: False,
                    reason: "NodesNotReady".into(),
                    since: None,
                    observed_generation: None,
                }],
                None,
            );
            index.apply(key, state);
        }
        shared.changed.notify_one();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(recorder.take().is_empty(), "refused");
        recorder.set_refusing(false);
        // One object in 60 slices is not refreshed before the last one: what arrives at
        // the first tick is the retry.
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let points = recorder.take().concat();
        assert!(
            points
                .iter()
                .any(|p| p.labels["name"] == "net" && p.value == Some(1)),
            "{points:?}"
        );
        let _ = stop_tx.send(true);
        let _ = task.await;
    }

    /// SeiNetworks `names`, all ready, exported once as changes (the recorder emptied).
    async fn networks(h: &mut Harness, names: impl Iterator<Item = String>) {
        for name in names {
            h.set(1, &name, &[("NodesReady", True, "AllReady")], None);
        }
        h.exporter.export(super::ExportKind::Changes).await;
        h.recorder.take();
    }
}
