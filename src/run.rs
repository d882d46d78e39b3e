//! `run`: wires the stages together (watch -> index -> export, the admin server, the
//! leader election), supervises them in one place ([`supervise`]) and stops them in order
//! on SIGTERM/SIGINT ([`shutdown_signal`]), or exits non-zero if one of them ends.
//!
//! ```text
//!   flags ─▶ settings (watch, export) ─▶ client, transport, admin listener
//!         ─▶ cluster identity (probes answered meanwhile) ─▶ export stage, elector
//!         ─▶ supervise(watch, admin, election, exporter, shutdown)
//!         ─▶ stop the exporter ─▶ hand the Lease over ─▶ final object export ─▶ SDK shutdown
//! ```

use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info, warn};

use crate::config::RunArgs;
use crate::error::{Error, Stage};
use crate::export::{ExportStage, FinalExport};
use crate::state::Shared;
use crate::{admin, client, cluster, export, index, lease, telemetry, watch};

/// How long the final object export may take after SIGTERM.
pub const FINAL_EXPORT_DEADLINE: Duration = Duration::from_secs(15);
/// The whole shutdown after SIGTERM (lease hand-over, final object export, the
/// self-metrics' final export): inside Kubernetes' default 30-second grace period.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(25);

/// Runs the watcher until `shutdown` completes, then exports once more and shuts the
/// meter provider down. Returns an error for what prevents starting, and
/// [`Error::StageEnded`] if a stage ends before `shutdown` (after the same final export).
pub async fn run(
    args: RunArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), Error> {
    let RunArgs {
        kube,
        service_name,
        instance_id,
        cluster_name,
        admin_addr,
        max_series,
        leader,
        ..
    } = &args;
    let export_config = args.export_flags().resolve_from_environment()?;
    let watch_config = args.watch_config()?;
    if max_series.is_some() {
        warn!("--max-series no longer applies and is ignored: object series are never folded into an overflow series; remove the flag");
    }
    export_config.warn_unusual();
    let client = client::kube_client(kube).await?;
    let transport = export::Transport::connect(&export_config)?;
    let listener = admin::bind(*admin_addr).await?;

    let shared = Arc::new(Shared::new(&watch_config.resources));
    watch_config.start_up(&shared.stats);
    shared.index_mut().set_bounds(index::SeriesBounds {
        per_namespace: args.max_series_per_namespace,
        per_resource: args.max_series_per_resource,
    });
    // The probes are answered while the cluster's identity is read (live, not ready).
    let mut admin = tokio::spawn(admin::serve(listener, shared.clone()));
    let mut shutdown = std::pin::pin!(shutdown);
    let given = cluster::given_name(cluster_name.as_deref(), cluster::resource_attribute_name());
    let cluster = tokio::select! {
        cluster = cluster::resolve(&client, given) => Some(cluster),
        _ = &mut shutdown => None,
    };
    let cluster = match cluster {
        Some(Ok(cluster)) => cluster,
        Some(Err(e)) => {
            admin.abort();
            return Err(e);
        }
        None => {
            admin.abort();
            info!("shutdown requested before the cluster's identity was read: nothing was exported; exiting");
            return Ok(());
        }
    };
    let identity = telemetry::instance(instance_id.as_deref());
    let resource = telemetry::resource(service_name, Some(&identity), Some(&cluster));
    let ExportStage {
        mut objects,
        self_metrics,
    } = ExportStage::new(&export_config, resource, transport, shared.clone())?;
    let mut elector = if leader.leader_elect {
        let namespace = lease::namespace(leader)?;
        // Standby until the Lease is won.
        shared.set_leader(false);
        // Every replica exports object series under the Lease's name: a failover continues
        // the same series.
        objects.set_instance(&leader.leader_election_id);
        info!(
            lease = %leader.leader_election_id,
            %namespace,
            identity = %identity,
            "leader election on: only the replica holding the lease exports object series"
        );
        Some(lease::Elector::new(
            client.clone(),
            &namespace,
            &leader.leader_election_id,
            &identity,
            shared.clone(),
        ))
    } else {
        None
    };
    self_metrics.flush_soon();
    let resources: Vec<String> = watch_config.resources.iter().map(|r| r.label()).collect();
    info!(
        endpoint = %export::channel::redact(&export_config.endpoint),
        protocol = export_config.protocol.as_str(),
        receiver = ?export_config.receiver,
        interval = ?export_config.interval,
        refresh = ?export_config.refresh,
        ?resources,
        scopes = ?watch_config.scopes(),
        label_selector = ?watch_config.label_selector,
        compression = ?export_config.compression,
        headers = ?export_config.headers,
        max_request_bytes = export_config.max_request_bytes,
        cluster = %cluster.name,
        "sei-condition-watcher started"
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    // The object exporter runs as its own task so that an export in flight is never
    // dropped halfway; it is told to stop, then does the final export below.
    let refresh = export_config.refresh;
    let mut exporting = tokio::spawn(async move {
        objects.run(refresh, stopped(stop_rx)).await;
        objects
    });
    let election = async {
        match elector.as_mut() {
            Some(elector) => elector.run().await,
            None => std::future::pending().await,
        }
    };
    let ended = supervise(
        watch::run(client, watch_config, shared.clone()),
        &mut admin,
        election,
        &mut exporting,
        shutdown,
    )
    .await;
    admin.abort();
    let result = match ended {
        Some(stage) => {
            error!("the {stage} ended unexpectedly: stopping, then exiting with an error");
            Err(Error::StageEnded(stage))
        }
        None => {
            info!("shutdown requested: exporting once more");
            Ok(())
        }
    };
    let deadline = tokio::time::Instant::now() + SHUTDOWN_DEADLINE;
    let _ = stop_tx.send(true);
    // The exporter has stopped before the Lease is released: nothing is sent after a
    // successor may have started. An export in flight finishes first (bounded by the
    // export timeout).
    let exporter = if ended == Some(Stage::Exporter) {
        None
    } else {
        match tokio::time::timeout_at(deadline, exporting).await {
            Ok(joined) => Some(joined),
            Err(_) => {
                error!("the export in flight did not end within the shutdown deadline; exiting without the final export");
                return result;
            }
        }
    };
    let last = match elector.as_mut() {
        Some(elector) if shared.is_leader() => {
            if elector.hand_over().await {
                FinalExport::Nothing
            } else if export_config.stale_on_shutdown {
                FinalExport::Retire
            } else {
                FinalExport::Full
            }
        }
        Some(_) => FinalExport::Nothing,
        None if export_config.stale_on_shutdown => FinalExport::Retire,
        None => FinalExport::Full,
    };
    match exporter {
        Some(Ok(mut objects)) => {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            objects.finish(last, FINAL_EXPORT_DEADLINE.min(left)).await
        }
        Some(Err(e)) => error!("the object exporter failed: {e}"),
        None => {}
    }
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let sdk = tokio::task::spawn_blocking(move || self_metrics.shutdown_blocking());
    match tokio::time::timeout(left, sdk).await {
        Ok(Ok(Ok(()))) => info!("final export done; exiting"),
        Ok(Ok(Err(e))) => error!("final export of the self-metrics failed: {e}; exiting anyway"),
        Ok(Err(e)) => error!("final export task failed: {e}; exiting anyway"),
        Err(_) => error!(
            ?SHUTDOWN_DEADLINE,
            "the self-metrics' final export did not finish within the shutdown deadline; exiting without it"
        ),
    }
    result
}

/// The one supervision point: runs every stage until shutdown is asked for (None) or one of
/// them ends, which none does while the watcher works (Some(that stage)). The exporter is a
/// task (an export in flight must not be dropped halfway), polled here by reference so that
/// the shutdown can still wait for it.
pub async fn supervise<E: Unpin + std::future::Future>(
    watch: impl std::future::Future,
    admin: impl std::future::Future,
    election: impl std::future::Future,
    exporter: &mut E,
    shutdown: impl std::future::Future,
) -> Option<Stage> {
    tokio::select! {
        _ = watch => Some(Stage::Watch),
        _ = admin => Some(Stage::Admin),
        _ = election => Some(Stage::LeaderElection),
        _ = exporter => Some(Stage::Exporter),
        _ = shutdown => None,
    }
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

#[cfg(test)]
mod tests {
    use std::future::{pending, ready};

    use super::*;

    /// A stage that never ends, as each does while the watcher works.
    fn forever() -> std::future::Pending<()> {
        pending()
    }

    #[tokio::test]
    async fn each_stage_that_ends_is_named_and_shutdown_is_not_an_error() {
        let mut exporter = tokio::spawn(forever());
        assert_eq!(
            supervise(ready(()), forever(), forever(), &mut exporter, forever()).await,
            Some(Stage::Watch)
        );
        assert_eq!(
            supervise(forever(), ready(()), forever(), &mut exporter, forever()).await,
            Some(Stage::Admin)
        );
        assert_eq!(
            supervise(forever(), forever(), ready(()), &mut exporter, forever()).await,
            Some(Stage::LeaderElection)
        );
        assert_eq!(
            supervise(forever(), forever(), forever(), &mut exporter, ready(())).await,
            None
        );
        exporter.abort();
        // An exporter task that ends (returns or panics) before shutdown is a stage ending.
        let mut panicked = tokio::spawn(async { panic!("exporter bug") });
        assert_eq!(
            supervise(forever(), forever(), forever(), &mut panicked, forever()).await,
            Some(Stage::Exporter)
        );
        let mut returned = tokio::spawn(ready(()));
        assert_eq!(
            supervise(forever(), forever(), forever(), &mut returned, forever()).await,
            Some(Stage::Exporter)
        );
    }
}
