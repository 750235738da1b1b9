//! Simulation scenarios: a YAML file (or the built-in default) describing models, variants,
//! load traces, faults, actuation and the saturation config. Parsing names every bad field by
//! its path. Pure: the caller reads the file.

use serde::Deserialize;

use crate::config::{Problem, SaturationConfigSet};

/// A whole scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Scenario {
    /// Shown in the summary.
    #[serde(default = "default_name")]
    pub name: String,
    /// Simulated time, in seconds.
    pub duration_seconds: u64,
    /// Step of the virtual clock, in seconds.
    #[serde(default = "one")]
    pub tick_seconds: u64,
    /// Seed of the random start-up times.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// The autoscaler's cycle (upstream: 30 s).
    #[serde(default = "thirty")]
    pub cycle_seconds: u64,
    /// Prometheus scrape interval; the controller sees the max over the last minute of scrapes.
    #[serde(default = "fifteen")]
    pub scrape_interval_seconds: u64,
    /// Whether a pod that is still loading its model already exposes metrics (vLLM serves
    /// `/metrics` only once its engine is up: by default it does not).
    #[serde(default)]
    pub loading_pods_expose_metrics: bool,
    /// Policies to compare (default: all).
    #[serde(default)]
    pub policies: Vec<String>,
    #[serde(default)]
    pub actuation: Actuation,
    /// Each policy's main knob where it differs from the recipe's (docs/simulation.md lists
    /// them): `{keda-prodstack: 2, wva-v0.5.0: 0.7, ...}`.
    #[serde(default)]
    pub tuning: std::collections::BTreeMap<String, f64>,
    /// Replaced by `tuning: {keda-prodstack: N}` (reported, not read).
    #[serde(default)]
    pub keda_queue_target: Option<serde_json::Value>,
    /// The saturation-scaling ConfigMap's entries (default: the documented defaults).
    #[serde(default)]
    pub saturation_config: Option<serde_json::Value>,
    /// GPUs per accelerator type for the GPU limiter (with `enableLimiter: true` in
    /// `saturationConfig`); absent = no limit.
    #[serde(default)]
    pub gpu_inventory: Option<std::collections::BTreeMap<String, crate::core::GpuPool>>,
    /// GPUs per accelerator type the cluster can schedule pods onto; a pod beyond it stays
    /// `Unschedulable` until GPUs free up. Absent types are unlimited.
    #[serde(default)]
    pub gpu_quota: std::collections::BTreeMap<String, u32>,
    pub models: Vec<ModelSpec>,
    /// The latency objective requests are judged by.
    #[serde(default)]
    pub slo: Slo,
    #[serde(default)]
    pub faults: Faults,
}

fn default_name() -> String {
    "scenario".into()
}
fn one() -> u64 {
    1
}
fn thirty() -> u64 {
    30
}
fn fifteen() -> u64 {
    15
}
fn default_seed() -> u64 {
    42
}
/// The latency objective: a request meets it when its time to first token (its wait in the
/// backlog plus the prefill time) is at most `ttftSeconds`; one waiting longer than
/// `timeoutSeconds` fails.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Slo {
    pub ttft_seconds: f64,
    pub timeout_seconds: f64,
    pub prefill_seconds: f64,
}

impl Default for Slo {
    fn default() -> Self {
        Self {
            ttft_seconds: 3.0,
            timeout_seconds: 60.0,
            prefill_seconds: 0.5,
        }
    }
}

impl Slo {
    pub fn objective(&self) -> super::requests::Objective {
        super::requests::Objective {
            ttft_seconds: self.ttft_seconds,
            timeout_seconds: self.timeout_seconds,
            prefill_seconds: self.prefill_seconds,
        }
    }
}

/// How decisions reach the Deployments.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Actuation {
    /// Removed: every policy runs as it is deployed (reported, not read).
    #[serde(default)]
    pub mode: Option<serde_json::Value>,
    /// HPA sync period (Kubernetes: 15 s).
    #[serde(default = "fifteen")]
    pub hpa_sync_seconds: u64,
    /// HPA tolerance (Kubernetes: 0.1).
    #[serde(default = "default_tolerance")]
    pub hpa_tolerance: f64,
    /// Stabilization windows (upstream chart: 240 s both ways).
    #[serde(default = "default_window")]
    pub scale_up_stabilization_seconds: u64,
    #[serde(default = "default_window")]
    pub scale_down_stabilization_seconds: u64,
}

impl Default for Actuation {
    fn default() -> Self {
        Self {
            mode: None,
            hpa_sync_seconds: fifteen(),
            hpa_tolerance: default_tolerance(),
            scale_up_stabilization_seconds: default_window(),
            scale_down_stabilization_seconds: default_window(),
        }
    }
}

fn default_tolerance() -> f64 {
    0.1
}
fn default_window() -> u64 {
    240
}

/// One model and its variants.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModelSpec {
    #[serde(default = "default_namespace")]
    pub namespace: String,
    pub model_id: String,
    pub variants: Vec<VariantSpec>,
    pub load: Load,
    /// Randomness of the arrivals around the load curve (seeded); none by default.
    #[serde(default)]
    pub noise: Option<Noise>,
}

/// Arrivals around the load curve.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "kind"
)]
pub enum Noise {
    /// Poisson arrivals: each tick's count is Poisson with the curve's mean.
    Poisson,
    /// Bursty load: the curve times a Gamma factor of mean 1 and coefficient of variation
    /// `cv`, drawn anew every `periodSeconds` (default 60).
    Gamma {
        cv: f64,
        #[serde(default = "sixty")]
        period_seconds: u64,
    },
}

fn sixty() -> u64 {
    60
}

fn default_namespace() -> String {
    "default".into()
}

/// One variant of a model.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VariantSpec {
    pub name: String,
    #[serde(default)]
    pub accelerator: String,
    /// Cost per replica-hour (also the VA's `variantCost`).
    pub cost_per_hour: f64,
    pub initial_replicas: u32,
    /// Requests per second one replica serves within the SLO (time to first token and time per
    /// output token).
    #[serde(default)]
    pub capacity_rps: f64,
    /// Requests per second one replica can serve at all (its KV cache full); beyond it requests
    /// queue. Default: 2.4 × `capacityRps`.
    #[serde(default)]
    pub peak_rps: Option<f64>,
    /// Mean seconds a request runs on a replica (prefill and decode): running requests =
    /// served rate × this (Little's law).
    #[serde(default = "default_request_seconds")]
    pub request_seconds: f64,
    /// Renamed to `capacityRps` (the meaning changed too): reported, not read.
    #[serde(default)]
    pub capacity_per_replica: Option<serde_json::Value>,
    /// Start-up time (scheduling to ready: image, weights, engine), drawn uniformly from
    /// [min, max] seconds. Default [120, 420] unless `startup` gives a distribution.
    #[serde(default)]
    pub startup_seconds: Option<[u64; 2]>,
    /// Start-up time from a distribution with a tail: a preset or a mean and standard
    /// deviation (log-normal).
    #[serde(default)]
    pub startup: Option<StartupSpec>,
    /// "Ready but cold": for this long after becoming ready a replica serves at
    /// `warmupCapacity` of its capacity (caches, CUDA graphs, prefix cache filling).
    #[serde(default)]
    pub warmup_seconds: u64,
    #[serde(default = "half")]
    pub warmup_capacity: f64,
    /// GPUs one replica requests (what the GPU limiter allocates).
    #[serde(default = "one_gpu")]
    pub gpus_per_replica: u32,
    /// The bounds every policy's replica count is kept within (an HPA's `minReplicas` and
    /// `maxReplicas`; in direct actuation, the Deployment's).
    #[serde(default = "one_replica")]
    pub min_replicas: u32,
    /// Unset: each policy's own default (its recipe's `maxReplicas`).
    #[serde(default)]
    pub max_replicas: Option<u32>,
}

impl VariantSpec {
    /// The throughput limit of one replica (requests per second).
    pub fn peak(&self) -> f64 {
        self.peak_rps
            .unwrap_or(PEAK_OVER_CAPACITY * self.capacity_rps)
    }
}

/// `peakRps` / `capacityRps` when unset: Qwen3-32B on two H100s serves ≈ 1.25 requests/s per
/// replica within TTFT ≤ 3 s / TPOT ≤ 100 ms and peaks at ≈ 3 (docs/simulation.md).
pub const PEAK_OVER_CAPACITY: f64 = 2.4;

fn one_replica() -> u32 {
    1
}

fn default_request_seconds() -> f64 {
    10.0
}

fn one_gpu() -> u32 {
    1
}

fn half() -> f64 {
    0.5
}

/// A start-up time distribution.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StartupSpec {
    pub preset: Option<StartupPreset>,
    pub mean_seconds: Option<f64>,
    pub sd_seconds: Option<f64>,
}

/// Start-up presets (docs/simulation.md#start-up gives their sources).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum StartupPreset {
    /// Weights cached on the node: ≈ 105 ± 15 s.
    CachedWeights,
    /// Weights downloaded from a nearby store: ≈ 240 ± 30 s.
    Download,
    /// A cold node (image pull and weights): 3–7 minutes, ≈ 300 ± 60 s.
    ColdNode,
}

/// How a variant's start-up time is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Startup {
    Uniform(u64, u64),
    /// Log-normal with this mean and standard deviation, in seconds.
    LogNormal {
        mean: f64,
        sd: f64,
    },
}

impl Startup {
    /// The mean start-up time.
    pub fn mean(&self) -> f64 {
        match *self {
            Startup::Uniform(low, high) => (low + high) as f64 / 2.0,
            Startup::LogNormal { mean, .. } => mean,
        }
    }

    /// A time no start-up exceeds (uniform) or one in a thousand does (log-normal).
    pub fn bound(&self) -> f64 {
        match *self {
            Startup::Uniform(_, high) => high as f64,
            Startup::LogNormal { mean, sd } => {
                let (mu, sigma) = log_normal(mean, sd);
                (mu + 3.09 * sigma).exp()
            }
        }
    }
}

/// (μ, σ) of the log-normal with this mean and standard deviation.
pub fn log_normal(mean: f64, sd: f64) -> (f64, f64) {
    let sigma2 = (1.0 + (sd / mean).powi(2)).ln();
    (mean.ln() - sigma2 / 2.0, sigma2.sqrt())
}

impl VariantSpec {
    /// How this variant's start-up time is drawn.
    pub fn startup(&self) -> Startup {
        match (self.startup, self.startup_seconds) {
            (Some(spec), _) => {
                let (mean, sd) = match spec.preset {
                    Some(StartupPreset::CachedWeights) => (105.0, 15.0),
                    Some(StartupPreset::Download) => (240.0, 30.0),
                    Some(StartupPreset::ColdNode) => (300.0, 60.0),
                    None => (
                        spec.mean_seconds.unwrap_or(240.0),
                        spec.sd_seconds.unwrap_or(0.0),
                    ),
                };
                Startup::LogNormal { mean, sd }
            }
            (None, Some([low, high])) => Startup::Uniform(low, high),
            (None, None) => Startup::Uniform(120, 420),
        }
    }
}

/// Offered load (requests per second) over time.
#[derive(Clone, Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "kind"
)]
pub enum Load {
    Constant {
        rate: f64,
    },
    /// Linear from `from` to `to` over [startSeconds, endSeconds].
    Ramp {
        from: f64,
        to: f64,
        start_seconds: u64,
        end_seconds: u64,
    },
    /// `[time, rate]` pairs: the rate from each time on.
    Steps {
        steps: Vec<(u64, f64)>,
    },
    /// `base`, plus `peak` during [startSeconds, startSeconds + lengthSeconds).
    Burst {
        base: f64,
        peak: f64,
        start_seconds: u64,
        length_seconds: u64,
    },
    /// `mean + amplitude · sin(2π t / period)`.
    Diurnal {
        mean: f64,
        amplitude: f64,
        period_seconds: u64,
    },
    /// CSV text of `time,rate` lines (steps, like `steps`).
    Csv {
        csv: String,
    },
    /// A request trace: CSV of `timestamp,input_tokens,output_tokens`, or with a header naming
    /// its columns (the Azure LLM inference traces' and BurstGPT's are recognised), inline
    /// (`csv`) or from a file next to the scenario (`file`). Each request counts as (input +
    /// output tokens) / the trace's mean, so `capacityRps` is in the trace's mean requests.
    Trace {
        #[serde(default)]
        csv: Option<String>,
        #[serde(default)]
        file: Option<String>,
        /// Replay only [start, end) seconds after the trace's first request.
        #[serde(default)]
        window: Option<[u64; 2]>,
    },
    /// Requests per second for each second from 0 (what a trace becomes once read).
    #[serde(skip)]
    PerSecond(Vec<f64>),
}

/// Things that go wrong.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Faults {
    /// Pods (by variant name) whose new replicas never become ready (e.g. ImagePullBackOff).
    #[serde(default)]
    pub never_ready: Vec<String>,
    /// Pods (by variant name) whose new replicas start, then crash over and over
    /// (`CrashLoopBackOff` once their start-up time has passed).
    #[serde(default)]
    pub crash_loop: Vec<String>,
    /// Prometheus answers nothing during [start, end) seconds.
    #[serde(default)]
    pub prometheus_outage: Option<[u64; 2]>,
}

impl Load {
    /// The rate at `t` seconds; `steps` sorted by the caller.
    pub fn rate(&self, t: f64) -> f64 {
        match self {
            Load::Constant { rate } => *rate,
            Load::Ramp {
                from,
                to,
                start_seconds,
                end_seconds,
            } => {
                let (s, e) = (*start_seconds as f64, *end_seconds as f64);
                if t <= s {
                    *from
                } else if t >= e {
                    *to
                } else {
                    from + (to - from) * (t - s) / (e - s)
                }
            }
            Load::Steps { steps } => steps
                .iter()
                .take_while(|(at, _)| *at as f64 <= t)
                .last()
                .map_or(0.0, |(_, r)| *r),
            Load::Burst {
                base,
                peak,
                start_seconds,
                length_seconds,
            } => {
                let s = *start_seconds as f64;
                if t >= s && t < s + *length_seconds as f64 {
                    *peak
                } else {
                    *base
                }
            }
            Load::Diurnal {
                mean,
                amplitude,
                period_seconds,
            } => (mean + amplitude * (std::f64::consts::TAU * t / *period_seconds as f64).sin())
                .max(0.0),
            Load::Csv { .. } | Load::Trace { .. } => 0.0,
            Load::PerSecond(rates) => {
                if t < 0.0 {
                    0.0
                } else {
                    rates.get(t as usize).copied().unwrap_or(0.0)
                }
            }
        }
    }

    /// The rate a clairvoyant planner provisions for at `t`: [`Load::rate`], except that a
    /// trace's per-second counts are averaged over the minute around `t` (a second's Poisson
    /// spike is not a rate to hold replicas for).
    pub fn planning_rate(&self, t: f64) -> f64 {
        match self {
            Load::PerSecond(_) => (-30..30).map(|s| self.rate(t + s as f64)).sum::<f64>() / 60.0,
            _ => self.rate(t),
        }
    }

    /// Times at which the load steps up (for "time to capacity").
    pub fn step_ups(&self) -> Vec<u64> {
        match self {
            Load::Steps { steps } => steps
                .windows(2)
                .filter(|w| w[1].1 > w[0].1)
                .map(|w| w[1].0)
                .collect(),
            Load::Burst {
                peak,
                base,
                start_seconds,
                ..
            } if peak > base => vec![*start_seconds],
            _ => Vec::new(),
        }
    }
}

/// Parses and checks a scenario that reads no file; every problem names its path.
pub fn parse(text: &str) -> Result<Scenario, Vec<Problem>> {
    parse_with_files(text, &|name| {
        Err(format!(
            "cannot read {name:?} here: only a scenario given as a file may name trace files"
        ))
    })
}

/// Parses and checks a scenario; `read` returns the text of a trace file it names (the CLI
/// resolves it next to the scenario). Every problem names its path.
pub fn parse_with_files(
    text: &str,
    read: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Scenario, Vec<Problem>> {
    let mut scenario: Scenario =
                // serde's message already starts with the path it knows.
        serde_yaml_ng::from_str(text).map_err(|e| vec![Problem::new("", e.to_string())])?;
    let mut problems = Vec::new();
    let mut bad = |path: String, message: &str| problems.push(Problem::new(path, message));
    if scenario.duration_seconds == 0 {
        bad("durationSeconds".into(), "must be at least 1");
    }
    if scenario.tick_seconds == 0 || scenario.tick_seconds > scenario.cycle_seconds.max(1) {
        bad("tickSeconds".into(), "must be between 1 and cycleSeconds");
    }
    if scenario.cycle_seconds == 0 {
        bad("cycleSeconds".into(), "must be at least 1");
    }
    if scenario.scrape_interval_seconds == 0 {
        bad("scrapeIntervalSeconds".into(), "must be at least 1");
    }
    if scenario.keda_queue_target.is_some() {
        bad(
            "kedaQueueTarget".into(),
            "replaced by `tuning: {keda-prodstack: N}` (waiting requests per replica)",
        );
    }
    for (policy, value) in &scenario.tuning {
        match super::policy::knob(policy) {
            None => bad(
                format!("tuning.{policy}"),
                &format!(
                    "no policy with a knob is called {policy:?}; known: {}",
                    super::POLICIES
                        .iter()
                        .filter(|p| super::policy::knob(p).is_some())
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Some(knob) if !(*value > 0.0 && *value <= knob.most) => bad(
                format!("tuning.{policy}"),
                &format!("{} must be above 0 and at most {}", knob.what, knob.most),
            ),
            Some(_) => {
                if let Err(errors) = super::tuned_saturation_config(&scenario, policy) {
                    for e in errors {
                        bad(
                            format!("tuning.{policy}"),
                            &format!("{}: {}", e.path, e.message),
                        );
                    }
                }
            }
        }
    }
    if !(0.0..1.0).contains(&scenario.actuation.hpa_tolerance) {
        bad("actuation.hpaTolerance".into(), "must be in [0, 1)");
    }
    if scenario.actuation.mode.is_some() {
        bad(
            "actuation.mode".into(),
            "removed: every policy now runs as it is deployed — wva-v0.5.0 through upstream's chart HPA, wva-v0.5.0-direct writing /scale; list the ones to compare in `policies`",
        );
    }
    if scenario.actuation.hpa_sync_seconds == 0 {
        bad("actuation.hpaSyncSeconds".into(), "must be at least 1");
    }
    let slo = scenario.slo;
    if !(slo.prefill_seconds >= 0.0 && slo.prefill_seconds.is_finite()) {
        bad("slo.prefillSeconds".into(), "must be a number >= 0");
    }
    if !(positive(slo.ttft_seconds) && slo.ttft_seconds > slo.prefill_seconds) {
        bad(
            "slo.ttftSeconds".into(),
            "must be a number above 0 and above slo.prefillSeconds",
        );
    }
    if !(positive(slo.timeout_seconds) && slo.timeout_seconds >= slo.ttft_seconds) {
        bad(
            "slo.timeoutSeconds".into(),
            "must be a number above 0 and at least slo.ttftSeconds",
        );
    }
    for (i, policy) in scenario.policies.iter().enumerate() {
        if !super::POLICIES.contains(&policy.as_str()) {
            bad(
                format!("policies[{i}]"),
                &format!(
                    "unknown policy {policy:?}; known: {}",
                    super::POLICIES.join(", ")
                ),
            );
        }
    }
    if let Some(config) = &scenario.saturation_config {
        match config.as_object() {
            Some(map) => {
                if let Err(errors) = SaturationConfigSet::parse(map.iter()) {
                    for e in errors {
                        bad(format!("saturationConfig.{}", e.path), &e.message);
                    }
                }
            }
            None => bad(
                "saturationConfig".into(),
                "must be a mapping of ConfigMap entries",
            ),
        }
    }
    if scenario.models.is_empty() {
        bad("models".into(), "at least one model is needed");
    }
    let mut names = std::collections::BTreeSet::new();
    for (m, model) in scenario.models.iter_mut().enumerate() {
        let path = format!("models[{m}]");
        if let Err(why) = crate::api::names::check_dns1123_label(&model.namespace) {
            bad(format!("{path}.namespace"), why.0);
        }
        if model.model_id.is_empty() {
            bad(format!("{path}.modelId"), "must not be empty");
        }
        if model.variants.is_empty() {
            bad(format!("{path}.variants"), "at least one variant is needed");
        }
        for (v, variant) in model.variants.iter().enumerate() {
            let vpath = format!("{path}.variants[{v}]");
            if !names.insert(variant.name.clone()) {
                bad(
                    format!("{vpath}.name"),
                    "variant names must be unique in a scenario",
                );
            }
            if let Err(why) = crate::api::names::check_dns1123_subdomain(&variant.name) {
                bad(format!("{vpath}.name"), why.0);
            }
            if !(variant.cost_per_hour >= 0.0 && variant.cost_per_hour.is_finite()) {
                bad(format!("{vpath}.costPerHour"), "must be a number >= 0");
            }
            if variant.capacity_per_replica.is_some() {
                bad(
                    format!("{vpath}.capacityPerReplica"),
                    "renamed to capacityRps, now the rate one replica serves within the SLO (peakRps is its throughput limit); see docs/simulation.md",
                );
            } else if !(variant.capacity_rps > 0.0 && variant.capacity_rps.is_finite()) {
                bad(
                    format!("{vpath}.capacityRps"),
                    "must be a number above 0 (requests per second one replica serves within the SLO)",
                );
            }
            if let Some(peak) = variant.peak_rps
                && !(peak >= variant.capacity_rps && peak.is_finite())
            {
                bad(
                    format!("{vpath}.peakRps"),
                    "must be a number at least capacityRps (requests per second)",
                );
            }
            if !(variant.request_seconds > 0.0 && variant.request_seconds.is_finite()) {
                bad(
                    format!("{vpath}.requestSeconds"),
                    "must be a number above 0 (seconds a request runs)",
                );
            }
            if variant.initial_replicas < variant.min_replicas {
                bad(
                    format!("{vpath}.initialReplicas"),
                    "must be at least minReplicas (an HPA does not scale a Deployment that starts below it from 0)",
                );
            }
            if variant.min_replicas == 0 {
                bad(
                    format!("{vpath}.minReplicas"),
                    "must be at least 1 (an HPA's minReplicas)",
                );
            }
            if variant
                .max_replicas
                .is_some_and(|max| max < variant.min_replicas.max(1))
            {
                bad(
                    format!("{vpath}.maxReplicas"),
                    "must be at least minReplicas (and 1)",
                );
            }
            if variant.gpus_per_replica == 0 {
                bad(format!("{vpath}.gpusPerReplica"), "must be an integer >= 1");
            }
            if variant
                .startup_seconds
                .is_some_and(|[low, high]| low > high)
            {
                bad(
                    format!("{vpath}.startupSeconds"),
                    "must be [min, max] with min <= max",
                );
            }
            if let Some(startup) = variant.startup {
                if variant.startup_seconds.is_some() {
                    bad(
                        format!("{vpath}.startup"),
                        "give startup or startupSeconds, not both",
                    );
                }
                match (startup.preset, startup.mean_seconds) {
                    (Some(_), None) if startup.sd_seconds.is_none() => {}
                    (None, Some(mean)) if positive(mean) && mean.is_finite() => {
                        if !startup
                            .sd_seconds
                            .is_none_or(|sd| non_negative(sd) && sd.is_finite())
                        {
                            bad(
                                format!("{vpath}.startup.sdSeconds"),
                                "must be a number >= 0",
                            );
                        }
                    }
                    _ => bad(
                        format!("{vpath}.startup"),
                        "give a preset (cached-weights, download, cold-node) or meanSeconds above 0 (with sdSeconds), not both",
                    ),
                }
            }
            if !(variant.warmup_capacity > 0.0 && variant.warmup_capacity <= 1.0) {
                bad(
                    format!("{vpath}.warmupCapacity"),
                    "must be in (0, 1]: the share of capacity a warming replica serves",
                );
            }
        }
        let lpath = format!("{path}.load");
        match &mut model.load {
            Load::Constant { rate } if !non_negative(*rate) => {
                bad(format!("{lpath}.rate"), "must be >= 0")
            }
            Load::Ramp {
                start_seconds,
                end_seconds,
                from,
                to,
            } => {
                if start_seconds >= end_seconds {
                    bad(format!("{lpath}.endSeconds"), "must be after startSeconds");
                }
                if !(non_negative(*from) && non_negative(*to)) {
                    bad(lpath.clone(), "rates must be >= 0");
                }
            }
            Load::Steps { steps } => {
                if steps.is_empty() {
                    bad(format!("{lpath}.steps"), "at least one [time, rate] pair");
                }
                steps.sort_by_key(|(t, _)| *t);
                if steps.iter().any(|(_, r)| !non_negative(*r)) {
                    bad(format!("{lpath}.steps"), "rates must be >= 0");
                }
            }
            Load::Burst { base, peak, .. } if !(non_negative(*base) && non_negative(*peak)) => {
                bad(lpath.clone(), "rates must be >= 0")
            }
            Load::Diurnal {
                period_seconds,
                mean,
                ..
            } if *period_seconds == 0 || !non_negative(*mean) => {
                bad(lpath.clone(), "periodSeconds must be above 0 and mean >= 0")
            }
            Load::Csv { csv } => match parse_csv(csv) {
                Ok(steps) => model.load = Load::Steps { steps },
                Err(e) => bad(format!("{lpath}.csv"), &e),
            },
            Load::Trace { csv, file, window } => {
                let text = match (csv, file) {
                    (Some(text), None) => Ok(text.clone()),
                    (None, Some(name)) => read(name).map_err(|e| (format!("{lpath}.file"), e)),
                    _ => Err((lpath.clone(), "give csv or file, not both".to_owned())),
                };
                let window = *window;
                if window.is_some_and(|[start, end]| start >= end) {
                    bad(
                        format!("{lpath}.window"),
                        "must be [start, end] seconds with start < end",
                    );
                }
                match text.and_then(|t| parse_trace(&t, window).map_err(|e| (lpath.clone(), e))) {
                    Ok(rates) => model.load = Load::PerSecond(rates),
                    Err((at, e)) => bad(at, &e),
                }
            }
            _ => {}
        }
        match model.noise {
            Some(Noise::Gamma { cv, period_seconds })
                if !(positive(cv) && cv <= 10.0) || period_seconds == 0 =>
            {
                bad(
                    format!("{path}.noise"),
                    "gamma needs cv in (0, 10] and periodSeconds above 0",
                )
            }
            _ => {}
        }
    }
    for (accelerator, gpus) in &scenario.gpu_quota {
        if *gpus == 0 {
            bad(
                format!("gpuQuota.{accelerator}"),
                "must be at least 1 (leave the type out for no limit)",
            );
        }
    }
    for (field, list) in [
        ("neverReady", &scenario.faults.never_ready),
        ("crashLoop", &scenario.faults.crash_loop),
    ] {
        for (i, name) in list.iter().enumerate() {
            if !names.contains(name) {
                bad(
                    format!("faults.{field}[{i}]"),
                    &format!("no variant named {name:?}"),
                );
            }
        }
    }
    if let Some([start, end]) = scenario.faults.prometheus_outage
        && start >= end
    {
        bad(
            "faults.prometheusOutage".into(),
            "must be [start, end] with start < end",
        );
    }
    if problems.is_empty() {
        Ok(scenario)
    } else {
        Err(problems)
    }
}

/// `x >= 0`, false for NaN.
fn non_negative(x: f64) -> bool {
    x >= 0.0
}

/// `x > 0`, false for NaN.
fn positive(x: f64) -> bool {
    x > 0.0
}

/// `time,rate` lines (a header line and `#` comments allowed).
fn parse_csv(text: &str) -> Result<Vec<(u64, f64)>, String> {
    let mut steps = Vec::new();
    let mut seen_data = false;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = !seen_data;
        seen_data = true;
        if first && line.starts_with(|c: char| c.is_alphabetic()) {
            continue;
        }
        let (t, r) = line
            .split_once(',')
            .ok_or_else(|| format!("line {}: expected time,rate", n + 1))?;
        let t: u64 = t
            .trim()
            .parse()
            .map_err(|_| format!("line {}: time {t:?} is not whole seconds", n + 1))?;
        let r: f64 = r
            .trim()
            .parse()
            .map_err(|_| format!("line {}: rate {r:?} is not a number", n + 1))?;
        if !non_negative(r) {
            return Err(format!("line {}: rate must be >= 0", n + 1));
        }
        steps.push((t, r));
    }
    if steps.is_empty() {
        return Err("no time,rate line".into());
    }
    steps.sort_by_key(|(t, _)| *t);
    Ok(steps)
}

/// Header names of a trace's columns, lowercased: ours, the Azure LLM inference traces'
/// (`TIMESTAMP,ContextTokens,GeneratedTokens`) and BurstGPT's (`Timestamp,Model,Request tokens,
/// Response tokens,...`).
const TIMESTAMP_COLUMNS: [&str; 2] = ["timestamp", "time"];
const INPUT_COLUMNS: [&str; 4] = [
    "input_tokens",
    "contexttokens",
    "request tokens",
    "prompt_tokens",
];
const OUTPUT_COLUMNS: [&str; 4] = [
    "output_tokens",
    "generatedtokens",
    "response tokens",
    "completion_tokens",
];

/// A request trace as requests per second from its first timestamp (or from `window[0]`
/// seconds after it, up to `window[1]`), each request weighted by its tokens over the trace's
/// mean. With a header line the columns are found by name (see the constants above); without,
/// the lines are `timestamp,input_tokens,output_tokens`. Timestamps are seconds, or dates
/// `YYYY-MM-DD HH:MM:SS[.fraction]`.
fn parse_trace(text: &str, window: Option<[u64; 2]>) -> Result<Vec<f64>, String> {
    let mut rows: Vec<(f64, f64)> = Vec::new();
    // (timestamp, input, output) column indices.
    let mut columns = (0, 1, 2);
    let mut header = false;
    let mut seen_data = false;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if !seen_data && line.starts_with(|c: char| c.is_alphabetic()) {
            seen_data = true;
            header = true;
            let find = |names: &[&str], what: &str| {
                fields
                    .iter()
                    .position(|f| names.contains(&f.to_lowercase().as_str()))
                    .ok_or_else(|| {
                        format!(
                            "line {}: the header names no {what} column (one of {})",
                            n + 1,
                            names.join(", ")
                        )
                    })
            };
            columns = (
                find(&TIMESTAMP_COLUMNS, "timestamp")?,
                find(&INPUT_COLUMNS, "input-token")?,
                find(&OUTPUT_COLUMNS, "output-token")?,
            );
            continue;
        }
        seen_data = true;
        if !header && fields.len() != 3 {
            return Err(format!(
                "line {}: expected timestamp,input_tokens,output_tokens",
                n + 1
            ));
        }
        let field = |i: usize| {
            fields
                .get(i)
                .copied()
                .ok_or_else(|| format!("line {}: has {} columns", n + 1, fields.len()))
        };
        let number = |what: &str, text: &str| {
            text.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| format!("line {}: {what} {text:?} is not a number >= 0", n + 1))
        };
        let stamp = field(columns.0)?;
        let at = match stamp.parse::<f64>() {
            Ok(_) => number("timestamp", stamp)?,
            Err(_) => date_seconds(stamp).ok_or_else(|| {
                format!(
                    "line {}: timestamp {stamp:?} is neither seconds nor YYYY-MM-DD HH:MM:SS",
                    n + 1
                )
            })?,
        };
        let tokens = number("input tokens", field(columns.1)?)?
            + number("output tokens", field(columns.2)?)?;
        rows.push((at, tokens));
    }
    if rows.is_empty() {
        return Err("no request line (timestamp, input tokens, output tokens)".into());
    }
    let origin = rows.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
    if let Some([start, end]) = window {
        rows.retain(|(at, _)| (start as f64..end as f64).contains(&(at - origin)));
        if rows.is_empty() {
            return Err(format!("no request within window [{start}, {end})"));
        }
    }
    let first = origin + window.map_or(0.0, |[start, _]| start as f64);
    let last = rows.iter().map(|r| r.0).fold(0.0, f64::max);
    const MOST_SECONDS: f64 = 30.0 * 24.0 * 3600.0;
    if last - first > MOST_SECONDS {
        return Err(format!(
            "spans {:.0} days; at most 30 are replayed (choose a window)",
            (last - first) / 86400.0
        ));
    }
    let mean = rows.iter().map(|r| r.1).sum::<f64>() / rows.len() as f64;
    let mut rates = vec![0.0; (last - first) as usize + 1];
    for (at, tokens) in rows {
        rates[(at - first) as usize] += if mean > 0.0 { tokens / mean } else { 1.0 };
    }
    Ok(rates)
}

/// `YYYY-MM-DD HH:MM:SS[.fraction]` (or with a `T`) as seconds since 1970 (no time zone: only
/// differences matter).
pub(crate) fn date_seconds(text: &str) -> Option<f64> {
    let (date, time) = text.split_once([' ', 'T'])?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.trim_end_matches('Z').split(':');
    let (h, min) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let sec: f64 = t.next()?.parse().ok()?;
    if d.next().is_some()
        || t.next().is_some()
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&day)
    {
        return None;
    }
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + min * 60) as f64 + sec)
}

/// The built-in scenario (`wva simulate` without arguments): the changelog's story. One model
/// with a cheap and an expensive variant, 2–7 minute start-up; the load steps up so that a
/// third replica is needed, then falls back.
pub const DEFAULT_SCENARIO: &str = include_str!("../../scenarios/default.yaml");
