//! Simulation outputs: the summary table, the per-tick timeline (CSV) and an SVG chart with one
//! panel per policy (load, replicas per variant, saturation). Pure text generation.

use std::fmt::Write as _;

use super::{PolicyRun, Simulation};

/// The summary table, one row per policy.
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
    let _ = writeln!(
        out,
        "{:<22} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>11} {:>12} {:>9} {:>17} {:>8} {:>8}",
        "POLICY",
        "SLO-ATT",
        "TTFT-P50",
        "TTFT-P99",
        "FAILED",
        "REPLICA-H",
        "COST",
        "SATURATED",
        "OVER-CAP",
        "PEAK-OVER",
        "TIME-TO-CAPACITY",
        "ACTIONS",
        "PENDING+"
    );
    let _ = writeln!(
        out,
        "{:<22} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>11} {:>12} {:>9} {:>17} {:>8} {:>8}",
        "",
        "%",
        "s",
        "s",
        "requests",
        "",
        "",
        "replica-min",
        "requests",
        "replicas",
        "after steps",
        "",
        "scale-ups"
    );
    for run in &sim.runs {
        let quantile = |q: f64| {
            run.requests
                .ttft_quantile(q)
                .map_or("-".to_owned(), |s| format!("{s:.1}"))
        };
        let _ = writeln!(
            out,
            "{:<22} {:>8.1} {:>9} {:>9} {:>9.0} {:>9.2} {:>10.2} {:>11.1} {:>12.0} {:>9} {:>17} {:>8} {:>8}",
            run.policy,
            100.0 * run.slo_attainment(),
            quantile(0.5),
            quantile(0.99),
            run.requests.failed,
            run.replica_hours,
            run.cost,
            run.saturated_replica_minutes,
            run.requests_over_capacity,
            run.peak_replicas_above_need,
            time_to_capacity(run),
            run.scaling_actions,
            run.pending_scale_ups.len(),
        );
    }
    out
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
    let mut out =
        String::from("time_s,policy,variant,load_rps,replicas,ready,desired,max_kv,max_queue\n");
    for run in &sim.runs {
        for r in &run.timeline {
            let _ = writeln!(
                out,
                "{},{},{},{:.3},{},{},{},{:.3},{:.1}",
                r.time,
                r.policy,
                r.variant,
                r.load,
                r.replicas,
                r.ready,
                r.desired,
                r.max_kv,
                r.max_queue
            );
        }
    }
    out
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
];

/// One panel per policy: load (grey area, right axis), replicas per variant (lines, left axis),
/// and a red band where any replica was saturated.
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
        // Saturation bands, from the timeline's per-variant max KV-cache use.
        let mut variants: Vec<&str> = run.timeline.iter().map(|r| r.variant.as_str()).collect();
        variants.sort();
        variants.dedup();
        let mut saturated_since: Option<f64> = None;
        let mut times: Vec<f64> = run.timeline.iter().map(|r| r.time).collect();
        times.dedup();
        for &t in &times {
            let sat = run
                .timeline
                .iter()
                .any(|r| r.time == t && (r.max_kv >= 0.8 || r.max_queue >= 5.0));
            match (sat, saturated_since) {
                (true, None) => saturated_since = Some(t),
                (false, Some(s)) => {
                    let _ = writeln!(
                        svg,
                        "<rect x=\"{:.1}\" y=\"{top}\" width=\"{:.1}\" height=\"6\" fill=\"#d62728\" opacity=\"0.7\"/>",
                        x(s),
                        x(t) - x(s)
                    );
                    saturated_since = None;
                }
                _ => {}
            }
        }
        if let Some(s) = saturated_since {
            let _ = writeln!(
                svg,
                "<rect x=\"{:.1}\" y=\"{top}\" width=\"{:.1}\" height=\"6\" fill=\"#d62728\" opacity=\"0.7\"/>",
                x(s),
                x(duration) - x(s)
            );
        }
        // Load as a grey area (from the first variant's rows; the load is per model).
        if let Some(first) = variants.first() {
            let mut points = format!("{:.1},{:.1}", x(0.0), top + panel);
            for r in run
                .timeline
                .iter()
                .filter(|r| r.variant == *first)
                .step_by(5)
            {
                let _ = write!(points, " {:.1},{:.1}", x(r.time), y_load(r.load));
            }
            let _ = write!(points, " {:.1},{:.1}", x(duration), top + panel);
            let _ = writeln!(
                svg,
                "<polygon points=\"{points}\" fill=\"#bbb\" opacity=\"0.35\"/>"
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
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#d62728\">saturated</text>",
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
