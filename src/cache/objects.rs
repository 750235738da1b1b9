//! The Pod and Deployment shapes the caches hold: only the fields the controller reads,
//! deserialized straight from the API server's JSON (serde skips the rest without allocating).
//! `k8s_openapi`'s `Pod` and `Deployment` carry every field inline — a `Pod` with no spec is still
//! kilobytes — so at 4,000 pods these shapes are what keeps the controller inside its memory
//! budget (docs/performance.md#controller-at-scale). Field names and optionality mirror the
//! Kubernetes types, so code reads them the same way. Data only: no IO, no rules.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Affinity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::Deserialize;

/// Implements `kube::Resource` for a cached shape of a built-in kind.
macro_rules! cached_resource {
    ($type:ty, $group:literal, $version:literal, $kind:literal, $plural:literal) => {
        impl kube::Resource for $type {
            type DynamicType = ();
            type Scope = NamespaceResourceScope;

            fn kind(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($kind)
            }
            fn group(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($group)
            }
            fn version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($version)
            }
            fn plural(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($plural)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

/// A Pod as the controller reads it: metadata (labels, owners, times) and the parts of its
/// status that say whether it is ready or stuck.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct CachedPod {
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub status: Option<PodStatus>,
}
cached_resource!(CachedPod, "", "v1", "Pod", "pods");

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    pub conditions: Option<Vec<PodCondition>>,
    pub container_statuses: Option<Vec<ContainerStatus>>,
    pub init_container_statuses: Option<Vec<ContainerStatus>>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct PodCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct ContainerStatus {
    pub name: String,
    pub state: Option<ContainerState>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct ContainerState {
    pub waiting: Option<ContainerStateWaiting>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct ContainerStateWaiting {
    pub reason: Option<String>,
}

/// A Deployment as the controller reads it: metadata, replicas, selector, status counts, and of
/// the pod template only the scheduling constraints the accelerator is derived from.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct CachedDeployment {
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: Option<DeploymentSpec>,
    pub status: Option<DeploymentStatus>,
}
cached_resource!(CachedDeployment, "apps", "v1", "Deployment", "deployments");

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct DeploymentSpec {
    pub replicas: Option<i32>,
    #[serde(default)]
    pub selector: LabelSelector,
    #[serde(default)]
    pub template: PodTemplate,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct PodTemplate {
    pub spec: Option<SchedulingSpec>,
}

/// The scheduling constraints of a pod template.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SchedulingSpec {
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Boxed: rare, and large inline.
    pub affinity: Option<Box<Affinity>>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStatus {
    pub replicas: Option<i32>,
    pub ready_replicas: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_what_the_controller_reads_is_kept_and_the_shapes_are_small() {
        let pod: CachedPod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "d-1", "namespace": "prod", "labels": {"app": "d"}},
            "spec": {"containers": [{"name": "vllm", "image": "v"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-01T10:00:00Z"}],
                "containerStatuses": [{"name": "vllm", "image": "v", "imageID": "", "ready": false,
                    "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff", "message": "m"}}}]}
        }))
        .unwrap();
        let status = pod.status.as_ref().unwrap();
        assert_eq!(status.conditions.as_ref().unwrap()[0].type_, "Ready");
        let waiting = status.container_statuses.as_ref().unwrap()[0]
            .state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.as_deref());
        assert_eq!(waiting, Some("ImagePullBackOff"));

        let deployment: CachedDeployment = serde_json::from_value(json!({
            "metadata": {"name": "d", "namespace": "prod"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}},
                "template": {"metadata": {"labels": {"app": "d"}},
                    "spec": {"containers": [{"name": "vllm"}], "nodeSelector": {"nvidia.com/gpu.product": "H100"}}}},
            "status": {"replicas": 2, "readyReplicas": 1, "conditions": []}
        }))
        .unwrap();
        let spec = deployment.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(2));
        assert_eq!(
            spec.template
                .spec
                .as_ref()
                .unwrap()
                .node_selector
                .as_ref()
                .unwrap()["nvidia.com/gpu.product"],
            "H100"
        );
        assert_eq!(deployment.status.unwrap().ready_replicas, Some(1));

        // The point of these shapes: a fraction of k8s-openapi's inline sizes.
        let small = std::mem::size_of::<CachedPod>();
        let full = std::mem::size_of::<k8s_openapi::api::core::v1::Pod>();
        assert!(small * 3 < full, "CachedPod {small} B, Pod {full} B");
        let small = std::mem::size_of::<CachedDeployment>();
        let full = std::mem::size_of::<k8s_openapi::api::apps::v1::Deployment>();
        assert!(
            small * 3 < full,
            "CachedDeployment {small} B, Deployment {full} B"
        );
    }
}
