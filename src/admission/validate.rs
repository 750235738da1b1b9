//! Validation rules for VariantAutoscaling objects and the wva ConfigMaps (pure: the object
//! under review plus a read-only view of what exists). Every violation is reported at once, in
//! Kubernetes field-error wording; warnings never deny.

use serde_json::Value;

use super::review::{FieldError, FieldErrorKind, Operation, Verdict};
use crate::api::{ACCELERATOR_LABEL, names};
use crate::config::manifest::{CheckReport, ConfigMapManifest, check_config_map, kind_of};

/// Workload kinds the controller can scale, with the API version each needs.
pub const SUPPORTED_TARGETS: [(&str, &str); 1] = [("Deployment", "apps/v1")];
/// The longest `spec.modelID` accepted (it is sent to Prometheus in every query).
pub const MAX_MODEL_ID_BYTES: usize = 512;

/// A VariantAutoscaling that already exists, as the duplicate-target rule needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExistingVa {
    pub name: String,
    pub target_kind: String,
    pub target_name: String,
}

/// What the rules may know about the cluster. `None` fields mean "no cluster": the rules that
/// need them are off.
#[derive(Clone, Debug, Default)]
pub struct ClusterFacts {
    /// The VAs of the request's namespace (from the watch cache).
    pub existing: Option<Vec<ExistingVa>>,
    /// Whether the target workload exists.
    pub target_exists: Option<bool>,
}

/// Where the wva ConfigMaps live and what they are called.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigMapSettings {
    pub namespace: String,
    pub saturation_name: String,
    pub scale_to_zero_name: String,
}

impl Default for ConfigMapSettings {
    fn default() -> Self {
        Self {
            namespace: "workload-variant-autoscaler-system".into(),
            saturation_name: crate::config::saturation::CONFIG_MAP_NAME.into(),
            scale_to_zero_name: crate::config::scale_to_zero::CONFIG_MAP_NAME.into(),
        }
    }
}

fn text<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str)
}

/// The (kind, name) a VA object targets, if readable.
fn target_of(object: &Value) -> Option<(&str, &str)> {
    object.get("spec").and_then(crate::api::target_ref)
}

/// Validates a VariantAutoscaling on CREATE or UPDATE. Rules ratchet: an UPDATE is denied only
/// for violations the old object did not already have (those become warnings), so a label-only
/// update of an object admitted before the webhook existed still goes through. An object being
/// deleted is always allowed (the garbage collector removes finalizers with UPDATEs).
pub fn validate_variant_autoscaling(
    operation: Operation,
    namespace: &str,
    object: &Value,
    old_object: Option<&Value>,
    facts: &ClusterFacts,
) -> Verdict {
    if !matches!(operation, Operation::Create | Operation::Update)
        || object
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|t| !t.is_null())
    {
        return Verdict::default();
    }
    let mut verdict = rules(namespace, object, facts);
    if let (Operation::Update, Some(old)) = (operation, old_object) {
        let before: Vec<String> = rules(namespace, old, facts)
            .violations
            .iter()
            .map(ToString::to_string)
            .collect();
        let (inherited, introduced): (Vec<FieldError>, Vec<FieldError>) = verdict
            .violations
            .into_iter()
            .partition(|v| before.contains(&v.to_string()));
        verdict.violations = introduced;
        verdict.warnings.extend(inherited.iter().map(|v| {
            format!("{v} (the object was already like this; this update is allowed, but fix it)")
        }));
        update_warnings(object, old, &mut verdict.warnings);
    }
    verdict
}

/// Every rule on one object, as if it were created now.
fn rules(namespace: &str, object: &Value, facts: &ClusterFacts) -> Verdict {
    let mut verdict = Verdict::default();
    let errors = &mut verdict.violations;
    let name = text(object, "/metadata/name").unwrap_or("");

    match object.get("spec") {
        None | Some(Value::Null) => errors.push(FieldError::required(
            "spec",
            "a VariantAutoscaling needs spec.scaleTargetRef (the Deployment to scale) and spec.modelID",
        )),
        Some(spec) if !spec.is_object() => errors.push(FieldError::invalid("spec", spec, "must be an object")),
        Some(spec) => {
            check_target(spec, errors);
            check_model_id(spec, errors);
            check_cost(spec, errors);
        }
    }
    if let Some(label) = object
        .pointer("/metadata/labels")
        .and_then(|l| l.get(ACCELERATOR_LABEL))
    {
        match label.as_str() {
            Some(a) if a.chars().count() >= 2 => {}
            _ => errors.push(FieldError::invalid(
                format!("metadata.labels[{ACCELERATOR_LABEL}]"),
                label,
                "must be at least 2 characters (it becomes status.desiredOptimizedAlloc.accelerator)",
            )),
        }
    } else {
        verdict.warnings.push(format!(
            "metadata.labels[{ACCELERATOR_LABEL}] is not set: wva takes the accelerator from the target's pod template (a GPU product nodeSelector or node affinity), else reports it as \"unknown\" (upstream WVA v0.5.0 does not scale such a variant at all)"
        ));
    }

    if let Some((kind, target)) = target_of(object) {
        if let Some(existing) = &facts.existing {
            for other in existing {
                if other.name != name && other.target_kind == kind && other.target_name == target {
                    verdict.violations.push(FieldError {
                        field: "spec.scaleTargetRef".into(),
                        kind: FieldErrorKind::Duplicate(format!("{kind}/{target}")),
                        detail: format!(
                            "VariantAutoscaling {:?} in namespace {namespace:?} already targets it; one VariantAutoscaling per workload",
                            other.name
                        ),
                    });
                }
            }
        }
        if facts.target_exists == Some(false) {
            verdict.warnings.push(format!(
                "spec.scaleTargetRef: {kind} {target:?} does not exist in namespace {namespace:?} yet; the VariantAutoscaling waits for it"
            ));
        }
    }

    verdict
}

/// What an UPDATE changes that is allowed but worth saying.
fn update_warnings(object: &Value, old: &Value, warnings: &mut Vec<String>) {
    if let Some((old_kind, old_name)) = target_of(old)
        && target_of(old) != target_of(object)
    {
        warnings.push(format!(
            "spec.scaleTargetRef changed from {old_kind}/{old_name}: the variant now scales another workload"
        ));
    }
    let (old_model, new_model) = (text(old, "/spec/modelID"), text(object, "/spec/modelID"));
    if old_model.is_some() && old_model != new_model {
        warnings.push(format!(
            "spec.modelID changed from {:?} to {:?}: the variant moves to another model",
            old_model.unwrap_or(""),
            new_model.unwrap_or("")
        ));
    }
}

fn check_target(spec: &Value, errors: &mut Vec<FieldError>) {
    const FIELD: &str = "spec.scaleTargetRef";
    let Some(target) = spec.get("scaleTargetRef").filter(|t| !t.is_null()) else {
        errors.push(FieldError::required(
            FIELD,
            "name the Deployment to scale, e.g. {kind: Deployment, name: my-model-decode}",
        ));
        return;
    };
    if !target.is_object() {
        errors.push(FieldError::invalid(
            FIELD,
            target,
            "must be an object with kind and name",
        ));
        return;
    }
    match target.get("name") {
        None | Some(Value::Null) => errors.push(FieldError::required(format!("{FIELD}.name"), "")),
        Some(Value::String(n)) if n.is_empty() => {
            errors.push(FieldError::required(format!("{FIELD}.name"), ""))
        }
        Some(Value::String(n)) => {
            if let Err(message) = names::check_dns1123_subdomain(n) {
                errors.push(FieldError::invalid(
                    format!("{FIELD}.name"),
                    &Value::from(n.as_str()),
                    message.0,
                ));
            }
        }
        Some(other) => errors.push(FieldError::invalid(
            format!("{FIELD}.name"),
            other,
            "must be a string",
        )),
    }
    let supported: Vec<String> = SUPPORTED_TARGETS
        .iter()
        .map(|(k, _)| k.to_string())
        .collect();
    let kind = match target.get("kind") {
        None | Some(Value::Null) => {
            errors.push(FieldError::required(
                format!("{FIELD}.kind"),
                format!("supported kinds: {}", supported.join(", ")),
            ));
            return;
        }
        Some(Value::String(k)) if k.is_empty() => {
            errors.push(FieldError::required(
                format!("{FIELD}.kind"),
                format!("supported kinds: {}", supported.join(", ")),
            ));
            return;
        }
        Some(Value::String(k)) => k,
        Some(other) => {
            errors.push(FieldError::invalid(
                format!("{FIELD}.kind"),
                other,
                "must be a string",
            ));
            return;
        }
    };
    let Some((_, api_version)) = SUPPORTED_TARGETS.iter().find(|(k, _)| k == kind) else {
        errors.push(FieldError {
            field: format!("{FIELD}.kind"),
            kind: FieldErrorKind::NotSupported(
                super::review::shown(&Value::from(kind.as_str())),
                supported,
            ),
            detail: String::new(),
        });
        return;
    };
    match target.get("apiVersion") {
        None | Some(Value::Null) => {}
        Some(Value::String(v)) if v.is_empty() || v == api_version => {}
        Some(other) => errors.push(FieldError::invalid(
            format!("{FIELD}.apiVersion"),
            other,
            format!("must be {api_version} for kind {kind}"),
        )),
    }
}

fn check_model_id(spec: &Value, errors: &mut Vec<FieldError>) {
    const FIELD: &str = "spec.modelID";
    match spec.get("modelID") {
        None | Some(Value::Null) => errors.push(FieldError::required(
            FIELD,
            "the model name as vLLM reports it in its model_name metric label",
        )),
        Some(Value::String(m)) if m.is_empty() => errors.push(FieldError::required(FIELD, "")),
        Some(Value::String(m)) => {
            if m.len() > MAX_MODEL_ID_BYTES {
                errors.push(FieldError {
                    field: FIELD.into(),
                    kind: FieldErrorKind::TooLong(MAX_MODEL_ID_BYTES),
                    detail: String::new(),
                });
            }
            if m.chars().any(char::is_control) {
                errors.push(FieldError::invalid(
                    FIELD,
                    &Value::from(m.as_str()),
                    "must not contain control characters (newlines, tabs, ...)",
                ));
            }
        }
        Some(other) => errors.push(FieldError::invalid(FIELD, other, "must be a string")),
    }
}

fn check_cost(spec: &Value, errors: &mut Vec<FieldError>) {
    const FIELD: &str = "spec.variantCost";
    match spec.get("variantCost") {
        None | Some(Value::Null) => {}
        Some(Value::String(c)) if is_decimal(c) => {
            if !c.parse::<f64>().is_ok_and(f64::is_finite) {
                errors.push(FieldError::invalid(
                    FIELD,
                    &Value::from(c.as_str()),
                    "must be a finite number",
                ));
            }
        }
        Some(other) => errors.push(FieldError::invalid(
            FIELD,
            other,
            "must be a non-negative decimal number such as \"10\" or \"12.5\"",
        )),
    }
}

/// `^\d+(\.\d+)?$` with ASCII digits, as the CRD pattern.
fn is_decimal(text: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match text.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(text),
    }
}

/// Validates a ConfigMap on CREATE or UPDATE: the wva ConfigMaps in the controller namespace
/// must pass `wva check-config`; every other ConfigMap is allowed untouched.
pub fn validate_config_map(
    operation: Operation,
    object: &Value,
    settings: &ConfigMapSettings,
) -> Verdict {
    let mut verdict = Verdict::default();
    if !matches!(operation, Operation::Create | Operation::Update) {
        return verdict;
    }
    let name = text(object, "/metadata/name").unwrap_or("");
    let namespace = text(object, "/metadata/namespace").unwrap_or("");
    if namespace != settings.namespace {
        return verdict;
    }
    // The same names `wva check-config` and the controller recognise.
    let Some(kind) = kind_of(name, &settings.saturation_name) else {
        return verdict;
    };
    let mut data = std::collections::BTreeMap::new();
    if let Some(map) = object.get("data").and_then(Value::as_object) {
        for (key, value) in map {
            match value.as_str() {
                Some(s) => {
                    data.insert(key.clone(), s.to_owned());
                }
                None => verdict.messages.push(format!(
                    "{name}/{key}: ConfigMap data values must be strings"
                )),
            }
        }
    }
    let mut report = CheckReport::default();
    check_config_map(
        &ConfigMapManifest {
            name: name.to_owned(),
            data,
        },
        kind,
        &mut report,
    );
    verdict.messages.extend(report.errors);
    verdict.warnings.extend(report.warnings);
    verdict
}

#[cfg(test)]
mod tests;
