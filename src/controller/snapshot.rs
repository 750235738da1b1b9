//! Snapshot building (pure): the cached VariantAutoscalings, Deployments and Pods plus one
//! cycle's Prometheus collection in, the decision core's [`Snapshot`] out — with, per VA, what the
//! snapshot cannot carry (target missing, accelerator source, stuck pods and why) for conditions
//! and events. No IO, no clock: the caller passes "now".

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use kube::api::DynamicObject;

use super::actuate::Mode;
use super::pods::{Life, StuckReason, accelerator, belongs_to, life, stuck_reason};
use crate::cache::{CachedDeployment, CachedNode, CachedPod};
use crate::config::{SaturationConfigSet, ScaleToZeroConfigSet};
use crate::core::{PodMetrics, ReadyPod, Snapshot, StartingPod, Text, Variant};
use crate::prometheus::collect::ModelSamples;

/// The cached objects of one cycle.
#[derive(Clone, Copy)]
pub struct Cluster<'a> {
    pub variant_autoscalings: &'a [Arc<DynamicObject>],
    pub deployments: &'a [Arc<CachedDeployment>],
    pub pods: &'a [Arc<CachedPod>],
    /// The GPU inventory's nodes when the limiter is on and they are known; `None` leaves the
    /// snapshot without an inventory (the limiter does not run).
    pub nodes: Option<&'a [Arc<CachedNode>]>,
    /// Where the desired count in flight is read: in `metrics` mode the VA's
    /// `status.desiredOptimizedAlloc.numReplicas` (what the HPA converges to, as upstream); in
    /// `direct` mode the target's `spec.replicas`, which wva itself wrote — so a leader that died
    /// between its `/scale` write and its status write leaves no stale count behind for the next
    /// leader to "restore".
    pub actuation: Mode,
}

/// What became of a VA's target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Found,
    /// No Deployment of that name in the VA's namespace.
    NotFound(String),
    /// The spec names no usable target or model (admitted before the webhook, or edited around
    /// it); the message says what is missing.
    Invalid(String),
    /// Another VA (named) already targets this Deployment; only the first by name is decided.
    Duplicate(String),
}

/// What the snapshot cannot say about one VA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VariantNotes {
    pub namespace: String,
    pub name: String,
    pub target: Target,
    /// Where the accelerator came from: `label`, `nodeSelector`, `nodeAffinity` or `unknown`.
    pub accelerator_source: &'static str,
    /// Stuck pods that report no metrics, with the reason.
    pub stuck: Vec<(String, StuckReason)>,
    /// Pods of the target that report metrics (fresh ones).
    pub reporting: usize,
    /// Pods whose latest samples are stale (older than the staleness limit).
    pub stale: usize,
    /// Pods of the target (as the cache holds them).
    pub pods: usize,
}

/// A snapshot and its notes.
#[derive(Clone, Debug, PartialEq)]
pub struct Built {
    pub snapshot: Snapshot,
    pub notes: Vec<VariantNotes>,
}

fn text<'a>(object: &'a DynamicObject, pointer: &str) -> Option<&'a str> {
    object
        .data
        .pointer(pointer)
        .and_then(serde_json::Value::as_str)
}

/// Pods by the Deployment their owner ReplicaSet's name points to (`<deployment>-<hash>`), and
/// per namespace the pods without a controller owner (they may match any selector). Only
/// candidates: [`belongs_to`] still decides.
struct PodIndex<'a> {
    owned: HashMap<&'a str, HashMap<&'a str, Vec<&'a CachedPod>>>,
    unowned: HashMap<&'a str, Vec<&'a CachedPod>>,
}

impl<'a> PodIndex<'a> {
    fn new(pods: &'a [Arc<CachedPod>]) -> Self {
        let mut index = Self {
            owned: HashMap::new(),
            unowned: HashMap::new(),
        };
        for pod in pods.iter().map(Arc::as_ref) {
            let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
            let owner = pod
                .metadata
                .owner_references
                .as_deref()
                .unwrap_or_default()
                .iter()
                .find(|o| o.controller == Some(true));
            match owner {
                None => index.unowned.entry(namespace).or_default().push(pod),
                Some(owner) => {
                    if let Some((deployment, _hash)) = owner.name.rsplit_once('-') {
                        index
                            .owned
                            .entry(namespace)
                            .or_default()
                            .entry(deployment)
                            .or_default()
                            .push(pod);
                    }
                }
            }
        }
        index
    }

    fn candidates(&self, namespace: &str, deployment: &str) -> Vec<&'a CachedPod> {
        let owned = self.owned.get(namespace).and_then(|d| d.get(deployment));
        let unowned = self.unowned.get(namespace);
        owned
            .into_iter()
            .chain(unowned)
            .flatten()
            .copied()
            .collect()
    }
}

/// Builds the snapshot. VAs being deleted are left out; so is a VA whose target is missing,
/// invalid or taken by another VA (its notes say which). `now` is Unix seconds.
pub fn build(
    cluster: Cluster<'_>,
    metrics: &[ModelSamples],
    saturation_config: &SaturationConfigSet,
    scale_to_zero_config: &ScaleToZeroConfigSet,
    now: i64,
) -> Built {
    let mut vas: Vec<&DynamicObject> = cluster
        .variant_autoscalings
        .iter()
        .map(Arc::as_ref)
        .filter(|va| va.metadata.deletion_timestamp.is_none())
        .collect();
    let key = |va: &DynamicObject| {
        (
            va.metadata.namespace.clone().unwrap_or_default(),
            va.metadata.name.clone().unwrap_or_default(),
        )
    };
    vas.sort_by_key(|va| key(va));
    let samples: BTreeMap<(&str, &str), &ModelSamples> = metrics
        .iter()
        .map(|m| ((m.namespace.as_str(), m.model_id.as_str()), m))
        .collect();
    // Indexes built once per cycle: without them a cycle is O(VAs x pods).
    let deployments = crate::cache::by_name(cluster.deployments);
    let pods_index = PodIndex::new(cluster.pods);
    let mut taken: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut variants = Vec::new();
    let mut notes = Vec::new();
    let mut request_counts = BTreeMap::new();
    let limiter = saturation_config.default_entry().enable_limiter && cluster.nodes.is_some();
    let mut variant_pods: HashSet<(&str, &str)> = HashSet::new();
    for va in vas {
        let (namespace, name) = key(va);
        let mut note = VariantNotes {
            namespace: namespace.clone(),
            name: name.clone(),
            target: Target::Found,
            accelerator_source: "unknown",
            stuck: Vec::new(),
            reporting: 0,
            stale: 0,
            pods: 0,
        };
        let spec = va.data.get("spec");
        let target = spec.and_then(crate::api::target_ref);
        let model_id = text(va, "/spec/modelID").filter(|m| !m.is_empty());
        let (target_name, model_id) = match (target, model_id) {
            (Some(("Deployment", target)), Some(model)) if !target.is_empty() => (target, model),
            (Some((kind, _)), Some(_)) if kind != "Deployment" => {
                note.target = Target::Invalid(format!(
                    "spec.scaleTargetRef.kind {kind:?} is not supported (Deployment only)"
                ));
                notes.push(note);
                continue;
            }
            (_, None) => {
                note.target = Target::Invalid("spec.modelID is missing or empty".into());
                notes.push(note);
                continue;
            }
            _ => {
                note.target = Target::Invalid("spec.scaleTargetRef.name is missing".into());
                notes.push(note);
                continue;
            }
        };
        if let Some(first) = taken.get(&(namespace.clone(), target_name.to_owned())) {
            note.target = Target::Duplicate(first.clone());
            notes.push(note);
            continue;
        }
        let Some(deployment) = deployments.get(&(namespace.as_str(), target_name)).copied() else {
            note.target = Target::NotFound(target_name.to_owned());
            notes.push(note);
            continue;
        };
        taken.insert((namespace.clone(), target_name.to_owned()), name.clone());

        let (accelerator_name, source) = accelerator(
            va.metadata.labels.as_ref(),
            deployment
                .spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref()),
        );
        note.accelerator_source = source;
        let entry = saturation_config.for_model(&namespace, model_id).1;
        let max_pending_seconds = (entry.max_pending_duration / 1_000_000_000).max(0) as u64;
        let model_samples = samples.get(&(namespace.as_str(), model_id));
        let mut pods = Vec::new();
        let mut reporting_names = BTreeSet::new();
        let mut stuck = Vec::new();
        let (mut starting_pods, mut ready_pods) = (Vec::new(), Vec::new());
        let mut own: Vec<&CachedPod> = pods_index
            .candidates(&namespace, target_name)
            .into_iter()
            .filter(|p| belongs_to(p, deployment))
            .collect();
        own.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        note.pods = own.len();
        if limiter {
            variant_pods.extend(own.iter().map(|p| {
                (
                    p.metadata.namespace.as_deref().unwrap_or_default(),
                    p.metadata.name.as_deref().unwrap_or_default(),
                )
            }));
        }
        for pod in own {
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            let life = life(pod, now);
            if let Life::Ready(Some(times)) = life {
                ready_pods.push(ReadyPod {
                    name: pod_name.clone(),
                    startup_seconds: times.startup,
                    ready_for_seconds: Some(times.ready_for),
                });
            }
            let sample = model_samples.and_then(|m| m.pods.get(&pod_name));
            if sample.is_some_and(|s| s.stale) {
                note.stale += 1;
            }
            let sample = sample
                .filter(|s| !s.stale && (s.kv_cache_usage.is_some() || s.queue_length.is_some()));
            let stuck_now = match sample {
                Some(_) => None,
                None => stuck_reason(pod, now, max_pending_seconds),
            };
            if let (Life::Starting(age_seconds), None) = (life, &stuck_now) {
                starting_pods.push(StartingPod {
                    name: pod_name.clone(),
                    age_seconds,
                });
            }
            match sample {
                // A missing one of the two counts as 0, as upstream's CollectReplicaMetrics.
                Some(s) => {
                    reporting_names.insert(pod_name.clone());
                    pods.push(PodMetrics {
                        name: pod_name.into(),
                        kv_cache_usage: s.kv_cache_usage.unwrap_or(0.0),
                        queue_length: s.queue_length.unwrap_or(0),
                        // Collected for wva-next only.
                        served_rps: s.served_rps,
                        waiting: s.waiting,
                    });
                }
                None => {
                    if let Some(reason) = stuck_now {
                        stuck.push((pod_name, reason));
                    }
                }
            }
        }
        let status = deployment.status.as_ref();
        let replicas = status.and_then(|s| s.replicas).unwrap_or(0).max(0) as u32;
        let ready_replicas = status.and_then(|s| s.ready_replicas).unwrap_or(0).max(0) as u32;
        // `spec.replicas` absent means 1 (the API server's default).
        let spec_replicas = deployment
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1)
            .max(0) as u32;
        let current = if replicas == 0 {
            spec_replicas
        } else {
            replicas
        };
        let previous_desired = match cluster.actuation {
            Mode::Direct => spec_replicas,
            Mode::Metrics => va
                .data
                .pointer("/status/desiredOptimizedAlloc/numReplicas")
                .and_then(serde_json::Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
        };
        if let Some(count) = model_samples.and_then(|m| m.request_count) {
            request_counts.insert((namespace.clone(), model_id.to_owned()), count);
        }
        note.reporting = reporting_names.len();
        note.stuck = stuck;
        // Upstream's GPUsPerReplica: the template's GPU requests, 0 counting as 1.
        let gpus_per_replica = deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .map_or(0, |t| t.container_gpus)
            .clamp(1, u64::from(u32::MAX)) as u32;
        variants.push(Variant {
            name: Text::from(name.as_str()),
            namespace: Text::from(namespace.as_str()),
            model_id: Text::from(model_id),
            target_name: Text::from(target_name),
            accelerator: accelerator_name.into(),
            cost: crate::api::parse_variant_cost(text(va, "/spec/variantCost")),
            spec_replicas,
            replicas,
            ready_replicas,
            previous_desired,
            stuck_replicas: (note.stuck.len() as u32).min(current),
            gpus_per_replica,
            min_replicas: 0,
            max_replicas: None,
            starting_pods,
            ready_pods,
            pods,
        });
        notes.push(note);
    }
    Built {
        snapshot: Snapshot {
            saturation_config: saturation_config.clone(),
            scale_to_zero_config: scale_to_zero_config.clone(),
            request_counts,
            variants,
            gpu_inventory: cluster
                .nodes
                .filter(|_| limiter)
                .map(|nodes| super::inventory::gpu_inventory(nodes, cluster.pods, &variant_pods)),
            time: Some(now as f64),
            wva_next_state: None,
        },
        notes,
    }
}

#[cfg(test)]
mod tests;
