//! The `wva-next` policy (docs/algorithm.md#wva-next): per model, demand that saturation cannot
//! hide (served rate plus queue growth over a stable and a short window), sized one p90
//! start-up ahead, against the supply that is really coming (stuck pods count as zero and put
//! their variant in back-off), filled several replicas at once on the cheapest capacity,
//! emptied slowly from the most expensive, and rebalanced onto cheaper variants when stable.
//! Pure like the rest of the core: `(snapshot, state) → (report, state')`, the state being
//! [`State`], carried in the snapshot (`wvaNextState`) and returned in the report. No clock:
//! the snapshot's `time` is "now".

use std::fmt::Write as _;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::analyzer::{ModelSpare, VariantAnalysis, analyze_variant, is_saturated, model_spare};
use super::fixed::{F0, F2};
use super::hash::FastMap;
use super::report::{Action, Decision, ModelReport, Step, Text};
use super::snapshot::{PodMetrics, ReadyPod, Snapshot, Variant};
use crate::config::SaturationScalingConfig;
use crate::config::next::NextSettings;
pub use entries::Entries;
use entries::Lookup;

/// Start-up times remembered per variant (the newest).
pub const STARTUP_SAMPLES: usize = 32;
/// Start-up times needed before the learned p90/p99 replace the configured `startupTime`.
pub const STARTUP_SAMPLES_TO_LEARN: usize = 3;
/// The short window's demand over the stable one's at which it is acted on without panic.
const SURGE: f64 = 1.2;
/// KV-cache use below which a pod's served ÷ KV says nothing about its throughput limit.
const MIN_KV_TO_LEARN: f64 = 0.05;
/// The served rate's window (`rate(vllm:request_success_total[1m])`).
const SERVED_RATE_WINDOW: f64 = 60.0;
/// Seconds a pod may become Ready before a cycle and still be missing from that cycle's list
/// (the controller's watch lag, clock skew between kubelets and the controller): a pod Ready
/// longer than this before the variant's previous cycle is known, and its name is not read.
pub const READY_LIST_LAG: f64 = 60.0;
// A pod Ready within the served rate's window is never skipped as already learned.
const _: () = assert!(SERVED_RATE_WINDOW <= READY_LIST_LAG);

/// What `wva-next` remembers between cycles. Keys: `namespace/modelID` and `namespace/name`,
/// in the order the cycle wrote them (serialized sorted).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct State {
    #[serde(default, skip_serializing_if = "Entries::is_empty")]
    pub models: Entries<ModelState>,
    #[serde(default, skip_serializing_if = "Entries::is_empty")]
    pub variants: Entries<VariantState>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelState {
    /// One per cycle with complete metrics, oldest first, within the stable window or the
    /// scale-down delay, whichever is longer.
    #[serde(default)]
    pub samples: Vec<DemandSample>,
    /// Since when the demand has stayed under the scale-down utilisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_since: Option<f64>,
    /// A swap in progress: the cheap replicas were added, the expensive one goes when they
    /// are Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebalance: Option<Rebalance>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DemandSample {
    pub time: f64,
    /// Σ requests/s served by the model's pods.
    pub served: f64,
    /// Σ requests waiting in the model's pods.
    pub waiting: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rebalance {
    pub from: String,
    pub to: String,
    /// `to`'s replicas once the swap's replicas were added.
    pub to_target: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VariantState {
    /// (pod, seconds from creation to Ready), newest last; the pod by [`pod_id`] of its name.
    /// Shared with the previous state until a pod is learned (most cycles learn none).
    #[serde(default, skip_serializing_if = "no_startups")]
    pub startups: Arc<Vec<(u64, f64)>>,
    /// Learned requests/s one replica serves at its throughput limit (served ÷ KV-cache use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<f64>,
    /// The time of the cycle that last learned from the variant's Ready pods: a pod Ready more
    /// than [`READY_LIST_LAG`] seconds before then was learned then, and is not looked at again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learned_at: Option<f64>,
    /// No new replicas before this time (a pod of the variant was stuck).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable_until: Option<f64>,
    /// Back-offs in a row without a pod of the variant becoming Ready: each doubles the next
    /// (at most [`MAX_BACKOFF_DOUBLINGS`] times).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failures: u32,
}

fn no_startups(s: &Arc<Vec<(u64, f64)>>) -> bool {
    s.is_empty()
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A variant whose pods keep getting stuck waits at most `unavailableBackoff` × 2^this.
pub const MAX_BACKOFF_DOUBLINGS: u32 = 3;

/// A model's figures as `wva-next` saw them (in the report).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    /// Requests/s over the stable and the short window (served + queue growth).
    pub stable_demand: f64,
    pub short_demand: f64,
    /// Σ pods' KV-cache use × each variant's learned throughput (once every reporting variant
    /// has one): acted on only as the model nears saturation with nothing starting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kv_demand: Option<f64>,
    pub panic: bool,
    /// Demand one start-up ahead, backlog drain included.
    pub demand_ahead: f64,
    /// Requests/s within the SLO of the ready and of the coming (ready + starting) replicas.
    pub ready_capacity: f64,
    pub coming_capacity: f64,
    /// Which term decided: `scale-up`, `scale-down`, `rebalance`, `hold`, `degraded`, ...
    pub decided_by: &'static str,
}

/// One variant as the policy sees it this cycle.
struct Seen<'a> {
    variant: &'a Variant,
    /// Replicas that are (or will be) serving: the Deployment's wish minus stuck ones.
    coming: u32,
    stuck: u32,
    ready: u32,
    /// Σ of its pods' KV-cache use × its learned throughput (served ÷ KV) of earlier cycles:
    /// the requests/s its pods hold now, read from gauges rather than a one-minute rate (0
    /// without a reporting pod; unknown until the throughput is learned).
    kv_demand: Option<f64>,
    /// A replica became Ready within the served rate's window.
    fresh: bool,
    /// Its pods' saturation analysis (the report's), when any pod reported.
    analysis: Option<VariantAnalysis>,
    /// Requests/s one replica serves within the SLO, and whether it was configured.
    capacity: Option<(f64, &'static str)>,
    /// The same, or where unknown the smallest known one of the model's variants (infinite
    /// when none is known).
    rps: f64,
    p90: f64,
    available: bool,
    unavailable_until: Option<f64>,
    min: u32,
    max: u32,
    target: u32,
}

impl Seen<'_> {
    fn starting(&self) -> u32 {
        self.coming.saturating_sub(self.ready)
    }
    fn cost_per_capacity(&self) -> f64 {
        self.variant.cost / self.rps
    }
}

/// One cycle for every model; the next state goes with the report.
pub fn decide(snapshot: &Snapshot) -> (Vec<ModelReport>, Vec<Decision>, State) {
    static EMPTY: State = State {
        models: Entries::new(),
        variants: Entries::new(),
    };
    let state = snapshot.wva_next_state.as_ref().unwrap_or(&EMPTY);
    let mut previous = Previous {
        models: Lookup::new(&state.models),
        variants: Lookup::new(&state.variants),
    };
    let (sorted, start) = super::by_model(snapshot.variants.iter());
    let models = start.len() - 1;
    let mut next = Next {
        models: Vec::with_capacity(models),
        variants: Vec::with_capacity(snapshot.variants.len()),
        supply_notes: FastMap::default(),
        scratch: String::new(),
    };
    let mut reports = Vec::with_capacity(models);
    let mut decisions = Vec::with_capacity(snapshot.variants.len());
    let mut buffers = Buffers {
        seen: Vec::new(),
        pods: Vec::new(),
        note: String::new(),
    };
    for run in start.windows(2) {
        let variants = &sorted[run[0]..run[1]];
        let (namespace, model_id) = (&*variants[0].namespace, &*variants[0].model_id);
        let (_, config) = snapshot.saturation_config.for_model(namespace, model_id);
        let ctx = Model {
            snapshot,
            config,
            settings: &config.next,
            namespace,
            model_id,
        };
        reports.push(ctx.decide(
            variants,
            &mut previous,
            &mut next,
            &mut buffers,
            &mut decisions,
        ));
    }
    let next = State {
        models: Entries::from_unique(next.models),
        variants: Entries::from_unique(next.variants),
    };
    (reports, decisions, next)
}

/// The previous state, found in the order this cycle reads it (the order the previous cycle
/// wrote it: models by namespace and model ID, variants by name within their model).
struct Previous<'a> {
    models: Lookup<'a, ModelState>,
    variants: Lookup<'a, VariantState>,
}

/// A state key, `namespace/rest`, for an entry the previous state did not have.
fn state_key(namespace: &str, rest: &str) -> Text {
    let mut key = String::with_capacity(namespace.len() + 1 + rest.len());
    key.push_str(namespace);
    key.push('/');
    key.push_str(rest);
    Text::from(key)
}

/// The next state as it is written, one entry per model and variant, in the order the next
/// cycle will read them.
struct Next {
    models: Vec<(Text, ModelState)>,
    variants: Vec<(Text, VariantState)>,
    /// The cycle's `supply` notes by what they say: variants alike share one text (most of a
    /// fleet: the same counts on the same accelerator).
    supply_notes: FastMap<SupplyKey, Text>,
    /// Where a note is written before it becomes a [`Text`] (one buffer for the cycle).
    scratch: String,
}

/// A model's working lists and its verdict's note, emptied and used again by the next model.
struct Buffers<'v> {
    seen: Vec<Seen<'v>>,
    pods: Vec<&'v PodMetrics>,
    note: String,
}

/// What a `supply` note says.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct SupplyKey {
    ready: u32,
    starting: u32,
    stuck: u32,
    capacity: Option<(u64, &'static str)>,
    p90: u64,
    available: bool,
}

struct Model<'a> {
    snapshot: &'a Snapshot,
    config: &'a SaturationScalingConfig,
    settings: &'a NextSettings,
    namespace: &'a str,
    model_id: &'a str,
}

impl Model<'_> {
    fn decide<'v>(
        &self,
        variants: &[&'v Variant],
        previous: &mut Previous<'_>,
        next: &mut Next,
        buffers: &mut Buffers<'v>,
        decisions: &mut Vec<Decision>,
    ) -> ModelReport {
        let s = self.settings;
        let (model_key, mut model_state) = match previous.models.find(self.namespace, self.model_id)
        {
            Some((key, state)) => {
                // Room for this cycle's sample (a clone has none: it would be copied again).
                let mut samples = Vec::with_capacity(state.samples.len() + 1);
                samples.extend_from_slice(&state.samples);
                let state = ModelState {
                    samples,
                    low_since: state.low_since,
                    rebalance: state.rebalance.clone(),
                };
                (Text::clone(key), state)
            }
            None => (
                state_key(self.namespace, self.model_id),
                ModelState::default(),
            ),
        };
        let time = self.snapshot.time;
        let t = time.unwrap_or(0.0);

        // 1. The variants: learned start-up times and capacity, stuck pods, back-off.
        let Buffers { seen, pods, note } = buffers;
        seen.clear();
        seen.extend(variants.iter().map(|v| self.see(v, t, previous, next)));
        // Each variant's saturation analysis (pods in name order), when any pod reported.
        for v in seen.iter_mut().filter(|v| !v.variant.pods.is_empty()) {
            pods.clear();
            pods.extend(v.variant.pods.iter());
            // The controller lists them by name already.
            if !pods.is_sorted_by(|a, b| a.name <= b.name) {
                pods.sort_unstable_by(|a, b| a.name.cmp(&b.name));
            }
            v.analysis = Some(analyze_variant(pods, self.config));
        }

        // 2. Demand.
        let complete = time.is_some()
            && seen.iter().all(|v| {
                v.ready == 0
                    || (!v.variant.pods.is_empty()
                        && v.variant.pods.iter().all(|p| p.served_rps.is_some()))
            });
        let pods = || seen.iter().flat_map(|v| v.variant.pods.iter());
        let served: f64 = pods().filter_map(|p| p.served_rps).sum();
        // The newest counts, where collected: a pod's largest over the minute still counts what
        // has drained since, or moved to a new replica.
        let waiting: f64 = pods()
            .map(|p| p.waiting.unwrap_or(p.queue_length as f64))
            .sum();
        let last = model_state.samples.last().copied();
        let stale =
            last.is_none_or(|l| t - l.time > (2.0 * s.panic_window).max(60.0) || t <= l.time);
        if complete && last.is_none_or(|l| t > l.time) {
            if stale {
                model_state.samples.clear();
            }
            model_state.samples.push(DemandSample {
                time: t,
                served,
                waiting,
            });
            let keep = s.stable_window.max(s.scale_down_delay);
            model_state.samples.retain(|x| x.time >= t - keep);
        }
        let mut demand = Demand::of(&model_state.samples, t, s);
        // A replica Ready within the served rate's window may be serving a backlog that waited
        // elsewhere (the gateway, the pods' running batches): the rate counts it as demand.
        demand.draining |= seen.iter().any(|v| v.fresh);

        // 3. Supply.
        // The smallest known capacity stands in for unknown ones (infinite: none is known).
        let fallback = seen
            .iter()
            .filter_map(|v| v.capacity.map(|c| c.0))
            .fold(f64::INFINITY, f64::min);
        let none_known = seen.iter().all(|v| v.capacity.is_none());
        for v in seen.iter_mut() {
            v.rps = v.capacity.map_or(fallback, |c| c.0);
        }
        let ready_capacity: f64 = seen.iter().map(|v| v.rps * v.ready as f64).sum();
        let coming_capacity: f64 = seen.iter().map(|v| v.rps * v.coming as f64).sum();
        let starting: u32 = seen.iter().map(Seen::starting).sum();
        let cheapest_p90 = seen
            .iter()
            .filter(|v| v.available && v.target < v.max)
            .min_by(|a, b| a.cost_per_capacity().total_cmp(&b.cost_per_capacity()))
            .map_or(s.startup_time, |v| v.p90);
        let rate_ahead = demand.ahead(cheapest_p90, s);
        // Gauges before rates: the pods' KV-cache use says a step one cycle before a
        // one-minute rate does. Trusted only upward, only when the pods near saturation (the
        // `wva-v0.5.0` trigger: average spare KV or queue under its trigger), and only when
        // nothing is starting (a saturated pod's KV overstates what it serves).
        let kv_demand: Option<f64> = seen.iter().map(|v| v.kv_demand).sum();
        let spare = model_spare(seen.iter().filter_map(|v| v.analysis.as_ref()));
        let near_saturation = spare.total_replicas > 0 && {
            let (kv_low, queue_low) = spare.low(self.config);
            kv_low || queue_low
        };
        let kv_ahead = kv_demand.filter(|d| {
            starting == 0 && near_saturation && *d > SURGE * demand.stable && *d > rate_ahead
        });
        let ahead = kv_ahead.unwrap_or(rate_ahead);

        // 4–6. The verdict, its note written into the model's buffer.
        note.clear();
        let mut verdict = Verdict {
            decided_by: "hold",
            note: std::mem::take(note),
        };
        if !complete || none_known {
            model_state.low_since = None;
            model_state.rebalance = None;
            verdict.degraded(self, seen, complete, time.is_some());
        } else if ahead > s.scale_up_utilisation * coming_capacity {
            model_state.low_since = None;
            model_state.rebalance = None;
            let wanted = ahead / s.target_utilisation - coming_capacity;
            let _ = write!(
                verdict.note,
                "{}: demand {} req/s one start-up ({}s) ahead > {} × coming capacity {} req/s; ",
                match (kv_ahead.is_some(), demand.panic) {
                    (true, _) => "scale-up (KV-implied demand, pods near saturation)",
                    (false, true) => "scale-up (panic)",
                    (false, false) => "scale-up",
                },
                F2(ahead),
                F0(cheapest_p90),
                F2(s.scale_up_utilisation),
                F2(coming_capacity),
            );
            verdict.scale_up(seen, wanted, demand.panic);
        } else {
            let peak = demand.peak;
            let low = peak < s.scale_down_utilisation * ready_capacity;
            let full = demand.span >= s.stable_window * 0.9;
            let blocker = if demand.panic {
                Some(Blocker::Panic)
            } else if starting > 0 {
                Some(Blocker::Starting(starting))
            } else if stale || !full {
                Some(Blocker::Window {
                    span: demand.span,
                    of: s.stable_window,
                })
            } else {
                None
            };
            match (low, blocker) {
                (true, None) => {
                    let since = *model_state.low_since.get_or_insert(t);
                    if t - since >= s.scale_down_delay {
                        let excess = ready_capacity - peak / s.target_utilisation;
                        let _ = write!(
                            verdict.note,
                            "peak demand {} req/s < {} × ready capacity {} req/s for {}s; ",
                            F2(peak),
                            F2(s.scale_down_utilisation),
                            F2(ready_capacity),
                            F0(t - since),
                        );
                        if verdict.scale_down(seen, excess) {
                            model_state.low_since = Some(t);
                            model_state.rebalance = None;
                        }
                    } else {
                        verdict.hold(format_args!(
                            "peak demand {} req/s < {} × ready capacity {} req/s for {}s of {}s",
                            F2(peak),
                            F2(s.scale_down_utilisation),
                            F2(ready_capacity),
                            F0(t - since),
                            F0(s.scale_down_delay)
                        ));
                    }
                }
                (low, blocker) => {
                    model_state.low_since = None;
                    match (low, blocker) {
                        (true, Some(b)) => {
                            verdict.hold(format_args!("demand is low but {b}: no scale-down"));
                        }
                        _ => verdict.hold(format_args!(
                            "demand ahead {} req/s within {}–{} of capacity {} req/s",
                            F2(ahead),
                            F2(s.scale_down_utilisation),
                            F2(s.scale_up_utilisation),
                            F2(coming_capacity)
                        )),
                    }
                }
            }
            if verdict.decided_by == "hold" && !demand.panic && starting == 0 && !stale && full {
                verdict.rebalance(
                    seen,
                    &mut model_state,
                    peak / s.target_utilisation,
                    coming_capacity,
                );
            }
        }

        // Scale to zero (the scale-to-zero ConfigMap), else at least one replica per model that
        // has any (a model at zero stays there: waking it is scale-from-zero's job).
        let has_replicas = seen.iter().any(|v| v.variant.current_replicas() > 0);
        let stz = &self.snapshot.scale_to_zero_config;
        let idle = stz.enabled(self.namespace, self.model_id)
            && self
                .snapshot
                .request_counts
                .get(&(self.namespace.to_owned(), self.model_id.to_owned()))
                .is_some_and(|c| *c == 0.0);
        if idle {
            for v in seen.iter_mut() {
                v.target = v.min;
            }
            verdict.decided_by = "scale-to-zero";
            verdict.note.clear();
            verdict
                .note
                .push_str("no request within the scale-to-zero retention period");
        } else if has_replicas
            && seen.iter().all(|v| v.target == 0)
            && let Some(v) = seen.iter_mut().min_by(|a, b| {
                a.cost_per_capacity()
                    .total_cmp(&b.cost_per_capacity())
                    .then(a.variant.name.cmp(&b.variant.name))
            })
        {
            v.target = 1;
        }

        next.models.push((model_key, model_state));
        let figures = Figures {
            stable_demand: demand.stable,
            short_demand: demand.short,
            kv_demand,
            panic: demand.panic,
            demand_ahead: ahead,
            ready_capacity,
            coming_capacity,
            decided_by: verdict.decided_by,
        };
        let report = self.report(seen, &verdict, figures, spare, next, decisions);
        *note = verdict.note;
        report
    }

    /// A variant's facts, its state carried over (start-ups learned, throughput, back-off).
    fn see<'v>(
        &self,
        v: &'v Variant,
        t: f64,
        previous: &mut Previous<'_>,
        next: &mut Next,
    ) -> Seen<'v> {
        let s = self.settings;
        let (key, mut state) = match previous.variants.find(&v.namespace, &v.name) {
            Some((key, state)) => (Text::clone(key), state.clone()),
            None => (state_key(&v.namespace, &v.name), VariantState::default()),
        };
        // Most cycles learn nothing: only pods Ready since about the previous cycle are
        // looked up by name (every pod when the times are unknown, or after a restart).
        let time = self.snapshot.time;
        let learned_at = state.learned_at.filter(|at| time.is_some_and(|t| t >= *at));
        let known = |pod: &&ReadyPod| {
            learned_at
                .zip(pod.ready_for_seconds)
                .is_some_and(|(at, ready_for)| t - ready_for + READY_LIST_LAG < at)
        };
        if time.is_some() {
            state.learned_at = time;
        }
        // Every pod Ready within the served rate's window is among those looked at: a pod
        // skipped was Ready over READY_LIST_LAG seconds, at least the window (asserted above).
        let mut fresh = false;
        for pod in v.ready_pods.iter().filter(|p| !known(p)) {
            fresh |= pod
                .ready_for_seconds
                .is_some_and(|r| r < SERVED_RATE_WINDOW);
            let id = pod_id(&pod.name);
            if !state.startups.iter().any(|(known, _)| *known == id) {
                Arc::make_mut(&mut state.startups).push((id, pod.startup_seconds));
                // A new pod became Ready: the variant works again.
                state.failures = 0;
            }
        }
        let excess = state.startups.len().saturating_sub(STARTUP_SAMPLES);
        if excess > 0 {
            Arc::make_mut(&mut state.startups).drain(..excess);
        }
        let (p90, p99) = startup_quantiles(&state.startups, s.startup_time);

        let kv_demand = if v.pods.is_empty() {
            Some(0.0)
        } else {
            let kv: f64 = v.pods.iter().map(|p| p.kv_cache_usage).sum();
            state.throughput.map(|tp| tp * kv)
        };
        let (mut served, mut kv) = (0.0, 0.0);
        for p in v
            .pods
            .iter()
            .filter(|p| p.kv_cache_usage >= MIN_KV_TO_LEARN)
        {
            served += p.served_rps.unwrap_or(0.0);
            kv += p.kv_cache_usage;
        }
        if served > 0.0 {
            let observed = served / kv;
            state.throughput = Some(
                state
                    .throughput
                    .map_or(observed, |old| 0.7 * old + 0.3 * observed),
            );
        }
        let capacity = match s.capacity_rps.get(&*v.accelerator) {
            Some(c) => Some((*c, "configured")),
            None => state
                .throughput
                .map(|tp| (tp * s.slo_throughput_fraction, "learned")),
        };

        let aged = v
            .starting_pods
            .iter()
            .filter(|p| p.age_seconds > p99 + s.stuck_margin)
            .count() as u32;
        let stuck = (v.stuck_replicas + aged).min(v.current_replicas());
        if state.unavailable_until.is_some_and(|u| t >= u) {
            state.unavailable_until = None;
        }
        if stuck > 0 {
            if state.unavailable_until.is_none() {
                state.failures = (state.failures + 1).min(MAX_BACKOFF_DOUBLINGS + 1);
            }
            let backoff = s.unavailable_backoff * f64::from(1u32 << (state.failures.max(1) - 1));
            state.unavailable_until = Some(t + backoff);
        }
        let available = state.unavailable_until.is_none();
        let unavailable_until = state.unavailable_until;
        let wish = v.spec_replicas.max(v.current_replicas());
        let coming = wish.saturating_sub(stuck).max(v.ready_replicas.min(wish));
        next.variants.push((key, state));
        let max = v.max_replicas.unwrap_or(super::snapshot::MAX_REPLICAS);
        Seen {
            variant: v,
            coming,
            stuck,
            ready: v.ready_replicas.min(coming),
            kv_demand,
            fresh,
            analysis: None,
            capacity,
            rps: f64::INFINITY,
            p90,
            available,
            unavailable_until,
            min: v.min_replicas.min(max),
            max,
            target: coming,
        }
    }

    fn report(
        &self,
        seen: &mut Vec<Seen<'_>>,
        verdict: &Verdict,
        figures: Figures,
        model: ModelSpare,
        next: &mut Next,
        decisions: &mut Vec<Decision>,
    ) -> ModelReport {
        let first_variant = seen[0].variant;
        // The model's notes are written once and shared by its variants' decisions; a
        // variant's own note is written into one scratch string, then copied once.
        let Next {
            supply_notes,
            scratch,
            ..
        } = next;
        scratch.clear();
        let _ = write!(
            scratch,
            "stable {} req/s, short {} req/s{}, ",
            F2(figures.stable_demand),
            F2(figures.short_demand),
            if figures.panic { " (panic)" } else { "" },
        );
        if let Some(kv) = figures.kv_demand {
            let _ = write!(scratch, "KV-implied {} req/s, ", F2(kv));
        }
        let _ = write!(
            scratch,
            "ahead {} req/s; capacity ready {}, coming {} req/s",
            F2(figures.demand_ahead),
            F2(figures.ready_capacity),
            F2(figures.coming_capacity)
        );
        let demand_note = Text::from(scratch.as_str());
        let verdict_note = Text::from(verdict.note.as_str());
        for mut v in seen.drain(..) {
            let mut target = v.target.clamp(v.min, v.max);
            if v.variant.spec_replicas == 0 && v.target == 0 {
                target = 0;
            }
            let analysis = v.analysis.take();
            let current = v.variant.current_replicas();
            let note = if v.stuck == 0 && target == v.target {
                verdict_note.clone()
            } else {
                scratch.clear();
                scratch.push_str(&verdict.note);
                if v.stuck > 0 {
                    let _ = write!(
                        scratch,
                        "; {} stuck replica(s) count as zero and are removed; no new replicas until {}",
                        v.stuck,
                        F0(v.unavailable_until.unwrap_or(0.0))
                    );
                }
                if target != v.target {
                    let _ = write!(
                        scratch,
                        "; kept within the variant's bounds [{}, {}]",
                        v.min, v.max
                    );
                }
                Text::from(scratch.as_str())
            };
            let key = SupplyKey {
                ready: v.ready,
                starting: v.starting(),
                stuck: v.stuck,
                capacity: v.capacity.map(|(c, how)| (c.to_bits(), how)),
                p90: v.p90.to_bits(),
                available: v.available,
            };
            let supply = supply_notes
                .entry(key)
                .or_insert_with(|| {
                    scratch.clear();
                    let _ = write!(
                        scratch,
                        "{} ready, {} starting, {} stuck; ",
                        v.ready,
                        v.starting(),
                        v.stuck
                    );
                    let _ = match v.capacity {
                        Some((c, how)) => {
                            write!(scratch, "{} req/s per replica ({how})", F2(c))
                        }
                        None => write!(scratch, "capacity unknown"),
                    };
                    let _ = write!(
                        scratch,
                        "; p90 start-up {}s{}",
                        F0(v.p90),
                        if v.available { "" } else { "; in back-off" }
                    );
                    Text::from(scratch.as_str())
                })
                .clone();
            decisions.push(Decision {
                namespace: v.variant.namespace.clone(),
                name: v.variant.name.clone(),
                target_name: v.variant.target_name.clone(),
                model_id: v.variant.model_id.clone(),
                accelerator: v.variant.accelerator.clone(),
                cost: v.variant.cost,
                action: Action::from_replicas(current, target),
                current_replicas: current,
                target_replicas: target,
                metrics_available: analysis.is_some(),
                reason: note.clone(),
                steps: vec![
                    Step {
                        stage: "supply",
                        target_replicas: v.coming,
                        note: supply,
                    },
                    Step {
                        stage: "demand",
                        target_replicas: v.coming,
                        note: demand_note.clone(),
                    },
                    Step {
                        stage: "wva-next",
                        target_replicas: target,
                        note,
                    },
                ],
                ready_replicas: v.variant.ready_replicas,
                pending_replicas: v.variant.pending_replicas(),
                previous_desired: v.variant.previous_desired,
                gpus_per_replica: v.variant.gpus_per_replica,
                analysis,
            });
        }
        ModelReport {
            namespace: Text::clone(&first_variant.namespace),
            model_id: Text::clone(&first_variant.model_id),
            total_replicas: model.total_replicas,
            non_saturated_count: model.non_saturated_count,
            avg_spare_kv_capacity: model.avg_spare_kv_capacity,
            avg_spare_queue_length: model.avg_spare_queue_length,
            should_scale_up: figures.decided_by == "scale-up",
            scale_down_safe: figures.decided_by == "scale-down",
            in_transition: false,
            scale_to_zero_applied: figures.decided_by == "scale-to-zero",
            saturation_config_key: self
                .snapshot
                .saturation_config
                .for_model(self.namespace, self.model_id)
                .0
                .to_owned(),
            scale_up_reason: String::new(),
            transition_reasons: Vec::new(),
            minimum_enforced: false,
            next: Some(figures),
        }
    }
}

/// A pod's name as the state remembers it: 64-bit FNV-1a (stable across builds and machines,
/// unlike the standard hasher; a collision only drops one start-up sample).
pub fn pod_id(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// p90 and p99 of the learned start-up times, or the configured time (p99 = 1.5×) until enough
/// are known.
fn startup_quantiles(samples: &[(u64, f64)], configured: f64) -> (f64, f64) {
    if samples.len() < STARTUP_SAMPLES_TO_LEARN {
        return (configured, configured * 1.5);
    }
    // At most STARTUP_SAMPLES of them: sorted on the stack.
    let mut buffer = [0.0; STARTUP_SAMPLES];
    let n = samples.len().min(STARTUP_SAMPLES);
    for (slot, sample) in buffer.iter_mut().zip(samples) {
        *slot = sample.1;
    }
    let times = &mut buffer[..n];
    times.sort_unstable_by(f64::total_cmp);
    let at = |q: f64| times[((n as f64 * q).ceil() as usize).clamp(1, n) - 1];
    (at(0.9), at(0.99))
}

/// The model's demand, from the window's samples.
#[derive(Default)]
struct Demand {
    /// Mean served over the stable window plus the queue's growth over it.
    stable: f64,
    /// The same over the short window.
    short: f64,
    /// Requests/s per second: the served rate's trend over the window (least squares, ≥ 0).
    slope: f64,
    /// Largest sample (served + backlog drain) over the stable window and the scale-down delay.
    peak: f64,
    /// Seconds the window covers.
    span: f64,
    /// Requests waiting now.
    waiting: f64,
    panic: bool,
    /// Requests waited at the previous sample and no more wait now, or a replica became Ready
    /// within the served rate's window: the rate may count a backlog being drained.
    draining: bool,
}

impl Demand {
    /// `history` covers the longer of the stable window and the scale-down delay: the peak is
    /// taken over all of it, everything else over the stable window.
    fn of(history: &[DemandSample], t: f64, s: &NextSettings) -> Self {
        let Some(now) = history.last() else {
            return Self::default();
        };
        let peak = history
            .iter()
            .map(|x| x.served + x.waiting / s.drain_time)
            .fold(0.0, f64::max);
        let samples = &history[history.partition_point(|x| x.time < t - s.stable_window)..];
        let growth = |from: &DemandSample| {
            if now.time > from.time {
                (now.waiting - from.waiting) / (now.time - from.time)
            } else {
                0.0
            }
        };
        let mean = |xs: &[DemandSample]| xs.iter().map(|x| x.served).sum::<f64>() / xs.len() as f64;
        let stable = (mean(samples) + growth(&samples[0])).max(0.0);
        let short_from = samples
            .iter()
            .position(|x| x.time > t - s.panic_window)
            .unwrap_or(samples.len() - 1);
        let previous = samples.len().checked_sub(2).map(|i| samples[i]);
        let short =
            (mean(&samples[short_from..]) + previous.as_ref().map_or(0.0, &growth)).max(0.0);
        let backlog_grows = previous.is_some_and(|p| now.waiting > p.waiting);
        // A trend only over at least half the window, and only when each third of it rises:
        // a step (which the served rate's own window smooths into a short ramp) is not a trend.
        let span = now.time - samples[0].time;
        let cut = |k: f64| samples.partition_point(|x| x.time < samples[0].time + span * k / 3.0);
        let (a, b) = (cut(1.0), cut(2.0));
        // And only when it stands out of the noise: the whole window's slope at least three times
        // its standard error, a rise over the window of at least a tenth of the demand, and the
        // newest sample the highest of the history (a recovery from a dip is not a ramp).
        let (whole, error) = fit(samples);
        let slope = if span >= s.stable_window / 2.0
            && a >= 2
            && b - a >= 2
            && samples.len() - b >= 2
            && whole > 3.0 * error
            && whole * span >= 0.1 * mean(samples)
            && history.iter().all(|x| x.served <= now.served)
        {
            fit(&samples[..a])
                .0
                .min(fit(&samples[a..b]).0)
                .min(fit(&samples[b..]).0)
                .max(0.0)
        } else {
            0.0
        };
        Self {
            stable,
            short,
            slope,
            peak,
            span,
            waiting: now.waiting,
            panic: short > 2.0 * stable || backlog_grows,
            draining: previous.is_some_and(|p| p.waiting > 0.0 && now.waiting <= p.waiting),
        }
    }

    /// The demand `horizon` seconds ahead: the current one (the short window's in panic), the
    /// trend carried over the window's lag and the start-up, the backlog drained.
    fn ahead(&self, horizon: f64, s: &NextSettings) -> f64 {
        // The stable window, unless the short one runs clearly above it (a fifth: far beyond
        // the noise of a one-minute rate) or in panic.
        // Not while a backlog drains: then the served rate counts the backlog, not demand.
        let surge = self.short > SURGE * self.stable && !self.draining;
        let now = if self.panic || surge {
            self.short
        } else {
            self.stable
        };
        // The trend at most doubles the demand within the horizon.
        now + (self.slope * (self.span / 2.0 + horizon)).min(now) + self.waiting / s.drain_time
    }
}

/// The least-squares slope of served over time and its standard error (0 with fewer than
/// two samples; the error infinite with fewer than three).
fn fit(samples: &[DemandSample]) -> (f64, f64) {
    if samples.len() < 2 {
        return (0.0, f64::INFINITY);
    }
    let n = samples.len() as f64;
    let mt = samples.iter().map(|x| x.time).sum::<f64>() / n;
    let ms = samples.iter().map(|x| x.served).sum::<f64>() / n;
    let cov: f64 = samples
        .iter()
        .map(|x| (x.time - mt) * (x.served - ms))
        .sum();
    let var: f64 = samples.iter().map(|x| (x.time - mt).powi(2)).sum();
    if var <= 0.0 {
        return (0.0, f64::INFINITY);
    }
    let slope = cov / var;
    if samples.len() < 3 {
        return (slope, f64::INFINITY);
    }
    let residuals: f64 = samples
        .iter()
        .map(|x| (x.served - ms - slope * (x.time - mt)).powi(2))
        .sum();
    (slope, (residuals / (n - 2.0) / var).sqrt())
}

/// What the cycle decided for the model, and the words for it.
struct Verdict {
    decided_by: &'static str,
    /// The model's note, the same for each of its variants.
    note: String,
}

/// Why demand that is low does not scale down (a verdict's words).
enum Blocker {
    Panic,
    Starting(u32),
    Window { span: f64, of: f64 },
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Panic => f.write_str("panic"),
            Self::Starting(n) => write!(f, "{n} replica(s) starting"),
            Self::Window { span, of } => {
                write!(f, "the demand window holds {}s of {}s", F0(*span), F0(*of))
            }
        }
    }
}

impl Verdict {
    /// No change, and why (the note replaced).
    fn hold(&mut self, why: std::fmt::Arguments<'_>) {
        self.decided_by = "hold";
        self.note.clear();
        let _ = write!(self.note, "no change: {why}");
    }

    /// Adds `wanted` req/s of capacity on the cheapest available variants (the fastest to start
    /// in panic), at most max(+100 %, +4) replicas in all. Says how after the note's words.
    fn scale_up(&mut self, seen: &mut [Seen<'_>], wanted: f64, panic: bool) {
        self.decided_by = "scale-up";
        let total: u32 = seen.iter().map(|v| v.coming).sum();
        let mut budget = total.max(4);
        let mut order: Vec<usize> = (0..seen.len()).filter(|&i| seen[i].available).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&seen[a], &seen[b]);
            let by_cost = a.cost_per_capacity().total_cmp(&b.cost_per_capacity());
            let by_speed = a.p90.total_cmp(&b.p90);
            (if panic {
                by_speed.then(by_cost)
            } else {
                by_cost
            })
            .then(a.variant.name.cmp(&b.variant.name))
        });
        let mut remaining = wanted;
        let mut added = 0;
        for i in order {
            let v = &mut seen[i];
            if remaining <= 0.0 || budget == 0 {
                break;
            }
            let cap = v.rps;
            let room = v.max.saturating_sub(v.target);
            let n = ((remaining / cap).ceil() as u32).min(room).min(budget);
            if n > 0 {
                v.target += n;
                budget -= n;
                remaining -= n as f64 * cap;
                let _ = write!(
                    self.note,
                    "{}+{n} {} ({} per req/s)",
                    if added > 0 { ", " } else { "" },
                    v.variant.name,
                    F2(v.variant.cost / cap)
                );
                added += 1;
            }
        }
        if added == 0 {
            self.note
                .push_str("no variant can take a replica (at maxReplicas or in back-off)");
        } else {
            let _ = write!(self.note, " for {} req/s", F2(wanted));
            if remaining > 0.0 {
                let _ = write!(
                    self.note,
                    " ({} req/s short: step limit or maxReplicas)",
                    F2(remaining)
                );
            }
        }
        for (i, v) in seen.iter().filter(|v| !v.available).enumerate() {
            self.note
                .push_str(if i == 0 { "; in back-off: " } else { ", " });
            self.note.push_str(&v.variant.name);
        }
    }

    /// Removes up to `excess` req/s from the most expensive variants per capacity, keeping
    /// bounds and one replica per model. True when anything was removed. Says what after the
    /// note's words (a hold when nothing was).
    fn scale_down(&mut self, seen: &mut [Seen<'_>], excess: f64) -> bool {
        let mut order: Vec<usize> = (0..seen.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&seen[a], &seen[b]);
            b.cost_per_capacity()
                .total_cmp(&a.cost_per_capacity())
                .then(b.variant.name.cmp(&a.variant.name))
        });
        let mut total: u32 = seen.iter().map(|v| v.target).sum();
        let mut remaining = excess;
        let mut removed = 0;
        for i in order {
            let v = &mut seen[i];
            let cap = v.rps;
            let n = ((remaining / cap).floor() as u32)
                .min(v.target.saturating_sub(v.min))
                .min(total.saturating_sub(1));
            if n > 0 {
                v.target -= n;
                total -= n;
                remaining -= n as f64 * cap;
                let _ = write!(
                    self.note,
                    "{}-{n} {} ({} per req/s)",
                    if removed > 0 { ", " } else { "scale-down: " },
                    v.variant.name,
                    F2(v.variant.cost / cap)
                );
                removed += 1;
            }
        }
        if removed == 0 {
            self.decided_by = "hold";
            let _ = write!(
                self.note,
                "no change: {} req/s spare is less than one replica of any variant above its minimum",
                F2(excess)
            );
            return false;
        }
        self.decided_by = "scale-down";
        let _ = write!(self.note, " ({} req/s spare)", F2(excess));
        true
    }

    /// Swaps an expensive replica for cheaper ones: the cheap ones first, the expensive one
    /// once they are Ready.
    fn rebalance(
        &mut self,
        seen: &mut [Seen<'_>],
        state: &mut ModelState,
        needed: f64,
        capacity: f64,
    ) {
        if let Some(r) = state.rebalance.clone() {
            let to = seen.iter().find(|v| *v.variant.name == *r.to);
            let Some(from) = seen.iter().position(|v| *v.variant.name == *r.from) else {
                state.rebalance = None;
                return;
            };
            match to {
                Some(to) if to.available && to.ready >= r.to_target => {
                    let v = &mut seen[from];
                    if v.target > v.min {
                        v.target -= 1;
                        self.decided_by = "rebalance";
                        self.note = format!(
                            "rebalance: {} is Ready with {} replica(s), so -1 {}",
                            r.to, r.to_target, r.from
                        );
                    }
                    state.rebalance = None;
                }
                Some(to) if to.available && to.target >= r.to_target => {
                    self.hold(format_args!(
                        "rebalance: waiting for {} to be Ready before removing a replica of {}",
                        r.to, r.from
                    ));
                }
                _ => state.rebalance = None,
            }
            return;
        }
        let mut order: Vec<usize> = (0..seen.len()).collect();
        order.sort_by(|&a, &b| {
            seen[b]
                .cost_per_capacity()
                .total_cmp(&seen[a].cost_per_capacity())
        });
        for &e in &order {
            let expensive = &seen[e];
            if expensive.target <= expensive.min || expensive.ready == 0 {
                continue;
            }
            let without = capacity - expensive.rps;
            for &k in order.iter().rev() {
                let cheap = &seen[k];
                if k == e
                    || !cheap.available
                    || cheap.target >= cheap.max
                    || cheap.cost_per_capacity() >= expensive.cost_per_capacity()
                {
                    continue;
                }
                let n = ((needed - without).max(0.0) / cheap.rps).ceil() as u32;
                if n == 0
                    || cheap.target + n > cheap.max
                    || n as f64 * cheap.variant.cost >= expensive.variant.cost
                {
                    continue;
                }
                let (from, to) = (expensive.variant.name.clone(), cheap.variant.name.clone());
                seen[k].target += n;
                let note = format!(
                    "rebalance: +{n} {to} (cost {}) to replace one {from} (cost {}); {from} loses its replica once they are Ready",
                    n as f64 * seen[k].variant.cost,
                    seen[e].variant.cost
                );
                state.rebalance = Some(Rebalance {
                    from: from.to_string(),
                    to: to.to_string(),
                    to_target: seen[k].target,
                });
                self.decided_by = "rebalance";
                self.note = note;
                return;
            }
        }
    }

    /// Incomplete or missing metrics: never a scale-down; a scale-up only on evidence (a pod
    /// saturated by the saturation thresholds), one replica on the cheapest available variant.
    fn degraded(&mut self, model: &Model<'_>, seen: &mut [Seen<'_>], complete: bool, timed: bool) {
        let why = if !timed {
            "the snapshot has no time"
        } else if !complete {
            "metrics are missing (a ready variant without pods reporting, or without served rates)"
        } else {
            "no variant's capacity is known (configure capacityRps or let a pod serve)"
        };
        let starting: u32 = seen.iter().map(Seen::starting).sum();
        let evidence = seen
            .iter()
            .flat_map(|v| v.variant.pods.iter())
            .find(|p| is_saturated(p, model.config));
        self.decided_by = "degraded";
        match evidence {
            Some(pod) if starting == 0 => {
                let pick = seen
                    .iter_mut()
                    .filter(|v| v.available && v.target < v.max)
                    .min_by(|a, b| {
                        a.cost_per_capacity()
                            .total_cmp(&b.cost_per_capacity())
                            .then(a.variant.cost.total_cmp(&b.variant.cost))
                            .then(a.variant.name.cmp(&b.variant.name))
                    });
                if let Some(v) = pick {
                    v.target += 1;
                    self.note = format!(
                        "{why}: no scale-down; scale-up on evidence (pod {} saturated: kv {}, queue {}): +1 {}",
                        pod.name,
                        F2(pod.kv_cache_usage),
                        pod.queue_length,
                        v.variant.name
                    );
                    return;
                }
                self.note = format!(
                    "{why}: no scale-down; pod {} is saturated but no variant can take a replica",
                    pod.name
                );
            }
            _ => {
                self.note = format!(
                    "{why}: hold (no scale-down; no saturated pod, or replicas still starting)"
                )
            }
        }
    }
}

mod entries;
#[cfg(test)]
mod tests;
