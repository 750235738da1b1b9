//! `wva run` on the real control plane and a real Prometheus (the controller tier's scene, from
//! tests/support): how long from saturation being visible in Prometheus to the target's `/scale`
//! being patched (direct mode, a 5 s interval, the load switched at a random point of the cycle),
//! how many API writes a steady cycle makes (from the API server's audit log), and the
//! controller's resident memory over the cycles.
//!
//! Run: `cargo bench --bench controller` (`WVA_BENCH_TRIALS=N`, default 5; one trial when run by
//! `cargo test`). Needs the control-plane binaries: `make tools`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::control_plane::wait_for;
use support::controller::Scene;

const T: Duration = Duration::from_secs(60);

fn memory_mib(pid: u32) -> f64 {
    support::process::status_kib(pid, "VmRSS:") as f64 / 1024.0
}

/// A small deterministic generator for the phase of each trial.
fn phases(n: usize, seed: u64) -> Vec<Duration> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Duration::from_millis(x % 5000)
        })
        .collect()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let trials: usize = std::env::var("WVA_BENCH_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if full { 5 } else { 1 });
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(trials));
}

async fn run(trials: usize) {
    let mut latencies = Vec::new();
    for (i, phase) in phases(trials, 0x5eed).into_iter().enumerate() {
        let scene = Scene::new(&format!("bench-ctl-{i}"), "5s").await;
        scene.variant("decode", 1, "10").await;
        scene.load("decode", 0.5);
        scene.wait_reported(1).await;
        let wva = scene.wva("direct", &[]);
        scene.wait_optimized("decode").await;
        tokio::time::sleep(phase).await;
        scene.load("decode", 0.95);
        let visible = wait_for(T, "saturation in Prometheus", || async {
            let series = scene.series(wva::prometheus::promql::KV_CACHE_METRIC);
            series.iter().all(|(_, v)| *v > 0.9).then(Instant::now)
        })
        .await;
        scene.wait_spec_replicas("decode", 2, T).await;
        let latency = visible.elapsed();
        latencies.push(latency.as_secs_f64());
        println!(
            "trial {i}: load switched {:.1}s after a cycle's status write; visible -> /scale {:.2}s",
            phase.as_secs_f64(),
            latency.as_secs_f64()
        );

        if i + 1 == trials {
            // Steady state: 2 pods at 0.475 each, nothing to do. Count wva's writes (everything
            // but the test kubelet's pod updates) over 10 cycles.
            wva.cycles_pass(2, T).await;
            let pid = wva.child.id();
            let rss_before = memory_mib(pid);
            let writes = || scene.controller_writes().len();
            let before = writes();
            let cycles = 10;
            wva.cycles_pass(cycles, Duration::from_secs(5 * cycles + 30))
                .await;
            let per_cycle = (writes() - before) as f64 / cycles as f64;
            println!(
                "steady state: {per_cycle:.1} API writes per cycle over {cycles} cycles (upstream: one status PATCH per VA per cycle)"
            );
            println!(
                "controller memory: {rss_before:.1} MiB RSS after settling, {:.1} MiB {cycles} cycles later",
                memory_mib(pid)
            );
        }
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "saturation visible -> /scale patched at a 5 s interval: min {:.2}s, median {:.2}s, max {:.2}s over {} trials (budget: interval + 1 s = 6 s)",
        latencies[0],
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
        latencies.len()
    );
}
