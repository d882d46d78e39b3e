//! What the stages share: the condition index, the resolved resources, the self-metric
//! counters, the "something changed" signal from the watch to the export stage, and
//! readiness flags. Nothing flows back from the export stage: it only reads.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::health::Health;
use crate::index::{ConditionIndex, Scope};
use crate::resource::{ResourceId, ResourceSpec, WatchedResource};
use crate::stats::Stats;

#[derive(Debug)]
pub struct Shared {
    /// The objects' conditions. A std lock: it is held for microseconds and never across
    /// an await.
    index: RwLock<ConditionIndex>,
    /// The watched resources, by [`ResourceId`]: `None` until resolved (a CRD that is not
    /// installed yet, or a family that clashes with another resource's).
    resources: RwLock<Vec<Option<Arc<WatchedResource>>>>,
    /// Self-metric counters.
    pub stats: Stats,
    /// Notified when an object changes, so the export stage exports at once instead of
    /// waiting for the next periodic export.
    pub changed: Notify,
    /// Resources that have neither completed a first list of every scope nor been found
    /// not served: what `/readyz` waits for.
    unsynced_resources: AtomicUsize,
    /// Set once the export stage is built.
    exporter_ready: AtomicBool,
    /// Whether each watch can vouch for the index (see [`crate::health`]).
    health: Mutex<Health>,
    /// Whether this replica exports object series: always without leader election, else
    /// while it holds the Lease ([`crate::lease`]).
    leader: tokio::sync::watch::Sender<bool>,
}

impl Shared {
    /// State for the resources in `specs`; their positions are their [`ResourceId`]s.
    pub fn new(specs: &[ResourceSpec]) -> Self {
        Self {
            index: RwLock::new(ConditionIndex::new()),
            resources: RwLock::new(vec![None; specs.len()]),
            stats: Stats::new(specs.iter().map(ResourceSpec::label)),
            changed: Notify::new(),
            unsynced_resources: AtomicUsize::new(specs.len()),
            exporter_ready: AtomicBool::new(false),
            health: Mutex::new(Health::default()),
            leader: tokio::sync::watch::Sender::new(true),
        }
    }

    /// A watch of `resource` failed.
    pub fn watch_failed(&self, resource: ResourceId, scope: &Scope) {
        self.health().error(resource, scope, Instant::now());
    }

    /// A watch of `resource` delivered an event.
    pub fn watch_ok(&self, resource: ResourceId, scope: &Scope) {
        self.health().ok(resource, scope);
    }

    /// Which resources are blind now, by [`ResourceId`].
    pub fn blind_resources(&self) -> Vec<bool> {
        let n = self.stats.resources.len();
        self.health().blind_resources(n, Instant::now())
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// Records whether this replica leads; returns whether that changed.
    pub fn set_leader(&self, leader: bool) -> bool {
        self.leader
            .send_if_modified(|l| std::mem::replace(l, leader) != leader)
    }

    /// Follows leadership changes.
    pub fn leadership(&self) -> tokio::sync::watch::Receiver<bool> {
        self.leader.subscribe()
    }

    /// Reads the index. A poisoned lock means a panic while the index was being changed;
    /// the index's methods leave it consistent at every step, so its data is still good.
    pub fn index(&self) -> RwLockReadGuard<'_, ConditionIndex> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn index_mut(&self) -> RwLockWriteGuard<'_, ConditionIndex> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a resolved resource. Refuses it (returning the label of the resource that
    /// has it) when another resource already exports under the same family.
    pub fn register_resource(
        &self,
        id: ResourceId,
        resource: WatchedResource,
    ) -> Result<Arc<WatchedResource>, String> {
        let mut resources = self.resources.write().unwrap_or_else(|e| e.into_inner());
        if let Some(other) = resources
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != id.0 as usize)
            .flat_map(|(_, r)| r.as_ref())
            .find(|r| r.family == resource.family)
        {
            return Err(other.label.clone());
        }
        let resource = Arc::new(resource);
        resources[id.0 as usize] = Some(resource.clone());
        Ok(resource)
    }

    /// The resolved resources, by [`ResourceId`].
    pub fn resources(&self) -> Vec<Option<Arc<WatchedResource>>> {
        self.resources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Called once per resource when every scope of it has listed once, or when the API
    /// server says it does not serve it.
    pub fn mark_resource_synced(&self) {
        // Saturating: never underflow, whatever a caller does.
        let _ = self
            .unsynced_resources
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    pub fn mark_exporter_ready(&self) {
        self.exporter_ready.store(true, Ordering::SeqCst);
    }

    pub fn watches_synced(&self) -> bool {
        self.unsynced_resources.load(Ordering::SeqCst) == 0
    }

    /// Ready to serve: every resource has listed once (or is not served) and the exporter
    /// exists.
    pub fn is_ready(&self) -> bool {
        self.watches_synced() && self.exporter_ready.load(Ordering::SeqCst)
    }
}
