//! KEDA tier: the chart's ScaledObject (upstream's `prometheus` trigger on `wva_desired_replicas`)
//! with KEDA's real operator and metrics adapter, built by `make tools`, on its own control plane
//! (KEDA and prometheus-adapter cannot both serve `external.metrics.k8s.io`): a saturated model
//! makes wva publish 2, KEDA's HPA moves the Deployment, and wva writes no `/scale` itself.

mod support;

use std::time::{Duration, Instant};

use support::control_plane::{control_plane_with_autoscaling, wait_for};
use support::ecosystem::{Keda, metrics_path_scene, render};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_keda_path_scales_through_the_charts_scaled_object() {
    let cp = control_plane_with_autoscaling();
    let (scene, wva, prometheus) = metrics_path_scene("keda").await;
    let started = Instant::now();
    let keda = Keda::start(cp);
    eprintln!("KEDA Available in {:.1}s", started.elapsed().as_secs_f64());

    let scaled = render(
        cp,
        "wva",
        &scene.sys,
        &[
            "--show-only",
            "templates/autoscalers.yaml",
            "--set",
            "keda.enabled=true",
            "--set",
            "keda.variants[0].name=llama",
            "--set",
            &format!("keda.variants[0].namespace={}", scene.ns),
            "--set",
            &format!("keda.serverAddress={}", prometheus.http_url()),
            "--set",
            "keda.pollingInterval=1",
        ],
    )
    .unwrap();
    cp.kubectl_stdin_ok(&["apply", "-f", "-"], &scaled);
    wait_for(
        Duration::from_secs(60),
        "KEDA's HPA for the ScaledObject",
        || async {
            cp.kubectl(&["-n", &scene.ns, "get", "hpa", "keda-hpa-llama"])
                .status
                .success()
                .then_some(())
        },
    )
    .await;

    let started = Instant::now();
    scene.load("llama", 1.2);
    scene
        .wait_spec_replicas("llama", 2, Duration::from_secs(90))
        .await;
    eprintln!(
        "KEDA path: load to spec.replicas 2 in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        scene.spec_replicas("llama").await,
        2,
        "KEDA holds what wva publishes"
    );
    assert_eq!(
        wva.sample("wva_scale_writes_total").unwrap_or(0.0),
        0.0,
        "metrics mode: wva writes no /scale"
    );
    drop(keda);
}
