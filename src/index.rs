//! The readiness index: plain in-memory state, one small [`Verdict`] per in-scope SeiNode,
//! keyed by (namespace, name). No I/O and no clock: the watch stage feeds it, the export
//! stage reads it, and both are tested without an API server.
//!
//! ```text
//!   watch events ──apply / delete / begin_resync+touch+finish_resync──▶ ReadinessIndex
//!                                                                         │   │
//!                         export callbacks (each collection) ◀──iter─────┘   │
//!                         staleness markers (after each export) ◀──take_stale_series
//! ```
//!
//! Besides the verdicts, the index journals which series *disappeared* since the exporter
//! last asked ([`ReadinessIndex::take_stale_series`]): a deleted node, a node whose TLS was
//! removed, a status/reason that changed, or a ready sample that went away (True/False ->
//! Unknown). The exporter turns those into Prometheus staleness markers so that no series
//! lingers for the 5-minute lookback (see docs/architecture.md).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::seinode::{ConditionStatus, Verdict};

/// Identity of one SeiNode. Namespaces are interned, so 10,000 nodes in a few namespaces
/// share a few namespace strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

/// The verdict as stored: the reason is interned (a handful of distinct reasons fleet-wide).
pub type StoredVerdict = Verdict<Arc<str>>;

/// The set of objects one watch covers, so that a relist of one namespace only retires
/// objects of that namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    AllNamespaces,
    Namespace(String),
}

impl Scope {
    pub fn contains(&self, key: &ObjectKey) -> bool {
        match self {
            Scope::AllNamespaces => true,
            Scope::Namespace(ns) => *key.namespace == **ns,
        }
    }
}

/// Which per-node series a verdict produces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Series {
    /// `seinode_sidecar_tls_secret_ready{namespace,name}`
    Ready,
    /// `seinode_sidecar_tls_secret_status{namespace,name,status,reason}`
    Status {
        status: ConditionStatus,
        reason: Arc<str>,
    },
    /// `seinode_sidecar_tls_secret_last_transition_timestamp_seconds{namespace,name}`
    LastTransition,
}

impl Series {
    /// The series a verdict exports; at most three.
    pub fn of(verdict: &StoredVerdict) -> impl Iterator<Item = Series> {
        [
            verdict.status.ready_value().map(|_| Series::Ready),
            Some(Series::Status {
                status: verdict.status,
                reason: verdict.reason.clone(),
            }),
            verdict.since.map(|_| Series::LastTransition),
        ]
        .into_iter()
        .flatten()
    }
}

/// A series that was exported and is gone now.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StaleSeries {
    pub key: ObjectKey,
    pub series: Series,
}

/// What an `apply` or `delete` did, so the watch stage knows whether to trigger an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Unchanged,
    Added,
    Updated,
    Removed,
}

impl Change {
    pub fn is_change(self) -> bool {
        self != Change::Unchanged
    }
}

#[derive(Debug, Default)]
pub struct ReadinessIndex {
    /// The current verdict of every in-scope SeiNode.
    verdicts: HashMap<ObjectKey, StoredVerdict>,
    /// Interned namespaces and reasons: bounded by the namespaces and reasons ever seen.
    interned: HashSet<Arc<str>>,
    /// For each object changed since the last `take_stale_series`, its verdict before the
    /// first of those changes (None: it did not exist). Bounded by the objects changed
    /// between two exports.
    retired: HashMap<ObjectKey, Option<StoredVerdict>>,
    /// Objects seen by a relist in progress, per scope.
    resyncs: HashMap<Scope, HashSet<ObjectKey>>,
    /// Objects whose verdict changed since the last `take_dirty`: what an event-driven
    /// export sends. A subset of `verdicts` (a deleted object leaves it).
    dirty: HashSet<ObjectKey>,
}

impl ReadinessIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the key of an object, interning its namespace.
    pub fn key(&mut self, namespace: &str, name: &str) -> ObjectKey {
        ObjectKey {
            namespace: self.intern(namespace),
            name: Arc::from(name),
        }
    }

    /// Records the verdict of an object; `None` means it is out of scope (TLS not set and no
    /// condition), which removes it.
    pub fn apply(&mut self, key: ObjectKey, verdict: Option<Verdict>) -> Change {
        let Some(verdict) = verdict else {
            return self.delete(&key);
        };
        let verdict = StoredVerdict {
            status: verdict.status,
            reason: self.intern(&verdict.reason),
            since: verdict.since,
        };
        match self.verdicts.get(&key) {
            Some(old) if *old == verdict => Change::Unchanged,
            old => {
                let change = if old.is_some() {
                    Change::Updated
                } else {
                    Change::Added
                };
                self.retired
                    .entry(key.clone())
                    .or_insert_with(|| old.cloned());
                self.dirty.insert(key.clone());
                self.verdicts.insert(key, verdict);
                change
            }
        }
    }

    /// Forgets an object (deleted, or out of scope).
    pub fn delete(&mut self, key: &ObjectKey) -> Change {
        match self.verdicts.remove_entry(key) {
            Some((key, old)) => {
                self.dirty.remove(&key);
                self.retired.entry(key).or_insert(Some(old));
                Change::Removed
            }
            None => Change::Unchanged,
        }
    }

    /// A relist of `scope` starts (`Event::Init`): objects not touched before
    /// [`Self::finish_resync`] are gone.
    pub fn begin_resync(&mut self, scope: Scope) {
        self.resyncs.insert(scope, HashSet::new());
    }

    /// The relist of `scope` saw this object (whether or not it decoded).
    pub fn touch(&mut self, scope: &Scope, key: &ObjectKey) {
        if let Some(seen) = self.resyncs.get_mut(scope) {
            seen.insert(key.clone());
        }
    }

    /// The relist of `scope` is complete (`Event::InitDone`): removes what it did not see and
    /// returns how many objects that was.
    pub fn finish_resync(&mut self, scope: &Scope) -> usize {
        let Some(seen) = self.resyncs.remove(scope) else {
            return 0;
        };
        let gone: Vec<ObjectKey> = self
            .verdicts
            .keys()
            .filter(|k| scope.contains(k) && !seen.contains(*k))
            .cloned()
            .collect();
        for key in &gone {
            self.delete(key);
        }
        gone.len()
    }

    /// Drops every object (used when the watcher restarts from scratch).
    pub fn reset(&mut self) {
        let keys: Vec<ObjectKey> = self.verdicts.keys().cloned().collect();
        for key in &keys {
            self.delete(key);
        }
        self.resyncs.clear();
    }

    pub fn get(&self, key: &ObjectKey) -> Option<&StoredVerdict> {
        self.verdicts.get(key)
    }

    pub fn len(&self) -> usize {
        self.verdicts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.verdicts.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ObjectKey, &StoredVerdict)> {
        self.verdicts.iter()
    }

    /// The objects whose verdict changed since the last call (still in the index); clears
    /// the set.
    pub fn take_dirty(&mut self) -> Vec<ObjectKey> {
        self.dirty.drain().collect()
    }

    /// Number of in-scope objects per status, in [`ConditionStatus::ALL`] order.
    pub fn count_by_status(&self) -> [u64; 3] {
        let mut counts = [0; 3];
        for verdict in self.verdicts.values() {
            counts[verdict.status as usize] += 1;
        }
        counts
    }

    /// The series that existed for some object at the last call and exist no more, sorted;
    /// clears the journal.
    pub fn take_stale_series(&mut self) -> Vec<StaleSeries> {
        let mut stale = Vec::new();
        for (key, old) in self.retired.drain() {
            let Some(old) = old else { continue };
            let now: Vec<Series> = self
                .verdicts
                .get(&key)
                .map(|v| Series::of(v).collect())
                .unwrap_or_default();
            stale.extend(
                Series::of(&old)
                    .filter(|s| !now.contains(s))
                    .map(|series| StaleSeries {
                        key: key.clone(),
                        series,
                    }),
            );
        }
        stale.sort();
        stale
    }

    fn intern(&mut self, text: &str) -> Arc<str> {
        if let Some(shared) = self.interned.get(text) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(text);
        self.interned.insert(shared.clone());
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConditionStatus::*;

    fn v(status: ConditionStatus, reason: &str, since: Option<i64>) -> Option<Verdict> {
        Some(Verdict {
            status,
            reason: reason.to_owned(),
            since,
        })
    }

    fn stale(index: &mut ReadinessIndex) -> Vec<(String, Series)> {
        index
            .take_stale_series()
            .into_iter()
            .map(|s| (format!("{}/{}", s.key.namespace, s.key.name), s.series))
            .collect()
    }

    fn status(s: ConditionStatus, reason: &str) -> Series {
        Series::Status {
            status: s,
            reason: reason.into(),
        }
    }

    #[test]
    fn apply_update_delete() {
        let mut index = ReadinessIndex::new();
        let a = index.key("ns", "a");
        assert_eq!(
            index.apply(a.clone(), v(True, "TLSSecretReady", Some(1))),
            Change::Added
        );
        assert_eq!(
            index.apply(a.clone(), v(True, "TLSSecretReady", Some(1))),
            Change::Unchanged
        );
        assert_eq!(
            index.apply(a.clone(), v(False, "TLSSecretNotFound", Some(2))),
            Change::Updated
        );
        assert_eq!(index.get(&a).map(|v| v.status), Some(False));
        assert_eq!(index.delete(&a), Change::Removed);
        assert_eq!(index.delete(&a), Change::Unchanged);
        assert!(index.is_empty());
    }

    #[test]
    fn out_of_scope_apply_removes() {
        let mut index = ReadinessIndex::new();
        let a = index.key("ns", "a");
        index.apply(a.clone(), v(True, "TLSSecretReady", None));
        assert_eq!(index.apply(a.clone(), None), Change::Removed);
        assert_eq!(index.apply(a, None), Change::Unchanged);
    }

    #[test]
    fn namespaces_and_reasons_are_interned() {
        let mut index = ReadinessIndex::new();
        for i in 0..100 {
            let k = index.key("ns", &format!("n{i}"));
            index.apply(k, v(False, "TLSSecretNotFound", None));
        }
        let mut reasons = index
            .iter()
            .map(|(_, v)| Arc::as_ptr(&v.reason) as *const u8);
        let first = reasons.next();
        assert!(
            reasons.all(|p| Some(p) == first),
            "reasons share one allocation"
        );
        let mut nss = index
            .iter()
            .map(|(k, _)| Arc::as_ptr(&k.namespace) as *const u8);
        let first = nss.next();
        assert!(
            nss.all(|p| Some(p) == first),
            "namespaces share one allocation"
        );
    }

    #[test]
    fn resync_retires_what_was_not_relisted() {
        let mut index = ReadinessIndex::new();
        let (a, b, c) = (
            index.key("ns", "a"),
            index.key("ns", "b"),
            index.key("other", "c"),
        );
        index.apply(a.clone(), v(True, "TLSSecretReady", None));
        index.apply(b.clone(), v(True, "TLSSecretReady", None));
        index.apply(c.clone(), v(True, "TLSSecretReady", None));

        // A relist of everything that sees only `a` (b and c were deleted during an outage).
        let scope = Scope::AllNamespaces;
        index.begin_resync(scope.clone());
        index.touch(&scope, &a);
        index.apply(a.clone(), v(False, "TLSSecretNotFound", None));
        assert_eq!(index.len(), 3, "nothing is removed before InitDone");
        assert_eq!(index.finish_resync(&scope), 2);
        assert_eq!(index.len(), 1);
        assert_eq!(index.get(&a).map(|v| v.status), Some(False));
    }

    #[test]
    fn resync_of_one_namespace_keeps_the_others() {
        let mut index = ReadinessIndex::new();
        let (a, c) = (index.key("ns", "a"), index.key("other", "c"));
        index.apply(a.clone(), v(True, "TLSSecretReady", None));
        index.apply(c.clone(), v(True, "TLSSecretReady", None));
        let scope = Scope::Namespace("ns".into());
        index.begin_resync(scope.clone());
        assert_eq!(index.finish_resync(&scope), 1);
        assert!(index.get(&a).is_none());
        assert!(index.get(&c).is_some());
    }

    #[test]
    fn touched_but_undecodable_objects_survive_resync() {
        // A malformed object is touched but not applied: its last known verdict stays.
        let mut index = ReadinessIndex::new();
        let a = index.key("ns", "a");
        index.apply(a.clone(), v(False, "TLSSecretNotFound", Some(5)));
        let scope = Scope::AllNamespaces;
        index.begin_resync(scope.clone());
        index.touch(&scope, &a);
        assert_eq!(index.finish_resync(&scope), 0);
        assert_eq!(index.get(&a).map(|v| v.status), Some(False));
    }

    #[test]
    fn finish_without_begin_removes_nothing() {
        let mut index = ReadinessIndex::new();
        let a = index.key("ns", "a");
        index.apply(a, v(True, "TLSSecretReady", None));
        assert_eq!(index.finish_resync(&Scope::AllNamespaces), 0);
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn reset_drops_everything_and_journals_it() {
        let mut index = ReadinessIndex::new();
        let a = index.key("ns", "a");
        index.apply(a, v(True, "TLSSecretReady", None));
        index.take_stale_series();
        index.reset();
        assert!(index.is_empty());
        assert_eq!(
            stale(&mut index),
            vec![
                ("ns/a".into(), Series::Ready),
                ("ns/a".into(), status(True, "TLSSecretReady"))
            ]
        );
    }

    #[test]
    fn stale_series_of_a_deleted_node() {
        let mut index = ReadinessIndex::new();
        let a = index.key("ns", "a");
        index.apply(a.clone(), v(False, "TLSSecretNotFound", Some(7)));
        assert_eq!(stale(&mut index), vec![], "a new node retires nothing");
        index.delete(&a);
        assert_eq!(
            stale(&mut index),
            vec![
                ("ns/a".into(), Series::Ready),
                ("ns/a".into(), status(False, "TLSSecretNotFound")),
                ("ns/a".into(), Series::LastTransition),
            ]
        );
        assert_eq!(stale(&mut index), vec![], "the journal is cleared");
    }

    #[test]
    fn stale_series_of_a_changed_reason_and_a_lost_ready_sample() {
        let mut index = ReadinessIndex::new();
        let a = index.key("ns", "a");
        index.apply(a.clone(), v(False, "TLSSecretNotFound", Some(7)));
        index.take_stale_series();
        // Two changes between exports: the first old verdict is what was exported.
        index.apply(a.clone(), v(False, "TLSSecretMalformed", Some(8)));
        index.apply(a.clone(), v(Unknown, "ConditionMissing", None));
        assert_eq!(
            stale(&mut index),
            vec![
                ("ns/a".into(), Series::Ready),
                ("ns/a".into(), status(False, "TLSSecretNotFound")),
                ("ns/a".into(), Series::LastTransition),
            ]
        );
    }

    #[test]
    fn value_change_on_the_same_series_is_not_stale() {
        let mut index = ReadinessIndex::new();
        let a = index.key("ns", "a");
        index.apply(a.clone(), v(False, "TLSSecretNotFound", Some(7)));
        index.take_stale_series();
        index.apply(a.clone(), v(False, "TLSSecretNotFound", Some(9)));
        assert_eq!(stale(&mut index), vec![]);
        // Back and forth between exports: nothing vanished.
        index.apply(a.clone(), v(True, "TLSSecretReady", Some(10)));
        index.apply(a.clone(), v(False, "TLSSecretNotFound", Some(11)));
        assert_eq!(stale(&mut index), vec![]);
    }

    #[test]
    fn count_by_status() {
        let mut index = ReadinessIndex::new();
        for (i, s) in [True, True, False, Unknown].into_iter().enumerate() {
            let k = index.key("ns", &i.to_string());
            index.apply(k, v(s, "R", None));
        }
        assert_eq!(index.count_by_status(), [2, 1, 1]);
    }
}
