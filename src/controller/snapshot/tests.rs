//! Cached objects and a collection in → snapshot and notes out.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::prometheus::collect::PodSample;

fn va(name: &str, spec: Value, status: Value) -> Arc<DynamicObject> {
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "llmd.ai/v1alpha1", "kind": "VariantAutoscaling",
            "metadata": {"name": name, "namespace": "prod"}, "spec": spec, "status": status
        }))
        .unwrap(),
    )
}

fn deployment(name: &str, replicas: i32, ready: i32, gpu: Option<&str>) -> Arc<CachedDeployment> {
    let mut spec = json!({"containers": [{"name": "vllm"}]});
    if let Some(product) = gpu {
        spec["nodeSelector"] = json!({"nvidia.com/gpu.product": product});
    }
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "prod"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}},
            "status": {"replicas": replicas, "readyReplicas": ready}
        }))
        .unwrap(),
    )
}

fn pod(deployment: &str, name: &str, status: Value) -> Arc<CachedPod> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "prod", "labels": {"app": deployment},
                "creationTimestamp": "2026-12-01T10:00:00Z",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": format!("{deployment}-5d8f9"), "uid": "u", "controller": true}]},
            "status": status
        }))
        .unwrap(),
    )
}

fn ready() -> Value {
    json!({"conditions": [{"type": "Ready", "status": "True"}]})
}

fn samples(pods: &[(&str, f64, u64)]) -> ModelSamples {
    ModelSamples {
        namespace: "prod".into(),
        model_id: "m".into(),
        pods: pods
            .iter()
            .map(|(name, kv, queue)| {
                (
                    name.to_string(),
                    PodSample {
                        kv_cache_usage: Some(*kv),
                        queue_length: Some(*queue),
                        served_rps: None,
                        waiting: None,
                        age_seconds: 5.0,
                        stale: false,
                    },
                )
            })
            .collect(),
        request_count: Some(3.0),
    }
}

const NOW: i64 = 1_796_119_200 + 120;

fn target(name: &str) -> Value {
    json!({"scaleTargetRef": {"kind": "Deployment", "name": name}, "modelID": "m", "variantCost": "5"})
}

#[test]
fn variants_carry_their_deployment_their_pods_metrics_and_stuck_pods() {
    let vas = [
        va(
            "a100",
            target("llama-a100"),
            json!({"desiredOptimizedAlloc": {"numReplicas": 2, "accelerator": "A100"}}),
        ),
        va("l4", target("llama-l4"), json!({})),
    ];
    let deployments = [
        deployment("llama-a100", 2, 2, Some("NVIDIA-A100-SXM4-80GB")),
        deployment("llama-l4", 2, 1, None),
    ];
    let pods = [
        pod("llama-a100", "llama-a100-1", ready()),
        pod("llama-a100", "llama-a100-2", ready()),
        pod("llama-l4", "llama-l4-1", ready()),
        pod(
            "llama-l4",
            "llama-l4-2",
            json!({"containerStatuses": [{"name": "vllm", "image": "i", "imageID": "",
            "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}),
        ),
    ];
    let metrics = [samples(&[
        ("llama-a100-1", 0.5, 1),
        ("llama-a100-2", 0.7, 0),
        ("llama-l4-1", 0.9, 3),
        ("gone-pod", 0.1, 0),
    ])];
    let built = build(
        Cluster {
            variant_autoscalings: &vas,
            deployments: &deployments,
            pods: &pods,
            nodes: None,
            actuation: Mode::Metrics,
        },
        &metrics,
        &SaturationConfigSet::default(),
        &ScaleToZeroConfigSet::default(),
        NOW,
    );
    let [a100, l4] = built.snapshot.variants.as_slice() else {
        panic!("{:?}", built.snapshot.variants)
    };
    assert_eq!((&*a100.name, &*a100.target_name), ("a100", "llama-a100"));
    assert_eq!(a100.accelerator, "NVIDIA-A100-SXM4-80GB".into());
    assert_eq!(
        (a100.cost, a100.previous_desired, a100.pods.len()),
        (5.0, 2, 2)
    );
    assert_eq!(
        (
            l4.replicas,
            l4.ready_replicas,
            l4.pods.len(),
            l4.stuck_replicas
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(l4.accelerator, "unknown".into());
    assert_eq!(built.notes[1].stuck[0].0, "llama-l4-2");
    assert_eq!(
        built.notes[1].stuck[0].1.to_string(),
        "container \"vllm\" is in ImagePullBackOff"
    );
    assert_eq!(built.notes[0].accelerator_source, "nodeSelector");
    assert_eq!(
        built.snapshot.request_counts[&("prod".to_owned(), "m".to_owned())],
        3.0
    );
    // The built snapshot is valid input for `wva analyze`.
    let replayed = Snapshot::from_json(&built.snapshot.to_json()).unwrap();
    assert_eq!(replayed, built.snapshot);
}

#[test]
fn missing_invalid_and_shared_targets_are_noted_not_decided() {
    let vas = [
        va("a", target("shared"), json!({})),
        va("b", target("shared"), json!({})),
        va("c", target("nowhere"), json!({})),
        va("d", json!({"modelID": "m"}), json!({})),
        va(
            "e",
            json!({"scaleTargetRef": {"kind": "StatefulSet", "name": "x"}, "modelID": "m"}),
            json!({}),
        ),
        // No spec at all (the CRD schema lets it through): noted, never a panic.
        va("f", Value::Null, Value::Null),
    ];
    let deployments = [deployment("shared", 1, 1, None)];
    let built = build(
        Cluster {
            variant_autoscalings: &vas,
            deployments: &deployments,
            pods: &[],
            nodes: None,
            actuation: Mode::Metrics,
        },
        &[],
        &SaturationConfigSet::default(),
        &ScaleToZeroConfigSet::default(),
        NOW,
    );
    assert_eq!(built.snapshot.variants.len(), 1);
    let targets: BTreeMap<&str, &Target> = built
        .notes
        .iter()
        .map(|n| (n.name.as_str(), &n.target))
        .collect();
    assert_eq!(targets["a"], &Target::Found);
    assert_eq!(targets["b"], &Target::Duplicate("a".into()));
    assert_eq!(targets["c"], &Target::NotFound("nowhere".into()));
    assert!(matches!(targets["d"], Target::Invalid(m) if m.contains("scaleTargetRef.name")));
    assert!(matches!(targets["e"], Target::Invalid(m) if m.contains("StatefulSet")));
    assert!(matches!(targets["f"], Target::Invalid(m) if m.contains("spec.modelID")));
}

/// A leader that died between its `/scale` write (2) and its status write (still 1): in direct
/// mode the count in flight is the target's `spec.replicas`, so the next leader sees a stable
/// variant at 2 and does not "restore" 1; in metrics mode the status count stays the one in
/// flight (the HPA converges to it, as upstream).
#[test]
fn direct_mode_reads_the_count_in_flight_from_the_target_not_the_status() {
    let vas = [va(
        "a100",
        target("llama-a100"),
        json!({"desiredOptimizedAlloc": {"numReplicas": 1, "accelerator": "A100"}}),
    )];
    let deployments = [deployment("llama-a100", 2, 2, None)];
    let pods = [
        pod("llama-a100", "llama-a100-1", ready()),
        pod("llama-a100", "llama-a100-2", ready()),
    ];
    let metrics = [samples(&[
        ("llama-a100-1", 0.5, 0),
        ("llama-a100-2", 0.5, 0),
    ])];
    let decide = |actuation| {
        let built = build(
            Cluster {
                variant_autoscalings: &vas,
                deployments: &deployments,
                pods: &pods,
                nodes: None,
                actuation,
            },
            &metrics,
            &SaturationConfigSet::default(),
            &ScaleToZeroConfigSet::default(),
            NOW,
        );
        let report = crate::core::decide(&built.snapshot, crate::core::Policy::default());
        (
            built.snapshot.variants[0].previous_desired,
            report.decisions[0].target_replicas,
        )
    };
    assert_eq!(decide(Mode::Direct), (2, 2));
    assert_eq!(decide(Mode::Metrics), (1, 1));
}

#[test]
fn pod_times_and_served_rates_are_what_wva_next_reads() {
    let vas = [va("a100", target("llama-a100"), json!({}))];
    let deployments = [deployment("llama-a100", 4, 1, None)];
    let ready_at = json!({"conditions": [{"type": "Ready", "status": "True",
        "lastTransitionTime": "2026-12-01T10:01:30Z"}]});
    let pods = [
        pod("llama-a100", "ready", ready_at),
        // Reporting already (the server is up), not Ready yet: starting.
        pod("llama-a100", "warming", json!({"phase": "Running"})),
        pod("llama-a100", "pending", json!({"phase": "Pending"})),
        pod(
            "llama-a100",
            "stuck",
            json!({"containerStatuses": [{"name": "vllm", "image": "i", "imageID": "",
            "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
        ),
    ];
    let mut metrics = samples(&[("ready", 0.5, 1), ("warming", 0.0, 0)]);
    metrics.pods.get_mut("ready").unwrap().served_rps = Some(4.5);
    let built = build(
        Cluster {
            variant_autoscalings: &vas,
            deployments: &deployments,
            pods: &pods,
            nodes: None,
            actuation: Mode::Direct,
        },
        &[metrics],
        &SaturationConfigSet::default(),
        &ScaleToZeroConfigSet::default(),
        NOW,
    );
    let v = &built.snapshot.variants[0];
    assert_eq!(built.snapshot.time, Some(NOW as f64));
    assert_eq!(
        v.ready_pods,
        [ReadyPod {
            name: "ready".into(),
            startup_seconds: 90.0,
            ready_for_seconds: Some(30.0),
        }]
    );
    let starting: Vec<(&str, f64)> = v
        .starting_pods
        .iter()
        .map(|p| (p.name.as_str(), p.age_seconds))
        .collect();
    assert_eq!(
        starting,
        [("pending", 120.0), ("warming", 120.0)],
        "the stuck pod is no starting pod"
    );
    assert_eq!(v.stuck_replicas, 1);
    assert_eq!(v.pods[0].served_rps, Some(4.5));
    assert_eq!(v.pods[1].served_rps, None);
}
