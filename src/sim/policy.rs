//! The policies the simulator compares, each configured as its users deploy it, behind one
//! interface: how its wish reaches a Deployment ([`Drive`]), and what it sees — the
//! controller's snapshot each cycle (wva), Prometheus' last scrapes at each HPA sync (KEDA), or
//! the live in-flight requests every tick (Knative's autoscaler, Ray Serve, the oracle). A new
//! policy implements [`SimPolicy`] and gets a name in [`by_name`]. Pure: no IO, no clock.

use std::collections::VecDeque;

use super::hpa::{Behavior, Metric, RatePolicy, Rules};
use super::scenario::Scenario;
use crate::core::{self, Snapshot};

/// One variant's decision in a controller cycle.
#[derive(Clone, Debug, PartialEq)]
pub struct CycleDecision {
    pub variant: String,
    pub current: u32,
    pub target: u32,
    pub pending: u32,
}

/// How a policy's wish reaches a Deployment.
#[derive(Clone, Debug, PartialEq)]
pub enum Drive {
    /// It writes the Deployment's replicas itself, within the variant's bounds.
    Direct,
    /// Through a HorizontalPodAutoscaler with this behaviour (a KEDA ScaledObject makes one).
    Hpa(Behavior),
}

/// One pod's last scrape, as a Prometheus query returns it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    /// `vllm:kv_cache_usage_perc` (0..1).
    pub kv: f64,
    /// `vllm:num_requests_waiting`.
    pub waiting: f64,
    /// `vllm:num_requests_running`.
    pub running: f64,
    /// Requests completed per second (the rate of `vllm:request_success_total`).
    pub served: f64,
}

/// A variant at one moment, as the different autoscalers see it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// Index of the variant's model in the scenario.
    pub model: usize,
    pub spec_replicas: u32,
    pub status_replicas: u32,
    pub ready: u32,
    /// Prometheus: the last scrape of each pod that reports metrics.
    pub scraped: Vec<Sample>,
    /// Prometheus: the requests queued for the model at its gateway (the endpoint picker's
    /// flow-control queue), as last scraped.
    pub model_queue: f64,
    /// Live, as a queue-proxy or a router counts them: requests on this variant now, running
    /// or queued.
    pub in_flight: f64,
    /// Requests in flight on one replica serving `capacityRps` (Little's law).
    pub concurrency_at_capacity: f64,
}

/// A scaling policy under simulation.
pub trait SimPolicy {
    fn name(&self) -> &str;

    /// How its wish reaches the Deployments.
    fn drive(&self) -> Drive;

    /// `maxReplicas` where the scenario leaves a variant's unset: the recipe's own.
    fn default_max_replicas(&self) -> u32 {
        100
    }

    /// Every controller cycle (outside Prometheus outages): the decisions from what the
    /// controller sees, or `None` when the policy does not decide on cycles.
    fn on_cycle(&mut self, _snapshot: &Snapshot) -> Option<Vec<CycleDecision>> {
        None
    }

    /// HPA-driven policies with their own metrics (KEDA): one variant's metrics at an HPA
    /// sync. `None`: the HPA reads the published `wva_desired_replicas` (`AverageValue: 1`).
    fn hpa_metrics(&self, _variant: &Observed) -> Option<Vec<Metric>> {
        None
    }

    /// Whether it runs on its own clock: then [`SimPolicy::on_tick`] is called every tick.
    fn ticks(&self) -> bool {
        false
    }

    /// Controllers on their own clock, called every tick with every variant: the replicas
    /// each variant should have, or `None` to change nothing.
    fn on_tick(&mut self, _t: f64, _variants: &[Observed]) -> Option<Vec<u32>> {
        None
    }
}

/// A policy's main knob: what `tuning` sets and `--frontier` sweeps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Knob {
    pub what: &'static str,
    /// The value as deployed (the recipe's).
    pub default: f64,
    pub sweep: [f64; 4],
    /// The largest value that makes sense.
    pub most: f64,
}

/// The main knob of the policy called `name` (`None`: it has none, like the oracle).
pub fn knob(name: &str) -> Option<Knob> {
    let wva = Knob {
        what: "kvCacheThreshold of the saturation config's default entry",
        default: 0.8,
        sweep: [0.5, 0.6, 0.7, 0.8],
        most: 1.0,
    };
    let queue = |what, default| Knob {
        what,
        default,
        sweep: [1.0, 2.0, 5.0, 10.0],
        most: f64::MAX,
    };
    Some(match name {
        "wva-next" => Knob {
            what: "targetUtilisation of the SLO capacity (scale-up at +0.05, scale-down under -0.1)",
            default: 0.8,
            sweep: [0.6, 0.7, 0.8, 0.9],
            most: 0.95,
        },
        "wva-v0.5.0" | "wva-v0.5.0-direct" | "no-pending-awareness" => wva,
        "keda-prodstack" => queue("waiting requests per replica", 5.0),
        "keda-llmd-queue" => queue("gateway-queued requests per replica", 1.0),
        "keda-kv" => Knob {
            what: "average KV-cache use",
            default: 0.7,
            sweep: [0.5, 0.6, 0.7, 0.8],
            most: 1.0,
        },
        "knative-kpa" => Knob {
            what: "per-replica concurrency target, as a multiple of the concurrency at capacityRps",
            default: 1.0,
            sweep: [0.5, 1.0, 1.5, 2.0],
            most: f64::MAX,
        },
        "ray-serve-llm" => Knob {
            what: "target ongoing requests per replica",
            default: 16.0,
            sweep: [4.0, 8.0, 16.0, 32.0],
            most: f64::MAX,
        },
        _ => return None,
    })
}

/// The knob's value for `name` in this scenario (its `tuning`, else the recipe's).
pub fn tuned(name: &str, scenario: &Scenario) -> Option<f64> {
    let knob = knob(name)?;
    Some(scenario.tuning.get(name).copied().unwrap_or(knob.default))
}

/// The policy called `name`, configured as deployed, with the scenario's settings.
pub fn by_name(name: &str, scenario: &Scenario) -> Option<Box<dyn SimPolicy>> {
    let a = &scenario.actuation;
    let value = |default: f64| tuned(name, scenario).unwrap_or(default);
    let chart = Behavior::both_ways(
        a.scale_up_stabilization_seconds,
        a.scale_down_stabilization_seconds,
        RatePolicy::Pods {
            value: 10,
            period_seconds: 150,
        },
    );
    let policy: Box<dyn SimPolicy> = match name {
        "wva-next" => Box::new(Wva::new(core::Policy::WvaNext, name, Drive::Direct)),
        "wva-v0.5.0" => Box::new(Wva::new(core::Policy::WvaV050, name, Drive::Hpa(chart))),
        "no-pending-awareness" => Box::new(Wva::new(
            core::Policy::NoPendingAwareness,
            name,
            Drive::Hpa(chart),
        )),
        "wva-v0.5.0-direct" => Box::new(Wva::new(core::Policy::WvaV050, name, Drive::Direct)),
        "keda-prodstack" => Box::new(Keda {
            name: "keda-prodstack",
            metrics: KedaMetrics::Waiting { target: value(5.0) },
            behavior: Behavior::kubernetes_default(),
            max: 5,
        }),
        "keda-llmd-queue" => Box::new(Keda {
            name: "keda-llmd-queue",
            metrics: KedaMetrics::GatewayQueueAndRunning {
                queue: value(1.0),
                running: 16.0,
            },
            behavior: Behavior::both_ways(
                300,
                300,
                RatePolicy::Percent {
                    value: 100,
                    period_seconds: 15,
                },
            ),
            max: 8,
        }),
        "keda-kv" => Box::new(Keda {
            name: "keda-kv",
            metrics: KedaMetrics::KvAndWaiting {
                kv: value(0.7),
                waiting: 2.0,
            },
            behavior: Behavior {
                up: Rules::max_of(
                    0,
                    RatePolicy::Pods {
                        value: 1,
                        period_seconds: 180,
                    },
                ),
                down: Rules::max_of(
                    300,
                    RatePolicy::Pods {
                        value: 1,
                        period_seconds: 300,
                    },
                ),
            },
            max: 10,
        }),
        "knative-kpa" => Box::new(KnativeKpa::new(value(1.0))),
        "ray-serve-llm" => Box::new(RayServe::new(value(16.0))),
        "oracle" => Box::new(Oracle::new(scenario)),
        _ => return None,
    };
    Some(policy)
}

/// wva's decision core (`wva-v0.5.0`, `no-pending-awareness`): through upstream's chart HPA
/// (`maxReplicas` 10), or writing `/scale` itself (`-direct`).
pub struct Wva {
    policy: core::Policy,
    name: &'static str,
    drive: Drive,
    /// `wva-next`'s state, fed back each cycle as the controller does.
    state: Option<core::next::State>,
}

impl Wva {
    fn new(policy: core::Policy, name: &str, drive: Drive) -> Self {
        let name = super::POLICIES
            .iter()
            .find(|p| **p == name)
            .copied()
            .unwrap_or("wva");
        Self {
            policy,
            name,
            drive,
            state: None,
        }
    }
}

impl SimPolicy for Wva {
    fn name(&self) -> &str {
        self.name
    }

    fn drive(&self) -> Drive {
        self.drive.clone()
    }

    fn default_max_replicas(&self) -> u32 {
        match self.drive {
            Drive::Hpa(_) => 10,
            Drive::Direct => 100,
        }
    }

    fn on_cycle(&mut self, snapshot: &Snapshot) -> Option<Vec<CycleDecision>> {
        let report = if self.policy == core::Policy::WvaNext {
            let mut snapshot = snapshot.clone();
            snapshot.wva_next_state = self.state.take();
            let report = core::decide(&snapshot, self.policy);
            self.state = report.wva_next_state.clone();
            report
        } else {
            core::decide(snapshot, self.policy)
        };
        Some(
            report
                .decisions
                .into_iter()
                .map(|d| CycleDecision {
                    variant: d.name.to_string(),
                    current: d.current_replicas,
                    target: d.target_replicas,
                    pending: d.pending_replicas,
                })
                .collect(),
        )
    }
}

/// What a KEDA ScaledObject's Prometheus triggers query, per Deployment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KedaMetrics {
    /// `sum(vllm:num_requests_waiting)`, `AverageValue` target (vLLM production-stack).
    Waiting { target: f64 },
    /// The gateway's queue (`AverageValue` `queue`) and `sum(vllm:num_requests_running)`
    /// (`AverageValue` `running`): llm-d's KEDA + endpoint-picker recipe.
    GatewayQueueAndRunning { queue: f64, running: f64 },
    /// `avg(vllm:kv_cache_usage_perc)` (`Value` `kv`) and waiting (`AverageValue` `waiting`).
    KvAndWaiting { kv: f64, waiting: f64 },
}

/// A KEDA ScaledObject: Prometheus triggers into an HPA with the recipe's behaviour and
/// `maxReplicaCount`.
pub struct Keda {
    pub name: &'static str,
    pub metrics: KedaMetrics,
    pub behavior: Behavior,
    pub max: u32,
}

impl SimPolicy for Keda {
    fn name(&self) -> &str {
        self.name
    }

    fn drive(&self) -> Drive {
        Drive::Hpa(self.behavior.clone())
    }

    fn default_max_replicas(&self) -> u32 {
        self.max
    }

    fn hpa_metrics(&self, v: &Observed) -> Option<Vec<Metric>> {
        let sum = |f: fn(&Sample) -> f64| v.scraped.iter().map(f).sum::<f64>();
        let waiting = sum(|s| s.waiting.trunc());
        Some(match self.metrics {
            KedaMetrics::Waiting { target } => vec![Metric::AverageValue {
                total: waiting,
                target,
            }],
            KedaMetrics::GatewayQueueAndRunning { queue, running } => vec![
                Metric::AverageValue {
                    total: v.model_queue.trunc(),
                    target: queue,
                },
                Metric::AverageValue {
                    total: sum(|s| s.running.trunc()),
                    target: running,
                },
            ],
            KedaMetrics::KvAndWaiting { kv, waiting: per } => {
                let avg = if v.scraped.is_empty() {
                    0.0
                } else {
                    sum(|s| s.kv) / v.scraped.len() as f64
                };
                vec![
                    Metric::Value {
                        value: avg,
                        target: kv,
                    },
                    Metric::AverageValue {
                        total: waiting,
                        target: per,
                    },
                ]
            }
        })
    }
}

/// Each variant's in-flight requests over the last `keep` seconds, as a proxy or a router
/// samples them every tick.
struct InFlight {
    keep: f64,
    series: Vec<VecDeque<(f64, f64)>>,
}

impl InFlight {
    fn new(keep: f64) -> Self {
        Self {
            keep,
            series: Vec::new(),
        }
    }

    /// Records this tick; true when the set of variants is new (the caller resets its state).
    fn record(&mut self, t: f64, variants: &[Observed]) -> bool {
        let fresh = self.series.len() != variants.len();
        if fresh {
            self.series = vec![VecDeque::new(); variants.len()];
        }
        for (h, v) in self.series.iter_mut().zip(variants) {
            h.push_back((t, v.in_flight));
            while h.front().is_some_and(|(at, _)| *at <= t - self.keep) {
                h.pop_front();
            }
        }
        fresh
    }

    /// Variant `i`'s mean over the samples of the last `window` seconds.
    fn mean(&self, i: usize, t: f64, window: f64) -> f64 {
        let (sum, count) = self.series[i]
            .iter()
            .filter(|(at, _)| *at > t - window)
            .fold((0.0, 0usize), |(s, n), (_, c)| (s + c, n + 1));
        sum / count.max(1) as f64
    }
}

/// Knative's autoscaler (KPA) on concurrency: target 70 % of `target` × a replica's
/// concurrency at capacity, a 60 s stable and a 6 s panic window, panic from 200 %, at most
/// halving per decision, every 2 s (`pkg/autoscaler/scaling/autoscaler.go`).
pub struct KnativeKpa {
    /// Per-replica target as a multiple of the concurrency at capacity.
    pub target: f64,
    in_flight: InFlight,
    /// When each variant was last over the panic threshold, while panicking.
    panic_since: Vec<Option<f64>>,
    panic_peak: Vec<u32>,
}

impl KnativeKpa {
    const UTILIZATION: f64 = 0.7;
    const STABLE: f64 = 60.0;
    const PANIC: f64 = 6.0;
    const PANIC_THRESHOLD: f64 = 2.0;
    const MAX_SCALE_DOWN_RATE: f64 = 2.0;
    const TICK: f64 = 2.0;

    pub fn new(target: f64) -> Self {
        Self {
            target,
            in_flight: InFlight::new(Self::STABLE),
            panic_since: Vec::new(),
            panic_peak: Vec::new(),
        }
    }
}

impl SimPolicy for KnativeKpa {
    fn name(&self) -> &str {
        "knative-kpa"
    }

    fn ticks(&self) -> bool {
        true
    }

    fn drive(&self) -> Drive {
        Drive::Direct
    }

    fn on_tick(&mut self, t: f64, variants: &[Observed]) -> Option<Vec<u32>> {
        if self.in_flight.record(t, variants) {
            self.panic_since = vec![None; variants.len()];
            self.panic_peak = vec![0; variants.len()];
        }
        if (t / Self::TICK).fract() != 0.0 {
            return None;
        }
        let mut out = Vec::with_capacity(variants.len());
        for (i, v) in variants.iter().enumerate() {
            let average = |window: f64| self.in_flight.mean(i, t, window);
            let target =
                (Self::UTILIZATION * self.target * v.concurrency_at_capacity).max(f64::EPSILON);
            let ready = v.ready.max(1) as f64;
            let (stable, panic) = (
                average(Self::STABLE) / target,
                average(Self::PANIC) / target,
            );
            let max_up = (1000.0 * ready).ceil();
            let max_down = (ready / Self::MAX_SCALE_DOWN_RATE).floor();
            let bound = |x: f64| x.ceil().clamp(max_down, max_up) as u32;
            let over = panic / ready >= Self::PANIC_THRESHOLD;
            // Knative keeps the time it was last over the threshold; panic ends a stable
            // window after that.
            match self.panic_since[i] {
                _ if over => self.panic_since[i] = Some(t),
                Some(since) if t - since >= Self::STABLE => {
                    self.panic_since[i] = None;
                    self.panic_peak[i] = 0;
                }
                _ => {}
            }
            out.push(if self.panic_since[i].is_some() {
                // In panic it never scales down.
                self.panic_peak[i] = self.panic_peak[i].max(bound(panic)).max(v.spec_replicas);
                self.panic_peak[i]
            } else {
                bound(stable)
            });
        }
        Some(out)
    }
}

/// Ray Serve LLM's autoscaler: `ceil(ongoing requests / target_ongoing_requests)` over a 30 s
/// look-back, applied after the wish has held for 30 s up or 600 s down.
pub struct RayServe {
    pub target_ongoing: f64,
    in_flight: InFlight,
    /// Since when the wish has been above (positive) or below (negative) the current count.
    wish_since: Vec<Option<(bool, f64)>>,
}

impl RayServe {
    const LOOK_BACK: f64 = 30.0;
    const UP_DELAY: f64 = 30.0;
    const DOWN_DELAY: f64 = 600.0;

    pub fn new(target_ongoing: f64) -> Self {
        Self {
            target_ongoing,
            in_flight: InFlight::new(Self::LOOK_BACK),
            wish_since: Vec::new(),
        }
    }
}

impl SimPolicy for RayServe {
    fn name(&self) -> &str {
        "ray-serve-llm"
    }

    fn ticks(&self) -> bool {
        true
    }

    fn drive(&self) -> Drive {
        Drive::Direct
    }

    fn on_tick(&mut self, t: f64, variants: &[Observed]) -> Option<Vec<u32>> {
        if self.in_flight.record(t, variants) {
            self.wish_since = vec![None; variants.len()];
        }
        let mut out = Vec::with_capacity(variants.len());
        for (i, v) in variants.iter().enumerate() {
            let ongoing = self.in_flight.mean(i, t, Self::LOOK_BACK);
            let wish = (ongoing / self.target_ongoing).ceil() as u32;
            let current = v.spec_replicas;
            let direction = (wish != current).then_some(wish > current);
            let since = match (direction, self.wish_since[i]) {
                (None, _) => None,
                (Some(up), Some((was_up, at))) if up == was_up => Some((up, at)),
                (Some(up), _) => Some((up, t)),
            };
            self.wish_since[i] = since;
            out.push(match since {
                Some((up, at)) if t - at >= if up { Self::UP_DELAY } else { Self::DOWN_DELAY } => {
                    self.wish_since[i] = None;
                    wish
                }
                _ => current,
            });
        }
        Some(out)
    }
}

/// Clairvoyant but physical: knows the load curve and which variants cannot start pods, and
/// holds, every tick, the cheapest-per-capacity mix of replicas that covers the highest load of
/// the next start-up time (the slowest start-up of the model's variants: the uniform range's
/// top, or a log-normal's 99.9th percentile) at `capacityRps` — so each pod is ready before
/// it is needed, and is paid for while it loads. With Poisson arrivals (a trace, or
/// `noise: poisson`) it holds two standard deviations of a second's count above the rate;
/// Gamma-noise bursts it foresees like the curve. A lower bound on cost, and in practice an upper
/// bound on SLO attainment, for the others. It keeps within the cluster's GPU quota.
pub struct Oracle {
    models: Vec<OracleModel>,
    /// The cluster's GPU quota per accelerator, and each variant's (accelerator, GPUs).
    quota: std::collections::BTreeMap<String, u32>,
    gpus: Vec<(String, u32)>,
}

struct OracleModel {
    /// Per second from 0: the capacity to hold (requests per second within the SLO).
    need: Vec<f64>,
    /// (variant index in the scenario's flat order, capacityRps, min, max), cheapest per
    /// capacity first; a variant whose pods never start counts with capacity 0.
    variants: Vec<(usize, f64, u32, u32)>,
}

impl Oracle {
    pub fn new(scenario: &Scenario) -> Self {
        let mut index = 0;
        let models = scenario
            .models
            .iter()
            .enumerate()
            .map(|(n, m)| {
                let mut variants = Vec::new();
                let mut lead = 0.0_f64;
                for v in &m.variants {
                    let broken = scenario.faults.never_ready.contains(&v.name)
                        || scenario.faults.crash_loop.contains(&v.name);
                    // A broken variant's pods add nothing: it keeps its minimum, counted as 0.
                    let (capacity, max) = if broken {
                        (0.0, v.min_replicas)
                    } else {
                        (v.capacity_rps, v.max_replicas.unwrap_or(100))
                    };
                    variants.push((index, capacity, v.min_replicas, max, v.cost_per_hour));
                    if !broken {
                        lead = lead.max(v.startup().bound().ceil());
                    }
                    index += 1;
                }
                variants.sort_by(|a, b| (a.4 / a.1).total_cmp(&(b.4 / b.1)).then(a.0.cmp(&b.0)));
                OracleModel {
                    need: need(scenario, n, lead as usize),
                    variants: variants
                        .into_iter()
                        .map(|(i, c, lo, hi, _)| (i, c, lo, hi))
                        .collect(),
                }
            })
            .collect();
        let gpus = scenario
            .models
            .iter()
            .flat_map(|m| &m.variants)
            .map(|v| (v.accelerator.clone(), v.gpus_per_replica))
            .collect();
        Self {
            models,
            quota: scenario.gpu_quota.clone(),
            gpus,
        }
    }
}

/// Model `n`'s capacity to hold each second: the highest demand of the next `lead` seconds
/// (the curve with its Gamma factors, a trace smoothed over a minute), with two standard
/// deviations of a second's Poisson count on top where arrivals are Poisson.
fn need(scenario: &Scenario, n: usize, lead: usize) -> Vec<f64> {
    use super::scenario::{Load, Noise};
    let model = &scenario.models[n];
    let bursts = match model.noise {
        Some(Noise::Gamma { period_seconds, .. }) => {
            super::burst_factors(scenario, n).map(|f| (period_seconds as usize, f))
        }
        _ => None,
    };
    let poisson = matches!(model.load, Load::PerSecond(_)) || model.noise == Some(Noise::Poisson);
    let seconds = scenario.duration_seconds as usize + 1;
    let demand: Vec<f64> = (0..seconds + lead)
        .map(|at| {
            let factor = bursts
                .as_ref()
                .and_then(|(period, f)| f.get(at / period).copied())
                .unwrap_or(1.0);
            model.load.planning_rate(at as f64) * factor
        })
        .collect();
    // The maximum over each window [t, t + lead], with a monotonic queue.
    let mut window: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
    let mut out = Vec::with_capacity(seconds);
    for at in 0..seconds + lead {
        while window.back().is_some_and(|&j| demand[j] <= demand[at]) {
            window.pop_back();
        }
        window.push_back(at);
        if at >= lead {
            let start = at - lead;
            while window.front().is_some_and(|&j| j < start) {
                window.pop_front();
            }
            let most = demand[window[0]];
            out.push(if poisson {
                most + 2.0 * most.sqrt()
            } else {
                most
            });
        }
    }
    out
}

impl SimPolicy for Oracle {
    fn name(&self) -> &str {
        "oracle"
    }

    fn ticks(&self) -> bool {
        true
    }

    fn drive(&self) -> Drive {
        Drive::Direct
    }

    fn on_tick(&mut self, t: f64, variants: &[Observed]) -> Option<Vec<u32>> {
        let mut out = vec![0; variants.len()];
        // GPUs left within the quota, after every variant's minimum.
        let mut left = self.quota.clone();
        for m in &self.models {
            for &(i, _, min, _) in &m.variants {
                out[i] = min;
                let (accelerator, gpus) = &self.gpus[i];
                if let Some(l) = left.get_mut(accelerator) {
                    *l = l.saturating_sub(min * gpus);
                }
            }
        }
        for m in &self.models {
            let mut need = m.need.get(t as usize).copied().unwrap_or(0.0);
            for &(_, capacity, min, _) in &m.variants {
                need -= min as f64 * capacity;
            }
            for &(i, capacity, min, max) in &m.variants {
                if need <= 1e-9 {
                    break;
                }
                let (accelerator, gpus) = &self.gpus[i];
                let room = left
                    .get(accelerator)
                    .map_or(u32::MAX, |l| l / (*gpus).max(1));
                let more = ((need / capacity - 1e-9).ceil() as u32)
                    .min(max - min)
                    .min(room);
                if let Some(l) = left.get_mut(accelerator) {
                    *l -= more * gpus;
                }
                out[i] += more;
                need -= more as f64 * capacity;
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(in_flight: f64, replicas: u32) -> Vec<Observed> {
        vec![Observed {
            spec_replicas: replicas,
            status_replicas: replicas,
            ready: replicas,
            in_flight,
            concurrency_at_capacity: 10.0,
            ..Observed::default()
        }]
    }

    /// The replica counts a tick-driven policy sets over `seconds`, the Deployment following,
    /// as (time, count) at each change.
    fn changes(
        p: &mut dyn SimPolicy,
        start: u32,
        seconds: u32,
        in_flight: impl Fn(f64) -> f64,
    ) -> Vec<(u32, u32)> {
        let mut current = start;
        let mut seen = Vec::new();
        for s in 0..seconds {
            let t = s as f64;
            if let Some(wish) = p.on_tick(t, &one(in_flight(t), current)) {
                if wish[0] != current {
                    seen.push((s, wish[0]));
                }
                current = wish[0];
            }
        }
        seen
    }

    #[test]
    fn ray_serve_waits_30_seconds_up_and_600_down() {
        // 64 ongoing requests, 16 per replica: 4 replicas, once the wish has held for 30 s.
        let mut ray = RayServe::new(16.0);
        assert_eq!(changes(&mut ray, 1, 100, |_| 64.0), [(30, 4)]);
        // Then the load goes: 600 s later (the look-back empties first), down to 1.
        let mut ray = RayServe::new(16.0);
        let seen = changes(&mut ray, 4, 1000, |t| if t < 100.0 { 64.0 } else { 0.0 });
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!((700..=730).contains(&seen[0].0), "{seen:?}");
    }

    #[test]
    fn knative_panics_on_a_burst_and_holds_for_a_stable_window() {
        // Target 0.7 × 10 = 7 per replica. 2 replicas at 10 in flight; then 80 at t = 100.
        let mut kpa = KnativeKpa::new(1.0);
        let seen = changes(&mut kpa, 2, 400, |t| {
            if t < 100.0 {
                10.0
            } else if t < 160.0 {
                80.0
            } else {
                10.0
            }
        });
        // Panic at once (the 6 s window over 200 % of 2 replicas), no scale-down in panic (a
        // stable window after the last tick over the threshold), then at most halving per
        // 2 s step, back to ceil(10 / 7) = 2.
        let (at, up) = seen[0];
        assert!((100..=102).contains(&at) && up >= 4, "{seen:?}");
        let top = seen.iter().map(|(_, n)| *n).max().unwrap();
        assert_eq!(top, 12, "ceil(80 / 7): {seen:?}");
        let peak = seen.iter().position(|(_, n)| *n == top).unwrap();
        let first_down = seen[peak + 1].0;
        assert!(first_down >= 160, "{seen:?}");
        for w in seen.windows(2).filter(|w| w[1].1 < w[0].1) {
            assert!(w[1].1 >= w[0].1 / 2, "{seen:?}");
        }
        assert_eq!(seen.last().unwrap().1, 2, "{seen:?}");
    }

    #[test]
    fn the_oracle_fills_the_cheapest_capacity_first_ahead_of_the_load() {
        let s = super::super::scenario::parse(
            r#"
durationSeconds: 600
models:
- modelId: m
  variants:
  - {name: pricey, costPerHour: 40, initialReplicas: 1, capacityRps: 8, startupSeconds: [60, 100]}
  - {name: cheap, costPerHour: 15, initialReplicas: 1, capacityRps: 5, startupSeconds: [60, 100]}
  load: {kind: steps, steps: [[0, 10], [300, 30]]}
"#,
        )
        .unwrap();
        let mut oracle = Oracle::new(&s);
        let all = || vec![Observed::default(); 2];
        // 10 rps: the minimum (8 + 5) covers it.
        assert_eq!(oracle.on_tick(0.0, &all()), Some(vec![1, 1]));
        // 100 s before the step (the slowest start-up): 30 − 13 = 17 more on the cheap one
        // (3 per 8 $/h... 15/5 = 3 $ per rps beats 40/8 = 5): 4 more replicas.
        assert_eq!(oracle.on_tick(199.0, &all()), Some(vec![1, 1]));
        assert_eq!(oracle.on_tick(200.0, &all()), Some(vec![1, 5]));
    }
}
