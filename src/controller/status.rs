//! VA status (pure): from what one cycle learned about a VA — its target, its metrics, the
//! decision and what actuation did — to the status it should have, and whether that differs
//! from the stored one. A status that only differs by time stamps is not written: when nothing
//! changes, a cycle makes no API writes (upstream PATCHes `lastRunTime` every cycle). No IO.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::snapshot::{Target, VariantNotes};
use crate::api::conditions::{self as c, set_condition};
use crate::api::{ActuationStatus, OptimizedAlloc, VariantAutoscalingStatus};
use crate::core::Decision;

/// How this cycle's metrics collection went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collection<'a> {
    Collected,
    /// Prometheus failed; the message says how (never a secret: URLs are redacted upstream of it).
    Failed(&'a str),
}

/// What the cycle knows about one VA.
#[derive(Clone, Copy, Debug)]
pub struct Observed<'a> {
    pub generation: Option<i64>,
    pub notes: &'a VariantNotes,
    /// The core's decision, when the VA made it into the snapshot.
    pub decision: Option<&'a Decision>,
    pub collection: Collection<'a>,
    /// The replica count published (and, in direct mode, applied) this cycle.
    pub desired: Option<u32>,
    /// Whether the target runs the desired count (direct) or the count was published (metrics).
    pub applied: Option<bool>,
    /// Why actuation held (an HPA on the same target), if it did.
    pub held: Option<&'a str>,
}

/// The status `observed` calls for, starting from `current`; `None` when it equals `current`
/// (time stamps aside). `now` becomes `lastRunTime` and the transition time of conditions
/// whose status changes.
pub fn desired_status(
    current: &VariantAutoscalingStatus,
    observed: &Observed<'_>,
    now: &Time,
) -> Option<VariantAutoscalingStatus> {
    let mut next = current.clone();
    let generation = observed.generation;
    let notes = observed.notes;
    let mut set = |type_: &str, status: &str, reason: &str, message: &str| {
        set_condition(
            &mut next.conditions,
            type_,
            status,
            reason,
            bounded(message),
            generation,
            now,
        );
    };

    let (status, reason, message) = target_condition(notes, observed.decision);
    set(c::TYPE_TARGET_RESOLVED, status, reason, &message);

    if let Target::Found = notes.target {
        let (status, reason, message) = metrics_condition(observed);
        set(c::TYPE_METRICS_AVAILABLE, status, reason, &message);
        let (status, reason, message) = optimization_condition(observed);
        set(c::TYPE_OPTIMIZATION_READY, status, reason, &message);
    }

    if let (Some(desired), Some(decision)) = (observed.desired, observed.decision) {
        let unchanged = next.desired_optimized_alloc.as_ref().is_some_and(|a| {
            a.num_replicas == i64::from(desired) && *a.accelerator == *decision.accelerator
        });
        if !unchanged && decision.accelerator.chars().count() >= 2 {
            next.desired_optimized_alloc = Some(OptimizedAlloc {
                last_run_time: Some(now.clone()),
                accelerator: decision.accelerator.to_string(),
                num_replicas: i64::from(desired),
            });
        }
    }
    if let Some(applied) = observed.applied {
        next.actuation = Some(ActuationStatus { applied });
    }
    (next != *current).then_some(next)
}

/// The CRD's limit on a condition message.
const MAX_MESSAGE_CHARS: usize = 32768;

fn bounded(message: &str) -> &str {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((end, _)) => &message[..end],
        None => message,
    }
}

fn target_condition(
    notes: &VariantNotes,
    decision: Option<&Decision>,
) -> (&'static str, &'static str, String) {
    match &notes.target {
        Target::Found => {
            let deployment = decision.map_or("", |d| &*d.target_name);
            let accelerator = decision.map_or("unknown", |d| &*d.accelerator);
            let source = match notes.accelerator_source {
                "label" => "from the inference.optimization/acceleratorName label".to_owned(),
                "unknown" => "not found: set the inference.optimization/acceleratorName label, or a GPU product nodeSelector on the pod template".to_owned(),
                other => format!("from the pod template's {other}"),
            };
            (
                c::STATUS_TRUE,
                c::REASON_TARGET_FOUND,
                format!(
                    "Scale target Deployment {deployment} found; accelerator {accelerator} ({source})"
                ),
            )
        }
        Target::NotFound(name) => (
            c::STATUS_FALSE,
            c::REASON_TARGET_NOT_FOUND,
            format!("Scale target Deployment {name} not found"),
        ),
        Target::Invalid(why) => (
            c::STATUS_FALSE,
            c::REASON_INVALID_CONFIGURATION,
            why.clone(),
        ),
        Target::Duplicate(first) => (
            c::STATUS_FALSE,
            c::REASON_INVALID_CONFIGURATION,
            format!(
                "VariantAutoscaling {first} already targets this Deployment; only one VariantAutoscaling per workload is decided: delete one of them"
            ),
        ),
    }
}

fn metrics_condition(observed: &Observed<'_>) -> (&'static str, &'static str, String) {
    let notes = observed.notes;
    let holding = observed
        .desired
        .map_or(String::new(), |d| format!("; holding at {d} replicas"));
    if let Collection::Failed(error) = observed.collection {
        return (
            c::STATUS_FALSE,
            c::REASON_PROMETHEUS_ERROR,
            format!("Prometheus query failed: {error}{holding} (no scale-down on missing data)"),
        );
    }
    if notes.reporting > 0 {
        return (
            c::STATUS_TRUE,
            c::REASON_METRICS_FOUND,
            format!(
                "{} of {} pods report saturation metrics",
                notes.reporting, notes.pods
            ),
        );
    }
    if notes.stale > 0 {
        return (
            c::STATUS_FALSE,
            c::REASON_METRICS_STALE,
            format!(
                "the latest samples of {} pods are older than {}s{holding}",
                notes.stale,
                crate::prometheus::collect::STALE_AFTER_SECONDS
            ),
        );
    }
    let model = observed.decision.map_or("", |d| &*d.model_id);
    (
        c::STATUS_FALSE,
        c::REASON_METRICS_MISSING,
        format!(
            "no pod of the target reports vllm:kv_cache_usage_perc or vllm:num_requests_waiting for model {model:?} ({} pods){holding}",
            notes.pods
        ),
    )
}

fn optimization_condition(observed: &Observed<'_>) -> (&'static str, &'static str, String) {
    if let Some(why) = observed.held {
        return (c::STATUS_FALSE, REASON_HPA_CONFLICT, why.to_owned());
    }
    let Some(decision) = observed.decision.filter(|d| d.metrics_available) else {
        let holding = observed
            .desired
            .map_or(String::new(), |d| format!(": holding at {d} replicas"));
        return (
            c::STATUS_FALSE,
            c::REASON_METRICS_UNAVAILABLE,
            format!("no decision without metrics{holding}"),
        );
    };
    // The decision's full reason (with this cycle's numbers) goes to Events; the condition
    // says only what changes when the decision does, so that steady load writes nothing.
    let in_transition = decision.steps.iter().any(|s| s.stage == "transition");
    let verdict = format!(
        "target {} replicas ({}){}",
        decision.target_replicas,
        decision.action.as_str(),
        if in_transition {
            "; holding while the model is in transition"
        } else {
            ""
        }
    );
    if let Some((pod, why)) = observed.notes.stuck.first() {
        let more = match observed.notes.stuck.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        return (
            c::STATUS_TRUE,
            REASON_STUCK_REPLICAS,
            format!(
                "pod {pod} is stuck ({why}){more}: not counted as in transition, no scale-up of this variant while it lasts; {verdict}"
            ),
        );
    }
    (c::STATUS_TRUE, c::REASON_OPTIMIZATION_SUCCEEDED, verdict)
}

/// `OptimizationReady` reason while an HPA scales the same target in direct mode.
pub const REASON_HPA_CONFLICT: &str = "HorizontalPodAutoscalerConflict";
/// `OptimizationReady` reason while some replicas of the variant are stuck.
pub const REASON_STUCK_REPLICAS: &str = "StuckReplicas";

#[cfg(test)]
mod tests;
