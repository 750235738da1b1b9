//! The cycle: one decision round every `GLOBAL_OPT_INTERVAL`, never overlapping itself —
//! configuration from the cached ConfigMaps, one batched Prometheus collection, the snapshot,
//! `core::decide`, then per VA the gauges, actuation, status (only when it changed) and Events.
//! The controller is one runtime component (the leader runs it); it returns only on shutdown,
//! after finishing the cycle in flight (a collection still waiting on Prometheus is abandoned:
//! nothing has been acted on yet).

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource;
use kube::api::DynamicObject;
use kube::runtime::reflector::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

use super::actuate::{self, Mode, Plan};
use super::events::Events;
use super::metrics::{ReplicaMetrics, VariantLabels};
use super::settings::{Outcome, Settings, Source};
use super::snapshot::{self, Built, Cluster, Target, VariantNotes};
use super::status::{self, Collection, Observed};
use super::wake::{self, Waker};
use crate::api::VariantAutoscalingStatus;
use crate::cache::{ConfigMapNames, WorkloadCaches, variant_autoscaling_resource};
use crate::core::{Decision, Policy, Report};
use crate::leader::Leadership;
use crate::prometheus::client::PrometheusClient;
use crate::prometheus::collect::{ModelRequest, collect};
use crate::prometheus::promql::ModelKey;
use crate::runtime::Shutdown;

/// How many VAs' writes are in flight at once: a scale-up of many models at once is bounded by
/// the API server's latency, not by ours (docs/performance.md#controller-at-scale).
const WRITE_CONCURRENCY: usize = 32;

/// How long the first cycle with the GPU limiter on waits for the Node watch's first list.
const NODES_FIRST_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How often the ConfigMaps are re-read between cycles.
const CONFIG_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// How many snapshot/report pairs `--dump-snapshots` keeps.
pub const DUMPS_KEPT: usize = 20;

/// What the command line decides about the controller.
#[derive(Clone, Debug)]
pub struct Options {
    pub mode: Mode,
    pub policy: Policy,
    /// `CONTROLLER_INSTANCE`: only VAs labelled `wva.llmd.ai/controller-instance=<it>`.
    pub controller_instance: Option<String>,
    pub dump_dir: Option<PathBuf>,
    pub config_maps: ConfigMapNames,
    /// `WVA_SCALE_TO_ZERO=true`: scale-to-zero where the ConfigMap does not decide.
    pub scale_to_zero_default: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConfigMapLabel {
    config_map: String,
}

/// The controller's own counters (beyond upstream's four replica metrics).
#[derive(Clone)]
pub struct CycleMetrics {
    cycles: Counter,
    prometheus_failures: Counter,
    config_rejections: Family<ConfigMapLabel, Counter>,
    status_writes: Counter,
    scale_writes: Counter,
    prometheus_queries: Counter,
    duration: Histogram,
}

impl Default for CycleMetrics {
    fn default() -> Self {
        Self {
            cycles: Counter::default(),
            prometheus_failures: Counter::default(),
            config_rejections: Family::default(),
            status_writes: Counter::default(),
            scale_writes: Counter::default(),
            prometheus_queries: Counter::default(),
            duration: Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        }
    }
}

impl CycleMetrics {
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register("wva_cycles", "Decision cycles run", self.cycles.clone());
        registry.register(
            "wva_prometheus_failures",
            "Cycles whose Prometheus collection failed (every variant held)",
            self.prometheus_failures.clone(),
        );
        registry.register(
            "wva_config_rejections",
            "Invalid ConfigMap contents refused (the last valid configuration stays in force)",
            self.config_rejections.clone(),
        );
        registry.register(
            "wva_status_writes",
            "VariantAutoscaling status writes",
            self.status_writes.clone(),
        );
        registry.register(
            "wva_scale_writes",
            "Writes of a target's /scale subresource (direct actuation)",
            self.scale_writes.clone(),
        );
        registry.register(
            "wva_prometheus_queries",
            "PromQL queries sent (at most 3 per cycle whatever the number of models; 4 with --policy wva-next)",
            self.prometheus_queries.clone(),
        );
        registry.register(
            "wva_cycle_duration_seconds",
            "Time of one cycle: collection, snapshot, decision and writes",
            self.duration.clone(),
        );
    }
}

/// The controller.
pub struct Controller {
    client: kube::Client,
    variant_autoscalings: Store<DynamicObject>,
    workload: WorkloadCaches,
    prometheus: PrometheusClient,
    replica_metrics: ReplicaMetrics,
    metrics: CycleMetrics,
    events: Events,
    settings: Settings,
    options: Options,
    /// Set once the configuration has been applied (the readiness check).
    configured: Arc<std::sync::atomic::AtomicBool>,
    /// Cycles run and writes happen only while this says so.
    leadership: Leadership,
    /// Scale-from-zero, polled between cycles while leading.
    waker: Waker,
    /// What `wva-next` remembers between cycles (docs/algorithm.md#wva-next): in memory only,
    /// dropped when leadership is lost, rebuilt from the cluster by the next leader.
    next_state: Option<crate::core::next::State>,
}

pub(crate) fn unix_now() -> (i64, f64) {
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    (since.as_secs() as i64, since.as_secs_f64())
}

impl Controller {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: kube::Client,
        variant_autoscalings: Store<DynamicObject>,
        workload: WorkloadCaches,
        prometheus: PrometheusClient,
        replica_metrics: ReplicaMetrics,
        metrics: CycleMetrics,
        events: Events,
        options: Options,
        leadership: Leadership,
        waker: Waker,
    ) -> Self {
        Self {
            client,
            variant_autoscalings,
            workload,
            prometheus,
            replica_metrics,
            metrics,
            events,
            settings: Settings::new(options.scale_to_zero_default),
            options,
            configured: Arc::default(),
            leadership,
            waker,
            next_state: None,
        }
    }

    /// Ready once the configuration is loaded (the first cycle has applied the ConfigMaps).
    pub fn configured(&self) -> crate::runtime::Check {
        let flag = self.configured.clone();
        Arc::new(move || {
            if flag.load(std::sync::atomic::Ordering::Relaxed) {
                Ok(())
            } else {
                Err("the configuration has not been loaded yet (waiting for the caches)".into())
            }
        })
    }

    /// Runs cycles until shutdown: the first once every cache has synced, then one per
    /// interval (measured start to start; a cycle longer than the interval is followed by the
    /// next at once, never overlapped).
    pub async fn run(mut self, shutdown: Shutdown) -> Result<(), Infallible> {
        let synced = async {
            let _ = self.variant_autoscalings.wait_until_ready().await;
            let _ = self.workload.deployments.wait_until_ready().await;
            let _ = self.workload.pods.wait_until_ready().await;
            let stores = &self.workload.config_maps;
            for store in [&stores.main, &stores.saturation, &stores.scale_to_zero] {
                let _ = store.wait_until_ready().await;
            }
            if let Some(store) = &self.workload.autoscalers {
                let _ = store.wait_until_ready().await;
            }
        };
        tokio::select! {
            () = shutdown.requested() => return Ok(()),
            () = synced => {}
        }
        self.apply_settings();
        loop {
            // A follower keeps its configuration current (and its readiness true: every replica
            // serves admissions) while it waits to lead.
            while !self.leadership.is_leading() {
                let mut leadership = self.leadership.clone();
                tokio::select! {
                    () = shutdown.requested() => return Ok(()),
                    () = leadership.acquired() => {}
                    () = tokio::time::sleep(CONFIG_CHECK) => self.apply_settings(),
                }
            }
            tracing::info!(
                actuation = self.options.mode.name(),
                policy = self.options.policy.name(),
                "controller leading: cycles start"
            );
            self.lead(&shutdown).await;
            if shutdown.is_requested() {
                return Ok(());
            }
            self.replica_metrics.withdraw();
            // Another leader decided meanwhile: its windows, not ours, are current.
            self.next_state = None;
            tracing::warn!(
                "leadership lost: cycles stop and the replica gauges are withdrawn until this process leads again"
            );
        }
    }

    /// Cycles while leading; returns on shutdown or when leadership is lost.
    async fn lead(&mut self, shutdown: &Shutdown) {
        loop {
            let started = Instant::now();
            self.cycle(shutdown).await;
            if shutdown.is_requested() || !self.leadership.is_leading() {
                return;
            }
            // Idle: re-read the ConfigMaps every second (only changed data is parsed), so that
            // a shorter GLOBAL_OPT_INTERVAL takes effect now rather than after the old wait; poll
            // scale-from-zero whenever it is due.
            let mut config_check = Instant::now() + CONFIG_CHECK;
            loop {
                // Before the interval check: a cycle longer than the interval still leaves room
                // for one poll.
                if self.waker.due().is_some_and(|due| due <= Instant::now()) {
                    self.wake().await;
                }
                let next = started + self.settings.interval;
                if Instant::now() >= next {
                    break;
                }
                let wake = self.waker.due().unwrap_or(next);
                let mut leadership = self.leadership.clone();
                tokio::select! {
                    () = shutdown.requested() => return,
                    () = leadership.lost() => return,
                    () = tokio::time::sleep_until(next.min(config_check).min(wake).into()) => {}
                }
                if Instant::now() >= config_check {
                    self.apply_settings();
                    config_check = Instant::now() + CONFIG_CHECK;
                }
            }
        }
    }

    /// One scale-from-zero poll over the caches as they are now.
    async fn wake(&mut self) {
        if !self.waker.has_pools() {
            return;
        }
        let vas = self.selected_vas();
        let deployments = self.workload.deployments.state();
        let pods = self.workload.pods.state();
        let cx = wake::Context {
            client: &self.client,
            variant_autoscalings: &vas,
            deployments: &deployments,
            pods: &pods,
            saturation: &self.settings.saturation,
            events: &self.events,
            replica_metrics: &self.replica_metrics,
        };
        self.waker.poll(&cx).await;
    }

    /// Applies the cached ConfigMaps (only what changed is parsed and reported).
    fn apply_settings(&mut self) {
        let [main, saturation, scale_to_zero] = self.workload.config_maps.data();
        let outcome =
            self.settings
                .apply(main.as_ref(), saturation.as_ref(), scale_to_zero.as_ref());
        self.report_settings(outcome);
        self.configured
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// One cycle.
    pub async fn cycle(&mut self, shutdown: &Shutdown) {
        let started = Instant::now();
        self.cycle_steps(shutdown).await;
        self.metrics
            .duration
            .observe(started.elapsed().as_secs_f64());
    }

    async fn cycle_steps(&mut self, shutdown: &Shutdown) {
        let started = Instant::now();
        self.metrics.cycles.inc();
        let (now, now_f) = unix_now();
        self.apply_settings();

        let vas = self.selected_vas();
        let models = self.model_requests(&vas);
        if let (false, Ok(texts)) = (
            models.is_empty(),
            crate::prometheus::collect::queries(&models),
        ) {
            self.metrics
                .prometheus_queries
                .inc_by(texts.texts().len() as u64);
        }
        let collection = if models.is_empty() {
            Ok(Vec::new())
        } else {
            let mut leadership = self.leadership.clone();
            tokio::select! {
                () = shutdown.requested() => return,
                () = leadership.lost() => return,
                collected = collect(&self.prometheus, &models, now_f) => collected.map(|c| {
                    if let Some(error) = &c.served_rate_error {
                        tracing::warn!(%error, "served rates unknown: wva-next reads the data as incomplete (no scale-down)");
                    }
                    if let Some(error) = &c.waiting_error {
                        tracing::warn!(%error, "newest waiting counts unknown: wva-next reads each pod's largest over the minute");
                    }
                    c.models
                }),
            }
        };
        let collected_at = Instant::now();
        let failure = match &collection {
            Ok(_) => None,
            Err(error) => {
                self.metrics.prometheus_failures.inc();
                tracing::warn!(%error, "Prometheus collection failed: every variant holds (no scale-down on missing data)");
                Some(error.to_string())
            }
        };
        let mut samples = collection.unwrap_or_default();
        self.floor_request_counts(&mut samples);
        let deployments = self.workload.deployments.state();
        let pods = self.workload.pods.state();
        let nodes = if self.settings.saturation.default_entry().enable_limiter {
            let nodes = self.workload.nodes.nodes(NODES_FIRST_WAIT).await;
            if nodes.is_none() {
                tracing::warn!(
                    "GPU limiter on, but the node inventory is not available (the Node watch has not synced: can wva list nodes? see docs/operations.md); scale-ups are not limited this cycle"
                );
            }
            nodes
        } else {
            None
        };
        let mut built = snapshot::build(
            Cluster {
                variant_autoscalings: &vas,
                deployments: &deployments,
                pods: &pods,
                nodes: nodes.as_deref(),
                actuation: self.options.mode,
            },
            &samples,
            &self.settings.saturation,
            &self.settings.scale_to_zero,
            now,
        );
        if self.options.policy == Policy::WvaNext {
            built.snapshot.wva_next_state = self.next_state.take();
        }
        let built_at = Instant::now();
        let report = crate::core::decide(&built.snapshot, self.options.policy);
        self.next_state.clone_from(&report.wva_next_state);
        let decided_at = Instant::now();
        if let Some(dir) = &self.options.dump_dir {
            dump(dir, &built, &report);
        }
        let collection = match &failure {
            Some(error) => Collection::Failed(error),
            None => Collection::Collected,
        };
        let live = self.act(&vas, &built, &report, collection).await;
        tracing::debug!(
            collect_ms = (collected_at - started).as_secs_f64() * 1e3,
            snapshot_ms = (built_at - collected_at).as_secs_f64() * 1e3,
            decide_ms = (decided_at - built_at).as_secs_f64() * 1e3,
            act_ms = decided_at.elapsed().as_secs_f64() * 1e3,
            variants = built.snapshot.variants.len(),
            "cycle"
        );
        self.replica_metrics.retain(&live);
    }

    /// The cached VAs this controller instance manages.
    fn selected_vas(&self) -> Vec<Arc<DynamicObject>> {
        self.variant_autoscalings
            .state()
            .into_iter()
            .filter(|va| self.selected(va))
            .collect()
    }

    fn selected(&self, va: &DynamicObject) -> bool {
        match &self.options.controller_instance {
            None => true,
            Some(instance) => va
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(crate::api::CONTROLLER_INSTANCE_LABEL))
                .is_some_and(|v| v == instance),
        }
    }

    /// A model woken from zero within its retention period counts at least the requests it was
    /// woken for: they arrived within the period, and are not counted by Prometheus until they
    /// have been served — without this floor, the first cycle that sees the woken replica report
    /// could scale the model back to zero before it served them.
    fn floor_request_counts(&self, samples: &mut [crate::prometheus::collect::ModelSamples]) {
        let stz = &self.settings.scale_to_zero;
        for model in samples {
            if !stz.enabled(&model.namespace, &model.model_id) {
                continue;
            }
            let retention = std::time::Duration::from_nanos(
                stz.retention_period(&model.namespace, &model.model_id)
                    .max(0) as u64,
            );
            if let Some(floor) =
                self.waker
                    .request_floor(&model.namespace, &model.model_id, retention)
                && model.request_count.is_none_or(|count| count < floor)
            {
                tracing::debug!(namespace = %model.namespace, model = %model.model_id, floor, "request count floored: woken from zero within the retention period");
                model.request_count = Some(floor);
            }
        }
    }

    /// The models to collect: one per (namespace, modelID) of the VAs, with the request-count
    /// period when scale-to-zero is on. Names Prometheus cannot be asked about safely are left
    /// out (their VAs show MetricsMissing).
    fn model_requests(&self, vas: &[Arc<DynamicObject>]) -> Vec<ModelRequest> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for va in vas {
            let (Some(namespace), Some(model)) = (
                va.metadata.namespace.as_deref(),
                va.data
                    .pointer("/spec/modelID")
                    .and_then(serde_json::Value::as_str),
            ) else {
                continue;
            };
            if !seen.insert((namespace.to_owned(), model.to_owned())) {
                continue;
            }
            let key = ModelKey::new(namespace, model);
            if let Err(error) = key.check() {
                tracing::warn!(%error, namespace, model, "model not collected");
                continue;
            }
            let stz = &self.settings.scale_to_zero;
            let retention = stz
                .enabled(namespace, model)
                .then(|| stz.retention_period(namespace, model));
            out.push(ModelRequest {
                key,
                retention,
                served_rate: self.options.policy == Policy::WvaNext,
            });
        }
        out
    }

    /// Logs what applying the ConfigMaps found; a rejection also gets a Warning Event on the
    /// ConfigMap and counts in `wva_config_rejections_total`.
    fn report_settings(&self, outcome: Outcome) {
        for (source, problem) in &outcome.warnings {
            tracing::warn!(config_map = self.config_map_name(*source), %problem, "configuration warning");
        }
        for (source, problems) in &outcome.rejected {
            let name = self.config_map_name(*source);
            let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
            let text = text.join("; ");
            tracing::error!(config_map = name, problems = %text, "invalid configuration refused; the last valid configuration stays in force");
            self.metrics
                .config_rejections
                .get_or_create(&ConfigMapLabel {
                    config_map: name.to_owned(),
                })
                .inc();
            let stores = &self.workload.config_maps;
            let store = match source {
                Source::Main => &stores.main,
                Source::Saturation => &stores.saturation,
                Source::ScaleToZero => &stores.scale_to_zero,
            };
            if let Some(cm) = store.state().first() {
                self.events.warning(
                    &cm.object_ref(&()),
                    "InvalidConfiguration",
                    &cm.metadata.resource_version.clone().unwrap_or_default(),
                    format!("refused, the last valid configuration stays in force: {text}"),
                );
            }
        }
    }

    fn config_map_name(&self, source: Source) -> &str {
        let names = &self.options.config_maps;
        match source {
            Source::Main => &names.main,
            Source::Saturation => &names.saturation,
            Source::ScaleToZero => &names.scale_to_zero,
        }
    }

    /// Gauges, actuation, status and Events for every VA; returns the gauge series published.
    async fn act(
        &self,
        vas: &[Arc<DynamicObject>],
        built: &Built,
        report: &Report,
        collection: Collection<'_>,
    ) -> BTreeSet<VariantLabels> {
        let decisions: BTreeMap<(&str, &str), &Decision> = report
            .decisions
            .iter()
            .map(|d| ((&*d.namespace, &*d.name), d))
            .collect();
        let objects = crate::cache::by_name(vas);
        let cached = self.workload.deployments.state();
        let deployments = crate::cache::by_name(&cached);
        let autoscalers = self
            .workload
            .autoscalers
            .as_ref()
            .map(Store::state)
            .unwrap_or_default();
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        // Each VA's writes are independent: a few at a time, so that a cycle with many steps
        // is not a sequence of round trips.
        let work = built.notes.iter().filter_map(|notes| {
            let key = (notes.namespace.as_str(), notes.name.as_str());
            let va = objects.get(&key).copied()?;
            let decision = decisions.get(&key).copied();
            let deployment = decision.and_then(|d| {
                deployments
                    .get(&(&*notes.namespace, &*d.target_name))
                    .copied()
            });
            Some(self.act_one(
                notes,
                va,
                decision,
                deployment,
                &autoscalers,
                collection,
                &now,
            ))
        });
        let work: Vec<_> = work.collect();
        let published: Vec<Option<VariantLabels>> = futures::stream::iter(work)
            .buffer_unordered(WRITE_CONCURRENCY)
            .collect()
            .await;
        published.into_iter().flatten().collect()
    }

    /// Gauges, actuation, status and Events of one VA; the gauge series it published.
    #[allow(clippy::too_many_arguments)]
    async fn act_one(
        &self,
        notes: &VariantNotes,
        va: &DynamicObject,
        decision: Option<&Decision>,
        deployment: Option<&crate::cache::CachedDeployment>,
        autoscalers: &[Arc<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler>],
        collection: Collection<'_>,
        now: &Time,
    ) -> Option<VariantLabels> {
        // Leadership lost mid-cycle: no further write (the new leader's first cycle redoes it).
        if !self.leadership.is_leading() {
            return None;
        }
        let resource = variant_autoscaling_resource();
        let mut published = None;
        let reference = va.object_ref(&resource);
        let mut desired = None;
        let mut applied = None;
        let mut held = None;
        if let (Target::Found, Some(decision)) = (&notes.target, decision) {
            let spec = deployment.map_or(0, actuate::spec_replicas);
            let hpa = actuate::autoscaler_of(autoscalers, &notes.namespace, &decision.target_name);
            let plan = actuate::plan(self.options.mode, decision, spec, hpa);
            let target = decision.target_replicas;
            desired = Some(target);
            let labels = VariantLabels {
                variant_name: decision.target_name.to_string(),
                namespace: notes.namespace.clone(),
                accelerator_type: decision.accelerator.to_string(),
            };
            self.replica_metrics
                .publish(labels.clone(), decision.current_replicas, target);
            published = Some(labels);
            // A step: the decided count moved away from the one last recorded in status.
            let stepped = decision.metrics_available
                && decision.previous_desired != 0
                && target != decision.previous_desired;
            match &plan {
                Plan::Publish => {
                    applied = Some(self.options.mode == Mode::Metrics || spec == target);
                    if self.options.mode == Mode::Metrics && stepped {
                        self.step(&reference, decision, decision.previous_desired);
                    }
                }
                Plan::Scale { .. } if !self.leadership.is_leading() => {}
                // The status below records what became of it: a refusal that lasts costs one
                // refused request per cycle and no status write once recorded.
                Plan::Scale { from, to } => {
                    match actuate::scale(&self.client, &notes.namespace, &decision.target_name, *to)
                        .await
                    {
                        Ok(()) => {
                            self.metrics.scale_writes.inc();
                            applied = Some(true);
                            self.step(&reference, decision, *from);
                        }
                        Err(error) => {
                            tracing::warn!(%error, deployment = %decision.target_name, namespace = %notes.namespace, "cannot scale");
                            applied = Some(false);
                        }
                    }
                }
                Plan::Hold(why) => {
                    applied = Some(false);
                    held = Some(why.clone());
                    self.events.warning(
                        &reference,
                        status::REASON_HPA_CONFLICT,
                        hpa.unwrap_or_default(),
                        why.clone(),
                    );
                }
            }
        }
        for (pod, why) in &notes.stuck {
            self.events.warning(
                &reference,
                "StuckPod",
                pod,
                format!("pod {pod} is stuck ({why}): it does not hold the model in transition; scale-up goes to other variants while it lasts"),
            );
        }
        if let (Collection::Failed(error), Target::Found) = (collection, &notes.target) {
            self.events.warning(
                &reference,
                crate::api::conditions::REASON_PROMETHEUS_ERROR,
                "",
                format!(
                    "Prometheus query failed, holding (no scale-down on missing data): {error}"
                ),
            );
        }
        let current: VariantAutoscalingStatus = va
            .data
            .get("status")
            .and_then(|s| serde::Deserialize::deserialize(s).ok())
            .unwrap_or_default();
        let observed = Observed {
            generation: va.metadata.generation,
            notes,
            decision,
            collection,
            desired,
            applied,
            held: held.as_deref(),
        };
        if let Some(next) = status::desired_status(&current, &observed, now) {
            self.write_status(va, next).await;
        }
        published
    }

    /// An applied step: the counter and a Normal Event whose note is the decision's reason.
    fn step(&self, reference: &ObjectReference, decision: &Decision, from: u32) {
        let to = decision.target_replicas;
        let (direction, reason) = if to > from {
            ("up", "ScaledUp")
        } else {
            ("down", "ScaledDown")
        };
        let rule = match decision.steps.last().map(|s| s.stage) {
            Some("enforcer") => "enforcer",
            _ => "saturation",
        };
        self.replica_metrics
            .scaled(&decision.target_name, &decision.namespace, direction, rule);
        self.events.normal(
            reference,
            reason,
            format!(
                "Deployment {} {from} -> {to} replicas: {}",
                decision.target_name, decision.reason
            ),
        );
    }

    async fn write_status(&self, va: &DynamicObject, status: VariantAutoscalingStatus) {
        if !self.leadership.is_leading() {
            return;
        }
        let (Some(namespace), Some(name)) = (
            va.metadata.namespace.as_deref(),
            va.metadata.name.as_deref(),
        ) else {
            return;
        };
        match actuate::patch_status(&self.client, namespace, name, &status).await {
            Ok(_) => {
                self.metrics.status_writes.inc();
            }
            // Deleted meanwhile: nothing to say.
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(error) => {
                tracing::warn!(%error, namespace, name, "cannot write the VariantAutoscaling status");
            }
        }
    }
}

/// Writes `<unix-ms>-snapshot.json` and `<unix-ms>-report.json` into `dir` and keeps the last
/// [`DUMPS_KEPT`] pairs: the oldest go before the new pair is written, so the folder never
/// holds more (a reader counting it mid-cycle sees at most that many).
/// `wva analyze <snapshot file>` replays one to the same decisions.
fn dump(dir: &std::path::Path, built: &Built, report: &Report) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut snapshots: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with("-snapshot.json"))
            })
            .collect();
        snapshots.sort();
        let excess = (snapshots.len() + 1).saturating_sub(DUMPS_KEPT);
        for old in &snapshots[..excess] {
            let _ = std::fs::remove_file(old);
            let report = old
                .to_string_lossy()
                .replace("-snapshot.json", "-report.json");
            let _ = std::fs::remove_file(report);
        }
    }
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let write = |suffix: &str, text: String| {
        let path = dir.join(format!("{stamp:013}-{suffix}.json"));
        if let Err(error) = std::fs::write(&path, text) {
            tracing::warn!(%error, path = %path.display(), "cannot write a snapshot dump");
        }
    };
    write("snapshot", built.snapshot.to_json());
    write(
        "report",
        serde_json::to_string_pretty(report).unwrap_or_default(),
    );
}
