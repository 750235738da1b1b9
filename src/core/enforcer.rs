//! Scale-to-zero and minimum enforcement (upstream `EnforcePolicy`, docs/upstream.md#decision), after the planner: an idle model with
//! scale-to-zero enabled goes to zero; otherwise a model never ends with zero replicas in total.

use super::planner::PlannedVariant;
use crate::config::duration::{Nanos, format_go_duration};

/// What the enforcer did to a model's targets.
#[derive(Clone, Debug, PartialEq)]
pub enum Enforcement {
    /// Scale-to-zero is off and the model keeps at least one replica.
    Untouched,
    /// Scale-to-zero is on and the request count was positive.
    KeptBusy { count: f64, period: Nanos },
    /// Scale-to-zero is on but the request count is unknown: keep the targets (fail safe).
    KeptUnknown { period: Nanos },
    /// Scale-to-zero applied: no request in the retention period.
    ScaledToZero { period: Nanos },
    /// Every target was zero without scale-to-zero: the cheapest variant (index) gets one.
    RaisedToOne(usize),
}

impl Enforcement {
    pub fn note(&self) -> String {
        match self {
            Self::Untouched => "scale-to-zero disabled; model keeps at least one replica".into(),
            Self::KeptBusy { count, period } => format!(
                "scale-to-zero enabled; {count} requests in the last {}: keep",
                format_go_duration(*period)
            ),
            Self::KeptUnknown { period } => format!(
                "scale-to-zero enabled but the request count over {} is unknown: keep (fail safe)",
                format_go_duration(*period)
            ),
            Self::ScaledToZero { period } => format!(
                "scale-to-zero: no successful request in the last {}",
                format_go_duration(*period)
            ),
            Self::RaisedToOne(_) => {
                "no replica left and scale-to-zero disabled: cheapest variant kept at 1".into()
            }
        }
    }
}

/// Applies the policy to `targets` (parallel to `variants`).
pub fn enforce(
    variants: &[PlannedVariant<'_>],
    targets: &mut [u32],
    scale_to_zero_enabled: bool,
    period: Nanos,
    request_count: Option<f64>,
) -> Enforcement {
    if scale_to_zero_enabled {
        return match request_count {
            None => Enforcement::KeptUnknown { period },
            Some(count) if count > 0.0 => Enforcement::KeptBusy { count, period },
            Some(_) => {
                targets.iter_mut().for_each(|t| *t = 0);
                Enforcement::ScaledToZero { period }
            }
        };
    }
    if targets.iter().any(|&t| t > 0) {
        return Enforcement::Untouched;
    }
    let cheapest = (0..variants.len())
        .min_by(|&a, &b| super::planner::by_cost_then_name(&variants[a], &variants[b]));
    match cheapest {
        Some(i) => {
            targets[i] = 1;
            Enforcement::RaisedToOne(i)
        }
        None => Enforcement::Untouched,
    }
}
