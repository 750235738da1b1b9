//! `wva-next` in isolation: snapshots written as JSON (the format `wva analyze` reads), cycles
//! fed the previous report's state as the controller and the simulator do.

use serde_json::{Value, json};

use super::*;
use crate::core::{Policy, Report, decide as decide_core};

/// Two variants of one model: `cheap` (L40S, 5 req/s per replica for 15/h) and `fast` (A100,
/// 8 req/s for 40/h). `served` is split evenly over the ready pods of both.
fn variants(cheap: (u32, u32), fast: (u32, u32), served: f64) -> Value {
    let ready = cheap.1 + fast.1;
    let one = |name: &str, accelerator: &str, cost: f64, (current, ready_n): (u32, u32)| {
        json!({
            "name": name, "namespace": "prod", "modelID": "m", "accelerator": accelerator,
            "cost": cost, "specReplicas": current, "replicas": current,
            "readyReplicas": ready_n, "previousDesired": current,
            "pods": (0..ready_n).map(|i| json!({
                "name": format!("{name}-{i}"),
                "kvCacheUsage": 0.3,
                "servedRps": served / f64::from(ready.max(1)),
            })).collect::<Vec<_>>(),
        })
    };
    json!([
        one("cheap", "L40S", 15.0, cheap),
        one("fast", "A100", 40.0, fast)
    ])
}

fn snapshot(time: Option<f64>, variants: Value, state: Option<&State>) -> Snapshot {
    let mut root = json!({
        "saturationConfig": {"default": {"capacityRps": {"L40S": 5, "A100": 8}}},
        "variants": variants,
    });
    if let Some(t) = time {
        root["time"] = json!(t);
    }
    if let Some(s) = state {
        root["wvaNextState"] = serde_json::to_value(s).unwrap();
    }
    Snapshot::from_value(&root).unwrap_or_else(|e| panic!("{e:?}"))
}

fn run(snapshot: &Snapshot) -> Report {
    decide_core(snapshot, Policy::WvaNext)
}

fn target(report: &Report, name: &str) -> u32 {
    report
        .decisions
        .iter()
        .find(|d| d.name == name.into())
        .unwrap()
        .target_replicas
}

fn reason<'a>(report: &'a Report, name: &str) -> &'a str {
    &report
        .decisions
        .iter()
        .find(|d| d.name == name.into())
        .unwrap()
        .reason
}

/// Which term decided for the (only) model.
fn decided_by(report: &Report) -> &'static str {
    report.models[0].next.as_ref().unwrap().decided_by
}

/// Cycles every 30 s from `from` to `to` (inclusive) at a fixed state of the world; the last
/// report and its state.
fn cycles(from: f64, to: f64, world: &Value, mut state: State) -> (Report, State) {
    let mut t = from;
    loop {
        let report = run(&snapshot(Some(t), world.clone(), Some(&state)));
        state = report.wva_next_state.clone().unwrap();
        t += 30.0;
        if t > to {
            return (report, state);
        }
    }
}

#[test]
fn demand_is_filled_several_replicas_at_once_on_the_cheapest_capacity() {
    // 20 req/s on 2×5 + 8 = 18 req/s: 20 / 0.8 − 18 = 7 req/s more, two L40S replicas.
    let report = run(&snapshot(Some(0.0), variants((2, 2), (1, 1), 20.0), None));
    assert_eq!((target(&report, "cheap"), target(&report, "fast")), (4, 1));
    let why = reason(&report, "cheap");
    assert!(
        why.contains("+2 cheap (3.00 per req/s) for 7.00 req/s"),
        "{why}"
    );
    assert_eq!(decided_by(&report), "scale-up");
}

#[test]
fn one_step_adds_at_most_the_larger_of_double_and_four() {
    let report = run(&snapshot(Some(0.0), variants((1, 1), (0, 0), 200.0), None));
    assert_eq!(target(&report, "cheap") + target(&report, "fast"), 1 + 4);
    let report = run(&snapshot(
        Some(0.0),
        variants((10, 10), (0, 0), 500.0),
        None,
    ));
    assert_eq!(target(&report, "cheap") + target(&report, "fast"), 10 + 10);
}

#[test]
fn scale_down_waits_for_a_full_window_and_the_delay_and_takes_the_priciest_capacity_first() {
    // 10 req/s on 4×5 + 2×8 = 36 req/s: low. 10 / 0.8 = 12.5 req/s are needed.
    let world = variants((4, 4), (2, 2), 10.0);
    let (early, state) = cycles(0.0, 450.0, &world, State::default());
    assert_eq!(
        (target(&early, "cheap"), target(&early, "fast")),
        (4, 2),
        "{}",
        reason(&early, "cheap")
    );
    // The window is full at 162 s, so the 300 s run ends at about 480 s.
    let (later, _) = cycles(480.0, 480.0, &world, state);
    // 23.5 req/s spare: both A100s (16), then one L40S (5) of the remaining 7.5.
    assert_eq!(
        (target(&later, "cheap"), target(&later, "fast")),
        (3, 0),
        "{}",
        reason(&later, "cheap")
    );
    assert!(reason(&later, "fast").contains("-2 fast (5.00 per req/s), -1 cheap"));
}

/// The state after ten minutes at 10 req/s on two cheap and one fast replica (18 req/s).
fn ten_minutes_at_10_rps() -> State {
    cycles(
        0.0,
        570.0,
        &variants((2, 2), (1, 1), 10.0),
        State::default(),
    )
    .1
}

/// The state a model reaches after a long quiet spell: a scale-down would come next.
fn quiet_state() -> (Value, State) {
    let world = variants((4, 4), (2, 2), 10.0);
    let (_, state) = cycles(0.0, 450.0, &world, State::default());
    (world, state)
}

#[test]
fn missing_stale_or_untimed_data_never_scales_down() {
    let (world, state) = quiet_state();
    let no_served = {
        let mut w = world.clone();
        w[0]["pods"][1]["servedRps"] = Value::Null;
        w
    };
    let no_pods = {
        let mut w = world.clone();
        w[1]["pods"] = json!([]);
        w
    };
    let cases = [
        (
            "a pod without its served rate",
            snapshot(Some(480.0), no_served, Some(&state)),
        ),
        (
            "a ready variant without metrics",
            snapshot(Some(480.0), no_pods, Some(&state)),
        ),
        ("no time", snapshot(None, world.clone(), Some(&state))),
        (
            "ten minutes of silence",
            snapshot(Some(1080.0), world.clone(), Some(&state)),
        ),
    ];
    for (what, s) in cases {
        let report = run(&s);
        for d in &report.decisions {
            assert!(
                d.target_replicas >= d.current_replicas,
                "{what}: {} {} → {}: {}",
                d.name,
                d.current_replicas,
                d.target_replicas,
                d.reason
            );
        }
    }
    // The same state with good data does scale down: the cases above are not vacuous.
    let report = run(&snapshot(Some(480.0), world, Some(&state)));
    assert!(target(&report, "fast") < 2, "{}", reason(&report, "fast"));
}

#[test]
fn stuck_pods_are_no_supply_and_put_their_variant_in_back_off() {
    // cheap: 3 replicas, 1 ready, 2 stuck — really 5 req/s, not 15. 14 req/s of demand.
    let mut world = variants((3, 1), (1, 1), 14.0);
    world[0]["stuckReplicas"] = json!(2);
    let report = run(&snapshot(Some(0.0), world.clone(), None));
    // 14 / 0.8 − 13 = 4.5 req/s more: not on cheap (in back-off) but one A100.
    assert_eq!((target(&report, "cheap"), target(&report, "fast")), (1, 2));
    assert!(
        reason(&report, "cheap").contains(
            "2 stuck replica(s) count as zero and are removed; no new replicas until 600"
        )
    );
    let state = report.wva_next_state.clone().unwrap();
    assert_eq!(state.variants["prod/cheap"].unavailable_until, Some(600.0));

    // Phantom supply: a starting pod far past the p99 start-up (450 s + 120 s by default)
    // counts as stuck, so the demand is still met elsewhere.
    let mut world = variants((2, 1), (1, 1), 14.0);
    world[0]["startingPods"] = json!([{"name": "cheap-late", "ageSeconds": 900}]);
    let report = run(&snapshot(Some(0.0), world.clone(), None));
    assert_eq!((target(&report, "cheap"), target(&report, "fast")), (1, 2));
    // Young, it is supply on its way: no action.
    world[0]["startingPods"] = json!([{"name": "cheap-late", "ageSeconds": 60}]);
    let report = run(&snapshot(Some(0.0), world, None));
    assert_eq!((target(&report, "cheap"), target(&report, "fast")), (2, 1));
}

#[test]
fn a_variant_that_keeps_failing_waits_twice_as_long_each_time() {
    let mut stuck = variants((2, 1), (1, 1), 5.0);
    stuck[0]["stuckReplicas"] = json!(1);
    let mut state = State::default();
    let mut waits = Vec::new();
    let mut t = 0.0;
    for _ in 0..5 {
        let report = run(&snapshot(Some(t), stuck.clone(), Some(&state)));
        state = report.wva_next_state.clone().unwrap();
        let until = state.variants["prod/cheap"].unavailable_until.unwrap();
        waits.push(until - t);
        t = until;
    }
    assert_eq!(waits, [600.0, 1200.0, 2400.0, 4800.0, 4800.0]);
    // A pod of the variant becoming Ready ends the run of failures.
    let mut ready = variants((1, 1), (1, 1), 5.0);
    ready[0]["readyPods"] = json!([{"name": "cheap-new", "startupSeconds": 100}]);
    let report = run(&snapshot(Some(t), ready, Some(&state)));
    assert_eq!(
        report.wva_next_state.unwrap().variants["prod/cheap"].failures,
        0
    );
}

#[test]
fn start_up_times_are_learned_per_variant() {
    let mut world = variants((2, 2), (1, 1), 10.0);
    world[0]["readyPods"] = json!([
        {"name": "a", "startupSeconds": 100}, {"name": "b", "startupSeconds": 110},
        {"name": "c", "startupSeconds": 130}
    ]);
    let report = run(&snapshot(Some(0.0), world.clone(), None));
    let supply = |r: &Report, name: &str| {
        r.decisions
            .iter()
            .find(|d| d.name == name.into())
            .unwrap()
            .steps[0]
            .note
            .clone()
    };
    assert!(
        supply(&report, "cheap").contains("p90 start-up 130s"),
        "{}",
        supply(&report, "cheap")
    );
    // Two samples are not enough: the configured 5m stays.
    assert!(supply(&report, "fast").contains("p90 start-up 300s"));
    // The same pod reported again is not a new sample.
    let state = report.wva_next_state.unwrap();
    let report = run(&snapshot(Some(30.0), world, Some(&state)));
    assert_eq!(
        report.wva_next_state.unwrap().variants["prod/cheap"]
            .startups
            .len(),
        3
    );
}

#[test]
fn a_start_up_is_learned_once_even_past_the_samples_kept() {
    // 40 pods Ready ten minutes ago: the first cycle learns them and keeps the newest 32.
    let ready = |t: f64, extra: &[(&str, f64)]| {
        let mut world = variants((2, 2), (1, 1), 10.0);
        let mut pods: Vec<Value> = (0..40)
            .map(|i| {
                json!({"name": format!("old-{i:02}"), "startupSeconds": 100 + i,
                "readyForSeconds": 600.0 + t})
            })
            .collect();
        pods.extend(extra.iter().map(|(name, ready_for)| {
            json!({"name": name, "startupSeconds": 500, "readyForSeconds": ready_for})
        }));
        world[0]["readyPods"] = json!(pods);
        world
    };
    let startups = |r: &Report| {
        Arc::clone(&r.wva_next_state.as_ref().unwrap().variants["prod/cheap"].startups)
    };
    let first = run(&snapshot(Some(0.0), ready(0.0, &[]), None));
    let kept = startups(&first);
    assert_eq!(kept.len(), STARTUP_SAMPLES);
    // The pods Ready long before the previous cycle are not looked at again: the 8 dropped
    // are not learned back (each cycle would otherwise churn 8 samples).
    let state = first.wva_next_state.unwrap();
    let again = run(&snapshot(Some(30.0), ready(30.0, &[]), Some(&state)));
    assert_eq!(startups(&again), kept);
    // A pod Ready since the previous cycle is learned, and so is one Ready 20 s before it
    // that its list missed (within the watch lag); without times, every pod is looked up.
    let late = [("new", 10.0), ("missed", 50.0)];
    let next = run(&snapshot(Some(30.0), ready(30.0, &late), Some(&state)));
    let learned = startups(&next);
    assert_eq!(learned.len(), STARTUP_SAMPLES);
    assert_eq!(
        learned[STARTUP_SAMPLES - 2..],
        [(pod_id("new"), 500.0), (pod_id("missed"), 500.0)]
    );
    let mut untimed = ready(30.0, &[]);
    for pod in untimed[0]["readyPods"].as_array_mut().unwrap() {
        pod.as_object_mut().unwrap().remove("readyForSeconds");
    }
    let untimed = run(&snapshot(Some(30.0), untimed, Some(&state)));
    assert_ne!(
        startups(&untimed),
        kept,
        "the dropped 8 come back when times are unknown"
    );
}

#[test]
fn a_ramp_is_sized_ahead_and_a_step_is_not_extrapolated() {
    let mut ramp_state = State::default();
    let mut step_state = State::default();
    let (mut ramp, mut step) = (None, None);
    for i in 0..=6 {
        let t = f64::from(i) * 30.0;
        let r = run(&snapshot(
            Some(t),
            variants((6, 6), (0, 0), 10.0 + t / 30.0),
            Some(&ramp_state),
        ));
        ramp_state = r.wva_next_state.clone().unwrap();
        ramp = r.models[0].next.clone();
        let s = run(&snapshot(
            Some(t),
            variants((6, 6), (0, 0), if i < 4 { 10.0 } else { 16.0 }),
            Some(&step_state),
        ));
        step_state = s.wva_next_state.clone().unwrap();
        step = s.models[0].next.clone();
    }
    // +1 req/s per 30 s over a 300 s start-up (plus the window's 90 s lag): 13 more on top of
    // the short window's 16 (a fifth above the stable 13).
    let ramp = ramp.unwrap();
    assert!((ramp.demand_ahead - 29.0).abs() < 1e-9, "{ramp:?}");
    let step = step.unwrap();
    assert_eq!(step.demand_ahead, step.short_demand, "{step:?}");
}

#[test]
fn cheap_capacity_replaces_expensive_capacity_once_it_is_ready() {
    // 6 req/s on 1 L40S + 1 A100 (13 req/s) for a full quiet window (180 s): 6 / 0.8 = 7.5
    // req/s needed; without the A100 5 remain, so one more L40S (15/h) replaces it (40/h).
    let world = variants((1, 1), (1, 1), 6.0);
    let (report, state) = cycles(0.0, 180.0, &world, State::default());
    assert_eq!(
        (target(&report, "cheap"), target(&report, "fast")),
        (2, 1),
        "{}",
        reason(&report, "cheap")
    );
    assert!(
        reason(&report, "cheap")
            .starts_with("rebalance: +1 cheap (cost 15) to replace one fast (cost 40)")
    );
    // While the new replica loads, the A100 stays.
    let (report, state) = cycles(210.0, 240.0, &variants((2, 1), (1, 1), 6.0), state);
    assert_eq!((target(&report, "cheap"), target(&report, "fast")), (2, 1));
    // Ready: the A100 goes.
    let (report, state) = cycles(270.0, 270.0, &variants((2, 2), (1, 1), 6.0), state);
    assert_eq!(
        (target(&report, "cheap"), target(&report, "fast")),
        (2, 0),
        "{}",
        reason(&report, "fast")
    );
    assert!(state.models["prod/m"].rebalance.is_none());
}

#[test]
fn a_decision_replays_exactly_from_its_dumped_snapshot_in_any_input_order() {
    let (world, state) = quiet_state();
    let live = snapshot(Some(480.0), world.clone(), Some(&state));
    let report = run(&live);
    // Through the dump format and back.
    let replayed = run(&Snapshot::from_json(&live.to_json()).unwrap());
    assert_eq!(
        serde_json::to_string(&report).unwrap(),
        serde_json::to_string(&replayed).unwrap()
    );
    // Variants and pods in reverse order.
    let mut reversed = world;
    let list = reversed.as_array_mut().unwrap();
    list.reverse();
    for v in list.iter_mut() {
        v["pods"].as_array_mut().unwrap().reverse();
    }
    let shuffled = run(&snapshot(Some(480.0), reversed, Some(&state)));
    assert_eq!(
        serde_json::to_string(&report).unwrap(),
        serde_json::to_string(&shuffled).unwrap()
    );
}

#[test]
fn state_errors_name_their_path() {
    let errors = Snapshot::from_value(&json!({
        "saturationConfig": {"default": {}},
        "variants": [],
        "time": -1,
        "wvaNextState": {"models": {"prod/m": {"samples": [{"time": "x"}]}}},
    }))
    .unwrap_err();
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        text[0].starts_with("time: must be Unix seconds"),
        "{text:?}"
    );
    assert!(
        text[1].starts_with("wvaNextState: invalid type: string \"x\""),
        "{text:?}"
    );
}

#[test]
fn a_model_at_zero_stays_there_and_one_with_replicas_keeps_one() {
    let report = run(&snapshot(Some(0.0), variants((0, 0), (0, 0), 0.0), None));
    assert_eq!((target(&report, "cheap"), target(&report, "fast")), (0, 0));
    // Both variants' only replicas stuck: they go, but the model keeps its cheapest one.
    let mut world = variants((1, 0), (1, 0), 0.0);
    world[0]["stuckReplicas"] = json!(1);
    world[1]["stuckReplicas"] = json!(1);
    let report = run(&snapshot(Some(0.0), world, None));
    assert_eq!((target(&report, "cheap"), target(&report, "fast")), (1, 0));
}

#[test]
fn negative_pod_times_are_refused_with_their_path() {
    let mut world = variants((2, 1), (1, 1), 5.0);
    world[0]["startingPods"] = json!([{"name": "s", "ageSeconds": -1}]);
    world[0]["readyPods"] = json!([{"name": "a", "startupSeconds": 90, "readyForSeconds": 30},
        {"name": "b", "startupSeconds": -5, "readyForSeconds": -2}]);
    let errors = Snapshot::from_value(&json!({
        "saturationConfig": {"default": {}},
        "variants": world,
    }))
    .unwrap_err();
    assert_eq!(
        errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "variants[0].startingPods[0].ageSeconds: seconds must be >= 0, got -1",
            "variants[0].readyPods[1].startupSeconds: seconds must be >= 0, got -5",
            "variants[0].readyPods[1].readyForSeconds: seconds must be >= 0, got -2",
        ]
    );
}

#[test]
fn a_lost_state_restarts_the_windows_and_never_scales_down_in_between() {
    // A restart or a new leader at 480 s, where the old state would scale down.
    let (world, state) = quiet_state();
    let with_state = run(&snapshot(Some(480.0), world.clone(), Some(&state)));
    assert!(target(&with_state, "fast") < 2, "the old state would act");
    let mut state = State::default();
    let mut t = 480.0;
    let first_down = loop {
        let report = run(&snapshot(Some(t), world.clone(), Some(&state)));
        state = report.wva_next_state.clone().unwrap();
        if report
            .decisions
            .iter()
            .any(|d| d.target_replicas < d.current_replicas)
        {
            break t;
        }
        for d in &report.decisions {
            assert_eq!(d.target_replicas, d.current_replicas, "{t}: {}", d.reason);
        }
        t += 30.0;
        assert!(t < 2000.0, "never scaled down again");
    };
    // A full stable window, then the scale-down delay, as from a cold start.
    assert!(first_down - 480.0 >= 300.0, "{first_down}");
    // A scale-up needs no history: the first cycle after the loss acts on a surge.
    let surge = variants((4, 4), (2, 2), 40.0);
    let report = run(&snapshot(Some(480.0), surge, Some(&State::default())));
    assert!(
        target(&report, "cheap") + target(&report, "fast") > 6,
        "{}",
        reason(&report, "cheap")
    );
}

#[test]
fn pod_ids_are_fnv_1a_and_never_change() {
    // FNV-1a's published 64-bit test vectors: the ids a state stores must not change between
    // versions (a dump's learned start-ups would be learned twice).
    assert_eq!(pod_id(""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(pod_id("a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(pod_id("foobar"), 0x8594_4171_f739_67e8);
}

#[test]
fn kv_cache_use_says_a_step_before_the_rate_does_when_pods_near_saturation() {
    // Ten cycles at 10 req/s on capacity 18 (KV 0.3 everywhere) learn each variant's
    // throughput; then the pods' KV jumps while the one-minute rate has not moved yet.
    let with_kv = |mut world: Value, kv: f64| {
        for v in world.as_array_mut().unwrap() {
            for p in v["pods"].as_array_mut().unwrap() {
                p["kvCacheUsage"] = json!(kv);
            }
        }
        world
    };
    let (_, learned) = cycles(
        0.0,
        270.0,
        &variants((2, 2), (1, 1), 10.0),
        State::default(),
    );
    let at = |world: Value| run(&snapshot(Some(300.0), world, Some(&learned)));
    // KV 0.75 (spare 0.05 < the 0.1 trigger): 2.5× the learned rate, 25 req/s > 0.85 × 18.
    let step = at(with_kv(variants((2, 2), (1, 1), 10.0), 0.75));
    let figures = step.models[0].next.clone().unwrap();
    assert!(
        (figures.kv_demand.unwrap() - 25.0).abs() < 1e-9,
        "{figures:?}"
    );
    assert!(target(&step, "cheap") > 2, "{}", reason(&step, "cheap"));
    assert!(
        reason(&step, "cheap").starts_with("scale-up (KV-implied demand, pods near saturation)"),
        "{}",
        reason(&step, "cheap")
    );
    // Not near saturation (KV 0.6: spare 0.2): the same jump waits for the rate.
    let busy = at(with_kv(variants((2, 2), (1, 1), 10.0), 0.6));
    assert_ne!(decided_by(&busy), "scale-up", "{}", reason(&busy, "cheap"));
    // A replica starting: a saturated pod's KV overstates what it serves; the rate decides.
    let coming = at(with_kv(variants((3, 2), (1, 1), 10.0), 0.75));
    assert_ne!(
        decided_by(&coming),
        "scale-up",
        "{}",
        reason(&coming, "cheap")
    );
}

#[test]
fn a_served_rate_jump_as_a_replica_becomes_ready_is_a_backlog_draining_not_a_surge() {
    // Ten minutes at 10 req/s; then a third cheap replica is Ready and the one-minute rate
    // reads 22 req/s, over 0.85 × the coming 23 req/s: the new replica serving what waited (in
    // the gateway, in the saturated pods' batches) looks like a surge.
    let state = ten_minutes_at_10_rps();
    // The newest cheap replica Ready for `newest` seconds, the others for an hour.
    let world = |newest: f64| {
        let mut world = variants((3, 3), (1, 1), 22.0);
        for v in world.as_array_mut().unwrap() {
            let is_cheap = v["name"] == "cheap";
            let ready: Vec<Value> = v["pods"]
                .as_array()
                .unwrap()
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let ready_for = if is_cheap && i == 2 { newest } else { 3_600.0 };
                    json!({"name": p["name"], "startupSeconds": 120, "readyForSeconds": ready_for})
                })
                .collect();
            v["readyPods"] = json!(ready);
        }
        world
    };
    // Ready 20 s ago, within the rate's minute: the stable window decides, no scale-up (the
    // swap that added the replica goes on).
    let fresh = run(&snapshot(Some(600.0), world(20.0), Some(&state)));
    assert_eq!(
        decided_by(&fresh),
        "rebalance",
        "{}",
        reason(&fresh, "cheap")
    );
    assert_eq!(target(&fresh, "cheap"), 3, "{}", reason(&fresh, "cheap"));
    // Ready for over a minute: the same jump is a surge.
    let surge = run(&snapshot(Some(600.0), world(90.0), Some(&state)));
    assert_eq!(
        decided_by(&surge),
        "scale-up",
        "{}",
        reason(&surge, "cheap")
    );
}

#[test]
fn the_queue_trend_reads_the_newest_waiting_count_not_the_minutes_largest() {
    // Ten minutes at 10 req/s on 18 req/s, nothing waiting.
    let state = ten_minutes_at_10_rps();
    // Each pod's largest over the minute is 60 (a queue that has drained since, or moved
    // between pods: the sum of the largest counts it three times).
    let world = |waiting: Option<f64>| {
        let mut world = variants((2, 2), (1, 1), 10.0);
        for v in world.as_array_mut().unwrap() {
            for p in v["pods"].as_array_mut().unwrap() {
                p["queueLength"] = json!(60);
                if let Some(w) = waiting {
                    p["waiting"] = json!(w);
                }
            }
        }
        world
    };
    let drained = run(&snapshot(Some(600.0), world(Some(0.0)), Some(&state)));
    assert_eq!(
        decided_by(&drained),
        "hold",
        "{}",
        reason(&drained, "cheap")
    );
    // Not collected: the minute's largest is all there is, 180 waiting where none did.
    let unknown = run(&snapshot(Some(600.0), world(None), Some(&state)));
    assert_eq!(
        decided_by(&unknown),
        "scale-up",
        "{}",
        reason(&unknown, "cheap")
    );
    // A bad count is refused with its path.
    let mut bad = json!({"variants": world(Some(-1.0))});
    bad["saturationConfig"] = json!({"default": {}});
    let err = Snapshot::from_value(&bad).unwrap_err();
    assert!(
        err.iter().any(|p| p.path == "variants[0].pods[0].waiting"
            && p.message.starts_with("must be a number >= 0")),
        "{err:?}"
    );
}
