//! The export stage's settings: every OpenTelemetry setting resolved in one place, beside
//! the code that builds the gRPC channel (`channel.rs`) and the HTTP client (`http.rs`).
//!
//! ```text
//!   flags (config.rs, as given) ─▶ ExportFlags ─resolve(env)─▶ ExportConfig ─▶ Transport::connect
//!                                               flag, then $OTEL_EXPORTER_OTLP_METRICS_*,
//!                                               then $OTEL_EXPORTER_OTLP_*, then the default
//! ```
//!
//! The environment is read here and nowhere else (through `env`, so the tests give their
//! own); the flags with a clap `env = ...` (TLS files, service name) are read by clap.

use std::time::Duration;

use tracing::warn;

use super::channel::redact;
use super::headers::Headers;
use crate::Error;

/// The default OTLP/gRPC endpoint, as the OpenTelemetry specification sets it.
pub const DEFAULT_OTLP_ENDPOINT: &str = "http://localhost:4317";
/// The default OTLP/HTTP metrics URL, as the OpenTelemetry specification sets it.
pub const DEFAULT_OTLP_HTTP_ENDPOINT: &str = "http://localhost:4318/v1/metrics";
/// The path the specification appends to `OTEL_EXPORTER_OTLP_ENDPOINT` for metrics over
/// OTLP/HTTP.
pub const OTLP_HTTP_METRICS_PATH: &str = "v1/metrics";
/// The default export interval: one Prometheus scrape interval's worth, and what the
/// alert rules' `for` durations assume.
pub const DEFAULT_EXPORT_INTERVAL: Duration = Duration::from_secs(15);
/// The default OTLP request timeout (the OpenTelemetry specification's default).
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The default largest uncompressed OTLP request. The collector's OTLP gRPC receiver
/// refuses messages over `max_recv_msg_size_mib` (4 MiB by default) counted after
/// decompression; half of that leaves room for a collector configured tighter and keeps
/// one refused request small.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 2 * 1024 * 1024;
/// Bounds of `--max-request-bytes`: below 64 KiB a single large object could not fit; above
/// 64 MiB one request would hold the exporter's memory for nothing.
pub const MAX_REQUEST_BYTES_RANGE: std::ops::RangeInclusive<usize> = 64 * 1024..=64 * 1024 * 1024;
/// The collector's default receive limit (OTLP gRPC receiver, `max_recv_msg_size_mib: 4`).
pub const COLLECTOR_DEFAULT_RECV_BYTES: usize = 4 * 1024 * 1024;

/// How OTLP requests are compressed (`--otlp-compression`, `OTEL_EXPORTER_OTLP_COMPRESSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The name as the flag and the OTel variables spell it.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "none" => Some(Self::None),
            "gzip" => Some(Self::Gzip),
            "zstd" => Some(Self::Zstd),
            _ => None,
        }
    }
}

/// The OTLP transport (`--otlp-protocol`, `OTEL_EXPORTER_OTLP_[METRICS_]PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC (port 4317): the collector's default receiver.
    Grpc,
    /// OTLP/HTTP with protobuf bodies (port 4318, path `/v1/metrics`): the collector's
    /// `http` protocol, Prometheus 3's own receiver, most hosted endpoints.
    HttpProtobuf,
}

impl Protocol {
    /// The name as the flag and the OTel variables spell it.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "grpc" => Some(Self::Grpc),
            "http/protobuf" => Some(Self::HttpProtobuf),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http/protobuf",
        }
    }
}

/// What receives the requests (`--otlp-receiver`): it decides where the `cluster` label is
/// made and which resource attributes are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Receiver {
    /// An OpenTelemetry Collector (otel-config/collector.yaml): it makes `cluster` from the
    /// resource's `k8s.cluster.name` and writes no `target_info`.
    #[default]
    Collector,
    /// A Prometheus-compatible OTLP receiver with no collector in between (Prometheus 3's
    /// `/api/v1/otlp/v1/metrics`): the watcher writes `cluster` on every point itself and
    /// sends a resource of `service.name` and `service.instance.id` only (`job`,
    /// `instance`), so Prometheus writes the labels the rules expect and no `target_info`
    /// (docs/deploy.md, "Straight into Prometheus").
    Prometheus,
}

/// Where and how to export. `Debug` shows neither header values nor credentials in the
/// endpoint.
#[derive(Clone)]
pub struct ExportConfig {
    /// OTLP/gRPC endpoint, e.g. `http://otel-collector:4317` or `https://...`; for
    /// OTLP/HTTP the whole URL requests are posted to (`.../v1/metrics`).
    pub endpoint: String,
    /// gRPC or HTTP.
    pub protocol: Protocol,
    /// A collector, or Prometheus' own OTLP receiver.
    pub receiver: Receiver,
    /// Headers sent with every export request (`OTEL_EXPORTER_OTLP_HEADERS`).
    pub headers: Headers,
    /// Export interval of the watcher's own metrics (the SDK's periodic reader).
    pub interval: Duration,
    /// Every object's series are sent again once per this interval, spread evenly over it.
    pub refresh: Duration,
    /// Timeout of one export request.
    pub timeout: Duration,
    /// PEM CA bundle to verify the collector (implies TLS); otherwise the system roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// PEM client certificate and key for mTLS.
    pub client_cert_file: Option<std::path::PathBuf>,
    pub client_key_file: Option<std::path::PathBuf>,
    /// Compression of every request (`--otlp-compression`).
    pub compression: Compression,
    /// Largest uncompressed object-series request.
    pub max_request_bytes: usize,
    /// On shutdown without a successor, mark the healthy object series stale and leave the
    /// troubled ones (`FinalExport::Retire`); off: every value once more, no markers.
    pub stale_on_shutdown: bool,
}

impl std::fmt::Debug for ExportConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportConfig")
            .field("endpoint", &redact(&self.endpoint))
            .field("protocol", &self.protocol)
            .field("receiver", &self.receiver)
            .field("headers", &self.headers)
            .field("interval", &self.interval)
            .field("refresh", &self.refresh)
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .field("client_cert_file", &self.client_cert_file)
            .field("client_key_file", &self.client_key_file)
            .field("compression", &self.compression)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("stale_on_shutdown", &self.stale_on_shutdown)
            .finish()
    }
}

/// The export flags as given on the command line (config.rs maps them here): `None` where
/// a flag was not given, so that the environment and the defaults can be consulted.
#[derive(Debug, Clone)]
pub struct ExportFlags {
    /// `--otlp-endpoint`.
    pub endpoint: Option<String>,
    /// `--otlp-protocol`.
    pub protocol: Option<String>,
    /// `--otlp-receiver`.
    pub receiver: Receiver,
    /// `--export-interval`.
    pub interval: Option<Duration>,
    /// `--refresh-interval` (no variable: clap gives its default).
    pub refresh: Duration,
    /// `--export-timeout`.
    pub timeout: Option<Duration>,
    /// `--otlp-ca-file` (clap reads `OTEL_EXPORTER_OTLP_CERTIFICATE`).
    pub ca_file: Option<std::path::PathBuf>,
    /// `--otlp-client-cert-file` (clap reads `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`).
    pub client_cert_file: Option<std::path::PathBuf>,
    /// `--otlp-client-key-file` (clap reads `OTEL_EXPORTER_OTLP_CLIENT_KEY`).
    pub client_key_file: Option<std::path::PathBuf>,
    /// `--otlp-compression`.
    pub compression: Option<String>,
    /// `--max-request-bytes`.
    pub max_request_bytes: usize,
    /// `--keep-series-on-shutdown`.
    pub keep_series_on_shutdown: bool,
}

/// Reads an OpenTelemetry duration variable (milliseconds) from the first of `vars` set.
fn env_millis(
    env: &dyn Fn(&str) -> Option<String>,
    vars: &[&str],
) -> Result<Option<Duration>, Error> {
    for var in vars {
        if let Some(text) = env(var).filter(|t| !t.trim().is_empty()) {
            return match text.trim().parse::<u64>() {
                Ok(0) | Err(_) => Err(Error::Config(format!(
                    "{var}={text:?} is not a positive number of milliseconds (e.g. 15000)"
                ))),
                Ok(ms) => Ok(Some(Duration::from_millis(ms))),
            };
        }
    }
    Ok(None)
}

/// The first of `values` that is set and not blank (the specification treats an empty
/// variable as unset).
fn first_set(values: impl IntoIterator<Item = Option<String>>) -> Option<String> {
    values
        .into_iter()
        .flatten()
        .map(|v| v.trim().to_owned())
        .find(|v| !v.is_empty())
}

/// `OTEL_EXPORTER_OTLP_ENDPOINT` for OTLP/HTTP: the base URL with `v1/metrics` appended to
/// its path, with one `/` between them (the specification's rule for the generic variable).
pub fn http_metrics_url(base: &str) -> String {
    let base = base.trim();
    if base.ends_with('/') {
        format!("{base}{OTLP_HTTP_METRICS_PATH}")
    } else {
        format!("{base}/{OTLP_HTTP_METRICS_PATH}")
    }
}

impl ExportFlags {
    /// The OTLP transport: flag, then the metrics variable, then the generic one, then gRPC.
    fn protocol(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Protocol, Error> {
        let given = first_set([
            self.protocol.clone(),
            env("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"),
            env("OTEL_EXPORTER_OTLP_PROTOCOL"),
        ]);
        match given {
            None => Ok(Protocol::Grpc),
            Some(text) => Protocol::parse(&text).ok_or_else(|| {
                Error::Config(format!(
                    "OTLP protocol {text:?} is not supported; use grpc or http/protobuf \
                     (--otlp-protocol, $OTEL_EXPORTER_OTLP_PROTOCOL)"
                ))
            }),
        }
    }

    /// The endpoint: for gRPC the first one given, else the default; for OTLP/HTTP the
    /// flag and the metrics variable as given, the generic variable with `/v1/metrics`
    /// appended, else the default URL.
    fn endpoint(&self, protocol: Protocol, env: &dyn Fn(&str) -> Option<String>) -> String {
        let specific = first_set([
            self.endpoint.clone(),
            env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"),
        ]);
        let generic = first_set([env("OTEL_EXPORTER_OTLP_ENDPOINT")]);
        match protocol {
            Protocol::Grpc => specific
                .or(generic)
                .unwrap_or_else(|| DEFAULT_OTLP_ENDPOINT.to_owned()),
            Protocol::HttpProtobuf => specific
                .or_else(|| generic.as_deref().map(http_metrics_url))
                .unwrap_or_else(|| DEFAULT_OTLP_HTTP_ENDPOINT.to_owned()),
        }
    }

    /// Resolves the export settings from the process environment.
    pub fn resolve_from_environment(&self) -> Result<ExportConfig, Error> {
        self.resolve(&|var| std::env::var(var).ok())
    }

    /// Resolves the export settings: flag, then environment (read through `env`), then default.
    pub fn resolve(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<ExportConfig, Error> {
        let protocol = self.protocol(env)?;
        let endpoint = self.endpoint(protocol, env);
        let receiver = self.receiver;
        if receiver == Receiver::Prometheus && protocol != Protocol::HttpProtobuf {
            return Err(Error::Config(
                "--otlp-receiver prometheus needs --otlp-protocol http/protobuf: Prometheus' \
                 OTLP receiver speaks OTLP/HTTP only (e.g. --otlp-endpoint \
                 http://prometheus:9090/api/v1/otlp/v1/metrics)"
                    .into(),
            ));
        }
        let interval = match self.interval {
            Some(d) => d,
            None => env_millis(env, &["OTEL_METRIC_EXPORT_INTERVAL"])?
                .unwrap_or(DEFAULT_EXPORT_INTERVAL),
        };
        let refresh = self.refresh;
        let timeout = match self.timeout {
            Some(d) => d,
            None => env_millis(
                env,
                &[
                    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
                    "OTEL_EXPORTER_OTLP_TIMEOUT",
                ],
            )?
            .unwrap_or(DEFAULT_EXPORT_TIMEOUT),
        };
        let compression = self
            .compression
            .clone()
            .or_else(|| env("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION"))
            .or_else(|| env("OTEL_EXPORTER_OTLP_COMPRESSION"))
            .filter(|c| !c.trim().is_empty());
        let compression = match compression {
            None => Compression::Gzip,
            Some(text) => Compression::parse(&text).ok_or_else(|| {
                Error::Config(format!(
                    "OTLP compression {text:?} is not supported; use gzip, zstd or none"
                ))
            })?,
        };
        let range = MAX_REQUEST_BYTES_RANGE;
        if !range.contains(&self.max_request_bytes) {
            return Err(Error::Config(format!(
                "--max-request-bytes {} is out of range; use {} to {} (the collector's default limit is {})",
                self.max_request_bytes,
                range.start(),
                range.end(),
                COLLECTOR_DEFAULT_RECV_BYTES
            )));
        }
        let headers = Headers::from_env(env)?;
        Ok(ExportConfig {
            endpoint,
            protocol,
            receiver,
            headers,
            interval,
            refresh,
            timeout,
            ca_file: self.ca_file.clone(),
            client_cert_file: self.client_cert_file.clone(),
            client_key_file: self.client_key_file.clone(),
            compression,
            max_request_bytes: self.max_request_bytes,
            stale_on_shutdown: !self.keep_series_on_shutdown,
        })
    }
}

impl ExportConfig {
    /// Warns about settings that work but are likely a mistake: a request limit above the
    /// collector's default, an OTLP/HTTP endpoint with no path.
    pub fn warn_unusual(&self) {
        if self.max_request_bytes > COLLECTOR_DEFAULT_RECV_BYTES {
            warn!(
                max_request_bytes = self.max_request_bytes,
                "--max-request-bytes is above the collector's default receive limit (4 MiB): raise the \
                 OTLP receiver's max_recv_msg_size_mib to match, or the collector refuses large exports"
            );
        }
        if self.protocol == Protocol::HttpProtobuf {
            let path = self
                .endpoint
                .parse::<http::Uri>()
                .map(|u| u.path().to_owned())
                .unwrap_or_default();
            if path.is_empty() || path == "/" {
                warn!(
                    endpoint = %redact(&self.endpoint),
                    "the OTLP/HTTP endpoint has no path, and --otlp-endpoint and \
                     $OTEL_EXPORTER_OTLP_METRICS_ENDPOINT are used as given: a collector takes \
                     .../v1/metrics, Prometheus .../api/v1/otlp/v1/metrics (or set \
                     $OTEL_EXPORTER_OTLP_ENDPOINT, which gets /v1/metrics appended)"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use clap::Parser;

    use super::*;
    use crate::config::Cli;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("sei-condition-watcher").chain(args.iter().copied()))
            .unwrap()
    }

    /// The export settings for these flags and this environment.
    fn resolve(args: &[&str], env: &dyn Fn(&str) -> Option<String>) -> Result<ExportConfig, Error> {
        parse(args).run.export_flags().resolve(env)
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn endpoint_precedence_flag_then_metrics_env_then_generic_env() {
        let env = env_of(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4317"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://metrics:4317"),
        ]);
        assert_eq!(resolve(&[], &env).unwrap().endpoint, "http://metrics:4317");
        assert_eq!(
            resolve(&["--otlp-endpoint", "http://flag:4317"], &env)
                .unwrap()
                .endpoint,
            "http://flag:4317"
        );
        let env = env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4317")]);
        assert_eq!(resolve(&[], &env).unwrap().endpoint, "http://generic:4317");
        assert_eq!(
            resolve(&[], &env_of(&[])).unwrap().endpoint,
            DEFAULT_OTLP_ENDPOINT
        );
    }

    #[test]
    fn protocol_flag_then_metrics_env_then_generic_env_then_grpc() {
        let protocol = |args: &[&str], env| resolve(args, &env).unwrap().protocol;
        assert_eq!(
            protocol(&[], env_of(&[])),
            Protocol::Grpc,
            "grpc by default"
        );
        let generic = env_of(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]);
        assert_eq!(protocol(&[], generic), Protocol::HttpProtobuf);
        let both = || {
            env_of(&[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc"),
            ])
        };
        assert_eq!(
            protocol(&[], both()),
            Protocol::Grpc,
            "the metrics variable wins"
        );
        assert_eq!(
            protocol(&["--otlp-protocol", "http/protobuf"], both()),
            Protocol::HttpProtobuf,
            "the flag wins"
        );
        let blank = env_of(&[
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", " "),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ]);
        assert_eq!(
            protocol(&[], blank),
            Protocol::HttpProtobuf,
            "empty is unset"
        );
        let err = resolve(
            &[],
            &env_of(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("\"http/json\" is not supported; use grpc or http/protobuf"),
            "{err}"
        );
    }

    #[test]
    fn http_endpoints_follow_the_specification() {
        let http = ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf");
        let endpoint = |args: &[&str], env| resolve(args, &env).unwrap().endpoint;
        assert_eq!(endpoint(&[], env_of(&[http])), DEFAULT_OTLP_HTTP_ENDPOINT);
        assert_eq!(
            DEFAULT_OTLP_HTTP_ENDPOINT,
            "http://localhost:4318/v1/metrics"
        );
        // The generic variable is a base URL: /v1/metrics is appended, one slash between.
        for (base, url) in [
            ("http://c:4318", "http://c:4318/v1/metrics"),
            ("http://c:4318/", "http://c:4318/v1/metrics"),
            (
                "http://prometheus:9090/api/v1/otlp",
                "http://prometheus:9090/api/v1/otlp/v1/metrics",
            ),
        ] {
            let env = env_of(&[http, ("OTEL_EXPORTER_OTLP_ENDPOINT", base)]);
            assert_eq!(endpoint(&[], env), url, "{base}");
        }
        // The metrics variable and the flag are used as given.
        let env = || {
            env_of(&[
                http,
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4318"),
                (
                    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                    "http://m:4318/custom",
                ),
            ])
        };
        assert_eq!(endpoint(&[], env()), "http://m:4318/custom");
        assert_eq!(
            endpoint(&["--otlp-endpoint", "https://flag/otlp/v1/metrics"], env()),
            "https://flag/otlp/v1/metrics"
        );
        let empty_specific = env_of(&[
            http,
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4318"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", ""),
        ]);
        assert_eq!(
            endpoint(&[], empty_specific),
            "http://generic:4318/v1/metrics",
            "empty is unset"
        );
        // gRPC: unchanged, no path appended.
        let grpc = env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4317")]);
        assert_eq!(endpoint(&[], grpc), "http://generic:4317");
    }

    #[test]
    fn the_prometheus_receiver_needs_http() {
        let err = resolve(&["--otlp-receiver", "prometheus"], &env_of(&[])).unwrap_err();
        assert!(
            err.to_string()
                .contains("needs --otlp-protocol http/protobuf"),
            "{err}"
        );
        let config = resolve(
            &[
                "--otlp-receiver",
                "prometheus",
                "--otlp-protocol",
                "http/protobuf",
            ],
            &env_of(&[]),
        )
        .unwrap();
        assert_eq!(config.receiver, Receiver::Prometheus);
        assert_eq!(
            resolve(&[], &env_of(&[])).unwrap().receiver,
            Receiver::Collector
        );
    }

    #[test]
    fn interval_from_env_in_millis_and_flag_wins() {
        let env = env_of(&[("OTEL_METRIC_EXPORT_INTERVAL", "5000")]);
        assert_eq!(resolve(&[], &env).unwrap().interval, Duration::from_secs(5));
        assert_eq!(
            resolve(&["--export-interval", "2s"], &env)
                .unwrap()
                .interval,
            Duration::from_secs(2)
        );
        assert_eq!(
            resolve(&[], &env_of(&[])).unwrap().interval,
            DEFAULT_EXPORT_INTERVAL
        );
        let err = resolve(&[], &env_of(&[("OTEL_METRIC_EXPORT_INTERVAL", "15s")])).unwrap_err();
        assert!(
            err.to_string().contains(
                "OTEL_METRIC_EXPORT_INTERVAL=\"15s\" is not a positive number of milliseconds"
            ),
            "{err}"
        );
    }

    #[test]
    fn compression_and_request_size() {
        let run = parse(&[]).run;
        let compression = |env| run.export_flags().resolve(&env).unwrap().compression;
        assert_eq!(
            compression(env_of(&[])),
            Compression::Gzip,
            "gzip by default"
        );
        let env = env_of(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "none")]);
        assert_eq!(compression(env), Compression::None);
        let env = env_of(&[
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
            ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "zstd"),
        ]);
        assert_eq!(
            compression(env),
            Compression::Zstd,
            "the metrics variable wins"
        );
        let flag = parse(&["--otlp-compression", "none"]).run;
        let env = env_of(&[("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "gzip")]);
        assert_eq!(
            flag.export_flags().resolve(&env).unwrap().compression,
            Compression::None,
            "the flag wins"
        );
        let env = env_of(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "snappy")]);
        assert!(run
            .export_flags()
            .resolve(&env)
            .unwrap_err()
            .to_string()
            .contains("use gzip, zstd or none"));
        let err = resolve(&["--max-request-bytes", "100"], &env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
    }
}
