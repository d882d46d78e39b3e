//! seinode-tls-watcher: makes sei-k8s-controller's `SidecarTLSSecretReady` condition visible
//! as OpenTelemetry metrics, so a broken or drifting sidecar TLS Secret pages someone.
//!
//! # Layout
//!
//! ```text
//!   API server ──watch──▶ [watch] ──verdicts──▶ [index] ◀──read at collection── [export] ──OTLP/gRPC──▶ collector
//!                         watch.rs              index.rs                         export.rs
//!                           │ view.rs: JSON -> SeiNodeView (only what is read)     │
//!                           │ seinode.rs: object -> Verdict (pure)                 │ staleness markers for
//!                           └───────── Shared::changed (state.rs) ────────────────▶│ vanished series
//! ```
//!
//! - [`view`]: how SeiNodes are parsed off the wire: identity and the two fields read.
//! - [`seinode`]: the pure object → verdict function.
//! - [`index`]: the readiness index (apply / delete / resync), pure and unit-tested.
//! - [`watch`]: kube-runtime watchers feeding the index; bad objects are skipped, not fatal.
//! - [`export`]: the OpenTelemetry meter provider, OTLP exporter and staleness markers.
//! - [`state`] and [`stats`]: what the stages share, and the self-metric counters.
//! - [`memory`]: returns freed heap to the OS after lists and exports (glibc).
//! - [`admin`]: `/livez` and `/readyz`. [`check`]: the one-shot `check` command.
//! - [`config`], [`client`], [`telemetry`]: flags, the Kubernetes client, logging/resource.
//!
//! [`run`] wires the stages together and stops them in order on SIGTERM/SIGINT.

pub mod admin;
pub mod check;
pub mod client;
pub mod config;
mod error;
pub mod export;
pub mod index;
pub mod memory;
pub mod seinode;
pub mod state;
pub mod stats;
pub mod telemetry;
pub mod view;
pub mod watch;

use std::sync::Arc;

use tracing::{error, info};

pub use error::Error;

use crate::config::{CheckArgs, RunArgs};
use crate::export::Exporter;
use crate::state::Shared;
use crate::watch::WatchConfig;

/// Runs the watcher until `shutdown` completes, then exports once more and shuts the
/// meter provider down. Returns an error only for what prevents starting.
pub async fn run(
    args: RunArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), Error> {
    let RunArgs {
        kube,
        scope,
        service_name,
        instance_id,
        cluster_name,
        admin_addr,
        ..
    } = &args;
    let export_config = args.export_config(&|var| std::env::var(var).ok())?;
    let watch_config = WatchConfig {
        list: args.initial_list,
        ..scope.watch_config()
    };
    let client = client::kube_client(kube).await?;
    let channel = export::build_channel(&export_config)?;
    let listener = admin::bind(*admin_addr).await?;

    let shared = Arc::new(Shared::new(watch_config.scopes().len()));
    let resource = telemetry::resource(
        service_name,
        instance_id.as_deref(),
        cluster_name.as_deref(),
    );
    let exporter = Arc::new(Exporter::new(
        &export_config,
        resource,
        channel,
        shared.clone(),
    )?);
    info!(
        endpoint = %export_config.endpoint,
        interval = ?export_config.interval,
        scopes = ?watch_config.scopes(),
        label_selector = ?watch_config.label_selector,
        "seinode-tls-watcher started"
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    // The watch and the admin server are stopped by dropping them when the select ends;
    // the event-driven exporter is told to stop so that no flush races the final one.
    let exporting = tokio::spawn(exporter.clone().run_event_driven(stopped(stop_rx)));
    tokio::select! {
        _ = watch::run(client, watch_config, shared.clone()) => error!("the SeiNode watch ended unexpectedly"),
        _ = admin::serve(listener, shared.clone()) => error!("the admin server ended unexpectedly"),
        _ = shutdown => info!("shutdown requested: exporting once more"),
    }
    let _ = stop_tx.send(true);
    let _ = exporting.await;
    match tokio::task::spawn_blocking(move || exporter.shutdown_blocking()).await {
        Ok(Ok(())) => info!("final export done; exiting"),
        Ok(Err(e)) => error!("final export failed: {e}; exiting anyway"),
        Err(e) => error!("final export task failed: {e}; exiting anyway"),
    }
    Ok(())
}

/// `check`: prints the table and returns whether every in-scope SeiNode is ready.
pub async fn check(args: CheckArgs) -> Result<bool, Error> {
    let client = client::kube_client(&args.kube).await?;
    let rows = check::list_rows(client, &args.scope.watch_config()).await?;
    print!("{}", check::render_table(&rows, jiff::Timestamp::now()));
    if rows.is_empty() {
        eprintln!("no SeiNode with sidecar TLS found");
    }
    Ok(rows.iter().all(check::Row::is_ready))
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
