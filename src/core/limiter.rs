//! The GPU limiter (upstream `DefaultLimiter` with `GreedyBySaturation`,
//! `internal/engines/pipeline/`; docs/algorithm.md#the-gpu-limiter): after every model has been
//! decided, the cycle's scale-ups share the free GPUs of each accelerator type, the most
//! saturated variant first. Pure: the inventory is snapshot data, so `wva analyze` and
//! `wva simulate` show the limits the controller applied.
//!
//! Two departures from upstream, both deliberate: the GPUs that other workloads' pods already
//! request are subtracted (upstream computes them and never uses them), and the allocation order
//! is total — spare capacity, cost, namespace, name — so equal candidates are served the same way
//! on every run (upstream's sort is not stable). A partial replica's GPUs stay in the pool
//! (upstream consumes them unused).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::report::{Action, Decision, Step, Text};
use super::snapshot::GpuPool;

/// The accelerator the controller reports when no source names one.
const UNKNOWN: &str = "unknown";

/// The step name in each decision's `steps`, as upstream names it.
pub const STAGE: &str = "gpu-limiter";

/// An accelerator name as the inventory keys it (upstream `normalizeAcceleratorName`):
/// `NVIDIA-A100-SXM4-80GB` → `A100`, `Intel-Gaudi-2-96GB` → `Gaudi-2`, `H100` → `H100`.
pub fn normalize_accelerator(full: &str) -> &str {
    let mut parts = full.split('-');
    let (Some(vendor), Some(first)) = (parts.next(), parts.next()) else {
        return full;
    };
    if vendor.eq_ignore_ascii_case("intel")
        && let Some(second) = parts.next()
    {
        // `first-second` as one slice of `full`.
        let start = vendor.len() + 1;
        return &full[start..start + first.len() + 1 + second.len()];
    }
    first
}

/// Free GPUs per normalised type: what the nodes offer, less what other workloads request, less
/// what the variants' current replicas hold.
fn free_gpus(
    decisions: &[Decision],
    inventory: &BTreeMap<String, GpuPool>,
) -> BTreeMap<String, u64> {
    let mut free: BTreeMap<String, u64> = inventory
        .iter()
        .map(|(kind, pool)| {
            (
                kind.clone(),
                pool.allocatable.saturating_sub(pool.requested_by_others),
            )
        })
        .collect();
    for d in decisions {
        if let Some(left) = free.get_mut(normalize_accelerator(&d.accelerator)) {
            let held = u64::from(d.current_replicas) * u64::from(d.gpus_per_replica.max(1));
            *left = left.saturating_sub(held);
        }
    }
    free
}

/// Limits the scale-ups in `decisions` to the free GPUs and records the limiter's step on every
/// decision.
pub fn limit(decisions: &mut [Decision], inventory: &BTreeMap<String, GpuPool>) {
    let mut free = free_gpus(decisions, inventory);
    let mut candidates: Vec<usize> = (0..decisions.len())
        .filter(|&i| decisions[i].target_replicas > decisions[i].current_replicas)
        .collect();
    candidates.sort_by(|&a, &b| allocation_order(&decisions[a], &decisions[b]));

    let mut notes: BTreeMap<usize, (bool, Text)> = BTreeMap::new();
    for i in candidates {
        let d = &mut decisions[i];
        let need = d.target_replicas - d.current_replicas;
        let per_replica = d.gpus_per_replica.max(1);
        let kind = normalize_accelerator(&d.accelerator);
        let (add, note): (u32, String) = if kind.is_empty() || kind == UNKNOWN {
            (
                0,
                format!(
                    "limited: allocated 0 GPUs for +{need} replicas: the variant's accelerator is unknown, so no GPU type can be allocated (set the label inference.optimization/acceleratorName)"
                ),
            )
        } else if !free.contains_key(kind) {
            (
                0,
                format!(
                    "limited: allocated 0 GPUs for +{need} replicas: no node in the inventory offers {kind} GPUs (node labels <vendor>/gpu.product, normalised)"
                ),
            )
        } else {
            let left = free[kind];
            let add = u32::try_from(left / u64::from(per_replica))
                .unwrap_or(u32::MAX)
                .min(need);
            let gpus = u64::from(add) * u64::from(per_replica);
            if let Some(pool) = free.get_mut(kind) {
                *pool -= gpus;
            }
            let note = if add < need {
                format!(
                    "limited: allocated {gpus} GPUs for +{add} of +{need} replicas ({per_replica} {kind} GPU(s) per replica, {left} free)"
                )
            } else {
                format!(
                    "allocated {gpus} GPUs for +{need} replicas ({per_replica} {kind} GPU(s) per replica, {left} free)"
                )
            };
            (add, note)
        };
        let note = Text::from(note);
        if add < need {
            d.target_replicas = d.current_replicas + add;
            d.action = Action::from_replicas(d.current_replicas, d.target_replicas);
            d.reason = note.clone();
        }
        notes.insert(i, (add < need, note));
    }

    for (i, d) in decisions.iter_mut().enumerate() {
        let note = match notes.remove(&i) {
            Some((_, note)) => note,
            None => format!(
                "no scale-up (target={}, current={})",
                d.target_replicas, d.current_replicas
            )
            .into(),
        };
        d.steps.push(Step {
            stage: STAGE,
            target_replicas: d.target_replicas,
            note,
        });
    }
}

/// The most saturated first (least spare KV capacity), then the cheapest, then by name.
fn allocation_order(a: &Decision, b: &Decision) -> Ordering {
    let spare = |d: &Decision| d.analysis.as_ref().map_or(1.0, |x| x.avg_spare_kv_capacity);
    spare(a)
        .total_cmp(&spare(b))
        .then(a.cost.total_cmp(&b.cost))
        .then_with(|| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accelerator_names_normalise_as_upstream() {
        for (full, short) in [
            ("NVIDIA-A100-PCIE-80GB", "A100"),
            ("nvidia-H100-SXM5-80GB", "H100"),
            ("AMD-MI300X-192G", "MI300X"),
            ("Intel-Gaudi-2-96GB", "Gaudi-2"),
            ("Intel-Gaudi", "Gaudi"),
            ("Unknown-GPU-Model-123", "GPU"),
            ("A100", "A100"),
            ("", ""),
        ] {
            assert_eq!(normalize_accelerator(full), short, "{full}");
        }
    }
}
