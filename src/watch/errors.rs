//! Watch errors: their kind (the `kind` label), and the one line an operator reads.

use kube::runtime::watcher;
use tokio::time::Instant;

use super::ERROR_LOG_INTERVAL;
use crate::resource::ResourceSpec;
use crate::stats::WatchErrorKind;

/// When each process-wide watch error (same API server, same credentials for every watch)
/// was last logged at `warn`.
static PROCESS_WIDE_ERRORS: std::sync::Mutex<Vec<(WatchErrorKind, Instant)>> =
    std::sync::Mutex::new(Vec::new());

/// Whether a process-wide error of `kind` is due for a `warn` line; records it if so.
pub(super) fn process_wide_line_due(kind: WatchErrorKind) -> bool {
    let mut logged = PROCESS_WIDE_ERRORS
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    match logged.iter_mut().find(|(k, _)| *k == kind) {
        Some((_, at)) if now.duration_since(*at) < ERROR_LOG_INTERVAL => false,
        Some((_, at)) => {
            *at = now;
            true
        }
        None => {
            logged.push((kind, now));
            true
        }
    }
}

/// The API server's message of a watch error, or the error itself.
fn status_message(error: &watcher::Error) -> String {
    match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.message.clone(),
        watcher::Error::WatchError(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// The API status code of a watch error, if the API server answered with one.
pub(super) fn status_code(error: &watcher::Error) -> Option<u16> {
    match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => Some(status.code),
        watcher::Error::WatchError(status) => Some(status.code),
        _ => None,
    }
}

/// The kind of a watch error (the `kind` label of the watch-error counter).
pub fn classify(error: &watcher::Error) -> WatchErrorKind {
    match (status_code(error), error) {
        (Some(400 | 422), _) if refuses_streaming(error) => WatchErrorKind::StreamingRefused,
        (Some(400 | 422), _) => WatchErrorKind::BadRequest,
        (Some(404), _) => WatchErrorKind::CrdMissing,
        (Some(403), _) => WatchErrorKind::Forbidden,
        (Some(401), _) => WatchErrorKind::Unauthorized,
        (Some(410), _) => WatchErrorKind::Expired,
        (
            None,
            watcher::Error::InitialListFailed(_)
            | watcher::Error::WatchStartFailed(_)
            | watcher::Error::WatchFailed(_),
        ) => WatchErrorKind::Connect,
        _ => WatchErrorKind::Other,
    }
}

/// Whether a 400/422 refuses the streaming list itself (WatchList off: the server rejects
/// `sendInitialEvents`/`resourceVersionMatch`), rather than something else in the request
/// such as a label selector it cannot parse.
fn refuses_streaming(error: &watcher::Error) -> bool {
    let message = match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => &status.message,
        watcher::Error::WatchError(status) => &status.message,
        _ => return false,
    };
    let message = message.to_ascii_lowercase();
    ["sendinitialevents", "resourceversionmatch", "watchlist"]
        .iter()
        .any(|m| message.contains(m))
}

/// One line for an operator: what is wrong and what to do.
pub(super) fn explain(kind: WatchErrorKind, resource: &str, error: &watcher::Error) -> String {
    match kind {
        WatchErrorKind::BadRequest => format!(
            "the API server refused the list/watch of {resource} as invalid: {}; check \
             -l/--label-selector (kubectl -l syntax, e.g. app=sei,tier!=test)",
            status_message(error)
        ),
        WatchErrorKind::CrdMissing => format!(
            "the API server does not serve {resource}: its CRD is not installed (install it; the \
             watcher starts exporting as soon as it appears; the other resources are not held back)"
        ),
        WatchErrorKind::Forbidden => format!(
            "the API server refused to list/watch {resource}: grant this identity get, list \
             and watch on {resource} (see deploy/watcher/rbac.yaml) ({error})"
        ),
        WatchErrorKind::Unauthorized => format!(
            "the API server rejected the watcher's credentials: check the kubeconfig or service \
             account token ({error})"
        ),
        WatchErrorKind::Expired => {
            "the watch's resourceVersion expired (410 Gone): relisting".to_owned()
        }
        WatchErrorKind::Connect => format!("cannot reach the API server: {error}"),
        WatchErrorKind::StreamingRefused
        | WatchErrorKind::FamilyConflict
        | WatchErrorKind::Other => {
            format!("watch of {resource} failed: {error}")
        }
    }
}

/// The line for a resource that discovery could not resolve.
pub(super) fn explain_resource(kind: WatchErrorKind, spec: &ResourceSpec) -> String {
    match kind {
        WatchErrorKind::CrdMissing => format!(
            "the API server does not serve {spec}: its CRD is not installed, or the name is \
             wrong (check `kubectl api-resources`); it is picked up as soon as it is served, and \
             the other resources are not held back"
        ),
        WatchErrorKind::Forbidden | WatchErrorKind::Unauthorized => format!(
            "the API server refused discovery of {spec}: grant this identity access to the \
             discovery endpoints (system:discovery)"
        ),
        _ => format!("cannot reach the API server to resolve {spec}"),
    }
}
