use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::config::{SaturationConfigSet, SaturationScalingConfig, ScaleToZeroConfigSet};

fn saturation(entries: Value) -> SaturationConfigSet {
    let map: BTreeMap<String, Value> = serde_json::from_value(entries).unwrap();
    SaturationConfigSet::parse(map.iter()).unwrap().value
}

fn scale_to_zero(entries: Value) -> ScaleToZeroConfigSet {
    let map: BTreeMap<String, Value> = serde_json::from_value(entries).unwrap();
    ScaleToZeroConfigSet::parse(map.iter()).unwrap().value
}

fn pod(name: &str, kv: f64, queue: u64) -> PodMetrics {
    PodMetrics {
        name: name.into(),
        kv_cache_usage: kv,
        queue_length: queue,
        served_rps: None,
        waiting: None,
    }
}

/// A stable variant: `replicas` ready, previous desired = replicas, one pod per replica.
fn variant(name: &str, cost: f64, pods: Vec<PodMetrics>) -> Variant {
    let n = pods.len() as u32;
    Variant {
        name: name.into(),
        namespace: "prod".into(),
        model_id: "m".into(),
        target_name: name.into(),
        accelerator: "A100".into(),
        cost,
        spec_replicas: n.max(1),
        replicas: n.max(1),
        ready_replicas: n.max(1),
        previous_desired: n,
        stuck_replicas: 0,
        gpus_per_replica: 1,
        min_replicas: 0,
        max_replicas: None,
        starting_pods: Vec::new(),
        ready_pods: Vec::new(),
        pods,
    }
}

fn snapshot(variants: Vec<Variant>) -> Snapshot {
    Snapshot {
        saturation_config: SaturationConfigSet::default(),
        scale_to_zero_config: ScaleToZeroConfigSet::default(),
        request_counts: BTreeMap::new(),
        variants,
        gpu_inventory: None,
        time: None,
        wva_next_state: None,
    }
}

fn decision<'a>(report: &'a Report, name: &str) -> &'a Decision {
    report
        .decisions
        .iter()
        .find(|d| d.name == name.into())
        .unwrap()
}

fn cfg(kv: f64, queue: f64, kv_spare: f64, queue_spare: f64) -> SaturationScalingConfig {
    SaturationScalingConfig {
        kv_cache_threshold: kv,
        queue_length_threshold: queue,
        kv_spare_trigger: kv_spare,
        queue_spare_trigger: queue_spare,
        ..Default::default()
    }
}

// ---- analyzer (upstream `AnalyzeModelSaturation`) ----

#[test]
fn saturation_is_inclusive() {
    let c = cfg(0.8, 5.0, 0.1, 3.0);
    assert!(
        analyzer::is_saturated(&pod("a", 0.8, 0), &c),
        "kv == threshold is saturated"
    );
    assert!(
        analyzer::is_saturated(&pod("a", 0.0, 5), &c),
        "queue == threshold is saturated"
    );
    assert!(!analyzer::is_saturated(
        &pod("a", 0.7999999999999999, 4),
        &c
    ));
}

#[test]
fn variant_averages_cover_unsaturated_replicas_only() {
    let c = cfg(0.8, 5.0, 0.1, 3.0);
    let pods = [pod("a", 0.5, 1), pod("b", 0.9, 0), pod("c", 0.3, 3)];
    let refs: Vec<&PodMetrics> = pods.iter().collect();
    let a = analyzer::analyze_variant(&refs, &c);
    assert_eq!(a.replica_count, 3);
    assert_eq!(a.non_saturated_count, 2);
    assert_eq!(a.saturated_pods, [Text::from("b")]);
    assert_eq!(a.avg_spare_kv_capacity, ((0.8 - 0.5) + (0.8 - 0.3)) / 2.0);
    assert_eq!(a.avg_spare_queue_length, (4.0 + 2.0) / 2.0);
    assert_eq!(a.max_kv_cache_usage, 0.9);
    assert_eq!(a.max_queue_length, 3);
}

#[test]
fn all_saturated_means_zero_spare_and_scale_up() {
    let c = cfg(0.8, 5.0, 0.1, 3.0);
    let pods = [pod("a", 0.9, 0)];
    let refs: Vec<&PodMetrics> = pods.iter().collect();
    let v = analyzer::analyze_variant(&refs, &c);
    let m = analyzer::analyze_model([&v], &c);
    assert_eq!(
        (m.avg_spare_kv_capacity, m.avg_spare_queue_length),
        (0.0, 0.0)
    );
    assert!(m.should_scale_up);
    assert!(!m.scale_down_safe);
}

#[test]
fn all_zero_config_never_triggers() {
    let c = cfg(0.0, 0.0, 0.0, 0.0);
    let pods = [pod("a", 0.0, 0), pod("b", 0.5, 9)];
    let refs: Vec<&PodMetrics> = pods.iter().collect();
    let v = analyzer::analyze_variant(&refs, &c);
    assert_eq!(
        v.non_saturated_count, 0,
        "every replica is saturated at threshold 0"
    );
    let m = analyzer::analyze_model([&v], &c);
    assert!(!m.should_scale_up, "0 < 0 is false");
}

#[test]
fn binary64_docs_example_does_not_trigger_scale_up() {
    // Docs: "avg spare 0.10 => scale-up"; in binary64 the average is 0.10000000000000003 and the
    // trigger is strict `<` (docs/upstream.md#decision).
    let s = Snapshot {
        saturation_config: saturation(json!({"default": {}})),
        ..snapshot(vec![
            variant("a", 10.0, vec![pod("a-1", 0.65, 0)]),
            variant("b", 10.0, vec![pod("b-1", 0.75, 0)]),
        ])
    };
    let report = decide(&s, Policy::WvaV050);
    let m = &report.models[0];
    assert_eq!(m.avg_spare_kv_capacity, 0.10000000000000003);
    assert!(!m.should_scale_up);
    // A trigger one ulp above the average fires.
    let c = cfg(0.8, 5.0, 0.10000000000000003_f64.next_up(), 3.0);
    let (a, b) = ([pod("a-1", 0.65, 0)], [pod("b-1", 0.75, 0)]);
    let va = analyzer::analyze_variant(&a.iter().collect::<Vec<_>>(), &c);
    let vb = analyzer::analyze_variant(&b.iter().collect::<Vec<_>>(), &c);
    assert!(analyzer::analyze_model([&va, &vb], &c).should_scale_up);
}

#[test]
fn scale_up_triggers_are_strict() {
    // queue spare exactly at the trigger: 5 - 2 = 3, not < 3.
    let c = cfg(0.75, 5.0, 0.25, 3.0);
    let at = [pod("a", 0.5, 2)];
    let refs: Vec<&PodMetrics> = at.iter().collect();
    let m = analyzer::analyze_model([&analyzer::analyze_variant(&refs, &c)], &c);
    assert_eq!(
        (m.avg_spare_kv_capacity, m.avg_spare_queue_length),
        (0.25, 3.0)
    );
    assert!(!m.should_scale_up);
    assert_eq!(m.scale_up_reason, "");
    let below = [pod("a", 0.5, 3)];
    let refs: Vec<&PodMetrics> = below.iter().collect();
    let m = analyzer::analyze_model([&analyzer::analyze_variant(&refs, &c)], &c);
    assert!(m.should_scale_up);
    assert_eq!(m.scale_up_reason, "queue spare Saturation low (2.0 < 3.0)");
    let kv = [pod("a", 0.5000001, 0)];
    let refs: Vec<&PodMetrics> = kv.iter().collect();
    let m = analyzer::analyze_model([&analyzer::analyze_variant(&refs, &c)], &c);
    assert_eq!(m.scale_up_reason, "KV spare Saturation low (0.250 < 0.250)");
    let both = [pod("a", 0.6, 4)];
    let refs: Vec<&PodMetrics> = both.iter().collect();
    let m = analyzer::analyze_model([&analyzer::analyze_variant(&refs, &c)], &c);
    assert_eq!(
        m.scale_up_reason,
        "both KV spare (0.150 < 0.250) and queue spare (1.0 < 3.0)"
    );
}

#[test]
fn scale_down_check_is_inclusive_and_needs_two_replicas() {
    let c = cfg(0.75, 4.0, 0.25, 2.0);
    // Two replicas at kv 0.25: on one replica the kv spare is exactly 0.25 (>=).
    assert!(analyzer::is_scale_down_safe(2, 0.5, 4.0, &c));
    assert!(!analyzer::is_scale_down_safe(2, 0.49999999, 4.0, &c));
    // Queue: two replicas with queue 1 -> one replica with 2 waiting leaves exactly 2 spare.
    assert!(analyzer::is_scale_down_safe(2, 0.5, 3.0, &c));
    assert!(!analyzer::is_scale_down_safe(2, 0.5, 2.9, &c));
    assert!(
        !analyzer::is_scale_down_safe(1, 0.75, 4.0, &c),
        "N < 2 is never safe"
    );
    assert!(!analyzer::is_scale_down_safe(0, 0.0, 0.0, &c));
}

#[test]
fn model_sums_variants_in_name_order_weighted_by_unsaturated_count() {
    let c = cfg(0.8, 5.0, 0.1, 3.0);
    let a_pods = [pod("a1", 0.2, 0), pod("a2", 0.4, 1)];
    let b_pods = [pod("b1", 0.9, 0), pod("b2", 0.6, 4)];
    let a = analyzer::analyze_variant(&a_pods.iter().collect::<Vec<_>>(), &c);
    let b = analyzer::analyze_variant(&b_pods.iter().collect::<Vec<_>>(), &c);
    let m = analyzer::analyze_model([&a, &b], &c);
    assert_eq!(m.total_replicas, 4);
    assert_eq!(m.non_saturated_count, 3);
    let expected_kv = (a.avg_spare_kv_capacity * 2.0 + b.avg_spare_kv_capacity * 1.0) / 3.0;
    assert_eq!(m.avg_spare_kv_capacity, expected_kv);
}

// ---- planner (upstream `CalculateSaturationTargets`) ----

fn saturated_snapshot(variants: Vec<Variant>) -> Snapshot {
    snapshot(variants)
}

#[test]
fn scale_up_goes_to_the_cheapest_variant_by_one() {
    let s = saturated_snapshot(vec![
        variant("expensive", 40.0, vec![pod("e1", 0.9, 9)]),
        variant("cheap", 15.0, vec![pod("c1", 0.9, 9), pod("c2", 0.85, 0)]),
    ]);
    let r = decide(&s, Policy::WvaV050);
    let cheap = decision(&r, "cheap");
    assert_eq!(
        (cheap.current_replicas, cheap.target_replicas, cheap.action),
        (2, 3, Action::ScaleUp)
    );
    assert_eq!(decision(&r, "expensive").action, Action::NoChange);
    assert!(cheap.reason.starts_with("scale-up: "), "{}", cheap.reason);
}

#[test]
fn scale_up_cost_tie_goes_to_the_smallest_name() {
    let s = saturated_snapshot(vec![
        variant("b", 10.0, vec![pod("b1", 0.9, 0)]),
        variant("a", 10.0, vec![pod("a1", 0.9, 0)]),
    ]);
    let r = decide(&s, Policy::WvaV050);
    assert_eq!(decision(&r, "a").target_replicas, 2);
    assert_eq!(decision(&r, "b").target_replicas, 1);
}

#[test]
fn pending_replicas_block_scale_up_of_that_variant_only() {
    // The cheap variant has a pod that reports metrics but is not ready yet (model loading).
    let mut cheap = variant("cheap", 10.0, vec![pod("c1", 0.9, 9), pod("c2", 0.75, 4)]);
    cheap.ready_replicas = 1;
    let s = saturated_snapshot(vec![
        cheap,
        variant("expensive", 30.0, vec![pod("e1", 0.95, 9)]),
    ]);
    let r = decide(&s, Policy::WvaV050);
    let c = decision(&r, "cheap");
    assert_eq!((c.pending_replicas, c.target_replicas), (1, 2));
    assert!(c.reason.contains("pending"), "{}", c.reason);
    assert_eq!(decision(&r, "expensive").target_replicas, 2);
}

#[test]
fn without_pending_awareness_the_cheap_loading_variant_is_scaled_again() {
    let mut cheap = variant("cheap", 10.0, vec![pod("c1", 0.9, 9), pod("c2", 0.75, 4)]);
    cheap.ready_replicas = 1;
    let s = saturated_snapshot(vec![
        cheap,
        variant("expensive", 30.0, vec![pod("e1", 0.95, 9)]),
    ]);
    let r = decide(&s, Policy::NoPendingAwareness);
    assert_eq!(r.policy, "no-pending-awareness");
    assert_eq!(
        decision(&r, "cheap").target_replicas,
        3,
        "the cascade v0.5.0 prevents"
    );
    assert_eq!(decision(&r, "expensive").target_replicas, 1);
}

#[test]
fn every_variant_pending_blocks_scale_up() {
    let mut only = variant("only", 10.0, vec![pod("o1", 0.9, 9), pod("o2", 0.9, 9)]);
    only.ready_replicas = 1;
    let r = decide(&saturated_snapshot(vec![only]), Policy::WvaV050);
    let d = decision(&r, "only");
    assert_eq!(d.action, Action::NoChange);
    assert!(
        d.reason
            .contains("every variant of the model has pending replicas"),
        "{}",
        d.reason
    );
}

#[test]
fn scale_down_takes_from_the_most_expensive_above_one() {
    // Idle model: plenty of spare capacity.
    let s = snapshot(vec![
        variant("cheap", 10.0, vec![pod("c1", 0.1, 0), pod("c2", 0.1, 0)]),
        variant("pricey", 50.0, vec![pod("p1", 0.1, 0)]),
        variant("mid", 20.0, vec![pod("m1", 0.1, 0), pod("m2", 0.1, 0)]),
    ]);
    let r = decide(&s, Policy::WvaV050);
    assert!(r.models[0].scale_down_safe);
    assert_eq!(
        decision(&r, "pricey").target_replicas,
        1,
        "never below one replica"
    );
    assert_eq!(decision(&r, "mid").target_replicas, 1);
    assert_eq!(decision(&r, "mid").action, Action::ScaleDown);
    assert_eq!(decision(&r, "cheap").target_replicas, 2);
}

#[test]
fn scale_down_cost_tie_takes_the_greatest_name() {
    let s = snapshot(vec![
        variant("a", 10.0, vec![pod("a1", 0.1, 0), pod("a2", 0.1, 0)]),
        variant("b", 10.0, vec![pod("b1", 0.1, 0), pod("b2", 0.1, 0)]),
    ]);
    let r = decide(&s, Policy::WvaV050);
    assert_eq!(decision(&r, "b").target_replicas, 1);
    assert_eq!(decision(&r, "a").target_replicas, 2);
}

#[test]
fn scale_down_blocked_when_every_variant_is_at_one() {
    let s = snapshot(vec![
        variant("a", 10.0, vec![pod("a1", 0.0, 0)]),
        variant("b", 20.0, vec![pod("b1", 0.0, 0)]),
    ]);
    let r = decide(&s, Policy::WvaV050);
    assert!(r.models[0].scale_down_safe);
    assert!(r.decisions.iter().all(|d| d.action == Action::NoChange));
    assert!(
        decision(&r, "b")
            .reason
            .contains("every variant is at 1 replica")
    );
}

#[test]
fn scaling_in_flight_puts_the_model_in_transition() {
    let mut a = variant("a", 10.0, vec![pod("a1", 0.9, 9)]);
    a.previous_desired = 2; // asked for 2, still 1
    let b = variant("b", 5.0, vec![pod("b1", 0.9, 9)]);
    let r = decide(&snapshot(vec![a, b]), Policy::WvaV050);
    assert!(r.models[0].in_transition);
    assert_eq!(
        decision(&r, "a").target_replicas,
        2,
        "holds the desired count in flight"
    );
    assert_eq!(
        decision(&r, "b").target_replicas,
        1,
        "no scale-up anywhere in the model"
    );
    assert!(decision(&r, "b").reason.starts_with("model in transition"));
    assert_eq!(decision(&r, "b").steps[1].stage, "transition");
}

#[test]
fn fewer_pods_reporting_than_replicas_is_a_transition() {
    let mut a = variant("a", 10.0, vec![pod("a1", 0.9, 9)]);
    a.replicas = 2;
    a.spec_replicas = 2;
    a.ready_replicas = 1;
    a.previous_desired = 0;
    let r = decide(&snapshot(vec![a]), Policy::WvaV050);
    assert!(r.models[0].in_transition);
    assert_eq!(
        r.models[0].transition_reasons,
        ["a: 1 pods report metrics, 2 replicas"]
    );
    assert_eq!(decision(&r, "a").target_replicas, 2);
}

#[test]
fn current_falls_back_to_spec_replicas_when_status_says_zero() {
    let mut a = variant("a", 10.0, vec![pod("a1", 0.5, 0), pod("a2", 0.5, 0)]);
    a.replicas = 0;
    a.ready_replicas = 0;
    a.spec_replicas = 2;
    assert_eq!(a.current_replicas(), 2);
    assert_eq!(a.pending_replicas(), 2);
}

// ---- no metrics, inactive ----

#[test]
fn variant_without_pods_holds() {
    let mut quiet = variant("quiet", 10.0, vec![]);
    quiet.replicas = 3;
    quiet.spec_replicas = 3;
    quiet.ready_replicas = 3;
    quiet.previous_desired = 4;
    let mut fresh = variant("fresh", 10.0, vec![]);
    fresh.replicas = 2;
    fresh.spec_replicas = 2;
    fresh.previous_desired = 0;
    let r = decide(&snapshot(vec![quiet, fresh]), Policy::WvaV050);
    assert!(r.models.is_empty(), "a model with no pod is not reported");
    let q = decision(&r, "quiet");
    assert_eq!(
        (q.target_replicas, q.action, q.metrics_available),
        (4, Action::ScaleUp, false)
    );
    let f = decision(&r, "fresh");
    assert_eq!((f.target_replicas, f.action), (2, Action::NoChange));
}

#[test]
fn inactive_variant_targets_zero_and_is_left_out() {
    let mut off = variant("off", 1.0, vec![pod("x", 0.99, 99)]);
    off.spec_replicas = 0;
    off.replicas = 0;
    off.ready_replicas = 0;
    let on = variant("on", 10.0, vec![pod("o1", 0.1, 0)]);
    let r = decide(&snapshot(vec![off, on]), Policy::WvaV050);
    let d = decision(&r, "off");
    assert_eq!(
        (d.target_replicas, d.metrics_available, d.action),
        (0, false, Action::NoChange)
    );
    assert_eq!(
        r.models[0].total_replicas, 1,
        "the inactive variant's pod is not analysed"
    );
}

#[test]
fn accelerator_plays_no_part() {
    let mut a = variant("a", 10.0, vec![pod("a1", 0.9, 9)]);
    a.accelerator = String::new().into();
    let r = decide(&snapshot(vec![a]), Policy::WvaV050);
    assert!(decision(&r, "a").metrics_available);
    assert_eq!(decision(&r, "a").target_replicas, 2);
}

// ---- enforcer (upstream `EnforcePolicy`) ----

fn idle_model_snapshot(count: Option<f64>, enabled: bool) -> Snapshot {
    let mut s = snapshot(vec![
        variant("a", 10.0, vec![pod("a1", 0.0, 0)]),
        variant("b", 20.0, vec![pod("b1", 0.0, 0)]),
    ]);
    s.scale_to_zero_config = scale_to_zero(
        json!({"default": {"enable_scale_to_zero": enabled, "retention_period": "15m"}}),
    );
    if let Some(c) = count {
        s.request_counts.insert(("prod".into(), "m".into()), c);
    }
    s
}

#[test]
fn scale_to_zero_applies_only_with_zero_requests() {
    let r = decide(&idle_model_snapshot(Some(0.0), true), Policy::WvaV050);
    assert!(r.models[0].scale_to_zero_applied);
    assert!(
        r.decisions
            .iter()
            .all(|d| d.target_replicas == 0 && d.action == Action::ScaleDown)
    );
    assert_eq!(
        &*decision(&r, "a").reason,
        "scale-to-zero: no successful request in the last 15m0s"
    );

    let busy = decide(&idle_model_snapshot(Some(3.0), true), Policy::WvaV050);
    assert!(!busy.models[0].scale_to_zero_applied);
    assert!(busy.decisions.iter().all(|d| d.target_replicas == 1));

    let unknown = decide(&idle_model_snapshot(None, true), Policy::WvaV050);
    assert!(
        !unknown.models[0].scale_to_zero_applied,
        "unknown count keeps the targets"
    );
    assert!(
        decision(&unknown, "a")
            .steps
            .iter()
            .any(|s| s.note.contains("unknown"))
    );

    let disabled = decide(&idle_model_snapshot(Some(0.0), false), Policy::WvaV050);
    assert!(!disabled.models[0].scale_to_zero_applied);
    assert!(disabled.decisions.iter().all(|d| d.target_replicas == 1));
}

#[test]
fn scale_to_zero_leaves_variants_without_metrics_alone() {
    let mut s = idle_model_snapshot(Some(0.0), true);
    let mut quiet = variant("quiet", 5.0, vec![]);
    quiet.replicas = 1;
    quiet.spec_replicas = 1;
    s.variants.push(quiet);
    let r = decide(&s, Policy::WvaV050);
    assert_eq!(decision(&r, "quiet").target_replicas, 1);
}

#[test]
fn minimum_enforcement_keeps_the_cheapest_at_one() {
    let v = |name: &str, cost: f64| PlannedVariant {
        name: Box::leak(name.to_owned().into_boxed_str()),
        cost,
        current: 1,
        desired: 0,
        pending: 0,
        reporting: 1,
        stuck: 0,
    };
    let variants = [v("b", 5.0), v("a", 5.0), v("c", 1.0)];
    let mut targets = [0, 0, 0];
    let e = enforcer::enforce(&variants, &mut targets, false, 0, None);
    assert_eq!(e, enforcer::Enforcement::RaisedToOne(2));
    assert_eq!(targets, [0, 0, 1]);
    let variants = [v("b", 5.0), v("a", 5.0)];
    let mut targets = [0, 0];
    enforcer::enforce(&variants, &mut targets, false, 0, None);
    assert_eq!(targets, [0, 1], "cost tie: smallest name");
}

// ---- overrides ----

#[test]
fn per_model_override_thresholds_apply() {
    let mut s = snapshot(vec![variant("a", 10.0, vec![pod("a1", 0.5, 0)])]);
    s.saturation_config = saturation(json!({
        "default": {},
        "strict": {"model_id": "m", "namespace": "prod", "kvSpareTrigger": 0.4}
    }));
    let r = decide(&s, Policy::WvaV050);
    assert_eq!(r.models[0].saturation_config_key, "strict");
    assert!(
        r.models[0].should_scale_up,
        "spare 0.3 < 0.4 under the override"
    );
}

// ---- report ----

#[test]
fn report_is_sorted_and_has_one_decision_per_variant() {
    let mut other_ns = variant("z", 10.0, vec![pod("z1", 0.5, 0)]);
    other_ns.namespace = "aaa".into();
    let s = snapshot(vec![
        variant("b", 10.0, vec![pod("b1", 0.5, 0)]),
        other_ns,
        variant("a", 10.0, vec![]),
    ]);
    let r = decide(&s, Policy::WvaV050);
    let names: Vec<(&str, &str)> = r
        .decisions
        .iter()
        .map(|d| (&*d.namespace, &*d.name))
        .collect();
    assert_eq!(names, [("aaa", "z"), ("prod", "a"), ("prod", "b")]);
    assert_eq!(
        r.models.iter().map(|m| &*m.namespace).collect::<Vec<_>>(),
        ["aaa", "prod"]
    );
    let table = r.to_table();
    assert!(
        table.contains("policy: wva-v0.5.0") && table.lines().count() >= 7,
        "{table}"
    );
}

#[test]
fn snapshot_json_round_trips() {
    let mut s = idle_model_snapshot(Some(0.0), true);
    s.saturation_config = saturation(
        json!({"default": {"kvCacheThreshold": 0.7}, "o": {"model_id": "m", "namespace": "prod"}}),
    );
    let text = s.to_json();
    let back = Snapshot::from_json(&text).unwrap();
    assert_eq!(back.variants, s.variants);
    assert_eq!(back.request_counts, s.request_counts);
    assert_eq!(back.saturation_config, s.saturation_config);
    assert_eq!(back.scale_to_zero_config, s.scale_to_zero_config);
    assert_eq!(decide(&back, Policy::WvaV050), decide(&s, Policy::WvaV050));
}

mod properties;

#[test]
fn the_table_escapes_control_characters() {
    let mut snapshot =
        Snapshot::from_json(include_str!("../../scenarios/snapshot-scale-up.json")).unwrap();
    snapshot.variants[0].model_id = "evil\u{1b}[2J\nmodel".into();
    snapshot.variants[0].name = "va\u{7}".into();
    let table = decide(&snapshot, Policy::default()).to_table();
    assert!(
        !table.contains('\u{1b}') && !table.contains('\u{7}'),
        "{table:?}"
    );
    assert!(table.contains("evil\\u{1b}[2J\\nmodel"), "{table}");
}

/// A pod that never becomes ready holds the whole model in transition (upstream); marked stuck,
/// it holds nothing: scale-up spills to the next cheapest variant at once, and the stuck
/// variant keeps its replicas.
#[test]
fn stuck_replicas_do_not_freeze_the_model() {
    let mut cheap = variant("cheap", 1.0, vec![pod("cheap-0", 0.95, 0)]);
    cheap.spec_replicas = 2;
    cheap.replicas = 2;
    cheap.previous_desired = 2;
    let pricey = variant("pricey", 5.0, vec![pod("pricey-0", 0.95, 0)]);

    let frozen = decide(
        &snapshot(vec![cheap.clone(), pricey.clone()]),
        Policy::WvaV050,
    );
    assert!(frozen.models[0].in_transition, "loading: the model holds");
    assert!(
        frozen
            .decisions
            .iter()
            .all(|d| d.target_replicas == d.current_replicas)
    );

    cheap.stuck_replicas = 1;
    let report = decide(&snapshot(vec![cheap, pricey]), Policy::WvaV050);
    assert!(!report.models[0].in_transition, "{:?}", report.models[0]);
    assert_eq!(
        decision(&report, "cheap").target_replicas,
        2,
        "kept, not scaled up"
    );
    assert_eq!(
        decision(&report, "pricey").target_replicas,
        2,
        "the spill-over"
    );
}

#[test]
fn stuck_replicas_are_read_from_snapshots_and_checked() {
    let text = include_str!("../../scenarios/snapshot-scale-up.json");
    let mut value: Value = serde_json::from_str(text).unwrap();
    value["variants"][0]["stuckReplicas"] = json!(1);
    let snapshot = Snapshot::from_value(&value).unwrap();
    assert_eq!(snapshot.variants[0].stuck_replicas, 1);
    assert!(snapshot.to_json().contains("\"stuckReplicas\": 1"));
    value["variants"][0]["stuckReplicas"] = json!(99);
    let errors = Snapshot::from_value(&value).unwrap_err();
    assert!(
        errors[0]
            .to_string()
            .starts_with("variants[0].stuckReplicas: must be at most the current replicas"),
        "{errors:?}"
    );
    let untouched = Snapshot::from_json(text).unwrap();
    assert!(
        !untouched.to_json().contains("stuckReplicas"),
        "absent stays absent"
    );
}

// ---- fidelity with upstream (side-by-side runs) ----

#[test]
fn cost_ties_break_on_the_target_deployment_name_not_the_va_name() {
    // VA "a" targets Deployment "z-decode", VA "b" targets "a-decode": upstream picks "a-decode".
    let mut a = variant("a", 5.0, vec![pod("a1", 0.95, 0)]);
    a.target_name = "z-decode".into();
    let mut b = variant("b", 5.0, vec![pod("b1", 0.95, 0)]);
    b.target_name = "a-decode".into();
    let r = decide(&snapshot(vec![a, b]), Policy::WvaV050);
    assert_eq!(decision(&r, "b").target_replicas, 2, "{}", r.to_table());
    assert_eq!(decision(&r, "a").target_replicas, 1);
}

#[test]
fn negative_zero_cost_equals_zero() {
    // Equal costs (-0.0 == 0.0): the name decides, so "a" scales up although "b" is -0.0.
    let a = variant("a", 0.0, vec![pod("a1", 0.95, 0)]);
    let b = variant("b", -0.0, vec![pod("b1", 0.95, 0)]);
    let r = decide(&snapshot(vec![a, b]), Policy::WvaV050);
    assert_eq!(decision(&r, "a").target_replicas, 2, "{}", r.to_table());
    assert_eq!(decision(&r, "b").target_replicas, 1);
}

#[test]
fn a_snapshot_with_two_variants_on_one_deployment_is_rejected_with_the_path() {
    let mut s = snapshot(vec![variant("a", 5.0, vec![]), variant("b", 5.0, vec![])]);
    s.variants[1].target_name = "a".into();
    let errors = Snapshot::from_json(&s.to_json()).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path, "variants[1].targetName");
    assert!(
        errors[0]
            .message
            .contains("variants[0] already targets Deployment prod/a"),
        "{errors:?}"
    );
}

// ---- GPU limiter (upstream `DefaultLimiter` / `GreedyBySaturation`) ----

/// Two models on A100s, each wanting one more replica of 2 GPUs: `a` (every pod saturated, no
/// spare capacity) is more saturated than `b` (0.05 spare). 12 GPUs, 2 taken by other
/// workloads, 8 by the variants' 4 replicas: 2 free, one replica's worth.
fn limited_snapshot(enable: bool, requested_by_others: u64) -> Snapshot {
    let mut a = variant("a", 10.0, vec![pod("a1", 0.95, 0), pod("a2", 0.95, 0)]);
    let mut b = variant("b", 5.0, vec![pod("b1", 0.85, 0), pod("b2", 0.75, 0)]);
    a.model_id = "m1".into();
    b.model_id = "m2".into();
    a.gpus_per_replica = 2;
    b.gpus_per_replica = 2;
    b.accelerator = "NVIDIA-A100-SXM4-80GB".into();
    let mut s = snapshot(vec![b, a]);
    s.saturation_config = saturation(json!({"default": {"enableLimiter": enable}}));
    s.gpu_inventory = Some(BTreeMap::from([(
        "A100".to_owned(),
        GpuPool {
            allocatable: 12,
            requested_by_others,
        },
    )]));
    s
}

#[test]
fn the_limiter_gives_free_gpus_to_the_most_saturated_and_says_so() {
    let r = decide(&limited_snapshot(true, 2), Policy::WvaV050);
    let a = decision(&r, "a");
    assert_eq!((a.target_replicas, a.action), (3, Action::ScaleUp));
    let step = a.steps.last().unwrap();
    assert_eq!(step.stage, "gpu-limiter");
    assert!(
        step.note.starts_with("allocated 2 GPUs for +1 replicas"),
        "{}",
        step.note
    );
    // `b` (named by its full product, normalised) gets nothing: its scale-up is undone, and
    // its action and reason follow.
    let b = decision(&r, "b");
    assert_eq!(
        (b.current_replicas, b.target_replicas, b.action),
        (2, 2, Action::NoChange)
    );
    assert!(
        b.reason
            .starts_with("limited: allocated 0 GPUs for +0 of +1 replicas"),
        "{}",
        b.reason
    );
    assert_eq!(b.steps.last().unwrap().stage, "gpu-limiter");
    assert_eq!(b.steps.last().unwrap().target_replicas, 2);
}

#[test]
fn gpus_that_other_workloads_request_are_not_planned_on() {
    // Upstream ignores the other workloads: with their 2 GPUs free again, both fit.
    let r = decide(&limited_snapshot(true, 0), Policy::WvaV050);
    assert_eq!(decision(&r, "a").target_replicas, 3);
    assert_eq!(decision(&r, "b").target_replicas, 3);
    // With 3 taken, nothing fits; a partial replica is not a replica.
    let r = decide(&limited_snapshot(true, 3), Policy::WvaV050);
    assert_eq!(decision(&r, "a").target_replicas, 2);
    let note = &decision(&r, "a").steps.last().unwrap().note;
    assert!(note.contains("1 free"), "{note}");
}

#[test]
fn the_limiter_runs_only_when_enabled_and_given_an_inventory() {
    let off = decide(&limited_snapshot(false, 2), Policy::WvaV050);
    assert_eq!(decision(&off, "b").target_replicas, 3);
    assert!(
        off.decisions
            .iter()
            .all(|d| d.steps.iter().all(|s| s.stage != "gpu-limiter"))
    );
    let mut no_inventory = limited_snapshot(true, 2);
    no_inventory.gpu_inventory = None;
    let r = decide(&no_inventory, Policy::WvaV050);
    assert_eq!(decision(&r, "b").target_replicas, 3);
}

#[test]
fn the_allocation_order_is_the_same_whatever_the_input_order() {
    // Full ties (same spare capacity, same cost): the name decides, every time.
    let tie = |names: [&str; 3]| {
        let variants = names
            .iter()
            .map(|n| {
                let mut v = variant(n, 10.0, vec![pod(&format!("{n}-1"), 0.9, 0)]);
                v.model_id = (*n).into();
                v
            })
            .collect();
        let mut s = snapshot(variants);
        s.saturation_config = saturation(json!({"default": {"enableLimiter": true}}));
        s.gpu_inventory = Some(BTreeMap::from([(
            "A100".to_owned(),
            GpuPool {
                allocatable: 4,
                requested_by_others: 0,
            },
        )]));
        decide(&s, Policy::WvaV050)
    };
    let first = tie(["x", "y", "z"]);
    assert_eq!(
        first
            .decisions
            .iter()
            .map(|d| d.target_replicas)
            .collect::<Vec<_>>(),
        [2, 1, 1]
    );
    assert_eq!(tie(["z", "y", "x"]), first);
    assert_eq!(tie(["y", "z", "x"]), first);
}

#[test]
fn a_variant_without_a_known_accelerator_gets_no_gpus() {
    let mut s = limited_snapshot(true, 0);
    for v in &mut s.variants {
        v.accelerator = String::new().into();
    }
    let r = decide(&s, Policy::WvaV050);
    let b = decision(&r, "b");
    assert_eq!(b.target_replicas, 2);
    assert!(b.reason.contains("accelerator is unknown"), "{}", b.reason);
}
