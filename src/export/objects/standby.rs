//! The standby's side of leader election: its dry exports record what the leader was sent
//! (as far as this replica sees) and keep, for [`LOOKBACK`], the states each object had
//! before its last changes: the `recent` states the old leader may have exported. A
//! takeover's first export marks the series of every recent state that is not current.
//!
//! ```text
//!   standby:  export ─▶ shadow: delivered[key] = now; old state ─▶ recent[key] (LOOKBACK)
//!             index.take_replaced() ───────────────────────────▶ recent[key]
//!   takeover: Full export, stale += series_of(recent) - values; delivered ─▶ recent cleared
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::series::{series_of, vanished, Series};
use super::targets::Target;
use super::{ObjectExporter, Sink};
use crate::index::{ObjectKey, ObjectState};

/// Prometheus' default lookback: a series not written for this long is no longer seen, so
/// a standby need not remember older states than this.
pub const LOOKBACK: Duration = Duration::from_secs(5 * 60);

/// The recent states kept per object: the newest, once an object changed more often than
/// this within [`LOOKBACK`]. Without a bound a tenant rewriting one object with new
/// conditions grows the standby by every state it writes in 5 minutes (measured by
/// tests/bench/hostile-rss: 120 MiB in 90 s before the bound). A takeover then cannot mark
/// the older states' series: they linger for the rest of Prometheus' lookback. A real
/// object changes a few times in 5 minutes; 16 is several times that.
pub const RECENT_PER_OBJECT: usize = 16;

/// Records `state` as one of `key`'s recent states at `at`, keeping the newest
/// [`RECENT_PER_OBJECT`].
fn remember(
    recent: &mut HashMap<ObjectKey, Vec<(tokio::time::Instant, Arc<ObjectState>)>>,
    key: ObjectKey,
    at: tokio::time::Instant,
    state: Arc<ObjectState>,
) {
    let states = recent.entry(key).or_default();
    states.push((at, state));
    if states.len() > RECENT_PER_OBJECT {
        states.drain(..states.len() - RECENT_PER_OBJECT);
    }
}

impl<S: Sink> ObjectExporter<S> {
    /// A standby's dry export: records what the leader was sent (as far as this replica
    /// sees) and the states the leader may still have out there.
    pub(super) fn shadow(&mut self, targets: Vec<Target>) {
        let now = tokio::time::Instant::now();
        for (key, state) in targets {
            let old = match &state {
                Some(state) => self.delivered.insert(key.clone(), state.clone()),
                None => self.delivered.remove(&key),
            };
            match (old, &state) {
                (Some(old), Some(new)) if Arc::ptr_eq(&old, new) => {}
                (Some(old), _) => remember(&mut self.recent, key, now, old),
                (None, _) => {}
            }
        }
        self.recent.retain(|_, states| {
            states.retain(|(at, _)| now.saturating_duration_since(*at) < LOOKBACK);
            !states.is_empty()
        });
        self.retry.clear();
    }

    /// Records every state the index replaced since the last export: a standby keeps them
    /// (the leader may have exported any); the leader has its `delivered`.
    pub(super) fn remember_replaced(
        &mut self,
        replaced: HashMap<ObjectKey, Vec<Arc<ObjectState>>>,
        now: tokio::time::Instant,
    ) {
        if !self.shared.is_leader() {
            for (key, states) in replaced {
                for state in states {
                    remember(&mut self.recent, key.clone(), now, state);
                }
            }
        }
    }

    /// Adds to `stale` the series of `key`'s recent states (after a takeover: whatever the
    /// old leader may have sent) that are not among `values`.
    pub(super) fn mark_recent(
        &self,
        key: &ObjectKey,
        is_seinode: bool,
        values: &[(Series, i64)],
        stale: &mut Vec<Series>,
    ) {
        if let Some(states) = self.recent.get(key) {
            for (_, old) in states {
                stale.extend(vanished(&series_of(old, is_seinode), values));
            }
            stale.sort();
            stale.dedup();
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::conditions::ConditionStatus::{False, True};
    use crate::export::objects::testkit::{Harness, Point};
    use crate::export::objects::{ExportKind, Report};

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
        assert!(
            points
                .iter()
                .any(|p| p.value == Some(1)
                    && p.labels.get("reason").map(String::as_str) == Some("C"))
        );
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

    /// Issue 19, "memory only grows" on the standby: an object rewritten a thousand times
    /// with new conditions keeps the newest RECENT_PER_OBJECT states, and a takeover marks
    /// those.
    #[tokio::test]
    async fn a_standby_keeps_a_bounded_number_of_recent_states_per_object() {
        let mut h = Harness::new(1 << 20);
        h.shared.set_leader(false);
        for i in 0..1_000 {
            h.set(0, "v", &[(&format!("T{i}"), True, "A")], None);
            if i % 10 == 0 {
                h.exporter.export(ExportKind::Changes).await;
            }
        }
        h.exporter.export(ExportKind::Changes).await;
        let kept: usize = h.exporter.recent.values().map(Vec::len).sum();
        assert_eq!(kept, super::RECENT_PER_OBJECT);
        h.shared.set_leader(true);
        let report = h.exporter.export(ExportKind::Full).await;
        // Each kept state: its condition pair and its since series.
        assert_eq!(report.markers, 2 * super::RECENT_PER_OBJECT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_standby_forgets_states_older_than_the_lookback() {
        // A state replaced more than LOOKBACK before the takeover has gone stale in
        // Prometheus by itself: the takeover need not mark it.
        let mut h = Harness::new(1 << 20);
        h.shared.set_leader(false);
        h.set(0, "v", &[("Ready", True, "A")], None);
        h.exporter.export(ExportKind::Full).await;
        h.set(0, "v", &[("Ready", False, "B")], None);
        h.exporter.export(ExportKind::Changes).await;
        tokio::time::advance(super::LOOKBACK).await;
        h.set(0, "w", &[("Ready", True, "A")], None);
        h.exporter.export(ExportKind::Changes).await;
        assert!(h.recorder.take().is_empty());
        h.shared.set_leader(true);
        let report = h.exporter.export(ExportKind::Full).await;
        assert_eq!(report.markers, 0, "A was replaced a lookback ago");
        assert_eq!(report.values, 4, "v's B and w's A, each with its since");
    }
}
