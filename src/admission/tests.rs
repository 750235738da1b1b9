//! Handler-level tests: parsed review in, AdmissionReview response out; and arbitrary JSON never
//! panics either handler.

use base64::Engine as _;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn review(operation: &str, kind: &str, object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "operation": operation,
                    "kind": {"group": "llmd.ai", "version": "v1alpha1", "kind": kind},
                    "namespace": "prod", "name": "v", "object": object, "dryRun": false}
    }))
    .unwrap()
}

fn run(route: Route, body: &[u8]) -> Value {
    let request = parse_review(body).unwrap();
    handle(
        route,
        &request,
        &ClusterFacts::default(),
        &ConfigMapSettings::default(),
    )
}

#[test]
fn mutate_returns_a_base64_json_patch() {
    let body = review(
        "CREATE",
        "VariantAutoscaling",
        json!({"metadata": {"name": "v"}, "spec": {"scaleTargetRef": {"name": "d"}, "modelID": "m"}}),
    );
    let response = run(Route::MutateVariantAutoscaling, &body);
    assert_eq!(response["response"]["allowed"], true);
    assert_eq!(response["response"]["patchType"], "JSONPatch");
    let patch = base64::engine::general_purpose::STANDARD
        .decode(response["response"]["patch"].as_str().unwrap())
        .unwrap();
    let patch: Value = serde_json::from_slice(&patch).unwrap();
    assert_eq!(patch.as_array().unwrap().len(), 3, "{patch}");
}

#[test]
fn validate_denies_with_every_message() {
    let body = review(
        "CREATE",
        "VariantAutoscaling",
        json!({"metadata": {"name": "v"}, "spec": {"modelID": "", "variantCost": "abc"}}),
    );
    let response = run(Route::ValidateVariantAutoscaling, &body);
    assert_eq!(
        response["response"]["uid"],
        "705ab4f5-6393-11e8-b7cc-42010a800002"
    );
    assert_eq!(response["response"]["allowed"], false);
    let message = response["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("spec.scaleTargetRef: Required value")
            && message.contains("spec.modelID: Required value")
            && message.contains("spec.variantCost: Invalid value: \"abc\""),
        "{message}"
    );
}

#[test]
fn a_misrouted_kind_is_allowed_with_a_warning() {
    let body = review("CREATE", "Pod", json!({"metadata": {"name": "p"}}));
    let response = run(Route::ValidateVariantAutoscaling, &body);
    assert_eq!(response["response"]["allowed"], true);
    assert!(
        response["response"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("not Pod")
    );
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        prop_oneof![
            Just("CREATE"),
            Just("UPDATE"),
            Just("DELETE"),
            Just("Deployment"),
            Just("10.0"),
            Just("")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop_oneof![
            Just("spec".to_owned()),
            Just("scaleTargetRef".to_owned()),
            Just("name".to_owned()),
            Just("kind".to_owned()),
            Just("modelID".to_owned()),
            Just("variantCost".to_owned()),
            Just("metadata".to_owned()),
            Just("labels".to_owned()),
            Just("data".to_owned()),
            Just("default".to_owned()),
            Just("apiVersion".to_owned()),
            ".{0,6}".prop_map(String::from),
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(keys, inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any JSON as the object under review: never a panic, always a well-formed response.
    #[test]
    fn arbitrary_objects_get_a_well_formed_answer(object in arbitrary_json(), old in arbitrary_json(), op in 0usize..4) {
        let operation = ["CREATE", "UPDATE", "DELETE", "CONNECT"][op];
        let mut body: Value = serde_json::from_slice(&review(operation, "VariantAutoscaling", object.clone())).unwrap();
        body["request"]["oldObject"] = old;
        let bytes = serde_json::to_vec(&body).unwrap();
        if op < 2 && !object.is_object() {
            // A CREATE or UPDATE without an object is an unreadable review (400), not a verdict.
            prop_assert!(parse_review(&bytes).is_err());
            return Ok(());
        }
        for route in Route::ALL {
            let request = parse_review(&bytes).unwrap();
            let response = handle(route, &request, &ClusterFacts { existing: Some(vec![]), target_exists: Some(false) }, &ConfigMapSettings::default());
            prop_assert_eq!(&response["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
            prop_assert!(response["response"]["allowed"].is_boolean());
            if response["response"]["allowed"] == false {
                prop_assert!(!response["response"]["status"]["message"].as_str().unwrap().is_empty());
            }
        }
    }

    /// Any JSON as the whole body: parsed or refused, never a panic.
    #[test]
    fn arbitrary_bodies_never_panic(body in arbitrary_json()) {
        let bytes = serde_json::to_vec(&body).unwrap();
        if let Ok(request) = parse_review(&bytes) {
            for route in Route::ALL {
                let _ = handle(route, &request, &ClusterFacts::default(), &ConfigMapSettings::default());
            }
        }
    }

    /// Arbitrary requests inside a valid envelope reach `handle` on every route and always get
    /// a well-formed answer echoing the uid.
    #[test]
    fn arbitrary_requests_in_a_valid_envelope_reach_handle(request in arbitrary_request()) {
        let body = serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request
        })).unwrap();
        let parsed = parse_review(&body);
        // Only a request without a usable uid or operation may be refused before `handle`.
        let uid = request.get("uid").and_then(Value::as_str).filter(|u| !u.is_empty());
        let operation = request.get("operation").and_then(Value::as_str);
        let has_object = request.get("object").is_some_and(Value::is_object);
        let readable = uid.is_some()
            && match operation {
                Some("CREATE" | "UPDATE") => has_object,
                Some("DELETE" | "CONNECT") => true,
                _ => false,
            };
        prop_assert_eq!(parsed.is_ok(), readable, "{:?}", parsed);
        if let Ok(parsed) = parsed {
            for route in Route::ALL {
                let response = handle(route, &parsed, &ClusterFacts { existing: Some(vec![]), target_exists: Some(true) }, &ConfigMapSettings::default());
                prop_assert_eq!(response["response"]["uid"].as_str(), uid);
                prop_assert!(response["response"]["allowed"].is_boolean());
                if response["response"]["allowed"] == false {
                    prop_assert!(!response["response"]["status"]["message"].as_str().unwrap().is_empty());
                }
            }
        }
    }

    /// The ConfigMap route on arbitrary wva ConfigMaps (right namespace and names, arbitrary
    /// data): a verdict every time, and a denial always says why.
    #[test]
    fn config_map_reviews_of_arbitrary_data_get_a_verdict(config_map in arbitrary_config_map(), op in 0usize..2) {
        let operation = ["CREATE", "UPDATE"][op];
        let body = review(operation, "ConfigMap", config_map);
        let request = parse_review(&body).unwrap();
        let response = handle(Route::ValidateConfig, &request, &ClusterFacts::default(), &ConfigMapSettings::default());
        prop_assert_eq!(&response["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
        if response["response"]["allowed"] == false {
            let message = response["response"]["status"]["message"].as_str().unwrap();
            prop_assert!(!message.is_empty());
        }
    }

    /// The mutating patch always applies to the object it was made for, and is idempotent.
    #[test]
    fn mutation_is_idempotent(object in prop_oneof![arbitrary_va(), arbitrary_json()]) {
        let mut patched = object.clone();
        let applied = json_patch::patch(&mut patched, &mutate::patch(&object));
        prop_assert!(applied.is_ok(), "our own patch does not apply to {}: {:?}", object, applied);
        prop_assert!(mutate::patch(&patched).0.is_empty(), "second patch for {}", patched);
    }
}

/// A request object with every field arbitrary but often plausible.
fn arbitrary_request() -> impl Strategy<Value = Value> {
    let uid = prop_oneof![
        Just(Value::from("705ab4f5")),
        Just(Value::from("")),
        arbitrary_json()
    ];
    let operation = prop_oneof![
        Just(Value::from("CREATE")),
        Just(Value::from("UPDATE")),
        Just(Value::from("DELETE")),
        Just(Value::from("CONNECT")),
        arbitrary_json()
    ];
    let kind = prop_oneof![
        Just(json!({"group": "llmd.ai", "version": "v1alpha1", "kind": "VariantAutoscaling"})),
        Just(json!({"group": "", "version": "v1", "kind": "ConfigMap"})),
        arbitrary_json()
    ];
    let object = prop_oneof![arbitrary_va(), arbitrary_config_map(), arbitrary_json()];
    let old_object = prop_oneof![arbitrary_va(), arbitrary_json()];
    (
        uid,
        operation,
        kind,
        object,
        old_object,
        arbitrary_json(),
        arbitrary_json(),
    )
        .prop_map(
            |(uid, operation, kind, object, old_object, namespace, dry_run)| {
                json!({"uid": uid, "operation": operation, "kind": kind, "namespace": namespace,
                   "name": "v", "object": object, "oldObject": old_object, "dryRun": dry_run})
            },
        )
}

/// A VariantAutoscaling-shaped object with arbitrary values where the rules look.
fn arbitrary_va() -> impl Strategy<Value = Value> {
    (arbitrary_json(), arbitrary_json(), arbitrary_json(), arbitrary_json()).prop_map(
        |(name, kind, model, cost)| {
            json!({"apiVersion": "llmd.ai/v1alpha1", "kind": "VariantAutoscaling",
                   "metadata": {"name": "v", "labels": {"inference.optimization/acceleratorName": model.clone()}},
                   "spec": {"scaleTargetRef": {"kind": kind, "name": name}, "modelID": model, "variantCost": cost}})
        },
    )
}

/// A wva ConfigMap (the namespace and names the webhook checks) with arbitrary data: values
/// that are YAML-ish text, arbitrary text, or not strings at all.
fn arbitrary_config_map() -> impl Strategy<Value = Value> {
    let name = prop_oneof![
        Just(crate::config::saturation::CONFIG_MAP_NAME),
        Just(crate::config::scale_to_zero::CONFIG_MAP_NAME),
    ];
    let value = prop_oneof![
        Just(Value::from(
            "kvCacheThreshold: 0.8\nqueueLengthThreshold: 5\nkvSpareTrigger: 0.1\nqueueSpareTrigger: 3"
        )),
        Just(Value::from(
            "modelID: m\nenableScaleToZero: true\nretentionPeriod: 10m"
        )),
        Just(Value::from("kvCacheThreshold: [1, {a: b}]\n<<: *x")),
        ".{0,40}".prop_map(Value::from),
        arbitrary_json(),
    ];
    let key = prop_oneof![
        Just("default".to_owned()),
        "[a-z0-9.-]{0,8}".prop_map(String::from)
    ];
    (name, proptest::collection::btree_map(key, value, 0..4)).prop_map(|(name, data)| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": "workload-variant-autoscaler-system"},
               "data": Value::Object(data.into_iter().collect())})
    })
}
