//! The admission webhook's read-only view of the cluster: the shared VariantAutoscaling cache
//! (for the one-VA-per-workload rule) and a direct, time-limited lookup of the target workload
//! (for the "does not exist yet" warning). Reads only; never writes.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::{Api, Client};

use super::validate::{ClusterFacts, ExistingVa};
use crate::cache::{Caches, variant_autoscalings_targeting};

/// How long a target lookup may take before the warning is skipped.
const TARGET_LOOKUP_TIMEOUT: Duration = Duration::from_secs(1);

/// What the webhook reads from the cluster; cheap to clone.
#[derive(Clone)]
pub struct ClusterView {
    client: Client,
    caches: Caches,
}

impl ClusterView {
    pub fn new(client: Client, caches: Caches) -> Self {
        Self { client, caches }
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
        let target = object
            .and_then(|o| o.get("spec"))
            .and_then(crate::api::target_ref);
        let Some((kind, target_name)) = target else {
            return ClusterFacts {
                existing: Some(Vec::new()),
                target_exists: None,
            };
        };
        let own_name = object
            .and_then(|o| o.pointer("/metadata/name"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        let objects = self.caches.variant_autoscalings.state();
        let existing =
            variant_autoscalings_targeting(&objects, namespace, kind, target_name, own_name)
                .into_iter()
                .map(|name| ExistingVa {
                    name,
                    target_kind: kind.to_owned(),
                    target_name: target_name.to_owned(),
                })
                .collect();
        ClusterFacts {
            existing: Some(existing),
            target_exists: self.target_exists(namespace, kind, target_name).await,
        }
    }
}
