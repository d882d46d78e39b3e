//! The condition index: plain in-memory state, one small [`ObjectState`] per watched object,
//! keyed by (resource, namespace, name). No I/O, no clock, and nothing about exports: the
//! watch stage applies, deletes and resyncs; the export stage reads a snapshot and takes
//! the set of keys that changed since it last asked.
//!
//! ```text
//!   watch events ──apply / delete / begin_resync+touch+finish_resync──▶ ConditionIndex
//!                                                                        │
//!   export stage ◀── snapshot (Arc<ObjectState> per key) + take_changed ─┘
//! ```
//!
//! States are shared (`Arc`), so a snapshot is a list of pointers, and the exporter can keep
//! the states it last exported without copying them: what it must mark stale is the
//! difference between the series of the state it exported and those of the current one.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::time::Instant;

use crate::conditions::{keep_most_urgent, Condition, ConditionStatus, Field};
use crate::resource::ResourceId;
use crate::seinode::Verdict;

/// Identity of one object. Namespaces are interned, so 10,000 objects in a few namespaces
/// share a few namespace strings. Cluster-scoped objects have an empty namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub resource: ResourceId,
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

/// The seed's verdict as stored: the reason is interned.
pub type StoredVerdict = Verdict<Arc<str>>;

/// A condition as stored: type and reason interned (a handful of distinct values fleet-wide).
pub type StoredCondition = Condition<Arc<str>>;

/// What the watcher keeps about one object: a few words per condition, whatever the
/// object's size on the API server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectState {
    /// `metadata.generation`, to tell whether a condition describes the current spec.
    pub generation: Option<i64>,
    /// The object's conditions, in the order the controller wrote them.
    pub conditions: Vec<StoredCondition>,
    /// The seed's sidecar-TLS verdict (SeiNodes with `spec.sidecar.tls` or the condition).
    pub tls: Option<StoredVerdict>,
    /// How many conditions the object has beyond `--max-conditions-per-object` (not
    /// exported; the ones that need attention were kept first).
    pub truncated: u32,
    /// How many of its condition entries had a field that could not be read (the last
    /// readable value is kept where there was one).
    pub unreadable: u32,
    /// How many of its healthy conditions were refused because its namespace or resource
    /// was at its series bound ([`SeriesBounds`]).
    pub refused: u32,
    /// How many of its condition entries a type filter left out (`--condition-types-allow`,
    /// `--condition-types-deny`; `crate::filters`).
    pub filtered: u32,
    /// Its allowlisted labels and annotations, as the labels of its info series
    /// (`label_team` -> value, sorted; `crate::labels`); `None` when its resource has no
    /// allowlist. Not counted in [`Self::series_count`]: one series per object, it never
    /// takes a condition's room under the series bounds.
    pub info: Option<InfoLabels>,
}

/// The labels of an object's info series: (label name, value), sorted by name, interned.
pub type InfoLabels = Arc<[(Arc<str>, Arc<str>)]>;

/// Bounds on the series one namespace (all resources) and one resource (all namespaces)
/// may have, so that a tenant writing objects with many conditions cannot grow the
/// watcher's memory and the store's cardinality without limit. Beyond a bound, an applied
/// object keeps only its conditions that need attention: a page is never refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesBounds {
    pub per_namespace: usize,
    pub per_resource: usize,
}

impl Default for SeriesBounds {
    /// Generous: 30,000 SeiNodes with every condition are about 550,000 series, 100,000
    /// about 1.8 million (issue measurements), and each series costs the watcher about
    /// 100 bytes (docs/deploy.md, sizing). A namespace is a tenant; a resource a kind.
    fn default() -> Self {
        Self {
            per_namespace: 1_000_000,
            per_resource: 2_000_000,
        }
    }
}

impl ObjectState {
    /// How many specs behind the spec this condition is (`generation - observedGeneration`),
    /// when it is behind.
    /// The series this state exports (as `series_of` counts them, the seed's included), for
    /// the series bounds.
    pub fn series_count(&self) -> usize {
        let per_condition: usize = self
            .conditions
            .iter()
            .map(|c| {
                1 + usize::from(c.since.is_some()) + usize::from(self.outdated_by(c).is_some())
            })
            .sum();
        per_condition + usize::from(self.truncated > 0) + if self.tls.is_some() { 3 } else { 0 }
    }

    pub fn outdated_by(&self, condition: &StoredCondition) -> Option<i64> {
        let lag = self.generation? - condition.observed_generation?;
        (lag > 0).then_some(lag)
    }

    /// Keeps what the object said last where its new status cannot be read, so that an
    /// unreadable field never withdraws a series (a page on `False` would resolve while the
    /// condition is no better):
    ///
    /// - a condition whose `status` is unreadable keeps its previous value whole;
    /// - one whose `reason`, `lastTransitionTime` or `observedGeneration` is unreadable keeps
    ///   that field's previous value while its status is unchanged;
    /// - when entries without a readable type exist (`untyped`), the previous conditions
    ///   missing from the new list are kept (one of them may be the unreadable entry).
    ///
    /// What is kept lasts as long as the object stays unreadable; `unreadable` counts the
    /// entries, for the `unreadable_conditions` self-metric and its alert. At most `max`
    /// conditions stay, the ones that need attention first.
    pub fn carry_unreadable(
        &mut self,
        previous: Option<&ObjectState>,
        unreadable: &[(String, Field)],
        untyped: usize,
        max: usize,
    ) {
        self.unreadable = u32::try_from(unreadable.len() + untyped).unwrap_or(u32::MAX);
        let Some(previous) = previous else { return };
        let before = |type_: &str| previous.conditions.iter().find(|c| &*c.type_ == type_);
        for (type_, field) in unreadable {
            let (Some(now), Some(old)) = (
                self.conditions.iter_mut().find(|c| &*c.type_ == type_),
                before(type_),
            ) else {
                continue;
            };
            match field {
                Field::Status => *now = old.clone(),
                _ if now.status != old.status => {}
                Field::Reason => now.reason = old.reason.clone(),
                Field::LastTransitionTime => now.since = old.since,
                Field::ObservedGeneration => now.observed_generation = old.observed_generation,
            }
        }
        if untyped > 0 {
            let missing: Vec<StoredCondition> = previous
                .conditions
                .iter()
                .filter(|old| !self.conditions.iter().any(|c| c.type_ == old.type_))
                .cloned()
                .collect();
            self.conditions.extend(missing);
        }
        let cut = keep_most_urgent(&mut self.conditions, self.generation, max);
        self.truncated = self
            .truncated
            .saturating_add(u32::try_from(cut).unwrap_or(u32::MAX));
    }
}

/// The set of objects one watch covers, so that a relist of one namespace only retires
/// objects of that resource and namespace.
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

/// How many replaced states are kept per object between two exports: an object flapping
/// faster than that loses its oldest ones (a standby's takeover could then miss a marker
/// for a state the old leader exported for at most one interval).
pub const REPLACED_PER_OBJECT: usize = 8;

#[derive(Debug, Default)]
pub struct ConditionIndex {
    /// The current state of every watched object.
    objects: HashMap<ObjectKey, Arc<ObjectState>>,
    /// Interned namespaces, types and reasons. Strings no object, export or standby
    /// memory refers to any more are dropped by [`Self::sweep_interned`], run whenever the
    /// set has doubled since the last sweep: at most about twice the strings in use.
    interned: HashSet<Arc<str>>,
    /// The size of `interned` after the last sweep.
    interned_after_sweep: usize,
    /// The series bounds, and the series held now per namespace and per resource.
    bounds: SeriesBounds,
    series_per_namespace: HashMap<Arc<str>, usize>,
    series_per_resource: HashMap<ResourceId, usize>,
    /// Objects seen by a relist in progress, per (resource, scope).
    resyncs: HashMap<(ResourceId, Scope), HashSet<ObjectKey>>,
    /// Keys applied or deleted since the last [`Self::take_changed`]. Bounded by the
    /// objects that exist or existed between two exports.
    changed: HashSet<ObjectKey>,
    /// The states that applies and deletes replaced since the last
    /// [`Self::take_replaced`] (at most [`REPLACED_PER_OBJECT`] per object): a standby
    /// exporter must know every state an object had, not only those its exports saw.
    replaced: HashMap<ObjectKey, Vec<Arc<ObjectState>>>,
    /// Objects whose `status.conditions` stopped decoding, since when. Their last state is
    /// kept and exported (an unreadable status must not resolve a page); they are counted
    /// per resource for the `undecodable_objects` self-metric and its alert.
    undecodable: HashMap<ObjectKey, Instant>,
}

impl ConditionIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuses healthy conditions beyond `bounds` from now on.
    pub fn set_bounds(&mut self, bounds: SeriesBounds) {
        self.bounds = bounds;
    }

    /// Builds the key of an object, interning its namespace.
    pub fn key(&mut self, resource: ResourceId, namespace: &str, name: &str) -> ObjectKey {
        ObjectKey {
            resource,
            namespace: self.intern(namespace),
            name: Arc::from(name),
        }
    }

    /// Interns the strings of freshly decoded conditions and a verdict into a state.
    pub fn state(
        &mut self,
        generation: Option<i64>,
        conditions: Vec<Condition>,
        tls: Option<Verdict>,
    ) -> ObjectState {
        ObjectState {
            generation,
            conditions: conditions
                .into_iter()
                .map(|c| Condition {
                    type_: self.intern(&c.type_),
                    status: c.status,
                    reason: self.intern(&c.reason),
                    since: c.since,
                    observed_generation: c.observed_generation,
                })
                .collect(),
            tls: tls.map(|v| Verdict {
                status: v.status,
                reason: self.intern(&v.reason),
                since: v.since,
            }),
            truncated: 0,
            unreadable: 0,
            refused: 0,
            filtered: 0,
            info: None,
        }
    }

    /// Interns the labels of an info series (`crate::labels::Allowlist::copy`'s output).
    pub fn info_labels(&mut self, labels: Vec<(String, String)>) -> InfoLabels {
        labels
            .into_iter()
            .map(|(name, value)| (self.intern(&name), self.intern(&value)))
            .collect()
    }

    /// Records the state of an object. Where its namespace or resource would go over its
    /// series bound, the object keeps its conditions that need attention and as many of
    /// the others as fit (counted in `refused`).
    pub fn apply(&mut self, key: ObjectKey, mut state: ObjectState) -> Change {
        let old = self.objects.get(&key).map_or(0, |s| s.series_count());
        let ns_used = self
            .series_per_namespace
            .get(&key.namespace)
            .copied()
            .unwrap_or(0)
            - old;
        let res_used = self
            .series_per_resource
            .get(&key.resource)
            .copied()
            .unwrap_or(0)
            - old;
        let room = (self.bounds.per_namespace.saturating_sub(ns_used))
            .min(self.bounds.per_resource.saturating_sub(res_used));
        if state.series_count() > room {
            let generation = state.generation;
            let before = state.conditions.len();
            // Healthy conditions go last, then are dropped from the end until it fits.
            state
                .conditions
                .sort_by_key(|c| !c.needs_attention(generation));
            while state.series_count() > room
                && state
                    .conditions
                    .last()
                    .is_some_and(|c| !c.needs_attention(generation))
            {
                state.conditions.pop();
            }
            state.refused = u32::try_from(before - state.conditions.len()).unwrap_or(u32::MAX);
        }
        let new = state.series_count();
        *self
            .series_per_namespace
            .entry(key.namespace.clone())
            .or_default() = ns_used + new;
        *self.series_per_resource.entry(key.resource).or_default() = res_used + new;
        match self.objects.get(&key) {
            Some(old) if **old == state => Change::Unchanged,
            old => {
                let change = if old.is_some() {
                    Change::Updated
                } else {
                    Change::Added
                };
                self.changed.insert(key.clone());
                if let Some(old) = self.objects.insert(key.clone(), Arc::new(state)) {
                    self.remember_replaced(key, old);
                }
                change
            }
        }
    }

    /// The object's status could not be decoded at `now`; its last state stays.
    pub fn mark_undecodable(&mut self, key: &ObjectKey, now: Instant) {
        self.undecodable.entry(key.clone()).or_insert(now);
    }

    /// The object decoded again: its series come back with the next export.
    pub fn clear_undecodable(&mut self, key: &ObjectKey) {
        if self.undecodable.remove(key).is_some() {
            self.changed.insert(key.clone());
        }
    }

    /// Conditions refused by the series bounds now, per resource.
    pub fn count_refused_by_resource(&self, resources: usize) -> Vec<u64> {
        let mut counts = vec![0; resources];
        for (key, state) in &self.objects {
            if let Some(n) = counts.get_mut(key.resource.0 as usize) {
                *n += u64::from(state.refused);
            }
        }
        counts
    }

    /// Condition entries left out by a type filter now, per resource.
    pub fn count_filtered_by_resource(&self, resources: usize) -> Vec<u64> {
        let mut counts = vec![0; resources];
        for (key, state) in &self.objects {
            if let Some(n) = counts.get_mut(key.resource.0 as usize) {
                *n += u64::from(state.filtered);
            }
        }
        counts
    }

    /// Objects with condition entries that could not be read whole, per resource.
    pub fn count_unreadable_by_resource(&self, resources: usize) -> Vec<u64> {
        let mut counts = vec![0; resources];
        for (key, state) in &self.objects {
            if let (true, Some(n)) = (
                state.unreadable > 0,
                counts.get_mut(key.resource.0 as usize),
            ) {
                *n += 1;
            }
        }
        counts
    }

    /// Undecodable objects per resource (indexed by [`ResourceId`]).
    pub fn count_undecodable_by_resource(&self, resources: usize) -> Vec<u64> {
        let mut counts = vec![0; resources];
        for key in self.undecodable.keys() {
            if let Some(n) = counts.get_mut(key.resource.0 as usize) {
                *n += 1;
            }
        }
        counts
    }

    fn remember_replaced(&mut self, key: ObjectKey, old: Arc<ObjectState>) {
        let states = self.replaced.entry(key).or_default();
        if states.len() >= REPLACED_PER_OBJECT {
            states.remove(0);
        }
        states.push(old);
    }

    /// The states replaced since the last call, by object; clears them.
    pub fn take_replaced(&mut self) -> HashMap<ObjectKey, Vec<Arc<ObjectState>>> {
        std::mem::take(&mut self.replaced)
    }

    /// Forgets an object (deleted).
    pub fn delete(&mut self, key: &ObjectKey) -> Change {
        self.undecodable.remove(key);
        match self.objects.remove_entry(key) {
            Some((key, old)) => {
                let count = old.series_count();
                if let Some(n) = self.series_per_namespace.get_mut(&key.namespace) {
                    *n -= count;
                    if *n == 0 {
                        self.series_per_namespace.remove(&key.namespace);
                    }
                }
                if let Some(n) = self.series_per_resource.get_mut(&key.resource) {
                    *n -= count;
                }
                self.changed.insert(key.clone());
                self.remember_replaced(key, old);
                Change::Removed
            }
            None => Change::Unchanged,
        }
    }

    /// A relist of `scope` of `resource` starts (`Event::Init`): objects not touched before
    /// [`Self::finish_resync`] are gone.
    pub fn begin_resync(&mut self, resource: ResourceId, scope: Scope) {
        self.resyncs.insert((resource, scope), HashSet::new());
    }

    /// The relist saw this object (whether or not it decoded).
    pub fn touch(&mut self, scope: &Scope, key: &ObjectKey) {
        if let Some(seen) = self.resyncs.get_mut(&(key.resource, scope.clone())) {
            seen.insert(key.clone());
        }
    }

    /// The relist is complete (`Event::InitDone`): removes what it did not see and returns
    /// how many objects that was.
    pub fn finish_resync(&mut self, resource: ResourceId, scope: &Scope) -> usize {
        let Some(seen) = self.resyncs.remove(&(resource, scope.clone())) else {
            return 0;
        };
        let gone: Vec<ObjectKey> = self
            .objects
            .keys()
            .filter(|k| k.resource == resource && scope.contains(k) && !seen.contains(*k))
            .cloned()
            .collect();
        for key in &gone {
            self.delete(key);
        }
        gone.len()
    }

    pub fn get(&self, key: &ObjectKey) -> Option<&Arc<ObjectState>> {
        self.objects.get(key)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = (&ObjectKey, &Arc<ObjectState>)> {
        self.objects.iter()
    }

    /// Every object with its state: pointers only, taken under the lock and read after it.
    pub fn snapshot(&self) -> Vec<(ObjectKey, Arc<ObjectState>)> {
        self.objects
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect()
    }

    /// Every object's key (pointers only).
    pub fn keys(&self) -> Vec<ObjectKey> {
        self.objects.keys().cloned().collect()
    }

    /// The keys applied or deleted since the last call, with their current state (`None`:
    /// deleted); clears the set.
    pub fn take_changed(&mut self) -> Vec<(ObjectKey, Option<Arc<ObjectState>>)> {
        let keys: Vec<ObjectKey> = self.changed.drain().collect();
        keys.into_iter()
            .map(|k| {
                let state = self.objects.get(&k).cloned();
                (k, state)
            })
            .collect()
    }

    /// Objects per resource (indexed by [`ResourceId`]), for the `objects` self-metric.
    pub fn count_by_resource(&self, resources: usize) -> Vec<u64> {
        let mut counts = vec![0; resources];
        for key in self.objects.keys() {
            if let Some(n) = counts.get_mut(key.resource.0 as usize) {
                *n += 1;
            }
        }
        counts
    }

    /// SeiNodes with a seed verdict, per status ([`ConditionStatus::ALL`] order).
    pub fn count_tls_by_status(&self) -> [u64; 3] {
        let mut counts = [0; 3];
        for state in self.objects.values() {
            if let Some(v) = &state.tls {
                counts[v.status as usize] += 1;
            }
        }
        counts
    }

    fn intern(&mut self, text: &str) -> Arc<str> {
        if let Some(shared) = self.interned.get(text) {
            return shared.clone();
        }
        if self.interned.len() >= INTERN_SWEEP_MIN.max(2 * self.interned_after_sweep) {
            self.sweep_interned();
        }
        let shared: Arc<str> = Arc::from(text);
        self.interned.insert(shared.clone());
        shared
    }

    /// Drops the interned strings nothing else refers to (their objects were deleted or
    /// rewrote them, and no export memory holds them). Amortized: called when the set has
    /// doubled, so each string costs O(1) sweeps over its life.
    pub fn sweep_interned(&mut self) {
        self.interned.retain(|s| Arc::strong_count(s) > 1);
        self.interned.shrink_to_fit();
        self.interned_after_sweep = self.interned.len();
    }

    /// How many strings are interned (namespaces, types, reasons; for the tests).
    #[cfg(test)]
    pub fn interned_len(&self) -> usize {
        self.interned.len()
    }
}

/// The interned set is not swept below this size: a few thousand strings cost less than
/// sweeping them on every new one.
const INTERN_SWEEP_MIN: usize = 4096;

/// Status counts are indexed by the enum's discriminant; keep them in `ALL` order.
const _: () =
    assert!(ConditionStatus::True as usize == 0 && ConditionStatus::Unknown as usize == 2);

#[cfg(test)]
mod tests {
    use super::*;
    use ConditionStatus::*;

    const R: ResourceId = ResourceId(0);
    const OTHER: ResourceId = ResourceId(1);

    fn cond(type_: &str, status: ConditionStatus, reason: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status,
            reason: reason.into(),
            since: Some(1),
            observed_generation: Some(1),
        }
    }

    fn state(index: &mut ConditionIndex, status: ConditionStatus) -> ObjectState {
        index.state(Some(1), vec![cond("Ready", status, "R")], None)
    }

    #[test]
    fn apply_update_delete_and_changed_keys() {
        let mut index = ConditionIndex::new();
        let a = index.key(R, "ns", "a");
        let s = state(&mut index, True);
        assert_eq!(index.apply(a.clone(), s.clone()), Change::Added);
        assert_eq!(index.apply(a.clone(), s), Change::Unchanged);
        let s = state(&mut index, False);
        assert_eq!(index.apply(a.clone(), s), Change::Updated);
        let changed = index.take_changed();
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].1.as_ref().unwrap().conditions[0].status, False);
        assert!(index.take_changed().is_empty(), "taking clears the set");
        assert_eq!(index.delete(&a), Change::Removed);
        assert_eq!(index.delete(&a), Change::Unchanged);
        assert_eq!(index.take_changed(), vec![(a, None)]);
        assert!(index.is_empty());
    }

    /// Issue "memory only grows": an attacker rewriting one object with new types and
    /// reasons leaves at most about twice the strings in use interned, and a sweep leaves
    /// exactly those in use.
    #[test]
    fn strings_no_longer_used_are_released() {
        let mut index = ConditionIndex::new();
        let key = index.key(R, "ns", "a");
        for round in 0..200 {
            let conditions = (0..64)
                .map(|i| cond(&format!("T{round}x{i}"), False, &format!("R{round}x{i}")))
                .collect();
            let state = index.state(Some(1), conditions, None);
            index.apply(key.clone(), state);
            // What the exporter does with the replaced states: records, then drops them.
            drop(index.take_replaced());
            assert!(
                index.interned_len() <= INTERN_SWEEP_MIN + 128 + 1,
                "round {round}: {} interned",
                index.interned_len()
            );
        }
        index.sweep_interned();
        assert_eq!(
            index.interned_len(),
            128 + 1,
            "the last round's types and reasons, and ns"
        );
        index.delete(&key);
        drop(index.take_replaced());
        drop(index.take_changed());
        drop(key);
        index.sweep_interned();
        assert_eq!(index.interned_len(), 0);
    }

    /// Issue "no bound per namespace or kind": beyond a bound, healthy conditions are
    /// refused and counted; conditions that need attention never are, even past the bound;
    /// a delete gives the room back; the other namespace is not affected.
    #[test]
    fn series_bounds_refuse_healthy_conditions_only() {
        let mut index = ConditionIndex::new();
        index.set_bounds(SeriesBounds {
            per_namespace: 10,
            per_resource: 15,
        });
        // Each condition is 2 series (status and since, cond() sets since). `n` healthy
        // ones after `broken`.
        let state = |index: &mut ConditionIndex, broken: Vec<Condition>, n: usize| {
            let conditions = broken
                .into_iter()
                .chain((0..n).map(|i| cond(&format!("T{i}Ready"), True, "Fine")))
                .collect();
            index.state(Some(1), conditions, None)
        };
        let a = index.key(R, "tenant", "a");
        let s = state(&mut index, vec![], 4);
        index.apply(a.clone(), s);
        assert_eq!(index.get(&a).unwrap().series_count(), 8);
        let b = index.key(R, "tenant", "b");
        let broken = vec![
            cond("SigningKeyReady", False, "SigningKeyInvalid"),
            cond("NodeKeyReady", Unknown, "Unknown"),
        ];
        let s = state(&mut index, broken, 4);
        index.apply(b.clone(), s);
        let kept: Vec<&str> = index
            .get(&b)
            .unwrap()
            .conditions
            .iter()
            .map(|c| &*c.type_)
            .collect();
        assert_eq!(
            kept,
            ["SigningKeyReady", "NodeKeyReady"],
            "over the bound, never the broken ones"
        );
        assert_eq!(index.get(&b).unwrap().refused, 4);
        assert_eq!(index.count_refused_by_resource(1), [4]);
        // Another namespace has its own room, up to the resource's bound (15 - 12 = 3).
        let c = index.key(R, "other", "c");
        let s = state(&mut index, vec![], 4);
        index.apply(c.clone(), s);
        assert_eq!(index.get(&c).unwrap().conditions.len(), 1);
        // a is deleted: b's next write fits.
        index.delete(&a);
        let s = state(
            &mut index,
            vec![cond("SigningKeyReady", False, "SigningKeyInvalid")],
            2,
        );
        index.apply(b.clone(), s);
        assert_eq!(index.get(&b).unwrap().conditions.len(), 3);
        assert_eq!(index.get(&b).unwrap().refused, 0);
        assert_eq!(index.count_refused_by_resource(1), [3]);
    }

    /// Carried values: an unreadable status keeps the whole previous condition, an
    /// unreadable since keeps the previous since while the status is the same, and untyped
    /// entries keep the previous conditions that are missing.
    #[test]
    fn carry_unreadable_keeps_the_last_readable_values() {
        let mut index = ConditionIndex::new();
        let previous = index.state(
            Some(1),
            vec![
                cond("A", False, "Broken"),
                cond("B", True, "Fine"),
                cond("C", False, "Gone"),
            ],
            None,
        );
        let mut unknown_a = cond("A", Unknown, crate::conditions::REASON_STATUS_UNREADABLE);
        unknown_a.since = None;
        let mut b = cond("B", True, "Fine");
        b.since = None;
        let mut now = index.state(Some(1), vec![unknown_a, b], None);
        now.carry_unreadable(
            Some(&previous),
            &[
                ("A".into(), Field::Status),
                ("B".into(), Field::LastTransitionTime),
            ],
            1,
            64,
        );
        assert_eq!(now.conditions, previous.conditions);
        assert_eq!(now.unreadable, 3);
        // Without a previous state there is nothing to keep, only the count.
        let mut fresh = index.state(Some(1), vec![cond("A", Unknown, "StatusUnreadable")], None);
        fresh.carry_unreadable(None, &[("A".into(), Field::Status)], 0, 64);
        assert_eq!(fresh.conditions[0].status, Unknown);
        assert_eq!(fresh.unreadable, 1);
    }

    #[test]
    fn strings_are_interned() {
        let mut index = ConditionIndex::new();
        for i in 0..100 {
            let k = index.key(R, "ns", &format!("n{i}"));
            let s = state(&mut index, False);
            index.apply(k, s);
        }
        let ptrs: HashSet<*const u8> = index
            .iter()
            .flat_map(|(k, s)| {
                [
                    Arc::as_ptr(&k.namespace) as *const u8,
                    Arc::as_ptr(&s.conditions[0].type_) as *const u8,
                    Arc::as_ptr(&s.conditions[0].reason) as *const u8,
                ]
            })
            .collect();
        assert_eq!(
            ptrs.len(),
            3,
            "one namespace, one type, one reason allocation"
        );
    }

    #[test]
    fn resync_retires_only_its_resource_and_scope() {
        let mut index = ConditionIndex::new();
        let (a, b, c, d) = (
            index.key(R, "ns", "a"),
            index.key(R, "ns", "b"),
            index.key(R, "other", "c"),
            index.key(OTHER, "ns", "d"),
        );
        for k in [&a, &b, &c, &d] {
            let s = state(&mut index, True);
            index.apply(k.clone(), s);
        }
        let scope = Scope::Namespace("ns".into());
        index.begin_resync(R, scope.clone());
        index.touch(&scope, &a);
        assert_eq!(index.len(), 4, "nothing is removed before InitDone");
        assert_eq!(index.finish_resync(R, &scope), 1, "only b");
        assert!(index.get(&b).is_none());
        assert!(index.get(&c).is_some() && index.get(&d).is_some());

        index.begin_resync(R, Scope::AllNamespaces);
        assert_eq!(index.finish_resync(R, &Scope::AllNamespaces), 2, "a and c");
        assert_eq!(index.len(), 1, "the other resource is untouched");
        assert_eq!(
            index.finish_resync(R, &Scope::AllNamespaces),
            0,
            "no begin, no removal"
        );
    }

    #[test]
    fn outdated_conditions() {
        let mut index = ConditionIndex::new();
        let mut s = index.state(
            Some(5),
            vec![
                Condition {
                    observed_generation: Some(3),
                    ..cond("A", True, "R")
                },
                Condition {
                    observed_generation: Some(5),
                    ..cond("B", True, "R")
                },
                Condition {
                    observed_generation: None,
                    ..cond("C", True, "R")
                },
            ],
            None,
        );
        let lags: Vec<Option<i64>> = s.conditions.iter().map(|c| s.outdated_by(c)).collect();
        assert_eq!(lags, [Some(2), None, None]);
        s.generation = None;
        assert_eq!(s.outdated_by(&s.conditions[0]), None);
    }

    #[test]
    fn counts() {
        let mut index = ConditionIndex::new();
        let a = index.key(R, "ns", "a");
        let b = index.key(OTHER, "ns", "b");
        let tls = Verdict {
            status: False,
            reason: "TLSSecretNotFound".into(),
            since: None,
        };
        let s = index.state(None, vec![], Some(tls));
        index.apply(a, s);
        let s = index.state(None, vec![], None);
        index.apply(b, s);
        assert_eq!(index.count_by_resource(2), vec![1, 1]);
        assert_eq!(index.count_tls_by_status(), [0, 1, 0]);
    }
}
