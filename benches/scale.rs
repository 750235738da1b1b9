//! `wva run` at scale on the real control plane and a real Prometheus: N models with 4 variants
//! each, every variant a Deployment with P pods that the test kubelet makes Ready and whose
//! vLLM series Prometheus scrapes. Measures startup to the first cycle, the controller's time
//! per cycle (its `wva_cycle_duration_seconds` histogram), PromQL queries per cycle, API
//! requests per cycle by verb (the API server's audit log; the controller runs as its
//! least-privilege ServiceAccount) in steady state and during a scale-up, and resident memory
//! over time.
//!
//! Run: `cargo bench --bench scale` — 250 models x 4 variants x 4 pods (1,000 VAs, 4,000 pods);
//! `WVA_BENCH_MODELS`, `WVA_BENCH_PODS`, `WVA_BENCH_MINUTES` (default 30) change it. Under
//! `cargo test` it runs 2 models x 4 variants x 2 pods for a few cycles. Needs `make tools`.
//! The controller runs with the chart's allocator environment (`WVA_BENCH_ENV="K=V ..."` replaces
//! it, `""` for none); `WVA_BENCH_HEAPTRACK=FILE` records a heap profile with heaptrack.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use support::control_plane::wait_for;
use support::controller::{Run, Scene, WvaRun};

const VARIANTS: usize = 4;
/// KV-cache use per pod in steady state: spare 0.12 (no scale-up), and too busy to lose a pod.
const STEADY_KV: f64 = 0.68;
/// During the scale-up: spare 0.05 on one model's every variant.
const BUSY_KV: f64 = 0.75;

fn env_or(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn memory_mib(pid: u32) -> f64 {
    support::process::status_kib(pid, "VmRSS:") as f64 / 1024.0
}

/// (count, sum) of the cycle-duration histogram.
fn cycle_time(wva: &WvaRun) -> (f64, f64) {
    (
        wva.sample("wva_cycle_duration_seconds_count")
            .unwrap_or(0.0),
        wva.sample("wva_cycle_duration_seconds_sum").unwrap_or(0.0),
    )
}

/// Requests by verb (and resource) of `user` in the audit log from index `from`.
fn by_verb(scene: &Scene, user: &str, from: usize) -> (usize, BTreeMap<String, usize>) {
    let requests = scene.cp.audited_requests_of(user);
    let mut counts = BTreeMap::new();
    for r in &requests[from.min(requests.len())..] {
        let what = if r.subresource.is_empty() {
            format!("{} {}", r.verb, r.resource)
        } else {
            format!("{} {}/{}", r.verb, r.resource, r.subresource)
        };
        *counts.entry(what).or_insert(0) += 1;
    }
    (requests.len(), counts)
}

/// Where each burst of writes (one cycle's, events apart) spent its time, from the audit log:
/// the API server's own time per write (received → finished) summed and at most, and the span
/// from the first received to the last finished. When the span is close to the cycle's act
/// time, the writes are API-server bound.
fn write_bursts(scene: &Scene, user: &str, from: usize) -> Vec<String> {
    let requests = scene.cp.audited_requests_of(user);
    let writes: Vec<_> = requests[from.min(requests.len())..]
        .iter()
        .filter(|r| (r.verb == "patch" || r.verb == "create") && r.resource != "events")
        .collect();
    let mut bursts: Vec<Vec<&support::control_plane::AuditedRequest>> = Vec::new();
    for w in writes {
        match bursts.last_mut() {
            Some(burst) if w.received_us - burst[burst.len() - 1].received_us < 1_000_000 => {
                burst.push(w)
            }
            _ => bursts.push(vec![w]),
        }
    }
    bursts
        .iter()
        .map(|burst| {
            let each: Vec<i64> = burst
                .iter()
                .map(|r| r.completed_us - r.received_us)
                .collect();
            let first = burst.iter().map(|r| r.received_us).min().unwrap_or(0);
            let last = burst.iter().map(|r| r.completed_us).max().unwrap_or(0);
            format!(
                "{} writes: API server time {:.1} ms in all, {:.1} ms at most; first received to last finished {:.1} ms",
                burst.len(),
                each.iter().sum::<i64>() as f64 / 1e3,
                each.iter().max().copied().unwrap_or(0) as f64 / 1e3,
                (last - first) as f64 / 1e3
            )
        })
        .collect()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let models = env_or("WVA_BENCH_MODELS", if full { 250 } else { 2 });
    let pods = env_or("WVA_BENCH_PODS", if full { 4 } else { 2 });
    let minutes = env_or("WVA_BENCH_MINUTES", if full { 30 } else { 0 });
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(models, pods, minutes));
}

async fn run(models: usize, pods: usize, minutes: usize) {
    let vas = models * VARIANTS;
    let total_pods = vas * pods;
    println!("scale: {models} models, {vas} VAs, {total_pods} pods");
    let scene = Scene::new_with("bench-scale", "5s", Duration::from_secs(2)).await;
    let kubeconfig = scene.controller_service_account(true).await;
    let user = scene.controller_user();

    let started = Instant::now();
    let names: Vec<(String, String, usize)> = (0..models)
        .flat_map(|m| {
            (0..VARIANTS).map(move |v| (format!("m{m:03}-v{v}"), format!("model-{m:03}"), v))
        })
        .collect();
    futures::stream::iter(names.iter())
        .for_each_concurrent(16, |(name, model, v)| {
            let scene = &scene;
            async move {
                scene.deployment(name, pods as i32).await;
                scene
                    .va_for_model(name, name, &format!("{}", 10 + 5 * v), model)
                    .await;
                scene.load(name, STEADY_KV * pods as f64);
            }
        })
        .await;
    println!(
        "created {vas} Deployments and VAs in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let ready = Instant::now();
    wait_for(
        Duration::from_secs(1800),
        "every pod reported in Prometheus",
        || async {
            (scene.series(wva::prometheus::promql::KV_CACHE_METRIC).len() == total_pods)
                .then_some(())
        },
    )
    .await;
    println!(
        "{total_pods} pods Ready and scraped in {:.1}s",
        ready.elapsed().as_secs_f64()
    );

    let spawned = Instant::now();
    let mut env = vec![(
        "RUST_LOG".into(),
        "info,wva::controller::cycle=debug".into(),
    )];
    // The allocator settings the chart's Deployment sets (charts/wva/templates/deployment.yaml),
    // unless WVA_BENCH_ENV gives others: `K=V` pairs separated by spaces ("" for none).
    let allocator =
        "MALLOC_ARENA_MAX=1 MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=131072";
    let extra = std::env::var("WVA_BENCH_ENV").unwrap_or_else(|_| allocator.into());
    for pair in extra.split_whitespace() {
        if let Some((k, v)) = pair.split_once('=') {
            env.push((k.into(), v.into()));
        }
    }
    // A heap profile of the controller: heaptrack's preload library records every allocation
    // into this file; `heaptrack_interpret < FILE | gzip > P.gz && heaptrack_print P.gz` reads it.
    if let Ok(raw) = std::env::var("WVA_BENCH_HEAPTRACK") {
        env.push((
            "LD_PRELOAD".into(),
            "/usr/lib/heaptrack/libheaptrack_preload.so".into(),
        ));
        env.push(("DUMP_HEAPTRACK_OUTPUT".into(), raw));
    }
    let wva = scene.wva_with(
        "direct",
        &[],
        &Run {
            kubeconfig: Some(kubeconfig),
            env,
            ..Run::default()
        },
    );
    let pid = wva.child.id();
    wait_for(Duration::from_secs(120), "the first cycle", || async {
        (wva.cycles() >= 1).then_some(())
    })
    .await;
    println!(
        "startup to first cycle: {:.2}s (caches of {vas} VAs, {vas} Deployments, {total_pods} pods synced)",
        spawned.elapsed().as_secs_f64()
    );
    // Settle: the first cycles write every VA's status once.
    wva.cycles_pass(3, Duration::from_secs(120)).await;

    let (count0, sum0) = cycle_time(&wva);
    let queries0 = wva.sample("wva_prometheus_queries_total").unwrap_or(0.0);
    let (from, _) = by_verb(&scene, &user, 0);
    let cycles = 10;
    wva.cycles_pass(cycles, Duration::from_secs(5 * cycles + 60))
        .await;
    let (count1, sum1) = cycle_time(&wva);
    let queries1 = wva.sample("wva_prometheus_queries_total").unwrap_or(0.0);
    let (to, steady) = by_verb(&scene, &user, from);
    let n = count1 - count0;
    println!(
        "steady state over {n} cycles: {:.1} ms per cycle (mean), {:.1} PromQL queries per cycle, {:.1} API requests per cycle: {steady:?}",
        (sum1 - sum0) / n * 1000.0,
        (queries1 - queries0) / n,
        (to - from) as f64 / n
    );

    // A scale-up on every tenth model.
    let busy: Vec<&(String, String, usize)> = names
        .iter()
        .filter(|(_, model, _)| model.ends_with('0'))
        .collect();
    for (name, _, _) in &busy {
        scene.load(name, BUSY_KV * pods as f64);
    }
    let busy_models = busy.len() / VARIANTS;
    wait_for(
        Duration::from_secs(60),
        "the busy KV in Prometheus",
        || async {
            let series = scene.series(wva::prometheus::promql::KV_CACHE_METRIC);
            let high = series
                .iter()
                .filter(|(_, v)| (*v - BUSY_KV).abs() < 1e-9)
                .count();
            (high == busy.len() * pods).then_some(())
        },
    )
    .await;
    // The next complete cycle that starts after the data is visible makes the step; take the
    // cycle in flight and that one.
    let (count2, sum2) = cycle_time(&wva);
    let (from, _) = by_verb(&scene, &user, 0);
    wait_for(Duration::from_secs(60), "two complete cycles", || async {
        (cycle_time(&wva).0 >= count2 + 2.0).then_some(())
    })
    .await;
    let (count3, sum3) = cycle_time(&wva);
    let (_, scale_up) = by_verb(&scene, &user, from);
    println!(
        "the scale-up ({busy_models} models each get a replica), over the {} cycles around it: {:.1} ms per cycle, API requests: {scale_up:?}",
        count3 - count2,
        (sum3 - sum2) / (count3 - count2).max(1.0) * 1000.0
    );
    for burst in write_bursts(&scene, &user, from) {
        println!("  one cycle's {burst}");
    }

    let phases: Vec<String> = wva
        .log_text()
        .lines()
        .filter(|l| l.contains("collect_ms"))
        .map(str::to_owned)
        .collect();
    for line in phases.iter().rev().take(3).rev() {
        println!("  {line}");
    }
    let rss_start = memory_mib(pid);
    println!(
        "controller memory: {rss_start:.1} MiB RSS ({:.1} MiB anonymous, {:.1} MiB file-backed)",
        support::process::status_kib(pid, "RssAnon:") as f64 / 1024.0,
        support::process::status_kib(pid, "RssFile:") as f64 / 1024.0
    );
    for minute in 1..=minutes {
        tokio::time::sleep(Duration::from_secs(60)).await;
        let (count, sum) = cycle_time(&wva);
        println!(
            "  after {minute:>2} min: {:.1} MiB RSS, {} cycles, {:.1} ms per cycle (mean since start)",
            memory_mib(pid),
            count,
            sum / count * 1000.0
        );
    }
}
