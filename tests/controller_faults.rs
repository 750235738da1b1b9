//! Controller faults on their own control plane (this binary restarts its API server): `wva run`
//! through a kube-apiserver restart with etcd's history compacted meanwhile, so that every watch
//! breaks and resuming from the last resource version is refused (410 Gone): the caches relist,
//! no cycle acts on a partial cache, nothing is lost, and scaling continues.

mod support;

use std::time::Duration;

use kube::Api;
use kube::api::{DeleteParams, DynamicObject};
use support::control_plane::wait_for;
use support::controller::{Run, Scene, va_resource};

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_rides_out_an_api_server_restart_with_compacted_history() {
    let scene = Scene::new("fault", "2s").await;
    let kubeconfig = scene.controller_service_account(true).await;
    let user = scene.controller_user();
    scene.variant("decode", 1, "10").await;
    scene.variant("gone", 1, "10").await;
    scene.load("decode", 0.5);
    scene.load("gone", 0.5);
    scene.wait_reported(2).await;
    let wva = scene.wva_with(
        "direct",
        &[],
        &Run {
            kubeconfig: Some(kubeconfig),
            ..Default::default()
        },
    );
    scene.wait_optimized("decode").await;
    scene.wait_optimized("gone").await;
    let resolved_since = |va: &DynamicObject| {
        va.data["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "TargetResolved"))
            .map(|c| c["lastTransitionTime"].clone())
    };
    let before = resolved_since(&scene.va_object("decode").await);
    let requests_before = scene.cp.audited_requests_of(&user).len();

    let mut revision = 0;
    scene.cp.restart_apiserver(|| {
        revision = scene.cp.compact_etcd();
        std::thread::sleep(Duration::from_secs(3));
    });
    eprintln!("etcd compacted at revision {revision}; kube-apiserver restarted");

    // Changes after the restart must all arrive: a VA deleted, load that needs a replica.
    let vas: Api<DynamicObject> =
        Api::namespaced_with(scene.client.clone(), &scene.ns, &va_resource());
    wait_for(T, "the VA deletion", || async {
        vas.delete("gone", &DeleteParams::default()).await.ok()
    })
    .await;
    scene.load("decode", 0.95);
    scene.wait_spec_replicas("decode", 2, T).await;
    let gone = format!("variant_name=\"gone\",namespace=\"{}\"", scene.ns);
    wait_for(T, "the deleted VA's series to go", || async {
        (!wva.metrics_text().contains(&gone)).then_some(())
    })
    .await;

    let after: Vec<_> = scene
        .cp
        .audited_requests_of(&user)
        .into_iter()
        .skip(requests_before)
        .collect();
    // Watches that could not resume relisted (which ones depends on where each watch stood
    // when the API server went away; a resumed watch is fine too — what matters is the state).
    let relisted: std::collections::BTreeSet<&str> = after
        .iter()
        .filter(|r| r.verb == "list" && r.code == 200)
        .map(|r| r.resource.as_str())
        .collect();
    eprintln!("relisted after the restart: {relisted:?}");
    assert!(!relisted.is_empty(), "the 410 path ran: {after:#?}");
    // (A restarted API server answers 403 for a moment while its RBAC cache fills: the watches
    // retry with backoff, which is what is tested here, not the 403s.)
    // No cycle acted on a partial cache: the target never looked missing, nothing scaled down.
    assert_eq!(
        resolved_since(&scene.va_object("decode").await),
        before,
        "TargetResolved never flipped"
    );
    let scales = scene.scale_writes();
    assert_eq!(scales, [2], "one scale-up, no scale-down: {scales:?}");
    let log = wva.log_text();
    assert!(
        log.contains("watch failed; retrying"),
        "the watches broke:\n{log}"
    );
}
