//! The admission webhook's read-only view of the cluster: a watch-backed cache of every
//! VariantAutoscaling (for the one-VA-per-workload rule) and a direct lookup of the target
//! workload (for the "does not exist yet" warning). Reads only; never writes.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};

use super::validate::{ClusterFacts, ExistingVa, target_of};

/// How long a target lookup may take before the warning is skipped.
const TARGET_LOOKUP_TIMEOUT: Duration = Duration::from_secs(1);

/// VariantAutoscalings as dynamic objects: a VA without `spec` passes the CRD schema and must
/// not break the cache the way a typed list would.
fn va_resource() -> ApiResource {
    ApiResource {
        group: crate::api::GROUP.into(),
        version: crate::api::VERSION.into(),
        api_version: format!("{}/{}", crate::api::GROUP, crate::api::VERSION),
        kind: "VariantAutoscaling".into(),
        plural: "variantautoscalings".into(),
    }
}

/// A running cache; cheap to clone.
#[derive(Clone)]
pub struct ClusterCache {
    client: Client,
    store: Store<DynamicObject>,
}

impl ClusterCache {
    /// Starts watching VariantAutoscalings in every namespace. The watch retries with backoff
    /// for as long as the process runs.
    pub fn start(client: Client) -> Self {
        let resource = va_resource();
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let writer = reflector::store::Writer::new(resource);
        let store = writer.as_reader();
        let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
            .default_backoff()
            .applied_objects();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                if let Err(error) = event {
                    tracing::warn!(%error, "VariantAutoscaling watch failed; retrying");
                }
            }
        });
        Self { client, store }
    }

    /// True once the first full list has arrived.
    pub fn is_ready(&self) -> bool {
        futures::FutureExt::now_or_never(self.store.wait_until_ready()).is_some()
    }

    /// Waits for the first full list.
    pub async fn wait_until_ready(&self) {
        let _ = self.store.wait_until_ready().await;
    }

    /// The VAs of one namespace with their targets.
    pub fn variant_autoscalings(&self, namespace: &str) -> Vec<ExistingVa> {
        self.store
            .state()
            .iter()
            .filter(|va| va.metadata.namespace.as_deref() == Some(namespace))
            .filter_map(|va| {
                let object = serde_json::json!({"spec": va.data.get("spec")});
                let (target_kind, target_name) = target_of(&object)?;
                Some(ExistingVa {
                    name: va.metadata.name.clone().unwrap_or_default(),
                    target_kind,
                    target_name,
                })
            })
            .collect()
    }

    /// Whether the target exists; `None` when the lookup failed or the kind is not supported.
    pub async fn target_exists(&self, namespace: &str, kind: &str, name: &str) -> Option<bool> {
        if kind != "Deployment" || name.is_empty() {
            return None;
        }
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        match tokio::time::timeout(TARGET_LOOKUP_TIMEOUT, api.get_metadata_opt(name)).await {
            Ok(Ok(found)) => Some(found.is_some()),
            _ => None,
        }
    }

    /// The facts the VA rules need for one object under review.
    pub async fn facts(&self, namespace: &str, object: Option<&serde_json::Value>) -> ClusterFacts {
        let target_exists = match object.and_then(target_of) {
            Some((kind, name)) => self.target_exists(namespace, &kind, &name).await,
            None => None,
        };
        ClusterFacts {
            existing: Some(self.variant_autoscalings(namespace)),
            target_exists,
        }
    }
}
