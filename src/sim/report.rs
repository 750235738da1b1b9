//! Simulation outputs: the summary table, the per-tick timeline (CSV) and an SVG chart with one
//! panel per policy (load, replicas per variant, saturation). Pure text generation.

use std::fmt::Write as _;

use super::{PolicyRun, Simulation};

/// The runs best first: by SLO attainment, then cost, then name.
pub fn ranked(sim: &Simulation) -> Vec<&PolicyRun> {
    let mut runs: Vec<&PolicyRun> = sim.runs.iter().collect();
    runs.sort_by(|a, b| {
        b.slo_attainment()
            .total_cmp(&a.slo_attainment())
            .then(a.cost.total_cmp(&b.cost))
            .then(a.policy.cmp(&b.policy))
    });
    runs
}

/// The summary's column widths, POLICY first.
const COLUMN_WIDTHS: [usize; 19] = [21, 7, 7, 8, 8, 8, 7, 9, 7, 7, 7, 8, 8, 9, 12, 7, 5, 9, 8];

/// The summary table, one row per policy (the oracle's included), best first.
pub fn summary(sim: &Simulation) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "scenario: {}   seed: {}   duration: {} min",
        sim.scenario,
        sim.seed,
        sim.duration_seconds / 60
    );
    let _ = writeln!(out);
    let row = |cells: [&str; 19]| {
        cells
            .iter()
            .zip(COLUMN_WIDTHS)
            .enumerate()
            .map(|(i, (cell, width))| match i {
                0 => format!("{cell:<width$}"),
                _ => format!("{cell:>width$}"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let _ = writeln!(
        out,
        "{}",
        row([
            "POLICY",
            "SLO-ATT",
            "GOODPUT",
            "TTFT-P50",
            "TTFT-P99",
            "FAILED",
            "GPU-H",
            "COST",
            "×ORACLE",
            "WASTE",
            "STUCK",
            "AVG-REPL",
            "MAX-REPL",
            "UNDER-MIN",
            "TIME-TO-CAP",
            "ACTIONS",
            "FLAPS",
            "SATURATED",
            "PENDING+",
        ])
    );
    let _ = writeln!(
        out,
        "{}",
        row([
            "",
            "%",
            "req/s",
            "s",
            "s",
            "requests",
            "",
            "",
            "",
            "GPU-h",
            "GPU-h",
            "",
            "",
            "minutes",
            "after steps",
            "",
            "",
            "repl-min",
            "scale-up",
        ])
    );
    for run in ranked(sim) {
        let quantile = |q: f64| {
            run.requests
                .ttft_quantile(q)
                .map_or("-".to_owned(), |s| format!("{s:.1}"))
        };
        let optional =
            |x: Option<f64>, digits: usize| x.map_or("-".to_owned(), |x| format!("{x:.digits$}"));
        let _ = writeln!(
            out,
            "{}",
            row([
                &run.policy,
                &format!("{:.1}", 100.0 * run.slo_attainment()),
                &format!("{:.2}", run.goodput(sim.duration_seconds)),
                &quantile(0.5),
                &quantile(0.99),
                &format!("{:.0}", run.requests.failed),
                &format!("{:.2}", run.gpu_hours),
                &format!("{:.2}", run.cost),
                &optional(run.cost_ratio_to_oracle, 2),
                &optional(run.waste_gpu_hours, 2),
                &format!("{:.2}", run.stuck_gpu_hours),
                &format!("{:.1}", run.avg_replicas),
                &run.max_replicas.to_string(),
                &format!("{:.1}", run.under_capacity_minutes),
                &time_to_capacity(run),
                &run.scaling_actions.to_string(),
                &run.flaps.to_string(),
                &format!("{:.1}", run.saturated_replica_minutes),
                &run.pending_scale_ups.len().to_string(),
            ])
        );
    }
    out
}

/// The summary as data (`--output json`). The field names are fixed — tools outside the
/// project read them; new fields may follow.
pub fn json(sim: &Simulation) -> String {
    let policies: Vec<serde_json::Value> = ranked(sim)
        .into_iter()
        .map(|run| {
            serde_json::json!({
                "policy": run.policy,
                "sloAttainment": run.slo_attainment(),
                "goodputRps": run.goodput(sim.duration_seconds),
                "ttftP50Seconds": run.requests.ttft_quantile(0.5),
                "ttftP99Seconds": run.requests.ttft_quantile(0.99),
                "failedRequests": run.requests.failed,
                "gpuHours": run.gpu_hours,
                "cost": run.cost,
                "costRatioToOracle": run.cost_ratio_to_oracle,
                "wasteGpuHours": run.waste_gpu_hours,
                "avgReplicas": run.avg_replicas,
                "maxReplicas": run.max_replicas,
                "underCapacityMinutes": run.under_capacity_minutes,
                "stuckGpuHours": run.stuck_gpu_hours,
                "actions": run.scaling_actions,
                "flaps": run.flaps,
                "offeredRequests": run.requests.offered,
                "timeToCapacitySeconds": run.time_to_capacity,
                "saturatedReplicaMinutes": run.saturated_replica_minutes,
                "pendingScaleUps": run.pending_scale_ups.len(),
            })
        })
        .collect();
    let doc = serde_json::json!({
        "scenario": sim.scenario,
        "seed": sim.seed,
        "durationSeconds": sim.duration_seconds,
        "policies": policies,
    });
    format!("{doc:#}\n")
}

/// `--frontier` as a table: every point best first, the Pareto front marked.
pub fn frontier(f: &super::frontier::Frontier) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "scenario: {}   seed: {}", f.scenario, f.seed);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<21} {:>7} {:>8} {:>10} {:>7}  PARETO",
        "POLICY", "KNOB", "SLO-ATT", "COST", "×ORACLE"
    );
    let oracle = f
        .points
        .iter()
        .find(|p| p.policy == "oracle")
        .map(|p| p.cost);
    for p in &f.points {
        let _ = writeln!(
            out,
            "{:<21} {:>7} {:>8.1} {:>10.2} {:>7}  {}",
            p.policy,
            p.value.map_or("-".to_owned(), |v| format!("{v}")),
            100.0 * p.slo_attainment,
            p.cost,
            oracle
                .filter(|o| *o > 0.0)
                .map_or("-".to_owned(), |o| format!("{:.2}", p.cost / o)),
            if p.pareto { "*" } else { "" }
        );
    }
    let _ = writeln!(
        out,
        "\nKNOB: each policy's main setting (docs/simulation.md#policies); * = on the Pareto front of (SLO attainment, cost), the oracle left out."
    );
    out
}

/// `--frontier --output json`.
pub fn frontier_json(f: &super::frontier::Frontier) -> String {
    let points: Vec<serde_json::Value> = f
        .points
        .iter()
        .map(|p| {
            serde_json::json!({
                "policy": p.policy,
                "knob": p.value,
                "sloAttainment": p.slo_attainment,
                "cost": p.cost,
                "pareto": p.pareto,
            })
        })
        .collect();
    let doc = serde_json::json!({"scenario": f.scenario, "seed": f.seed, "points": points});
    format!("{doc:#}\n")
}

/// `--judge` as text: one line per check.
pub fn scorecard(card: &super::judge::Scorecard) -> String {
    let mut out = format!("scenario: {}   policy: {}\n\n", card.scenario, card.policy);
    for c in &card.checks {
        let _ = writeln!(
            out,
            "{}  {}: {}",
            if c.passed { "pass" } else { "FAIL" },
            c.what,
            c.detail
        );
    }
    let _ = writeln!(
        out,
        "\n{}",
        if card.passed() {
            "every check passed"
        } else {
            "some checks failed"
        }
    );
    out
}

/// `--judge --output json`.
pub fn scorecard_json(card: &super::judge::Scorecard) -> String {
    let checks: Vec<serde_json::Value> = card
        .checks
        .iter()
        .map(|c| serde_json::json!({"check": c.what, "passed": c.passed, "detail": c.detail}))
        .collect();
    let doc = serde_json::json!({
        "scenario": card.scenario,
        "policy": card.policy,
        "passed": card.passed(),
        "checks": checks,
    });
    format!("{doc:#}\n")
}

fn time_to_capacity(run: &PolicyRun) -> String {
    if run.time_to_capacity.is_empty() {
        return "-".into();
    }
    run.time_to_capacity
        .iter()
        .map(|d| d.map_or("never".to_owned(), |s| format!("{:.0}s", s)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The timeline as CSV: one line per tick, policy and variant.
pub fn timeline_csv(sim: &Simulation) -> String {
    let mut out = String::from(
        "time_s,policy,variant,load_rps,replicas,ready,desired,max_kv,max_queue,backlog,ready_capacity_rps,slo_missed\n",
    );
    for run in &sim.runs {
        for r in &run.timeline {
            let _ = writeln!(
                out,
                "{},{},{},{:.3},{},{},{},{:.3},{:.1},{:.1},{:.2},{}",
                r.time,
                r.policy,
                r.variant,
                r.load,
                r.replicas,
                r.ready,
                r.desired,
                r.max_kv,
                r.max_queue,
                r.backlog,
                r.ready_capacity,
                u8::from(r.slo_missed)
            );
        }
    }
    out
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
];

/// One panel per policy: load (grey area) and ready capacity within the SLO (dashed) on one
/// axis, replicas per variant (lines, left axis), the backlog (orange, its own scale), and a
/// red band where requests missed the SLO.
pub fn chart_svg(sim: &Simulation) -> String {
    let (width, panel, margin) = (960.0, 220.0, 50.0);
    let height = margin + sim.runs.len() as f64 * (panel + margin);
    let duration = sim.duration_seconds.max(1) as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{margin}\" y=\"24\" font-size=\"15\">{} (seed {})</text>\n",
        escape(&sim.scenario),
        sim.seed
    );
    let max_load = sim
        .runs
        .iter()
        .flat_map(|r| r.timeline.iter().map(|t| t.load))
        .fold(1.0, f64::max);
    let max_replicas = sim
        .runs
        .iter()
        .flat_map(|r| r.timeline.iter().map(|t| t.replicas))
        .max()
        .unwrap_or(1)
        .max(1) as f64
        + 1.0;
    for (i, run) in sim.runs.iter().enumerate() {
        let top = margin + i as f64 * (panel + margin);
        let plot_w = width - 2.0 * margin;
        let x = |t: f64| margin + t / duration * plot_w;
        let y_load = |l: f64| top + panel - l / max_load * panel;
        let y_rep = |r: f64| top + panel - r / max_replicas * panel;
        let _ = writeln!(
            svg,
            "<text x=\"{margin}\" y=\"{}\" font-weight=\"bold\">{}</text>",
            top - 8.0,
            escape(&run.policy)
        );
        let _ = writeln!(
            svg,
            "<rect x=\"{margin}\" y=\"{top}\" width=\"{plot_w}\" height=\"{panel}\" fill=\"none\" stroke=\"#999\"/>"
        );
        let mut variants: Vec<&str> = run.timeline.iter().map(|r| r.variant.as_str()).collect();
        variants.sort();
        variants.dedup();
        // The first variant's rows carry the model-level series (one model per chart line).
        let first: Vec<&super::Row> = variants
            .first()
            .map(|f| run.timeline.iter().filter(|r| r.variant == *f).collect())
            .unwrap_or_default();
        // Red bands where requests missed the SLO.
        let mut band = |from: f64, to: f64| {
            let _ = writeln!(
                svg,
                "<rect x=\"{:.1}\" y=\"{top}\" width=\"{:.1}\" height=\"6\" fill=\"#d62728\" opacity=\"0.7\"/>",
                x(from),
                (x(to) - x(from)).max(0.5)
            );
        };
        let mut missed_since: Option<f64> = None;
        for r in &first {
            match (r.slo_missed, missed_since) {
                (true, None) => missed_since = Some(r.time),
                (false, Some(since)) => {
                    band(since, r.time);
                    missed_since = None;
                }
                _ => {}
            }
        }
        if let Some(since) = missed_since {
            band(since, duration);
        }
        // Load as a grey area, the ready capacity within the SLO as a dashed line on the
        // same axis, the backlog as an orange line on its own scale.
        if !first.is_empty() {
            let mut points = format!("{:.1},{:.1}", x(0.0), top + panel);
            let (mut capacity, mut backlog) = (String::new(), String::new());
            let most_waiting = first.iter().map(|r| r.backlog).fold(0.0, f64::max);
            for r in first.iter().step_by(5) {
                let _ = write!(points, " {:.1},{:.1}", x(r.time), y_load(r.load));
                let _ = write!(
                    capacity,
                    " {:.1},{:.1}",
                    x(r.time),
                    y_load(r.ready_capacity.min(max_load))
                );
                if most_waiting > 0.0 {
                    let _ = write!(
                        backlog,
                        " {:.1},{:.1}",
                        x(r.time),
                        top + panel - r.backlog / most_waiting * panel
                    );
                }
            }
            let _ = write!(points, " {:.1},{:.1}", x(duration), top + panel);
            let _ = writeln!(
                svg,
                "<polygon points=\"{points}\" fill=\"#bbb\" opacity=\"0.35\"/>"
            );
            let _ = writeln!(
                svg,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"#333\" stroke-dasharray=\"4 3\"/>",
                capacity.trim()
            );
            if most_waiting > 0.0 {
                let _ = writeln!(
                    svg,
                    "<polyline points=\"{}\" fill=\"none\" stroke=\"#ff7f0e\" stroke-width=\"1.5\"/>",
                    backlog.trim()
                );
            }
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#ff7f0e\">backlog (max {most_waiting:.0} requests)</text>",
                width - margin - 200.0,
                top + 44.0 + 14.0 * variants.len() as f64
            );
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#333\">- - ready capacity within the SLO</text>",
                width - margin - 200.0,
                top + 58.0 + 14.0 * variants.len() as f64
            );
        }
        for (c, variant) in variants.iter().enumerate() {
            let mut points = String::new();
            let mut last: Option<u32> = None;
            for r in run.timeline.iter().filter(|r| r.variant == *variant) {
                if last != Some(r.replicas) {
                    if let Some(l) = last {
                        let _ = write!(points, " {:.1},{:.1}", x(r.time), y_rep(l as f64));
                    }
                    let _ = write!(points, " {:.1},{:.1}", x(r.time), y_rep(r.replicas as f64));
                    last = Some(r.replicas);
                }
            }
            if let Some(l) = last {
                let _ = write!(points, " {:.1},{:.1}", x(duration), y_rep(l as f64));
            }
            let color = COLORS[c % COLORS.len()];
            let _ = writeln!(
                svg,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>",
                points.trim()
            );
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{color}\">{} replicas</text>",
                width - margin - 200.0,
                top + 16.0 + 14.0 * c as f64,
                escape(variant)
            );
        }
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#777\">load (max {:.1} req/s)</text>",
            width - margin - 200.0,
            top + 16.0 + 14.0 * variants.len() as f64,
            max_load
        );
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#d62728\">SLO missed</text>",
            width - margin - 200.0,
            top + 30.0 + 14.0 * variants.len() as f64
        );
        for k in 0..=(max_replicas as u32) {
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#555\">{k}</text>",
                margin - 6.0,
                y_rep(k as f64) + 4.0
            );
        }
        for m in
            (0..=(duration as u64 / 60)).step_by(((duration / 60.0 / 10.0).ceil() as usize).max(1))
        {
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{m}m</text>",
                x(m as f64 * 60.0),
                top + panel + 14.0
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
