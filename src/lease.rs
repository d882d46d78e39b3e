//! Leader election on a `coordination.k8s.io/v1` Lease: of several replicas, one (the
//! leader) exports the object series; the others watch too, so that one of them can take
//! over within a lease duration.

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
