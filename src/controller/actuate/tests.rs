use super::*;
use crate::controller::mock;
use serde_json::json;

fn decision(target: u32, metrics: bool) -> Decision {
    Decision {
        metrics_available: metrics,
        ..mock::decision(target, "r")
    }
}

#[test]
fn plans() {
    assert_eq!(
        plan(Mode::Metrics, &decision(3, true), 2, None),
        Plan::Publish
    );
    assert_eq!(
        plan(Mode::Direct, &decision(3, true), 2, None),
        Plan::Scale { from: 2, to: 3 }
    );
    assert_eq!(
        plan(Mode::Direct, &decision(1, true), 2, None),
        Plan::Scale { from: 2, to: 1 }
    );
    assert_eq!(
        plan(Mode::Direct, &decision(2, true), 2, None),
        Plan::Publish,
        "already there: no write"
    );
    assert_eq!(
        plan(Mode::Direct, &decision(0, false), 2, None),
        Plan::Publish,
        "never act without metrics"
    );
    match plan(Mode::Direct, &decision(3, true), 2, Some("decode-hpa")) {
        Plan::Hold(why) => assert!(
            why.contains("decode-hpa") && why.contains("Deployment decode"),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_autoscaler_of_a_deployment_is_found_by_kind_name_and_namespace() {
    let hpa = |ns: &str, name: &str, kind: &str, target: &str| {
        Arc::new(serde_json::from_value::<HorizontalPodAutoscaler>(json!({
            "metadata": {"name": name, "namespace": ns},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": target}, "maxReplicas": 5}
        })).unwrap())
    };
    let all = vec![
        hpa("dev", "a", "Deployment", "decode"),
        hpa("prod", "b", "StatefulSet", "decode"),
        hpa("prod", "c", "Deployment", "decode"),
    ];
    assert_eq!(autoscaler_of(&all, "prod", "decode"), Some("c"));
    assert_eq!(autoscaler_of(&all, "prod", "prefill"), None);
}

#[tokio::test]
async fn scaling_is_one_merge_patch_of_the_scale_subresource() {
    let (client, recorded) = mock::client(vec![(
        200,
        json!({
            "apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": {"name": "decode", "namespace": "prod"}, "spec": {"replicas": 3}
        }),
    )]);
    scale(&client, "prod", "decode", 3).await.unwrap();
    let recorded = recorded.lock().unwrap();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0].method, "PATCH");
    assert_eq!(
        recorded[0].path_and_query,
        "/apis/apps/v1/namespaces/prod/deployments/decode/scale?&fieldManager=wva"
    );
    assert_eq!(
        recorded[0].content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    assert_eq!(recorded[0].body, json!({"spec": {"replicas": 3}}));
}
