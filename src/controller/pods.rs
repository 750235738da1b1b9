//! What the snapshot needs from cached Deployments and Pods, as pure functions (data in → data
//! out): which pods belong to a variant's Deployment (its selector, and a ReplicaSet owner that is
//! the Deployment's), which of them are stuck and why, and the accelerator a variant runs on. No
//! IO, no clock (callers pass "now").

use std::collections::BTreeMap;

use crate::cache::objects::{CachedDeployment, CachedPod, SchedulingSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};

/// The node labels that name a GPU model, by vendor (GPU operators and device plugins set them).
pub const GPU_PRODUCT_LABELS: [&str; 3] = [
    "nvidia.com/gpu.product",
    "amd.com/gpu.product",
    "gpu.intel.com/product",
];

/// The accelerator when neither the VA label nor the pod template names one.
pub const UNKNOWN_ACCELERATOR: &str = "unknown";

/// Whether `labels` satisfy `selector` (`matchLabels` and `matchExpressions` with `In`,
/// `NotIn`, `Exists`, `DoesNotExist`). An empty selector matches nothing, as for a Deployment
/// (the API server refuses one anyway); an unknown operator matches nothing.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let match_labels = selector.match_labels.as_ref();
    let expressions = selector.match_expressions.as_deref().unwrap_or_default();
    if match_labels.is_none_or(BTreeMap::is_empty) && expressions.is_empty() {
        return false;
    }
    let labels_ok = match_labels
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions_ok = expressions.iter().all(|e| {
        let value = labels.get(&e.key);
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_ok && expressions_ok
}

/// Whether `pod` belongs to `deployment`: same namespace, matched by its selector, and (when the
/// pod names a controller) owned by a ReplicaSet of this Deployment — `<deployment>-<hash>`, the
/// name the Deployment controller gives its ReplicaSets. Two Deployments with overlapping
/// selectors therefore never share a pod (upstream takes whichever Go's map order hits first).
pub fn belongs_to(pod: &CachedPod, deployment: &CachedDeployment) -> bool {
    if pod.metadata.namespace != deployment.metadata.namespace {
        return false;
    }
    let Some(selector) = deployment.spec.as_ref().map(|s| &s.selector) else {
        return false;
    };
    let empty = BTreeMap::new();
    if !selector_matches(selector, pod.metadata.labels.as_ref().unwrap_or(&empty)) {
        return false;
    }
    let name = deployment.metadata.name.as_deref().unwrap_or_default();
    match pod
        .metadata
        .owner_references
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|o| o.controller == Some(true))
    {
        None => true,
        Some(owner) => {
            owner.kind == "ReplicaSet"
                && owner
                    .name
                    .strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|hash| !hash.is_empty() && !hash.contains('-'))
        }
    }
}

/// Why a pod will not become ready by waiting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StuckReason {
    /// The scheduler cannot place it (no node with the resources, taints, affinity).
    Unschedulable(String),
    /// A container is waiting for a reason that does not clear by itself.
    ContainerWaiting { container: String, reason: String },
    /// Not Ready within the saturation config's `maxPendingDuration` (`limit`, in seconds: the
    /// limit, not the age, so that the message does not change every cycle).
    NotReadyWithin { limit: u64 },
}

impl std::fmt::Display for StuckReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unschedulable(message) => write!(f, "Unschedulable: {message}"),
            Self::ContainerWaiting { container, reason } => {
                write!(f, "container {container:?} is in {reason}")
            }
            Self::NotReadyWithin { limit } => {
                write!(f, "not Ready within maxPendingDuration ({limit}s)")
            }
        }
    }
}

/// Waiting reasons that do not clear by waiting.
pub const STUCK_WAITING_REASONS: [&str; 4] = [
    "ImagePullBackOff",
    "ErrImagePull",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
];

fn seconds(time: &Time) -> i64 {
    time.0.as_second()
}

/// Whether the pod's `Ready` condition is `True`.
pub fn is_ready(pod: &CachedPod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Where a pod is in its life, as `wva-next` reads it (docs/algorithm.md#wva-next).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Life {
    /// Ready; when its `Ready` condition's last transition and its creation are known, the
    /// seconds from one to the other and since that transition (a pod that went unready and
    /// back reports the later transition).
    Ready(Option<ReadyTimes>),
    /// Neither Ready, nor terminating, nor finished: seconds since creation (0 when unknown).
    Starting(f64),
    /// Terminating, `Succeeded` or `Failed`.
    Leaving,
}

/// A Ready pod's times, in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReadyTimes {
    /// From creation to Ready.
    pub startup: f64,
    /// Since Ready (0 when the kubelet's clock is ahead of `now`).
    pub ready_for: f64,
}

/// `pod`'s [`Life`] at `now` (Unix seconds).
pub fn life(pod: &CachedPod, now: i64) -> Life {
    let status = pod.status.as_ref();
    let finished = status
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|p| p == "Succeeded" || p == "Failed");
    if pod.metadata.deletion_timestamp.is_some() || finished {
        return Life::Leaving;
    }
    let created = pod.metadata.creation_timestamp.as_ref().map(seconds);
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "Ready" && c.status == "True");
    match ready {
        Some(condition) => Life::Ready(
            created
                .zip(condition.last_transition_time.as_ref().map(seconds))
                .map(|(created, ready)| ReadyTimes {
                    startup: ready.saturating_sub(created).max(0) as f64,
                    ready_for: now.saturating_sub(ready).max(0) as f64,
                }),
        ),
        None => Life::Starting(created.map_or(0.0, |c| now.saturating_sub(c).max(0) as f64)),
    }
}

/// Why `pod` is stuck, or `None` when it is Ready, terminating, or still expected to become
/// ready. `now` and `max_pending_seconds` are Unix seconds and seconds.
pub fn stuck_reason(pod: &CachedPod, now: i64, max_pending_seconds: u64) -> Option<StuckReason> {
    if pod.metadata.deletion_timestamp.is_some() || is_ready(pod) {
        return None;
    }
    let status = pod.status.as_ref();
    if let Some(condition) = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        .filter(|c| c.reason.as_deref() == Some("Unschedulable"))
    {
        return Some(StuckReason::Unschedulable(
            condition.message.clone().unwrap_or_default(),
        ));
    }
    let containers = status.into_iter().flat_map(|s| {
        s.init_container_statuses
            .iter()
            .flatten()
            .chain(s.container_statuses.iter().flatten())
    });
    for container in containers {
        if let Some(reason) = container
            .state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.as_deref())
            .filter(|r| STUCK_WAITING_REASONS.contains(r))
        {
            return Some(StuckReason::ContainerWaiting {
                container: container.name.clone(),
                reason: reason.to_owned(),
            });
        }
    }
    let created = pod.metadata.creation_timestamp.as_ref().map(seconds)?;
    let age = now.saturating_sub(created).max(0) as u64;
    (age > max_pending_seconds).then_some(StuckReason::NotReadyWithin {
        limit: max_pending_seconds,
    })
}

/// The accelerator a variant runs on: the VA's `inference.optimization/acceleratorName` label
/// when set (as upstream), else the GPU product its pod template asks for — a `nodeSelector`, or a
/// required node-affinity term with one `In` value — else [`UNKNOWN_ACCELERATOR`]. The second part
/// of the answer says where it came from (for the condition message).
pub fn accelerator(
    va_labels: Option<&BTreeMap<String, String>>,
    template: Option<&SchedulingSpec>,
) -> (String, &'static str) {
    if let Some(label) = va_labels
        .and_then(|l| l.get(crate::api::ACCELERATOR_LABEL))
        .filter(|a| !a.is_empty())
    {
        return (label.clone(), "label");
    }
    let Some(spec) = template else {
        return (UNKNOWN_ACCELERATOR.into(), "unknown");
    };
    for key in GPU_PRODUCT_LABELS {
        if let Some(product) = spec.node_selector.as_ref().and_then(|s| s.get(key)) {
            return (product.clone(), "nodeSelector");
        }
    }
    let terms = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|r| r.node_selector_terms.as_slice())
        .unwrap_or_default();
    for term in terms {
        for expression in term.match_expressions.iter().flatten() {
            let values = expression.values.as_deref().unwrap_or_default();
            if GPU_PRODUCT_LABELS.contains(&expression.key.as_str())
                && expression.operator == "In"
                && values.len() == 1
            {
                return (values[0].clone(), "nodeAffinity");
            }
        }
    }
    (UNKNOWN_ACCELERATOR.into(), "unknown")
}

#[cfg(test)]
mod tests;
