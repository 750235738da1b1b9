//! The process's shared caches: one watch per kind for the whole process, handed to every
//! consumer — VariantAutoscalings for the webhook and the controller; the controller's
//! Deployments, Pods, Nodes (the GPU inventory), HorizontalPodAutoscalers and its three
//! ConfigMaps. Objects are trimmed as
//! they enter a store (no `managedFields`, no `last-applied-configuration`; Pods and Deployments
//! keep only what the rules read), so memory grows with what is watched, not with time. The
//! lookups the rules use are plain functions over a store's objects, testable as data in → data
//! out. Reads only; never writes to the cluster.

use std::convert::Infallible;
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

use crate::runtime::{Check, Shutdown};

pub mod objects;

pub use objects::{CachedDeployment, CachedNode, CachedPod};

/// The annotation `kubectl apply` stores the whole previous object in.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The readiness check name of the VariantAutoscaling cache.
pub const VARIANT_AUTOSCALINGS: &str = "cache/variantautoscalings";

/// VariantAutoscalings as dynamic objects: a VA without `spec` passes the CRD schema and must
/// not break the watch the way a typed list would.
pub fn variant_autoscaling_resource() -> ApiResource {
    ApiResource {
        group: crate::api::GROUP.into(),
        version: crate::api::VERSION.into(),
        api_version: format!("{}/{}", crate::api::GROUP, crate::api::VERSION),
        kind: "VariantAutoscaling".into(),
        plural: "variantautoscalings".into(),
    }
}

/// Drops what no consumer reads and what makes objects large: managed fields and the
/// last-applied annotation (a full copy of the object).
pub fn trim<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED_ANNOTATION);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// A Pod's annotations are never read: dropped with the rest of [`trim`].
pub fn trim_pod(pod: &mut CachedPod) {
    trim(pod);
    pod.metadata.annotations = None;
}

/// A future the runtime runs as one component.
pub type Task = Pin<Box<dyn Future<Output = Result<(), Infallible>> + Send>>;

/// One watch: its name (`cache/<plural>`), the task feeding its store, and a readiness check
/// that passes once the first full list has arrived.
pub struct Watch {
    pub name: String,
    pub task: Task,
    pub synced: Check,
}

impl Watch {
    /// Runs the watch as a runtime component and adds its readiness check.
    pub fn start(self, runtime: &mut crate::runtime::Runtime) {
        runtime.readiness().add(self.name.clone(), self.synced);
        runtime.spawn(&self.name, self.task);
    }
}

/// What the caches see: every namespace, or one (`--watch-namespace`); every node, or those
/// that a label selector picks (`WVA_NODE_SELECTOR`, validated by the caller).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    pub namespace: Option<String>,
    pub node_selector: Option<String>,
}

impl Scope {
    fn api<K>(&self, client: Client) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match &self.namespace {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::all(client),
        }
    }
}

/// A reflector over `api` whose store holds objects as `modify` leaves them; the task returns
/// when `shutdown` is requested and logs (then retries, with backoff) failed watches.
fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    name: String,
    dynamic: K::DynamicType,
    modify: fn(&mut K),
    shutdown: Shutdown,
) -> (Store<K>, Watch)
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    let writer = reflector::store::Writer::new(dynamic);
    let store = writer.as_reader();
    let stream = reflector::reflector(writer, watcher(api, config).modify(modify))
        .default_backoff()
        .applied_objects();
    let what = name.clone();
    let task = async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            tokio::select! {
                () = shutdown.requested() => return Ok(()),
                event = stream.next() => match event {
                    Some(Err(error)) => tracing::warn!(%error, watch = %what, "watch failed; retrying"),
                    Some(Ok(_)) => {}
                    // The backoff stream never ends; if it did, waiting is all that is left.
                    None => shutdown.requested().await,
                },
            }
        }
    };
    let synced = synced(&store, &name);
    (
        store,
        Watch {
            name,
            task: Box::pin(task),
            synced,
        },
    )
}

/// Ready once the store has received its first full list.
fn synced<K>(store: &Store<K>, name: &str) -> Check
where
    K: Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    let store = store.clone();
    let what = name.strip_prefix("cache/").unwrap_or(name);
    let message = format!("the {what} cache has not synced yet (waiting for the first full list)");
    Arc::new(move || {
        if futures::FutureExt::now_or_never(store.wait_until_ready()).is_some() {
            Ok(())
        } else {
            Err(message.clone())
        }
    })
}

/// The stores of every watched kind; cheap to clone.
#[derive(Clone)]
pub struct Caches {
    pub variant_autoscalings: Store<DynamicObject>,
}

impl Caches {
    /// Starts nothing: returns the store and its watch, to be run as a runtime component.
    pub fn new(client: Client, scope: &Scope, shutdown: Shutdown) -> (Self, Watch) {
        let resource = variant_autoscaling_resource();
        let api: Api<DynamicObject> = match &scope.namespace {
            Some(ns) => Api::namespaced_with(client, ns, &resource),
            None => Api::all_with(client, &resource),
        };
        let (store, watch) = reflect(
            api,
            watcher::Config::default(),
            VARIANT_AUTOSCALINGS.into(),
            resource,
            trim,
            shutdown,
        );
        (
            Self {
                variant_autoscalings: store,
            },
            watch,
        )
    }
}

/// InferencePools of one group (`resource`) in the scope's namespaces, for scale-from-zero;
/// start it only when the API server serves that resource (a watch on a missing CRD fails
/// forever).
pub fn inference_pools(
    client: Client,
    scope: &Scope,
    resource: &ApiResource,
    shutdown: Shutdown,
) -> (Store<DynamicObject>, Watch) {
    let api: Api<DynamicObject> = match &scope.namespace {
        Some(ns) => Api::namespaced_with(client, ns, resource),
        None => Api::all_with(client, resource),
    };
    reflect(
        api,
        watcher::Config::default(),
        "cache/inferencepools".into(),
        resource.clone(),
        trim,
        shutdown,
    )
}

/// The controller's three ConfigMaps in its namespace, one store each (a store holds 0 or 1
/// object: each watch selects one name).
#[derive(Clone)]
pub struct ConfigMapStores {
    pub main: Store<ConfigMap>,
    pub saturation: Store<ConfigMap>,
    pub scale_to_zero: Store<ConfigMap>,
}

/// Where the controller's ConfigMaps live.
#[derive(Clone, Debug)]
pub struct ConfigMapNames {
    pub namespace: String,
    pub main: String,
    pub saturation: String,
    pub scale_to_zero: String,
}

impl ConfigMapStores {
    /// The data of each ConfigMap as the cache holds it now (`None`: no such ConfigMap).
    pub fn data(&self) -> [Option<std::collections::BTreeMap<String, String>>; 3] {
        let data = |store: &Store<ConfigMap>| {
            store
                .state()
                .first()
                .map(|cm| cm.data.clone().unwrap_or_default())
        };
        [
            data(&self.main),
            data(&self.saturation),
            data(&self.scale_to_zero),
        ]
    }
}

/// What the controller watches besides VariantAutoscalings.
#[derive(Clone)]
pub struct WorkloadCaches {
    pub deployments: Store<CachedDeployment>,
    pub pods: Store<CachedPod>,
    /// The GPU inventory's nodes (only their GPU labels and allocatable GPUs are kept),
    /// watched from the first cycle that runs the GPU limiter.
    pub nodes: LazyNodes,
    /// Watched in direct actuation only: an HPA on a target means wva must not fight it.
    pub autoscalers: Option<Store<HorizontalPodAutoscaler>>,
    pub config_maps: ConfigMapStores,
}

impl WorkloadCaches {
    /// The stores and their watches (run each as a runtime component, add each check).
    pub fn new(
        client: Client,
        scope: &Scope,
        config_maps: &ConfigMapNames,
        autoscalers: bool,
        shutdown: Shutdown,
    ) -> (Self, Vec<Watch>) {
        let mut watches = Vec::new();
        let (deployments, watch) = reflect(
            scope.api(client.clone()),
            watcher::Config::default(),
            "cache/deployments".into(),
            (),
            trim,
            shutdown.clone(),
        );
        watches.push(watch);
        let (pods, watch) = reflect(
            scope.api(client.clone()),
            watcher::Config::default(),
            "cache/pods".into(),
            (),
            trim_pod,
            shutdown.clone(),
        );
        watches.push(watch);
        let nodes = LazyNodes::new(
            client.clone(),
            scope.node_selector.clone(),
            shutdown.clone(),
        );
        let autoscalers = autoscalers.then(|| {
            let (store, watch) = reflect(
                scope.api(client.clone()),
                watcher::Config::default(),
                "cache/horizontalpodautoscalers".into(),
                (),
                trim,
                shutdown.clone(),
            );
            watches.push(watch);
            store
        });
        let mut config_map = |name: &str| {
            let (store, watch) = reflect(
                Api::<ConfigMap>::namespaced(client.clone(), &config_maps.namespace),
                watcher::Config::default().fields(&format!("metadata.name={name}")),
                format!("cache/configmaps/{name}"),
                (),
                trim,
                shutdown.clone(),
            );
            watches.push(watch);
            store
        };
        let config_maps = ConfigMapStores {
            main: config_map(&config_maps.main),
            saturation: config_map(&config_maps.saturation),
            scale_to_zero: config_map(&config_maps.scale_to_zero),
        };
        (
            Self {
                deployments,
                pods,
                nodes,
                autoscalers,
                config_maps,
            },
            watches,
        )
    }
}

/// The Node watch, started by the first caller that needs the GPU inventory: the limiter is off
/// by default, and a cluster-wide Node watch needs a ClusterRole that an install without the
/// limiter (or a namespaced one) does not grant — so nothing lists Nodes until it is turned on.
#[derive(Clone)]
pub struct LazyNodes {
    inner: Arc<LazyNodesInner>,
}

struct LazyNodesInner {
    client: Client,
    selector: Option<String>,
    shutdown: Shutdown,
    store: std::sync::OnceLock<Store<CachedNode>>,
}

impl LazyNodes {
    pub fn new(client: Client, selector: Option<String>, shutdown: Shutdown) -> Self {
        Self {
            inner: Arc::new(LazyNodesInner {
                client,
                selector,
                shutdown,
                store: std::sync::OnceLock::new(),
            }),
        }
    }

    /// The nodes once the watch has synced; `None` before (the first call starts the watch and
    /// waits up to `first_wait` for its first list) or while nodes cannot be listed.
    pub async fn nodes(&self, first_wait: std::time::Duration) -> Option<Vec<Arc<CachedNode>>> {
        let inner = &self.inner;
        let mut started = false;
        let store = inner.store.get_or_init(|| {
            started = true;
            let mut config = watcher::Config::default();
            if let Some(selector) = inner.selector.as_deref().filter(|s| !s.is_empty()) {
                config = config.labels(selector);
            }
            let (store, watch) = reflect(
                Api::all(inner.client.clone()),
                config,
                "cache/nodes".into(),
                (),
                CachedNode::trim,
                inner.shutdown.clone(),
            );
            tracing::info!(
                selector = inner.selector.as_deref().unwrap_or(""),
                "GPU limiter on: watching nodes for the GPU inventory"
            );
            tokio::spawn(watch.task);
            store
        });
        if started {
            let _ = tokio::time::timeout(first_wait, store.wait_until_ready()).await;
        }
        futures::FutureExt::now_or_never(store.wait_until_ready())
            .is_some()
            .then(|| store.state())
    }
}

/// A store's objects by (namespace, name), for lookups within one cycle.
pub fn by_name<K: Resource>(objects: &[Arc<K>]) -> std::collections::HashMap<(&str, &str), &K> {
    objects
        .iter()
        .filter_map(|o| {
            let meta = o.meta();
            Some((
                (meta.namespace.as_deref()?, meta.name.as_deref()?),
                o.as_ref(),
            ))
        })
        .collect()
}

/// The names of the VAs in `namespace` other than `except` whose `spec.scaleTargetRef` is
/// `kind`/`name`. Reads the objects in place; clones only the names it returns.
pub fn variant_autoscalings_targeting(
    objects: &[Arc<DynamicObject>],
    namespace: &str,
    kind: &str,
    name: &str,
    except: &str,
) -> Vec<String> {
    objects
        .iter()
        .filter(|va| va.metadata.namespace.as_deref() == Some(namespace))
        .filter(|va| va.metadata.name.as_deref() != Some(except))
        .filter(|va| {
            va.data
                .get("spec")
                .and_then(crate::api::target_ref)
                .is_some_and(|target| target == (kind, name))
        })
        .filter_map(|va| va.metadata.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn va(namespace: &str, name: &str, spec: serde_json::Value) -> Arc<DynamicObject> {
        let mut object = DynamicObject::new(name, &variant_autoscaling_resource())
            .within(namespace)
            .data(json!({}));
        if !spec.is_null() {
            object.data = json!({ "spec": spec });
        }
        Arc::new(object)
    }

    #[test]
    fn lookups_find_only_the_same_target_in_the_same_namespace() {
        let target = |name: &str| json!({"scaleTargetRef": {"kind": "Deployment", "name": name}, "modelID": "m"});
        let objects = vec![
            va("prod", "a", target("decode")),
            va("prod", "b", target("decode")),
            va("prod", "c", target("prefill")),
            va("dev", "d", target("decode")),
            va("prod", "no-spec", serde_json::Value::Null),
            va("prod", "bad-spec", json!({"scaleTargetRef": "decode"})),
        ];
        assert_eq!(
            variant_autoscalings_targeting(&objects, "prod", "Deployment", "decode", "a"),
            vec!["b".to_owned()]
        );
        assert_eq!(
            variant_autoscalings_targeting(&objects, "prod", "Deployment", "decode", "new"),
            vec!["a".to_owned(), "b".to_owned()]
        );
        assert!(
            variant_autoscalings_targeting(&objects, "prod", "StatefulSet", "decode", "x")
                .is_empty()
        );
    }

    #[test]
    fn pods_keep_no_annotations() {
        let mut pod: CachedPod = serde_json::from_value(json!({
            "metadata": {"name": "d-1", "labels": {"app": "d"}, "annotations": {"big": "x"},
                         "managedFields": [{"manager": "m"}],
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "d-abc", "uid": "u"}]},
            "spec": {"containers": [{"name": "vllm", "image": "v"}]},
            "status": {"phase": "Running"}
        }))
        .unwrap();
        trim_pod(&mut pod);
        assert!(pod.metadata.annotations.is_none() && pod.metadata.managed_fields.is_none());
        assert!(pod.metadata.labels.is_some() && pod.metadata.owner_references.is_some());
    }

    #[test]
    fn trimming_drops_managed_fields_and_the_last_applied_copy() {
        let mut object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "llmd.ai/v1alpha1", "kind": "VariantAutoscaling",
            "metadata": {"name": "a", "namespace": "prod",
                "annotations": {LAST_APPLIED_ANNOTATION: "{\"big\": true}", "team": "x"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
            "spec": {"modelID": "m"}
        }))
        .unwrap();
        trim(&mut object);
        assert!(object.metadata.managed_fields.is_none());
        assert_eq!(
            object.metadata.annotations,
            Some([("team".to_owned(), "x".to_owned())].into())
        );
        assert_eq!(object.data["spec"]["modelID"], "m");
        let mut only_last_applied: DynamicObject = serde_json::from_value(json!({
            "metadata": {"name": "b", "annotations": {LAST_APPLIED_ANNOTATION: "{}"}}
        }))
        .unwrap();
        trim(&mut only_last_applied);
        assert!(only_last_applied.metadata.annotations.is_none());
    }
}
