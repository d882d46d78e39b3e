//! Which objects an export covers and which series should exist now: a full export covers
//! every indexed object plus those delivered (or, on a standby, recently seen) that are
//! gone; a change export the keys the index marked changed plus those of a refused change
//! export; a retirement every delivered object, with its current state (deliver.rs keeps
//! only its troubled series).
//!
//! Withdrawal: a resource whose watch is blind ([`crate::health`]) is a target with no
//! state, so its objects are exported as absent: markers once, then nothing until the watch
//! works again. An object whose status cannot be read is never withdrawn: the index keeps
//! its last readable state (an unreadable field must not resolve a page).

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use super::{ExportKind, ObjectExporter, Sink};
use crate::index::{ObjectKey, ObjectState};

/// One object an export covers, with its current state (`None`: gone or withdrawn).
pub(super) type Target = (ObjectKey, Option<Arc<ObjectState>>);

impl<S: Sink> ObjectExporter<S> {
    /// The objects an export covers, with their current state (`None`: gone).
    pub(super) fn targets(&mut self, kind: ExportKind) -> Vec<Target> {
        let blind = self.shared.blind_resources();
        let now = tokio::time::Instant::now();
        let mut targets = self.collect_targets(kind);
        // Every state the index replaced since the last export: a standby records them
        // (the leader may have exported any); the leader has its `delivered`.
        let replaced = {
            let mut index = self.shared.index_mut();
            for (key, state) in &mut targets {
                if blind.get(key.resource.0 as usize).copied().unwrap_or(false) {
                    *state = None;
                }
            }
            index.take_replaced()
        };
        self.remember_replaced(replaced, now);
        targets
    }

    /// The objects an export covers, as the index has them.
    fn collect_targets(&mut self, kind: ExportKind) -> Vec<Target> {
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
            ExportKind::Refresh { slice, slices } => {
                let blind = self.shared.blind_resources();
                let index = self.shared.index();
                let mut gone = BTreeSet::new();
                if slice == 0 || self.cycle.is_empty() {
                    // A new cycle: the keys to refresh, in order, so that an object keeps
                    // its place from one cycle to the next (a hash map's order changes as it
                    // grows) and is written again about once per interval, never nearly
                    // two intervals apart; and the delivered objects gone.
                    self.cycle = index.keys();
                    self.cycle.sort_unstable();
                    gone.extend(
                        self.delivered
                            .keys()
                            .chain(self.recent.keys())
                            .filter(|k| index.get(k).is_none())
                            .cloned(),
                    );
                }
                // Withdrawals wait for no cycle: every delivered object of a blind resource.
                if blind.contains(&true) {
                    let of_blind = |k: &&ObjectKey| blind[k.resource.0 as usize];
                    gone.extend(self.delivered.keys().filter(of_blind).cloned());
                }
                let part = |i: u32| self.cycle.len() * i as usize / slices.max(1) as usize;
                let range = part(slice.min(slices))..part((slice + 1).min(slices));
                let mut targets: Vec<Target> = self.cycle[range]
                    .iter()
                    .filter(|k| !gone.contains(*k))
                    // An object deleted since the cycle began was exported by its change.
                    .filter_map(|k| Some((k.clone(), Some(index.get(k)?.clone()))))
                    .collect();
                targets.extend(gone.into_iter().map(|k| (k, None)));
                targets
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
            ExportKind::Retire => {
                let index = self.shared.index_mut();
                self.delivered
                    .keys()
                    .map(|k| (k.clone(), index.get(k).cloned()))
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::conditions::ConditionStatus::{False, True};
    use crate::export::objects::testkit::Harness;
    use crate::export::objects::ExportKind;
    use crate::resource::ResourceId;

    #[tokio::test]
    async fn a_full_export_resends_every_value_and_a_change_export_only_what_changed() {
        let mut h = Harness::new(1 << 20);
        for i in 0..50 {
            h.set(
                1,
                &format!("n{i}"),
                &[
                    ("NodesReady", True, "AllReady"),
                    ("Paused", False, "NotPaused"),
                ],
                None,
            );
        }
        h.exporter.export(ExportKind::Changes).await;
        h.recorder.take();
        h.set(
            1,
            "n7",
            &[
                ("NodesReady", False, "NodesNotReady"),
                ("Paused", False, "NotPaused"),
            ],
            None,
        );
        let report = h.exporter.export(ExportKind::Changes).await;
        assert_eq!(report.values, 4, "n7 only: 2 conditions + 2 since");
        let names: std::collections::BTreeSet<String> = h
            .recorder
            .take()
            .concat()
            .into_iter()
            .map(|p| p.labels["name"].clone())
            .collect();
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["n7"]);
        // A change lands, then the periodic export runs before the change export: the periodic
        // one still carries everything (no side channel can narrow it), and the change export
        // that follows has nothing left to send.
        h.set(1, "n8", &[("NodesReady", False, "NodesNotReady")], None);
        let report = h.exporter.export(ExportKind::Full).await;
        assert_eq!(report.values, 50 * 4 - 2);
        assert_eq!(
            report.markers, 3,
            "n8: its old NodesReady pair, its Paused and that one's since"
        );
        assert_eq!(h.exporter.export(ExportKind::Changes).await.requests, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_blind_resource_is_withdrawn_until_its_watch_works_again() {
        let mut h = Harness::new(1 << 20);
        h.set(0, "v", &[("Ready", False, "B")], None);
        h.set(1, "n", &[("NodesReady", True, "AllReady")], None);
        h.exporter.export(ExportKind::Full).await;
        h.recorder.take();
        let scope = crate::index::Scope::AllNamespaces;
        // SeiNode watch errors keep coming (every 60 s) for 90 s: blind.
        h.shared.watch_failed(ResourceId(0), &scope);
        tokio::time::advance(Duration::from_secs(60)).await;
        h.shared.watch_failed(ResourceId(0), &scope);
        let report = h.exporter.export(ExportKind::Full).await;
        assert_eq!(report.markers, 0, "60 s of failures: not blind yet");
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(h.shared.blind_resources(), [true, false, false, false]);
        let report = h.exporter.export(ExportKind::Full).await;
        let points = h.recorder.take().concat();
        assert_eq!(
            report.markers, 2,
            "v's Ready pair and its since: {points:?}"
        );
        assert!(points
            .iter()
            .filter(|p| p.value.is_none())
            .all(|p| p.labels["name"] == "v"));
        assert!(
            points
                .iter()
                .any(|p| p.value.is_some() && p.labels["name"] == "n"),
            "other resources keep exporting"
        );
        // Still blind: nothing more about v.
        h.exporter.export(ExportKind::Full).await;
        let points = h.recorder.take().concat();
        assert!(points.iter().all(|p| p.labels["name"] != "v"), "{points:?}");
        // The watch delivers an event again: v is exported again.
        h.shared.watch_ok(ResourceId(0), &scope);
        h.exporter.export(ExportKind::Full).await;
        let points = h.recorder.take().concat();
        assert!(points
            .iter()
            .any(|p| p.value == Some(1) && p.labels["name"] == "v"));
    }

    /// An object whose status.conditions stopped being a list keeps its last state for as
    /// long as it stays so: a page on its last `False` must not resolve (issue: "a
    /// malformed entry never resolves a page"). It is counted instead.
    #[tokio::test(start_paused = true)]
    async fn an_undecodable_object_keeps_its_last_state_and_is_counted() {
        let mut h = Harness::new(1 << 20);
        h.set(
            0,
            "v",
            &[("SigningKeyReady", False, "SigningKeyInvalid")],
            None,
        );
        h.exporter.export(ExportKind::Full).await;
        h.recorder.take();
        let key = h.shared.index_mut().key(ResourceId(0), "sei", "v");
        h.shared
            .index_mut()
            .mark_undecodable(&key, tokio::time::Instant::now());
        for _ in 0..3 {
            tokio::time::advance(Duration::from_secs(3600)).await;
            let report = h.exporter.export(ExportKind::Full).await;
            assert_eq!(
                (report.markers, report.values),
                (0, 2),
                "kept, not withdrawn"
            );
        }
        assert_eq!(
            h.shared.index().count_undecodable_by_resource(4),
            [1, 0, 0, 0]
        );
        h.shared.index_mut().clear_undecodable(&key);
        assert_eq!(
            h.shared.index().count_undecodable_by_resource(4),
            [0, 0, 0, 0]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_withdrawal_goes_out_with_the_next_refresh_whatever_its_slice() {
        let mut h = Harness::new(1 << 20);
        for i in 0..30 {
            h.set(0, &format!("v{i}"), &[("Ready", True, "A")], None);
        }
        h.set(1, "n", &[("NodesReady", True, "AllReady")], None);
        h.exporter.export(ExportKind::Changes).await;
        h.recorder.take();
        let scope = crate::index::Scope::AllNamespaces;
        h.shared.watch_failed(ResourceId(0), &scope);
        tokio::time::advance(Duration::from_secs(60)).await;
        h.shared.watch_failed(ResourceId(0), &scope);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(h.shared.blind_resources(), [true, false, false, false]);
        // One slice of sixty: every SeiNode is withdrawn at once (a pair and a since each).
        let refresh = ExportKind::Refresh {
            slice: 0,
            slices: 60,
        };
        assert_eq!(h.exporter.export(refresh).await.markers, 30 * 2);
        assert_eq!(h.exporter.export(refresh).await.markers, 0, "once");
    }
}
