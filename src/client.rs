//! Builds the Kubernetes client the way kubectl finds its configuration.

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

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
    Client::try_from(config).map_err(|e| Error::kube("cannot build the client", e))
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
