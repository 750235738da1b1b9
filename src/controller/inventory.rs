//! The GPU inventory the limiter allocates from (upstream `K8sWithGpuOperator.Discover`, plus the
//! `DiscoverUsage` that upstream computes and never uses), as a pure function of the cached
//! Nodes and Pods: per normalised accelerator type, the allocatable GPUs of the nodes that carry
//! a `<vendor>/gpu.product` label, and the GPUs that pods other than the variants' already
//! request on those nodes. No IO.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::cache::{CachedNode, CachedPod};
use crate::core::GpuPool;
use crate::core::limiter::normalize_accelerator;

/// The inventory. `variant_pods` are the (namespace, name) of the pods that belong to a
/// variant: their GPUs are counted through the variants' replicas, not as others'.
pub fn gpu_inventory(
    nodes: &[Arc<CachedNode>],
    pods: &[Arc<CachedPod>],
    variant_pods: &HashSet<(&str, &str)>,
) -> BTreeMap<String, GpuPool> {
    let mut inventory: BTreeMap<String, GpuPool> = BTreeMap::new();
    // The type a pod's GPUs are counted under: its node's first vendor's product.
    let mut node_type: HashMap<&str, &str> = HashMap::new();
    for node in nodes {
        let Some(name) = node.metadata.name.as_deref() else {
            continue;
        };
        for (product, count) in node.gpus() {
            let kind = normalize_accelerator(product);
            inventory.entry(kind.to_owned()).or_default().allocatable += count;
            node_type.entry(name).or_insert(kind);
        }
    }
    for pod in pods {
        let requested = pod.gpu_requests();
        if requested == 0 || holds_nothing(pod) {
            continue;
        }
        let Some(kind) = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .and_then(|node| node_type.get(node))
        else {
            continue;
        };
        let key = (
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod.metadata.name.as_deref().unwrap_or_default(),
        );
        if variant_pods.contains(&key) {
            continue;
        }
        if let Some(pool) = inventory.get_mut(*kind) {
            pool.requested_by_others += requested;
        }
    }
    inventory
}

/// A pod that has finished (`Succeeded`, `Failed`) no longer holds its GPUs.
fn holds_nothing(pod: &CachedPod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|p| p == "Succeeded" || p == "Failed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(
        name: &str,
        labels: serde_json::Value,
        allocatable: serde_json::Value,
    ) -> Arc<CachedNode> {
        let mut node: CachedNode = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "status": {"allocatable": allocatable}
        }))
        .unwrap();
        node.trim();
        Arc::new(node)
    }

    fn pod(name: &str, node: &str, gpus: &str, phase: &str) -> Arc<CachedPod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "prod"},
                "spec": {"nodeName": node,
                    "initContainers": [{"name": "fetch", "resources": {"requests": {"nvidia.com/gpu": "1"}}}],
                    "containers": [
                        {"name": "a", "resources": {"requests": {"nvidia.com/gpu": gpus, "cpu": "4"}}},
                        {"name": "b", "resources": {"limits": {"nvidia.com/gpu": "8"}}}
                    ]},
                "status": {"phase": phase}
            }))
            .unwrap(),
        )
    }

    #[test]
    fn nodes_add_up_per_type_and_only_other_running_pods_are_subtracted() {
        let nodes = [
            node(
                "n1",
                json!({"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB", "kubernetes.io/os": "linux"}),
                json!({"nvidia.com/gpu": "8", "cpu": "96"}),
            ),
            node(
                "n2",
                json!({"nvidia.com/gpu.product": "A100"}),
                json!({"nvidia.com/gpu": "4"}),
            ),
            node(
                "n3",
                json!({"amd.com/gpu.product": "AMD-MI300X-192G"}),
                json!({"amd.com/gpu": 8}),
            ),
            node(
                "cpu",
                json!({"kubernetes.io/os": "linux"}),
                json!({"cpu": "8"}),
            ),
        ];
        // Trimming keeps only GPU labels and counts.
        assert_eq!(nodes[0].metadata.labels.as_ref().unwrap().len(), 1);
        let pods = [
            pod("other", "n1", "2", "Running"),
            pod("done", "n1", "2", "Succeeded"),
            pod("unscheduled", "", "2", "Pending"),
            pod("variant-pod", "n2", "1", "Running"),
            pod("init-bound", "n2", "0", "Running"),
            pod("on-cpu-node", "cpu", "1", "Running"),
        ];
        let variant_pods: HashSet<(&str, &str)> = [("prod", "variant-pod")].into();
        let inventory = gpu_inventory(&nodes, &pods, &variant_pods);
        assert_eq!(
            inventory,
            BTreeMap::from([
                (
                    "A100".to_owned(),
                    // 2 (regular) + 1 (the init container's, larger than no regular request).
                    GpuPool {
                        allocatable: 12,
                        requested_by_others: 3
                    }
                ),
                (
                    "MI300X".to_owned(),
                    GpuPool {
                        allocatable: 8,
                        requested_by_others: 0
                    }
                ),
            ])
        );
    }
}
