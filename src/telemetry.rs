//! Logging and the OpenTelemetry resource: everything about how the watcher describes itself.

use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;
use tracing_subscriber::EnvFilter;

use crate::cluster::{ClusterIdentity, CLUSTER_NAME_ATTRIBUTE};
use crate::config::LogFormat;

/// Directives appended to every filter: the gRPC and HTTP stacks log every connection
/// attempt at debug, which drowns the watcher's own lines (and, were they exported, would
/// feed back into the pipeline they describe).
const QUIET_DEPENDENCIES: &[&str] = &[
    "h2=warn",
    "hyper=warn",
    "hyper_util=warn",
    "tonic=warn",
    "tower=warn",
    "rustls=warn",
];

/// Installs the global tracing subscriber. `filter` is a RUST_LOG-style filter.
pub fn init_logging(format: LogFormat, filter: Option<&str>) {
    let base = filter
        .map(str::to_owned)
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_owned());
    let mut env_filter = EnvFilter::try_new(&base).unwrap_or_else(|e| {
        eprintln!("ignoring log filter {base:?} ({e}); using info");
        EnvFilter::new("info")
    });
    for directive in QUIET_DEPENDENCIES {
        if let Ok(d) = directive.parse() {
            env_filter = env_filter.add_directive(d);
        }
    }
    // Colours only on a terminal: in a pod or a log file they would be escape codes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// One resource for every metric: `service.name`, `service.instance.id`,
/// `k8s.cluster.name` (the given cluster name, else the kube-system namespace's UID:
/// [`crate::cluster`]) and `k8s.cluster.uid` when that UID was read, plus whatever
/// `OTEL_RESOURCE_ATTRIBUTES` adds (explicit values win).
pub(crate) fn resource(
    service_name: &str,
    instance_id: Option<&str>,
    cluster: Option<&ClusterIdentity>,
) -> Resource {
    let instance = instance(instance_id);
    let mut attributes = vec![
        KeyValue::new("service.instance.id", instance),
        KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
    ];
    if let Some(cluster) = cluster.filter(|c| !c.name.is_empty()) {
        attributes.push(KeyValue::new(CLUSTER_NAME_ATTRIBUTE, cluster.name.clone()));
        if let Some(uid) = &cluster.uid {
            attributes.push(KeyValue::new("k8s.cluster.uid", uid.clone()));
        }
    }
    Resource::builder()
        .with_service_name(service_name.to_owned())
        .with_attributes(attributes)
        .build()
}

/// This replica's name: `--instance-id` ($POD_NAME), else the host name.
pub(crate) fn instance(instance_id: Option<&str>) -> String {
    instance_id
        .map(str::to_owned)
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "sei-condition-watcher".to_owned())
}

#[cfg(test)]
mod tests {
    use opentelemetry::Key;

    use super::*;

    fn attribute(resource: &Resource, key: &'static str) -> Option<String> {
        resource
            .get(&Key::from_static_str(key))
            .map(|v| v.as_str().into_owned())
    }

    #[test]
    fn the_cluster_identity_is_on_the_resource() {
        let derived = ClusterIdentity {
            name: "6c1f8a9e".into(),
            uid: Some("6c1f8a9e".into()),
        };
        let r = resource("svc", Some("pod-1"), Some(&derived));
        assert_eq!(
            attribute(&r, CLUSTER_NAME_ATTRIBUTE).as_deref(),
            Some("6c1f8a9e")
        );
        assert_eq!(
            attribute(&r, "k8s.cluster.uid").as_deref(),
            Some("6c1f8a9e")
        );
        let named = ClusterIdentity {
            name: "prod-eu".into(),
            uid: None,
        };
        let r = resource("svc", Some("pod-1"), Some(&named));
        assert_eq!(
            attribute(&r, CLUSTER_NAME_ATTRIBUTE).as_deref(),
            Some("prod-eu")
        );
        assert_eq!(attribute(&r, "k8s.cluster.uid"), None);
    }
}
