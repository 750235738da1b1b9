//! Kubernetes client construction shared by the subcommands: an explicit kubeconfig, else the
//! in-cluster configuration when running in a pod, else no cluster. Never reads
//! `~/.kube/config` implicitly, so a command that can work without a cluster never talks to
//! one by accident.

use std::path::Path;

/// A client from `kubeconfig`, else in-cluster, else `None`.
pub async fn client(kubeconfig: Option<&Path>) -> Result<Option<kube::Client>, String> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| format!("--kubeconfig {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| format!("--kubeconfig {}: {e}", path.display()))?
        }
        None if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() => {
            kube::Config::incluster().map_err(|e| format!("in-cluster configuration: {e}"))?
        }
        None => return Ok(None),
    };
    kube::Client::try_from(config)
        .map(Some)
        .map_err(|e| format!("Kubernetes client: {e}"))
}

/// The controller's namespace (`POD_NAMESPACE`, default `workload-variant-autoscaler-system`).
pub fn controller_namespace() -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "workload-variant-autoscaler-system".into())
}
