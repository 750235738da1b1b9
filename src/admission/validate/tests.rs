use serde_json::{Value, json};

use super::*;

fn va(spec: Value) -> Value {
    json!({"apiVersion": "llmd.ai/v1alpha1", "kind": "VariantAutoscaling",
           "metadata": {"name": "llama", "namespace": "prod", "labels": {ACCELERATOR_LABEL: "A100"}},
           "spec": spec})
}

fn good_spec() -> Value {
    json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llama-decode"}, "modelID": "meta/llama-3.1-8b", "variantCost": "10.0"})
}

fn messages(object: &Value) -> Vec<String> {
    validate_variant_autoscaling(
        Operation::Create,
        "prod",
        object,
        None,
        &ClusterFacts::default(),
    )
    .violations
    .iter()
    .map(ToString::to_string)
    .collect()
}

fn with(spec_patch: Value) -> Value {
    let mut spec = good_spec();
    for (k, v) in spec_patch.as_object().unwrap() {
        spec[k] = v.clone();
    }
    va(spec)
}

#[test]
fn a_valid_va_passes_without_warnings() {
    let verdict = validate_variant_autoscaling(
        Operation::Create,
        "prod",
        &va(good_spec()),
        None,
        &ClusterFacts::default(),
    );
    assert!(verdict.allowed(), "{:?}", verdict.violations);
    assert!(verdict.warnings.is_empty(), "{:?}", verdict.warnings);
}

#[test]
fn table_of_violations() {
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"apiVersion": "llmd.ai/v1alpha1", "kind": "VariantAutoscaling", "metadata": {"name": "x", "labels": {ACCELERATOR_LABEL: "A100"}}}),
            vec![
                "spec: Required value: a VariantAutoscaling needs spec.scaleTargetRef (the Deployment to scale) and spec.modelID",
            ],
        ),
        (
            va(json!({"modelID": "m"})),
            vec![
                "spec.scaleTargetRef: Required value: name the Deployment to scale, e.g. {kind: Deployment, name: my-model-decode}",
            ],
        ),
        (
            with(json!({"scaleTargetRef": {"kind": "Deployment"}})),
            vec!["spec.scaleTargetRef.name: Required value"],
        ),
        (
            with(json!({"scaleTargetRef": {"kind": "Deployment", "name": ""}})),
            vec!["spec.scaleTargetRef.name: Required value"],
        ),
        (
            with(json!({"scaleTargetRef": {"kind": "Deployment", "name": "Llama_Decode"}})),
            vec![
                "spec.scaleTargetRef.name: Invalid value: \"Llama_Decode\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            ],
        ),
        (
            with(json!({"scaleTargetRef": {"kind": "StatefulSet", "name": "d"}})),
            vec![
                "spec.scaleTargetRef.kind: Unsupported value: \"StatefulSet\": supported values: \"Deployment\"",
            ],
        ),
        (
            with(json!({"scaleTargetRef": {"name": "d"}})),
            vec!["spec.scaleTargetRef.kind: Required value: supported kinds: Deployment"],
        ),
        (
            with(
                json!({"scaleTargetRef": {"kind": "Deployment", "name": "d", "apiVersion": "extensions/v1beta1"}}),
            ),
            vec![
                "spec.scaleTargetRef.apiVersion: Invalid value: \"extensions/v1beta1\": must be apps/v1 for kind Deployment",
            ],
        ),
        (
            with(json!({"scaleTargetRef": "d"})),
            vec!["spec.scaleTargetRef: Invalid value: \"d\": must be an object with kind and name"],
        ),
        (
            with(json!({"modelID": null})),
            vec![
                "spec.modelID: Required value: the model name as vLLM reports it in its model_name metric label",
            ],
        ),
        (
            with(json!({"modelID": ""})),
            vec!["spec.modelID: Required value"],
        ),
        (
            with(json!({"modelID": "m".repeat(513)})),
            vec!["spec.modelID: Too long: may not be more than 512 bytes"],
        ),
        (
            with(json!({"modelID": "llama\"} or vector(1) #\nx"})),
            vec![
                "spec.modelID: Invalid value: \"llama\\\"} or vector(1) #\\nx\": must not contain control characters (newlines, tabs, ...)",
            ],
        ),
        (
            with(json!({"modelID": 7})),
            vec!["spec.modelID: Invalid value: 7: must be a string"],
        ),
        (
            with(json!({"variantCost": "abc"})),
            vec![
                "spec.variantCost: Invalid value: \"abc\": must be a non-negative decimal number such as \"10\" or \"12.5\"",
            ],
        ),
        (
            with(json!({"variantCost": "-1"})),
            vec![
                "spec.variantCost: Invalid value: \"-1\": must be a non-negative decimal number such as \"10\" or \"12.5\"",
            ],
        ),
        (
            with(json!({"variantCost": ""})),
            vec![
                "spec.variantCost: Invalid value: \"\": must be a non-negative decimal number such as \"10\" or \"12.5\"",
            ],
        ),
        (
            with(json!({"variantCost": 10})),
            vec![
                "spec.variantCost: Invalid value: 10: must be a non-negative decimal number such as \"10\" or \"12.5\"",
            ],
        ),
        (
            with(json!({"variantCost": "9".repeat(400)})),
            vec!["must be a finite number"],
        ),
    ];
    for (object, expected) in cases {
        let got = messages(&object);
        assert_eq!(got.len(), expected.len(), "{object}: {got:#?}");
        for (g, e) in got.iter().zip(&expected) {
            assert!(g == e || g.ends_with(e), "{object}:\n got {g}\nwant {e}");
        }
    }
}

#[test]
fn every_violation_is_listed_at_once() {
    let object = json!({"metadata": {"name": "x", "labels": {ACCELERATOR_LABEL: "A"}},
                        "spec": {"scaleTargetRef": {"kind": "Job", "name": ""}, "modelID": "", "variantCost": "x"}});
    let got = messages(&object);
    assert_eq!(got.len(), 5, "{got:#?}");
    assert!(got.iter().any(|m| m.starts_with("metadata.labels[inference.optimization/acceleratorName]: Invalid value: \"A\": must be at least 2 characters")));
}

#[test]
fn accepted_values_at_the_limits() {
    for spec in [
        json!({"scaleTargetRef": {"kind": "Deployment", "name": "d"}, "modelID": "m".repeat(512)}),
        json!({"scaleTargetRef": {"kind": "Deployment", "name": "a.b-c"}, "modelID": "org/model \"quoted\" {braces} \\ ünïcode"}),
        json!({"scaleTargetRef": {"kind": "Deployment", "name": "d", "apiVersion": ""}, "modelID": "m", "variantCost": "0"}),
        json!({"scaleTargetRef": {"kind": "Deployment", "name": "d"}, "modelID": "m", "variantCost": "12.375"}),
    ] {
        assert!(messages(&va(spec.clone())).is_empty(), "{spec}");
    }
}

#[test]
fn warnings_do_not_deny() {
    let mut object = va(good_spec());
    object["metadata"]["labels"] = json!({});
    let facts = ClusterFacts {
        existing: Some(vec![]),
        target_exists: Some(false),
    };
    let verdict = validate_variant_autoscaling(Operation::Create, "prod", &object, None, &facts);
    assert!(verdict.allowed());
    assert_eq!(verdict.warnings.len(), 2, "{:?}", verdict.warnings);
    assert!(verdict.warnings[0].contains("acceleratorName] is not set"));
    assert_eq!(
        verdict.warnings[1],
        "spec.scaleTargetRef: Deployment \"llama-decode\" does not exist in namespace \"prod\" yet; the VariantAutoscaling waits for it"
    );
}

#[test]
fn update_warns_about_moving_target_or_model() {
    let old = va(good_spec());
    let new = with(
        json!({"scaleTargetRef": {"kind": "Deployment", "name": "other"}, "modelID": "ibm/granite"}),
    );
    let verdict = validate_variant_autoscaling(
        Operation::Update,
        "prod",
        &new,
        Some(&old),
        &ClusterFacts::default(),
    );
    assert!(verdict.allowed());
    assert_eq!(
        verdict.warnings,
        [
            "spec.scaleTargetRef changed from Deployment/llama-decode: the variant now scales another workload",
            "spec.modelID changed from \"meta/llama-3.1-8b\" to \"ibm/granite\": the variant moves to another model",
        ]
    );
}

#[test]
fn a_second_va_on_the_same_workload_is_denied_naming_the_first() {
    let existing = vec![
        ExistingVa {
            name: "first".into(),
            target_kind: "Deployment".into(),
            target_name: "llama-decode".into(),
        },
        ExistingVa {
            name: "llama".into(),
            target_kind: "Deployment".into(),
            target_name: "llama-decode".into(),
        },
    ];
    let facts = ClusterFacts {
        existing: Some(existing),
        target_exists: Some(true),
    };
    let verdict =
        validate_variant_autoscaling(Operation::Create, "prod", &va(good_spec()), None, &facts);
    assert_eq!(
        verdict.violations.len(),
        1,
        "the object itself (same name, an UPDATE) does not count"
    );
    assert_eq!(
        verdict.violations[0].to_string(),
        "spec.scaleTargetRef: Duplicate value: Deployment/llama-decode: VariantAutoscaling \"first\" in namespace \"prod\" already targets it; one VariantAutoscaling per workload"
    );
}

#[test]
fn delete_and_connect_are_always_allowed() {
    for op in [Operation::Delete, Operation::Connect] {
        assert!(
            validate_variant_autoscaling(op, "prod", &json!({}), None, &ClusterFacts::default())
                .allowed()
        );
        assert!(validate_config_map(op, &json!({}), &ConfigMapSettings::default()).allowed());
    }
}

fn config_map(name: &str, namespace: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data})
}

#[test]
fn wva_config_maps_must_pass_check_config() {
    let settings = ConfigMapSettings::default();
    let ns = settings.namespace.clone();
    let bad = config_map(
        "saturation-scaling-config",
        &ns,
        json!({"default": "kvCacheThreshold: 1.5\n"}),
    );
    let verdict = validate_config_map(Operation::Create, &bad, &settings);
    assert_eq!(
        verdict.messages,
        ["saturation-scaling-config/default: kvCacheThreshold must be between 0 and 1, got 1.50"]
    );
    let good = config_map(
        "saturation-scaling-config",
        &ns,
        json!({"default": "kvCacheThreshold: 0.8\n"}),
    );
    assert!(validate_config_map(Operation::Update, &good, &settings).allowed());
    let stz = config_map(
        "model-scale-to-zero-config",
        &ns,
        json!({"default": "retention_period: soon\n"}),
    );
    assert!(!validate_config_map(Operation::Create, &stz, &settings).allowed());
    // Same names elsewhere, or other ConfigMaps: not ours.
    assert!(
        validate_config_map(
            Operation::Create,
            &config_map(
                "saturation-scaling-config",
                "team-a",
                json!({"default": "x: ["})
            ),
            &settings
        )
        .allowed()
    );
    assert!(
        validate_config_map(
            Operation::Create,
            &config_map("other", &ns, json!({"default": "x: ["})),
            &settings
        )
        .allowed()
    );
}

#[test]
fn helm_prefixed_and_custom_names_are_validated_like_check_config() {
    let settings = ConfigMapSettings {
        saturation_name: "team-saturation".into(),
        ..ConfigMapSettings::default()
    };
    let ns = settings.namespace.clone();
    for name in [
        "wva-saturation-scaling-config",
        "team-saturation",
        "release-model-scale-to-zero-config",
    ] {
        let bad = config_map(
            name,
            &ns,
            json!({"default": "kvCacheThreshold: 9\nretention_period: soon\n"}),
        );
        assert!(
            !validate_config_map(Operation::Update, &bad, &settings).allowed(),
            "{name}"
        );
    }
}

#[test]
fn updates_ratchet_old_violations_become_warnings() {
    let shared = ClusterFacts {
        existing: Some(vec![ExistingVa {
            name: "first".into(),
            target_kind: "Deployment".into(),
            target_name: "llama-decode".into(),
        }]),
        target_exists: Some(true),
    };
    // Migrated from upstream: two VAs already share the Deployment; a label-only update passes.
    let old = va(good_spec());
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"]["team"] = json!("a");
    let verdict =
        validate_variant_autoscaling(Operation::Update, "prod", &relabelled, Some(&old), &shared);
    assert!(verdict.allowed(), "{:?}", verdict.violations);
    assert!(
        verdict.warnings.iter().any(
            |w| w.contains("Duplicate value") && w.contains("the object was already like this")
        ),
        "{:?}",
        verdict.warnings
    );
    // A violation the update introduces is denied, next to the inherited one.
    let worse = with(json!({"variantCost": "-1"}));
    let verdict =
        validate_variant_autoscaling(Operation::Update, "prod", &worse, Some(&old), &shared);
    assert_eq!(verdict.violations.len(), 1, "{:?}", verdict.violations);
    assert!(
        verdict.violations[0]
            .to_string()
            .starts_with("spec.variantCost")
    );
    // The same VA created now is denied.
    assert!(
        !validate_variant_autoscaling(Operation::Create, "prod", &relabelled, None, &shared)
            .allowed()
    );
}

#[test]
fn objects_being_deleted_are_always_allowed() {
    let mut deleting = va(json!({"modelID": ""}));
    deleting["metadata"]["deletionTimestamp"] = json!("2026-12-01T00:00:00Z");
    deleting["metadata"]["finalizers"] = json!([]);
    let verdict = validate_variant_autoscaling(
        Operation::Update,
        "prod",
        &deleting,
        Some(&va(json!({"modelID": ""}))),
        &ClusterFacts::default(),
    );
    assert_eq!(verdict, Verdict::default());
}

#[test]
fn long_values_are_echoed_cut_with_their_length() {
    let huge = "x".repeat(3_000_000);
    let verdict = validate_variant_autoscaling(
        Operation::Create,
        "prod",
        &with(json!({"variantCost": huge})),
        None,
        &ClusterFacts::default(),
    );
    let message = verdict.message();
    assert!(message.len() < 400, "{} bytes", message.len());
    assert!(message.contains("… (3000002 characters)"), "{message}");
}

#[test]
fn the_shipped_match_condition_is_the_recognised_set() {
    let manifest = include_str!("../../../webhooks/validating-webhook-configuration.yaml");
    let expression =
        crate::config::manifest::match_condition(crate::config::saturation::CONFIG_MAP_NAME);
    assert!(
        manifest.contains(&format!("expression: \"{expression}\"")),
        "webhooks/validating-webhook-configuration.yaml must use: {expression}"
    );
    assert!(
        crate::config::manifest::match_condition("team-saturation")
            .starts_with("object.metadata.name == 'team-saturation' || ")
    );
}
