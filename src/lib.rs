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
//!                             │ watched.rs: resources, scopes, selector, object identity           │ objects/: Full / Changes / Retire
//!                             │   (shared with check.rs)                                           │ targets.rs: which keys (blind and
//!                             │ view.rs: JSON -> ObjectView (only what is read)                    │   undecodable ones withdrawn)
//!                             │ conditions.rs / seinode.rs: object -> state (pure)                 │ deliver.rs: values = series(now),
//!                             │ handler.rs: events -> index; errors.rs: kinds, lines               │   markers = series(delivered) - values
//!                             │ health.rs: failing -> blind after 90 s                             │   (+ standby.rs's states on takeover)
//!                             └─▶ Shared::changed (state.rs, a Notify) ──wakes──────────────────────▶ encode.rs -> chunk.rs -> sink.rs
//!                                                                                                  │ selfmetrics/ (+ instruments.rs):  
//!  lease.rs: Lease -> Shared::leader (only the leader sends object series)                         │   SDK, the watcher's own metrics
//! ```
//!
//! - [`resource`]: what `--resource` names, resolution, metric family names; [`watched`]:
//!   what is watched (resources, namespaces, selector) and how an object is named.
//! - [`view`]: how objects are parsed off the wire: identity and the fields read.
//! - [`conditions`]: the condition vocabulary and the pure object → conditions function;
//!   [`seinode`]: the seed's verdict, a special case built on it.
//! - [`filters`]: condition types and namespaces left out; [`labels`]: the object labels
//!   copied onto each object's info series.
//! - [`index`]: the condition index (apply / delete / resync / read), pure and unit-tested.
//! - [`watch`]: kube-runtime watchers feeding the index; bad objects are skipped, not fatal.
//! - [`health`]: which watches fail and which resources are blind; [`lease`]: leader election.
//! - [`export`]: two wings, `objects/` (object series encoded from the index: values and
//!   markers in one ordered stream, cut under a request budget, gzip) and `selfmetrics/`
//!   (the SDK for the watcher's own metrics), and what both share: `settings.rs` (flags
//!   and the OpenTelemetry environment), the transport, the failure log.
//! - [`state`] and [`stats`]: what the stages share, and the self-metric counters and their
//!   label enums.
//! - [`memory`]: returns freed heap to the OS after lists and exports (glibc).
//! - [`admin`]: `/livez` and `/readyz`. [`check`]: the one-shot `check` command.
//! - [`config`], [`client`], [`telemetry`]: flags, the Kubernetes client, logging/resource;
//!   [`cluster`]: the `cluster` label (the given name, else kube-system's UID, read at start).
//! - [`run`](mod@run): wires the stages together, supervises them in one place and stops
//!   them in order on SIGTERM/SIGINT, or exits non-zero if one of them ends.
//!
//! This file is the map only: modules and the few names the binary uses. The map links
//! crate-private modules: read it with `cargo doc --document-private-items`.
#![allow(rustdoc::private_intra_doc_links)]

pub(crate) mod admin;
pub mod check;
pub(crate) mod client;
pub(crate) mod cluster;
pub(crate) mod conditions;
pub mod config;
mod error;
pub mod export;
pub(crate) mod filters;
pub(crate) mod health;
pub(crate) mod index;
pub(crate) mod labels;
pub(crate) mod lease;
pub(crate) mod memory;
pub(crate) mod resource;
pub(crate) mod run;
pub(crate) mod seinode;
pub(crate) mod state;
pub(crate) mod stats;
pub mod telemetry;
pub(crate) mod view;
pub(crate) mod watch;
pub(crate) mod watched;

pub use error::{Error, Stage};
pub use run::{run, shutdown_signal};
