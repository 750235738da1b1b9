//! Property tests over random snapshots (issue #2): order independence, one step per model,
//! pending-aware scale-up, no silent scale to zero, one decision per variant.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::sample::SizeRange;

use super::super::*;
use crate::config::{SaturationConfigSet, ScaleToZeroConfigSet};

const NAMESPACES: [&str; 2] = ["prod", "lab"];
const MODELS: [&str; 3] = ["m1", "m2", "m3"];

fn pod_strategy() -> impl Strategy<Value = (f64, u64)> {
    // Mix values on and around the default thresholds (0.8 kv, 5 queue) with random ones.
    let kv = prop_oneof![
        Just(0.0),
        Just(0.7),
        Just(0.8),
        Just(0.65),
        Just(0.75),
        0.0..=1.0f64
    ];
    let queue = prop_oneof![Just(0u64), Just(2), Just(5), 0u64..12];
    (kv, queue)
}

fn variant_strategy() -> impl Strategy<Value = Variant> {
    (
        0..NAMESPACES.len(),
        0..MODELS.len(),
        prop_oneof![Just(10.0), Just(15.0), Just(40.0), 0.0..100.0f64],
        0u32..5,
        0u32..5,
        0u32..7,
        0u32..3,
        proptest::collection::vec(pod_strategy(), SizeRange::from(0..6)),
        any::<bool>(),
    )
        .prop_map(
            |(ns, model, cost, spec, status, desired, not_ready, pods, some_stuck)| Variant {
                name: String::new().into(),
                namespace: NAMESPACES[ns].into(),
                model_id: MODELS[model].into(),
                target_name: String::new().into(),
                accelerator: "A100".into(),
                cost,
                spec_replicas: spec,
                replicas: status,
                ready_replicas: status.saturating_sub(not_ready),
                previous_desired: desired,
                // Stuck replicas are among the not-ready ones.
                stuck_replicas: if some_stuck { not_ready.min(status) } else { 0 },
                gpus_per_replica: 1,
                min_replicas: 0,
                max_replicas: None,
                starting_pods: Vec::new(),
                ready_pods: Vec::new(),
                pods: pods
                    .into_iter()
                    .enumerate()
                    .map(|(i, (kv, queue))| PodMetrics {
                        name: format!("pod-{i}").into(),
                        kv_cache_usage: kv,
                        queue_length: queue,
                        served_rps: None,
                        waiting: None,
                    })
                    .collect(),
            },
        )
}

fn snapshot_strategy() -> impl Strategy<Value = Snapshot> {
    (
        proptest::collection::vec(variant_strategy(), SizeRange::from(1..10)),
        any::<bool>(),
        proptest::collection::vec(
            (
                0..NAMESPACES.len(),
                0..MODELS.len(),
                prop_oneof![Just(0.0), Just(5.0)],
            ),
            SizeRange::from(0..4),
        ),
    )
        .prop_map(|(mut variants, stz, counts)| {
            for (i, v) in variants.iter_mut().enumerate() {
                // Unique names; reversed-ish so that input order differs from name order.
                v.name = format!("v{:02}", 20 - i).into();
                v.target_name = v.name.clone();
            }
            let stz_entries: BTreeMap<String, serde_json::Value> = BTreeMap::from([(
                "default".to_owned(),
                serde_json::json!({"enable_scale_to_zero": stz}),
            )]);
            Snapshot {
                saturation_config: SaturationConfigSet::default(),
                scale_to_zero_config: ScaleToZeroConfigSet::parse(stz_entries.iter())
                    .unwrap()
                    .value,
                request_counts: counts
                    .into_iter()
                    .map(|(ns, m, c)| ((NAMESPACES[ns].to_owned(), MODELS[m].to_owned()), c))
                    .collect(),
                variants,
                gpu_inventory: None,
                time: None,
                wva_next_state: None,
            }
        })
}

/// The target a variant holds at when nothing scales it.
fn hold_target(d: &Decision) -> u32 {
    if d.previous_desired != 0 && d.previous_desired != d.current_replicas {
        d.previous_desired
    } else {
        d.current_replicas
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn report_does_not_depend_on_input_order(s in snapshot_strategy(), seed in any::<u64>()) {
        let report = decide(&s, Policy::WvaV050);
        let mut shuffled = s.clone();
        // A deterministic permutation from the seed: rotate and reverse variants and pods.
        let n = shuffled.variants.len();
        shuffled.variants.rotate_left((seed as usize) % n);
        if seed & 1 == 1 { shuffled.variants.reverse(); }
        for v in &mut shuffled.variants {
            v.pods.reverse();
            let m = v.pods.len().max(1);
            v.pods.rotate_left((seed as usize >> 3) % m);
        }
        prop_assert_eq!(serde_json::to_value(&report).unwrap(), serde_json::to_value(decide(&shuffled, Policy::WvaV050)).unwrap());
    }

    #[test]
    fn every_variant_has_exactly_one_decision(s in snapshot_strategy()) {
        let report = decide(&s, Policy::WvaV050);
        prop_assert_eq!(report.decisions.len(), s.variants.len());
        let decided: BTreeSet<(&str, &str)> = report.decisions.iter().map(|d| (&*d.namespace, &*d.name)).collect();
        let input: BTreeSet<(&str, &str)> = s.variants.iter().map(|v| (&*v.namespace, &*v.name)).collect();
        prop_assert_eq!(decided, input);
        for d in &report.decisions {
            prop_assert_eq!(d.action, Action::from_replicas(d.current_replicas, d.target_replicas));
            prop_assert!(!d.reason.is_empty() && !d.steps.is_empty());
        }
    }

    #[test]
    fn at_most_one_variant_per_model_moves_by_one(s in snapshot_strategy()) {
        let report = decide(&s, Policy::WvaV050);
        for model in &report.models {
            if model.scale_to_zero_applied || model.minimum_enforced {
                continue;
            }
            let moved: Vec<&Decision> = report.decisions.iter()
                .filter(|d| *d.namespace == *model.namespace && *d.model_id == *model.model_id && d.metrics_available)
                .filter(|d| d.target_replicas != hold_target(d))
                .collect();
            prop_assert!(moved.len() <= 1, "{} moved in {}", moved.len(), model.model_id);
            if model.in_transition {
                prop_assert!(moved.is_empty());
            }
            for d in moved {
                prop_assert_eq!(d.target_replicas.abs_diff(hold_target(d)), 1);
            }
        }
    }

    #[test]
    fn no_variant_with_pending_replicas_is_scaled_up(s in snapshot_strategy()) {
        let report = decide(&s, Policy::WvaV050);
        for d in report.decisions.iter().filter(|d| d.pending_replicas > 0) {
            prop_assert!(d.target_replicas <= hold_target(d) || !d.metrics_available,
                "{} pending {} target {} hold {}", d.name, d.pending_replicas, d.target_replicas, hold_target(d));
        }
    }

    #[test]
    fn nothing_active_goes_below_one_unless_scale_to_zero_applied(s in snapshot_strategy()) {
        let report = decide(&s, Policy::WvaV050);
        let applied: BTreeSet<(&str, &str)> = report.models.iter()
            .filter(|m| m.scale_to_zero_applied)
            .map(|m| (&*m.namespace, &*m.model_id))
            .collect();
        for (d, v) in report.decisions.iter().map(|d| (d, s.variants.iter().find(|v| v.namespace == d.namespace && v.name == d.name).unwrap())) {
            if v.is_active() && d.target_replicas == 0 {
                prop_assert!(applied.contains(&(&*d.namespace, &*d.model_id)), "{} went to 0", d.name);
            }
        }
    }

    #[test]
    fn snapshot_json_round_trip_gives_the_same_report(s in snapshot_strategy()) {
        let back = Snapshot::from_json(&s.to_json()).unwrap();
        prop_assert_eq!(decide(&back, Policy::WvaV050), decide(&s, Policy::WvaV050));
    }
}
