//! The Pod and Deployment shapes the caches hold: only the fields the controller reads,
//! deserialized straight from the API server's JSON (serde skips the rest without allocating).
//! `k8s_openapi`'s `Pod` and `Deployment` carry every field inline — a `Pod` with no spec is still
//! kilobytes — so at 4,000 pods these shapes are what keeps the controller inside its memory
//! budget (docs/performance.md#controller-at-scale). Field names and optionality mirror the
//! Kubernetes types, so code reads them the same way. Data only: no IO, no rules.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Affinity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};
use serde::Deserialize;

/// Implements `kube::Resource` for a cached shape of a built-in kind.
macro_rules! cached_resource {
    ($type:ty, $group:literal, $version:literal, $kind:literal, $plural:literal) => {
        cached_resource!(
            $type,
            $group,
            $version,
            $kind,
            $plural,
            NamespaceResourceScope
        );
    };
    ($type:ty, $group:literal, $version:literal, $kind:literal, $plural:literal, $scope:ty) => {
        impl kube::Resource for $type {
            type DynamicType = ();
            type Scope = $scope;

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

/// The extended resources that count as GPUs, by vendor (device plugins register them). Node
/// labels `<vendor>/gpu.product` name the model; `status.allocatable["<vendor>/gpu"]` the count.
pub const GPU_VENDORS: [&str; 3] = ["nvidia.com", "amd.com", "intel.com"];

/// A Pod as the controller reads it: metadata (labels, owners, times), the node it runs on and
/// the GPUs it requests (the limiter's "requested by others"), and the parts of its status that
/// say whether it is ready or stuck.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct CachedPod {
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: Option<PodSpec>,
    pub status: Option<PodStatus>,
}
cached_resource!(CachedPod, "", "v1", "Pod", "pods");

impl CachedPod {
    /// GPUs the pod holds while it runs, as the scheduler counts them: the largest of any init
    /// container's and the sum of the regular containers'.
    pub fn gpu_requests(&self) -> u64 {
        self.spec
            .as_ref()
            .map_or(0, |s| s.init_container_gpus.max(s.container_gpus))
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    pub node_name: Option<String>,
    /// Σ GPU requests of the regular containers.
    #[serde(default, rename = "containers", deserialize_with = "sum_gpu_requests")]
    pub container_gpus: u64,
    /// The largest GPU request of any init container.
    #[serde(
        default,
        rename = "initContainers",
        deserialize_with = "max_gpu_requests"
    )]
    pub init_container_gpus: u64,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    /// `Succeeded` and `Failed` pods hold no GPUs.
    pub phase: Option<String>,
    /// Where the endpoint picker's metrics are scraped.
    #[serde(rename = "podIP")]
    pub pod_ip: Option<String>,
    pub conditions: Option<Vec<PodCondition>>,
    pub container_statuses: Option<Vec<ContainerStatus>>,
    pub init_container_statuses: Option<Vec<ContainerStatus>>,
}

/// A status condition (of a Pod or a Deployment): type, status, and why.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
    /// When `status` last changed (a Pod's `Ready` one: when it became Ready).
    pub last_transition_time: Option<Time>,
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
    /// The template's labels only: scale-from-zero finds a variant's InferencePool by them.
    pub metadata: Option<TemplateMetadata>,
    pub spec: Option<SchedulingSpec>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct TemplateMetadata {
    pub labels: Option<BTreeMap<String, String>>,
}

/// The scheduling constraints of a pod template, and the GPUs each replica requests.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SchedulingSpec {
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Boxed: rare, and large inline.
    pub affinity: Option<Box<Affinity>>,
    /// Σ GPU requests of the template's regular containers (upstream `GPUsPerReplica`).
    #[serde(default, rename = "containers", deserialize_with = "sum_gpu_requests")]
    pub container_gpus: u64,
}

/// A container as far as GPUs go: the GPU count among its resource requests.
#[derive(Deserialize)]
struct GpuContainer {
    #[serde(default)]
    resources: GpuResources,
}

#[derive(Default, Deserialize)]
struct GpuResources {
    #[serde(default)]
    requests: BTreeMap<String, serde_json::Value>,
}

impl GpuContainer {
    fn gpus(&self) -> u64 {
        GPU_VENDORS
            .iter()
            .filter_map(|vendor| self.resources.requests.get(&format!("{vendor}/gpu")))
            .map(whole_quantity)
            .sum()
    }
}

/// A whole-number quantity (`"2"`, `2`); GPUs are never fractional, anything else counts 0.
pub fn whole_quantity(value: &serde_json::Value) -> u64 {
    match value {
        serde_json::Value::String(s) => s.parse().unwrap_or(0),
        other => other.as_u64().unwrap_or(0),
    }
}

fn sum_gpu_requests<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let containers: Option<Vec<GpuContainer>> = Deserialize::deserialize(d)?;
    Ok(containers.iter().flatten().map(GpuContainer::gpus).sum())
}

fn max_gpu_requests<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let containers: Option<Vec<GpuContainer>> = Deserialize::deserialize(d)?;
    Ok(containers
        .iter()
        .flatten()
        .map(GpuContainer::gpus)
        .max()
        .unwrap_or(0))
}

/// A Node as the GPU inventory reads it: its name, and per vendor the GPU model (label
/// `<vendor>/gpu.product`) and the allocatable count (`status.allocatable["<vendor>/gpu"]`).
/// Other labels are dropped as the node enters the cache ([`CachedNode::gpus`] reads what is
/// left).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct CachedNode {
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub status: Option<NodeStatus>,
}
cached_resource!(CachedNode, "", "v1", "Node", "nodes", ClusterResourceScope);

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct NodeStatus {
    #[serde(default)]
    pub allocatable: BTreeMap<String, serde_json::Value>,
}

impl CachedNode {
    /// (product, allocatable count) per vendor whose product label the node carries.
    pub fn gpus(&self) -> impl Iterator<Item = (&str, u64)> {
        let labels = self.metadata.labels.as_ref();
        let allocatable = self.status.as_ref().map(|s| &s.allocatable);
        GPU_VENDORS.iter().filter_map(move |vendor| {
            let product = labels?.get(&format!("{vendor}/gpu.product"))?;
            let count = allocatable
                .and_then(|a| a.get(&format!("{vendor}/gpu")))
                .map_or(0, whole_quantity);
            Some((product.as_str(), count))
        })
    }

    /// Keeps only the GPU labels and allocatable GPU counts.
    pub fn trim(&mut self) {
        let keep_label = |k: &String| k.ends_with("/gpu.product") || k.ends_with("/gpu.memory");
        super::trim(self);
        if let Some(labels) = self.metadata.labels.as_mut() {
            labels.retain(|k, _| keep_label(k));
        }
        self.metadata.annotations = None;
        if let Some(status) = self.status.as_mut() {
            status.allocatable.retain(|k, _| k.ends_with("/gpu"));
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStatus {
    pub replicas: Option<i32>,
    pub ready_replicas: Option<i32>,
    /// `ReplicaFailure` says the ReplicaSet cannot create pods (a quota, a forbidden spec).
    pub conditions: Option<Vec<PodCondition>>,
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
