use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;

fn parse(entries: Value) -> Result<Parsed<SaturationConfigSet>, Vec<Problem>> {
    let map: BTreeMap<String, Value> = serde_json::from_value(entries).unwrap();
    SaturationConfigSet::parse(map.iter())
}

fn messages(entries: Value) -> Vec<String> {
    parse(entries)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn config(kv: f64, queue: f64, kv_spare: f64, queue_spare: f64) -> SaturationScalingConfig {
    SaturationScalingConfig {
        kv_cache_threshold: kv,
        queue_length_threshold: queue,
        kv_spare_trigger: kv_spare,
        queue_spare_trigger: queue_spare,
        ..Default::default()
    }
}

#[test]
fn validate_rules_in_upstream_order_and_wording() {
    assert_eq!(
        config(1.5, 5.0, 0.1, 3.0).validate(),
        ["kvCacheThreshold must be between 0 and 1, got 1.50"]
    );
    assert_eq!(
        config(-0.1, 5.0, 0.0, 3.0).validate()[0],
        "kvCacheThreshold must be between 0 and 1, got -0.10"
    );
    assert_eq!(
        config(0.8, -1.0, 0.1, 3.0).validate(),
        ["queueLengthThreshold must be >= 0, got -1.0"]
    );
    assert_eq!(
        config(0.8, 5.0, 1.2, 3.0).validate()[0],
        "kvSpareTrigger must be between 0 and 1, got 1.20"
    );
    assert_eq!(
        config(0.8, 5.0, 0.1, -3.0).validate(),
        ["queueSpareTrigger must be >= 0, got -3.0"]
    );
    assert_eq!(
        config(0.5, 5.0, 0.6, 3.0).validate(),
        ["kvCacheThreshold (0.50) should be >= kvSpareTrigger (0.60)"]
    );
    // Every failing rule is listed, in the upstream order.
    assert_eq!(
        config(1.5, -1.0, 2.0, -1.0).validate(),
        [
            "kvCacheThreshold must be between 0 and 1, got 1.50",
            "queueLengthThreshold must be >= 0, got -1.0",
            "kvSpareTrigger must be between 0 and 1, got 2.00",
            "queueSpareTrigger must be >= 0, got -1.0",
            "kvCacheThreshold (1.50) should be >= kvSpareTrigger (2.00)",
        ]
    );
}

#[test]
fn validate_boundaries_are_inclusive() {
    assert!(
        config(0.0, 0.0, 0.0, 0.0).validate().is_empty(),
        "all-zero is valid"
    );
    assert!(config(1.0, 1000.0, 1.0, 1000.0).validate().is_empty());
    assert!(
        config(0.5, 0.0, 0.5, 0.0).validate().is_empty(),
        "kvCacheThreshold == kvSpareTrigger"
    );
}

#[test]
fn default_entry_fills_documented_defaults() {
    let parsed = parse(json!({"default": {"kvCacheThreshold": 0.9}})).unwrap();
    let d = parsed.value.default_entry();
    assert_eq!(
        (
            d.kv_cache_threshold,
            d.queue_length_threshold,
            d.kv_spare_trigger,
            d.queue_spare_trigger
        ),
        (0.9, 5.0, 0.1, 3.0)
    );
    assert!(!d.enable_limiter);
    let empty = parse(json!({"default": {}})).unwrap();
    assert_eq!(
        empty.value.default_entry(),
        &SaturationScalingConfig::default()
    );
}

#[test]
fn overrides_inherit_from_default_and_apply() {
    let parsed = parse(json!({
        "default": {"kvCacheThreshold": 0.7, "queueLengthThreshold": 4},
        "granite": {"model_id": "ibm/granite-13b", "kvSpareTrigger": 0.2},
    }))
    .unwrap();
    let (key, entry) = parsed.value.for_model("any", "ibm/granite-13b");
    assert_eq!(key, "granite");
    assert_eq!(
        (
            entry.kv_cache_threshold,
            entry.queue_length_threshold,
            entry.kv_spare_trigger,
            entry.queue_spare_trigger
        ),
        (0.7, 4.0, 0.2, 3.0)
    );
    let (key, entry) = parsed.value.for_model("any", "other/model");
    assert_eq!(key, "default");
    assert_eq!(entry.kv_cache_threshold, 0.7);
}

#[test]
fn override_selection_prefers_namespace_then_smallest_key() {
    let parsed = parse(json!({
        "default": {},
        "b-generic": {"model_id": "m", "kvCacheThreshold": 0.61},
        "a-generic": {"model_id": "m", "kvCacheThreshold": 0.62},
        "z-lab": {"model_id": "m", "namespace": "lab", "kvCacheThreshold": 0.63},
        "y-lab": {"model_id": "m", "namespace": "lab", "kvCacheThreshold": 0.64},
        "x-empty-ns": {"model_id": "m", "namespace": "", "kvCacheThreshold": 0.65},
    }))
    .unwrap();
    let set = &parsed.value;
    assert_eq!(set.for_model("lab", "m").0, "y-lab");
    assert_eq!(set.for_model("prod", "m").0, "a-generic");
    assert_eq!(set.for_model("prod", "other").0, "default");
    let shadowed: Vec<&str> = parsed.warnings.iter().map(|w| w.path.as_str()).collect();
    assert!(
        shadowed.contains(&"b-generic")
            && shadowed.contains(&"z-lab")
            && shadowed.contains(&"x-empty-ns"),
        "{shadowed:?}"
    );
}

#[test]
fn invalid_entries_are_errors_naming_the_key() {
    assert_eq!(
        messages(json!({"default": {"kvCacheThreshold": 1.5}})),
        ["default: kvCacheThreshold must be between 0 and 1, got 1.50"]
    );
    // The override is validated after inheriting: 0.3 < default's kvSpareTrigger 0.4.
    assert_eq!(
        messages(
            json!({"default": {"kvSpareTrigger": 0.4}, "o": {"model_id": "m", "kvCacheThreshold": 0.3}})
        ),
        ["o: kvCacheThreshold (0.30) should be >= kvSpareTrigger (0.40)"]
    );
    assert_eq!(
        messages(json!({"default": {"kvCacheThreshold": "0.8"}})),
        ["default: kvCacheThreshold must be a number, got \"0.8\""]
    );
    assert_eq!(
        messages(json!({"default": {"enableLimiter": "yes"}})),
        ["default: enableLimiter must be true or false, got \"yes\""]
    );
    assert_eq!(
        messages(json!({"default": 3})),
        ["default: must be a mapping of settings, got 3"]
    );
    assert_eq!(
        messages(json!({"default": {}, "o": {"kvCacheThreshold": 0.5}})),
        [
            "o: model_id is required in an override entry (every key other than \"default\" overrides one model)"
        ]
    );
    let missing = messages(json!({"o": {"model_id": "m"}}));
    assert!(
        missing[0].starts_with("default: required entry is missing"),
        "{missing:?}"
    );
}

#[test]
fn unknown_fields_are_warnings_not_errors() {
    let parsed = parse(json!({"default": {"kvCacheTreshold": 0.5}})).unwrap();
    assert_eq!(parsed.value.default_entry().kv_cache_threshold, 0.8);
    assert!(
        parsed.warnings[0]
            .message
            .contains("unknown field \"kvCacheTreshold\"")
    );
}

#[test]
fn config_map_yaml_is_parsed_per_key() {
    let data = BTreeMap::from([
        ("default".to_owned(), "kvCacheThreshold: 0.80\nqueueLengthThreshold: 5\nkvSpareTrigger: 0.1\nqueueSpareTrigger: 3\n".to_owned()),
        ("granite".to_owned(), "model_id: ibm/granite-13b\nnamespace: lab\nqueueSpareTrigger: 2\n".to_owned()),
    ]);
    let parsed = SaturationConfigSet::parse_config_map_data(&data).unwrap();
    assert_eq!(
        parsed
            .value
            .for_model("lab", "ibm/granite-13b")
            .1
            .queue_spare_trigger,
        2.0
    );

    let bad = BTreeMap::from([
        ("default".to_owned(), "kvCacheThreshold: [\n".to_owned()),
        (
            "nan".to_owned(),
            "model_id: m\nkvCacheThreshold: .nan\n".to_owned(),
        ),
    ]);
    let problems = SaturationConfigSet::parse_config_map_data(&bad).unwrap_err();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].to_string().starts_with("default: invalid YAML"));
    assert!(problems[1].to_string().contains("not a finite number"));
}

#[test]
fn queue_settings_near_f64_max_are_refused() {
    let errors =
        parse(json!({"default": {"queueLengthThreshold": 1.0e308, "queueSpareTrigger": 2.0e6}}))
            .unwrap_err();
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        text.iter().any(|e| e.contains("queueLengthThreshold must be at most 1000000 requests, got 1e308")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|e| e.contains("queueSpareTrigger must be at most")),
        "{text:?}"
    );
}

#[test]
fn max_pending_duration_is_a_go_duration_of_at_least_a_minute() {
    let parsed =
        parse(json!({"default": {"maxPendingDuration": "20m"}, "o": {"model_id": "m"}})).unwrap();
    assert_eq!(
        parsed.value.default_entry().max_pending_duration,
        20 * MINUTE
    );
    assert_eq!(
        parsed.value.for_model("prod", "m").1.max_pending_duration,
        20 * MINUTE,
        "inherited"
    );
    let defaulted = parse(json!({"default": {}})).unwrap();
    assert_eq!(
        defaulted.value.default_entry().max_pending_duration,
        15 * MINUTE
    );
    for (text, want) in [
        ("soon", "must be a Go duration such as 15m"),
        ("30s", "must be at least 1m"),
    ] {
        let errors = parse(json!({"default": {"maxPendingDuration": text}})).unwrap_err();
        assert!(errors[0].to_string().contains(want), "{errors:?}");
    }
}
