//! Kubernetes client construction for the subcommands: an explicit kubeconfig, else the
//! in-cluster configuration when running in a pod, else no cluster. Never reads
//! `~/.kube/config` implicitly, so a command that can work without a cluster never talks to one
//! by accident.

use std::path::{Path, PathBuf};

/// Why no client could be built; names the source to fix.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("--kubeconfig {}: {source}", path.display())]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("in-cluster configuration: {0}")]
    InCluster(#[source] kube::config::InClusterError),
    #[error("Kubernetes client: {0}")]
    Client(#[source] kube::Error),
}

/// A client from `kubeconfig`, else in-cluster, else `None`.
pub async fn client(kubeconfig: Option<&Path>) -> Result<Option<kube::Client>, ClientError> {
    let from_file = |source| ClientError::Kubeconfig {
        path: kubeconfig.map(Path::to_owned).unwrap_or_default(),
        source,
    };
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path).map_err(from_file)?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(from_file)?
        }
        None if super::env::in_cluster() => {
            kube::Config::incluster().map_err(ClientError::InCluster)?
        }
        None => return Ok(None),
    };
    kube::Client::try_from(config)
        .map(Some)
        .map_err(ClientError::Client)
}
