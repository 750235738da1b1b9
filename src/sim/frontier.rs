//! `wva simulate --frontier`: every policy at each value of its main knob (`policy::knob`), and
//! the Pareto front of (SLO attainment, cost) among them, so that no comparison rests on one
//! possibly badly tuned point. The oracle runs once, as the reference. Pure, like the rest of
//! the simulator.

use super::{POLICIES, PolicyRun, Scenario, policy, run_policy};

/// One policy at one knob value.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub policy: String,
    /// The knob's value (`None` for the oracle).
    pub value: Option<f64>,
    pub slo_attainment: f64,
    pub cost: f64,
    /// Not dominated by another policy's point (higher or equal attainment for lower or equal
    /// cost, one of them strictly); the oracle is left out of this comparison.
    pub pareto: bool,
}

/// The sweep of one scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Frontier {
    pub scenario: String,
    pub seed: u64,
    /// Best first: by attainment, then cost.
    pub points: Vec<Point>,
}

/// Whether `q` is at least as good as (attainment, cost) on both and better on one.
pub fn dominates(q: &Point, attainment: f64, cost: f64) -> bool {
    q.slo_attainment >= attainment
        && q.cost <= cost
        && (q.slo_attainment > attainment || q.cost < cost)
}

/// Sweeps the scenario's policies (all when it lists none). `progress` is told the fraction done.
pub fn sweep(scenario: &Scenario, progress: &mut dyn FnMut(f64)) -> Frontier {
    let names: Vec<&str> = if scenario.policies.is_empty() {
        POLICIES.to_vec()
    } else {
        scenario.policies.iter().map(String::as_str).collect()
    };
    let mut runs: Vec<(String, Option<f64>)> = names
        .iter()
        .filter_map(|name| policy::knob(name).map(|k| (name, k)))
        .flat_map(|(name, knob)| knob.sweep.map(|v| (name.to_string(), Some(v))))
        .collect();
    runs.push(("oracle".into(), None));
    let count = runs.len() as f64;
    let mut points: Vec<Point> = runs
        .into_iter()
        .enumerate()
        .map(|(i, (name, value))| {
            let mut tuned = scenario.clone();
            if let Some(v) = value {
                tuned.tuning.insert(name.clone(), v);
            }
            let run: PolicyRun =
                run_policy(&tuned, &name, &mut |f| progress((i as f64 + f) / count));
            Point {
                policy: name,
                value,
                slo_attainment: run.slo_attainment(),
                cost: run.cost,
                pareto: false,
            }
        })
        .collect();
    let dominated = |p: &Point| {
        points
            .iter()
            .any(|q| q.policy != "oracle" && dominates(q, p.slo_attainment, p.cost))
    };
    let front: Vec<bool> = points
        .iter()
        .map(|p| p.policy != "oracle" && !dominated(p))
        .collect();
    for (p, on) in points.iter_mut().zip(front) {
        p.pareto = on;
    }
    points.sort_by(|a, b| {
        b.slo_attainment
            .total_cmp(&a.slo_attainment)
            .then(a.cost.total_cmp(&b.cost))
            .then(a.policy.cmp(&b.policy))
    });
    Frontier {
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        points,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_front_holds_exactly_the_points_nothing_beats() {
        // A ramp past the throughput, so that queues form and every knob matters.
        let s = super::super::scenario::parse(
            r#"
durationSeconds: 2400
models:
- modelId: m
  variants:
  - {name: v, costPerHour: 5, initialReplicas: 1, capacityRps: 2, peakRps: 3, startupSeconds: [60, 120], maxReplicas: 20}
  load: {kind: ramp, from: 1, to: 30, startSeconds: 0, endSeconds: 1800}
"#,
        )
        .unwrap();
        let f = sweep(&s, &mut |_| {});
        let knobbed = POLICIES
            .iter()
            .filter(|p| policy::knob(p).is_some())
            .count();
        assert_eq!(f.points.len(), knobbed * 4 + 1);
        let others: Vec<&Point> = f.points.iter().filter(|p| p.policy != "oracle").collect();
        for p in &others {
            // Spelled out here rather than with `dominates`, so the test checks that too.
            let beaten = others.iter().any(|q| {
                q.slo_attainment >= p.slo_attainment
                    && q.cost <= p.cost
                    && (q.slo_attainment > p.slo_attainment || q.cost < p.cost)
            });
            assert_eq!(p.pareto, !beaten, "{p:?}");
        }
        assert!(others.iter().any(|p| p.pareto));
        // The knob reaches the policy: KEDA on 1 waiting request per replica is not KEDA on 10.
        for name in [
            "wva-v0.5.0-direct",
            "keda-prodstack",
            "keda-kv",
            "knative-kpa",
            "ray-serve-llm",
        ] {
            let costs: Vec<f64> = others
                .iter()
                .filter(|p| p.policy == name)
                .map(|p| p.cost)
                .collect();
            assert!(
                costs.iter().any(|c| *c != costs[0]),
                "every {name} setting gave the same run: {costs:?}"
            );
        }
    }
}
