//! Saturation analysis (upstream `AnalyzeModelSaturation` and `isScaleDownSafe`, docs/upstream.md#decision): per replica saturated or not, per variant and per model the
//! average spare capacity of the unsaturated replicas, the scale-up trigger and the N−1
//! scale-down check. Formulas are evaluated in binary64 in upstream's operation order; variants
//! are summed in ascending name order and pods in ascending pod name order, so results never
//! depend on input order.

use serde::Serialize;

use super::report::Text;
use super::snapshot::PodMetrics;
use crate::config::SaturationScalingConfig;

/// One variant's replicas, as the analyzer sees them.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VariantAnalysis {
    /// Pods reporting metrics.
    pub replica_count: u32,
    pub non_saturated_count: u32,
    pub max_kv_cache_usage: f64,
    pub max_queue_length: u64,
    pub avg_spare_kv_capacity: f64,
    pub avg_spare_queue_length: f64,
    pub saturated_pods: Vec<Text>,
}

/// A model's replicas, over every variant that reports metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelAnalysis {
    pub total_replicas: u32,
    pub non_saturated_count: u32,
    pub avg_spare_kv_capacity: f64,
    pub avg_spare_queue_length: f64,
    pub should_scale_up: bool,
    pub scale_up_reason: String,
    pub scale_down_safe: bool,
}

/// True when a replica counts as saturated: KV-cache use or queue at or over its threshold.
pub fn is_saturated(pod: &PodMetrics, config: &SaturationScalingConfig) -> bool {
    pod.kv_cache_usage >= config.kv_cache_threshold
        || pod.queue_length as f64 >= config.queue_length_threshold
}

/// Analyses one variant's pods, which must be sorted by name.
pub fn analyze_variant(pods: &[&PodMetrics], config: &SaturationScalingConfig) -> VariantAnalysis {
    let saturated = pods.iter().filter(|p| is_saturated(p, config)).count();
    let mut saturated_pods = Vec::with_capacity(saturated);
    let (mut sum_kv, mut sum_queue, mut n) = (0.0_f64, 0.0_f64, 0_u32);
    let (mut max_kv, mut max_queue) = (0.0_f64, 0_u64);
    for pod in pods {
        if is_saturated(pod, config) {
            saturated_pods.push(pod.name.clone());
        } else {
            sum_kv += config.kv_cache_threshold - pod.kv_cache_usage;
            sum_queue += config.queue_length_threshold - pod.queue_length as f64;
            n += 1;
        }
        if pod.kv_cache_usage > max_kv {
            max_kv = pod.kv_cache_usage;
        }
        if pod.queue_length > max_queue {
            max_queue = pod.queue_length;
        }
    }
    let average = |sum: f64| if n > 0 { sum / f64::from(n) } else { 0.0 };
    VariantAnalysis {
        replica_count: pods.len() as u32,
        non_saturated_count: n,
        max_kv_cache_usage: max_kv,
        max_queue_length: max_queue,
        avg_spare_kv_capacity: average(sum_kv),
        avg_spare_queue_length: average(sum_queue),
        saturated_pods,
    }
}

/// A model's replicas and spare capacity, over its variants' analyses: the figures both
/// policies report (`wva-next` needs no more of [`analyze_model`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelSpare {
    pub total_replicas: u32,
    pub non_saturated_count: u32,
    pub avg_spare_kv_capacity: f64,
    pub avg_spare_queue_length: f64,
}

impl ModelSpare {
    /// Whether the average spare KV and queue capacity are under their scale-up triggers
    /// (`wva-v0.5.0`'s scale-up test; `wva-next`'s "near saturation").
    pub fn low(&self, config: &SaturationScalingConfig) -> (bool, bool) {
        (
            self.avg_spare_kv_capacity < config.kv_spare_trigger,
            self.avg_spare_queue_length < config.queue_spare_trigger,
        )
    }
}

/// Sums variant analyses (in ascending variant name order) into the model's [`ModelSpare`].
pub fn model_spare<'a>(variants: impl IntoIterator<Item = &'a VariantAnalysis>) -> ModelSpare {
    let (mut total, mut n) = (0_u32, 0_u32);
    let (mut total_kv, mut total_queue) = (0.0_f64, 0.0_f64);
    for v in variants {
        total += v.replica_count;
        n += v.non_saturated_count;
        total_kv += v.avg_spare_kv_capacity * f64::from(v.non_saturated_count);
        total_queue += v.avg_spare_queue_length * f64::from(v.non_saturated_count);
    }
    let average = |sum: f64| if n > 0 { sum / f64::from(n) } else { 0.0 };
    ModelSpare {
        total_replicas: total,
        non_saturated_count: n,
        avg_spare_kv_capacity: average(total_kv),
        avg_spare_queue_length: average(total_queue),
    }
}

/// Combines variant analyses (in ascending variant name order) into the model's.
pub fn analyze_model<'a>(
    variants: impl IntoIterator<Item = &'a VariantAnalysis>,
    config: &SaturationScalingConfig,
) -> ModelAnalysis {
    let spare = model_spare(variants);
    let (total, n) = (spare.total_replicas, spare.non_saturated_count);
    let avg_kv = spare.avg_spare_kv_capacity;
    let avg_queue = spare.avg_spare_queue_length;
    let (kv_low, queue_low) = spare.low(config);
    let scale_up_reason = match (kv_low, queue_low) {
        (true, true) => format!(
            "both KV spare ({avg_kv:.3} < {:.3}) and queue spare ({avg_queue:.1} < {:.1})",
            config.kv_spare_trigger, config.queue_spare_trigger
        ),
        (true, false) => format!(
            "KV spare Saturation low ({avg_kv:.3} < {:.3})",
            config.kv_spare_trigger
        ),
        (false, true) => format!(
            "queue spare Saturation low ({avg_queue:.1} < {:.1})",
            config.queue_spare_trigger
        ),
        (false, false) => String::new(),
    };
    ModelAnalysis {
        total_replicas: total,
        non_saturated_count: n,
        avg_spare_kv_capacity: avg_kv,
        avg_spare_queue_length: avg_queue,
        should_scale_up: kv_low || queue_low,
        scale_up_reason,
        scale_down_safe: is_scale_down_safe(n, avg_kv, avg_queue, config),
    }
}

/// Would the unsaturated load still leave enough spare capacity on N−1 replicas?
/// Inclusive `>=`, upstream's operation order (docs/upstream.md#decision).
pub fn is_scale_down_safe(
    non_saturated: u32,
    avg_spare_kv: f64,
    avg_spare_queue: f64,
    config: &SaturationScalingConfig,
) -> bool {
    if non_saturated < 2 {
        return false;
    }
    let load_kv = config.kv_cache_threshold - avg_spare_kv;
    let load_queue = config.queue_length_threshold - avg_spare_queue;
    let factor = f64::from(non_saturated) / f64::from(non_saturated - 1);
    let remaining_kv = config.kv_cache_threshold - load_kv * factor;
    let remaining_queue = config.queue_length_threshold - load_queue * factor;
    remaining_kv >= config.kv_spare_trigger && remaining_queue >= config.queue_spare_trigger
}
