//! `wva simulate`: a virtual cluster on a virtual clock that drives the very same
//! `core::decide` as the controller, through the same snapshot type, next to the alternatives
//! users deploy. Deterministic for a seed; no IO (the CLI writes the outputs).

pub mod frontier;
pub mod hpa;
pub mod judge;
pub mod policy;
pub mod report;
pub mod requests;
pub mod scenario;

use std::collections::{BTreeMap, VecDeque};

use crate::config::SaturationConfigSet;
use crate::config::ScaleToZeroConfigSet;
use crate::core::snapshot::{ReadyPod, StartingPod};
use crate::core::{PodMetrics, Snapshot, Text, Variant};
use policy::{Observed, Sample, SimPolicy};
pub use scenario::Scenario;

/// Policies the simulator knows, each as its users deploy it (docs/simulation.md).
pub const POLICIES: [&str; 10] = [
    "wva-next",
    "wva-v0.5.0",
    "wva-v0.5.0-direct",
    "no-pending-awareness",
    "keda-prodstack",
    "keda-llmd-queue",
    "keda-kv",
    "knative-kpa",
    "ray-serve-llm",
    "oracle",
];

/// The Prometheus window the controller's queries look back over (`max_over_time(...[1m])`).
const WINDOW_SECONDS: f64 = 60.0;

/// A small deterministic generator (xorshift64*) for start-up times.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn between(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            low
        } else {
            low + self.next() % (high - low + 1)
        }
    }
    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.unit(), self.unit());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    /// Poisson with this mean (Knuth below 30, the normal approximation above).
    fn poisson(&mut self, mean: f64) -> f64 {
        if mean <= 0.0 {
            return 0.0;
        }
        if mean > 30.0 {
            return (mean + mean.sqrt() * self.normal()).round().max(0.0);
        }
        let limit = (-mean).exp();
        let (mut k, mut product) = (0.0, self.unit());
        while product > limit {
            k += 1.0;
            product *= self.unit();
        }
        k
    }
    /// Gamma with this shape and mean 1 (Marsaglia–Tsang; shape < 1 boosted).
    fn gamma_unit_mean(&mut self, shape: f64) -> f64 {
        let boost = if shape < 1.0 {
            self.unit().powf(1.0 / shape)
        } else {
            1.0
        };
        let d = if shape < 1.0 { shape + 1.0 } else { shape } - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v > 0.0 && self.unit().ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return boost * d * v / shape;
            }
        }
    }
    /// One start-up time.
    fn startup(&mut self, startup: scenario::Startup) -> f64 {
        match startup {
            scenario::Startup::Uniform(low, high) => self.between(low, high) as f64,
            scenario::Startup::LogNormal { mean, sd } => {
                let (mu, sigma) = scenario::log_normal(mean, sd);
                (mu + sigma * self.normal()).exp().round()
            }
        }
    }
}

#[derive(Clone, Debug)]
struct Pod {
    id: u64,
    created_at: f64,
    /// When the scheduler placed it; `None`: `Unschedulable` (no free GPU within the quota).
    scheduled_at: Option<f64>,
    /// Seconds from scheduling to ready (drawn at creation).
    startup: f64,
    fault: Option<Fault>,
    /// (time, sample) of the scrapes within the window.
    scrapes: VecDeque<(f64, Sample)>,
    /// Requests it served, and seconds, since its last scrape.
    served_count: (f64, f64),
}

/// Why a pod never becomes ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// The image cannot be pulled: `ImagePullBackOff` after the first pull fails.
    ImagePull,
    /// The engine starts, then crashes: `CrashLoopBackOff` once its start-up time has passed.
    CrashLoop,
}

impl Pod {
    /// Its name as the controller would see it: the variant's, then its number.
    fn name(&self, spec: &scenario::VariantSpec) -> String {
        format!("{}-{:05}", spec.name, self.id)
    }

    fn ready_at(&self) -> Option<f64> {
        match self.fault {
            Some(_) => None,
            None => self.scheduled_at.map(|s| s + self.startup),
        }
    }

    fn ready(&self, t: f64) -> bool {
        self.ready_at().is_some_and(|r| r <= t)
    }

    /// Its share of a replica's capacity: `warmup` after becoming ready, then all of it.
    fn capacity(&self, t: f64, spec: &scenario::VariantSpec) -> f64 {
        match self.ready_at() {
            Some(r) if r <= t => {
                if t - r < spec.warmup_seconds as f64 {
                    spec.warmup_capacity
                } else {
                    1.0
                }
            }
            _ => 0.0,
        }
    }

    /// One tick of its metrics: what it served (a warming pod serves, and is sent, its share of
    /// a replica's throughput, no more), and on a scrape tick the scrape — within the window.
    /// `vllm:request_success_total` is a counter: a scrape shows what was served since the
    /// previous one, not this tick's rate. `sample` is what a warm ready pod shows.
    fn tick(
        &mut self,
        t: f64,
        dt: f64,
        sample: &Sample,
        spec: &scenario::VariantSpec,
        scrape: bool,
        loading_pods_expose_metrics: bool,
    ) {
        let share = self.capacity(t, spec);
        if share > 0.0 {
            self.served_count.0 += sample.served * share * dt;
            self.served_count.1 += dt;
        }
        if !scrape {
            return;
        }
        if self.ready(t) {
            let (count, seconds) = std::mem::take(&mut self.served_count);
            let served = if seconds > 0.0 {
                count / seconds
            } else {
                sample.served * share
            };
            self.scrapes.push_back((
                t,
                Sample {
                    served,
                    waiting: sample.waiting * share,
                    running: sample.running * share,
                    ..*sample
                },
            ));
        } else if loading_pods_expose_metrics {
            // An engine that is up but not ready yet: idle.
            self.scrapes.push_back((t, Sample::default()));
        }
        while self
            .scrapes
            .front()
            .is_some_and(|(at, _)| *at <= t - WINDOW_SECONDS)
        {
            self.scrapes.pop_front();
        }
    }

    /// What the controller's stuck-pod rule sees: `Unschedulable` at once, a failed image
    /// pull after the first attempt, a crash loop once the engine has had its start-up time.
    fn stuck(&self, t: f64) -> bool {
        let Some(scheduled) = self.scheduled_at else {
            return true;
        };
        match self.fault {
            Some(Fault::ImagePull) => {
                t - self.created_at >= STUCK_AFTER_SECONDS && self.scrapes.is_empty()
            }
            Some(Fault::CrashLoop) => t - scheduled >= self.startup,
            None => false,
        }
    }
}

/// How long after creation a never-ready pod shows a stuck reason (the first image pull failing
/// and the kubelet's back-off starting).
const STUCK_AFTER_SECONDS: f64 = 60.0;

#[derive(Clone, Debug)]
struct VariantState {
    model: usize,
    spec: scenario::VariantSpec,
    /// What goes wrong with its new pods.
    fault: Option<Fault>,
    /// The bounds the policy keeps (the variant's, or the policy's default maximum).
    min: u32,
    max: u32,
    deployment_replicas: u32,
    pods: Vec<Pod>,
    /// What the policy wants (wva: the published `wva_desired_replicas`).
    desired: u32,
    /// The HPA between the policy and the Deployment, if it has one.
    hpa: Option<hpa::Hpa>,
    /// This tick: what each ready pod shows, and the variant's requests in flight.
    sample: Sample,
    in_flight: f64,
    /// The model's served rate averaged over the time one of this variant's requests runs
    /// (`None` before its first tick with ready pods): by Little's law the requests its pods
    /// hold, which KV-cache use and the running count follow, rather than one tick's rate.
    held_rate: Option<f64>,
    /// (time, up?) of every change of `deployment_replicas`.
    changes: Vec<(f64, bool)>,
}

/// One tick of one variant, for the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub time: f64,
    pub policy: String,
    pub variant: String,
    pub load: f64,
    pub replicas: u32,
    pub ready: u32,
    pub desired: u32,
    pub max_kv: f64,
    pub max_queue: f64,
    /// The model's requests waiting (all its variants).
    pub backlog: f64,
    /// The model's ready capacity within the SLO (requests per second).
    pub ready_capacity: f64,
    /// Whether some of the model's requests missed the SLO in this tick (served late, above
    /// the time-per-output-token objective, or failed).
    pub slo_missed: bool,
}

/// A decision that scaled up a variant with pending replicas (what v0.5.0 prevents).
#[derive(Clone, Debug, PartialEq)]
pub struct PendingScaleUp {
    pub time: f64,
    pub variant: String,
    pub pending: u32,
    pub from: u32,
    pub to: u32,
}

/// What one policy did over the scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyRun {
    pub policy: String,
    /// GPU-hours of every pod that existed, loading and stuck ones included.
    pub gpu_hours: f64,
    /// GPU-hours of pods that never became ready.
    pub stuck_gpu_hours: f64,
    pub cost: f64,
    /// The time-weighted mean and the most of the replicas of every variant together.
    pub avg_replicas: f64,
    pub max_replicas: u32,
    /// Minutes (summed over models) in which the ready capacity within the SLO was below the
    /// load.
    pub under_capacity_minutes: f64,
    /// Changes of a variant's replica count in the other direction than its previous change,
    /// within [`FLAP_SECONDS`] of it.
    pub flaps: u32,
    /// Against the oracle of the same scenario (filled in by [`run`]): cost / the oracle's,
    /// and the GPU-hours above the oracle's at each moment.
    pub cost_ratio_to_oracle: Option<f64>,
    pub waste_gpu_hours: Option<f64>,
    /// GPUs allocated per tick (every model), for the comparison with the oracle.
    gpus_per_tick: Vec<f64>,
    pub saturated_replica_minutes: f64,
    /// Seconds from each load step-up until ready capacity covers the load (`None`: never).
    pub time_to_capacity: Vec<Option<f64>>,
    pub scaling_actions: u32,
    pub pending_scale_ups: Vec<PendingScaleUp>,
    /// What happened to the requests, every model together.
    pub requests: requests::Outcome,
    /// Requests still waiting when the scenario ends.
    pub waiting_at_end: f64,
    pub timeline: Vec<Row>,
}

/// A reversal within this many seconds of the previous change counts as a flap.
pub const FLAP_SECONDS: f64 = 600.0;

impl PolicyRun {
    /// Requests per second served within the SLO.
    pub fn goodput(&self, duration_seconds: u64) -> f64 {
        self.requests.met / duration_seconds.max(1) as f64
    }

    /// The share of offered requests served within the SLO (1 when none offered).
    pub fn slo_attainment(&self) -> f64 {
        if self.requests.offered > 0.0 {
            self.requests.met / self.requests.offered
        } else {
            1.0
        }
    }
}

/// The whole comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Simulation {
    pub scenario: String,
    pub seed: u64,
    pub duration_seconds: u64,
    pub runs: Vec<PolicyRun>,
}

/// Runs every requested policy on the scenario. `progress` is told the fraction done.
pub fn run(scenario: &Scenario, progress: &mut dyn FnMut(f64)) -> Simulation {
    let mut policies: Vec<String> = if scenario.policies.is_empty() {
        POLICIES.iter().map(|p| p.to_string()).collect()
    } else {
        scenario.policies.clone()
    };
    // Every comparison has the oracle's row: the bound the others are measured against.
    if !policies.iter().any(|p| p == "oracle") {
        policies.push("oracle".into());
    }
    let count = policies.len() as f64;
    let mut runs: Vec<PolicyRun> = policies
        .iter()
        .enumerate()
        .map(|(i, p)| run_policy(scenario, p, &mut |f| progress((i as f64 + f) / count)))
        .collect();
    let dt = scenario.tick_seconds as f64;
    if let Some(oracle) = runs.iter().find(|r| r.policy == "oracle").cloned() {
        for run in &mut runs {
            run.cost_ratio_to_oracle = (oracle.cost > 0.0).then(|| run.cost / oracle.cost);
            run.waste_gpu_hours = Some(
                run.gpus_per_tick
                    .iter()
                    .zip(&oracle.gpus_per_tick)
                    .map(|(mine, need)| (mine - need).max(0.0) * dt / 3600.0)
                    .sum(),
            );
        }
    }
    Simulation {
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        duration_seconds: scenario.duration_seconds,
        runs,
    }
}

/// The saturation config wva's policies run with: the scenario's, with the knob's fields in the
/// `default` entry when `tuning` sets one for `policy` (`kvCacheThreshold`; `wva-next`'s
/// utilisations), and `wva-next`'s `capacityRps` (`scenario::parse` has checked that it parses).
fn saturation_config(scenario: &Scenario, policy: &str) -> SaturationConfigSet {
    tuned_saturation_config(scenario, policy)
        .map(|p| p.value)
        .unwrap_or_default()
}

fn tuned_saturation_config(
    scenario: &Scenario,
    policy: &str,
) -> Result<crate::config::Parsed<SaturationConfigSet>, Vec<crate::config::Problem>> {
    let mut entries = scenario
        .saturation_config
        .as_ref()
        .and_then(|v| v.as_object())
        .cloned()
        .unwrap_or_default();
    if policy == "wva-next" {
        next_capacities(scenario, &mut entries);
    }
    // The knob's fields in the `default` entry: wva-next's utilisations (the band around the
    // target), or v0.5.0's KV threshold.
    let fields = match scenario.tuning.get(policy) {
        Some(&target) if policy == "wva-next" => vec![
            ("targetUtilisation", target),
            ("scaleUpUtilisation", (target + 0.05).min(1.0)),
            ("scaleDownUtilisation", target - 0.1),
        ],
        Some(&threshold) => vec![("kvCacheThreshold", threshold)],
        None => Vec::new(),
    };
    if !fields.is_empty() {
        let default = entries
            .entry("default".to_owned())
            .or_insert_with(|| serde_json::json!({}));
        if let Some(d) = default.as_object_mut() {
            for (field, value) in fields {
                d.insert(field.into(), serde_json::json!(value));
            }
        }
    }
    SaturationConfigSet::parse(entries.iter())
}

/// `wva-next` is told each variant's capacity within the SLO (`capacityRps`), as a user who ran
/// the benchmark would configure it: per model, in the override entry for it (made when the
/// scenario has none), keyed by accelerator, unless the scenario sets `capacityRps` itself.
fn next_capacities(scenario: &Scenario, entries: &mut serde_json::Map<String, serde_json::Value>) {
    entries
        .entry("default".to_owned())
        .or_insert_with(|| serde_json::json!({}));
    for (i, model) in scenario.models.iter().enumerate() {
        let existing = entries.iter().find_map(|(k, v)| {
            (k != "default"
                && v.get("model_id").and_then(|m| m.as_str()) == Some(model.model_id.as_str()))
            .then(|| k.clone())
        });
        let key = existing.unwrap_or_else(|| format!("wva-next-{i}"));
        let entry = entries.entry(key).or_insert_with(
            || serde_json::json!({"model_id": model.model_id, "namespace": model.namespace}),
        );
        let Some(entry) = entry.as_object_mut() else {
            continue;
        };
        if !entry.contains_key("capacityRps") {
            let capacities: serde_json::Map<String, serde_json::Value> = model
                .variants
                .iter()
                .map(|v| (v.accelerator.clone(), serde_json::json!(v.capacity_rps)))
                .collect();
            entry.insert("capacityRps".into(), serde_json::Value::Object(capacities));
        }
    }
}

fn run_policy(scenario: &Scenario, name: &str, progress: &mut dyn FnMut(f64)) -> PolicyRun {
    let config = saturation_config(scenario, name);
    let mut rng = Rng::new(scenario.seed);
    let mut decider = policy::by_name(name, scenario)
        .expect("invariant: scenario::parse and the CLI accept only known policy names");
    let drive = decider.drive();
    let mut next_pod = 0u64;
    let mut variants: Vec<VariantState> = Vec::new();
    for (m, model) in scenario.models.iter().enumerate() {
        for spec in &model.variants {
            // Running from before the start: created one mean start-up plus the warm-up ago.
            let startup = spec.startup().mean();
            let created_at = -(startup + spec.warmup_seconds as f64);
            let pods = (0..spec.initial_replicas)
                .map(|_| {
                    next_pod += 1;
                    Pod {
                        id: next_pod,
                        created_at,
                        scheduled_at: Some(created_at),
                        startup,
                        fault: None,
                        scrapes: VecDeque::new(),
                        served_count: (0.0, 0.0),
                    }
                })
                .collect();
            let (min, max) = (
                spec.min_replicas,
                spec.max_replicas
                    .unwrap_or_else(|| decider.default_max_replicas())
                    .max(spec.min_replicas),
            );
            let hpa = match &drive {
                policy::Drive::Hpa(behavior) => Some(hpa::Hpa::new(hpa::Spec {
                    min_replicas: min,
                    max_replicas: max,
                    tolerance: scenario.actuation.hpa_tolerance,
                    behavior: behavior.clone(),
                })),
                policy::Drive::Direct => None,
            };
            variants.push(VariantState {
                model: m,
                spec: spec.clone(),
                fault: if scenario.faults.never_ready.contains(&spec.name) {
                    Some(Fault::ImagePull)
                } else if scenario.faults.crash_loop.contains(&spec.name) {
                    Some(Fault::CrashLoop)
                } else {
                    None
                },
                min,
                max,
                deployment_replicas: spec.initial_replicas,
                pods,
                desired: spec.initial_replicas,
                hpa,
                sample: Sample::default(),
                in_flight: 0.0,
                held_rate: None,
                changes: Vec::new(),
            });
        }
    }
    let dt = scenario.tick_seconds as f64;
    let ticks = scenario.duration_seconds / scenario.tick_seconds;
    let mut out = PolicyRun {
        policy: name.to_owned(),
        gpu_hours: 0.0,
        stuck_gpu_hours: 0.0,
        cost: 0.0,
        avg_replicas: 0.0,
        max_replicas: 0,
        under_capacity_minutes: 0.0,
        flaps: 0,
        cost_ratio_to_oracle: None,
        waste_gpu_hours: None,
        gpus_per_tick: Vec::with_capacity(ticks as usize),
        saturated_replica_minutes: 0.0,
        time_to_capacity: Vec::new(),
        scaling_actions: 0,
        pending_scale_ups: Vec::new(),
        requests: requests::Outcome::default(),
        waiting_at_end: 0.0,
        timeline: Vec::new(),
    };
    let objective = scenario.slo.objective();
    let mut backlogs = vec![requests::Backlog::default(); scenario.models.len()];
    // The gateway queue per model as Prometheus last scraped it.
    let mut scraped_queue = vec![0.0; scenario.models.len()];
    // Step-ups still waiting for capacity: (model, step time).
    let mut waiting: Vec<(usize, u64)> = scenario
        .models
        .iter()
        .enumerate()
        .flat_map(|(m, model)| model.load.step_ups().into_iter().map(move |t| (m, t)))
        .collect();
    let mut step_results: Vec<(usize, u64, Option<f64>)> = Vec::new();
    // Arrival noise: a stream per model, apart from the start-up times' so that those do not
    // change with it; Gamma factors are drawn ahead (the oracle draws the same ones).
    let mut noise: Vec<Rng> = (0..scenario.models.len())
        .map(|m| noise_rng(scenario.seed, m))
        .collect();
    let bursts: Vec<Option<Vec<f64>>> = (0..scenario.models.len())
        .map(|m| burst_factors(scenario, m))
        .collect();
    // This tick per model: (ready capacity within the SLO, some request missed it).
    let mut model_now = vec![(0.0, false); scenario.models.len()];

    for tick in 0..ticks {
        let t = (tick * scenario.tick_seconds) as f64;
        if tick.is_multiple_of(600) {
            progress(tick as f64 / ticks as f64);
        }
        // The requests: arrivals, service by the ready replicas, what the pods show.
        for (m, model) in scenario.models.iter().enumerate() {
            // The demand: the curve, times the Gamma factor of the period if any; the
            // arrivals: the demand, or a Poisson count around it.
            let load = match (model.noise, &bursts[m]) {
                (Some(scenario::Noise::Gamma { period_seconds, .. }), Some(factors)) => {
                    model.load.rate(t)
                        * factors
                            .get(t as usize / period_seconds as usize)
                            .copied()
                            .unwrap_or(1.0)
                }
                _ => model.load.rate(t),
            };
            let arrivals = match model.noise {
                Some(scenario::Noise::Poisson) => noise[m].poisson(load * dt),
                _ => load * dt,
            };
            let before = backlogs[m].outcome.clone();
            let slo_capacity = serve(
                &mut variants,
                m,
                &mut backlogs[m],
                t,
                arrivals,
                dt,
                &objective,
            );
            if slo_capacity < load {
                out.under_capacity_minutes += dt / 60.0;
            }
            let after = &backlogs[m].outcome;
            let missed = (after.served - after.met) - (before.served - before.met) > 1e-9
                || after.failed > before.failed;
            model_now[m] = (slo_capacity, missed);
            waiting.retain(|(wm, at)| {
                if *wm == m && t >= *at as f64 && slo_capacity >= load {
                    step_results.push((*wm, *at, Some(t - *at as f64)));
                    false
                } else {
                    true
                }
            });
        }
        let scrape = (t as u64).is_multiple_of(scenario.scrape_interval_seconds);
        if scrape {
            for (q, backlog) in scraped_queue.iter_mut().zip(&backlogs) {
                *q = backlog.waiting();
            }
        }
        let (mut gpus, mut replicas) = (0.0, 0);
        for v in variants.iter_mut() {
            let cfg = config
                .for_model(
                    &scenario.models[v.model].namespace,
                    &scenario.models[v.model].model_id,
                )
                .1;
            let per_hour = v.pods.len() as f64 * dt / 3600.0;
            let per_gpu = v.spec.gpus_per_replica as f64;
            out.gpu_hours += per_hour * per_gpu;
            out.cost += per_hour * v.spec.cost_per_hour;
            let stuck = v.pods.iter().filter(|p| p.ready_at().is_none()).count();
            out.stuck_gpu_hours += stuck as f64 * per_gpu * dt / 3600.0;
            gpus += v.pods.len() as f64 * per_gpu;
            replicas += v.pods.len() as u32;
            let ready = v.pods.iter().filter(|p| p.ready(t)).count();
            if v.sample.kv >= cfg.kv_cache_threshold
                || v.sample.waiting >= cfg.queue_length_threshold
            {
                out.saturated_replica_minutes += ready as f64 * dt / 60.0;
            }
            for p in v.pods.iter_mut() {
                p.tick(
                    t,
                    dt,
                    &v.sample,
                    &v.spec,
                    scrape,
                    scenario.loading_pods_expose_metrics,
                );
            }
        }
        out.gpus_per_tick.push(gpus);
        out.avg_replicas += replicas as f64 / ticks as f64;
        out.max_replicas = out.max_replicas.max(replicas);
        let outage = scenario
            .faults
            .prometheus_outage
            .is_some_and(|[s, e]| t >= s as f64 && t < e as f64);
        control(
            scenario,
            &config,
            decider.as_mut(),
            &mut variants,
            &scraped_queue,
            t,
            outage,
            &mut out,
        );
        // The ReplicaSet controller.
        for v in &mut variants {
            while (v.pods.len() as u32) < v.deployment_replicas {
                next_pod += 1;
                let startup = rng.startup(v.spec.startup());
                v.pods.push(Pod {
                    id: next_pod,
                    created_at: t,
                    scheduled_at: None,
                    startup,
                    fault: v.fault,
                    scrapes: VecDeque::new(),
                    served_count: (0.0, 0.0),
                });
            }
            while (v.pods.len() as u32) > v.deployment_replicas {
                // Not-ready pods go first, newest first (the ReplicaSet's preference).
                let victim = v
                    .pods
                    .iter()
                    .enumerate()
                    .max_by_key(|(_, p)| (!p.ready(t), p.id))
                    .map(|(i, _)| i)
                    .unwrap_or(0);
                v.pods.remove(victim);
            }
        }
        schedule(&mut variants, &scenario.gpu_quota, t);
        for v in &variants {
            let last = |f: fn(&Sample) -> f64| {
                v.pods
                    .iter()
                    .filter_map(|p| p.scrapes.back())
                    .map(|(_, s)| f(s))
                    .fold(0.0, f64::max)
            };
            out.timeline.push(Row {
                time: t,
                policy: name.to_owned(),
                variant: v.spec.name.clone(),
                load: scenario.models[v.model].load.rate(t),
                replicas: v.pods.len() as u32,
                ready: v.pods.iter().filter(|p| p.ready(t)).count() as u32,
                desired: v.desired,
                max_kv: last(|s| s.kv),
                max_queue: last(|s| s.waiting),
                backlog: backlogs[v.model].waiting(),
                ready_capacity: model_now[v.model].0,
                slo_missed: model_now[v.model].1,
            });
        }
    }
    progress(1.0);
    for backlog in &backlogs {
        out.requests.add(&backlog.outcome);
        out.waiting_at_end += backlog.waiting();
    }
    step_results.extend(waiting.into_iter().map(|(m, at)| (m, at, None)));
    step_results.sort_by_key(|(m, at, _)| (*m, *at));
    out.time_to_capacity = step_results.into_iter().map(|(_, _, d)| d).collect();
    out.flaps = variants.iter().map(|v| flaps(&v.changes)).sum();
    out
}

/// Reversals within [`FLAP_SECONDS`] of the previous change, in a list of (time, up?) changes.
fn flaps(changes: &[(f64, bool)]) -> u32 {
    changes
        .windows(2)
        .filter(|w| w[0].1 != w[1].1 && w[1].0 - w[0].0 <= FLAP_SECONDS)
        .count() as u32
}

/// Model `m`'s arrival-noise stream.
fn noise_rng(seed: u64, m: usize) -> Rng {
    Rng::new(seed ^ 0x6E6F_6973_6500 ^ (m as u64 + 1).wrapping_mul(0x9E37_79B9))
}

/// Model `m`'s Gamma load factors, one per noise period over the scenario (`None` without
/// Gamma noise): what the arrivals are multiplied by, and what a clairvoyant oracle knows.
pub(crate) fn burst_factors(scenario: &Scenario, m: usize) -> Option<Vec<f64>> {
    let Some(scenario::Noise::Gamma { cv, period_seconds }) = scenario.models[m].noise else {
        return None;
    };
    let mut rng = noise_rng(scenario.seed, m);
    let periods = scenario.duration_seconds.div_ceil(period_seconds) as usize + 1;
    Some(
        (0..periods)
            .map(|_| rng.gamma_unit_mean(1.0 / (cv * cv)))
            .collect(),
    )
}

/// The scheduler: pending pods, oldest first, get GPUs of their accelerator while the quota
/// has room (types without a quota always do).
fn schedule(variants: &mut [VariantState], quota: &BTreeMap<String, u32>, t: f64) {
    if variants
        .iter()
        .all(|v| v.pods.iter().all(|p| p.scheduled_at.is_some()))
    {
        return;
    }
    let mut used: BTreeMap<String, u32> = BTreeMap::new();
    let mut pending: Vec<(u64, usize, usize)> = Vec::new();
    for (i, v) in variants.iter().enumerate() {
        for (j, p) in v.pods.iter().enumerate() {
            if p.scheduled_at.is_some() {
                *used.entry(v.spec.accelerator.clone()).or_default() += v.spec.gpus_per_replica;
            } else {
                pending.push((p.id, i, j));
            }
        }
    }
    pending.sort_unstable();
    for (_, i, j) in pending {
        let v = &mut variants[i];
        let taken = used.entry(v.spec.accelerator.clone()).or_default();
        if quota
            .get(&v.spec.accelerator)
            .is_none_or(|limit| *taken + v.spec.gpus_per_replica <= *limit)
        {
            *taken += v.spec.gpus_per_replica;
            v.pods[j].scheduled_at = Some(t);
        }
    }
}

/// One tick of model `m`'s requests: `arrivals` join its backlog, its ready replicas serve up to
/// their throughput (`peakRps`, split in proportion to it), and each variant's pods show what
/// that does — running requests by Little's law on the served rate averaged over a request's
/// time, KV-cache use the running share of what fills it (full at `peakRps`), and the backlog
/// in their waiting queues. Requests served while a replica runs above `capacityRps` miss the
/// time-per-output-token objective in proportion (none at `capacityRps`, all at `peakRps`).
/// Returns the ready capacity within the SLO.
fn serve(
    variants: &mut [VariantState],
    m: usize,
    backlog: &mut requests::Backlog,
    t: f64,
    arrivals: f64,
    dt: f64,
    objective: &requests::Objective,
) -> f64 {
    let mut throughput = 0.0;
    let mut slo_capacity = 0.0;
    // (share of the throughput, capacityRps / peakRps) per variant with ready pods.
    let mut shares: Vec<(f64, f64)> = Vec::new();
    for v in variants.iter().filter(|v| v.model == m) {
        let ready = ready_capacity(v, t);
        throughput += ready * v.spec.peak();
        slo_capacity += ready * v.spec.capacity_rps;
        if ready > 0.0 {
            shares.push((ready * v.spec.peak(), v.spec.capacity_rps / v.spec.peak()));
        }
    }
    let tpot_met = |utilisation: f64| {
        shares
            .iter()
            .map(|(share, knee)| {
                let met = if utilisation <= *knee {
                    1.0
                } else {
                    ((1.0 - utilisation) / (1.0 - knee)).max(0.0)
                };
                share / throughput * met
            })
            .sum::<f64>()
    };
    let served = backlog.tick(t, arrivals, throughput * dt, objective, &tpot_met);
    let queued = backlog.waiting();
    let utilisation = if throughput > 0.0 {
        (served / dt / throughput).min(1.0)
    } else {
        0.0
    };
    let pods_total: f64 = variants
        .iter()
        .filter(|v| v.model == m)
        .map(|v| v.pods.len() as f64)
        .sum();
    for v in variants.iter_mut().filter(|v| v.model == m) {
        let ready = ready_capacity(v, t);
        let share = if throughput > 0.0 {
            v.spec.peak() / throughput
        } else {
            0.0
        };
        let rate = utilisation * v.spec.peak();
        // The requests a pod holds are those that started within about one request's time:
        // the served rate averaged exponentially over `requestSeconds`, shared by throughput
        // (one tick's rate is far noisier than the running count it stands for).
        let served_rate = served / dt;
        let held_rate = match v.held_rate {
            Some(h) if ready > 0.0 => {
                h + (served_rate - h) * (1.0 - (-dt / v.spec.request_seconds).exp())
            }
            _ => served_rate,
        };
        v.held_rate = (ready > 0.0).then_some(held_rate);
        let occupancy = if throughput > 0.0 {
            (held_rate / throughput).min(1.0)
        } else {
            0.0
        };
        v.sample = Sample {
            kv: if queued > 0.0 && ready > 0.0 {
                1.0
            } else {
                occupancy
            },
            waiting: queued * share,
            running: occupancy * v.spec.peak() * v.spec.request_seconds,
            served: rate,
        };
        // With no ready replica anywhere, the model's queue waits at the gateway for whichever
        // pods exist.
        v.in_flight = if throughput > 0.0 {
            ready * (v.sample.running + v.sample.waiting)
        } else if pods_total > 0.0 {
            queued * v.pods.len() as f64 / pods_total
        } else {
            0.0
        };
    }
    slo_capacity
}

/// A variant's ready pods, a warming one counted at its share of capacity.
fn ready_capacity(v: &VariantState, t: f64) -> f64 {
    v.pods.iter().map(|p| p.capacity(t, &v.spec)).sum()
}

/// The autoscaler's moves this tick: wva's cycle, the tick-driven controllers, the HPA syncs.
#[allow(clippy::too_many_arguments)]
fn control(
    scenario: &Scenario,
    config: &SaturationConfigSet,
    decider: &mut dyn SimPolicy,
    variants: &mut [VariantState],
    scraped_queue: &[f64],
    t: f64,
    outage: bool,
    out: &mut PolicyRun,
) {
    let cycle = (t as u64).is_multiple_of(scenario.cycle_seconds) && !outage;
    let decisions = if cycle {
        decider.on_cycle(&snapshot_of(scenario, config, variants, t))
    } else {
        None
    };
    for d in decisions.into_iter().flatten() {
        if let Some(v) = variants.iter_mut().find(|v| v.spec.name == d.variant) {
            if d.pending > 0 && d.target > d.current {
                out.pending_scale_ups.push(PendingScaleUp {
                    time: t,
                    variant: d.variant.clone(),
                    pending: d.pending,
                    from: d.current,
                    to: d.target,
                });
            }
            v.desired = d.target;
            if v.hpa.is_none() {
                // Direct actuation has no HPA to bound it: the bounds are the policy's own,
                // so its decision (and what it sees as its previous one) is the bounded one.
                v.desired = d.target.clamp(v.min, v.max);
                let bounded = v.desired;
                set_replicas(v, bounded, t, &mut out.scaling_actions);
            }
        }
    }
    if decider.ticks() {
        let observed: Vec<Observed> = variants
            .iter()
            .map(|v| observe(v, scraped_queue[v.model], t))
            .collect();
        if let Some(targets) = decider.on_tick(t, &observed) {
            for (v, target) in variants.iter_mut().zip(targets) {
                v.desired = target.clamp(v.min, v.max);
                let bounded = v.desired;
                set_replicas(v, bounded, t, &mut out.scaling_actions);
            }
        }
    }
    // During an outage the metrics API answers nothing: every HPA holds.
    if outage || !(t as u64).is_multiple_of(scenario.actuation.hpa_sync_seconds) {
        return;
    }
    for v in variants.iter_mut().filter(|v| v.hpa.is_some()) {
        let seen = observe(v, scraped_queue[v.model], t);
        let Some(hpa) = v.hpa.as_mut() else { continue };
        let own = decider.hpa_metrics(&seen);
        let metrics = own.clone().unwrap_or_else(|| {
            vec![hpa::Metric::AverageValue {
                total: v.desired as f64,
                target: 1.0,
            }]
        });
        let target = hpa::Target {
            spec_replicas: seen.spec_replicas,
            status_replicas: seen.status_replicas,
            ready: seen.ready,
        };
        let next = hpa.sync(t, target, &metrics);
        if own.is_some() {
            v.desired = next;
        }
        set_replicas(v, next, t, &mut out.scaling_actions);
    }
}

/// A variant as the autoscalers see it (see [`Observed`]).
fn observe(v: &VariantState, model_queue: f64, t: f64) -> Observed {
    Observed {
        model: v.model,
        spec_replicas: v.deployment_replicas,
        status_replicas: v.pods.len() as u32,
        ready: v.pods.iter().filter(|p| p.ready(t)).count() as u32,
        scraped: v
            .pods
            .iter()
            .filter_map(|p| p.scrapes.back().map(|(_, s)| *s))
            .collect(),
        model_queue,
        in_flight: v.in_flight,
        concurrency_at_capacity: v.spec.capacity_rps * v.spec.request_seconds,
    }
}

fn set_replicas(v: &mut VariantState, replicas: u32, t: f64, actions: &mut u32) {
    if v.deployment_replicas != replicas {
        v.changes.push((t, replicas > v.deployment_replicas));
        v.deployment_replicas = replicas;
        *actions += 1;
    }
}

/// What the controller would see: Deployment spec/status, the VA's last decision, and per pod
/// the max over the last minute of scrapes (as `max_over_time(...[1m])`).
fn snapshot_of(
    scenario: &Scenario,
    config: &SaturationConfigSet,
    variants: &[VariantState],
    t: f64,
) -> Snapshot {
    Snapshot {
        saturation_config: config.clone(),
        scale_to_zero_config: ScaleToZeroConfigSet::default(),
        request_counts: Default::default(),
        gpu_inventory: scenario.gpu_inventory.clone(),
        time: Some(t),
        wva_next_state: None,
        variants: variants
            .iter()
            .map(|v| {
                let model = &scenario.models[v.model];
                Variant {
                    name: Text::from(v.spec.name.as_str()),
                    namespace: Text::from(model.namespace.as_str()),
                    model_id: Text::from(model.model_id.as_str()),
                    target_name: Text::from(v.spec.name.as_str()),
                    accelerator: Text::from(v.spec.accelerator.as_str()),
                    cost: v.spec.cost_per_hour,
                    spec_replicas: v.deployment_replicas,
                    replicas: v.pods.len() as u32,
                    ready_replicas: v.pods.iter().filter(|p| p.ready(t)).count() as u32,
                    previous_desired: v.desired,
                    stuck_replicas: v.pods.iter().filter(|p| p.stuck(t)).count() as u32,
                    gpus_per_replica: v.spec.gpus_per_replica,
                    min_replicas: v.min,
                    max_replicas: Some(v.max),
                    starting_pods: v
                        .pods
                        .iter()
                        .filter(|p| !p.ready(t) && !p.stuck(t))
                        .map(|p| StartingPod {
                            name: p.name(&v.spec),
                            age_seconds: t - p.created_at,
                        })
                        .collect(),
                    ready_pods: v
                        .pods
                        .iter()
                        .filter_map(|p| {
                            let ready = p.ready_at().filter(|r| *r <= t)?;
                            Some(ReadyPod {
                                name: p.name(&v.spec),
                                startup_seconds: ready - p.created_at,
                                ready_for_seconds: Some(t - ready),
                            })
                        })
                        .collect(),
                    pods: v
                        .pods
                        .iter()
                        .filter(|p| !p.scrapes.is_empty())
                        .map(|p| PodMetrics {
                            name: p.name(&v.spec).into(),
                            kv_cache_usage: p.scrapes.iter().map(|s| s.1.kv).fold(0.0, f64::max),
                            queue_length: p
                                .scrapes
                                .iter()
                                .map(|s| s.1.waiting)
                                .fold(0.0, f64::max)
                                .trunc() as u64,
                            // `last_over_time(...[1m])`: the newest scrape's.
                            waiting: p.scrapes.back().map(|s| s.1.waiting),
                            // `rate(...[1m])`: the mean over the window's scrapes.
                            served_rps: Some(
                                p.scrapes.iter().map(|s| s.1.served).sum::<f64>()
                                    / p.scrapes.len() as f64,
                            ),
                        })
                        .collect(),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests;
