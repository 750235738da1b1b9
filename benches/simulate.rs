//! Simulator speed: simulated hours per second of wall time, for 1 and 50 models at a 1 s
//! tick (policy wva-v0.5.0-direct), and the built-in scenario with every policy (budget: under
//! 1 s on one core) and its `--frontier` sweep (budget: under 30 s). Run: `taskset -c 1 cargo bench --bench simulate`.

use std::time::Instant;

use wva::sim::scenario::parse;

fn scenario(models: usize, hours: u64) -> String {
    let mut text = format!(
        "name: bench\ndurationSeconds: {}\ntickSeconds: 1\npolicies: [wva-v0.5.0-direct]\nmodels:\n",
        hours * 3600
    );
    for m in 0..models {
        text += &format!(
            "- namespace: ns-{m}\n  modelId: org/model-{m}\n  variants:\n  - {{name: m{m}-cheap, costPerHour: 10, initialReplicas: 2, capacityRps: 5}}\n  - {{name: m{m}-fast, costPerHour: 30, initialReplicas: 1, capacityRps: 9}}\n  load: {{kind: diurnal, mean: 15, amplitude: 10, periodSeconds: 3600}}\n"
        );
    }
    text
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    println!("\n| models | simulated | wall time | simulated hours per second |");
    println!("|---|---|---|---|");
    for (models, hours) in [
        (1, if full { 24 } else { 1 }),
        (50, if full { 2 } else { 1 }),
    ] {
        let s = parse(&scenario(models, hours)).unwrap();
        let started = Instant::now();
        let sim = wva::sim::run(&s, &mut |_| {});
        let wall = started.elapsed().as_secs_f64();
        assert_eq!(sim.runs.len(), 2, "the policy and the oracle");
        println!(
            "| {models} | {hours} h | {wall:.2} s | {:.1} |",
            hours as f64 / wall
        );
    }
    let default = parse(wva::sim::scenario::DEFAULT_SCENARIO).unwrap();
    let started = Instant::now();
    let sim = wva::sim::run(&default, &mut |_| {});
    println!(
        "\nbuilt-in scenario, all {} policies: {:.3} s (budget 1 s)",
        sim.runs.len(),
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let frontier = wva::sim::frontier::sweep(&default, &mut |_| {});
    println!(
        "built-in scenario, --frontier ({} runs): {:.3} s (budget 30 s)",
        frontier.points.len(),
        started.elapsed().as_secs_f64()
    );
}
