//! Scale-from-zero (upstream `internal/engines/scalefromzero`, with the InferencePool reconciler
//! and datastore; docs/algorithm.md#scale-from-zero): a model whose variants are all at zero is
//! invisible to the saturation cycle, so this wakes it when its endpoint picker (EPP) holds
//! requests for it — one variant, the cheapest that is available, 0 → 1 through `/scale`; if that
//! one's pod is stuck or not Ready within `maxPendingDuration`, the next cheapest. Runs on the
//! leader between cycles, every `--scale-from-zero-interval`. Costs nothing while no model is at
//! zero: pools are read from their cache, and EPPs are scraped only for sleeping models.
//!
//! Writes only what a wake-up needs: the target's `/scale`, the VA's status (desired 1, the
//! `ScaleFromZero` condition), an Event and the replica metrics. Never scales down, never touches
//! a model that has a replica.

pub mod epp;
pub mod pools;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::DynamicObject;
use kube::runtime::reflector::Store;
use kube::{Api, Resource};

use super::actuate;
use super::events::Events;
use super::metrics::{ReplicaMetrics, VariantLabels};
use super::pods::{accelerator, belongs_to, is_ready, stuck_reason};
use crate::api::VariantAutoscalingStatus;
use crate::api::conditions::{self, REASON_SCALE_FROM_ZERO, STATUS_TRUE, TYPE_OPTIMIZATION_READY};
use crate::cache::{CachedDeployment, CachedPod, variant_autoscaling_resource};
use crate::config::SaturationConfigSet;
use pools::{EndpointPool, PoolGroup};

/// How long an EPP Service's selector and metrics port are reused before they are read again.
const SERVICE_TTL: Duration = Duration::from_secs(30);

/// What `wva run` decides about scale-from-zero.
#[derive(Clone, Debug)]
pub struct Options {
    pub group: PoolGroup,
    /// Between two polls (`--scale-from-zero-interval`).
    pub interval: Duration,
    /// `EPP_METRIC_READER_BEARER_TOKEN`, sent to the EPP pods when set.
    pub bearer_token: Option<String>,
}

/// The cluster as one poll sees it.
pub struct Context<'a> {
    pub client: &'a kube::Client,
    /// The VAs this controller instance manages.
    pub variant_autoscalings: &'a [Arc<DynamicObject>],
    pub deployments: &'a [Arc<CachedDeployment>],
    pub pods: &'a [Arc<CachedPod>],
    pub saturation: &'a SaturationConfigSet,
    pub events: &'a Events,
    pub replica_metrics: &'a ReplicaMetrics,
}

/// A wake-up in progress: the variants woken so far (targets, in order) and when the last was.
#[derive(Clone, Debug)]
struct Waking {
    woken: Vec<String>,
    since: Instant,
}

/// A model's requests seen at its EPP when it was woken, kept for one scale-to-zero retention
/// period so the cycle does not put it back to sleep before those requests are counted.
#[derive(Clone, Copy, Debug)]
struct Woken {
    at: Instant,
    queued: f64,
}

/// A variant that could be woken.
struct Candidate<'a> {
    va: &'a DynamicObject,
    deployment: &'a CachedDeployment,
    target: &'a str,
    cost: f64,
}

/// The EPP Service's selector and metrics port, or why it cannot be read.
type ServiceInfo = Result<(BTreeMap<String, String>, u16), String>;

pub struct Waker {
    options: Options,
    /// `None`: scale-from-zero is off (no InferencePool CRD of the group is served).
    pools: Option<Store<DynamicObject>>,
    http: reqwest::Client,
    services: HashMap<(String, String), (Instant, ServiceInfo)>,
    waking: BTreeMap<(String, String), Waking>,
    woken: BTreeMap<(String, String), Woken>,
    /// Problems already logged (a pool without picker, a model without variants left), so that
    /// a poll every second does not repeat them.
    said: std::collections::BTreeSet<String>,
    last_poll: Option<Instant>,
}

impl Waker {
    pub fn new(options: Options, pools: Option<Store<DynamicObject>>) -> Self {
        Self {
            options,
            pools,
            http: reqwest::Client::new(),
            services: HashMap::new(),
            waking: BTreeMap::new(),
            woken: BTreeMap::new(),
            said: Default::default(),
            last_poll: None,
        }
    }

    /// Whether the watch exists (the CRD is served).
    pub fn enabled(&self) -> bool {
        self.pools.is_some()
    }

    /// Whether any InferencePool exists; `false` also counts as a poll (nothing to do until one
    /// does), so callers skip gathering the cluster's state.
    pub fn has_pools(&mut self) -> bool {
        let any = self.pools.as_ref().is_some_and(|s| !s.is_empty());
        if !any {
            self.last_poll = Some(Instant::now());
        }
        any
    }

    /// When the next poll is due (now, when none has run).
    pub fn due(&self) -> Option<Instant> {
        self.pools.as_ref()?;
        Some(
            self.last_poll
                .map_or_else(Instant::now, |t| t + self.options.interval),
        )
    }

    /// The requests a model woken within the last `retention` was woken for: a floor under its
    /// request count, so that scale-to-zero does not undo the wake-up before they are served
    /// and counted.
    pub fn request_floor(
        &self,
        namespace: &str,
        model_id: &str,
        retention: Duration,
    ) -> Option<f64> {
        let woken = self
            .woken
            .get(&(namespace.to_owned(), model_id.to_owned()))?;
        (woken.at.elapsed() < retention).then_some(woken.queued)
    }

    /// One poll: wakes what needs waking.
    pub async fn poll(&mut self, cx: &Context<'_>) {
        self.last_poll = Some(Instant::now());
        let Some(store) = &self.pools else {
            return;
        };
        let objects = store.state();
        if objects.is_empty() {
            return;
        }
        let mut pools = Vec::with_capacity(objects.len());
        for object in &objects {
            match pools::endpoint_pool(self.options.group, object) {
                Ok(pool) => pools.push(pool),
                Err(why) => {
                    let key = format!(
                        "pool/{}/{}",
                        object.metadata.namespace.as_deref().unwrap_or_default(),
                        object.metadata.name.as_deref().unwrap_or_default()
                    );
                    self.say(key, |k| tracing::warn!(pool = %k, %why, "InferencePool ignored by scale-from-zero"));
                }
            }
        }
        let (now, _) = super::cycle::unix_now();
        let models = models(cx);
        self.waking.retain(|k, _| models.contains_key(k));
        self.woken.retain(|k, _| models.contains_key(k));
        let mut queues: HashMap<(String, String), BTreeMap<String, f64>> = HashMap::new();
        for ((namespace, model_id), candidates) in &models {
            let key = (namespace.clone(), model_id.clone());
            let replicas = |c: &Candidate<'_>| actuate::spec_replicas(c.deployment);
            let ready = candidates.iter().any(|c| {
                c.deployment
                    .status
                    .as_ref()
                    .and_then(|s| s.ready_replicas)
                    .unwrap_or(0)
                    > 0
            });
            let asleep = candidates.iter().all(|c| replicas(c) == 0);
            if ready || (asleep && self.waking.contains_key(&key)) {
                // Awake (the saturation cycle's now), or put back to zero since: start afresh.
                self.waking.remove(&key);
            }
            let max_pending = cx
                .saturation
                .for_model(namespace, model_id)
                .1
                .max_pending_duration;
            let max_pending = Duration::from_nanos(max_pending.max(0) as u64);
            // Why the variant woken last will not serve (`None`: nothing woken yet); a model
            // that is neither asleep nor handing over is left alone.
            let handover: Option<String> = match self.waking.get(&key) {
                None if asleep => None,
                None => continue,
                Some(waking) => {
                    let last = waking.woken.last().map(String::as_str).unwrap_or_default();
                    match candidates.iter().find(|c| c.target == last) {
                        None => Some("it is gone".into()),
                        Some(c) => {
                            match unavailable(c.deployment, cx.pods, now, max_pending, waking.since)
                            {
                                Some(why) => Some(why),
                                None => continue,
                            }
                        }
                    }
                }
            };
            let Some(pool) = candidates.iter().find_map(|c| {
                let labels = c
                    .deployment
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.metadata.as_ref())
                    .and_then(|m| m.labels.clone())
                    .unwrap_or_default();
                pools::pool_for(&pools, namespace, &labels)
            }) else {
                continue;
            };
            let pool_key = (pool.namespace.clone(), pool.name.clone());
            if !queues.contains_key(&pool_key) {
                let queued = self.queued(cx, pool).await;
                queues.insert(pool_key.clone(), queued);
            }
            let queued = queues[&pool_key].get(model_id).copied().unwrap_or(0.0);
            if queued <= 0.0 {
                continue;
            }
            let tried = self
                .waking
                .get(&key)
                .map(|w| w.woken.clone())
                .unwrap_or_default();
            let pick = candidates
                .iter()
                .filter(|c| replicas(c) == 0 && !tried.iter().any(|t| t == c.target))
                .find(|c| replica_failure(c.deployment).is_none());
            let Some(pick) = pick else {
                self.say(format!("exhausted/{namespace}/{model_id}/{}", tried.len()), |_| {
                    tracing::warn!(namespace = %namespace, model = %model_id, queued, tried = ?tried, "requests wait at the endpoint picker but no variant of the model is left to wake")
                });
                continue;
            };
            let why = match (tried.last(), handover) {
                (Some(previous), Some(reason)) => format!(
                    "{queued} requests queued for model {model_id} and Deployment {previous} woken before is not available ({reason}); next cheapest variant (cost {})",
                    pick.cost
                ),
                _ => format!(
                    "{queued} requests queued for model {model_id} at endpoint picker {}/{}; cheapest variant (cost {})",
                    pool.namespace, pool.picker_service, pick.cost
                ),
            };
            if self.wake(cx, pick, &why).await {
                let waking = self.waking.entry(key.clone()).or_insert(Waking {
                    woken: Vec::new(),
                    since: Instant::now(),
                });
                waking.woken.push(pick.target.to_owned());
                waking.since = Instant::now();
                self.woken.insert(
                    key,
                    Woken {
                        at: Instant::now(),
                        queued,
                    },
                );
            }
        }
    }

    /// Σ queue per model at `pool`'s EPP pods (empty when they cannot be found or read).
    async fn queued(&mut self, cx: &Context<'_>, pool: &EndpointPool) -> BTreeMap<String, f64> {
        let key = (pool.namespace.clone(), pool.picker_service.clone());
        let fresh = self
            .services
            .get(&key)
            .is_some_and(|(at, _)| at.elapsed() < SERVICE_TTL);
        if !fresh {
            let api: Api<Service> = Api::namespaced(cx.client.clone(), &pool.namespace);
            let info = match api.get(&pool.picker_service).await {
                Ok(service) => pools::metrics_port(&service).map(|port| {
                    let selector = service.spec.and_then(|s| s.selector).unwrap_or_default();
                    (selector, port)
                }),
                Err(e) => Err(format!(
                    "cannot read Service {}/{}: {e}",
                    pool.namespace, pool.picker_service
                )),
            };
            self.services.insert(key.clone(), (Instant::now(), info));
        }
        let (selector, port) = match &self.services[&key].1 {
            Ok(info) => info.clone(),
            Err(why) => {
                let why = why.clone();
                self.say(format!("service/{}/{}/{why}", key.0, key.1), |_| {
                    tracing::warn!(pool = %pool.name, namespace = %pool.namespace, %why, "scale-from-zero cannot read the endpoint picker")
                });
                return BTreeMap::new();
            }
        };
        if selector.is_empty() {
            return BTreeMap::new();
        }
        let targets: Vec<epp::Target> = cx
            .pods
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(pool.namespace.as_str()))
            .filter(|p| p.metadata.deletion_timestamp.is_none() && is_ready(p))
            .filter(|p| {
                let labels = p.metadata.labels.as_ref();
                selector
                    .iter()
                    .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
            })
            .filter_map(|p| {
                Some(epp::Target {
                    pod: p.metadata.name.clone()?,
                    ip: p
                        .status
                        .as_ref()?
                        .pod_ip
                        .clone()
                        .filter(|ip| !ip.is_empty())?,
                    port,
                })
            })
            .collect();
        let (queued, failed) =
            epp::scrape(&self.http, &targets, self.options.bearer_token.as_deref()).await;
        for (pod, why) in failed {
            tracing::debug!(%pod, %why, "endpoint picker pod not scraped");
        }
        queued
    }

    /// Scales `pick` 0 → 1 and records it; false when the write failed.
    async fn wake(&self, cx: &Context<'_>, pick: &Candidate<'_>, why: &str) -> bool {
        let namespace = pick.va.metadata.namespace.as_deref().unwrap_or_default();
        let reference = pick.va.object_ref(&variant_autoscaling_resource());
        if let Err(error) = actuate::scale(cx.client, namespace, pick.target, 1).await {
            tracing::warn!(%error, namespace, target = pick.target, "scale-from-zero: cannot scale the Deployment");
            cx.events.warning(
                &reference,
                "ScaleFromZeroFailed",
                pick.target,
                format!(
                    "cannot scale Deployment {} from 0 to 1: {error}",
                    pick.target
                ),
            );
            return false;
        }
        tracing::info!(namespace, target = pick.target, %why, "scaled from zero");
        let (accelerator, _) = accelerator(
            pick.va.metadata.labels.as_ref(),
            pick.deployment
                .spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref()),
        );
        cx.replica_metrics
            .scaled(pick.target, namespace, "up", "scale-from-zero");
        // Published now, not at the next cycle: an HPA with minReplicas 0 must not scale the
        // woken Deployment back to the 0 it last read.
        cx.replica_metrics.publish(
            VariantLabels {
                variant_name: pick.target.to_owned(),
                namespace: namespace.to_owned(),
                accelerator_type: accelerator.clone(),
            },
            0,
            1,
        );
        cx.events.normal(
            &reference,
            "ScaledFromZero",
            format!("Deployment {} 0 -> 1 replica: {why}", pick.target),
        );
        self.write_status(cx, pick.va, accelerator, why).await;
        true
    }

    async fn write_status(
        &self,
        cx: &Context<'_>,
        va: &DynamicObject,
        accelerator: String,
        why: &str,
    ) {
        let (Some(namespace), Some(name)) = (
            va.metadata.namespace.as_deref(),
            va.metadata.name.as_deref(),
        ) else {
            return;
        };
        let mut status: VariantAutoscalingStatus = va
            .data
            .get("status")
            .and_then(|s| serde::Deserialize::deserialize(s).ok())
            .unwrap_or_default();
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        status.desired_optimized_alloc = Some(crate::api::OptimizedAlloc {
            last_run_time: Some(now.clone()),
            accelerator,
            num_replicas: 1,
        });
        conditions::set_condition(
            &mut status.conditions,
            TYPE_OPTIMIZATION_READY,
            STATUS_TRUE,
            REASON_SCALE_FROM_ZERO,
            &format!("scaled from zero: {why}"),
            va.metadata.generation,
            &now,
        );
        if let Err(error) = actuate::patch_status(cx.client, namespace, name, &status).await {
            tracing::warn!(%error, namespace, name, "scale-from-zero: cannot write the VariantAutoscaling status");
        }
    }

    /// Logs once per `key`.
    fn say(&mut self, key: String, log: impl FnOnce(&str)) {
        if self.said.len() > 10_000 {
            self.said.clear();
        }
        if !self.said.contains(&key) {
            log(&key);
            self.said.insert(key);
        }
    }
}

/// Whether InferencePools of `group` can be listed where wva watches (`namespace`, or every
/// namespace): `Ok(false)` when the API server does not serve them (no CRD), `Err` when the list
/// failed otherwise (a 403 names the missing permission). One list of at most one object, in the
/// same scope as the watch — a discovery request would be cluster-wide.
pub async fn pools_served(
    client: &kube::Client,
    namespace: Option<&str>,
    group: PoolGroup,
) -> Result<bool, kube::Error> {
    let resource = group.resource();
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    match api
        .list_metadata(&kube::api::ListParams::default().limit(1))
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Each model's variants that could be woken, cheapest first (cost, then Deployment name): VAs
/// with a Deployment target that exists, neither being deleted.
fn models<'a>(cx: &'a Context<'_>) -> BTreeMap<(String, String), Vec<Candidate<'a>>> {
    let deployments = crate::cache::by_name(cx.deployments);
    let mut models: BTreeMap<(String, String), Vec<Candidate<'a>>> = BTreeMap::new();
    for va in cx.variant_autoscalings {
        if va.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(namespace) = va.metadata.namespace.as_deref() else {
            continue;
        };
        let spec = va.data.get("spec");
        let Some(("Deployment", target)) = spec.and_then(crate::api::target_ref) else {
            continue;
        };
        let Some(model_id) = spec
            .and_then(|s| s.get("modelID"))
            .and_then(serde_json::Value::as_str)
            .filter(|m| !m.is_empty())
        else {
            continue;
        };
        let Some(deployment) = deployments.get(&(namespace, target)).copied() else {
            continue;
        };
        if deployment.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let cost = crate::api::parse_variant_cost(
            spec.and_then(|s| s.get("variantCost"))
                .and_then(serde_json::Value::as_str),
        );
        let list = models
            .entry((namespace.to_owned(), model_id.to_owned()))
            .or_default();
        if !list.iter().any(|c| c.target == target) {
            list.push(Candidate {
                va,
                deployment,
                target,
                cost,
            });
        }
    }
    for list in models.values_mut() {
        list.sort_by(|a, b| {
            a.cost
                .total_cmp(&b.cost)
                .then_with(|| a.target.cmp(b.target))
        });
    }
    models
}

/// Why a woken variant will not serve: a stuck pod, a ReplicaSet that cannot create pods, or no
/// Ready replica `max_pending` after the wake-up. `None` while it may still come up.
fn unavailable(
    deployment: &CachedDeployment,
    pods: &[Arc<CachedPod>],
    now: i64,
    max_pending: Duration,
    since: Instant,
) -> Option<String> {
    if let Some(why) = replica_failure(deployment) {
        return Some(why);
    }
    let stuck = pods
        .iter()
        .filter(|p| belongs_to(p, deployment))
        .find_map(|p| {
            stuck_reason(p, now, max_pending.as_secs())
                .map(|r| format!("pod {} {r}", p.metadata.name.as_deref().unwrap_or_default()))
        });
    if stuck.is_some() {
        return stuck;
    }
    (since.elapsed() > max_pending).then(|| {
        format!(
            "no Ready replica {}s after the wake-up (maxPendingDuration)",
            max_pending.as_secs()
        )
    })
}

/// The Deployment's `ReplicaFailure=True` condition, in words.
fn replica_failure(deployment: &CachedDeployment) -> Option<String> {
    deployment
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "ReplicaFailure" && c.status == "True")
        .map(|c| {
            format!(
                "ReplicaFailure: {}",
                c.message
                    .as_deref()
                    .or(c.reason.as_deref())
                    .unwrap_or("pods cannot be created")
            )
        })
}
