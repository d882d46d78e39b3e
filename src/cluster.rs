//! Which cluster the watcher describes: the `cluster` label that keeps two clusters writing
//! to one Prometheus apart. Without it, two clusters' `sei/validator-0` are one series
//! family, and the rules' `unless ... status="True"` lets a healthy one hide a broken one.
//!
//! ```text
//!  --cluster-name / $K8S_CLUSTER_NAME ──────────┐ the first non-empty one wins
//!  $OTEL_RESOURCE_ATTRIBUTES k8s.cluster.name ───┤
//!  else: GET /api/v1/namespaces/kube-system ─────┘ its metadata.uid (read once, at start)
//!                │
//!                ▼
//!  ClusterIdentity ─▶ resource: k8s.cluster.name (the collector makes it `cluster`),
//!                               k8s.cluster.uid when derived
//! ```
//!
//! The kube-system namespace's UID is what the OpenTelemetry semantic conventions recommend
//! for `k8s.cluster.uid`: every cluster has that namespace, the API server refuses to delete
//! it, and its UID is random per cluster, so it never changes and never repeats. Reading it
//! needs `get` on that one Namespace (deploy/watcher/rbac.yaml); an install that may not
//! grant it sets `--cluster-name`. Until the UID is read, nothing is exported and the
//! watcher is not ready: a refusal (RBAC applied after the Deployment) or an unreachable API
//! server is retried with one line saying what to do; a cluster without kube-system stops
//! the watcher with one line.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use kube::runtime::watcher::DefaultBackoff;
use opentelemetry::Key;
use opentelemetry_sdk::resource::{EnvResourceDetector, ResourceDetector};
use tracing::{info, warn};

use crate::Error;

/// The namespace whose UID identifies the cluster by default: present in every cluster,
/// undeletable (the API server's NamespaceLifecycle refuses it), and recommended for
/// `k8s.cluster.uid` by the OpenTelemetry semantic conventions.
pub const IDENTITY_NAMESPACE: &str = "kube-system";

/// The resource attribute the collector turns into the `cluster` label.
pub const CLUSTER_NAME_ATTRIBUTE: &str = "k8s.cluster.name";

/// What the watcher's series say about their cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterIdentity {
    /// `k8s.cluster.name`, hence the `cluster` label: the given name, else the UID.
    pub name: String,
    /// `k8s.cluster.uid`: the kube-system namespace's UID when it was read (only without a
    /// given name: a given name needs no access to kube-system).
    pub uid: Option<String>,
}

impl ClusterIdentity {
    fn derived(uid: String) -> Self {
        ClusterIdentity {
            name: uid.clone(),
            uid: Some(uid),
        }
    }
}

/// The cluster name given by the operator: `--cluster-name` ($K8S_CLUSTER_NAME), else
/// `k8s.cluster.name` from $OTEL_RESOURCE_ATTRIBUTES ([`resource_attribute_name`]); empty
/// values count as not given (the shipped Deployment sets K8S_CLUSTER_NAME to "").
pub fn given_name(flag: Option<&str>, resource_attribute: Option<String>) -> Option<String> {
    flag.map(str::to_owned)
        .into_iter()
        .chain(resource_attribute)
        .map(|name| name.trim().to_owned())
        .find(|name| !name.is_empty())
}

/// `k8s.cluster.name` as $OTEL_RESOURCE_ATTRIBUTES sets it, read by the SDK's own parser
/// (percent-decoding, commas), which is also what puts it on the resource.
pub fn resource_attribute_name() -> Option<String> {
    EnvResourceDetector::new()
        .detect()
        .get(&Key::from_static_str(CLUSTER_NAME_ATTRIBUTE))
        .map(|v| v.as_str().into_owned())
}

/// What to do after one attempt to read the kube-system namespace's UID failed.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// Try again after a backoff; the line says why and what to do.
    Retry(String),
    /// Stop the watcher: retrying cannot help.
    Fatal(String),
}

/// The line for a failed read of kube-system, and whether it is worth retrying.
pub fn explain(error: &kube::Error) -> Failure {
    let hint = "or set --cluster-name ($K8S_CLUSTER_NAME) to this cluster's name";
    match error {
        kube::Error::Api(status) if status.code == 403 => Failure::Retry(format!(
            "cluster identity: the API server refused to read the {IDENTITY_NAMESPACE} \
             namespace, whose UID tells this cluster's series from another's: grant this \
             identity get on namespaces/{IDENTITY_NAMESPACE} (deploy/watcher/rbac.yaml), {hint}; \
             nothing is exported until then ({})",
            status.message
        )),
        kube::Error::Api(status) if status.code == 404 => Failure::Fatal(format!(
            "cluster identity: this API server has no {IDENTITY_NAMESPACE} namespace to derive \
             the cluster's identity from: set --cluster-name ($K8S_CLUSTER_NAME) to this \
             cluster's name"
        )),
        kube::Error::Api(status) if status.code == 401 => Failure::Retry(format!(
            "cluster identity: the API server rejected the watcher's credentials: check the \
             kubeconfig or service account token ({})",
            status.message
        )),
        kube::Error::Api(status) => Failure::Retry(format!(
            "cluster identity: reading the {IDENTITY_NAMESPACE} namespace failed ({} {}): \
             retrying, {hint}",
            status.code, status.message
        )),
        other => Failure::Retry(format!(
            "cannot reach the API server to read the {IDENTITY_NAMESPACE} namespace's UID (the \
             cluster's identity): {other}; retrying, {hint}"
        )),
    }
}

/// The cluster's identity: the given name, else the kube-system namespace's UID read with
/// `read_uid`, retried with kube's watch backoff (0.8 s doubling to 30 s) while it fails in
/// a way that may pass. Each different failure is logged once.
pub async fn resolve_with<F, Fut>(
    given: Option<String>,
    mut read_uid: F,
) -> Result<ClusterIdentity, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<String, kube::Error>>,
{
    if let Some(name) = given {
        info!(cluster = %name, "cluster name given: the `cluster` label of every series");
        return Ok(ClusterIdentity { name, uid: None });
    }
    let mut backoff = DefaultBackoff::default();
    let mut said: Option<Option<u16>> = None;
    loop {
        match read_uid().await {
            Ok(uid) if !uid.is_empty() => {
                if said.is_some() {
                    info!("cluster identity read: the earlier failure is over");
                }
                info!(
                    cluster = %uid,
                    "no cluster name given: the {IDENTITY_NAMESPACE} namespace's UID is the \
                     `cluster` label of every series (set --cluster-name for a readable one)"
                );
                return Ok(ClusterIdentity::derived(uid));
            }
            Ok(_) => {
                return Err(Error::Config(format!(
                    "cluster identity: the {IDENTITY_NAMESPACE} namespace has no UID: set \
                     --cluster-name ($K8S_CLUSTER_NAME) to this cluster's name"
                )))
            }
            Err(e) => match explain(&e) {
                Failure::Fatal(line) => return Err(Error::Config(line)),
                Failure::Retry(line) => {
                    // Once per kind of failure (its status code, or none for a connection
                    // error), not per attempt: the text may carry a changing detail.
                    let kind = Some(status_code(&e));
                    if said != kind {
                        warn!("{line}");
                        said = kind;
                    }
                }
            },
        }
        // DefaultBackoff never ends (it resets after two quiet minutes); 30 s is its cap.
        let wait = backoff.next().unwrap_or(std::time::Duration::from_secs(30));
        tokio::time::sleep(wait).await;
    }
}

/// The API status code of an error, None when the API server did not answer.
fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// [`resolve_with`] against the API server: a metadata-only GET of kube-system.
pub async fn resolve(
    client: &kube::Client,
    given: Option<String>,
) -> Result<ClusterIdentity, Error> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    resolve_with(given, || async {
        namespaces
            .get_metadata(IDENTITY_NAMESPACE)
            .await
            .map(|ns| ns.metadata.uid.unwrap_or_default())
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use kube::core::Status;

    use super::*;

    fn api_error(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(Status::failure(message, "").with_code(code)))
    }

    #[tokio::test]
    async fn a_given_name_wins_and_kube_system_is_not_read() {
        let identity = resolve_with(Some("prod-eu".into()), || async {
            panic!("kube-system read although a name was given")
        })
        .await
        .unwrap();
        assert_eq!(
            identity,
            ClusterIdentity {
                name: "prod-eu".into(),
                uid: None
            }
        );
    }

    #[test]
    fn the_flag_wins_over_otel_resource_attributes_and_empty_is_not_a_name() {
        let otel = || Some("from-otel-env".to_owned());
        assert_eq!(
            given_name(Some("prod-eu"), otel()).as_deref(),
            Some("prod-eu")
        );
        assert_eq!(
            given_name(Some(" prod-eu "), None).as_deref(),
            Some("prod-eu")
        );
        assert_eq!(given_name(None, otel()).as_deref(), Some("from-otel-env"));
        // The shipped Deployment's K8S_CLUSTER_NAME="" is no name: the next source counts.
        assert_eq!(
            given_name(Some(""), otel()).as_deref(),
            Some("from-otel-env")
        );
        assert_eq!(given_name(Some(""), Some(" ".into())), None);
        assert_eq!(given_name(None, None), None);
    }

    #[tokio::test]
    async fn without_a_name_the_kube_system_uid_is_the_cluster() {
        let uid = "6c1f8a9e-0d3b-4f7a-9a51-2b0c9e4d7f10";
        let identity = resolve_with(None, || async { Ok(uid.to_owned()) })
            .await
            .unwrap();
        assert_eq!(identity.name, uid);
        assert_eq!(identity.uid.as_deref(), Some(uid));
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_and_outages_are_retried_until_the_uid_is_read() {
        let calls = AtomicUsize::new(0);
        let identity = resolve_with(None, || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    0 => Err(api_error(403, "namespaces \"kube-system\" is forbidden")),
                    1 => Err(api_error(503, "the server is shutting down")),
                    _ => Ok("uid-1".to_owned()),
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(identity.name, "uid-1");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_cluster_without_kube_system_is_one_line_and_no_retry() {
        let calls = AtomicUsize::new(0);
        let error = resolve_with(None, || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(api_error(404, "namespaces \"kube-system\" not found")) }
        })
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let line = error.line();
        assert!(line.contains("--cluster-name"), "{line}");
        assert_eq!(line.lines().count(), 1, "{line}");
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn each_failure_says_what_to_do() {
        let Failure::Retry(forbidden) = explain(&api_error(403, "forbidden")) else {
            panic!("a refusal is retried: RBAC may be applied after the Deployment")
        };
        assert!(
            forbidden.contains("get on namespaces/kube-system")
                && forbidden.contains("--cluster-name"),
            "{forbidden}"
        );
        let Failure::Retry(unauthorized) = explain(&api_error(401, "Unauthorized")) else {
            panic!("rejected credentials are retried, as the watch does")
        };
        assert!(unauthorized.contains("credentials"), "{unauthorized}");
        assert!(matches!(
            explain(&api_error(404, "not found")),
            Failure::Fatal(_)
        ));
    }
}
