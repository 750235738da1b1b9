//! Benchmark of `core::decide` (budget: 10,000 variants / 100,000 pods in under 20 ms on one
//! core, for `wva-v0.5.0` and for `wva-next`). Run: `cargo bench --bench decide`. Figures go to docs/performance.md.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use wva::config::{SaturationConfigSet, ScaleToZeroConfigSet};
use wva::core::snapshot::ReadyPod;
use wva::core::{GpuPool, PodMetrics, Policy, Snapshot, Variant, decide};

const PODS_PER_VARIANT: u32 = 10;
const VARIANTS_PER_MODEL: usize = 4;

/// A cluster of `variants` variants, 4 per model, 10 pods each, with a deterministic mix of
/// loads (idle, busy, saturated) and some pending replicas so that every rule runs.
fn snapshot(variants: usize) -> Snapshot {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let list = (0..variants)
        .map(|i| {
            let model = i / VARIANTS_PER_MODEL;
            let load = (next() % 100) as f64 / 100.0;
            let pending = u32::from(next() % 5 == 0);
            Variant {
                name: format!("variant-{i:05}").into(),
                namespace: format!("ns-{:03}", model % 200).into(),
                model_id: format!("org/model-{model:05}").into(),
                target_name: format!("variant-{i:05}").into(),
                accelerator: ["A100", "H100", "L40S", "T4"][i % 4].into(),
                cost: [10.0, 40.0, 15.0, 2.5][i % 4],
                spec_replicas: PODS_PER_VARIANT,
                replicas: PODS_PER_VARIANT,
                ready_replicas: PODS_PER_VARIANT - pending,
                previous_desired: PODS_PER_VARIANT,
                stuck_replicas: 0,
                gpus_per_replica: 1 + (i % 2) as u32,
                min_replicas: 0,
                max_replicas: None,
                starting_pods: Vec::new(),
                ready_pods: Vec::new(),
                pods: (0..PODS_PER_VARIANT)
                    .map(|p| PodMetrics {
                        name: format!("variant-{i:05}-pod-{p:02}").into(),
                        kv_cache_usage: (load + (next() % 20) as f64 / 100.0).min(1.0),
                        queue_length: next() % 8,
                        served_rps: None,
                        waiting: None,
                    })
                    .collect(),
            }
        })
        .collect();
    Snapshot {
        saturation_config: SaturationConfigSet::default(),
        scale_to_zero_config: ScaleToZeroConfigSet::default(),
        request_counts: BTreeMap::new(),
        variants: list,
        gpu_inventory: None,
        time: None,
        wva_next_state: None,
    }
}

/// The same with the GPU limiter on: a quarter of the GPUs the variants hold are free.
fn limited(variants: usize) -> Snapshot {
    let mut s = snapshot(variants);
    let entries = BTreeMap::from([(
        "default".to_owned(),
        serde_json::json!({"enableLimiter": true}),
    )]);
    s.saturation_config = SaturationConfigSet::parse(entries.iter()).unwrap().value;
    let mut held: BTreeMap<String, GpuPool> = BTreeMap::new();
    for v in &s.variants {
        held.entry(v.accelerator.to_string())
            .or_default()
            .allocatable += u64::from(v.replicas * v.gpus_per_replica) * 5 / 4;
    }
    s.gpu_inventory = Some(held);
    s
}

/// The same for `wva-next`: served rates, per-accelerator capacities, every pod's start-up
/// time and how long it has been Ready, and the state of six earlier cycles (full demand
/// windows, learned start-ups).
fn next(variants: usize) -> Snapshot {
    let mut s = snapshot(variants);
    let entries = BTreeMap::from([(
        "default".to_owned(),
        serde_json::json!({"capacityRps": {"A100": 5, "H100": 8, "L40S": 3, "T4": 1}}),
    )]);
    s.saturation_config = SaturationConfigSet::parse(entries.iter()).unwrap().value;
    for (n, v) in s.variants.iter_mut().enumerate() {
        for (i, p) in v.pods.iter_mut().enumerate() {
            p.served_rps = Some(p.kv_cache_usage * 6.0);
            // Ready for an hour, but one pod in every tenth variant for 15 s (about the
            // churn of 100,000 pods living two hours: ~1,000 recently Ready per cycle).
            let recent = n % 10 == 0 && i == 0;
            v.ready_pods.push(ReadyPod {
                name: p.name.to_string(),
                startup_seconds: 120.0 + 10.0 * i as f64,
                ready_for_seconds: Some(if recent { 15.0 } else { 3_600.0 }),
            });
        }
    }
    for cycle in 0..6 {
        s.time = Some(1_764_700_000.0 + 30.0 * f64::from(cycle));
        s.wva_next_state = decide(&s, Policy::WvaNext).wva_next_state;
    }
    s.time = s.time.map(|t| t + 30.0);
    s
}

fn bench_decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide");
    for variants in [100, 1_000, 10_000] {
        let s = snapshot(variants);
        group.throughput(Throughput::Elements(variants as u64));
        group.bench_with_input(BenchmarkId::from_parameter(variants), &s, |b, s| {
            b.iter(|| decide(black_box(s), Policy::WvaV050))
        });
    }
    group.finish();
    let mut group = c.benchmark_group("decide-wva-next");
    for variants in [1_000, 10_000] {
        let s = next(variants);
        group.throughput(Throughput::Elements(variants as u64));
        group.bench_with_input(BenchmarkId::from_parameter(variants), &s, |b, s| {
            b.iter(|| decide(black_box(s), Policy::WvaNext))
        });
    }
    group.finish();
    let mut group = c.benchmark_group("decide-gpu-limiter");
    for variants in [1_000, 10_000] {
        let s = limited(variants);
        group.throughput(Throughput::Elements(variants as u64));
        group.bench_with_input(BenchmarkId::from_parameter(variants), &s, |b, s| {
            b.iter(|| decide(black_box(s), Policy::WvaV050))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench_decide
}
/// `WVA_DECIDE_CYCLES=N cargo bench --bench decide`: instead of criterion, N cycles of each
/// policy at 10,000 variants (only `WVA_DECIDE_POLICY` when set), each timed; prints the fastest
/// and the median, steadier than a mean on a shared host. Under
/// `valgrind --tool=cachegrind` the difference between N=6 and N=1, divided by 5, is the
/// instructions of one cycle (docs/performance.md#wva-next).
fn cycles(runs: usize) {
    let only = std::env::var("WVA_DECIDE_POLICY").ok();
    for (name, policy, build) in [
        (
            "wva-v0.5.0",
            Policy::WvaV050,
            snapshot as fn(usize) -> Snapshot,
        ),
        ("wva-next", Policy::WvaNext, next),
    ] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let s = build(10_000);
        let mut times: Vec<f64> = (0..runs)
            .map(|_| {
                let started = std::time::Instant::now();
                black_box(decide(black_box(&s), policy));
                started.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        if let (Some(fastest), Some(median)) = (times.first(), times.get(runs / 2)) {
            println!("{name}: {runs} cycles, fastest {fastest:.2} ms, median {median:.2} ms");
        }
    }
}

fn main() {
    match std::env::var("WVA_DECIDE_CYCLES").map(|n| n.parse::<usize>()) {
        Ok(Ok(runs)) => cycles(runs),
        Ok(Err(e)) => panic!("WVA_DECIDE_CYCLES: {e}"),
        Err(_) => benches(),
    }
}
