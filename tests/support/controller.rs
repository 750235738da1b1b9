//! The controller tier's scene: a namespace with vLLM-shaped Deployments and their VAs on the
//! real control plane, a controller namespace with wva's ConfigMaps, a real Prometheus scraping
//! an exporter that reports for the pods that exist, a "kubelet" that makes new pods Ready
//! (unless a test holds them) and completes deletions, and `wva run` as a process watching only
//! this scene's namespace (so that scenes run side by side).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::{Api, Client};
use serde_json::{Value, json};

use super::control_plane::{AuditedRequest, ControlPlane, control_plane, set_pod_ready, wait_for};
use super::process::temp_dir;
use super::prometheus::{Exporter, Prometheus, line};

pub const MODEL: &str = "meta/llama-3.1-8b";

/// The controller's ServiceAccount in `config/rbac/controller.yaml`.
pub const CONTROLLER_SA: &str = "workload-variant-autoscaler-controller-manager";

pub fn va_resource() -> ApiResource {
    ApiResource {
        group: "llmd.ai".into(),
        version: "v1alpha1".into(),
        api_version: "llmd.ai/v1alpha1".into(),
        kind: "VariantAutoscaling".into(),
        plural: "variantautoscalings".into(),
    }
}

/// Load per Deployment, in KV-cache units: each Ready pod reports `min(1, load / ready pods)`.
type Loads = Arc<Mutex<BTreeMap<String, f64>>>;
/// The model each Deployment serves (default [`MODEL`]).
type Models = Arc<Mutex<BTreeMap<String, String>>>;
/// Requests served so far per Deployment: each Ready pod reports it as
/// `vllm:request_success_total` (only for Deployments given a count).
type Served = Arc<Mutex<BTreeMap<String, f64>>>;
/// Requests/s served per Deployment, shared by its Ready pods: each reports its own
/// `vllm:request_success_total` growing at its share (only for Deployments given a rate).
type Rates = Arc<Mutex<BTreeMap<String, f64>>>;

pub struct Scene {
    pub cp: &'static ControlPlane,
    pub client: Client,
    /// The workloads' namespace.
    pub ns: String,
    /// The controller namespace (POD_NAMESPACE) with the ConfigMaps.
    pub sys: String,
    pub exporter: Exporter,
    pub prometheus: Prometheus,
    loads: Loads,
    models: Models,
    served: Served,
    rates: Rates,
    /// Deployments (by `app` label) whose pods the kubelet does not make Ready: pods already
    /// Ready stay so, new ones wait (not Ready, no metrics).
    held: Arc<Mutex<BTreeSet<String>>>,
    kubelet: tokio::task::JoinHandle<()>,
}

impl Drop for Scene {
    fn drop(&mut self) {
        self.kubelet.abort();
    }
}

impl Scene {
    /// A scene whose main ConfigMap sets `GLOBAL_OPT_INTERVAL` to `interval` (a Go duration).
    pub async fn new(prefix: &str, interval: &str) -> Self {
        Self::new_with(prefix, interval, Duration::from_millis(300)).await
    }

    /// [`Scene::new`] whose kubelet and exporter pass every `period` (larger scenes need longer).
    pub async fn new_with(prefix: &str, interval: &str, period: Duration) -> Self {
        let cp = control_plane();
        cp.install_crd();
        let client = cp.admin_client().await;
        let ns = cp.fresh_namespace(&client, prefix).await;
        let sys = cp.fresh_namespace(&client, &format!("{prefix}-sys")).await;
        let exporter = Exporter::start();
        let prometheus = Prometheus::start(&ns, &[exporter.addr], None);
        let loads: Loads = Arc::default();
        let models: Models = Arc::default();
        let served: Served = Arc::default();
        let rates: Rates = Arc::default();
        let held: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let shared = exporter.clone();
        let kubelet = tokio::spawn(kubelet(
            Kubelet {
                client: client.clone(),
                ns: ns.clone(),
                loads: loads.clone(),
                models: models.clone(),
                served: served.clone(),
                rates: rates.clone(),
                held: held.clone(),
                period,
            },
            move |text: &str| shared.set(text),
        ));
        let scene = Self {
            cp,
            client,
            ns,
            sys,
            exporter,
            prometheus,
            loads,
            models,
            served,
            rates,
            held,
            kubelet,
        };
        scene
            .config_map(
                wva::config::prometheus::MAIN_CONFIG_MAP_NAME,
                json!({"GLOBAL_OPT_INTERVAL": interval}),
            )
            .await;
        scene
            .config_map(
                wva::config::saturation::CONFIG_MAP_NAME,
                json!({"default": "kvCacheThreshold: 0.8\nqueueLengthThreshold: 5\nkvSpareTrigger: 0.1\nqueueSpareTrigger: 3\n"}),
            )
            .await;
        scene
    }

    /// Creates or replaces a ConfigMap in the controller namespace.
    pub async fn config_map(&self, name: &str, data: Value) {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.sys);
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": name}, "data": data})).unwrap();
        api.patch(
            name,
            &PatchParams::apply("wva-test").force(),
            &Patch::Apply(&cm),
        )
        .await
        .unwrap();
    }

    /// A Deployment `name` (pods labelled `app=<name>`) and its VA (same name) for [`MODEL`].
    pub async fn variant(&self, name: &str, replicas: i32, cost: &str) {
        self.deployment(name, replicas).await;
        self.va(name, name, cost).await;
    }

    pub async fn deployment(&self, name: &str, replicas: i32) {
        self.deployment_with_gpus(name, replicas, 0).await;
    }

    /// A Deployment whose vLLM container requests `gpus` NVIDIA GPUs (none when 0).
    pub async fn deployment_with_gpus(&self, name: &str, replicas: i32, gpus: u32) {
        self.deployment_full(name, replicas, gpus, json!({})).await;
    }

    /// A Deployment whose pod template also carries `labels` (an InferencePool's selector).
    pub async fn deployment_full(&self, name: &str, replicas: i32, gpus: u32, labels: Value) {
        let mut template_labels = labels;
        template_labels["app"] = name.into();
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &self.ns);
        let mut container = json!({"name": "vllm", "image": "vllm/vllm-openai:v0.11.0"});
        if gpus > 0 {
            let gpus = json!({"nvidia.com/gpu": gpus.to_string()});
            container["resources"] = json!({"requests": gpus, "limits": gpus});
        }
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": template_labels},
                                  "spec": {"containers": [container]}}}
        }))
        .unwrap();
        api.create(&PostParams::default(), &d).await.unwrap();
    }

    /// A node `name` labelled with `labels` offering `gpus` GPUs (`status.allocatable`); the
    /// caller deletes it (nodes are cluster-wide, scenes are not).
    pub async fn gpu_node(&self, name: &str, labels: Value, gpus: u32) {
        let api: Api<k8s_openapi::api::core::v1::Node> = Api::all(self.client.clone());
        let node =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap();
        api.create(&PostParams::default(), &node).await.unwrap();
        let status = json!({"status": {"capacity": {"nvidia.com/gpu": gpus.to_string(), "cpu": "64"},
                                       "allocatable": {"nvidia.com/gpu": gpus.to_string(), "cpu": "64"}}});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }

    pub async fn va(&self, name: &str, target: &str, cost: &str) {
        self.va_for_model(name, target, cost, MODEL).await;
    }

    /// A VA for `model`; the exporter reports `target`'s pods under that model.
    pub async fn va_for_model(&self, name: &str, target: &str, cost: &str, model: &str) {
        self.models
            .lock()
            .unwrap()
            .insert(target.into(), model.into());
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &self.ns, &va_resource());
        let va: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "llmd.ai/v1alpha1", "kind": "VariantAutoscaling",
            "metadata": {"name": name, "labels": {"inference.optimization/acceleratorName": "A100"}},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": target}, "modelID": model, "variantCost": cost}
        }))
        .unwrap();
        api.create(&PostParams::default(), &va).await.unwrap();
    }

    /// Sets the load of Deployment `name`.
    pub fn load(&self, name: &str, load: f64) {
        self.loads.lock().unwrap().insert(name.into(), load);
    }

    /// An endpoint picker: a Service `name` (selector `app=<name>`, port `http-metrics` =
    /// `port`) and its one pod, Ready at 127.0.0.1 — so wva scrapes `127.0.0.1:<port>/metrics`,
    /// a local exporter the test controls. The scene's kubelet leaves the pod alone.
    pub async fn endpoint_picker(&self, name: &str, port: u16) {
        self.hold(name, true);
        let services: Api<k8s_openapi::api::core::v1::Service> =
            Api::namespaced(self.client.clone(), &self.ns);
        let service = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [
                {"name": "grpc-ext-proc", "port": 9002},
                {"name": "http-metrics", "port": port}
            ]}
        }))
        .unwrap();
        services
            .create(&PostParams::default(), &service)
            .await
            .unwrap();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.ns);
        let pod = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": [{"name": "epp", "image": "registry.k8s.io/gateway-api-inference-extension/epp:v1.1.0"}]}
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
        set_pod_ready(&self.client, &self.ns, name).await;
        super::control_plane::patch_pod_status(
            &self.client,
            &self.ns,
            name,
            json!({"podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}]}),
        )
        .await;
    }

    /// An InferencePool `name` of `api_version` (`inference.networking.x-k8s.io/v1alpha2` or
    /// `inference.networking.k8s.io/v1`) selecting `selector`, with endpoint picker `picker`.
    pub async fn inference_pool(
        &self,
        api_version: &str,
        name: &str,
        selector: Value,
        picker: &str,
    ) {
        let (group, version) = api_version.split_once('/').unwrap();
        let resource = ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: api_version.into(),
            kind: "InferencePool".into(),
            plural: "inferencepools".into(),
        };
        let spec = if version == "v1" {
            json!({"selector": {"matchLabels": selector}, "targetPorts": [{"number": 8000}],
                   "endpointPickerRef": {"name": picker, "port": {"number": 9002}}})
        } else {
            json!({"selector": selector, "targetPortNumber": 8000, "extensionRef": {"name": picker}})
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &self.ns, &resource);
        let pool: DynamicObject = serde_json::from_value(json!({
            "apiVersion": api_version, "kind": "InferencePool",
            "metadata": {"name": name}, "spec": spec
        }))
        .unwrap();
        api.create(&PostParams::default(), &pool).await.unwrap();
    }

    /// The `wva_desired_replicas` series of Deployment `variant` (accelerator A100, no instance).
    pub fn desired_gauge(&self, variant: &str) -> String {
        format!(
            "wva_desired_replicas{{variant_name=\"{variant}\",namespace=\"{}\",accelerator_type=\"A100\"}}",
            self.ns
        )
    }

    /// The `wva_replica_scaling_total` series of scale-ups of `variant` for `reason`.
    pub fn scaled_up_counter(&self, variant: &str, reason: &str) -> String {
        format!(
            "wva_replica_scaling_total{{variant_name=\"{variant}\",namespace=\"{}\",direction=\"up\",reason=\"{reason}\"}}",
            self.ns
        )
    }

    /// Sets the requests Deployment `name` has served so far (its pods report the counter).
    pub fn serve(&self, name: &str, total: f64) {
        self.served.lock().unwrap().insert(name.into(), total);
    }

    /// Sets the requests/s Deployment `name` serves, shared by its Ready pods (each pod's
    /// counter grows at its share).
    pub fn serve_rate(&self, name: &str, rps: f64) {
        self.rates.lock().unwrap().insert(name.into(), rps);
    }

    /// Keeps (`true`) new pods of Deployment `name` from becoming Ready, or releases them.
    pub fn hold(&self, name: &str, held: bool) {
        let mut set = self.held.lock().unwrap();
        if held {
            set.insert(name.into());
        } else {
            set.remove(name);
        }
    }

    /// How many series of `metric` Prometheus has for this scene's namespace, and their values.
    pub fn series(&self, metric: &str) -> Vec<(String, f64)> {
        self.query(&format!("{metric}{{namespace=\"{}\"}}", self.ns))
    }

    /// An instant query's series: their `pod` label (empty when none) and value.
    pub fn query(&self, query: &str) -> Vec<(String, f64)> {
        let encoded: String = query
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let Some(body) = WvaRun::get(
            &self.prometheus.http_url(),
            &format!("/api/v1/query?query={encoded}"),
        ) else {
            return Vec::new();
        };
        // The body may be chunked: take the JSON object.
        let json = body
            .find('{')
            .and_then(|start| body.rfind('}').map(|end| &body[start..=end]));
        let Some(value) = json.and_then(|j| serde_json::from_str::<Value>(j).ok()) else {
            return Vec::new();
        };
        value["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    r["metric"]["pod"].as_str().unwrap_or_default().to_owned(),
                    r["value"][1]
                        .as_str()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(f64::NAN),
                )
            })
            .collect()
    }

    /// Waits until Prometheus reports KV-cache use for `pods` pods of the scene.
    pub async fn wait_reported(&self, pods: usize) {
        wait_for(
            Duration::from_secs(30),
            &format!("{pods} pods in Prometheus"),
            || async {
                (self.series(wva::prometheus::promql::KV_CACHE_METRIC).len() == pods).then_some(())
            },
        )
        .await;
    }

    /// The pods of Deployment `name` that are not being deleted.
    pub async fn pods_of(&self, name: &str) -> Vec<Pod> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &self.ns);
        let mut pods = api
            .list(&ListParams::default().labels(&format!("app={name}")))
            .await
            .unwrap()
            .items;
        pods.retain(|p| p.metadata.deletion_timestamp.is_none());
        pods
    }

    pub async fn spec_replicas(&self, name: &str) -> i32 {
        self.deployment_object(name)
            .await
            .spec
            .and_then(|s| s.replicas)
            .unwrap_or(1)
    }

    pub async fn deployment_object(&self, name: &str) -> Deployment {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &self.ns);
        api.get(name).await.unwrap()
    }

    pub async fn va_object(&self, name: &str) -> DynamicObject {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &self.ns, &va_resource());
        api.get(name).await.unwrap()
    }

    /// (status, reason, message) of condition `type_` on VA `name`.
    pub async fn condition(&self, name: &str, type_: &str) -> Option<(String, String, String)> {
        let va = self.va_object(name).await;
        let conditions = va.data.pointer("/status/conditions")?.as_array()?.clone();
        conditions.iter().find(|c| c["type"] == type_).map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_owned(),
                c["reason"].as_str().unwrap_or_default().to_owned(),
                c["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
    }

    /// Waits until condition `type_` of VA `name` has `status` and `reason`; returns the message.
    pub async fn wait_condition(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        reason: &str,
        timeout: Duration,
    ) -> String {
        wait_for(
            timeout,
            &format!("{name}: {type_}={status}/{reason}"),
            || async {
                self.condition(name, type_)
                    .await
                    .filter(|(s, r, _)| s == status && r == reason)
                    .map(|(_, _, m)| m)
            },
        )
        .await
    }

    /// Waits until VA `name` has a decision made with metrics (`OptimizationReady=True`,
    /// `OptimizationSucceeded`).
    pub async fn wait_optimized(&self, name: &str) {
        self.wait_condition(
            name,
            "OptimizationReady",
            "True",
            "OptimizationSucceeded",
            Duration::from_secs(60),
        )
        .await;
    }

    /// The controller's writes in the workloads' namespace, from the audit log: VA status,
    /// `/scale`, Events — everything but the test kubelet's pod updates.
    pub fn controller_writes(&self) -> Vec<AuditedRequest> {
        self.cp
            .audited_writes(&self.ns)
            .into_iter()
            .filter(|w| w.resource != "pods")
            .collect()
    }

    /// The replica counts of every `/scale` write in the workloads' namespace, in order.
    pub fn scale_writes(&self) -> Vec<i64> {
        self.cp
            .audited_writes(&self.ns)
            .iter()
            .filter(|w| w.resource == "deployments" && w.subresource == "scale")
            .filter_map(|w| w.replicas)
            .collect()
    }

    /// The (reason, note) of every events.k8s.io Event about object `name` of `kind`.
    pub async fn events(&self, kind: &str, name: &str, ns: &str) -> Vec<(String, String)> {
        let api: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.client.clone(), ns);
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| {
                e.regarding.as_ref().is_some_and(|r| {
                    r.kind.as_deref() == Some(kind) && r.name.as_deref() == Some(name)
                })
            })
            .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
            .collect()
    }

    /// Waits until an Event about object `name` of `kind` satisfies `found` (Events are
    /// published by a background task, shortly after what they report); returns them all.
    pub async fn wait_event(
        &self,
        kind: &str,
        name: &str,
        ns: &str,
        found: impl Fn(&(String, String)) -> bool,
    ) -> Vec<(String, String)> {
        let mut last = Vec::new();
        let seen = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                last = self.events(kind, name, ns).await;
                if last.iter().any(&found) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await;
        assert!(seen.is_ok(), "no such Event about {kind} {name}: {last:?}");
        last
    }

    pub async fn wait_spec_replicas(&self, name: &str, replicas: i32, timeout: Duration) {
        wait_for(
            timeout,
            &format!("Deployment {name} at {replicas} replicas"),
            || async { (self.spec_replicas(name).await == replicas).then_some(()) },
        )
        .await;
    }

    /// Starts `wva run` on this scene (`--actuation mode`, plus `extra`) as the admin, watching
    /// this scene's namespace only.
    pub fn wva(&self, mode: &str, extra: &[&str]) -> WvaRun {
        self.wva_with(mode, extra, &Run::default())
    }

    /// Starts `wva run` with `run`'s identity, environment and scope.
    pub fn wva_with(&self, mode: &str, extra: &[&str], run: &Run) -> WvaRun {
        WvaRun::spawn(self, mode, extra, run)
    }

    /// Applies `config/rbac/controller.yaml` for this scene (the controller namespace is the
    /// scene's; cluster-scoped names get the scene's suffix; with `namespaced` the ClusterRole
    /// and its binding become a Role in the workloads' namespace, what `--watch-namespace`
    /// needs) and returns a kubeconfig of its ServiceAccount.
    pub async fn controller_service_account(&self, namespaced: bool) -> PathBuf {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/rbac/controller.yaml"
        ))
        .unwrap();
        let mut docs = Vec::new();
        for doc in text.split("\n---\n") {
            let mut object: Value = serde_yaml_ng::from_str(doc).unwrap();
            if object.is_null() {
                continue; // the header comment
            }
            if object["metadata"]["namespace"] == "workload-variant-autoscaler-system" {
                object["metadata"]["namespace"] = self.sys.clone().into();
            }
            for subject in object["subjects"].as_array_mut().into_iter().flatten() {
                subject["namespace"] = self.sys.clone().into();
            }
            let kind = object["kind"].as_str().unwrap_or_default().to_owned();
            if let Some(local) = kind.strip_prefix("Cluster") {
                let name = if namespaced {
                    object["kind"] = local.into();
                    object["metadata"]["namespace"] = self.ns.clone().into();
                    "wva-workloads".to_owned()
                } else {
                    format!("wva-controller-{}", self.ns)
                };
                object["metadata"]["name"] = name.clone().into();
                if let Some(role) = object.get_mut("roleRef") {
                    role["kind"] = if namespaced { "Role" } else { "ClusterRole" }.into();
                    role["name"] = name.into();
                }
            }
            docs.push(object.to_string());
        }
        self.cp
            .kubectl_stdin_ok(&["apply", "-f", "-"], &docs.join("\n---\n"));
        let admin = self.cp.admin_client().await;
        self.cp
            .service_account_kubeconfig(&admin, &self.sys, CONTROLLER_SA)
            .await
    }

    /// The audit-log user name of the controller's ServiceAccount.
    pub fn controller_user(&self) -> String {
        format!("system:serviceaccount:{}:{CONTROLLER_SA}", self.sys)
    }

    /// A VA labelled for controller instance `instance`.
    pub async fn va_for_instance(&self, name: &str, target: &str, instance: &str) {
        self.va(name, target, "10").await;
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &self.ns, &va_resource());
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {"wva.llmd.ai/controller-instance": instance}}}),
            ),
        )
        .await
        .unwrap();
    }
}

/// Plays the kubelet and the model servers: makes pods Ready (unless held), completes
/// deletions, and exports `vllm:*` series for the Ready pods.
struct Kubelet {
    client: Client,
    ns: String,
    loads: Loads,
    models: Models,
    served: Served,
    rates: Rates,
    held: Arc<Mutex<BTreeSet<String>>>,
    period: Duration,
}

async fn kubelet(kubelet: Kubelet, export: impl Fn(&str)) {
    let Kubelet {
        client,
        ns,
        loads,
        models,
        served,
        rates,
        held,
        period,
    } = kubelet;
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    // Each pod's own success counter (Deployments given a rate).
    let mut counters: BTreeMap<String, f64> = BTreeMap::new();
    let mut last = std::time::Instant::now();
    loop {
        let elapsed = last.elapsed().as_secs_f64();
        last = std::time::Instant::now();
        if let Ok(list) = api.list(&ListParams::default()).await {
            let mut ready: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for pod in list.items {
                let name = pod.metadata.name.clone().unwrap_or_default();
                if pod.metadata.deletion_timestamp.is_some() {
                    let _ = api
                        .delete(&name, &DeleteParams::default().grace_period(0))
                        .await;
                    continue;
                }
                let app = pod
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("app"))
                    .cloned()
                    .unwrap_or_default();
                let is_ready = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                if !is_ready {
                    if held.lock().unwrap().contains(&app) {
                        continue;
                    }
                    // A pod deleted meanwhile makes the helper panic: contained in its own task.
                    let (c, n, p) = (client.clone(), ns.clone(), name.clone());
                    if tokio::spawn(async move { set_pod_ready(&c, &n, &p).await })
                        .await
                        .is_err()
                    {
                        continue;
                    }
                }
                ready.entry(app).or_default().push(name);
            }
            let loads = loads.lock().unwrap().clone();
            let models = models.lock().unwrap().clone();
            let served = served.lock().unwrap().clone();
            let rates = rates.lock().unwrap().clone();
            let mut text = String::new();
            for (app, pods) in &ready {
                let load = loads.get(app).copied().unwrap_or(0.5);
                let kv = (load / pods.len() as f64).min(1.0);
                let model = models.get(app).map_or(MODEL, String::as_str);
                for pod in pods {
                    let total = match rates.get(app) {
                        Some(rps) => {
                            let counter = counters.entry(pod.clone()).or_default();
                            *counter += rps / pods.len() as f64 * elapsed;
                            Some(*counter)
                        }
                        None => served.get(app).copied(),
                    };
                    if let Some(total) = total {
                        text.push_str(&line(
                            wva::prometheus::promql::REQUEST_SUCCESS_METRIC,
                            &ns,
                            model,
                            pod,
                            total,
                        ));
                    }
                    text.push_str(&line(
                        wva::prometheus::promql::KV_CACHE_METRIC,
                        &ns,
                        model,
                        pod,
                        kv,
                    ));
                    text.push_str(&line(
                        wva::prometheus::promql::QUEUE_METRIC,
                        &ns,
                        model,
                        pod,
                        0.0,
                    ));
                }
            }
            export(&text);
        }
        tokio::time::sleep(period).await;
    }
}

/// `wva analyze --input <snapshot>`: the report it prints (the command must succeed).
pub fn analyze(snapshot: &std::path::Path) -> Value {
    analyze_with(snapshot, &[])
}

/// [`analyze`] with more flags (`--policy wva-next`).
pub fn analyze_with(snapshot: &std::path::Path, extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_wva"))
        .args(["analyze", "--input"])
        .arg(snapshot)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// How a `wva run` process is started besides its flags.
#[derive(Clone, Debug, Default)]
pub struct Run {
    /// Kubeconfig (default: the admin's).
    pub kubeconfig: Option<PathBuf>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Watch every namespace (isolate with `CONTROLLER_INSTANCE` then) instead of the scene's.
    pub all_namespaces: bool,
}

/// `wva run` as a process.
pub struct WvaRun {
    pub child: Child,
    pub probes: String,
    pub metrics: String,
    /// `https://…` when the webhook is on, else `off`.
    pub admission: String,
    pub log: PathBuf,
    pub dir: PathBuf,
}

impl WvaRun {
    fn spawn(scene: &Scene, mode: &str, extra: &[&str], run: &Run) -> Self {
        let dir = temp_dir("wva-run");
        let log = dir.join("wva.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_wva"));
        command
            .args(["run", "--kubeconfig"])
            .arg(run.kubeconfig.as_ref().unwrap_or(&scene.cp.kubeconfig))
            .args(["--actuation", mode]);
        if !run.all_namespaces {
            command.args(["--watch-namespace", &scene.ns]);
        }
        command
            .args([
                "--health-probe-bind-address",
                "127.0.0.1:0",
                "--metrics-bind-address",
                "127.0.0.1:0",
            ])
            .args(extra)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBECONFIG")
            .env("POD_NAMESPACE", &scene.sys)
            .env("PROMETHEUS_BASE_URL", scene.prometheus.http_url())
            .env("PROMETHEUS_ALLOW_HTTP", "true")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in &run.env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start wva run");
        scene.cp.register_pid(child.id());
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .unwrap_or_else(|| {
                    panic!(
                        "no {key} in the first line of wva run: {line:?}\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    )
                })
                .to_owned()
        };
        Self {
            probes: field("probes="),
            metrics: field("metrics="),
            admission: field("admission="),
            child,
            log,
            dir,
        }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET `path` on `base` (`http://host:port`), the body.
    pub fn get(base: &str, path: &str) -> Option<String> {
        let addr = base.strip_prefix("http://")?;
        let mut stream = std::net::TcpStream::connect(addr).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
    }

    /// The /metrics text from the metrics port.
    pub fn metrics_text(&self) -> String {
        Self::get(&self.metrics, "/metrics").unwrap_or_default()
    }

    /// The value of the first sample line starting with `prefix` (`name{labels}`).
    pub fn sample(&self, prefix: &str) -> Option<f64> {
        self.metrics_text()
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// `wva_cycles_total`.
    pub fn cycles(&self) -> u64 {
        self.sample("wva_cycles_total").unwrap_or(0.0) as u64
    }

    /// Waits until `n` more cycles have run.
    pub async fn cycles_pass(&self, n: u64, timeout: Duration) {
        let start = self.cycles();
        wait_for(timeout, &format!("{n} more cycles"), || async {
            (self.cycles() >= start + n).then_some(())
        })
        .await;
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        self.child.wait().unwrap()
    }
}

impl Drop for WvaRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- wva run log ---\n{}", self.log_text());
        }
    }
}
