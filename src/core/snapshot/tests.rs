use serde_json::json;

use super::*;

fn errors(value: serde_json::Value) -> Vec<String> {
    Snapshot::from_value(&value)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn minimal_variant() -> serde_json::Value {
    json!({"name": "v", "namespace": "prod", "modelID": "m", "replicas": 1, "readyReplicas": 1})
}

#[test]
fn defaults_are_filled_in() {
    let s = Snapshot::from_value(
        &json!({"saturationConfig": {"default": {}}, "variants": [minimal_variant()]}),
    )
    .unwrap();
    let v = &s.variants[0];
    assert_eq!(v.target_name, "v".into());
    assert_eq!(v.accelerator, "".into());
    assert_eq!(v.cost, 10.0);
    assert_eq!(v.spec_replicas, 1, "specReplicas defaults to replicas");
    assert_eq!(v.previous_desired, 0);
    assert!(v.pods.is_empty());
    assert!(s.request_counts.is_empty());
}

#[test]
fn pod_metric_defaults_and_whole_numbers() {
    let mut v = minimal_variant();
    v["pods"] = json!([{"name": "p1"}, {"name": "p2", "kvCacheUsage": 1, "queueLength": 3.0}]);
    let s = Snapshot::from_value(&json!({"saturationConfig": {"default": {}}, "variants": [v]}))
        .unwrap();
    assert_eq!(
        s.variants[0].pods[0],
        PodMetrics {
            name: "p1".into(),
            kv_cache_usage: 0.0,
            queue_length: 0,
            served_rps: None,
            waiting: None,
        }
    );
    assert_eq!(s.variants[0].pods[1].queue_length, 3);
}

#[test]
fn every_problem_is_named_by_its_json_path() {
    let got = errors(json!({
        "saturationConfig": {"default": {"kvCacheThreshold": 2}},
        "scaleToZeroConfig": {"default": {"retention_period": "-1m"}},
        "requestCounts": [{"namespace": "prod", "modelID": "m", "count": -1}],
        "variants": [
            {"name": "", "namespace": "prod", "modelID": "m", "replicas": 1, "readyReplicas": 1},
            {"name": "v", "namespace": "prod", "modelID": "m", "replicas": -1, "readyReplicas": 1.5, "cost": "cheap"},
            {"name": "w", "namespace": "prod", "modelID": "m", "replicas": 1, "readyReplicas": 1,
             "pods": [{"name": "p", "kvCacheUsage": -0.2}, {"name": "p", "queueLength": 2.5}, {"kvCacheUsage": 0.5}]},
        ]
    }));
    assert_eq!(
        got,
        [
            "saturationConfig.default: kvCacheThreshold must be between 0 and 1, got 2.00",
            "scaleToZeroConfig.default: retention_period: retention period must be positive, got -1m0s",
            "requestCounts[0].count: must be a number >= 0, got -1",
            "variants[0].name: must not be empty",
            "variants[1].cost: must be a number >= 0, got \"cheap\"",
            "variants[1].replicas: must be an integer in [0, 2147483647], got -1",
            "variants[1].readyReplicas: must be an integer in [0, 2147483647], got 1.5",
            "variants[2].pods[0].kvCacheUsage: must be a number in [0, 1], got -0.2",
            "variants[2].pods[1].queueLength: must be an integer >= 0 (the collector truncates toward zero), got 2.5",
            "variants[2].pods[1].name: duplicate pod name \"p\" within the variant",
            "variants[2].pods[2].name: required: a non-empty string",
        ]
    );
}

#[test]
fn structural_problems() {
    assert_eq!(errors(json!([])), ["$: must be an object, got a list"]);
    let got = errors(json!({"variants": []}));
    assert!(got[0].starts_with("saturationConfig: required"), "{got:?}");
    assert_eq!(
        errors(json!({"saturationConfig": {"default": {}}})),
        ["variants: required: a list"]
    );
    assert!(
        errors(json!({"saturationConfig": {}, "variants": []}))[0]
            .starts_with("saturationConfig.default: required entry is missing")
    );
    assert_eq!(Snapshot::from_json("{").unwrap_err()[0].path, "$",);
}

#[test]
fn duplicates_are_rejected() {
    let got = errors(json!({
        "saturationConfig": {"default": {}},
        "requestCounts": [{"namespace": "p", "modelID": "m", "count": 1}, {"namespace": "p", "modelID": "m", "count": 2}],
        "variants": [minimal_variant(), minimal_variant()]
    }));
    assert_eq!(
        got,
        [
            "requestCounts[1]: duplicate entry for namespace \"p\" and modelID \"m\": at most one per model",
            "variants[1].name: duplicate variant prod/v: variants[0] has the same namespace and name",
        ]
    );
}

#[test]
fn missing_required_variant_fields() {
    let got = errors(
        json!({"saturationConfig": {"default": {}}, "variants": [{"name": "v", "targetName": 3}]}),
    );
    assert_eq!(
        got,
        [
            "variants[0].namespace: required: a non-empty string",
            "variants[0].modelID: required: a non-empty string",
            "variants[0].targetName: must be a string, got 3",
            "variants[0].replicas: required: an integer >= 0",
            "variants[0].readyReplicas: required: an integer >= 0",
        ]
    );
}

#[test]
fn the_gpu_inventory_and_gpus_per_replica_are_read_checked_and_written_back() {
    let mut v = minimal_variant();
    v["gpusPerReplica"] = json!(4);
    let text = json!({
        "saturationConfig": {"default": {"enableLimiter": true}},
        "variants": [v],
        "gpuInventory": {"A100": {"allocatable": 16, "requestedByOthers": 4}, "L4": {"allocatable": 8}}
    });
    let s = Snapshot::from_value(&text).unwrap();
    assert_eq!(s.variants[0].gpus_per_replica, 4);
    let inventory = s.gpu_inventory.as_ref().unwrap();
    assert_eq!(
        inventory["A100"],
        GpuPool {
            allocatable: 16,
            requested_by_others: 4
        }
    );
    assert_eq!(inventory["L4"].requested_by_others, 0);
    assert_eq!(Snapshot::from_json(&s.to_json()).unwrap(), s);
    // Absent: no inventory, one GPU per replica, and neither is written out.
    let plain = Snapshot::from_value(
        &json!({"saturationConfig": {"default": {}}, "variants": [minimal_variant()]}),
    )
    .unwrap();
    assert_eq!(
        (
            plain.gpu_inventory.is_none(),
            plain.variants[0].gpus_per_replica
        ),
        (true, 1)
    );
    assert!(!plain.to_json().contains("gpu"));

    let mut zero = minimal_variant();
    zero["gpusPerReplica"] = json!(0);
    assert_eq!(
        errors(json!({
            "saturationConfig": {"default": {}}, "variants": [zero],
            "gpuInventory": {"NVIDIA-A100-SXM4-80GB": {"allocatable": 8}, "L4": {"allocatable": -1}, "H100": 3}
        })),
        [
            "variants[0].gpusPerReplica: must be an integer >= 1 (a replica that requests no GPU counts as 1)",
            "gpuInventory.H100: must be an object, got a number",
            "gpuInventory.L4.allocatable: must be an integer >= 0, got -1",
            "gpuInventory.NVIDIA-A100-SXM4-80GB: accelerator types are keyed by their normalised name: use \"A100\"",
        ]
    );
}

#[test]
fn a_pods_served_rate_is_optional_checked_and_round_trips() {
    let mut v = minimal_variant();
    v["pods"] = json!([{"name": "p1", "servedRps": 2.5}, {"name": "p2", "servedRps": null}]);
    let s = Snapshot::from_value(&json!({"saturationConfig": {"default": {}}, "variants": [v]}))
        .unwrap();
    assert_eq!(s.variants[0].pods[0].served_rps, Some(2.5));
    assert_eq!(s.variants[0].pods[1].served_rps, None);
    let again = Snapshot::from_json(&s.to_json()).unwrap();
    assert_eq!(again, s);
    assert!(
        !s.to_json().contains("\"servedRps\": null"),
        "absent, not null"
    );
    let mut v = minimal_variant();
    v["pods"] = json!([{"name": "p1", "servedRps": -1}, {"name": "p2", "servedRps": "fast"}]);
    let got = errors(json!({"saturationConfig": {"default": {}}, "variants": [v]}));
    assert_eq!(
        got,
        [
            "variants[0].pods[0].servedRps: must be a number >= 0 (requests per second), got -1",
            "variants[0].pods[1].servedRps: must be a number >= 0 (requests per second), got \"fast\"",
        ]
    );
}

#[test]
fn a_namespace_with_a_slash_is_refused() {
    // wva-next's state keys are `namespace/name`: a `/` in a namespace would make them ambiguous.
    let got = errors(json!({"saturationConfig": {"default": {}}, "variants": [
        {"name": "v", "namespace": "a/b", "modelID": "m", "replicas": 1, "readyReplicas": 1}
    ]}));
    assert_eq!(
        got,
        [
            "variants[0].namespace: must not contain '/' (a Kubernetes namespace is a DNS-1123 label)"
        ]
    );
}
