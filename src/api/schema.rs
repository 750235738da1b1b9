//! Schema pieces that schemars cannot express with attributes, and the post-processing that
//! makes the derived CRD schema match controller-gen's output for upstream's Go types.

use schemars::{Schema, SchemaGenerator, json_schema};
use serde_json::Value;

/// `spec.variantCost`: a decimal string with the API-server default "10.0".
pub fn variant_cost(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": r"^\d+(\.\d+)?$",
        "default": super::DEFAULT_VARIANT_COST_TEXT,
        "description": "VariantCost is the cost per replica of this variant, a non-negative decimal string (e.g. \"10.0\"). Scale-up goes to the cheapest variant that can take a replica, scale-down removes one from the most expensive. Defaults to \"10.0\"."
    })
}

/// A `metav1.Time` field.
pub fn date_time(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "format": "date-time"})
}

/// A Go `int` field with `+kubebuilder:validation:Minimum=0` (no `format`, as controller-gen).
pub fn non_negative_integer(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "integer", "minimum": 0})
}

/// `metav1.Condition.status`.
pub fn condition_status(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "enum": ["True", "False", "Unknown"],
        "description": "status of the condition, one of True, False, Unknown."
    })
}

/// `metav1.Condition.observedGeneration`.
pub fn observed_generation(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "integer",
        "format": "int64",
        "minimum": 0,
        "description": "observedGeneration represents the .metadata.generation that the condition was set based upon. For instance, if .metadata.generation is currently 12, but the .status.conditions[x].observedGeneration is 9, the condition is out of date with respect to the current state of the instance."
    })
}

/// Makes the derived CRD match upstream's acceptance exactly:
/// - `listKind` named, as controller-gen does;
/// - no `nullable: true` (controller-gen emits none; a null is then pruned and defaulted by the
///   API server, where a nullable field would store it);
/// - `spec` not required at the top level (upstream's Go field is `spec,omitempty`, so a VA
///   without `spec` passes the CRD schema; the admission webhook rejects it instead).
pub fn normalize_crd(crd: &mut Value) {
    if let Some(names) = crd
        .pointer_mut("/spec/names")
        .and_then(Value::as_object_mut)
    {
        names.insert("listKind".into(), Value::from("VariantAutoscalingList"));
    }
    let Some(versions) = crd
        .pointer_mut("/spec/versions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for version in versions {
        if let Some(schema) = version.pointer_mut("/schema/openAPIV3Schema") {
            strip_nullable(schema);
            if let Some(root) = schema.as_object_mut() {
                root.remove("required");
                root.remove("title");
            }
        }
    }
}

fn strip_nullable(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("nullable");
            map.values_mut().for_each(strip_nullable);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nullable),
        _ => {}
    }
}
