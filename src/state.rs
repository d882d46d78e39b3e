//! What the three stages share: the readiness index, the self-metric counters, the
//! "something changed" signal from the watch to the export stage, and readiness flags.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::Notify;

use crate::index::{ObjectKey, ReadinessIndex, StoredVerdict};
use crate::stats::Stats;

#[derive(Debug)]
pub struct Shared {
    /// The verdicts. A std lock: it is held for microseconds and never across an await.
    index: RwLock<ReadinessIndex>,
    /// Self-metric counters.
    pub stats: Stats,
    /// Notified when a verdict changes, so the export stage exports within a second
    /// instead of waiting for the next periodic export.
    pub changed: Notify,
    /// Watches (one per namespace, or one for all) that have not finished their first list.
    unsynced_watches: AtomicUsize,
    /// Set once the exporter and its meter provider are built.
    exporter_ready: AtomicBool,
    /// While an event-driven export collects: the only SeiNodes whose series it reports.
    /// `None`: every SeiNode (periodic exports, shutdown).
    only_changed: Mutex<Option<Arc<Vec<ObjectKey>>>>,
}

impl Shared {
    /// State for `watches` independent watches (one per `--namespace`, or one).
    pub fn new(watches: usize) -> Self {
        Self {
            index: RwLock::new(ReadinessIndex::new()),
            stats: Stats::new(),
            changed: Notify::new(),
            unsynced_watches: AtomicUsize::new(watches),
            exporter_ready: AtomicBool::new(false),
            only_changed: Mutex::new(None),
        }
    }

    /// Restricts (Some) or unrestricts (None) which SeiNodes the next collections report.
    pub fn set_only_changed(&self, keys: Option<Vec<ObjectKey>>) {
        *self.only_changed.lock().unwrap_or_else(|e| e.into_inner()) = keys.map(Arc::new);
    }

    /// Calls `f` for every SeiNode the current collection reports: all of them, or during
    /// an event-driven export only those that changed.
    pub fn for_each_reported(&self, mut f: impl FnMut(&ObjectKey, &StoredVerdict)) {
        let only = self
            .only_changed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let index = self.index();
        match only {
            Some(keys) => {
                for key in keys.iter() {
                    if let Some(verdict) = index.get(key) {
                        f(key, verdict);
                    }
                }
            }
            None => {
                for (key, verdict) in index.iter() {
                    f(key, verdict);
                }
            }
        }
    }

    /// Reads the index. A poisoned lock means a panic while the index was being changed;
    /// the index's methods leave it consistent at every step, so its data is still good.
    pub fn index(&self) -> RwLockReadGuard<'_, ReadinessIndex> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn index_mut(&self) -> RwLockWriteGuard<'_, ReadinessIndex> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Called once per watch when its first list completes.
    pub fn mark_watch_synced(&self) {
        // Saturating: a watch reports its first sync only once, but never underflow.
        let _ = self
            .unsynced_watches
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    pub fn mark_exporter_ready(&self) {
        self.exporter_ready.store(true, Ordering::SeqCst);
    }

    pub fn watches_synced(&self) -> bool {
        self.unsynced_watches.load(Ordering::SeqCst) == 0
    }

    /// Ready to serve: every watch has listed once and the exporter exists.
    pub fn is_ready(&self) -> bool {
        self.watches_synced() && self.exporter_ready.load(Ordering::SeqCst)
    }
}
