//! The condition vocabulary of a VariantAutoscaling (types and reasons, docs/upstream.md#crd), the
//! `metav1.Condition` shape with its full CRD validation, and `meta.SetStatusCondition`
//! semantics. Pure: the caller passes "now".

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The scale target was looked up (True: it exists).
pub const TYPE_TARGET_RESOLVED: &str = "TargetResolved";
/// Saturation metrics were available for the last decision.
pub const TYPE_METRICS_AVAILABLE: &str = "MetricsAvailable";
/// The optimisation engine ran successfully.
pub const TYPE_OPTIMIZATION_READY: &str = "OptimizationReady";

pub const REASON_METRICS_FOUND: &str = "MetricsFound";
pub const REASON_METRICS_MISSING: &str = "MetricsMissing";
pub const REASON_METRICS_STALE: &str = "MetricsStale";
pub const REASON_PROMETHEUS_ERROR: &str = "PrometheusError";
pub const REASON_METRICS_AVAILABLE: &str = "MetricsAvailable";
pub const REASON_OPTIMIZATION_SUCCEEDED: &str = "OptimizationSucceeded";
pub const REASON_OPTIMIZATION_FAILED: &str = "OptimizationFailed";
pub const REASON_METRICS_UNAVAILABLE: &str = "MetricsUnavailable";
pub const REASON_INVALID_CONFIGURATION: &str = "InvalidConfiguration";
pub const REASON_SKIPPED_PROCESSING: &str = "SkippedProcessing";
pub const REASON_TARGET_FOUND: &str = "TargetFound";
pub const REASON_TARGET_NOT_FOUND: &str = "TargetNotFound";
pub const REASON_SCALE_FROM_ZERO: &str = "ScaleFromZero";

/// `True`, `False` or `Unknown`.
pub const STATUS_TRUE: &str = "True";
pub const STATUS_FALSE: &str = "False";
pub const STATUS_UNKNOWN: &str = "Unknown";

/// Condition contains details for one aspect of the current state of this API Resource
/// (the `metav1.Condition` shape).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// type of condition in CamelCase or in foo.example.com/CamelCase.
    #[serde(rename = "type")]
    #[schemars(
        length(max = 316),
        regex(
            pattern = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
        )
    )]
    pub type_: String,

    /// status of the condition, one of True, False, Unknown.
    #[schemars(schema_with = "super::schema::condition_status")]
    pub status: String,

    /// observedGeneration represents the .metadata.generation that the condition was set based upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::observed_generation")]
    pub observed_generation: Option<i64>,

    /// lastTransitionTime is the last time the condition transitioned from one status to another.
    /// This should be when the underlying condition changed. If that is not known, then using the
    /// time when the API field changed is acceptable.
    #[schemars(schema_with = "super::schema::date_time")]
    pub last_transition_time: Time,

    /// reason contains a programmatic identifier indicating the reason for the condition's last
    /// transition. The value should be a CamelCase string. This field may not be empty.
    #[schemars(
        length(min = 1, max = 1024),
        regex(pattern = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    )]
    pub reason: String,

    /// message is a human readable message indicating details about the transition.
    /// This may be an empty string.
    #[schemars(length(max = 32768))]
    pub message: String,
}

/// Sets a condition the way `meta.SetStatusCondition` does: adds it if absent; otherwise
/// overwrites reason, message and observedGeneration, and moves `lastTransitionTime` to `now`
/// only when the status changes. Returns true when anything changed.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    observed_generation: Option<i64>,
    now: &Time,
) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        None => {
            conditions.push(Condition {
                type_: type_.to_owned(),
                status: status.to_owned(),
                observed_generation,
                last_transition_time: now.clone(),
                reason: reason.to_owned(),
                message: message.to_owned(),
            });
            true
        }
        Some(existing) => {
            let mut changed = false;
            if existing.status != status {
                existing.status = status.to_owned();
                existing.last_transition_time = now.clone();
                changed = true;
            }
            if existing.reason != reason {
                existing.reason = reason.to_owned();
                changed = true;
            }
            if existing.message != message {
                existing.message = message.to_owned();
                changed = true;
            }
            if existing.observed_generation != observed_generation {
                existing.observed_generation = observed_generation;
                changed = true;
            }
            changed
        }
    }
}

/// The condition of the given type, if present.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}
