//! Command-line flags (clap derive), and nothing else. Each OpenTelemetry setting also reads
//! its standard environment variable, a flag always winning over it: the export stage
//! resolves them (`export/settings.rs`, from [`RunArgs::export_flags`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::export::ExportFlags;
use crate::resource::ResourceSpec;
use crate::watched::{ListStrategy, WatchConfig};
use crate::Error;

/// Watches the status.conditions of sei.io (or any) custom resources and exports them as
/// OpenTelemetry metrics (OTLP over gRPC or HTTP).
#[derive(Debug, Parser)]
#[command(name = "sei-condition-watcher", version, about, long_about = None, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the watched resources once, print every condition that needs attention (a
    /// `*Ready` not True, a `*InProgress` or `Failed` True) as a table, and exit 1 if there is
    /// any (2 on error).
    Check(CheckArgs),
}

/// How to reach the API server, as kubectl finds it.
#[derive(Debug, Clone, Args)]
pub struct KubeArgs {
    /// Path to a kubeconfig file. Default: $KUBECONFIG, ~/.kube/config, or the in-cluster
    /// service account.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use. Default: the current context.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

/// Which objects to watch.
#[derive(Debug, Clone, Args)]
pub struct ScopeArgs {
    /// A custom resource to watch: `plural.group` (seinodes.sei.io), `group/version/plural`
    /// (sei.io/v1alpha1/seinodes), optionally `=family` to name its metrics. Repeat for
    /// several. Default: the four sei.io kinds (SeiNode, SeiNetwork, SeiNodeTask,
    /// SeiNodeTaskWorkflow).
    #[arg(long = "resource", value_name = "SPEC", value_parser = ResourceSpec::parse)]
    pub resources: Vec<ResourceSpec>,
    /// Watch only this namespace; repeat for several. Default: all namespaces.
    /// Cluster-scoped resources are always watched cluster-wide.
    #[arg(short = 'n', long = "namespace", value_name = "NAMESPACE")]
    pub namespaces: Vec<String>,
    /// Watch only objects matching this label selector (as kubectl -l).
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub label_selector: Option<String>,
    /// Conditions exported per object. An object with more (a controller appending one per
    /// reconcile) keeps those that need attention first (a `*Ready` not True, a
    /// `*InProgress` or `Failed` True, any Unknown, any describing an older spec), and
    /// `<family>_status_conditions_truncated` says how many were cut.
    #[arg(long, value_name = "N", default_value_t = crate::conditions::MAX_CONDITIONS,
          value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u16).range(1..=1024), usize::from))]
    pub max_conditions_per_object: usize,
    /// Export only these condition types of a resource: `RESOURCE=Type1,Type2`, RESOURCE
    /// as --resource spells it (seinodes.sei.io=Ready,SigningKeyReady). Repeat for several
    /// resources. Said at start-up; a left-out type the shipped rules page on is a warning.
    /// `check` honours it too.
    #[arg(long, value_name = "RESOURCE=TYPES", value_parser = crate::filters::TypesArg::parse_allow)]
    pub condition_types_allow: Vec<crate::filters::TypesArg>,
    /// Do not export these condition types of a resource: `RESOURCE=Type1,Type2`, as above.
    /// A resource has an allow list or a deny list, not both.
    #[arg(long, value_name = "RESOURCE=TYPES", value_parser = crate::filters::TypesArg::parse_deny)]
    pub condition_types_deny: Vec<crate::filters::TypesArg>,
    /// Do not watch this namespace (all namespaces are watched otherwise); repeat for
    /// several. Cannot be given with -n. Said at start-up; `check` honours it too.
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace_deny: Vec<String>,
}

impl ScopeArgs {
    pub fn watch_config(&self) -> Result<WatchConfig, Error> {
        let resources = if self.resources.is_empty() {
            ResourceSpec::defaults()
        } else {
            self.resources.clone()
        };
        crate::resource::check_specs(&resources).map_err(Error::Config)?;
        let filters = crate::filters::Filters::new(
            &resources,
            &self.condition_types_allow,
            &self.condition_types_deny,
            &self.namespace_deny,
            &self.namespaces,
        )
        .map_err(Error::Config)?;
        Ok(WatchConfig {
            resources,
            namespaces: self.namespaces.clone(),
            label_selector: self.label_selector.clone(),
            list: ListStrategy::default(),
            max_conditions: self.max_conditions_per_object,
            filters: std::sync::Arc::new(filters),
            allowlists: Vec::new(),
        })
    }
}

/// `--initial-list`: the flag's values for [`ListStrategy`] (the watch stage knows no flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitialList {
    /// A streaming list (sendInitialEvents); falls back to paged lists where refused.
    Stream,
    /// Paged list requests, then a watch.
    Paged,
}

impl From<InitialList> for ListStrategy {
    fn from(value: InitialList) -> Self {
        match value {
            InitialList::Stream => ListStrategy::Stream,
            InitialList::Paged => ListStrategy::Paged,
        }
    }
}

/// `--otlp-receiver`: the flag's values for [`crate::export::Receiver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OtlpReceiver {
    /// An OpenTelemetry Collector (otel-config/collector.yaml).
    Collector,
    /// Prometheus' own OTLP receiver, no collector (needs --otlp-protocol http/protobuf).
    Prometheus,
}

impl From<OtlpReceiver> for crate::export::Receiver {
    fn from(value: OtlpReceiver) -> Self {
        match value {
            OtlpReceiver::Collector => Self::Collector,
            OtlpReceiver::Prometheus => Self::Prometheus,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Flags of the watcher itself.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Object labels copied onto each object's info series `<family>_labels` as
    /// `label_<key>` (kube-state-metrics' syntax): `RESOURCE=[key1,key2]`, several as
    /// `seinodes=[team,chain],seinetworks=[team]`, RESOURCE as --resource spells it.
    /// Repeatable. At most 16 keys per resource (labels and annotations); no `*`; values cut
    /// at 128 bytes. Default: none, and no info series.
    #[arg(long, value_name = "RESOURCE=[KEYS]", value_parser = crate::labels::AllowlistArg::parse_labels)]
    pub metric_labels_allowlist: Vec<crate::labels::AllowlistArg>,
    /// Object annotations copied onto the same info series as `annotation_<key>`, as above.
    #[arg(long, value_name = "RESOURCE=[KEYS]", value_parser = crate::labels::AllowlistArg::parse_annotations)]
    pub metric_annotations_allowlist: Vec<crate::labels::AllowlistArg>,
    /// How to get all objects at start and after a relist: `stream` (one streaming watch;
    /// falls back to `paged` by itself where the API server has WatchList off) or `paged`.
    #[arg(long, value_enum, value_name = "HOW", default_value_t = InitialList::Stream)]
    pub initial_list: InitialList,

    /// OTLP endpoint of the collector. gRPC: default $OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
    /// then $OTEL_EXPORTER_OTLP_ENDPOINT, then http://localhost:4317. HTTP: the whole URL
    /// requests are posted to, used as given (like $OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
    /// e.g. http://otel-collector:4318/v1/metrics); default
    /// $OTEL_EXPORTER_OTLP_METRICS_ENDPOINT as given, then $OTEL_EXPORTER_OTLP_ENDPOINT with
    /// /v1/metrics appended, then http://localhost:4318/v1/metrics. Use https:// for TLS.
    /// Given twice, the last one wins (so a kustomize overlay can append it). Headers for
    /// every export (e.g. a bearer token): $OTEL_EXPORTER_OTLP_METRICS_HEADERS or
    /// $OTEL_EXPORTER_OTLP_HEADERS, as `Authorization=Bearer%20<token>`.
    #[arg(long, value_name = "URL", overrides_with = "otlp_endpoint")]
    pub otlp_endpoint: Option<String>,
    /// OTLP transport: `grpc` or `http/protobuf`. Default:
    /// $OTEL_EXPORTER_OTLP_METRICS_PROTOCOL, then $OTEL_EXPORTER_OTLP_PROTOCOL, then grpc
    /// (the watcher's default before OTLP/HTTP existed; the specification suggests
    /// http/protobuf for new SDKs).
    #[arg(long, value_name = "PROTOCOL")]
    pub otlp_protocol: Option<String>,
    /// What receives the requests: `collector` (an OpenTelemetry Collector, which makes the
    /// `cluster` label) or `prometheus` (Prometheus' own OTLP receiver, no collector: the
    /// watcher writes `cluster` on every point and sends only service.name and
    /// service.instance.id as resource attributes, so Prometheus writes no target_info;
    /// needs --otlp-protocol http/protobuf).
    #[arg(long, value_enum, value_name = "KIND", default_value_t = OtlpReceiver::Collector)]
    pub otlp_receiver: OtlpReceiver,
    /// Export interval of the watcher's own metrics, e.g. 15s. Default:
    /// $OTEL_METRIC_EXPORT_INTERVAL (milliseconds), then 15s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub export_interval: Option<Duration>,
    /// How often every object's series are sent again although nothing changed, spread
    /// evenly over the interval; changes are sent as they happen. Must stay under
    /// Prometheus' 5-minute lookback, which forgets a series with no sample in it.
    #[arg(long, value_name = "DURATION", value_parser = parse_refresh, default_value = "60s")]
    pub refresh_interval: Duration,
    /// Timeout of one export. Default: $OTEL_EXPORTER_OTLP_METRICS_TIMEOUT or
    /// $OTEL_EXPORTER_OTLP_TIMEOUT (milliseconds), then 10s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub export_timeout: Option<Duration>,
    /// PEM CA bundle that signs the collector's certificate. Default:
    /// $OTEL_EXPORTER_OTLP_CERTIFICATE, else the system roots.
    #[arg(long, value_name = "PATH", env = "OTEL_EXPORTER_OTLP_CERTIFICATE")]
    pub otlp_ca_file: Option<PathBuf>,
    /// PEM client certificate for mTLS to the collector ($OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE).
    #[arg(
        long,
        value_name = "PATH",
        env = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"
    )]
    pub otlp_client_cert_file: Option<PathBuf>,
    /// PEM private key for mTLS to the collector ($OTEL_EXPORTER_OTLP_CLIENT_KEY).
    #[arg(long, value_name = "PATH", env = "OTEL_EXPORTER_OTLP_CLIENT_KEY")]
    pub otlp_client_key_file: Option<PathBuf>,
    /// `service.name` resource attribute (becomes the `job` label in Prometheus).
    #[arg(
        long,
        value_name = "NAME",
        env = "OTEL_SERVICE_NAME",
        default_value = "sei-condition-watcher"
    )]
    pub service_name: String,
    /// `service.instance.id` resource attribute (the `instance` label), and this replica's
    /// identity in the Lease: give every process its own. Default: $POD_NAME (set it from
    /// the downward API), else the host name.
    #[arg(long, value_name = "ID", env = "POD_NAME")]
    pub instance_id: Option<String>,
    /// `k8s.cluster.name` resource attribute; the collector turns it into the `cluster`
    /// label that keeps clusters writing to one Prometheus apart. Default:
    /// `k8s.cluster.name` in $OTEL_RESOURCE_ATTRIBUTES, else the kube-system namespace's
    /// UID, read at start (needs get on namespaces/kube-system; until it is read nothing is
    /// exported). Empty counts as not set.
    #[arg(long, value_name = "NAME", env = "K8S_CLUSTER_NAME")]
    pub cluster_name: Option<String>,
    /// Compression of OTLP requests: `gzip`, `zstd` or `none`. Default:
    /// $OTEL_EXPORTER_OTLP_METRICS_COMPRESSION, then $OTEL_EXPORTER_OTLP_COMPRESSION, then gzip.
    #[arg(long, value_name = "ALGO")]
    pub otlp_compression: Option<String>,
    /// Largest uncompressed OTLP request of object series, in bytes; larger exports are cut
    /// into several requests (never into overflow series). Keep it below the collector's
    /// receive limit (`max_recv_msg_size_mib`, 4 MiB by default).
    #[arg(long, value_name = "BYTES", default_value_t = crate::export::DEFAULT_MAX_REQUEST_BYTES)]
    pub max_request_bytes: usize,
    /// No longer used: object series are never folded into an overflow series, whatever
    /// their number. Accepted (with a warning) so that old manifests still start.
    #[arg(long, value_name = "N", hide = true)]
    pub max_series: Option<usize>,
    /// Series the watcher exports for one namespace (all resources). Beyond it, objects
    /// keep only their conditions that need attention (never refused) and
    /// `sei_condition_watcher_refused_conditions` counts the rest. Bounds what one tenant
    /// can cost (about 100 bytes of watcher memory per series).
    #[arg(long, value_name = "N", default_value_t = crate::index::SeriesBounds::default().per_namespace)]
    pub max_series_per_namespace: usize,
    /// Series the watcher exports for one resource (all namespaces), as above.
    #[arg(long, value_name = "N", default_value_t = crate::index::SeriesBounds::default().per_resource)]
    pub max_series_per_resource: usize,
    /// On shutdown without a successor, send every object series once more and no
    /// staleness markers (all of them linger in Prometheus for its 5-minute lookback).
    /// Default: the series of conditions that need attention (or are Unknown) are sent once
    /// more and linger, so their alerts are held until SeiConditionWatcherAbsent pages;
    /// every other series is marked stale (a stopped watcher vouches for nothing healthy).
    #[arg(long)]
    pub keep_series_on_shutdown: bool,
    #[command(flatten)]
    pub leader: crate::lease::LeaderArgs,
    /// Address of the admin HTTP server (/livez, /readyz). /readyz: every resource listed
    /// and the exporter built (not: exports delivered). At most 64 connections; a new one
    /// closes the oldest, so slow clients cannot starve the probes.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub admin_addr: SocketAddr,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter, as RUST_LOG (e.g. `info`, `sei_condition_watcher=debug`). Default: $RUST_LOG, then info.
    #[arg(long, value_name = "FILTER")]
    pub log_filter: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub scope: ScopeArgs,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let d =
        humantime::parse_duration(text).map_err(|e| format!("{e} (write e.g. 15s, 500ms, 1m)"))?;
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

/// `--refresh-interval`: positive and under Prometheus' 5-minute lookback.
fn parse_refresh(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d >= Duration::from_secs(300) {
        return Err(format!(
            "{text} is not under Prometheus' 5-minute lookback: series would vanish from \
             queries between refreshes; use at most 4m (60s is the default)"
        ));
    }
    Ok(d)
}

impl RunArgs {
    /// What the watch stage is given: the scope (with its filters), the list strategy and
    /// the label allowlists.
    pub fn watch_config(&self) -> Result<WatchConfig, Error> {
        let scope = self.scope.watch_config()?;
        let allowlists = crate::labels::allowlists(
            &scope.resources,
            &self.metric_labels_allowlist,
            &self.metric_annotations_allowlist,
        )
        .map_err(Error::Config)?;
        Ok(WatchConfig {
            list: self.initial_list.into(),
            allowlists,
            ..scope
        })
    }

    /// The export flags as given; the export stage resolves them against the OpenTelemetry
    /// environment ([`crate::export::ExportFlags::resolve`]).
    pub fn export_flags(&self) -> ExportFlags {
        ExportFlags {
            endpoint: self.otlp_endpoint.clone(),
            protocol: self.otlp_protocol.clone(),
            receiver: self.otlp_receiver.into(),
            interval: self.export_interval,
            refresh: self.refresh_interval,
            timeout: self.export_timeout,
            ca_file: self.otlp_ca_file.clone(),
            client_cert_file: self.otlp_client_cert_file.clone(),
            client_key_file: self.otlp_client_key_file.clone(),
            compression: self.otlp_compression.clone(),
            max_request_bytes: self.max_request_bytes,
            keep_series_on_shutdown: self.keep_series_on_shutdown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("sei-condition-watcher").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bad_flags_are_rejected_with_a_hint() {
        let err = Cli::try_parse_from(["x", "--export-interval", "soon"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("e.g. 15s"), "{err}");
        assert!(Cli::try_parse_from(["x", "--export-interval", "0s"]).is_err());
    }

    #[test]
    fn check_takes_scope_and_kube_flags() {
        let cli = parse(&[
            "check",
            "-n",
            "a",
            "-n",
            "b",
            "-l",
            "app=x",
            "--context",
            "c",
        ]);
        let Some(Command::Check(args)) = cli.command else {
            panic!("not check")
        };
        assert_eq!(args.scope.namespaces, vec!["a", "b"]);
        assert_eq!(args.kube.context.as_deref(), Some("c"));
    }

    #[test]
    fn resources_default_to_the_sei_kinds_and_are_checked() {
        let config = parse(&[]).run.scope.watch_config().unwrap();
        assert_eq!(config.resources, ResourceSpec::defaults());
        let config = parse(&[
            "--resource",
            "widgets.example.test",
            "--resource",
            "seinodes",
        ])
        .run
        .scope
        .watch_config()
        .unwrap();
        assert_eq!(config.resources.len(), 2);
        let err = parse(&["--resource", "seinodes", "--resource", "seinodes.sei.io"])
            .run
            .scope
            .watch_config()
            .unwrap_err();
        assert!(err.to_string().contains("given twice"), "{err}");
        let err = Cli::try_parse_from(["x", "--resource", "pods"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("plural.group"), "{err}");
    }

    /// Issue 21 items 3 and 4: the flags reach the watch config (the run's and check's,
    /// which share the scope flags), and a contradiction is one line naming the flags.
    #[test]
    fn filter_and_allowlist_flags_reach_the_watch_config() {
        let config = parse(&[
            "--condition-types-deny",
            "seinodes=Paused",
            "--namespace-deny",
            "scratch",
            "--metric-labels-allowlist",
            "seinodes=[team],seinetworks=[chain]",
            "--metric-annotations-allowlist",
            "seinodes=[owner]",
        ])
        .run
        .watch_config()
        .unwrap();
        assert!(!config.filters.types_of(0).keeps("Paused"));
        assert!(!config.filters.keeps_namespace("scratch"));
        assert_eq!(config.allowlists[0].labels[0].1, "label_team");
        assert_eq!(config.allowlists[0].annotations[0].1, "annotation_owner");
        assert_eq!(config.allowlists[1].labels[0].1, "label_chain");
        assert!(parse(&[]).run.watch_config().unwrap().allowlists.is_empty());
        let cli = parse(&[
            "check",
            "--condition-types-allow",
            "seinodes=SigningKeyReady",
        ]);
        let Some(Command::Check(args)) = cli.command else {
            panic!("not check")
        };
        let check = args.scope.watch_config().unwrap();
        assert!(
            !check.filters.types_of(0).keeps("Paused"),
            "check honours it"
        );
        let err = parse(&["-n", "sei", "--namespace-deny", "kube-system"])
            .run
            .watch_config()
            .unwrap_err()
            .to_string();
        assert!(err.contains("--namespace-deny and -n/--namespace"), "{err}");
        assert!(!err.contains('\n'));
        let err = Cli::try_parse_from(["x", "--metric-labels-allowlist", "seinodes=[*]"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("* is not supported"), "{err}");
    }

    #[test]
    fn max_series_is_still_accepted() {
        assert!(
            parse(&["--max-series", "5"]).run.max_series.is_some(),
            "still accepted"
        );
    }
}
