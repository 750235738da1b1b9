//! Scale-from-zero tier: `wva run` against a real control plane with the Gateway API Inference
//! Extension's InferencePool CRDs (both groups, from its Go module), an endpoint picker whose
//! pod the test makes Ready at 127.0.0.1 behind a Service whose metrics port is a local exporter
//! the test controls, and a real Prometheus for the vLLM side. Its own test binary: its own
//! control plane, so the controller tier can prove wva's behaviour without the CRDs.

mod support;

use std::sync::Once;
use std::time::{Duration, Instant};

use serde_json::json;
use support::control_plane::{control_plane, set_pod_waiting, wait_for};
use support::controller::{Run, Scene};
use support::prometheus::Exporter;

const T: Duration = Duration::from_secs(40);
const EXPERIMENTAL: &str = "inference.networking.x-k8s.io/v1alpha2";
const STABLE: &str = "inference.networking.k8s.io/v1";

/// Installs both InferencePool CRDs once per test binary.
fn install_pool_crds() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let crds = support::ecosystem::ecosystem_dir("crds");
        let cp = control_plane();
        for file in [
            "inference.networking.x-k8s.io_inferencepools.yaml",
            "inference.networking.k8s.io_inferencepools.yaml",
        ] {
            cp.kubectl_ok(&[
                "apply",
                "--server-side",
                "-f",
                crds.join(file).to_str().unwrap(),
            ]);
        }
        for crd in [
            "inferencepools.inference.networking.x-k8s.io",
            "inferencepools.inference.networking.k8s.io",
        ] {
            cp.kubectl_ok(&[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                &format!("crd/{crd}"),
            ]);
        }
    });
}

/// A model name as a label value (no `/`).
fn label(model: &str) -> String {
    model.replace('/', "-")
}

/// The EPP's exposition with `queued` requests waiting for `model`.
fn queue(model: &str, queued: u32) -> String {
    format!(
        "# TYPE inference_extension_flow_control_queue_size gauge\ninference_extension_flow_control_queue_size{{fairness_id=\"default\",priority=\"0\",target_model_name=\"{model}\"}} {queued}\n"
    )
}

/// A scene with an InferencePool of `api_version` selecting `pool=<model>` (as a label value) and its EPP; returns
/// the EPP's exporter.
async fn pool_scene(prefix: &str, api_version: &str, model: &str) -> (Scene, Exporter) {
    install_pool_crds();
    let scene = Scene::new(prefix, "1s").await;
    let epp = Exporter::start();
    epp.set(&queue(model, 0));
    scene.endpoint_picker("epp", epp.addr.port()).await;
    scene
        .inference_pool(api_version, "pool", json!({"pool": label(model)}), "epp")
        .await;
    (scene, epp)
}

/// Two variants of `model` at zero replicas in the pool: `cheap` (cost 5), `pricey` (cost 20).
async fn two_sleeping_variants(scene: &Scene, model: &str) {
    for (name, cost) in [("pricey", "20"), ("cheap", "5")] {
        scene
            .deployment_full(name, 0, 0, json!({"pool": label(model)}))
            .await;
        scene.va_for_model(name, name, cost, model).await;
    }
}

/// The note of the `ScaledFromZero` Event about VA `name`.
async fn woken_note(scene: &Scene, name: &str) -> String {
    let events = scene
        .wait_event("VariantAutoscaling", name, &scene.ns, |(reason, _)| {
            reason == "ScaledFromZero"
        })
        .await;
    events
        .into_iter()
        .find(|(reason, _)| reason == "ScaledFromZero")
        .unwrap()
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_requests_wake_exactly_the_cheapest_variant_within_two_seconds() {
    let model = "org/sleepy";
    let (scene, epp) = pool_scene("sfz-wake", EXPERIMENTAL, model).await;
    two_sleeping_variants(&scene, model).await;
    // As the shipped ClusterRole's ServiceAccount: it must be enough for scale-from-zero.
    let run = Run {
        kubeconfig: Some(scene.controller_service_account(false).await),
        ..Run::default()
    };
    let wva = scene.wva_with("direct", &[], &run);
    wva.cycles_pass(2, T).await;
    let log = wva.log_text();
    assert!(log.contains("scale-from-zero on"), "{log}");
    assert_eq!(
        scene.spec_replicas("cheap").await,
        0,
        "no queue, no wake-up"
    );

    epp.set(&queue(model, 3));
    let queued = Instant::now();
    scene
        .wait_spec_replicas("cheap", 1, Duration::from_secs(10))
        .await;
    let latency = queued.elapsed();
    eprintln!(
        "EPP queue -> /scale 0 -> 1: {:.2}s (interval 1s)",
        latency.as_secs_f64()
    );
    assert!(latency < Duration::from_secs(2), "{latency:?}");
    // The saturation cycle and later polls leave the other variant asleep.
    wva.cycles_pass(3, T).await;
    assert_eq!(scene.spec_replicas("pricey").await, 0);
    assert_eq!(scene.spec_replicas("cheap").await, 1);
    assert_eq!(scene.scale_writes(), vec![1], "one /scale write in all");

    let note = woken_note(&scene, "cheap").await;
    assert!(
        note.contains("3 requests queued for model org/sleepy at endpoint picker"),
        "{note}"
    );
    let counter = scene.scaled_up_counter("cheap", "scale-from-zero");
    assert_eq!(wva.sample(&counter), Some(1.0), "{}", wva.metrics_text());
    assert_eq!(wva.sample(&scene.desired_gauge("cheap")), Some(1.0));
    let requests = scene.cp.audited_requests_of(&scene.controller_user());
    let denied: Vec<_> = requests.iter().filter(|r| r.code == 403).collect();
    assert!(denied.is_empty(), "403s: {denied:#?}");
    let made = |verb: &str, resource: &str| {
        requests
            .iter()
            .any(|r| r.verb == verb && r.resource == resource && r.code < 300)
    };
    assert!(
        made("watch", "inferencepools") && made("get", "services"),
        "{requests:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_woken_variant_hands_over_to_the_next_cheapest() {
    let model = "org/stuck";
    let (scene, epp) = pool_scene("sfz-stuck", EXPERIMENTAL, model).await;
    two_sleeping_variants(&scene, model).await;
    scene.hold("cheap", true);
    // Metrics actuation: the wake-up still goes through /scale (nothing else would bring a
    // Deployment back from 0), and the cycle writes no /scale of its own.
    let wva = scene.wva("metrics", &[]);
    wva.cycles_pass(1, T).await;
    epp.set(&queue(model, 2));
    scene.wait_spec_replicas("cheap", 1, T).await;
    let pod = wait_for(T, "cheap's pod", || async {
        scene.pods_of("cheap").await.into_iter().next()
    })
    .await
    .metadata
    .name
    .unwrap();
    // Loading (not Ready, no reason yet) is not stuck: nobody else is woken meanwhile.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        scene.spec_replicas("pricey").await,
        0,
        "woken while cheap was loading"
    );

    set_pod_waiting(
        &scene.client,
        &scene.ns,
        &pod,
        "ImagePullBackOff",
        "Back-off pulling image",
    )
    .await;
    let stuck = Instant::now();
    scene.wait_spec_replicas("pricey", 1, T).await;
    assert!(
        stuck.elapsed() < Duration::from_secs(3),
        "{:?}",
        stuck.elapsed()
    );
    assert_eq!(
        scene.spec_replicas("cheap").await,
        1,
        "the stuck variant is kept, not scaled down"
    );
    let note = woken_note(&scene, "pricey").await;
    assert!(
        note.contains("Deployment cheap woken before is not available")
            && note.contains("ImagePullBackOff"),
        "{note}"
    );
    wva.cycles_pass(2, T).await;
    assert_eq!(scene.scale_writes(), vec![1, 1]);
    // The HPA's figure follows the wake-ups, and the status keeps it for the next cycles.
    for name in ["cheap", "pricey"] {
        let gauge = scene.desired_gauge(name);
        assert_eq!(wva.sample(&gauge), Some(1.0), "{}", wva.metrics_text());
        let va = scene.va_object(name).await;
        assert_eq!(
            va.data["status"]["desiredOptimizedAlloc"]["numReplicas"], 1,
            "{name}"
        );
    }
}

/// The whole round trip on the v1 group: idle → 0 (scale-to-zero) → a request queued at the EPP
/// → 1 → served, and the wake-up is not undone before the request is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_to_zero_and_back_when_a_request_waits() {
    let model = "org/round-trip";
    let (scene, epp) = pool_scene("sfz-trip", STABLE, model).await;
    scene
        .config_map(
            "model-scale-to-zero-config",
            json!({"default": "enable_scale_to_zero: true\nretention_period: 20s\n"}),
        )
        .await;
    scene
        .deployment_full("solo", 1, 0, json!({"pool": label(model)}))
        .await;
    scene.va_for_model("solo", "solo", "10", model).await;
    scene.serve("solo", 0.0);
    let run = Run {
        env: vec![("POOL_GROUP".into(), "inference.networking.k8s.io".into())],
        ..Run::default()
    };
    let wva = scene.wva_with("direct", &[], &run);
    // Idle: no successful request over the retention period.
    scene
        .wait_spec_replicas("solo", 0, Duration::from_secs(60))
        .await;
    wait_for(T, "solo's pod gone", || async {
        scene.pods_of("solo").await.is_empty().then_some(())
    })
    .await;

    epp.set(&queue(model, 1));
    let queued = Instant::now();
    scene
        .wait_spec_replicas("solo", 1, Duration::from_secs(10))
        .await;
    assert!(
        queued.elapsed() < Duration::from_secs(2),
        "{:?}",
        queued.elapsed()
    );
    // The pod comes up and reports; the request is still being served (not yet counted):
    // scale-to-zero must not undo the wake-up meanwhile.
    wait_for(T, "solo's pod ready", || async {
        scene.pods_of("solo").await.into_iter().find(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
    })
    .await;
    epp.set(&queue(model, 0));
    wva.cycles_pass(6, T).await;
    assert_eq!(
        scene.spec_replicas("solo").await,
        1,
        "put back to sleep before serving"
    );
    // Served.
    scene.serve("solo", 1.0);
    wva.cycles_pass(3, T).await;
    assert_eq!(scene.spec_replicas("solo").await, 1);
    let writes = scene.scale_writes();
    assert_eq!(writes, vec![0, 1], "{writes:?}");
}
