//! Resolves the Prometheus configuration the way `wva run` does — the environment, then a
//! direct GET of the main ConfigMap (upstream reads a cache that has not started yet, so its
//! fallback never works) — and builds the client; plus `wva check-prometheus`.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{Value, json};

use super::client::{ClientOptions, PrometheusClient};
use super::collect::{ModelRequest, collect};
use super::promql::{self, ModelKey};
use crate::config::prometheus::{MAIN_CONFIG_MAP_NAME, PrometheusConfig, resolve};

/// The main ConfigMap's name (`CONFIG_MAP_NAME`).
pub fn main_config_map_name() -> String {
    std::env::var("CONFIG_MAP_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| MAIN_CONFIG_MAP_NAME.into())
}

/// The configuration in force and the warnings to log. `client` is needed only when the
/// environment does not set `PROMETHEUS_BASE_URL`.
pub async fn configuration(
    client: Option<&kube::Client>,
) -> Result<(PrometheusConfig, Vec<String>), String> {
    let env = |key: &str| std::env::var(key).ok();
    let name = main_config_map_name();
    let namespace = crate::k8s::controller_namespace();
    let data: Result<Option<BTreeMap<String, String>>, String> =
        if env(crate::config::prometheus::BASE_URL).is_some_and(|v| !v.trim().is_empty()) {
            Ok(None)
        } else {
            match client {
                None => Err("no cluster to read it from (no --kubeconfig, not in a pod)".into()),
                Some(c) => {
                    let api: kube::Api<ConfigMap> = kube::Api::namespaced(c.clone(), &namespace);
                    match tokio::time::timeout(Duration::from_secs(10), api.get_opt(&name)).await {
                        Err(_) => Err("the API server did not answer within 10s".into()),
                        Ok(Err(e)) => Err(e.to_string()),
                        Ok(Ok(cm)) => Ok(cm.map(|cm| cm.data.unwrap_or_default())),
                    }
                }
            }
        };
    resolve(
        &env,
        &name,
        &namespace,
        data.as_ref().map(Option::as_ref).map_err(Clone::clone),
    )
    .map_err(|e| e.to_string())
}

/// How `check` failed: bad input (exit 2) or a failure to reach or use Prometheus (exit 1).
pub enum CheckError {
    Invalid(String),
    Failed(String),
}

/// Resolves, connects, runs the queries and returns what it found as JSON.
pub async fn check(args: &crate::cli::CheckPrometheusArgs) -> Result<Value, CheckError> {
    let retention = match &args.retention {
        None => None,
        Some(text) => Some(
            crate::config::scale_to_zero::validate_retention_period(text)
                .map_err(|e| CheckError::Invalid(format!("--retention: {e}")))?,
        ),
    };
    let model = match (&args.namespace, &args.model) {
        (Some(ns), Some(m)) => {
            let key = ModelKey::new(ns.clone(), m.clone());
            key.check()
                .map_err(|e| CheckError::Invalid(e.to_string()))?;
            Some(key)
        }
        _ => None,
    };
    let kube = crate::k8s::client(args.kubeconfig.as_deref())
        .await
        .map_err(CheckError::Failed)?;
    let (config, warnings) = configuration(kube.as_ref())
        .await
        .map_err(CheckError::Failed)?;
    let prometheus = json!({
        "url": config.base_url,
        "source": config.source.to_string(),
        "caCertPath": config.ca_cert_path,
        "clientCertPath": config.client_cert_path,
        "serverName": config.server_name,
        "insecureSkipVerify": config.insecure_skip_verify,
        "bearerToken": config.bearer_token.is_some().then_some("(set)"),
        "tokenPath": config.token_path,
    });
    let client = PrometheusClient::new(config, ClientOptions::default())
        .map_err(|e| CheckError::Failed(e.to_string()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    match model {
        Some(key) => {
            let collection = collect(&client, &[ModelRequest { key, retention }], now)
                .await
                .map_err(|e| CheckError::Failed(e.to_string()))?;
            Ok(
                json!({"prometheus": prometheus, "warnings": warnings, "queries": collection.queries, "models": collection.models,
                      "requestCountError": collection.request_count_error}),
            )
        }
        None => {
            let query = promql::models_seen();
            let samples = client
                .query(&query)
                .await
                .map_err(|e| CheckError::Failed(e.to_string()))?;
            let models: Vec<Value> = samples
                .iter()
                .map(|s| json!({"namespace": s.labels.get("namespace"), "modelID": s.labels.get("model_name"), "series": s.value}))
                .collect();
            Ok(
                json!({"prometheus": prometheus, "warnings": warnings, "queries": [query], "models": models}),
            )
        }
    }
}
