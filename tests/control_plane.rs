//! Control-plane tier: the real etcd + kube-apiserver + kube-controller-manager from
//! `make tools`, shared by every test in this binary, one namespace per test.

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use support::control_plane::{control_plane, set_pod_ready, set_pod_waiting, wait_for};
use wva::api::{VariantAutoscaling, VariantAutoscalingSpec};

fn va_resource(group: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: "v1alpha1".into(),
        api_version: format!("{group}/v1alpha1"),
        kind: "VariantAutoscaling".into(),
        plural: "variantautoscalings".into(),
    }
}

fn va_object(group: &str, name: &str, spec: &Value) -> DynamicObject {
    let mut object = json!({
        "apiVersion": format!("{group}/v1alpha1"),
        "kind": "VariantAutoscaling",
        "metadata": {"name": name},
    });
    if !spec.is_null() {
        object["spec"] = spec.clone();
    }
    serde_json::from_value(object).unwrap()
}

#[tokio::test]
async fn crd_is_established_and_a_va_round_trips_through_the_status_subresource() {
    let cp = control_plane();
    cp.install_crd();
    let client = cp.admin_client().await;
    let ns = cp.fresh_namespace(&client, "smoke-va").await;
    let vas: Api<VariantAutoscaling> = Api::namespaced(client.clone(), &ns);
    let va: VariantAutoscaling = serde_json::from_value(json!({
        "apiVersion": "llmd.ai/v1alpha1", "kind": "VariantAutoscaling",
        "metadata": {"name": "llama-a100", "labels": {"inference.optimization/acceleratorName": "A100"}},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "llama-a100"}, "modelID": "meta/llama-3.1-8b"}
    }))
    .unwrap();
    let created = vas.create(&PostParams::default(), &va).await.unwrap();
    assert_eq!(
        created.spec.variant_cost.as_deref(),
        Some("10.0"),
        "the API server applies the default"
    );
    assert_eq!(created.cost(), 10.0);

    let status = json!({"status": {
        "desiredOptimizedAlloc": {"accelerator": "A100", "numReplicas": 3, "lastRunTime": "2026-11-28T10:00:00Z"},
        "conditions": [{"type": "MetricsAvailable", "status": "True", "reason": "MetricsAvailable",
                        "message": "Saturation metrics data is available for scaling decisions",
                        "lastTransitionTime": "2026-11-28T10:00:00Z", "observedGeneration": 1}]
    }});
    vas.patch_status(
        "llama-a100",
        &PatchParams::default(),
        &Patch::Merge(&status),
    )
    .await
    .unwrap();
    let read = vas.get_status("llama-a100").await.unwrap();
    let s = read.status.unwrap();
    assert_eq!(s.desired_optimized_alloc.unwrap().num_replicas, 3);
    assert_eq!(s.conditions[0].type_, "MetricsAvailable");

    // kubectl sees the printer columns.
    let out = cp.kubectl(&["get", "va", "-n", &ns]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("TARGET") && table.contains("OPTIMIZED") && table.contains("METRICSREADY"),
        "{table}"
    );
    assert!(
        table.lines().any(|l| l.contains("llama-a100")
            && l.contains("meta/llama-3.1-8b")
            && l.contains("True")),
        "{table}"
    );
    // kubectl explain reads our descriptions.
    let out = cp.kubectl(&["explain", "va.spec.variantCost"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("cost per replica"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn a_deployment_gets_pods_and_the_kubelet_helper_makes_them_ready() {
    let cp = control_plane();
    let client = cp.admin_client().await;
    let ns = cp.fresh_namespace(&client, "smoke-deploy").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "vllm"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "vllm"}},
                 "template": {"metadata": {"labels": {"app": "vllm"}},
                              "spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.11.0"}]}}}
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();

    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    wait_for(Duration::from_secs(30), "the ReplicaSet", || async {
        let list = replica_sets.list(&ListParams::default()).await.ok()?;
        (!list.items.is_empty()).then_some(())
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let names: Vec<String> = wait_for(Duration::from_secs(30), "two pods", || async {
        let list = pods
            .list(&ListParams::default().labels("app=vllm"))
            .await
            .ok()?;
        (list.items.len() == 2).then(|| {
            list.items
                .iter()
                .map(|p| p.metadata.name.clone().unwrap())
                .collect()
        })
    })
    .await;

    set_pod_ready(&client, &ns, &names[0]).await;
    let waiting = set_pod_waiting(
        &client,
        &ns,
        &names[1],
        "ImagePullBackOff",
        "Back-off pulling image",
    )
    .await;
    let reason = waiting.status.unwrap().container_statuses.unwrap()[0]
        .state
        .as_ref()
        .unwrap()
        .waiting
        .as_ref()
        .unwrap()
        .reason
        .clone();
    assert_eq!(reason.as_deref(), Some("ImagePullBackOff"));

    let ready = |want: i32| {
        let deployments = deployments.clone();
        async move {
            let d = deployments.get("vllm").await.ok()?;
            let status = d.status?;
            (status.ready_replicas.unwrap_or(0) == want && status.replicas == Some(2)).then_some(())
        }
    };
    wait_for(Duration::from_secs(30), "readyReplicas == 1", || ready(1)).await;
    set_pod_ready(&client, &ns, &names[1]).await;
    wait_for(Duration::from_secs(30), "readyReplicas == 2", || ready(2)).await;
    cp.assert_running();
}

#[tokio::test]
async fn a_service_account_without_rbac_gets_403_on_vas() {
    let cp = control_plane();
    cp.install_crd();
    let admin = cp.admin_client().await;
    let ns = cp.fresh_namespace(&admin, "smoke-rbac").await;
    let nobody = cp.service_account_client(&admin, &ns, "nobody").await;
    let vas: Api<VariantAutoscaling> = Api::namespaced(nobody, &ns);
    match vas.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("expected 403 Forbidden, got {other:?}"),
    }
    let create = vas
        .create(
            &PostParams::default(),
            &VariantAutoscaling::new(
                "x",
                VariantAutoscalingSpec {
                    scale_target_ref: wva::api::CrossVersionObjectReference {
                        api_version: None,
                        kind: "Deployment".into(),
                        name: "x".into(),
                    },
                    model_id: "m".into(),
                    variant_cost: None,
                },
            ),
        )
        .await;
    assert!(
        matches!(create, Err(kube::Error::Api(ref s)) if s.code == 403),
        "{create:?}"
    );
}

/// Installs upstream's v0.5.0 schema under the group `upstream.llmd.ai` next to ours and
/// checks that both accept and reject the same objects (tests/data/crd/va-fixtures.json).
#[tokio::test]
async fn our_crd_accepts_exactly_what_upstreams_accepts() {
    let cp = control_plane();
    cp.install_crd();
    let upstream = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/crd/upstream-v0.5.0.yaml"
    ))
    .unwrap()
    .replace(
        "name: variantautoscalings.llmd.ai",
        "name: variantautoscalings.upstream.llmd.ai",
    )
    .replace("group: llmd.ai", "group: upstream.llmd.ai");
    cp.kubectl_stdin_ok(&["apply", "-f", "-"], &upstream);
    cp.wait_established("variantautoscalings.upstream.llmd.ai");

    let client = cp.admin_client().await;
    let ns = cp.fresh_namespace(&client, "crd-parity").await;
    let fixtures: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/crd/va-fixtures.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let mut mismatches = Vec::new();
    for group in ["llmd.ai", "upstream.llmd.ai"] {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &ns, &va_resource(group));
        for (i, case) in fixtures["spec"].as_array().unwrap().iter().enumerate() {
            let object = va_object(group, &format!("spec-{i}"), &case["spec"]);
            let result = api.create(&dry_run, &object).await;
            let accepted = result.is_ok();
            if accepted != case["accept"].as_bool().unwrap() {
                mismatches.push(format!(
                    "{group}: spec case {:?}: accepted={accepted} ({result:?})",
                    case["case"]
                ));
            }
            if case["case"] == "cost null is defaulted" {
                assert_eq!(
                    result.unwrap().data["spec"]["variantCost"],
                    "10.0",
                    "{group}"
                );
            }
        }
        let base = va_object(
            group,
            "status-base",
            &json!({"scaleTargetRef": {"kind": "Deployment", "name": "d"}, "modelID": "m"}),
        );
        api.create(&PostParams::default(), &base).await.unwrap();
        for case in fixtures["status"].as_array().unwrap() {
            let patch = Patch::Merge(json!({"status": case["status"]}));
            let params = PatchParams {
                dry_run: true,
                ..Default::default()
            };
            let result = api.patch_status("status-base", &params, &patch).await;
            let accepted = result.is_ok();
            if accepted != case["accept"].as_bool().unwrap() {
                mismatches.push(format!(
                    "{group}: status case {:?}: accepted={accepted} ({result:?})",
                    case["case"]
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

#[tokio::test]
async fn kubectl_and_the_wva_binary_use_the_kubeconfig_file() {
    let cp = control_plane();
    let out = cp.kubectl(&["get", "namespaces", "-o", "name"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("namespace/default"));
    // The admin identity is a member of system:masters.
    let out = cp.kubectl(&["auth", "can-i", "*", "*"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "yes");
    let _: Client = cp.admin_client().await;
}

/// `wva check-prometheus` without PROMETHEUS_BASE_URL reads the main ConfigMap with a direct GET
/// (upstream reads a cache that has not started, so its fallback never works).
#[tokio::test]
async fn check_prometheus_falls_back_to_the_main_config_map() {
    use support::prometheus::{Exporter, Prometheus, line};
    let cp = control_plane();
    let client = cp.admin_client().await;
    let ns = cp.fresh_namespace(&client, "prom-config").await;
    let exporter = Exporter::start();
    exporter.set(&line("vllm:kv_cache_usage_perc", "prod", "m", "p", 0.5));
    let prometheus = Prometheus::start("config-map", &[exporter.addr], None);
    let run = |pod_namespace: &str| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wva"));
        command
            .args([
                "check-prometheus",
                "--kubeconfig",
                cp.kubeconfig.to_str().unwrap(),
            ])
            .env("POD_NAMESPACE", pod_namespace);
        for var in [
            "PROMETHEUS_BASE_URL",
            "PROMETHEUS_ALLOW_HTTP",
            "CONFIG_MAP_NAME",
            "KUBERNETES_SERVICE_HOST",
        ] {
            command.env_remove(var);
        }
        command.output().unwrap()
    };
    let out = run(&ns);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("no Prometheus configuration found: set PROMETHEUS_BASE_URL (e.g. https://prometheus-k8s.monitoring.svc:9091) in the environment, or in ConfigMap {ns}/workload-variant-autoscaler-variantautoscaling-config")), "{stderr}");

    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "workload-variant-autoscaler-variantautoscaling-config", "namespace": ns},
        "data": {"PROMETHEUS_BASE_URL": prometheus.http_url(), "PROMETHEUS_ALLOW_HTTP": "true"}});
    let out = cp.kubectl_stdin(&["apply", "-f", "-"], &config_map.to_string());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&ns);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["prometheus"]["source"],
        format!("ConfigMap {ns}/workload-variant-autoscaler-variantautoscaling-config")
    );
    assert_eq!(report["prometheus"]["url"], prometheus.http_url());
}
