//! The `VariantAutoscaling` API (`llmd.ai/v1alpha1`): Rust types that generate the CRD, the
//! condition vocabulary, and the generated CRD itself. Pure data: no client calls, no IO.
//!
//! The schema matches upstream WVA v0.5.0 field by field (docs/upstream.md#crd), so that every object the
//! upstream CRD accepts is accepted here and vice versa; [`crd`] post-processes the derived schema
//! where schemars and controller-gen differ (nullable markers, a required `spec`).

pub mod conditions;
pub mod names;
mod schema;

pub use conditions::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of the VariantAutoscaling resource.
pub const GROUP: &str = "llmd.ai";
/// API version of the VariantAutoscaling resource.
pub const VERSION: &str = "v1alpha1";
/// Label on a VA that names its accelerator type (upstream reads the accelerator only from here).
pub const ACCELERATOR_LABEL: &str = "inference.optimization/acceleratorName";
/// Label that assigns a VA to one controller instance (`CONTROLLER_INSTANCE`).
pub const CONTROLLER_INSTANCE_LABEL: &str = "wva.llmd.ai/controller-instance";
pub use crate::config::DEFAULT_VARIANT_COST;
/// `spec.variantCost` default, as the API server fills it in.
pub const DEFAULT_VARIANT_COST_TEXT: &str = "10.0";

/// Spec of a VariantAutoscaling: which workload serves which model, at what cost per replica.
// kube's `printcolumn(...)` repeats `type_ = "string"`, which this lint mistakes for a typo.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "llmd.ai",
    version = "v1alpha1",
    kind = "VariantAutoscaling",
    namespaced,
    status = "VariantAutoscalingStatus",
    shortname = "va",
    doc = "VariantAutoscaling is the Schema for the variantautoscalings API.\nIt represents the autoscaling configuration and status for a model variant.",
    printcolumn(
        name = "Target",
        type_ = "string",
        json_path = ".spec.scaleTargetRef.name"
    ),
    printcolumn(name = "Model", type_ = "string", json_path = ".spec.modelID"),
    printcolumn(
        name = "Optimized",
        type_ = "string",
        json_path = ".status.desiredOptimizedAlloc.numReplicas"
    ),
    printcolumn(
        name = "MetricsReady",
        type_ = "string",
        json_path = ".status.conditions[?(@.type=='MetricsAvailable')].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct VariantAutoscalingSpec {
    /// ScaleTargetRef references the scalable resource to manage (an apps/v1 Deployment in the
    /// VA's namespace). This follows the same pattern as HorizontalPodAutoscaler.
    pub scale_target_ref: CrossVersionObjectReference,

    /// ModelID is the model served by the target, exactly as vLLM reports it in the `model_name`
    /// label of its metrics (e.g. "meta/llama-3.1-8b").
    #[serde(rename = "modelID")]
    #[schemars(length(min = 1))]
    pub model_id: String,

    /// VariantCost is the cost per replica of this variant, a non-negative decimal string
    /// (e.g. "10.0"). Scale-up goes to the cheapest variant that can take a replica, scale-down
    /// removes one from the most expensive. Defaults to "10.0".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::variant_cost")]
    pub variant_cost: Option<String>,
}

/// CrossVersionObjectReference contains enough information to let you identify the referred
/// resource (the `autoscaling/v1` type of the same name).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-map-type" = "atomic"))]
pub struct CrossVersionObjectReference {
    /// apiVersion is the API version of the referent
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// kind is the kind of the referent; More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds
    pub kind: String,
    /// name is the name of the referent; More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names/#names
    pub name: String,
}

/// VariantAutoscalingStatus represents the current status of autoscaling for a variant.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VariantAutoscalingStatus {
    /// DesiredOptimizedAlloc indicates the target optimized allocation based on autoscaling logic.
    #[serde(default, skip_serializing_if = "OptimizedAlloc::is_unwritable")]
    pub desired_optimized_alloc: Option<OptimizedAlloc>,

    /// Actuation provides details about the actuation process and its current status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actuation: Option<ActuationStatus>,

    /// Conditions represent the latest available observations of the VariantAutoscaling's state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// OptimizedAlloc describes the target optimized allocation for a model variant.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OptimizedAlloc {
    /// LastRunTime is the timestamp of the last optimization run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::date_time")]
    pub last_run_time: Option<Time>,

    /// Accelerator is the type of accelerator for the optimized allocation.
    #[schemars(length(min = 2))]
    pub accelerator: String,

    /// NumReplicas is the number of replicas for the optimized allocation.
    #[schemars(schema_with = "schema::non_negative_integer")]
    pub num_replicas: i64,
}

impl OptimizedAlloc {
    /// True when this allocation must not be sent to the API server: absent, or with an
    /// accelerator shorter than the CRD's `minLength: 2` (upstream's Go zero value serialises
    /// `accelerator: ""`, which a status PATCH then fails on — docs/upstream.md#crd).
    pub fn is_unwritable(alloc: &Option<OptimizedAlloc>) -> bool {
        alloc
            .as_ref()
            .is_none_or(|a| a.accelerator.chars().count() < 2)
    }
}

/// ActuationStatus provides details about the actuation process and its current status.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ActuationStatus {
    /// Applied indicates whether the actuation was successfully applied.
    pub applied: bool,
}

impl VariantAutoscaling {
    /// The cost per replica: `spec.variantCost` parsed as a number; absent, empty or unparsable
    /// values give [`DEFAULT_VARIANT_COST`] (upstream behaviour, docs/upstream.md#crd).
    pub fn cost(&self) -> f64 {
        parse_variant_cost(self.spec.variant_cost.as_deref())
    }

    /// The accelerator named by the [`ACCELERATOR_LABEL`] label, or "".
    pub fn accelerator(&self) -> &str {
        self.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(ACCELERATOR_LABEL))
            .map_or("", String::as_str)
    }
}

/// Parses a `variantCost` string the way upstream does: a float, with 10.0 for anything absent,
/// empty, unparsable or not finite.
pub fn parse_variant_cost(text: Option<&str>) -> f64 {
    text.and_then(|t| t.trim().parse::<f64>().ok())
        .filter(|c| c.is_finite() && *c >= 0.0)
        .unwrap_or(DEFAULT_VARIANT_COST)
}

/// The CustomResourceDefinition, as installed in a cluster.
pub fn crd() -> CustomResourceDefinition {
    let mut value = serde_json::to_value(VariantAutoscaling::crd())
        .expect("invariant: a CustomResourceDefinition always serialises to JSON");
    schema::normalize_crd(&mut value);
    serde_json::from_value(value).expect("invariant: normalisation keeps the CRD well-formed")
}

/// The CRD as YAML, exactly as committed in `crds/llmd.ai_variantautoscalings.yaml`.
pub fn crd_yaml() -> String {
    let yaml = serde_yaml_ng::to_string(&crd())
        .expect("invariant: a CustomResourceDefinition always serialises to YAML");
    format!("---\n{yaml}")
}

#[cfg(test)]
mod tests;

/// The `(kind, name)` a VA's `spec` targets (`spec.scaleTargetRef`), borrowed from untyped JSON
/// (a VA as the webhook or the cache sees it, possibly incomplete); `None` when either is not a
/// string.
pub fn target_ref(spec: &serde_json::Value) -> Option<(&str, &str)> {
    let target = spec.get("scaleTargetRef")?;
    let kind = target.get("kind")?.as_str()?;
    let name = target.get("name")?.as_str()?;
    Some((kind, name))
}
