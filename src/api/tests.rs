use super::*;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/crds/llmd.ai_variantautoscalings.yaml"
);
const UPSTREAM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/crd/upstream-v0.5.0.yaml"
);

/// The committed CRD is what `wva crd` prints. `WVA_UPDATE_GOLDEN=1 cargo test` rewrites it.
#[test]
fn committed_crd_matches_generated() {
    let generated = crd_yaml();
    if std::env::var_os("WVA_UPDATE_GOLDEN").is_some() {
        std::fs::write(GOLDEN, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(GOLDEN).unwrap();
    assert!(
        committed == generated,
        "crds/llmd.ai_variantautoscalings.yaml is stale: run `WVA_UPDATE_GOLDEN=1 cargo test --lib api` (or `wva crd > crds/llmd.ai_variantautoscalings.yaml`) and commit the result"
    );
}

/// Keeps what decides acceptance (types, formats, bounds, patterns, required, defaults,
/// x-kubernetes-*), drops descriptions, and reads every number as f64.
fn acceptance_view(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != "description")
                .map(|(k, v)| (k.clone(), acceptance_view(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(acceptance_view).collect()),
        Value::Number(n) => json!(n.as_f64().unwrap()),
        other => other.clone(),
    }
}

fn version_schema(crd: &Value) -> Value {
    let mut schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone();
    // The API server always keeps apiVersion, kind and metadata; controller-gen lists them.
    for field in ["apiVersion", "kind", "metadata"] {
        schema["properties"].as_object_mut().unwrap().remove(field);
    }
    acceptance_view(&schema)
}

#[test]
fn schema_accepts_exactly_what_upstream_accepts() {
    let ours = serde_json::to_value(crd()).unwrap();
    let upstream: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(UPSTREAM).unwrap()).unwrap();
    assert_eq!(version_schema(&ours), version_schema(&upstream));
    for pointer in [
        "/spec/group",
        "/spec/names",
        "/spec/scope",
        "/spec/versions/0/name",
        "/spec/versions/0/served",
        "/spec/versions/0/storage",
        "/spec/versions/0/subresources",
        "/spec/versions/0/additionalPrinterColumns",
    ] {
        assert_eq!(
            ours.pointer(pointer),
            upstream.pointer(pointer),
            "{pointer}"
        );
    }
}

#[test]
fn crd_has_no_nullable_and_no_required_spec() {
    let yaml = crd_yaml();
    assert!(!yaml.contains("nullable"));
    let crd = serde_json::to_value(crd()).unwrap();
    assert!(
        crd.pointer("/spec/versions/0/schema/openAPIV3Schema/required")
            .is_none()
    );
}

#[test]
fn every_field_has_a_description_for_kubectl_explain() {
    fn walk(path: &str, schema: &Value, missing: &mut Vec<String>) {
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (name, child) in props {
                let child_path = format!("{path}.{name}");
                if child.get("description").is_none() {
                    missing.push(child_path.clone());
                }
                walk(&child_path, child, missing);
            }
        }
        if let Some(items) = schema.get("items") {
            walk(&format!("{path}[]"), items, missing);
        }
    }
    let crd = serde_json::to_value(crd()).unwrap();
    let mut missing = Vec::new();
    walk(
        "",
        &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
        &mut missing,
    );
    assert!(
        missing.is_empty(),
        "fields without description: {missing:?}"
    );
}

fn status_with(accelerator: &str) -> VariantAutoscalingStatus {
    VariantAutoscalingStatus {
        desired_optimized_alloc: Some(OptimizedAlloc {
            last_run_time: None,
            accelerator: accelerator.into(),
            num_replicas: 3,
        }),
        ..Default::default()
    }
}

#[test]
fn empty_status_serialises_to_an_empty_object() {
    assert_eq!(
        serde_json::to_value(VariantAutoscalingStatus::default()).unwrap(),
        json!({})
    );
}

#[test]
fn status_never_emits_an_accelerator_the_crd_rejects() {
    for accelerator in ["", "A"] {
        let value = serde_json::to_value(status_with(accelerator)).unwrap();
        assert_eq!(value, json!({}), "accelerator {accelerator:?}");
        assert!(
            !serde_json::to_string(&status_with(accelerator))
                .unwrap()
                .contains("accelerator")
        );
    }
    assert_eq!(
        serde_json::to_value(status_with("A100")).unwrap(),
        json!({"desiredOptimizedAlloc": {"accelerator": "A100", "numReplicas": 3}})
    );
}

#[test]
fn upstream_go_zero_value_status_reads_back() {
    // What the Go controller writes for an empty status (docs/upstream.md#crd).
    let go_status = json!({"desiredOptimizedAlloc": {"accelerator": "", "numReplicas": 0}, "actuation": {"applied": false}});
    let status: VariantAutoscalingStatus = serde_json::from_value(go_status).unwrap();
    let written = serde_json::to_value(&status).unwrap();
    assert_eq!(written, json!({"actuation": {"applied": false}}));
}

#[test]
fn va_round_trips_with_all_fields() {
    let va_json = json!({
        "apiVersion": "llmd.ai/v1alpha1", "kind": "VariantAutoscaling",
        "metadata": {"name": "llama-a100", "namespace": "prod", "labels": {ACCELERATOR_LABEL: "A100"}},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llama-a100"},
                 "modelID": "meta/llama-3.1-8b", "variantCost": "12.5"},
        "status": {"desiredOptimizedAlloc": {"accelerator": "A100", "numReplicas": 2, "lastRunTime": "2026-11-28T10:00:00Z"},
                   "conditions": [{"type": "MetricsAvailable", "status": "True", "reason": "MetricsAvailable",
                                   "message": "ok", "lastTransitionTime": "2026-11-28T10:00:00Z", "observedGeneration": 1}]}
    });
    let va: VariantAutoscaling = serde_json::from_value(va_json.clone()).unwrap();
    assert_eq!(va.cost(), 12.5);
    assert_eq!(va.accelerator(), "A100");
    assert_eq!(serde_json::to_value(&va).unwrap(), va_json);
}

#[test]
fn variant_cost_parses_like_upstream() {
    assert_eq!(parse_variant_cost(Some("12.5")), 12.5);
    assert_eq!(parse_variant_cost(Some("0")), 0.0);
    assert_eq!(parse_variant_cost(Some("")), DEFAULT_VARIANT_COST);
    assert_eq!(parse_variant_cost(Some("abc")), DEFAULT_VARIANT_COST);
    assert_eq!(parse_variant_cost(Some("NaN")), DEFAULT_VARIANT_COST);
    assert_eq!(parse_variant_cost(Some("inf")), DEFAULT_VARIANT_COST);
    assert_eq!(parse_variant_cost(None), DEFAULT_VARIANT_COST);
}

fn at(seconds: i64) -> Time {
    Time(Timestamp::from_second(seconds).unwrap())
}

#[test]
fn set_condition_follows_set_status_condition() {
    let mut conditions = Vec::new();
    assert!(set_condition(
        &mut conditions,
        TYPE_TARGET_RESOLVED,
        STATUS_TRUE,
        REASON_TARGET_FOUND,
        "found",
        Some(1),
        &at(100)
    ));
    assert_eq!(conditions[0].last_transition_time, at(100));
    // Same status: the transition time stays, the rest is overwritten.
    assert!(set_condition(
        &mut conditions,
        TYPE_TARGET_RESOLVED,
        STATUS_TRUE,
        REASON_TARGET_FOUND,
        "still found",
        Some(2),
        &at(200)
    ));
    assert_eq!(conditions[0].last_transition_time, at(100));
    assert_eq!(conditions[0].message, "still found");
    assert_eq!(conditions[0].observed_generation, Some(2));
    // Nothing new: no change reported.
    assert!(!set_condition(
        &mut conditions,
        TYPE_TARGET_RESOLVED,
        STATUS_TRUE,
        REASON_TARGET_FOUND,
        "still found",
        Some(2),
        &at(300)
    ));
    // Status flips: the transition time moves.
    assert!(set_condition(
        &mut conditions,
        TYPE_TARGET_RESOLVED,
        STATUS_FALSE,
        REASON_TARGET_NOT_FOUND,
        "gone",
        Some(2),
        &at(400)
    ));
    assert_eq!(conditions[0].last_transition_time, at(400));
    assert_eq!(conditions.len(), 1);
    set_condition(
        &mut conditions,
        TYPE_METRICS_AVAILABLE,
        STATUS_FALSE,
        REASON_METRICS_UNAVAILABLE,
        "",
        None,
        &at(500),
    );
    assert_eq!(conditions.len(), 2);
    assert_eq!(
        find_condition(&conditions, TYPE_METRICS_AVAILABLE)
            .unwrap()
            .reason,
        REASON_METRICS_UNAVAILABLE
    );
}
