use super::*;
use crate::controller::pods::StuckReason;

fn at(seconds: i64) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap())
}

fn notes(target: Target) -> VariantNotes {
    VariantNotes {
        namespace: "prod".into(),
        name: "va".into(),
        target,
        accelerator_source: "label",
        stuck: Vec::new(),
        reporting: 2,
        stale: 0,
        pods: 2,
    }
}

fn decision(target: u32, reason: &str) -> Decision {
    crate::controller::mock::decision(target, reason)
}

fn observed<'a>(notes: &'a VariantNotes, decision: Option<&'a Decision>) -> Observed<'a> {
    Observed {
        generation: Some(3),
        notes,
        decision,
        collection: Collection::Collected,
        desired: decision.map(|d| d.target_replicas),
        applied: Some(true),
        held: None,
    }
}

fn condition<'a>(status: &'a VariantAutoscalingStatus, type_: &str) -> &'a c::Condition {
    c::find_condition(&status.conditions, type_).unwrap()
}

#[test]
fn the_second_identical_cycle_writes_nothing_even_with_new_numbers_in_the_reason() {
    let n = notes(Target::Found);
    let d = decision(3, "scale-up: spare kv 0.05 < 0.1");
    let first = desired_status(
        &VariantAutoscalingStatus::default(),
        &observed(&n, Some(&d)),
        &at(100),
    )
    .unwrap();
    assert_eq!(
        first.desired_optimized_alloc.as_ref().unwrap().num_replicas,
        3
    );
    assert_eq!(first.actuation, Some(ActuationStatus { applied: true }));
    for type_ in [
        c::TYPE_TARGET_RESOLVED,
        c::TYPE_METRICS_AVAILABLE,
        c::TYPE_OPTIMIZATION_READY,
    ] {
        assert_eq!(condition(&first, type_).status, c::STATUS_TRUE, "{type_}");
        assert_eq!(condition(&first, type_).observed_generation, Some(3));
    }
    let d2 = decision(3, "scale-up: spare kv 0.07 < 0.1");
    assert_eq!(
        desired_status(&first, &observed(&n, Some(&d2)), &at(130)),
        None
    );
}

#[test]
fn a_new_target_is_written_and_keeps_unchanged_transition_times() {
    let n = notes(Target::Found);
    let first = desired_status(
        &VariantAutoscalingStatus::default(),
        &observed(&n, Some(&decision(3, "up"))),
        &at(100),
    )
    .unwrap();
    let next = desired_status(&first, &observed(&n, Some(&decision(4, "up"))), &at(130)).unwrap();
    let alloc = next.desired_optimized_alloc.as_ref().unwrap();
    assert_eq!(
        (alloc.num_replicas, alloc.last_run_time.clone()),
        (4, Some(at(130)))
    );
    assert_eq!(
        condition(&next, c::TYPE_OPTIMIZATION_READY).last_transition_time,
        at(100)
    );
    assert!(
        condition(&next, c::TYPE_OPTIMIZATION_READY)
            .message
            .starts_with("target 4 replicas")
    );
}

#[test]
fn a_missing_target_says_so_and_leaves_the_other_conditions_alone() {
    let n = notes(Target::NotFound("decode".into()));
    let status = desired_status(
        &VariantAutoscalingStatus::default(),
        &observed(&n, None),
        &at(100),
    )
    .unwrap();
    let target = condition(&status, c::TYPE_TARGET_RESOLVED);
    assert_eq!(
        (target.status.as_str(), target.reason.as_str()),
        (c::STATUS_FALSE, c::REASON_TARGET_NOT_FOUND)
    );
    assert_eq!(target.message, "Scale target Deployment decode not found");
    assert!(c::find_condition(&status.conditions, c::TYPE_METRICS_AVAILABLE).is_none());
    assert!(status.desired_optimized_alloc.is_none());
}

#[test]
fn a_prometheus_failure_holds_and_names_the_error() {
    let n = notes(Target::Found);
    let held = Decision {
        metrics_available: false,
        ..decision(2, "no metrics")
    };
    let o = Observed {
        collection: Collection::Failed("connection refused"),
        ..observed(&n, Some(&held))
    };
    let status = desired_status(&VariantAutoscalingStatus::default(), &o, &at(100)).unwrap();
    let metrics = condition(&status, c::TYPE_METRICS_AVAILABLE);
    assert_eq!(
        (metrics.status.as_str(), metrics.reason.as_str()),
        (c::STATUS_FALSE, c::REASON_PROMETHEUS_ERROR)
    );
    assert!(
        metrics.message.contains("connection refused") && metrics.message.contains("holding at 2"),
        "{}",
        metrics.message
    );
    assert_eq!(
        condition(&status, c::TYPE_OPTIMIZATION_READY).reason,
        c::REASON_METRICS_UNAVAILABLE
    );
}

#[test]
fn stuck_pods_and_hpa_conflicts_are_named() {
    let mut n = notes(Target::Found);
    n.stuck = vec![(
        "decode-x".into(),
        StuckReason::ContainerWaiting {
            container: "vllm".into(),
            reason: "ImagePullBackOff".into(),
        },
    )];
    let d = decision(2, "hold");
    let status = desired_status(
        &VariantAutoscalingStatus::default(),
        &observed(&n, Some(&d)),
        &at(1),
    )
    .unwrap();
    let ready = condition(&status, c::TYPE_OPTIMIZATION_READY);
    assert_eq!(ready.reason, REASON_STUCK_REPLICAS);
    assert!(
        ready.message.contains("pod decode-x") && ready.message.contains("ImagePullBackOff"),
        "{}",
        ready.message
    );
    let o = Observed {
        held: Some("HorizontalPodAutoscaler decode-hpa scales Deployment decode"),
        ..observed(&n, Some(&d))
    };
    let status = desired_status(&VariantAutoscalingStatus::default(), &o, &at(1)).unwrap();
    assert_eq!(
        condition(&status, c::TYPE_OPTIMIZATION_READY).reason,
        REASON_HPA_CONFLICT
    );
}

#[test]
fn a_one_character_accelerator_is_never_written() {
    let n = notes(Target::Found);
    let d = Decision {
        accelerator: "x".into(),
        ..decision(3, "up")
    };
    let status = desired_status(
        &VariantAutoscalingStatus::default(),
        &observed(&n, Some(&d)),
        &at(1),
    )
    .unwrap();
    assert!(
        status.desired_optimized_alloc.is_none(),
        "fails the CRD's minLength 2"
    );
}
