//! Every read of the process environment, in one place: the controller namespace, the
//! ConfigMap names, and the lookup handed to the Prometheus configuration.

/// The default controller namespace (upstream's install namespace).
pub const DEFAULT_NAMESPACE: &str = "workload-variant-autoscaler-system";

/// A variable's value; unset and empty are the same.
pub fn lookup(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// The controller's namespace (`POD_NAMESPACE`), which holds the wva ConfigMaps.
pub fn controller_namespace() -> String {
    lookup("POD_NAMESPACE").unwrap_or_else(|| DEFAULT_NAMESPACE.into())
}

/// The main ConfigMap's name (`CONFIG_MAP_NAME`).
pub fn main_config_map_name() -> String {
    lookup("CONFIG_MAP_NAME")
        .unwrap_or_else(|| crate::config::prometheus::MAIN_CONFIG_MAP_NAME.into())
}

/// Whether the process runs in a pod (the API server's address is in the environment).
pub fn in_cluster() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
}
