//! Defaulting for VariantAutoscaling objects (pure): fills what upstream leaves implicit, as a
//! JSON Patch computed from a mutated copy. Applying the patch and mutating again yields an
//! empty patch.

use serde_json::Value;

use crate::api::DEFAULT_VARIANT_COST_TEXT;

/// The defaulted copy of a VA: `scaleTargetRef.kind` → `Deployment`, `apiVersion` →
/// `apps/v1` for a Deployment, `variantCost` → `"10.0"` when absent. Objects without a `spec`
/// or `scaleTargetRef` object are left for validation to reject.
pub fn defaulted(object: &Value) -> Value {
    let mut copy = object.clone();
    let Some(spec) = copy.get_mut("spec").and_then(Value::as_object_mut) else {
        return copy;
    };
    if spec.get("variantCost").is_none_or(Value::is_null) {
        spec.insert("variantCost".into(), Value::from(DEFAULT_VARIANT_COST_TEXT));
    }
    if let Some(target) = spec
        .get_mut("scaleTargetRef")
        .and_then(Value::as_object_mut)
    {
        let empty = |v: Option<&Value>| v.is_none_or(|v| v.is_null() || v.as_str() == Some(""));
        if empty(target.get("kind")) {
            target.insert("kind".into(), Value::from("Deployment"));
        }
        if empty(target.get("apiVersion"))
            && target.get("kind").and_then(Value::as_str) == Some("Deployment")
        {
            target.insert("apiVersion".into(), Value::from("apps/v1"));
        }
    }
    copy
}

/// The JSON Patch that turns `object` into its defaulted copy (empty when nothing to do).
pub fn patch(object: &Value) -> json_patch::Patch {
    json_patch::diff(object, &defaulted(object))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn va(spec: Value) -> Value {
        json!({"apiVersion": "llmd.ai/v1alpha1", "kind": "VariantAutoscaling", "metadata": {"name": "v"}, "spec": spec})
    }

    #[test]
    fn fills_kind_api_version_and_cost() {
        let object = va(json!({"scaleTargetRef": {"name": "d"}, "modelID": "m"}));
        assert_eq!(
            defaulted(&object)["spec"],
            json!({"scaleTargetRef": {"name": "d", "kind": "Deployment", "apiVersion": "apps/v1"}, "modelID": "m", "variantCost": "10.0"})
        );
        let empty_strings = va(
            json!({"scaleTargetRef": {"name": "d", "kind": "", "apiVersion": ""}, "modelID": "m", "variantCost": null}),
        );
        assert_eq!(
            defaulted(&empty_strings)["spec"]["scaleTargetRef"],
            json!({"name": "d", "kind": "Deployment", "apiVersion": "apps/v1"})
        );
        assert_eq!(defaulted(&empty_strings)["spec"]["variantCost"], "10.0");
    }

    #[test]
    fn leaves_set_values_alone() {
        let object = va(
            json!({"scaleTargetRef": {"name": "d", "kind": "Deployment", "apiVersion": "apps/v1"}, "modelID": "m", "variantCost": "3"}),
        );
        assert!(patch(&object).0.is_empty());
        // Another kind keeps its (empty) apiVersion: validation explains what is supported.
        let other = va(
            json!({"scaleTargetRef": {"name": "d", "kind": "StatefulSet"}, "modelID": "m", "variantCost": "3"}),
        );
        assert!(patch(&other).0.is_empty());
        // An invalid cost is not "fixed": validation rejects it with a message.
        let bad_cost = va(
            json!({"scaleTargetRef": {"name": "d", "kind": "Deployment", "apiVersion": "apps/v1"}, "modelID": "m", "variantCost": ""}),
        );
        assert!(patch(&bad_cost).0.is_empty());
    }

    #[test]
    fn no_spec_or_no_target_is_left_to_validation() {
        let no_spec = json!({"apiVersion": "llmd.ai/v1alpha1", "kind": "VariantAutoscaling", "metadata": {"name": "v"}});
        assert!(patch(&no_spec).0.is_empty());
        let no_target = va(json!({"modelID": "m", "variantCost": "1"}));
        assert!(patch(&no_target).0.is_empty());
    }

    #[test]
    fn applying_the_patch_twice_adds_nothing() {
        for spec in [
            json!({"scaleTargetRef": {"name": "d"}, "modelID": "m"}),
            json!({"scaleTargetRef": {"name": "d", "kind": "Deployment"}, "modelID": "m"}),
            json!({"scaleTargetRef": {"name": "d", "apiVersion": "apps/v1"}, "modelID": "m", "variantCost": "2.5"}),
        ] {
            let mut object = va(spec);
            let first = patch(&object);
            assert!(!first.0.is_empty());
            json_patch::patch(&mut object, &first).unwrap();
            assert!(
                patch(&object).0.is_empty(),
                "second patch not empty for {object}"
            );
        }
    }
}
