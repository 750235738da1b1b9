//! Resolves the Prometheus configuration the way `wva run` does — the environment, then a
//! direct GET of the main ConfigMap (upstream's `main.go` reads it from a cache that has not
//! started yet, so its fallback never works; see docs/upstream.md) — and what
//! `wva check-prometheus` reports. Takes the environment as a lookup; reads no variable itself.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{Value, json};

use super::client::{ClientOptions, PrometheusClient, QueryError};
use super::collect::{CollectError, ModelRequest, collect};
use super::promql::{self, ModelKey};
use crate::config::duration::Nanos;
use crate::config::prometheus::{PrometheusConfig, PrometheusConfigError, resolve};

/// Where the controller's configuration lives and how to read the environment: everything
/// `configuration` needs, decided by the caller (the command layer reads the process
/// environment; tests pass a map).
pub struct ConfigSource<'a> {
    /// The environment lookup (`PROMETHEUS_*` variables).
    pub env: &'a (dyn Fn(&str) -> Option<String> + Sync),
    /// The controller namespace (`POD_NAMESPACE`), which holds the main ConfigMap.
    pub namespace: &'a str,
    /// The main ConfigMap's name (`CONFIG_MAP_NAME`).
    pub config_map_name: &'a str,
}

/// Why the main ConfigMap could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadConfigMapError {
    #[error("no cluster to read it from (no --kubeconfig, not in a pod)")]
    NoCluster,
    #[error("the API server did not answer within 10s")]
    Timeout,
    #[error(transparent)]
    Api(#[from] kube::Error),
}

/// The configuration in force and the warnings to log. `client` is needed only when the
/// environment does not set `PROMETHEUS_BASE_URL`.
pub async fn configuration(
    source: &ConfigSource<'_>,
    client: Option<&kube::Client>,
) -> Result<(PrometheusConfig, Vec<String>), PrometheusConfigError> {
    let data = if (source.env)(crate::config::prometheus::BASE_URL)
        .is_some_and(|v| !v.trim().is_empty())
    {
        Ok(None)
    } else {
        read_config_map(client, source.namespace, source.config_map_name).await
    };
    resolve(
        source.env,
        source.config_map_name,
        source.namespace,
        data.as_ref()
            .map(Option::as_ref)
            .map_err(ToString::to_string),
    )
}

async fn read_config_map(
    client: Option<&kube::Client>,
    namespace: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, String>>, ReadConfigMapError> {
    let client = client.ok_or(ReadConfigMapError::NoCluster)?;
    let api: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), namespace);
    match tokio::time::timeout(Duration::from_secs(10), api.get_opt(name)).await {
        Err(_) => Err(ReadConfigMapError::Timeout),
        Ok(found) => Ok(found?.map(|cm| cm.data.unwrap_or_default())),
    }
}

/// How `check` failed: bad input (exit 2) or a failure to reach or use Prometheus (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Configuration(#[from] PrometheusConfigError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Collect(#[from] CollectError),
}

/// What `check` collects: one model (as the controller would), or every model Prometheus has.
pub struct CheckOptions {
    /// (namespace, model ID) to collect, with the request-count period when given.
    pub model: Option<(ModelKey, Option<Nanos>)>,
    /// Query the model's served rate too (as `wva run --policy wva-next` does).
    pub served_rate: bool,
}

impl CheckOptions {
    /// Checks the model's names as the controller would before querying.
    pub fn new(
        model: Option<(String, String)>,
        retention: Option<Nanos>,
        served_rate: bool,
    ) -> Result<Self, CheckError> {
        let model = match model {
            None => None,
            Some((namespace, model_id)) => {
                let key = ModelKey::new(namespace, model_id);
                key.check()
                    .map_err(|e| CheckError::Invalid(e.to_string()))?;
                Some((key, retention))
            }
        };
        Ok(Self { model, served_rate })
    }
}

/// Resolves, connects, runs the queries and returns what it found as JSON.
pub async fn check(
    options: &CheckOptions,
    source: &ConfigSource<'_>,
    kube: Option<&kube::Client>,
) -> Result<Value, CheckError> {
    let (config, warnings) = configuration(source, kube).await?;
    let prometheus = json!({
        "url": config.shown_url(),
        "source": config.source.to_string(),
        "caCertPath": config.ca_cert_path,
        "clientCertPath": config.client_cert_path,
        "serverName": config.server_name,
        "insecureSkipVerify": config.insecure_skip_verify,
        "bearerToken": config.bearer_token.is_some().then_some("(set)"),
        "tokenPath": config.token_path,
    });
    let client = PrometheusClient::new(config, ClientOptions::default())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    match &options.model {
        Some((key, retention)) => {
            let request = ModelRequest {
                key: key.clone(),
                retention: *retention,
                served_rate: options.served_rate,
            };
            let collection = collect(&client, &[request], now).await?;
            Ok(
                json!({"prometheus": prometheus, "warnings": warnings, "queries": collection.queries, "models": collection.models,
                      "requestCountError": collection.request_count_error,
                      "servedRateError": collection.served_rate_error,
                      "waitingError": collection.waiting_error}),
            )
        }
        None => {
            let query = promql::models_seen();
            let samples = client.query(&query).await?;
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
