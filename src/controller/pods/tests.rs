//! Pods and Deployments as the API server stores them, in → membership, stuck reasons and
//! accelerators out.

use serde_json::{Value, json};

use super::*;

fn deployment(name: &str, selector: Value, template_spec: Value) -> CachedDeployment {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "prod"},
        "spec": {"selector": selector, "template": {"metadata": {"labels": {"app": name}}, "spec": template_spec}}
    }))
    .unwrap()
}

fn pod(name: &str, labels: Value, owner: Option<&str>, status: Value) -> CachedPod {
    let mut pod = json!({
        "metadata": {"name": name, "namespace": "prod", "labels": labels,
                     "creationTimestamp": "2026-12-01T10:00:00Z"},
        "status": status
    });
    if let Some(rs) = owner {
        pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "name": rs, "uid": "u", "controller": true}]);
    }
    serde_json::from_value(pod).unwrap()
}

/// 2026-12-01T10:00:00Z, the pods' creation time.
const CREATED: i64 = 1_796_119_200;

#[test]
fn pods_belong_by_selector_and_by_the_deployments_own_replica_set() {
    let decode = deployment(
        "llama-decode",
        json!({"matchLabels": {"app": "llama"}}),
        json!({}),
    );
    let mine = pod(
        "a",
        json!({"app": "llama"}),
        Some("llama-decode-7d9f8c6b5"),
        json!({}),
    );
    let bare = pod("b", json!({"app": "llama"}), None, json!({}));
    // Same labels, but the ReplicaSet of another Deployment whose selector overlaps.
    let other = pod(
        "c",
        json!({"app": "llama"}),
        Some("llama-decode-canary-5f6d"),
        json!({}),
    );
    let unlabelled = pod(
        "d",
        json!({"app": "other"}),
        Some("llama-decode-7d9f8c6b5"),
        json!({}),
    );
    assert!(belongs_to(&mine, &decode));
    assert!(
        belongs_to(&bare, &decode),
        "no controller: the selector decides"
    );
    assert!(!belongs_to(&other, &decode));
    assert!(!belongs_to(&unlabelled, &decode));
    let mut elsewhere = mine.clone();
    elsewhere.metadata.namespace = Some("dev".into());
    assert!(!belongs_to(&elsewhere, &decode));
}

#[test]
fn selectors_support_every_operator_and_refuse_the_empty_one() {
    let labels: BTreeMap<String, String> = [("app", "llama"), ("tier", "gpu")]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    let selector = |s: Value| -> LabelSelector { serde_json::from_value(s).unwrap() };
    for (s, want) in [
        (json!({"matchLabels": {"app": "llama"}}), true),
        (json!({"matchLabels": {"app": "other"}}), false),
        (
            json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["gpu", "cpu"]}]}),
            true,
        ),
        (
            json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["gpu"]}]}),
            false,
        ),
        (
            json!({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}),
            true,
        ),
        (
            json!({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}),
            false,
        ),
        (
            json!({"matchExpressions": [{"key": "tier", "operator": "Gt", "values": ["1"]}]}),
            false,
        ),
        (json!({}), false),
    ] {
        assert_eq!(selector_matches(&selector(s.clone()), &labels), want, "{s}");
    }
}

#[test]
fn each_stuck_reason_is_told_apart_from_loading() {
    let max = 15 * 60;
    let loading = pod(
        "loading",
        json!({}),
        None,
        json!({"phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}]}),
    );
    assert_eq!(
        stuck_reason(&loading, CREATED + 120, max),
        None,
        "still loading weights"
    );
    assert_eq!(
        stuck_reason(&loading, CREATED + 16 * 60, max),
        Some(StuckReason::NotReadyWithin { limit: 900 })
    );
    let unschedulable = pod(
        "u",
        json!({}),
        None,
        json!({"conditions": [{"type": "PodScheduled",
        "status": "False", "reason": "Unschedulable", "message": "0/4 nodes: insufficient nvidia.com/gpu"}]}),
    );
    assert_eq!(
        stuck_reason(&unschedulable, CREATED + 1, max)
            .unwrap()
            .to_string(),
        "Unschedulable: 0/4 nodes: insufficient nvidia.com/gpu"
    );
    for reason in STUCK_WAITING_REASONS {
        let waiting = pod(
            "w",
            json!({}),
            None,
            json!({"containerStatuses": [{"name": "vllm", "image": "i",
            "imageID": "", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": reason}}}]}),
        );
        assert_eq!(
            stuck_reason(&waiting, CREATED + 1, max),
            Some(StuckReason::ContainerWaiting {
                container: "vllm".into(),
                reason: reason.into()
            }),
            "{reason}"
        );
    }
    let creating = pod(
        "c",
        json!({}),
        None,
        json!({"containerStatuses": [{"name": "vllm", "image": "i",
        "imageID": "", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
    );
    assert_eq!(stuck_reason(&creating, CREATED + 1, max), None);
    let ready = pod(
        "r",
        json!({}),
        None,
        json!({"conditions": [{"type": "Ready", "status": "True"}]}),
    );
    assert_eq!(stuck_reason(&ready, CREATED + 99_999, max), None);
    let mut terminating = unschedulable.clone();
    terminating.metadata.deletion_timestamp = terminating.metadata.creation_timestamp.clone();
    assert_eq!(
        stuck_reason(&terminating, CREATED + 1, max),
        None,
        "going away anyway"
    );
}

#[test]
fn the_accelerator_comes_from_the_label_then_the_template() {
    let label: BTreeMap<String, String> =
        [(crate::api::ACCELERATOR_LABEL.to_owned(), "H100".to_owned())].into();
    let spec = |fields: Value| -> SchedulingSpec {
        let mut spec = json!({"containers": []});
        for (key, value) in fields.as_object().unwrap() {
            spec[key] = value.clone();
        }
        serde_json::from_value(spec).unwrap()
    };
    let selector =
        spec(json!({"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}}));
    let affinity = spec(
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
        {"nodeSelectorTerms": [{"matchExpressions": [{"key": "amd.com/gpu.product", "operator": "In", "values": ["MI300X"]}]}]}}}}),
    );
    let two_choices = spec(
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
        {"nodeSelectorTerms": [{"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In", "values": ["A", "B"]}]}]}}}}),
    );
    assert_eq!(
        accelerator(Some(&label), Some(&selector)),
        ("H100".into(), "label")
    );
    assert_eq!(
        accelerator(None, Some(&selector)),
        ("NVIDIA-A100-SXM4-80GB".into(), "nodeSelector")
    );
    assert_eq!(
        accelerator(None, Some(&affinity)),
        ("MI300X".into(), "nodeAffinity")
    );
    assert_eq!(
        accelerator(None, Some(&two_choices)),
        ("unknown".into(), "unknown")
    );
    assert_eq!(accelerator(None, None), ("unknown".into(), "unknown"));
}

#[test]
fn a_pods_life_is_ready_with_its_start_up_time_starting_with_its_age_or_leaving() {
    let ready = pod(
        "r",
        json!({}),
        None,
        json!({"conditions": [{"type": "Ready", "status": "True",
            "lastTransitionTime": "2026-12-01T10:02:00Z"}]}),
    );
    assert_eq!(
        life(&ready, CREATED + 600),
        Life::Ready(Some(ReadyTimes {
            startup: 120.0,
            ready_for: 480.0
        }))
    );
    let untimed = pod(
        "u",
        json!({}),
        None,
        json!({"conditions": [{"type": "Ready", "status": "True"}]}),
    );
    assert_eq!(life(&untimed, CREATED + 600), Life::Ready(None));
    let starting = pod("s", json!({}), None, json!({"phase": "Pending"}));
    assert_eq!(life(&starting, CREATED + 45), Life::Starting(45.0));
    let done = pod("d", json!({}), None, json!({"phase": "Succeeded"}));
    assert_eq!(life(&done, CREATED + 45), Life::Leaving);
    let mut leaving = pod("l", json!({}), None, json!({"phase": "Running"}));
    leaving.metadata.deletion_timestamp = ready.metadata.creation_timestamp.clone();
    assert_eq!(life(&leaving, CREATED + 45), Life::Leaving);
}
