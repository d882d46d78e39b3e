//! Leader election on a `coordination.k8s.io/v1` Lease: of several replicas, one (the
//! leader) exports the object series; the others watch too, so that one of them can take
//! over within a lease duration.

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

/// The Lease as a standby last saw it, and when it first saw it that way.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    holder: Option<String>,
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
    shared: Arc<Shared>,
    observed: Option<Observed>,
    /// When this replica last renewed successfully, while it leads.
    renewed: Option<Instant>,
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
            shared,
            observed: None,
            renewed: None,
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
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
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
        let mine = holder.as_deref() == Some(self.identity.as_str());
        if !mine {
            if self.shared.is_leader() {
                // Someone else holds it now: stop at once.
                self.lose();
            }
            if holder.is_some() {
                let seen = Observed {
                    holder: holder.clone(),
                    renew_time: spec.renew_time.clone(),
                    at: now,
                };
                let changed = self
                    .observed
                    .as_ref()
                    .is_none_or(|o| o.holder != seen.holder || o.renew_time != seen.renew_time);
                if changed {
                    self.observed = Some(seen);
                }
                let duration = spec
                    .lease_duration_seconds
                    .map_or(LEASE_DURATION, |s| Duration::from_secs(s.max(1) as u64));
                let since = self.observed.as_ref().map_or(now, |o| o.at);
                if now.saturating_duration_since(since) < duration {
                    return Ok(Attempt::NotHeld);
                }
                info!(lease = %self.name, previous = ?holder, "the lease expired: taking over");
            }
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!mine);
        let mut new_spec = self.spec_acquired(transitions);
        if mine {
            new_spec.acquire_time = spec.acquire_time.clone();
        }
        lease.spec = Some(new_spec);
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
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
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
                    let holder = lease.spec.and_then(|s| s.holder_identity);
                    if let Some(holder) = holder.filter(|h| !h.is_empty() && *h != self.identity) {
                        return holder;
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
