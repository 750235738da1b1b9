//! Controller tier: `wva run` against the real control plane (etcd + kube-apiserver +
//! kube-controller-manager) and a real Prometheus scraping a vLLM-shaped exporter that reports
//! for the pods that exist. Each test is a scene with its own namespaces, Prometheus and wva
//! process (`--watch-namespace`), so tests run side by side.

mod support;

use std::time::{Duration, Instant};

use support::control_plane::{set_pod_waiting, wait_for};
use support::controller::Scene;

const T: Duration = Duration::from_secs(40);

/// Leader election with a 6 s lease, 4 s renew deadline and 1 s retry period.
const FAST_LEASE: [&str; 7] = [
    "--leader-elect",
    "--leader-election-lease-duration",
    "6s",
    "--leader-election-renew-deadline",
    "4s",
    "--leader-election-retry-period",
    "1s",
];

/// One model on two variants, `cheap` (cost 5) and `pricey` (cost 20), one replica each,
/// both reporting in Prometheus.
async fn cheap_and_pricey(scene: &Scene) {
    scene.variant("cheap", 1, "5").await;
    scene.variant("pricey", 1, "20").await;
    scene.wait_reported(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_va_gets_its_conditions_within_two_cycles_and_a_missing_target_recovers() {
    let scene = Scene::new("ctl-target", "2s").await;
    scene.variant("decode", 1, "10").await;
    scene.va("orphan", "later", "10").await;
    scene.wait_reported(1).await;
    let mut wva = scene.wva("metrics", &[]);
    scene
        .wait_condition("decode", "TargetResolved", "True", "TargetFound", T)
        .await;
    let message = scene
        .wait_condition("decode", "MetricsAvailable", "True", "MetricsFound", T)
        .await;
    assert!(wva.cycles() <= 2, "took {} cycles", wva.cycles());
    assert_eq!(message, "1 of 1 pods report saturation metrics");
    let message = scene
        .wait_condition("orphan", "TargetResolved", "False", "TargetNotFound", T)
        .await;
    assert_eq!(message, "Scale target Deployment later not found");
    let ready = support::controller::WvaRun::get(&wva.probes, "/readyz?verbose").unwrap();
    assert!(
        ready.contains("[+]controller/configuration ok") && ready.contains("[+]cache/pods ok"),
        "{ready}"
    );
    // This control plane serves no InferencePool CRD: scale-from-zero is off, said once, and
    // everything else works.
    assert!(
        ready.contains("[+]scale-from-zero off (no InferencePool CRD of inference.networking.x-k8s.io/v1alpha2 is served) ok"),
        "{ready}"
    );
    assert_eq!(
        wva.log_text().matches("scale-from-zero off").count(),
        1,
        "{}",
        wva.log_text()
    );

    scene.deployment("later", 1).await;
    scene
        .wait_condition("orphan", "TargetResolved", "True", "TargetFound", T)
        .await;
    let va = scene.va_object("decode").await;
    let generation = va.metadata.generation.unwrap();
    let conditions = va.data["status"]["conditions"].as_array().unwrap();
    assert!(
        conditions
            .iter()
            .all(|c| c["observedGeneration"] == generation),
        "{conditions:?}"
    );
    assert_eq!(
        va.data["status"]["desiredOptimizedAlloc"]["accelerator"],
        "A100"
    );

    let started = Instant::now();
    let status = wva.terminate();
    assert!(status.success(), "{status:?}\n{}", wva.log_text());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_actuation_scales_the_cheaper_variant_through_scale_within_one_interval() {
    let scene = Scene::new("ctl-direct", "5s").await;
    cheap_and_pricey(&scene).await;
    let wva = scene.wva("direct", &[]);
    scene.wait_optimized("cheap").await;

    scene.load("cheap", 0.95);
    scene.load("pricey", 0.95);
    // Saturation is visible in Prometheus from here.
    let visible = wait_for(T, "saturation in Prometheus", || async {
        let series = scene.series(wva::prometheus::promql::KV_CACHE_METRIC);
        (series.len() == 2 && series.iter().all(|(_, v)| *v > 0.9)).then(Instant::now)
    })
    .await;
    scene.wait_spec_replicas("cheap", 2, T).await;
    let latency = visible.elapsed();
    eprintln!(
        "saturation visible in Prometheus -> /scale patched: {:.2}s (interval 5s)",
        latency.as_secs_f64()
    );
    assert!(latency < Duration::from_secs(11), "{latency:?}");
    assert_eq!(scene.spec_replicas("pricey").await, 1);

    scene
        .wait_event(
            "VariantAutoscaling",
            "cheap",
            &scene.ns,
            |(reason, note)| {
                reason == "ScaledUp" && note.starts_with("Deployment cheap 1 -> 2 replicas: ")
            },
        )
        .await;
    let prefix = scene.scaled_up_counter("cheap", "saturation");
    assert_eq!(wva.sample(&prefix), Some(1.0), "{}", wva.metrics_text());
    let gauge = scene.desired_gauge("cheap");
    assert_eq!(
        wva.sample(&gauge),
        Some(2.0),
        "the gauges are published in direct mode too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_actuation_publishes_the_desired_count_with_upstreams_labels_and_writes_no_scale() {
    let scene = Scene::new("ctl-metrics", "2s").await;
    cheap_and_pricey(&scene).await;
    let wva = scene.wva("metrics", &[]);
    scene.load("cheap", 0.95);
    scene.load("pricey", 0.95);
    let gauge = scene.desired_gauge("cheap");
    wait_for(T, "wva_desired_replicas 2 for cheap", || async {
        (wva.sample(&gauge) == Some(2.0)).then_some(())
    })
    .await;
    let text = wva.metrics_text();
    assert!(
        text.contains("# HELP wva_desired_replicas Desired number of replicas for each variant\n"),
        "{text}"
    );
    let current = format!(
        "wva_current_replicas{{variant_name=\"cheap\",namespace=\"{}\",accelerator_type=\"A100\"}}",
        scene.ns
    );
    assert_eq!(wva.sample(&current), Some(1.0));
    assert_eq!(
        scene.spec_replicas("cheap").await,
        1,
        "metrics mode never writes /scale"
    );
    assert_eq!(
        scene.deployment_object("cheap").await.metadata.generation,
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_held_not_ready_stops_the_cascade_and_the_model_ends_at_what_the_load_needs() {
    let scene = Scene::new("ctl-cascade", "2s").await;
    scene.variant("decode", 1, "10").await;
    scene.wait_reported(1).await;
    // 1.5 KV units: saturated on 1 replica, short of spare on 2, comfortable (and not safe to
    // shrink) on 3.
    scene.load("decode", 1.5);
    scene.hold("decode", true);
    let wva = scene.wva("direct", &[]);
    scene.wait_spec_replicas("decode", 2, T).await;
    wva.cycles_pass(4, T).await;
    assert_eq!(
        scene.spec_replicas("decode").await,
        2,
        "no new step while the new pod loads"
    );
    scene.hold("decode", false);
    scene.wait_spec_replicas("decode", 3, T).await;
    wva.cycles_pass(5, T).await;
    assert_eq!(
        scene.spec_replicas("decode").await,
        3,
        "the load needs 3, not more"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_pod_lets_scale_up_spill_to_the_other_variant() {
    let scene = Scene::new("ctl-stuck", "2s").await;
    cheap_and_pricey(&scene).await;
    scene.load("cheap", 0.95);
    scene.load("pricey", 0.95);
    scene.hold("cheap", true);
    let wva = scene.wva("direct", &[]);
    scene.wait_spec_replicas("cheap", 2, T).await;
    let pod = wait_for(T, "cheap's new pod", || async {
        scene.pods_of("cheap").await.into_iter().find(|p| {
            !p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
    })
    .await;
    let pod = pod.metadata.name.unwrap();
    set_pod_waiting(
        &scene.client,
        &scene.ns,
        &pod,
        "ImagePullBackOff",
        "Back-off pulling image",
    )
    .await;
    let detected = wva.cycles();
    scene
        .wait_spec_replicas("pricey", 2, Duration::from_secs(8))
        .await;
    assert!(
        wva.cycles() <= detected + 2,
        "spilled {} cycles after detection",
        wva.cycles() - detected
    );
    assert_eq!(
        scene.spec_replicas("cheap").await,
        2,
        "the stuck variant is not scaled further"
    );
    let message = scene
        .wait_condition("cheap", "OptimizationReady", "True", "StuckReplicas", T)
        .await;
    assert!(
        message.contains(&format!("pod {pod}")) && message.contains("ImagePullBackOff"),
        "{message}"
    );
    scene
        .wait_event("VariantAutoscaling", "cheap", &scene.ns, |(r, n)| {
            r == "StuckPod" && n.contains(&pod)
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_outage_holds_and_recovers_without_a_restart() {
    let mut scene = Scene::new("ctl-outage", "2s").await;
    scene.variant("decode", 2, "10").await;
    // 0.6 per pod: no scale-up, and one pod alone would be saturated (no scale-down).
    scene.load("decode", 1.2);
    scene.wait_reported(2).await;
    let wva = scene.wva("direct", &[]);
    scene
        .wait_condition("decode", "MetricsAvailable", "True", "MetricsFound", T)
        .await;
    scene.prometheus.stop();
    let message = scene
        .wait_condition("decode", "MetricsAvailable", "False", "PrometheusError", T)
        .await;
    assert!(message.contains("holding at 2 replicas"), "{message}");
    // Missing data, not low load: were it read as 0, one replica would be enough.
    scene.load("decode", 0.0);
    wva.cycles_pass(3, T).await;
    assert_eq!(
        scene.spec_replicas("decode").await,
        2,
        "no scale-down on missing data"
    );
    scene
        .wait_event("VariantAutoscaling", "decode", &scene.ns, |(r, _)| {
            r == "PrometheusError"
        })
        .await;
    let pid = wva.child.id();
    scene.load("decode", 1.2);
    scene.prometheus.restart();
    scene
        .wait_condition("decode", "MetricsAvailable", "True", "MetricsFound", T)
        .await;
    assert_eq!(wva.child.id(), pid);
    assert_eq!(scene.spec_replicas("decode").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_changes_apply_at_the_next_cycle_and_invalid_ones_keep_the_last_good() {
    let scene = Scene::new("ctl-config", "30s").await;
    scene.variant("decode", 1, "10").await;
    scene.load("decode", 0.5);
    scene.wait_reported(1).await;
    let wva = scene.wva("direct", &[]);
    wva.cycles_pass(1, T).await;
    scene
        .config_map(
            wva::config::prometheus::MAIN_CONFIG_MAP_NAME,
            serde_json::json!({"GLOBAL_OPT_INTERVAL": "2s"}),
        )
        .await;
    wva.cycles_pass(3, Duration::from_secs(12)).await;

    // Spare KV 0.3: below a 0.4 trigger.
    let saturation = |text: &str| serde_json::json!({"default": text});
    scene
        .config_map(
            wva::config::saturation::CONFIG_MAP_NAME,
            saturation("kvCacheThreshold: 0.8\nkvSpareTrigger: 0.4\n"),
        )
        .await;
    scene
        .wait_spec_replicas("decode", 2, Duration::from_secs(10))
        .await;

    // Invalid: refused, reported on the ConfigMap, and the 0.4 trigger stays in force: at
    // 0.5 per pod (spare 0.3) it asks for a third replica, where the defaults (0.1) would not.
    scene
        .config_map(
            wva::config::saturation::CONFIG_MAP_NAME,
            saturation("kvCacheThreshold: 2\n"),
        )
        .await;
    let events = wait_for(T, "a Warning Event on the ConfigMap", || async {
        let events = scene
            .events(
                "ConfigMap",
                wva::config::saturation::CONFIG_MAP_NAME,
                &scene.sys,
            )
            .await;
        events
            .iter()
            .any(|(r, _)| r == "InvalidConfiguration")
            .then_some(events)
    })
    .await;
    assert!(
        events.iter().any(|(_, n)| n.contains("kvCacheThreshold")),
        "{events:?}"
    );
    scene.load("decode", 1.0);
    scene.wait_spec_replicas("decode", 3, T).await;
    assert!(
        wva.sample("wva_config_rejections_total{config_map=\"saturation-scaling-config\"}")
            .unwrap_or(0.0)
            >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_changes_for_five_cycles_so_nothing_is_written() {
    let scene = Scene::new("ctl-quiet", "2s").await;
    scene.variant("decode", 1, "10").await;
    scene.load("decode", 0.5);
    scene.wait_reported(1).await;
    let wva = scene.wva("direct", &[]);
    scene.wait_optimized("decode").await;
    wva.cycles_pass(2, T).await;
    let before = scene.controller_writes();
    let va = scene.va_object("decode").await.metadata.resource_version;
    let deployment = scene.deployment_object("decode").await.metadata.generation;
    let events = scene
        .events("VariantAutoscaling", "decode", &scene.ns)
        .await
        .len();
    let writes = wva.sample("wva_status_writes_total");
    wva.cycles_pass(5, T).await;
    let after = scene.controller_writes();
    assert_eq!(
        after[before.len()..],
        [],
        "API writes while nothing changed"
    );
    assert_eq!(
        scene.va_object("decode").await.metadata.resource_version,
        va,
        "no VA status write"
    );
    assert_eq!(
        scene.deployment_object("decode").await.metadata.generation,
        deployment,
        "no /scale write"
    );
    assert_eq!(
        scene
            .events("VariantAutoscaling", "decode", &scene.ns)
            .await
            .len(),
        events
    );
    assert_eq!(wva.sample("wva_status_writes_total"), writes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dumped_snapshot_replays_to_the_live_decision() {
    let scene = Scene::new("ctl-dump", "1s").await;
    scene.variant("decode", 1, "10").await;
    scene.load("decode", 0.95);
    scene.wait_reported(1).await;
    let dir = support::process::temp_dir("wva-dumps");
    let wva = scene.wva("direct", &["--dump-snapshots", dir.to_str().unwrap()]);
    scene.wait_spec_replicas("decode", 2, T).await;
    wva.cycles_pass(1, T).await;
    let mut snapshots: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("-snapshot.json"))
        .collect();
    snapshots.sort();
    let scaled = snapshots
        .iter()
        .find(|s| {
            let report = std::fs::read_to_string(
                s.to_string_lossy()
                    .replace("-snapshot.json", "-report.json"),
            )
            .unwrap();
            report.contains("\"scale-up\"")
        })
        .expect("a cycle that decided a scale-up");
    let live: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            scaled
                .to_string_lossy()
                .replace("-snapshot.json", "-report.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let replayed = support::controller::analyze(scaled);
    assert_eq!(replayed, live);

    // Only the last 20 pairs are kept, at every moment (the oldest go before a new pair is
    // written): read mid-cycle, the folder may hold a pair less, never more.
    wait_for(Duration::from_secs(60), "more than 20 cycles", || async {
        (wva.cycles() > 22).then_some(())
    })
    .await;
    let mut counts = Vec::new();
    for _ in 0..20 {
        counts.push(std::fs::read_dir(&dir).unwrap().count());
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(
        counts.iter().all(|n| (38..=40).contains(n)) && counts.contains(&40),
        "20 snapshot/report pairs, read every 150 ms over three 1-s cycles: {counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_serves_admission_and_the_controller() {
    use base64::Engine as _;
    let scene = Scene::new("ctl-hook", "2s").await;
    let dir = support::process::temp_dir("wva-run-webhook");
    let ca = support::pki::TestCa::new("run-webhook-ca");
    let serving = ca.server_cert(&dir, "tls", &["127.0.0.1", "localhost"]);
    let wva = scene.wva(
        "metrics",
        &[
            "--webhook-cert",
            serving.cert_path.to_str().unwrap(),
            "--webhook-key",
            serving.key_path.to_str().unwrap(),
            "--webhook-listen",
            "127.0.0.1:0",
        ],
    );
    assert!(
        wva.admission.starts_with("https://127.0.0.1:"),
        "{}",
        wva.admission
    );
    // Register the VA webhook for this scene's namespace only, pointing at `wva run`.
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/webhooks/validating-webhook-configuration.yaml"
    ))
    .unwrap();
    let mut config: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    config["metadata"]["name"] = format!("wva-run-{}", scene.ns).into();
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(ca.cert_pem());
    let hooks = config["webhooks"].as_array_mut().unwrap();
    hooks.retain(|h| h["name"] == "vvariantautoscaling.llmd.ai");
    let path = hooks[0]["clientConfig"]["service"]["path"]
        .as_str()
        .unwrap()
        .to_owned();
    hooks[0]["clientConfig"] =
        serde_json::json!({"url": format!("{}{path}", wva.admission), "caBundle": ca_bundle});
    hooks[0]["namespaceSelector"] =
        serde_json::json!({"matchLabels": {"kubernetes.io/metadata.name": scene.ns}});
    scene
        .cp
        .kubectl_stdin_ok(&["apply", "-f", "-"], &config.to_string());

    let invalid = format!(
        "apiVersion: llmd.ai/v1alpha1\nkind: VariantAutoscaling\nmetadata:\n  name: bad\n  namespace: {}\nspec:\n  modelID: m\n  scaleTargetRef:\n    kind: Deployment\n    name: Not_A_Name\n",
        scene.ns
    );
    // The API server may take a moment to call a new webhook configuration.
    let deadline = Instant::now() + T;
    let stderr = loop {
        let out = scene.cp.kubectl_stdin(&["apply", "-f", "-"], &invalid);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "an invalid VA was stored");
        // The webhook's message (the CRD schema has no pattern for the name).
        if stderr.contains("RFC 1123") || Instant::now() > deadline {
            break stderr;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(stderr.contains("spec.scaleTargetRef.name"), "{stderr}");

    // The same process runs the controller.
    scene.variant("decode", 1, "10").await;
    scene
        .wait_condition("decode", "TargetResolved", "True", "TargetFound", T)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_actuation_holds_instead_of_fighting_an_hpa() {
    let scene = Scene::new("ctl-hpa", "2s").await;
    scene.variant("decode", 1, "10").await;
    scene.load("decode", 0.95);
    scene.wait_reported(1).await;
    let hpa = serde_json::json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "decode-hpa", "namespace": scene.ns},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "decode"},
                 "minReplicas": 1, "maxReplicas": 4,
                 "metrics": [{"type": "External", "external": {
                     "metric": {"name": "wva_desired_replicas", "selector": {"matchLabels": {"variant_name": "decode"}}},
                     "target": {"type": "AverageValue", "averageValue": "1"}}}]}
    });
    scene
        .cp
        .kubectl_stdin_ok(&["apply", "-f", "-"], &hpa.to_string());
    let wva = scene.wva("direct", &[]);
    let message = scene
        .wait_condition(
            "decode",
            "OptimizationReady",
            "False",
            "HorizontalPodAutoscalerConflict",
            T,
        )
        .await;
    assert!(message.contains("decode-hpa"), "{message}");
    wva.cycles_pass(3, T).await;
    assert_eq!(
        scene.deployment_object("decode").await.metadata.generation,
        Some(1),
        "no /scale write"
    );
    let events = scene
        .events("VariantAutoscaling", "decode", &scene.ns)
        .await;
    assert_eq!(
        events
            .iter()
            .filter(|(r, _)| r == "HorizontalPodAutoscalerConflict")
            .count(),
        1,
        "one Warning, not one per cycle: {events:?}"
    );
    let gauge = scene.desired_gauge("decode");
    assert_eq!(
        wva.sample(&gauge),
        Some(2.0),
        "the HPA can still read the decision"
    );
}

/// Runs a scale-up and the leader Lease as the controller's ServiceAccount; returns its requests.
async fn scale_up_as_the_service_account(
    scene: &Scene,
    run: support::controller::Run,
) -> Vec<support::control_plane::AuditedRequest> {
    let wva = scene.wva_with("direct", &FAST_LEASE, &run);
    scene.wait_optimized("cheap").await;
    scene.load("cheap", 0.95);
    scene.load("pricey", 0.95);
    scene.wait_spec_replicas("cheap", 2, T).await;
    wait_for(T, "the ScaledUp Event", || async {
        scene
            .events("VariantAutoscaling", "cheap", &scene.ns)
            .await
            .iter()
            .any(|(r, _)| r == "ScaledUp")
            .then_some(())
    })
    .await;
    wva.cycles_pass(2, T).await;
    drop(wva);
    scene.cp.audited_requests_of(&scene.controller_user())
}

fn assert_no_403_and_every_kind_of_call(requests: &[support::control_plane::AuditedRequest]) {
    let denied: Vec<_> = requests.iter().filter(|r| r.code == 403).collect();
    assert!(denied.is_empty(), "403s: {denied:#?}");
    let made = |verb: &str, resource: &str, subresource: &str| {
        requests.iter().any(|r| {
            r.verb == verb && r.resource == resource && r.subresource == subresource && r.code < 300
        })
    };
    assert!(made("patch", "deployments", "scale"), "a /scale write");
    assert!(
        made("patch", "variantautoscalings", "status"),
        "a status write"
    );
    assert!(made("create", "events", ""), "an Event");
    assert!(
        made("update", "leases", "") || made("create", "leases", ""),
        "the Lease"
    );
    assert!(
        made("watch", "pods", "") && made("watch", "configmaps", ""),
        "the watches"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_cluster_role_is_enough_for_a_whole_scenario() {
    let scene = Scene::new("ctl-rbac", "2s").await;
    let kubeconfig = scene.controller_service_account(false).await;
    // Every namespace is watched: the instance label keeps this controller to the scene's VAs.
    let instance = scene.ns.clone();
    scene.deployment("cheap", 1).await;
    scene.deployment("pricey", 1).await;
    scene.va_for_instance("cheap", "cheap", &instance).await;
    scene.va_for_instance("pricey", "pricey", &instance).await;
    scene.wait_reported(2).await;
    let run = support::controller::Run {
        kubeconfig: Some(kubeconfig),
        env: vec![("CONTROLLER_INSTANCE".into(), instance)],
        all_namespaces: true,
    };
    let requests = scale_up_as_the_service_account(&scene, run).await;
    assert_no_403_and_every_kind_of_call(&requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_watch_namespace_a_role_is_enough_and_nothing_cluster_wide_is_read() {
    let scene = Scene::new("ctl-role", "2s").await;
    let kubeconfig = scene.controller_service_account(true).await;
    cheap_and_pricey(&scene).await;
    let run = support::controller::Run {
        kubeconfig: Some(kubeconfig),
        ..Default::default()
    };
    let requests = scale_up_as_the_service_account(&scene, run).await;
    assert_no_403_and_every_kind_of_call(&requests);
    let cluster_wide: Vec<_> = requests.iter().filter(|r| r.namespace.is_empty()).collect();
    assert!(
        cluster_wide.is_empty(),
        "cluster-wide requests: {cluster_wide:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_controller_instances_scale_only_their_own_vas() {
    let scene = Scene::new("ctl-instances", "2s").await;
    scene.deployment("a", 1).await;
    scene.deployment("b", 1).await;
    scene.va_for_instance("a", "a", "blue").await;
    scene.va_for_instance("b", "b", "green").await;
    scene.wait_reported(2).await;
    let blue = scene.wva_with(
        "metrics",
        &[],
        &support::controller::Run {
            env: vec![("CONTROLLER_INSTANCE".into(), "blue".into())],
            ..Default::default()
        },
    );
    let green = scene.wva_with(
        "metrics",
        &[],
        &support::controller::Run {
            env: vec![("CONTROLLER_INSTANCE".into(), "green".into())],
            ..Default::default()
        },
    );
    scene
        .wait_condition("a", "MetricsAvailable", "True", "MetricsFound", T)
        .await;
    scene
        .wait_condition("b", "MetricsAvailable", "True", "MetricsFound", T)
        .await;
    let gauge = |variant: &str, instance: &str| {
        format!(
            "wva_desired_replicas{{variant_name=\"{variant}\",namespace=\"{}\",accelerator_type=\"A100\",controller_instance=\"{instance}\"}}",
            scene.ns
        )
    };
    wait_for(T, "both gauges", || async {
        (blue.sample(&gauge("a", "blue")).is_some() && green.sample(&gauge("b", "green")).is_some())
            .then_some(())
    })
    .await;
    let blue_text = blue.metrics_text();
    assert!(
        !blue_text.contains("variant_name=\"b\""),
        "blue publishes only its VA:\n{blue_text}"
    );
    assert!(!green.metrics_text().contains("variant_name=\"a\""));
    // Each VA's status was written by its own controller only: the other never touched it.
    let writes = scene.cp.audited_writes(&scene.ns);
    assert!(
        writes
            .iter()
            .any(|w| w.resource == "variantautoscalings" && w.name == "a")
    );
    assert!(
        writes
            .iter()
            .any(|w| w.resource == "variantautoscalings" && w.name == "b")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_within_the_lease_and_no_decision_is_written_twice() {
    let scene = Scene::new("ctl-leader", "2s").await;
    scene.variant("decode", 1, "10").await;
    scene.load("decode", 0.5);
    scene.wait_reported(1).await;
    let flags = FAST_LEASE;
    let mut one = scene.wva("direct", &flags);
    let mut two = scene.wva("direct", &flags);
    let leading =
        |w: &support::controller::WvaRun| w.sample("wva_leader_election_leading") == Some(1.0);
    wait_for(T, "a leader", || async {
        (leading(&one) || leading(&two)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(leading(&one) ^ leading(&two), "exactly one leader");
    if leading(&two) {
        std::mem::swap(&mut one, &mut two);
    }
    // Both replicas are ready (both serve admissions); only the leader cycles.
    for w in [&one, &two] {
        let ready = support::controller::WvaRun::get(&w.probes, "/readyz").unwrap_or_default();
        assert_eq!(ready, "ok", "{}", w.log_text());
    }
    assert!(
        two.cycles() == 0,
        "the follower ran {} cycles",
        two.cycles()
    );
    let holder = one
        .metrics_text()
        .lines()
        .find(|l| l.starts_with("wva_leader_election_holder{"))
        .unwrap()
        .to_owned();
    assert!(
        two.metrics_text().contains(&holder),
        "the follower sees the same holder: {holder}"
    );

    scene.load("decode", 0.95);
    scene.wait_spec_replicas("decode", 2, T).await;
    one.child.kill().unwrap();
    let killed = Instant::now();
    wait_for(Duration::from_secs(15), "the follower to lead", || async {
        leading(&two).then_some(())
    })
    .await;
    let takeover = killed.elapsed();
    eprintln!(
        "takeover after SIGKILL: {:.1}s (lease 6s)",
        takeover.as_secs_f64()
    );
    assert!(takeover < Duration::from_secs(6 + 3), "{takeover:?}");
    // 0.95 over 2 pods is 0.475 each: the new leader keeps 2; more load needs a third.
    scene.load("decode", 1.5);
    scene.wait_spec_replicas("decode", 3, T).await;
    two.cycles_pass(3, T).await;
    let scales = scene.scale_writes();
    assert_eq!(scales, [2, 3], "one /scale write per decision");

    // A graceful stop releases the Lease at once: a new candidate leads within a retry or two.
    let three = scene.wva("direct", &flags);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = two.terminate();
    assert!(status.success());
    let stopped = Instant::now();
    wait_for(Duration::from_secs(10), "the third to lead", || async {
        leading(&three).then_some(())
    })
    .await;
    eprintln!(
        "takeover after SIGTERM: {:.1}s",
        stopped.elapsed().as_secs_f64()
    );
    assert!(
        stopped.elapsed() < Duration::from_secs(4),
        "{:?}",
        stopped.elapsed()
    );
}

/// The window the killed-leader test can hit by chance, made certain: a leader patched `/scale`
/// to 2 and died before its status write, so the VA still records 1. The next leader must take
/// the target's `spec.replicas` as the count in flight and leave it at 2 — not "restore" 1 and
/// then scale back up (a scale-down nobody decided, dropping requests).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_died_between_scale_and_status_leaves_nothing_to_undo() {
    let scene = Scene::new("ctl-window", "1s").await;
    scene.variant("decode", 2, "10").await;
    // 0.5 on each of the 2 pods: no step either way.
    scene.load("decode", 1.0);
    scene.wait_reported(2).await;
    let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        scene.client.clone(),
        &scene.ns,
        &support::controller::va_resource(),
    );
    let status = serde_json::json!({"status": {"desiredOptimizedAlloc":
        {"accelerator": "A100", "numReplicas": 1, "lastRunTime": "2026-12-01T10:00:00Z"}}});
    api.patch_status(
        "decode",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&status),
    )
    .await
    .unwrap();
    let wva = scene.wva("direct", &[]);
    scene.wait_optimized("decode").await;
    wva.cycles_pass(3, T).await;
    assert_eq!(
        scene.scale_writes(),
        Vec::<i64>::new(),
        "no /scale write: {}",
        wva.log_text()
    );
    assert_eq!(scene.spec_replicas("decode").await, 2);
}

/// A `/scale` write the API server refuses (here a ValidatingAdmissionPolicy): the decision is
/// in status with `actuation.applied: false` and the Deployment is unchanged; while the refusal
/// lasts each cycle tries `/scale` again but the status does not flip back and forth; once the
/// refusal is lifted the step lands and the status says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_scale_is_recorded_as_not_applied_and_retried_without_status_churn() {
    let scene = Scene::new("ctl-refused", "1s").await;
    scene.variant("decode", 1, "10").await;
    scene.load("decode", 0.5);
    scene.wait_reported(1).await;
    let policy = format!("freeze-{}", scene.ns);
    let objects = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
         "metadata": {"name": policy},
         "spec": {"failurePolicy": "Fail",
                  "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                      "operations": ["UPDATE"], "resources": ["deployments/scale"]}]},
                  "validations": [{"expression": "false", "message": "replicas are frozen"}]}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": {"name": policy},
         "spec": {"policyName": policy, "validationActions": ["Deny"],
                  "matchResources": {"namespaceSelector": {"matchLabels":
                      {"kubernetes.io/metadata.name": scene.ns}}}}}
    ]});
    scene
        .cp
        .kubectl_stdin_ok(&["apply", "-f", "-"], &objects.to_string());
    // The API server's policy cache fills asynchronously: wait until a scale is refused.
    wait_for(T, "the policy to refuse /scale", || async {
        let out = scene.cp.kubectl(&[
            "-n",
            &scene.ns,
            "scale",
            "deployment",
            "decode",
            "--replicas=2",
            "--dry-run=server",
        ]);
        (!out.status.success()).then_some(())
    })
    .await;
    let wva = scene.wva("direct", &[]);
    scene.wait_optimized("decode").await;
    scene.load("decode", 0.95);
    let applied = |va: &kube::api::DynamicObject| {
        (
            va.data["status"]["actuation"]["applied"].as_bool(),
            va.data["status"]["desiredOptimizedAlloc"]["numReplicas"].as_i64(),
        )
    };
    wait_for(T, "the refused step in status", || async {
        (applied(&scene.va_object("decode").await) == (Some(false), Some(2))).then_some(())
    })
    .await;
    let writes = wva.sample("wva_status_writes_total");
    let version = scene.va_object("decode").await.metadata.resource_version;
    wva.cycles_pass(3, T).await;
    assert_eq!(scene.spec_replicas("decode").await, 1);
    assert_eq!(
        wva.sample("wva_status_writes_total"),
        writes,
        "no status write while the refusal lasts"
    );
    assert_eq!(
        scene.va_object("decode").await.metadata.resource_version,
        version
    );
    scene.cp.kubectl_ok(&[
        "delete",
        "validatingadmissionpolicybinding,validatingadmissionpolicy",
        &policy,
    ]);
    scene.wait_spec_replicas("decode", 2, T).await;
    wait_for(T, "the applied step in status", || async {
        (applied(&scene.va_object("decode").await) == (Some(true), Some(2))).then_some(())
    })
    .await;
}

/// A leader that loses its Lease (another holder took it) stops cycling and withdraws its
/// `wva_desired_replicas`: an HPA never sums a stale old leader's figure with the new one's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_loses_the_lease_withdraws_its_desired_replicas() {
    let scene = Scene::new("ctl-withdraw", "1s").await;
    scene.variant("decode", 1, "10").await;
    scene.wait_reported(1).await;
    let wva = scene.wva("metrics", &FAST_LEASE);
    wait_for(T, "wva_desired_replicas from the leader", || async {
        wva.sample("wva_desired_replicas{").map(|_| ())
    })
    .await;
    let now = String::from_utf8(
        std::process::Command::new("date")
            .args(["-u", "+%Y-%m-%dT%H:%M:%S.000000Z"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let patch = serde_json::json!({"spec": {"holderIdentity": "intruder",
        "renewTime": now.trim(), "acquireTime": now.trim(), "leaseDurationSeconds": 600}});
    scene.cp.kubectl_ok(&[
        "-n",
        &scene.sys,
        "patch",
        "lease",
        "72dd1cf1.llm-d.ai",
        "--type=merge",
        "-p",
        &patch.to_string(),
    ]);
    wait_for(
        Duration::from_secs(15),
        "the gauges to be withdrawn",
        || async {
            (wva.sample("wva_leader_election_leading") == Some(0.0)
                && wva.sample("wva_desired_replicas{").is_none())
            .then_some(())
        },
    )
    .await;
    let cycles = wva.cycles();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(wva.cycles(), cycles, "a follower does not cycle");
    assert!(
        wva.sample("wva_desired_replicas{").is_none(),
        "{}",
        wva.metrics_text()
    );
}

/// The GPU limiter against real Nodes and Pods: 8 A100s on the selected node, 2 of them taken by
/// another workload's pod, 4 held by two variants (2 GPUs a replica) that both want one more
/// replica, in separate models, equally saturated and equally cheap. One replica's worth is free:
/// it goes to the same variant every time (by name), the other is limited and says so; a
/// node that `WVA_NODE_SELECTOR` leaves out adds nothing. Upstream, which ignores the other
/// workload, would plan both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gpu_limiter_plans_only_onto_free_gpus_and_says_so() {
    let scene = Scene::new("ctl-gpu", "1s").await;
    scene
        .config_map(
            wva::config::saturation::CONFIG_MAP_NAME,
            serde_json::json!({"default": "kvCacheThreshold: 0.8\nqueueLengthThreshold: 5\nkvSpareTrigger: 0.1\nqueueSpareTrigger: 3\nenableLimiter: true\n"}),
        )
        .await;
    let selected = format!("{}-gpu", scene.ns);
    let ignored = format!("{}-gpu-other-pool", scene.ns);
    scene
        .gpu_node(
            &selected,
            serde_json::json!({"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB", "wva-test": &scene.ns}),
            8,
        )
        .await;
    scene
        .gpu_node(
            &ignored,
            serde_json::json!({"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}),
            8,
        )
        .await;
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(scene.client.clone(), &scene.ns);
    let other: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "training", "labels": {"app": "training"}},
        "spec": {"nodeName": &selected, "containers": [{"name": "t", "image": "trainer",
            "resources": {"requests": {"nvidia.com/gpu": "2"}, "limits": {"nvidia.com/gpu": "2"}}}]}
    }))
    .unwrap();
    scene.hold("training", true); // not one of the scene's vLLM pods: no metrics
    pods.create(&Default::default(), &other).await.unwrap();
    for name in ["beta", "alpha"] {
        scene.deployment_with_gpus(name, 1, 2).await;
        scene
            .va_for_model(name, name, "10", &format!("m-{name}"))
            .await;
        scene.load(name, 0.95);
    }
    scene.wait_reported(2).await;
    let dir = support::process::temp_dir("wva-gpu-dumps");
    let run = support::controller::Run {
        env: vec![("WVA_NODE_SELECTOR".into(), format!("wva-test={}", scene.ns))],
        ..Default::default()
    };
    let wva = scene.wva_with("direct", &["--dump-snapshots", dir.to_str().unwrap()], &run);
    scene.wait_spec_replicas("alpha", 2, T).await;
    wva.cycles_pass(3, T).await;
    assert_eq!(
        scene.spec_replicas("beta").await,
        1,
        "beta had no GPUs left"
    );
    assert_eq!(scene.spec_replicas("alpha").await, 2);

    // The cycle that scaled alpha: its report says why beta did not scale, and `wva analyze`
    // replays the same limits from the dumped snapshot.
    let mut reports: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("-report.json"))
        .collect();
    reports.sort();
    let (path, report) = reports
        .iter()
        .find_map(|p| {
            let report: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
            let alpha = report["decisions"]
                .as_array()?
                .iter()
                .find(|d| d["name"] == "alpha")?;
            (alpha["action"] == "scale-up").then_some((p.clone(), report))
        })
        .expect("a cycle that scaled alpha up");
    let beta = report["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "beta")
        .unwrap();
    let step = beta["steps"].as_array().unwrap().last().unwrap();
    assert_eq!(step["stage"], "gpu-limiter", "{beta}");
    assert_eq!(
        step["note"],
        "limited: allocated 0 GPUs for +0 of +1 replicas (2 A100 GPU(s) per replica, 0 free)",
        "{beta}"
    );
    assert_eq!(beta["action"], "no-change");
    let snapshot = path
        .to_string_lossy()
        .replace("-report.json", "-snapshot.json");
    let text = std::fs::read_to_string(&snapshot).unwrap();
    let dumped: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        dumped["gpuInventory"],
        serde_json::json!({"A100": {"allocatable": 8, "requestedByOthers": 2}})
    );
    for _ in 0..3 {
        let replayed = support::controller::analyze(std::path::Path::new(&snapshot));
        assert_eq!(replayed, report);
    }

    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(scene.client.clone());
    for name in [&selected, &ignored] {
        nodes.delete(name, &Default::default()).await.unwrap();
    }
}

/// Every dumped pair in `dir` whose snapshot carries a `wvaNextState`, replayed with
/// `wva analyze --policy wva-next`: the report must be the live one, state included. Returns
/// how many were replayed.
fn replay_wva_next_dumps(dir: &std::path::Path) -> usize {
    let mut replayed = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let snapshot = entry.unwrap().path();
        let name = snapshot.to_string_lossy().into_owned();
        if !name.ends_with("-snapshot.json") {
            continue;
        }
        let (Ok(text), Ok(report)) = (
            std::fs::read_to_string(&snapshot),
            std::fs::read_to_string(name.replace("-snapshot.json", "-report.json")),
        ) else {
            continue; // rotated away meanwhile
        };
        if !text.contains("\"wvaNextState\"") {
            continue;
        }
        let live: serde_json::Value = serde_json::from_str(&report).unwrap();
        let again = support::controller::analyze_with(&snapshot, &["--policy", "wva-next"]);
        assert_eq!(again, live, "{name}");
        replayed += 1;
    }
    replayed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wva_next_sizes_from_the_served_rate_at_once_holds_and_scales_down_after_the_delay() {
    let scene = Scene::new("ctl-next", "2s").await;
    scene
        .config_map(
            wva::config::saturation::CONFIG_MAP_NAME,
            serde_json::json!({"default": "capacityRps:\n  A100: 10\nstableWindow: 10s\npanicWindow: 4s\nscaleDownDelay: 10s\nstartupTime: 10s\n"}),
        )
        .await;
    scene.variant("decode", 1, "10").await;
    scene.serve_rate("decode", 30.0);
    scene.wait_reported(1).await;
    // A one-minute rate under-reports a series younger than a minute (Prometheus divides by
    // the whole range): wait until the counter has a minute of history, as a serving pod has.
    let total = format!(
        "sum(rate({}{{namespace=\"{}\"}}[1m]))",
        wva::prometheus::promql::REQUEST_SUCCESS_METRIC,
        scene.ns
    );
    wait_for(
        Duration::from_secs(90),
        "30 req/s in Prometheus",
        || async {
            let rate = scene.query(&total).first().map_or(0.0, |s| s.1);
            ((rate - 30.0).abs() < 1.5).then_some(())
        },
    )
    .await;
    let dir = support::process::temp_dir("wva-next-dumps");
    let wva = scene.wva(
        "direct",
        &[
            "--policy",
            "wva-next",
            "--dump-snapshots",
            dir.to_str().unwrap(),
        ],
    );
    // 30 requests/s on replicas of 10 sized to 0.8: 3.75, so 4 — in one step, not one a cycle.
    scene.wait_spec_replicas("decode", 4, T).await;
    assert_eq!(scene.scale_writes(), [4], "one /scale write, straight to 4");
    scene
        .wait_event(
            "VariantAutoscaling",
            "decode",
            &scene.ns,
            |(reason, note)| {
                reason == "ScaledUp" && note.starts_with("Deployment decode 1 -> 4 replicas: ")
            },
        )
        .await;
    // The demand is unchanged on 4 replicas: it holds (the served rate is the model's, not
    // per pod), and what it learned is in its state.
    wva.cycles_pass(5, T).await;
    assert_eq!(scene.spec_replicas("decode").await, 4);
    assert!(replay_wva_next_dumps(&dir) >= 5);
    let newest = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("-snapshot.json"))
        .max()
        .unwrap();
    let snapshot: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&newest).unwrap()).unwrap();
    let variant = &snapshot["variants"][0];
    assert_eq!(
        variant["readyPods"].as_array().unwrap().len(),
        4,
        "{variant}"
    );
    let served: f64 = variant["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["servedRps"].as_f64().unwrap())
        .sum();
    assert!((served - 30.0).abs() < 3.0, "Σ servedRps {served}");
    // The newest waiting count of every pod (the fifth query), nothing waiting.
    for pod in variant["pods"].as_array().unwrap() {
        assert_eq!(pod["waiting"].as_f64(), Some(0.0), "{pod}");
    }
    let startups =
        &snapshot["wvaNextState"]["variants"][format!("{}/decode", scene.ns)]["startups"];
    assert_eq!(startups.as_array().map(Vec::len), Some(4), "{startups}");

    // Demand falls to 4 requests/s: one replica is enough, but only once the rate has stayed
    // low for the scale-down delay over a full window. Prometheus's one-minute rate comes down
    // over a minute, so the replicas go in steps, never back up.
    let lowered = Instant::now();
    scene.serve_rate("decode", 4.0);
    scene
        .wait_spec_replicas("decode", 1, Duration::from_secs(150))
        .await;
    let waited = lowered.elapsed();
    let writes = scene.scale_writes();
    eprintln!(
        "wva-next scale-down 4 -> 1 after {:.0}s, /scale writes {writes:?}",
        waited.as_secs_f64()
    );
    assert!(waited > Duration::from_secs(10), "{waited:?}");
    assert!(
        writes[0] == 4 && writes.windows(2).all(|w| w[1] < w[0]),
        "up once, then only down: {writes:?}"
    );
    assert!(replay_wva_next_dumps(&dir) >= 10);
}
