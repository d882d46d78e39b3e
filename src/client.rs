//! Builds the Kubernetes client the way kubectl finds its configuration.

use http::{Request, Uri};
use kube::client::{Body, ClientBuilder};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tower::util::MapRequestLayer;

use crate::config::KubeArgs;
use crate::Error;

/// `--kubeconfig` / `--context` when given, else `$KUBECONFIG`, `~/.kube/config`, then the
/// in-cluster service account (kube's `Config::infer`).
pub async fn kube_client(args: &KubeArgs) -> Result<Client, Error> {
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match (&args.kubeconfig, &args.context) {
        (Some(path), _) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| Error::kube(format!("--kubeconfig {}", path.display()), e))?;
            Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| Error::kube(context_hint(args), e))?
        }
        (None, Some(_)) => Config::from_kubeconfig(&options)
            .await
            .map_err(|e| Error::kube(context_hint(args), e))?,
        (None, None) => Config::infer().await.map_err(|e| {
            Error::kube(
                "no configuration found (set --kubeconfig or $KUBECONFIG, or run in a pod with a \
                 service account)",
                e,
            )
        })?,
    };
    let mut config = config;
    // A request that receives nothing for this long fails instead of hanging: what makes a
    // hanging API server connection visible (crate::health).
    config.read_timeout = Some(crate::health::READ_TIMEOUT);
    config.reset_reader_on_write = true;
    let builder =
        ClientBuilder::try_from(config).map_err(|e| Error::kube("cannot build the client", e))?;
    Ok(builder
        .with_layer(&MapRequestLayer::new(lengthen_streaming_list))
        .build())
}

/// Gives the watch request of a streaming list (`sendInitialEvents=true`) the server-side
/// timeout [`crate::health::INITIAL_LIST_TIMEOUT_SECS`] instead of the watcher's
/// [`crate::health::WATCH_TIMEOUT_SECS`], so that a large list can finish; every other
/// request is left as it is. kube-runtime's watcher has one timeout for all its requests,
/// and its idle timeout (that timeout + 5 s without an event) still ends a hanging
/// connection, or the quiet watch that follows the list, as before.
fn lengthen_streaming_list(mut request: Request<Body>) -> Request<Body> {
    let uri = request.uri();
    let Some(query) = uri.query() else {
        return request;
    };
    let params = || query.split('&');
    if !params().any(|p| p == "sendInitialEvents=true")
        || !params().any(|p| p.starts_with("timeoutSeconds="))
    {
        return request;
    }
    let timeout = format!(
        "timeoutSeconds={}",
        crate::health::INITIAL_LIST_TIMEOUT_SECS
    );
    let query: Vec<&str> = params()
        .map(|p| {
            if p.starts_with("timeoutSeconds=") {
                timeout.as_str()
            } else {
                p
            }
        })
        .collect();
    // The same path with a query of the same characters but digits: it parses as the
    // original did; were it not to, the request goes as it was.
    let Ok(path_and_query) = format!("{}?{}", uri.path(), query.join("&")).parse() else {
        return request;
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query);
    if let Ok(uri) = Uri::from_parts(parts) {
        *request.uri_mut() = uri;
    }
    request
}

/// What was being read, naming the context if one was asked for.
fn context_hint(args: &KubeArgs) -> String {
    match &args.context {
        Some(context) => {
            format!("context {context:?} (list the contexts with `kubectl config get-contexts`)")
        }
        None => "the kubeconfig".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::{ListParams, WatchParams};
    // What kube's Api (and so its watcher) builds its requests with.
    use kube::core::Request as KubeRequest;

    fn rewritten(request: http::Request<Vec<u8>>) -> String {
        let request = request.map(Body::from);
        lengthen_streaming_list(request).uri().to_string()
    }

    fn seinodes() -> KubeRequest {
        KubeRequest::new("/apis/sei.io/v1alpha1/namespaces/sei/seinodes")
    }

    #[test]
    fn a_streaming_list_gets_the_long_timeout() {
        let params = WatchParams {
            send_initial_events: true,
            ..WatchParams::default()
        }
        .timeout(crate::health::WATCH_TIMEOUT_SECS);
        let uri = rewritten(seinodes().watch(&params, "0").unwrap());
        assert_eq!(
            uri,
            format!(
                "/apis/sei.io/v1alpha1/namespaces/sei/seinodes?&watch=true&timeoutSeconds={}\
                 &allowWatchBookmarks=true&sendInitialEvents=true\
                 &resourceVersionMatch=NotOlderThan&resourceVersion=0",
                crate::health::INITIAL_LIST_TIMEOUT_SECS
            )
        );
    }

    #[test]
    fn watches_that_resume_and_lists_keep_their_requests() {
        let resumed = WatchParams::default()
            .labels("sei.io/chain=arctic-1")
            .timeout(crate::health::WATCH_TIMEOUT_SECS);
        let watch = seinodes().watch(&resumed, "12345").unwrap();
        let before = watch.uri().to_string();
        assert!(before.contains("timeoutSeconds=30"), "{before}");
        assert_eq!(rewritten(watch), before);

        let list = seinodes().list(&ListParams::default().limit(100)).unwrap();
        let before = list.uri().to_string();
        assert_eq!(rewritten(list), before);
    }

    #[test]
    fn a_streaming_list_keeps_its_selectors() {
        let params = WatchParams {
            send_initial_events: true,
            ..WatchParams::default()
        }
        .labels("team in (a,b)")
        .fields("metadata.namespace!=kube-system")
        .timeout(crate::health::WATCH_TIMEOUT_SECS);
        let request = seinodes().watch(&params, "0").unwrap();
        let before = request.uri().to_string();
        let after = rewritten(request);
        assert_eq!(
            after,
            before.replace(
                "timeoutSeconds=30",
                &format!(
                    "timeoutSeconds={}",
                    crate::health::INITIAL_LIST_TIMEOUT_SECS
                )
            )
        );
    }
}
