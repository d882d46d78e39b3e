//! Leader election on a `coordination.k8s.io/v1` Lease: of several replicas, one (the
//! leader) exports the object series; the others watch too, so that one of them can take
//! over within a lease duration.
//!
//! The Lease is written by anyone with `update` on it, so nothing read from it is trusted
//! blindly:
//!
//! - `leaseDurationSeconds` is capped at [`MAX_LEASE_DURATION`] ([`trusted_duration`]): a
//!   holder that writes an hour and stops renewing cannot stop every export for an hour;
//! - `leaseTransitions` saturates at `i32::MAX` ([`next_transitions`]) instead of
//!   overflowing (a negative count is refused by the API server, which would leave the
//!   Lease untakeable);
//! - leading needs this *process*, not only this identity: every process writes its own
//!   token ([`ProcessToken`]) in the [`PROCESS_ANNOTATION`] annotation, and a Lease with
//!   this replica's identity but another token belongs to someone else ([`holder_of`]).
//!   A second live process with the same identity is reported
//!   (`sei_condition_watcher_duplicate_identity`, a warning) instead of both leading.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::state::Shared;

use clap::Args;

/// Leader-election flags.
#[derive(Debug, Clone, Args)]
pub struct LeaderArgs {
    /// Elect one exporting replica among several with a Lease (run two replicas with this).
    /// A Lease that asks for more than 60 s is waited out for 60 s.
    #[arg(long)]
    pub leader_elect: bool,
    /// Name of the Lease.
    #[arg(long, value_name = "NAME", default_value = "sei-condition-watcher")]
    pub leader_election_id: String,
    /// Namespace of the Lease. Default: $POD_NAMESPACE, then the service account's namespace.
    #[arg(long, value_name = "NAMESPACE", env = "POD_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
}

/// How long a Lease is valid after its last renewal (client-go's default).
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// A leader that could not renew for this long stops exporting, so that it has stopped
/// before anyone else may take the Lease (after [`LEASE_DURATION`]).
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// How often the Lease is renewed, or checked by a standby.
pub const RETRY_PERIOD: Duration = Duration::from_secs(2);
/// How long a leader that releases the Lease on shutdown waits for a successor.
pub const HANDOVER_WAIT: Duration = Duration::from_secs(5);
/// The longest lease duration a standby honours; a Lease that says more is treated as
/// saying this (with a warning). Four times [`LEASE_DURATION`]: room for a later version or
/// another client to lengthen the lease without this one taking it early (a holder that
/// renews at all renews far more often), while a Lease whose holder wrote an hour and died
/// still changes hands within a minute. With it the longest gap between two exports of a
/// series stays one export interval (15 s) + this + two retry periods + 1 s = 80 s, inside
/// Prometheus' 5-minute lookback, so no condition series goes stale and no page resolves.
pub const MAX_LEASE_DURATION: Duration = Duration::from_secs(60);
/// The Lease annotation that carries the holding process' [`ProcessToken`], so that two
/// processes with one identity (a copied `--instance-id`, two pods on the host network of
/// one node, the `sei-condition-watcher` fallback name) cannot both lead.
pub const PROCESS_ANNOTATION: &str = "sei-condition-watcher.sei.io/holder-process";

/// A token that tells this process from any other, even one with the same identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessToken(String);

impl ProcessToken {
    /// The process id, the start time in nanoseconds and 64 random bits (std's `RandomState`
    /// keys come from the operating system's randomness, drawn once per thread), so no new
    /// dependency is needed for a value that only has to differ between processes.
    pub fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Self(format!("{}-{nanos:x}-{random:016x}", std::process::id()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ProcessToken {
    fn default() -> Self {
        Self::new()
    }
}

/// Who holds a Lease, seen from one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// No holder (never taken, or released).
    Nobody,
    /// This process.
    This,
    /// Another process with this replica's identity: a duplicate if it renews, or this
    /// replica's previous incarnation (a restarted container) if it does not.
    SameIdentity,
    /// Another replica.
    Other,
}

/// Who holds a Lease whose holder is `holder` and whose [`PROCESS_ANNOTATION`] is
/// `process`, for the process `token` with identity `identity`.
pub fn holder_of(
    holder: Option<&str>,
    process: Option<&str>,
    identity: &str,
    token: &ProcessToken,
) -> Holder {
    match holder.filter(|h| !h.is_empty()) {
        None => Holder::Nobody,
        Some(h) if h != identity => Holder::Other,
        Some(_) if process == Some(token.as_str()) => Holder::This,
        Some(_) => Holder::SameIdentity,
    }
}

/// The lease duration a standby honours for a Lease that says `written` seconds: at most
/// [`MAX_LEASE_DURATION`], at least 1 s ([`LEASE_DURATION`] when absent). The flag says
/// whether `written` was capped.
pub fn trusted_duration(written: Option<i32>) -> (Duration, bool) {
    match written {
        None => (LEASE_DURATION, false),
        Some(s) => {
            let written = Duration::from_secs(u64::try_from(s).unwrap_or(0).max(1));
            (
                written.min(MAX_LEASE_DURATION),
                written > MAX_LEASE_DURATION,
            )
        }
    }
}

/// The `leaseTransitions` to write after `current`: one more on a takeover, the same on a
/// renewal; never negative and never past `i32::MAX` (it stays there: the count is only
/// informative, and the API server refuses a negative one).
pub fn next_transitions(current: Option<i32>, taking_over: bool) -> i32 {
    current
        .unwrap_or(0)
        .max(0)
        .saturating_add(i32::from(taking_over))
}

/// Whether `seen` shows another live process with this replica's identity: the Lease is
/// held under this identity by another process, and that process renewed it since
/// `previous` (a dead previous incarnation never renews). While such a holder keeps the
/// Lease unrenewed, the last verdict stands (`was`).
fn twin_renewing(previous: Option<&Observed>, seen: &Observed, was: bool) -> bool {
    if seen.holder_kind != Holder::SameIdentity {
        return false;
    }
    match previous {
        Some(p) if p.holder == seen.holder && p.process == seen.process => {
            was || p.renew_time != seen.renew_time
        }
        _ => false,
    }
}

/// The Lease as a standby last saw it, and when it first saw it that way.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    holder: Option<String>,
    /// The holder's [`PROCESS_ANNOTATION`].
    process: Option<String>,
    holder_kind: Holder,
    renew_time: Option<MicroTime>,
    at: Instant,
}

/// What one read-and-write of the Lease came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    Held,
    NotHeld,
    /// Our own renewal lost a race with another write: read again.
    RenewConflict,
}

/// One replica's side of the election.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    /// Tells this process from another with the same identity.
    token: ProcessToken,
    shared: Arc<Shared>,
    observed: Option<Observed>,
    /// When this replica last renewed successfully, while it leads.
    renewed: Option<Instant>,
    /// The last capped `(holder, leaseDurationSeconds)` warned about, so that a Lease that
    /// stays that way is one line, not one per retry period.
    warned_duration: Option<(Option<String>, i32)>,
}

impl Elector {
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            token: ProcessToken::new(),
            shared,
            observed: None,
            renewed: None,
            warned_duration: None,
        }
    }

    /// Takes part in the election until the process stops; never returns.
    pub async fn run(&mut self) {
        let mut logged_error: Option<Instant> = None;
        loop {
            self.step(&mut logged_error).await;
            tokio::time::sleep(RETRY_PERIOD).await;
        }
    }

    /// One round: try to acquire or renew, or step down.
    async fn step(&mut self, logged_error: &mut Option<Instant>) {
        let now = Instant::now();
        // A replica that has not listed everything once cannot vouch for its view. A blind
        // resource does not stop a replica from leading: its series are withdrawn (see
        // crate::health), and blindness is usually the identity's or the API server's, the
        // same for every replica; a leader cut off from the API server loses the Lease
        // anyway, because it cannot renew it.
        if !self.shared.watches_synced() {
            return;
        }
        // A leader's attempt may last only until its renew deadline: it must have stopped
        // exporting before anyone else may take the Lease (LEASE_DURATION after the last
        // renewal they saw), whatever the API server does with this request.
        let budget = match self.renewed {
            Some(at) if self.shared.is_leader() => {
                (at + RENEW_DEADLINE).saturating_duration_since(now)
            }
            _ => RENEW_DEADLINE,
        };
        match tokio::time::timeout(budget, self.try_acquire_or_renew(now)).await {
            Ok(Ok(true)) => {
                // Counted from when the request was sent: conservative.
                self.renewed = Some(now);
                if self.shared.set_leader(true) {
                    info!(lease = %self.name, identity = %self.identity, "acquired the lease: this replica exports the object series");
                }
            }
            Ok(Ok(false)) => self.lose(),
            Ok(Err(error)) => self.failed(&error.to_string(), logged_error),
            Err(_) => self.failed("the request timed out", logged_error),
        }
    }

    fn failed(&mut self, error: &str, logged_error: &mut Option<Instant>) {
        let now = Instant::now();
        if logged_error
            .is_none_or(|at| now.saturating_duration_since(at) >= Duration::from_secs(60))
        {
            *logged_error = Some(now);
            warn!(lease = %self.name, "cannot read or renew the leader-election Lease: {error}; check the watcher's Role (leases get, create, update in its namespace) and the API server");
        } else {
            debug!(lease = %self.name, "lease request failed: {error}");
        }
        let expired = self
            .renewed
            .is_some_and(|at| now.saturating_duration_since(at) >= RENEW_DEADLINE);
        if self.shared.is_leader() && expired {
            warn!(lease = %self.name, "could not renew the lease for {RENEW_DEADLINE:?}: stopping exports so that another replica can take over");
            self.lose();
        }
    }

    fn lose(&mut self) {
        self.renewed = None;
        if self.shared.set_leader(false) {
            info!(lease = %self.name, "not leading: another replica exports the object series");
        }
    }

    /// Whether this replica holds the Lease after this round.
    async fn try_acquire_or_renew(&mut self, now: Instant) -> Result<bool, kube::Error> {
        // A conflict on our own renewal (someone wrote the Lease between our read and our
        // write) is read again once before it counts: losing the Lease for a lost race
        // would cost a full export on both replicas.
        match self.attempt(now).await? {
            Attempt::RenewConflict => Ok(matches!(self.attempt(now).await?, Attempt::Held)),
            outcome => Ok(outcome == Attempt::Held),
        }
    }

    async fn attempt(&mut self, now: Instant) -> Result<Attempt, kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let mut metadata = ObjectMeta {
                name: Some(self.name.clone()),
                ..ObjectMeta::default()
            };
            self.mark_process(&mut metadata);
            let lease = Lease {
                metadata,
                spec: Some(self.spec_acquired(0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Held),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::NotHeld),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let process = lease_process(&lease);
        let holder_kind = holder_of(
            holder.as_deref(),
            process.as_deref(),
            &self.identity,
            &self.token,
        );
        let mine = holder_kind == Holder::This;
        if !mine {
            if self.shared.is_leader() {
                // Someone else holds it now: stop at once.
                self.lose();
            }
            let seen = Observed {
                holder: holder.clone(),
                process,
                holder_kind,
                renew_time: spec.renew_time.clone(),
                at: now,
            };
            self.note_twin(&seen);
            if holder.is_some() {
                let changed = self.observed.as_ref().is_none_or(|o| {
                    o.holder != seen.holder
                        || o.process != seen.process
                        || o.renew_time != seen.renew_time
                });
                if changed {
                    self.observed = Some(seen);
                }
                let duration = self.honoured_duration(&holder, spec.lease_duration_seconds);
                let since = self.observed.as_ref().map_or(now, |o| o.at);
                if now.saturating_duration_since(since) < duration {
                    return Ok(Attempt::NotHeld);
                }
                info!(lease = %self.name, previous = ?holder, "the lease expired: taking over");
            }
        } else {
            self.note_twin_gone();
        }
        let transitions = next_transitions(spec.lease_transitions, !mine);
        let mut new_spec = self.spec_acquired(transitions);
        if mine {
            new_spec.acquire_time = spec.acquire_time.clone();
        }
        lease.spec = Some(new_spec);
        self.mark_process(&mut lease.metadata);
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Attempt::Held),
            Err(kube::Error::Api(s)) if s.code == 409 && mine => Ok(Attempt::RenewConflict),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::NotHeld),
            Err(e) => Err(e),
        }
    }

    /// The lease duration to wait out for `holder`'s Lease, warning once per holder and
    /// value when the Lease asks for more than [`MAX_LEASE_DURATION`].
    fn honoured_duration(&mut self, holder: &Option<String>, written: Option<i32>) -> Duration {
        let (duration, capped) = trusted_duration(written);
        if capped {
            let key = (holder.clone(), written.unwrap_or_default());
            if self.warned_duration.as_ref() != Some(&key) {
                warn!(
                    lease = %self.name,
                    holder = ?holder,
                    lease_duration_seconds = key.1,
                    "the lease asks to be honoured for longer than {MAX_LEASE_DURATION:?}: waiting {MAX_LEASE_DURATION:?} \
                     instead; the watcher writes {}s, so check who else writes this Lease",
                    LEASE_DURATION.as_secs()
                );
                self.warned_duration = Some(key);
            }
        }
        duration
    }

    /// Records whether another live process with this replica's identity holds the Lease
    /// (`seen` against the previous observation).
    fn note_twin(&mut self, seen: &Observed) {
        let stats = &self.shared.stats;
        let was = stats.duplicate_identity.load(Ordering::Relaxed);
        let twin = twin_renewing(self.observed.as_ref(), seen, was);
        if twin && !was {
            warn!(
                lease = %self.name,
                identity = %self.identity,
                "another process with this replica's identity holds and renews the lease: this \
                 one stands by; give every replica its own --instance-id ($POD_NAME)"
            );
        }
        if !twin && was {
            info!(lease = %self.name, identity = %self.identity, "no other process with this replica's identity holds the lease any more");
        }
        stats.duplicate_identity.store(twin, Ordering::Relaxed);
    }

    fn note_twin_gone(&mut self) {
        if self
            .shared
            .stats
            .duplicate_identity
            .swap(false, Ordering::Relaxed)
        {
            info!(lease = %self.name, identity = %self.identity, "no other process with this replica's identity holds the lease any more");
        }
    }

    /// Writes this process' token in the Lease's metadata.
    fn mark_process(&self, metadata: &mut ObjectMeta) {
        metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(
                PROCESS_ANNOTATION.to_owned(),
                self.token.as_str().to_owned(),
            );
    }

    fn holder_kind(&self, lease: &Lease) -> Holder {
        let holder = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref());
        holder_of(
            holder,
            lease_process(lease).as_deref(),
            &self.identity,
            &self.token,
        )
    }

    fn spec_acquired(&self, transitions: i32) -> LeaseSpec {
        let now = MicroTime(jiff::Timestamp::now());
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// Gives the Lease up (if this replica holds it) so that a standby takes over at once.
    async fn release(&mut self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await else {
            return;
        };
        // Only this process' hold is given up, never that of another process with the same
        // identity.
        if self.holder_kind(&lease) != Holder::This {
            return;
        }
        if let Some(annotations) = lease.metadata.annotations.as_mut() {
            annotations.remove(PROCESS_ANNOTATION);
        }
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
        if let Err(e) = self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            debug!(lease = %self.name, "releasing the lease failed: {e}");
        }
    }

    /// On shutdown: stops leading, releases the Lease and waits up to [`HANDOVER_WAIT`] for
    /// another replica to take it. Returns whether one did (it then owns the series).
    pub async fn hand_over(&mut self) -> bool {
        let was_leader = self.shared.is_leader();
        self.shared.set_leader(false);
        if !was_leader {
            return false;
        }
        let wait = async {
            self.release().await;
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if let Ok(Some(lease)) = self.api.get_opt(&self.name).await {
                    if matches!(
                        self.holder_kind(&lease),
                        Holder::Other | Holder::SameIdentity
                    ) {
                        return lease
                            .spec
                            .and_then(|s| s.holder_identity)
                            .unwrap_or_default();
                    }
                }
            }
        };
        match tokio::time::timeout(HANDOVER_WAIT, wait).await {
            Ok(successor) => {
                info!(lease = %self.name, %successor, "handed the lease over: the successor exports the object series");
                true
            }
            Err(_) => {
                info!(lease = %self.name, "no other replica took the lease within {HANDOVER_WAIT:?}: marking the series stale");
                false
            }
        }
    }
}

/// The holding process' token, as the Lease's [`PROCESS_ANNOTATION`] says.
fn lease_process(lease: &Lease) -> Option<String> {
    lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PROCESS_ANNOTATION))
        .cloned()
}

/// The Lease's namespace: the flag, $POD_NAMESPACE, then the service account's namespace.
pub fn namespace(args: &LeaderArgs) -> Result<String, crate::Error> {
    const SA_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
    args.leader_election_namespace
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::fs::read_to_string(SA_NAMESPACE)
                .ok()
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
        })
        .ok_or_else(|| {
            crate::Error::Config(
                "--leader-elect needs the Lease's namespace: set --leader-election-namespace or \
                 $POD_NAMESPACE (the downward API's metadata.namespace)"
                    .into(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> ProcessToken {
        ProcessToken("1-a-b".into())
    }

    fn observed(holder: &str, process: &str, renewed_s: i64, kind: Holder) -> Observed {
        Observed {
            holder: Some(holder.into()),
            process: Some(process.into()),
            holder_kind: kind,
            renew_time: Some(MicroTime(
                jiff::Timestamp::from_second(renewed_s).expect("a valid second"),
            )),
            at: Instant::now(),
        }
    }

    #[test]
    fn a_lease_duration_above_the_bound_is_honoured_as_the_bound() {
        assert_eq!(trusted_duration(Some(3600)), (MAX_LEASE_DURATION, true));
        assert_eq!(trusted_duration(Some(i32::MAX)), (MAX_LEASE_DURATION, true));
        assert_eq!(trusted_duration(Some(61)), (MAX_LEASE_DURATION, true));
        assert_eq!(
            trusted_duration(Some(60)),
            (Duration::from_secs(60), false),
            "the bound itself is honoured as written"
        );
        assert_eq!(trusted_duration(Some(15)), (LEASE_DURATION, false));
        // A release writes 1; zero or negative (refused by the API server, but read
        // anyway) is one second, never a panic or a wrap-around.
        assert_eq!(trusted_duration(Some(1)), (Duration::from_secs(1), false));
        assert_eq!(trusted_duration(Some(0)), (Duration::from_secs(1), false));
        assert_eq!(
            trusted_duration(Some(i32::MIN)),
            (Duration::from_secs(1), false)
        );
        assert_eq!(trusted_duration(None), (LEASE_DURATION, false));
    }

    #[test]
    fn the_bound_keeps_a_failover_inside_prometheus_lookback() {
        // The documented longest gap between two samples of a series: one export
        // interval + the honoured lease duration + two retry periods + 1 s.
        let gap = Duration::from_secs(15)
            + MAX_LEASE_DURATION
            + 2 * RETRY_PERIOD
            + Duration::from_secs(1);
        assert!(gap < Duration::from_secs(5 * 60), "{gap:?}");
        assert!(MAX_LEASE_DURATION >= LEASE_DURATION);
    }

    #[test]
    fn lease_transitions_saturate_instead_of_overflowing() {
        assert_eq!(next_transitions(None, true), 1);
        assert_eq!(next_transitions(None, false), 0);
        assert_eq!(next_transitions(Some(7), true), 8);
        assert_eq!(next_transitions(Some(7), false), 7);
        assert_eq!(next_transitions(Some(i32::MAX - 1), true), i32::MAX);
        assert_eq!(next_transitions(Some(i32::MAX), true), i32::MAX);
        assert_eq!(next_transitions(Some(i32::MAX), false), i32::MAX);
        // The API server refuses a negative count: never write one back.
        assert_eq!(next_transitions(Some(-5), true), 1);
        assert_eq!(next_transitions(Some(i32::MIN), false), 0);
    }

    #[test]
    fn leading_needs_this_process_not_only_this_identity() {
        let me = token();
        assert_eq!(holder_of(None, None, "pod-a", &me), Holder::Nobody);
        assert_eq!(
            holder_of(Some(""), Some("1-a-b"), "pod-a", &me),
            Holder::Nobody
        );
        assert_eq!(
            holder_of(Some("pod-a"), Some("1-a-b"), "pod-a", &me),
            Holder::This
        );
        assert_eq!(
            holder_of(Some("pod-a"), Some("2-c-d"), "pod-a", &me),
            Holder::SameIdentity
        );
        // No token: written by an older version or by hand; not this process.
        assert_eq!(
            holder_of(Some("pod-a"), None, "pod-a", &me),
            Holder::SameIdentity
        );
        assert_eq!(
            holder_of(Some("pod-b"), Some("1-a-b"), "pod-a", &me),
            Holder::Other
        );
    }

    #[test]
    fn every_process_has_its_own_token() {
        let a = ProcessToken::new();
        let b = ProcessToken::new();
        assert_ne!(a, b);
        assert!(a.as_str().starts_with(&format!("{}-", std::process::id())));
    }

    #[test]
    fn a_twin_is_reported_once_it_renews_and_only_while_it_holds() {
        let twin = |renewed| observed("pod-a", "2-c-d", renewed, Holder::SameIdentity);
        // First sight: could be this replica's dead previous incarnation.
        assert!(!twin_renewing(None, &twin(100), false));
        // It renewed since: a live process.
        assert!(twin_renewing(Some(&twin(100)), &twin(102), false));
        // It stays reported while its Lease is unchanged...
        assert!(twin_renewing(Some(&twin(102)), &twin(102), true));
        // ...but an unchanged Lease alone is no twin (a dead incarnation).
        assert!(!twin_renewing(Some(&twin(102)), &twin(102), false));
        // Another process of the same identity took over since: not seen renewing yet.
        let other_process = observed("pod-a", "3-e-f", 104, Holder::SameIdentity);
        assert!(!twin_renewing(Some(&twin(102)), &other_process, true));
        // Another replica, or nobody, holds it: no twin.
        let other = observed("pod-b", "4-g-h", 104, Holder::Other);
        assert!(!twin_renewing(Some(&twin(102)), &other, true));
        let released = Observed {
            holder: None,
            holder_kind: Holder::Nobody,
            ..twin(106)
        };
        assert!(!twin_renewing(Some(&twin(104)), &released, true));
        // Another replica renewing is never a twin.
        assert!(!twin_renewing(
            Some(&observed("pod-b", "4-g-h", 100, Holder::Other)),
            &other,
            false
        ));
    }
}
