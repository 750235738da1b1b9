//! Replica targets for one model (upstream `CalculateSaturationTargets`, docs/upstream.md#decision): the model-level transition check, base targets,
//! and one pending-aware, cost-aware step — at most one variant changes, by exactly one replica.

use std::cmp::Ordering;

use super::analyzer::ModelAnalysis;

/// What the planner knows of one variant that reports metrics.
#[derive(Clone, Debug)]
pub struct PlannedVariant<'a> {
    /// The target Deployment's name: ties between equally cheap variants break on it.
    pub name: &'a str,
    pub cost: f64,
    pub current: u32,
    pub desired: u32,
    pub pending: u32,
    /// Pods reporting metrics.
    pub reporting: u32,
    /// Stuck replicas that report nothing: accounted for, not in transition.
    pub stuck: u32,
}

/// The step the planner took for the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Some variant was in transition: every target holds.
    Hold,
    /// Variant `index` gets one more replica.
    ScaleUp(usize),
    /// Scale-up was needed, but every variant has pending replicas.
    ScaleUpBlocked,
    /// Variant `index` gives up one replica.
    ScaleDown(usize),
    /// Scale-down was safe but every variant is at one replica.
    ScaleDownBlocked,
    /// Spare capacity within the triggers and scale-down not safe.
    Steady,
}

/// Why the model is in transition, one line per variant and cause; empty when stable.
pub fn transition_reasons(variants: &[PlannedVariant<'_>]) -> Vec<String> {
    let mut reasons = Vec::new();
    for v in variants {
        if v.desired != 0 && v.desired != v.current {
            reasons.push(format!(
                "{}: previous desired {} != current {} (scaling in flight)",
                v.name, v.desired, v.current
            ));
        }
        // Stuck pods will not start reporting by waiting: they do not hold the model.
        if v.reporting.saturating_add(v.stuck) != v.current {
            reasons.push(if v.stuck == 0 {
                format!(
                    "{}: {} pods report metrics, {} replicas",
                    v.name, v.reporting, v.current
                )
            } else {
                format!(
                    "{}: {} pods report metrics and {} are stuck, {} replicas",
                    v.name, v.reporting, v.stuck, v.current
                )
            });
        }
    }
    reasons
}

/// Base target of a variant: while the model is in transition, the desired count in flight
/// (or the current one); otherwise the pods reporting plus the stuck ones (== current when
/// stable: stuck replicas are kept, not removed behind the user's back).
pub fn base_target(v: &PlannedVariant<'_>, in_transition: bool) -> u32 {
    if in_transition {
        if v.desired != 0 && v.desired != v.current {
            v.desired
        } else {
            v.current
        }
    } else {
        v.reporting.saturating_add(v.stuck)
    }
}

/// Chooses the model's step and applies it to `targets` (parallel to `variants`, which are in
/// ascending name order).
pub fn plan(
    variants: &[PlannedVariant<'_>],
    analysis: &ModelAnalysis,
    in_transition: bool,
    targets: &mut [u32],
) -> Plan {
    if in_transition {
        return Plan::Hold;
    }
    if analysis.should_scale_up {
        // Cheapest first, then smallest name; variants with pending replicas never qualify.
        let pick = (0..variants.len())
            .filter(|&i| variants[i].pending == 0)
            .min_by(|&a, &b| by_cost_then_name(&variants[a], &variants[b]));
        return match pick {
            Some(i) => {
                targets[i] += 1;
                Plan::ScaleUp(i)
            }
            None => Plan::ScaleUpBlocked,
        };
    }
    if analysis.scale_down_safe {
        // Most expensive first, then greatest name; never below one replica here.
        let pick = (0..variants.len())
            .filter(|&i| targets[i] > 1)
            .max_by(|&a, &b| by_cost_then_name(&variants[a], &variants[b]));
        return match pick {
            Some(i) => {
                targets[i] -= 1;
                Plan::ScaleDown(i)
            }
            None => Plan::ScaleDownBlocked,
        };
    }
    Plan::Steady
}

/// Cheaper first, then the smaller name (the target Deployment's name, as upstream, whose variant
/// name is the Deployment's). `-0.0` and `0.0` are equal costs: `total_cmp` alone would order
/// them, and upstream's `<` does not.
pub fn by_cost_then_name(a: &PlannedVariant<'_>, b: &PlannedVariant<'_>) -> Ordering {
    let cost = |c: f64| if c == 0.0 { 0.0 } else { c };
    cost(a.cost)
        .total_cmp(&cost(b.cost))
        .then_with(|| a.name.cmp(b.name))
}
