//! Whether each watch can still vouch for what the index holds.
//!
//! A watch that keeps failing (RBAC revoked, the API server unreachable, a connection that
//! hangs) leaves the index with the last verdicts it saw. Exporting them as current would
//! let an old "Ready" hide a page, so a resource whose watch has failed continuously for
//! [`BLIND_AFTER`] is *blind*: its object series are withdrawn (staleness markers) until the
//! watch works again, and `sei_condition_watcher_resource_blind{resource}` says so.
//!
//! kube's watcher reports every failed attempt as an error, but a successful re-watch on a
//! quiet resource yields nothing. So a watch is *failing* from its first error until it
//! yields an event, or until no error has come for [`RECOVERED_AFTER`]: longer than the
//! longest gap between two failed attempts (a 30 s backoff plus a request that hangs until
//! the client's 40 s read timeout). A single failed attempt therefore never makes a resource
//! blind: [`BLIND_AFTER`] is longer than [`RECOVERED_AFTER`].
//!
//! Worst case from a hanging connection to withdrawn series: the watch's idle timeout
//! (server-side timeout + 5 s = 35 s) and the re-watch's read timeout (40 s) until the first
//! error, then [`BLIND_AFTER`], then the next periodic export: about 3 minutes, inside
//! Prometheus' 5-minute lookback.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::index::Scope;
use crate::resource::ResourceId;

/// How long a watch must fail continuously before its resource is blind.
pub const BLIND_AFTER: Duration = Duration::from_secs(90);
/// A failing watch with no new error for this long has recovered.
pub const RECOVERED_AFTER: Duration = Duration::from_secs(75);
/// The server-side timeout of each watch request: a healthy watch is re-established at
/// least this often, so a connection that hangs is noticed.
pub const WATCH_TIMEOUT_SECS: u32 = 30;
/// The server-side timeout of the watch request that carries a streaming list (its first
/// events are every current object, then it goes on as a watch). The whole list must arrive
/// within one request, and [`WATCH_TIMEOUT_SECS`] is too short for a large one (100,000
/// SeiNodes take about 80 s here): a list cut short begins again from the start, forever.
/// A hanging connection is still noticed within kube's idle timeout
/// (`WATCH_TIMEOUT_SECS` + 5 s without an event), and a quiet watch after the list is ended
/// by that same idle timeout, not by this one. Ten minutes is client-go's upper bound for a
/// watch request; at this machine's 1,450 objects/s it is room for about 870,000 objects.
pub const INITIAL_LIST_TIMEOUT_SECS: u32 = 600;
/// The client's read timeout: a request (list, watch start, lease renewal) that receives
/// nothing for this long fails. Longer than [`WATCH_TIMEOUT_SECS`] + kube's 5 s idle margin,
/// so a quiet healthy watch never trips it.
pub const READ_TIMEOUT: Duration = Duration::from_secs(40);

/// The health of one watch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WatchHealth {
    failing_since: Option<Instant>,
    last_error: Option<Instant>,
}

impl WatchHealth {
    /// A watch attempt failed at `now`.
    pub fn error(&mut self, now: Instant) {
        if !self.failing(now) {
            self.failing_since = Some(now);
        }
        self.last_error = Some(now);
    }

    /// The watch delivered an event: it works.
    pub fn ok(&mut self) {
        *self = Self::default();
    }

    pub fn failing(&self, now: Instant) -> bool {
        self.last_error
            .is_some_and(|at| now.saturating_duration_since(at) < RECOVERED_AFTER)
    }

    /// Failing continuously for at least [`BLIND_AFTER`].
    pub fn blind(&self, now: Instant) -> bool {
        self.failing(now)
            && self
                .failing_since
                .is_some_and(|since| now.saturating_duration_since(since) >= BLIND_AFTER)
    }
}

/// The health of every watch, by resource and scope.
#[derive(Debug, Default)]
pub struct Health {
    watches: HashMap<(ResourceId, Scope), WatchHealth>,
}

impl Health {
    pub fn error(&mut self, resource: ResourceId, scope: &Scope, now: Instant) {
        self.watches
            .entry((resource, scope.clone()))
            .or_default()
            .error(now);
    }

    pub fn ok(&mut self, resource: ResourceId, scope: &Scope) {
        if let Some(h) = self.watches.get_mut(&(resource, scope.clone())) {
            h.ok();
        }
    }

    /// Blindness of resources `0..n`, by [`ResourceId`].
    pub fn blind_resources(&self, n: usize, now: Instant) -> Vec<bool> {
        let mut blind = vec![false; n];
        for ((r, _), h) in &self.watches {
            if h.blind(now) {
                if let Some(b) = blind.get_mut(r.0 as usize) {
                    *b = true;
                }
            }
        }
        blind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn one_failed_attempt_never_blinds() {
        let t0 = Instant::now();
        let mut h = WatchHealth::default();
        h.error(t0);
        assert!(h.failing(t0 + secs(74)));
        assert!(!h.blind(t0 + secs(74)));
        // No further error: recovered before BLIND_AFTER.
        assert!(!h.failing(t0 + secs(75)));
        assert!(!h.blind(t0 + secs(90)));
        assert!(!h.blind(t0 + secs(600)));
    }

    #[test]
    fn errors_that_keep_coming_blind_after_the_bound_and_an_event_clears() {
        let t0 = Instant::now();
        let mut h = WatchHealth::default();
        // A hanging re-watch: one error every backoff (30 s) + read timeout (40 s).
        for i in 0..3 {
            h.error(t0 + secs(70 * i));
        }
        assert!(!h.blind(t0 + secs(89)));
        assert!(h.blind(t0 + secs(90)));
        assert!(h.blind(t0 + secs(140 + 74)));
        h.ok();
        assert!(!h.blind(t0 + secs(215)));
        assert!(!h.failing(t0 + secs(215)));
    }

    #[test]
    fn a_gap_longer_than_recovery_starts_a_new_failure() {
        let t0 = Instant::now();
        let mut h = WatchHealth::default();
        h.error(t0);
        h.error(t0 + secs(80)); // the first failure had recovered
        assert!(!h.blind(t0 + secs(160)));
        h.error(t0 + secs(150));
        assert!(h.blind(t0 + secs(170)));
    }

    #[test]
    fn a_resource_is_blind_when_any_scope_is() {
        let t0 = Instant::now();
        let mut health = Health::default();
        let a = Scope::Namespace("a".into());
        let b = Scope::Namespace("b".into());
        health.error(ResourceId(1), &a, t0);
        health.error(ResourceId(1), &a, t0 + secs(60));
        health.error(ResourceId(1), &b, t0 + secs(60));
        health.ok(ResourceId(1), &b);
        assert_eq!(
            health.blind_resources(3, t0 + secs(95)),
            [false, true, false]
        );
        assert!(!health.blind_resources(3, t0 + secs(95))[0]);
        health.ok(ResourceId(1), &a);
        assert_eq!(health.blind_resources(3, t0 + secs(95)), [false; 3]);
    }
}
