//! The decision core: one pure function from a [`Snapshot`] to a [`Report`]. No IO, no async,
//! no clock, no randomness, no environment: everything it needs is in the snapshot. The
//! controller, `wva analyze` and `wva simulate` all call [`decide`]; there is one
//! implementation of the rules.
//!
//! Pipeline per model (upstream `RunSaturationAnalysis` to `convertSaturationTargetsToDecisions`; docs/upstream.md#decision): analyzer → transition check → planner → enforcer →
//! decisions; then, across all models, the GPU limiter when it is on and the snapshot carries an
//! inventory. Variants are visited in ascending name order and pods in ascending pod name order,
//! so the report never depends on input order.

pub mod analyzer;
pub mod enforcer;
pub mod fixed;
pub mod hash;
pub mod limiter;
pub mod next;
pub mod planner;
pub mod report;
pub mod snapshot;

use hash::FastMap;

pub use report::{Action, Decision, ModelReport, Report, Step, Text};
pub use snapshot::{GpuPool, PodMetrics, ReadyPod, Snapshot, SnapshotError, StartingPod, Variant};

use analyzer::{VariantAnalysis, analyze_model, analyze_variant};
use enforcer::{Enforcement, enforce};
use planner::{Plan, PlannedVariant, base_target, plan, transition_reasons};

/// A scaling policy the core implements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// Upstream WVA v0.5.0's saturation scaling: pending-aware, cost-aware, one step per cycle.
    #[default]
    WvaV050,
    /// The same without the pending check (the pre-v0.5 behaviour), for comparisons.
    NoPendingAwareness,
    /// Demand-driven, look-ahead, cost-aware sizing with state across cycles (docs/algorithm.md#wva-next).
    WvaNext,
}

impl Policy {
    pub const ALL: [Policy; 3] = [Policy::WvaV050, Policy::NoPendingAwareness, Policy::WvaNext];

    pub fn name(self) -> &'static str {
        match self {
            Policy::WvaV050 => "wva-v0.5.0",
            Policy::NoPendingAwareness => "no-pending-awareness",
            Policy::WvaNext => "wva-next",
        }
    }

    /// Whether variants with pending replicas are kept from scaling up.
    pub fn pending_aware(self) -> bool {
        matches!(self, Policy::WvaV050)
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// Runs one decision cycle.
pub fn decide(snapshot: &Snapshot, policy: Policy) -> Report {
    if policy == Policy::WvaNext {
        let (models, mut decisions, state) = next::decide(snapshot);
        limit(snapshot, &mut decisions);
        return Report {
            policy: policy.name().to_owned(),
            models,
            decisions,
            wva_next_state: Some(state),
        };
    }
    let mut decisions = Vec::with_capacity(snapshot.variants.len());
    decisions.extend(
        snapshot
            .variants
            .iter()
            .filter(|v| !v.is_active())
            .map(inactive_decision),
    );
    let (sorted, start) = by_model(snapshot.variants.iter().filter(|v| v.is_active()));
    let mut model_reports = Vec::new();
    for run in start.windows(2) {
        let variants = &sorted[run[0]..run[1]];
        let (namespace, model_id) = (&*variants[0].namespace, &*variants[0].model_id);
        if let Some(report) = decide_model(
            snapshot,
            policy,
            namespace,
            model_id,
            variants,
            &mut decisions,
        ) {
            model_reports.push(report);
        }
    }
    limit(snapshot, &mut decisions);
    Report {
        policy: policy.name().to_owned(),
        models: model_reports,
        decisions,
        wva_next_state: None,
    }
}

/// The variants by model, the models by (namespace, model ID), each model's variants by name;
/// and where each model's run starts (one more: the end). One hash per variant and a counting
/// sort: names are compared only within a model, where they usually are in order already (the
/// controller lists them by name).
pub(crate) fn by_model<'v>(
    variants: impl Iterator<Item = &'v Variant> + Clone,
) -> (Vec<&'v Variant>, Vec<usize>) {
    // The models, numbered as first seen, then ranked.
    let mut ids: FastMap<(&str, &str), usize> = FastMap::default();
    let mut keys: Vec<(&str, &str)> = Vec::new();
    let model: Vec<usize> = variants
        .clone()
        .map(|v| {
            let key = (&*v.namespace, &*v.model_id);
            *ids.entry(key).or_insert_with(|| {
                keys.push(key);
                keys.len() - 1
            })
        })
        .collect();
    let mut ranked: Vec<usize> = (0..keys.len()).collect();
    ranked.sort_unstable_by_key(|&id| keys[id]);
    let mut rank = vec![0; keys.len()];
    for (r, &id) in ranked.iter().enumerate() {
        rank[id] = r;
    }
    // Where each model's run starts, then each variant into its model's run, in input order.
    let mut start = vec![0; keys.len() + 1];
    for &id in &model {
        start[rank[id] + 1] += 1;
    }
    for r in 1..start.len() {
        start[r] += start[r - 1];
    }
    let mut sorted: Vec<Option<&Variant>> = vec![None; model.len()];
    let mut slot = start.clone();
    for (v, &id) in variants.zip(&model) {
        sorted[slot[rank[id]]] = Some(v);
        slot[rank[id]] += 1;
    }
    let mut sorted: Vec<&Variant> = sorted.into_iter().flatten().collect();
    for run in start.windows(2) {
        let run = &mut sorted[run[0]..run[1]];
        if !run.is_sorted_by(|a, b| a.name <= b.name) {
            run.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        }
    }
    (sorted, start)
}

/// The GPU limiter (when on and the snapshot has an inventory), then the decisions in
/// (namespace, name) order.
fn limit(snapshot: &Snapshot, decisions: &mut [Decision]) {
    if snapshot.saturation_config.default_entry().enable_limiter
        && let Some(inventory) = &snapshot.gpu_inventory
    {
        limiter::limit(decisions, inventory);
    }
    decisions.sort_unstable_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
}

/// Decides one model's variants (sorted by name); returns its report when any pod reported.
fn decide_model(
    snapshot: &Snapshot,
    policy: Policy,
    namespace: &str,
    model_id: &str,
    variants: &[&Variant],
    decisions: &mut Vec<Decision>,
) -> Option<ModelReport> {
    let (config_key, config) = snapshot.saturation_config.for_model(namespace, model_id);

    // Variants whose pods report metrics are analysed; the others hold.
    let mut analysed: Vec<(&Variant, VariantAnalysis)> = Vec::with_capacity(variants.len());
    for &variant in variants {
        if variant.pods.is_empty() {
            decisions.push(no_metrics_decision(variant));
            continue;
        }
        let mut pods: Vec<&PodMetrics> = variant.pods.iter().collect();
        pods.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        analysed.push((variant, analyze_variant(&pods, config)));
    }
    if analysed.is_empty() {
        return None;
    }
    let model = analyze_model(analysed.iter().map(|(_, a)| a), config);

    let planned: Vec<PlannedVariant<'_>> = analysed
        .iter()
        .map(|(v, a)| PlannedVariant {
            // Upstream's variant name is the Deployment's: ties break on it, notes name it.
            name: &v.target_name,
            cost: v.cost,
            current: v.current_replicas(),
            desired: v.previous_desired,
            // Without pending-awareness, pending replicas simply do not count.
            pending: if policy.pending_aware() {
                v.pending_replicas()
            } else {
                0
            },
            reporting: a.replica_count,
            stuck: v.stuck_replicas,
        })
        .collect();
    let reasons = transition_reasons(&planned);
    let in_transition = !reasons.is_empty();
    let base: Vec<u32> = planned
        .iter()
        .map(|p| base_target(p, in_transition))
        .collect();
    let mut targets = base.clone();
    let step = plan(&planned, &model, in_transition, &mut targets);
    let planned_targets = targets.clone();

    let scale_to_zero = &snapshot.scale_to_zero_config;
    let enforcement = enforce(
        &planned,
        &mut targets,
        scale_to_zero.enabled(namespace, model_id),
        scale_to_zero.retention_period(namespace, model_id),
        snapshot
            .request_counts
            .get(&(namespace.to_owned(), model_id.to_owned()))
            .copied(),
    );

    // Most variants of a model share the planner's verdict: format it once.
    let mut shared_note: Option<Text> = None;
    for (i, (variant, analysis)) in analysed.into_iter().enumerate() {
        let p = &planned[i];
        let mut steps = vec![Step {
            stage: "analyzer",
            target_replicas: base[i],
            note: format!(
                "{} pods report, {} saturated",
                analysis.replica_count,
                analysis.saturated_pods.len()
            )
            .into(),
        }];
        let planner_note: Text = if note_is_shared(&step, i, p) {
            shared_note
                .get_or_insert_with(|| planner_note(&step, i, &planned, &model, &reasons).into())
                .clone()
        } else {
            planner_note(&step, i, &planned, &model, &reasons).into()
        };
        steps.push(Step {
            stage: if in_transition {
                "transition"
            } else {
                "planner"
            },
            target_replicas: planned_targets[i],
            note: planner_note.clone(),
        });
        let mut reason = planner_note;
        if enforcement != Enforcement::Untouched {
            let note = Text::from(enforcement.note());
            steps.push(Step {
                stage: "enforcer",
                target_replicas: targets[i],
                note: note.clone(),
            });
            if targets[i] != planned_targets[i] {
                reason = note;
            }
        }
        decisions.push(Decision {
            namespace: variant.namespace.clone(),
            name: variant.name.clone(),
            target_name: variant.target_name.clone(),
            model_id: variant.model_id.clone(),
            accelerator: variant.accelerator.clone(),
            cost: variant.cost,
            action: Action::from_replicas(p.current, targets[i]),
            current_replicas: p.current,
            target_replicas: targets[i],
            metrics_available: true,
            reason,
            steps,
            ready_replicas: variant.ready_replicas,
            pending_replicas: p.pending,
            previous_desired: variant.previous_desired,
            gpus_per_replica: variant.gpus_per_replica,
            analysis: Some(analysis),
        });
    }

    Some(ModelReport {
        namespace: variants[0].namespace.clone(),
        model_id: variants[0].model_id.clone(),
        total_replicas: model.total_replicas,
        non_saturated_count: model.non_saturated_count,
        avg_spare_kv_capacity: model.avg_spare_kv_capacity,
        avg_spare_queue_length: model.avg_spare_queue_length,
        should_scale_up: model.should_scale_up,
        scale_down_safe: model.scale_down_safe,
        in_transition,
        scale_to_zero_applied: matches!(enforcement, Enforcement::ScaledToZero { .. }),
        saturation_config_key: config_key.to_owned(),
        scale_up_reason: model.scale_up_reason,
        transition_reasons: reasons,
        minimum_enforced: matches!(enforcement, Enforcement::RaisedToOne(_)),
        next: None,
    })
}

/// True when variant `i`'s planner note is the same for every variant it is true for.
fn note_is_shared(step: &Plan, i: usize, me: &PlannedVariant<'_>) -> bool {
    match *step {
        Plan::ScaleUp(pick) => pick != i && me.pending == 0,
        Plan::ScaleDown(pick) => pick != i,
        Plan::Hold => false,
        Plan::ScaleUpBlocked | Plan::ScaleDownBlocked | Plan::Steady => true,
    }
}

/// The planner's verdict for variant `i`, in words.
fn planner_note(
    step: &Plan,
    i: usize,
    planned: &[PlannedVariant<'_>],
    model: &analyzer::ModelAnalysis,
    transition: &[String],
) -> String {
    let me = &planned[i];
    match *step {
        Plan::Hold => format!(
            "model in transition ({}): no scaling this cycle, hold at {}",
            transition.join("; "),
            base_target(me, true)
        ),
        Plan::ScaleUp(pick) if pick == i => format!(
            "scale-up: {}; cheapest variant without pending replicas (cost {})",
            model.scale_up_reason, me.cost
        ),
        Plan::ScaleUp(pick) if me.pending > 0 => format!(
            "no change: {} pending replica(s), so not eligible for scale-up (pending-aware); the model's replica went to {}",
            me.pending, planned[pick].name
        ),
        Plan::ScaleUp(pick) => format!(
            "no change: the model's scale-up went to {} (cost {}, cheaper or same cost and smaller name)",
            planned[pick].name, planned[pick].cost
        ),
        Plan::ScaleUpBlocked => format!(
            "no change: scale-up needed ({}) but every variant of the model has pending replicas (pending-aware)",
            model.scale_up_reason
        ),
        Plan::ScaleDown(pick) if pick == i => format!(
            "scale-down safe: {} unsaturated replicas would keep spare kv and queue at or above the triggers with one fewer; most expensive variant above 1 replica (cost {})",
            model.non_saturated_count, me.cost
        ),
        Plan::ScaleDown(pick) => format!(
            "no change: the model's scale-down went to {} (cost {}, more expensive or same cost and greater name)",
            planned[pick].name, planned[pick].cost
        ),
        Plan::ScaleDownBlocked => {
            "no change: scale-down safe but every variant is at 1 replica".to_owned()
        }
        Plan::Steady => format!(
            "no change: spare capacity within triggers (kv {:.3}, queue {:.1}) and scale-down not safe",
            model.avg_spare_kv_capacity, model.avg_spare_queue_length
        ),
    }
}

fn no_metrics_decision(variant: &Variant) -> Decision {
    let current = variant.current_replicas();
    let (target, note) = if variant.previous_desired > 0 {
        (
            variant.previous_desired,
            format!(
                "no pod of this variant reports metrics: hold at the previous desired {}",
                variant.previous_desired
            ),
        )
    } else {
        (
            current,
            format!("no pod of this variant reports metrics: hold at the current {current}"),
        )
    };
    plain_decision(variant, current, target, false, "hold", note)
}

fn inactive_decision(variant: &Variant) -> Decision {
    let note = "inactive: the target is scaled to zero (spec.replicas = 0), so it is not analysed"
        .to_owned();
    plain_decision(
        variant,
        variant.current_replicas(),
        0,
        false,
        "inactive",
        note,
    )
}

fn plain_decision(
    variant: &Variant,
    current: u32,
    target: u32,
    metrics_available: bool,
    stage: &'static str,
    note: String,
) -> Decision {
    let note = Text::from(note);
    Decision {
        namespace: variant.namespace.clone(),
        name: variant.name.clone(),
        target_name: variant.target_name.clone(),
        model_id: variant.model_id.clone(),
        accelerator: variant.accelerator.clone(),
        cost: variant.cost,
        action: Action::from_replicas(current, target),
        current_replicas: current,
        target_replicas: target,
        metrics_available,
        reason: note.clone(),
        steps: vec![Step {
            stage,
            target_replicas: target,
            note,
        }],
        ready_replicas: variant.ready_replicas,
        pending_replicas: variant.pending_replicas(),
        previous_desired: variant.previous_desired,
        gpus_per_replica: variant.gpus_per_replica,
        analysis: None,
    }
}

#[cfg(test)]
mod tests;
