//! `wva simulate`: a virtual cluster on a virtual clock that drives the very same
//! `core::decide` as the controller, through the same snapshot type, next to the alternatives
//! users deploy. Deterministic for a seed; no IO (the CLI writes the outputs).

pub mod hpa;
pub mod policy;
pub mod report;
pub mod requests;
pub mod scenario;

use std::collections::VecDeque;

use crate::config::SaturationConfigSet;
use crate::config::ScaleToZeroConfigSet;
use crate::core::{PodMetrics, Snapshot, Variant};
pub use scenario::{ActuationMode, Scenario};

/// Policies the simulator knows.
pub const POLICIES: [&str; 3] = ["wva-v0.5.0", "no-pending-awareness", "keda-queue"];

/// The Prometheus window the controller's queries look back over (`max_over_time(...[1m])`).
const WINDOW_SECONDS: f64 = 60.0;
/// Utilisation at which vLLM's queue starts to grow (KV-cache nearly full).
const QUEUE_ONSET: f64 = 0.8;

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
}

#[derive(Clone, Debug)]
struct Pod {
    id: u64,
    created_at: f64,
    /// `None`: never becomes ready (fault).
    ready_at: Option<f64>,
    /// (time, kv, queue) of the scrapes within the window.
    scrapes: VecDeque<(f64, f64, f64)>,
}

impl Pod {
    fn ready(&self, t: f64) -> bool {
        self.ready_at.is_some_and(|r| r <= t)
    }

    /// A never-ready pod (an image that cannot be pulled) shows `ImagePullBackOff` after the
    /// first failed pull; the controller then sees it as stuck.
    fn stuck(&self, t: f64) -> bool {
        self.ready_at.is_none()
            && t - self.created_at >= STUCK_AFTER_SECONDS
            && self.scrapes.is_empty()
    }
}

/// How long after creation a never-ready pod shows a stuck reason (the first image pull failing
/// and the kubelet's back-off starting).
const STUCK_AFTER_SECONDS: f64 = 60.0;

#[derive(Clone, Debug, Default)]
struct Hpa {
    /// (time, recommendation) within the stabilization window.
    recommendations: VecDeque<(f64, u32)>,
}

#[derive(Clone, Debug)]
struct VariantState {
    model: usize,
    spec: scenario::VariantSpec,
    never_ready: bool,
    deployment_replicas: u32,
    pods: Vec<Pod>,
    /// What the policy decided last (the published `wva_desired_replicas`).
    desired: u32,
    hpa: Hpa,
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
    pub replica_hours: f64,
    pub cost: f64,
    pub saturated_replica_minutes: f64,
    pub requests_over_capacity: f64,
    pub peak_replicas_above_need: i64,
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

impl PolicyRun {
    /// The share of offered requests served within the TTFT objective (1 when none offered).
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
    let policies: Vec<String> = if scenario.policies.is_empty() {
        POLICIES.iter().map(|p| p.to_string()).collect()
    } else {
        scenario.policies.clone()
    };
    let count = policies.len() as f64;
    let runs = policies
        .iter()
        .enumerate()
        .map(|(i, p)| run_policy(scenario, p, &mut |f| progress((i as f64 + f) / count)))
        .collect();
    Simulation {
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        duration_seconds: scenario.duration_seconds,
        runs,
    }
}

fn saturation_config(scenario: &Scenario) -> SaturationConfigSet {
    scenario
        .saturation_config
        .as_ref()
        .and_then(|v| v.as_object())
        .and_then(|m| SaturationConfigSet::parse(m.iter()).ok())
        .map(|p| p.value)
        .unwrap_or_default()
}

fn run_policy(scenario: &Scenario, policy: &str, progress: &mut dyn FnMut(f64)) -> PolicyRun {
    let config = saturation_config(scenario);
    let mut rng = Rng::new(scenario.seed);
    let mut next_pod = 0u64;
    let mut variants: Vec<VariantState> = Vec::new();
    for (m, model) in scenario.models.iter().enumerate() {
        for spec in &model.variants {
            let pods = (0..spec.initial_replicas)
                .map(|_| {
                    next_pod += 1;
                    Pod {
                        id: next_pod,
                        created_at: 0.0,
                        ready_at: Some(0.0),
                        scrapes: VecDeque::new(),
                    }
                })
                .collect();
            variants.push(VariantState {
                model: m,
                spec: spec.clone(),
                never_ready: scenario.faults.never_ready.contains(&spec.name),
                deployment_replicas: spec.initial_replicas,
                pods,
                desired: spec.initial_replicas,
                hpa: Hpa::default(),
            });
        }
    }
    let dt = scenario.tick_seconds as f64;
    let ticks = scenario.duration_seconds / scenario.tick_seconds;
    let mut out = PolicyRun {
        policy: policy.to_owned(),
        replica_hours: 0.0,
        cost: 0.0,
        saturated_replica_minutes: 0.0,
        requests_over_capacity: 0.0,
        peak_replicas_above_need: i64::MIN,
        time_to_capacity: Vec::new(),
        scaling_actions: 0,
        pending_scale_ups: Vec::new(),
        requests: requests::Outcome::default(),
        waiting_at_end: 0.0,
        timeline: Vec::new(),
    };
    let objective = scenario.slo.objective();
    let mut backlogs = vec![requests::Backlog::default(); scenario.models.len()];
    // Step-ups still waiting for capacity: (model, step time).
    let mut waiting: Vec<(usize, u64)> = scenario
        .models
        .iter()
        .enumerate()
        .flat_map(|(m, model)| model.load.step_ups().into_iter().map(move |t| (m, t)))
        .collect();
    let mut step_results: Vec<(usize, u64, Option<f64>)> = Vec::new();
    let mut decider = policy::by_name(policy, scenario.keda_queue_target)
        .expect("invariant: scenario::parse and the CLI accept only known policy names");
    let own_hpa = decider.own_hpa_windows();

    for tick in 0..ticks {
        let t = (tick * scenario.tick_seconds) as f64;
        if tick.is_multiple_of(600) {
            progress(tick as f64 / ticks as f64);
        }
        // Load, routing and pod metrics.
        let mut kv_of: Vec<Vec<(f64, f64)>> = vec![Vec::new(); variants.len()];
        for (m, model) in scenario.models.iter().enumerate() {
            let cfg = config.for_model(&model.namespace, &model.model_id).1;
            let load = model.load.rate(t);
            let ready_capacity: f64 = variants
                .iter()
                .filter(|v| v.model == m)
                .map(|v| {
                    v.pods.iter().filter(|p| p.ready(t)).count() as f64
                        * v.spec.capacity_per_replica
                })
                .sum();
            out.requests_over_capacity += (load - ready_capacity).max(0.0) * dt;
            backlogs[m].tick(t, load * dt, ready_capacity * dt, &objective);
            let total_replicas: u32 = variants
                .iter()
                .filter(|v| v.model == m)
                .map(|v| v.pods.len() as u32)
                .sum();
            let mean_capacity = model
                .variants
                .iter()
                .map(|v| v.capacity_per_replica)
                .sum::<f64>()
                / model.variants.len() as f64;
            let needed = (load / mean_capacity).ceil() as i64;
            out.peak_replicas_above_need = out
                .peak_replicas_above_need
                .max(total_replicas as i64 - needed);
            waiting.retain(|(wm, at)| {
                if *wm == m && t >= *at as f64 && ready_capacity >= load {
                    step_results.push((*wm, *at, Some(t - *at as f64)));
                    false
                } else {
                    true
                }
            });
            let utilisation = if ready_capacity > 0.0 {
                load / ready_capacity
            } else {
                0.0
            };
            for (i, v) in variants.iter().enumerate().filter(|(_, v)| v.model == m) {
                for p in &v.pods {
                    let (kv, queue) = if p.ready(t) {
                        (
                            (cfg.kv_cache_threshold.max(0.01) * utilisation).min(1.0),
                            cfg.queue_length_threshold.max(1.0)
                                * ((utilisation - QUEUE_ONSET).max(0.0) / (1.0 - QUEUE_ONSET)),
                        )
                    } else {
                        (0.0, 0.0)
                    };
                    kv_of[i].push((kv, queue));
                }
            }
        }
        for (i, v) in variants.iter_mut().enumerate() {
            let cfg = config
                .for_model(
                    &scenario.models[v.model].namespace,
                    &scenario.models[v.model].model_id,
                )
                .1;
            let per_hour = v.pods.len() as f64 * dt / 3600.0;
            out.replica_hours += per_hour;
            out.cost += per_hour * v.spec.cost_per_hour;
            let saturated = kv_of[i]
                .iter()
                .filter(|(kv, q)| *kv >= cfg.kv_cache_threshold || *q >= cfg.queue_length_threshold)
                .count();
            out.saturated_replica_minutes += saturated as f64 * dt / 60.0;
            // Scrapes.
            if (t as u64).is_multiple_of(scenario.scrape_interval_seconds) {
                for (p, (kv, queue)) in v.pods.iter_mut().zip(&kv_of[i]) {
                    if p.ready(t) || scenario.loading_pods_expose_metrics {
                        p.scrapes.push_back((t, *kv, *queue));
                    }
                    while p
                        .scrapes
                        .front()
                        .is_some_and(|(at, _, _)| *at <= t - WINDOW_SECONDS)
                    {
                        p.scrapes.pop_front();
                    }
                }
            }
        }
        let outage = scenario
            .faults
            .prometheus_outage
            .is_some_and(|[s, e]| t >= s as f64 && t < e as f64);
        // The autoscaler's cycle.
        let decisions = if (t as u64).is_multiple_of(scenario.cycle_seconds) && !outage {
            decider.on_cycle(&snapshot_of(scenario, &config, &variants, t))
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
                if scenario.actuation.mode == ActuationMode::Direct {
                    // Direct actuation has no HPA to bound it: the bounds are the policy's own,
                    // so its decision (and what it sees as its previous one) is the bounded one.
                    v.desired = d.target.clamp(v.spec.min_replicas, v.spec.max_replicas);
                    let bounded = v.desired;
                    set_replicas(v, bounded, &mut out.scaling_actions);
                }
            }
        }
        // HPA (wva under `hpa` actuation; KEDA always goes through an HPA).
        if (own_hpa.is_some() || scenario.actuation.mode == ActuationMode::Hpa)
            && (t as u64).is_multiple_of(scenario.actuation.hpa_sync_seconds)
            && !(own_hpa.is_some() && outage)
        {
            let (up, down) = own_hpa.unwrap_or((
                scenario.actuation.scale_up_stabilization_seconds as f64,
                scenario.actuation.scale_down_stabilization_seconds as f64,
            ));
            for v in variants.iter_mut() {
                let queues: Vec<f64> = v
                    .pods
                    .iter()
                    .filter_map(|p| p.scrapes.back())
                    .map(|(_, _, q)| *q)
                    .collect();
                let own = decider.hpa_desired(&queues);
                let metric_desired = own.unwrap_or(v.desired);
                let current = v.deployment_replicas;
                let ratio = if current == 0 {
                    f64::INFINITY
                } else {
                    metric_desired as f64 / current as f64
                };
                let recommendation = if (ratio - 1.0).abs() <= scenario.actuation.hpa_tolerance {
                    current
                } else {
                    metric_desired
                };
                let recommendation = recommendation.clamp(v.spec.min_replicas, v.spec.max_replicas);
                v.hpa.recommendations.push_back((t, recommendation));
                let horizon = up.max(down);
                while v
                    .hpa
                    .recommendations
                    .front()
                    .is_some_and(|(at, _)| *at < t - horizon)
                {
                    v.hpa.recommendations.pop_front();
                }
                let next = if recommendation > current {
                    let floor = v
                        .hpa
                        .recommendations
                        .iter()
                        .filter(|(at, _)| *at >= t - up)
                        .map(|(_, r)| *r)
                        .min()
                        .unwrap_or(recommendation);
                    floor.max(current)
                } else if recommendation < current {
                    let ceiling = v
                        .hpa
                        .recommendations
                        .iter()
                        .filter(|(at, _)| *at >= t - down)
                        .map(|(_, r)| *r)
                        .max()
                        .unwrap_or(recommendation);
                    ceiling.min(current)
                } else {
                    current
                };
                if own.is_some() {
                    v.desired = metric_desired.clamp(v.spec.min_replicas, v.spec.max_replicas);
                }
                set_replicas(v, next, &mut out.scaling_actions);
            }
        }
        // The ReplicaSet controller.
        for v in &mut variants {
            while (v.pods.len() as u32) < v.deployment_replicas {
                next_pod += 1;
                let startup =
                    rng.between(v.spec.startup_seconds[0], v.spec.startup_seconds[1]) as f64;
                let ready_at = (!v.never_ready).then_some(t + startup);
                v.pods.push(Pod {
                    id: next_pod,
                    created_at: t,
                    ready_at,
                    scrapes: VecDeque::new(),
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
            out.timeline.push(Row {
                time: t,
                policy: policy.to_owned(),
                variant: v.spec.name.clone(),
                load: scenario.models[v.model].load.rate(t),
                replicas: v.pods.len() as u32,
                ready: v.pods.iter().filter(|p| p.ready(t)).count() as u32,
                desired: v.desired,
                max_kv: v
                    .pods
                    .iter()
                    .filter_map(|p| p.scrapes.back())
                    .map(|s| s.1)
                    .fold(0.0, f64::max),
                max_queue: v
                    .pods
                    .iter()
                    .filter_map(|p| p.scrapes.back())
                    .map(|s| s.2)
                    .fold(0.0, f64::max),
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
    if out.peak_replicas_above_need == i64::MIN {
        out.peak_replicas_above_need = 0;
    }
    out
}

fn set_replicas(v: &mut VariantState, replicas: u32, actions: &mut u32) {
    if v.deployment_replicas != replicas {
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
        variants: variants
            .iter()
            .map(|v| {
                let model = &scenario.models[v.model];
                Variant {
                    name: v.spec.name.clone(),
                    namespace: model.namespace.clone(),
                    model_id: model.model_id.clone(),
                    target_name: v.spec.name.clone(),
                    accelerator: v.spec.accelerator.clone(),
                    cost: v.spec.cost_per_hour,
                    spec_replicas: v.deployment_replicas,
                    replicas: v.pods.len() as u32,
                    ready_replicas: v.pods.iter().filter(|p| p.ready(t)).count() as u32,
                    previous_desired: v.desired,
                    stuck_replicas: v.pods.iter().filter(|p| p.stuck(t)).count() as u32,
                    gpus_per_replica: v.spec.gpus_per_replica,
                    pods: v
                        .pods
                        .iter()
                        .filter(|p| !p.scrapes.is_empty())
                        .map(|p| PodMetrics {
                            name: format!("{}-{:05}", v.spec.name, p.id),
                            kv_cache_usage: p.scrapes.iter().map(|s| s.1).fold(0.0, f64::max),
                            queue_length: p.scrapes.iter().map(|s| s.2).fold(0.0, f64::max).trunc()
                                as u64,
                        })
                        .collect(),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests;
