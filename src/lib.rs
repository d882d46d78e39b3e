//! sei-condition-watcher: exports every `status.conditions` entry of sei-k8s-controller's
//! custom resources (SeiNode, SeiNetwork, SeiNodeTask, SeiNodeTaskWorkflow; or any custom
//! resource given with `--resource`) as OpenTelemetry metrics, so that a failing condition
//! pages someone instead of waiting for `kubectl describe`. The seed's sidecar-TLS gauge
//! (`seinode_sidecar_tls_secret_ready`) is kept as one case.
//!
//! # Layout
//!
//! Data flows one way: the watch writes the index, the exporter reads it. Nothing flows
//! back but the exporter taking the keys changed (and states replaced) since it last looked.
//!
//! ```text
//!  API server ─list+watch─▶ [watch/] ─apply/delete/resync─▶ [index.rs] ─snapshot, changed keys,─▶ [export/] ─OTLP/gRPC─▶ collector
//!                             │                               states    replaced states            │
//!                             │ watched.rs: resources, scopes, selector, object identity           │ objects.rs: Full / Changes / Retire
//!                             │   (shared with check.rs)                                           │ targets.rs: which keys (blind and
//!                             │ view.rs: JSON -> ObjectView (only what is read)                    │   undecodable ones withdrawn)
//!                             │ conditions.rs / seinode.rs: object -> state (pure)                 │ deliver.rs: values = series(now),
//!                             │ handler.rs: events -> index; errors.rs: kinds, lines               │   markers = series(delivered) - values
//!                             │ health.rs: failing -> blind after 90 s                             │   (+ standby.rs's states on takeover)
//!                             └─▶ Shared::changed (state.rs, a Notify) ──wakes──────────────────────▶ encode.rs -> chunk.rs -> sink.rs
//!                                                                                                  │ selfmetrics.rs + instruments.rs:
//!  lease.rs: Lease -> Shared::leader (only the leader sends object series)                         │   SDK, the watcher's own metrics
//! ```
//!
//! - [`resource`]: what `--resource` names, resolution, metric family names; [`watched`]:
//!   what is watched (resources, namespaces, selector) and how an object is named.
//! - [`view`]: how objects are parsed off the wire: identity and the fields read.
//! - [`conditions`]: the pure object → conditions function; [`seinode`]: the seed's verdict.
//! - [`filters`]: condition types and namespaces left out; [`labels`]: the object labels
//!   copied onto each object's info series.
//! - [`index`]: the condition index (apply / delete / resync / read), pure and unit-tested.
//! - [`watch`]: kube-runtime watchers feeding the index; bad objects are skipped, not fatal.
//! - [`health`]: which watches fail and which resources are blind; [`lease`]: leader election.
//! - [`export`]: object series encoded from the index (values and markers in one ordered
//!   stream, cut under a request budget, gzip) and the SDK for the watcher's own metrics.
//! - [`state`] and [`stats`]: what the stages share, and the self-metric counters and their
//!   label enums.
//! - [`memory`]: returns freed heap to the OS after lists and exports (glibc).
//! - [`admin`]: `/livez` and `/readyz`. [`check()`]: the one-shot `check` command.
//! - [`config`], [`client`], [`telemetry`]: flags, the Kubernetes client, logging/resource;
//!   [`cluster`]: the `cluster` label (the given name, else kube-system's UID, read at start).
//!
//! [`run`] wires the stages together, supervises them in one place ([`supervise`]) and
//! stops them in order on SIGTERM/SIGINT, or exits non-zero if one of them ends.

pub mod admin;
pub mod check;
pub mod client;
pub mod cluster;
pub mod conditions;
pub mod config;
mod error;
pub mod export;
pub mod filters;
pub mod health;
pub mod index;
pub mod labels;
pub mod lease;
pub mod memory;
pub mod resource;
pub mod seinode;
pub mod state;
pub mod stats;
pub mod telemetry;
pub mod view;
pub mod watch;
pub mod watched;

use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info, warn};

pub use error::{Error, Stage};

use crate::config::{CheckArgs, RunArgs};
use crate::export::{ExportStage, FinalExport};
use crate::state::Shared;

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
    let export_config = args.export_config(&|var| std::env::var(var).ok())?;
    let watch_config = args.watch_config()?;
    if max_series.is_some() {
        warn!("--max-series no longer applies and is ignored: object series are never folded into an overflow series; remove the flag");
    }
    if export_config.max_request_bytes > export::COLLECTOR_DEFAULT_RECV_BYTES {
        warn!(
            max_request_bytes = export_config.max_request_bytes,
            "--max-request-bytes is above the collector's default receive limit (4 MiB): raise the \
             OTLP receiver's max_recv_msg_size_mib to match, or the collector refuses large exports"
        );
    }
    if export_config.protocol == export::Protocol::HttpProtobuf {
        let path = export_config
            .endpoint
            .parse::<http::Uri>()
            .map(|u| u.path().to_owned())
            .unwrap_or_default();
        if path.is_empty() || path == "/" {
            warn!(
                endpoint = %export::channel::redact(&export_config.endpoint),
                "the OTLP/HTTP endpoint has no path, and --otlp-endpoint and \
                 $OTEL_EXPORTER_OTLP_METRICS_ENDPOINT are used as given: a collector takes \
                 .../v1/metrics, Prometheus .../api/v1/otlp/v1/metrics (or set \
                 $OTEL_EXPORTER_OTLP_ENDPOINT, which gets /v1/metrics appended)"
            );
        }
    }
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

/// `check`: prints the table and returns whether no condition needs attention.
pub async fn check(args: CheckArgs) -> Result<bool, Error> {
    let client = client::kube_client(&args.kube).await?;
    let config = args.scope.watch_config()?;
    for (_, line) in config.filters.start_up_lines(&config.resources) {
        eprintln!("filter: {line}");
    }
    let listed = check::list_rows(client, &config).await?;
    for missing in &listed.not_served {
        eprintln!("{missing}: not served by this API server (CRD not installed); skipped");
    }
    print!(
        "{}",
        check::render_table(&listed.rows, jiff::Timestamp::now())
    );
    if listed.rows.is_empty() {
        eprintln!("every condition is fine across {} objects", listed.objects);
    }
    Ok(listed.rows.is_empty())
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
