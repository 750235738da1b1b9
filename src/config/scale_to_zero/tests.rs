use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::config::duration::{HOUR, MINUTE};

fn parse(entries: Value) -> Result<Parsed<ScaleToZeroConfigSet>, Vec<Problem>> {
    let map: BTreeMap<String, Value> = serde_json::from_value(entries).unwrap();
    ScaleToZeroConfigSet::parse(map.iter())
}

fn messages(entries: Value) -> Vec<String> {
    parse(entries)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn retention_period_validation_matches_upstream() {
    assert_eq!(
        validate_retention_period(""),
        Err("retention period cannot be empty".into())
    );
    assert_eq!(
        validate_retention_period("abc"),
        Err("invalid duration format: time: invalid duration \"abc\"".into())
    );
    assert_eq!(
        validate_retention_period("0s"),
        Err("retention period must be positive, got 0s".into())
    );
    assert_eq!(
        validate_retention_period("-5m"),
        Err("retention period must be positive, got -5m0s".into())
    );
    assert_eq!(validate_retention_period("15m"), Ok(15 * MINUTE));
    assert_eq!(
        validate_retention_period("48h"),
        Ok(48 * HOUR),
        "> 24h is accepted"
    );
}

#[test]
fn enabled_resolution_order() {
    let set = parse(json!({
        "default": {"enable_scale_to_zero": true, "retention_period": "15m"},
        "llama": {"model_id": "meta/llama", "enable_scale_to_zero": false},
        "granite": {"model_id": "ibm/granite", "retention_period": "5m"},
    }))
    .unwrap()
    .value;
    assert!(!set.enabled("prod", "meta/llama"), "the override wins");
    assert!(
        set.enabled("prod", "ibm/granite"),
        "unset override inherits default"
    );
    assert!(set.enabled("prod", "other"), "no override: default");
    assert_eq!(set.retention_period("prod", "ibm/granite"), 5 * MINUTE);
    assert_eq!(set.retention_period("prod", "meta/llama"), 15 * MINUTE);

    let empty = ScaleToZeroConfigSet::default();
    assert!(!empty.enabled("prod", "m"), "nothing set: false");
    assert!(
        empty.clone().with_env_default(true).enabled("prod", "m"),
        "WVA_SCALE_TO_ZERO is the last fallback"
    );
    assert_eq!(
        empty.retention_period("prod", "m"),
        DEFAULT_RETENTION_PERIOD
    );
    let explicit_off = parse(json!({"default": {"enable_scale_to_zero": false}}))
        .unwrap()
        .value
        .with_env_default(true);
    assert!(
        !explicit_off.enabled("prod", "m"),
        "the ConfigMap beats the environment"
    );
}

#[test]
fn namespace_is_honoured() {
    let set = parse(json!({
        "a": {"model_id": "m", "namespace": "lab", "enable_scale_to_zero": true},
        "b": {"model_id": "m", "enable_scale_to_zero": false},
    }))
    .unwrap()
    .value;
    assert!(set.enabled("lab", "m"));
    assert!(!set.enabled("prod", "m"));
}

#[test]
fn duplicate_model_ids_smallest_key_wins_with_a_warning() {
    let parsed = parse(json!({
        "b": {"model_id": "m", "retention_period": "2m"},
        "a": {"model_id": "m", "retention_period": "1m"},
    }))
    .unwrap();
    assert_eq!(parsed.value.retention_period("ns", "m"), MINUTE);
    assert_eq!(parsed.warnings.len(), 1);
    assert_eq!(parsed.warnings[0].path, "b");
}

#[test]
fn invalid_entries_are_errors() {
    assert_eq!(
        messages(json!({"default": {"retention_period": "soon"}})),
        ["default: retention_period: invalid duration format: time: invalid duration \"soon\""]
    );
    assert_eq!(
        messages(json!({"default": {"retention_period": "0"}})),
        ["default: retention_period: retention period must be positive, got 0s"]
    );
    assert_eq!(
        messages(json!({"default": {"retention_period": 10}})),
        ["default: retention_period must be a Go duration string such as \"15m\", got 10"]
    );
    assert_eq!(
        messages(json!({"default": {"enable_scale_to_zero": "true"}})),
        ["default: enable_scale_to_zero must be true or false, got \"true\""]
    );
    assert_eq!(
        messages(json!({"x": {"enable_scale_to_zero": true}})),
        [
            "x: model_id is required in an override entry (every key other than \"default\" overrides one model)"
        ]
    );
    // "" means not given.
    let parsed = parse(json!({"default": {"retention_period": ""}})).unwrap();
    assert_eq!(
        parsed.value.retention_period("n", "m"),
        DEFAULT_RETENTION_PERIOD
    );
}

#[test]
fn config_map_data_reads_yaml() {
    let data = BTreeMap::from([
        (
            "default".to_owned(),
            "enable_scale_to_zero: true\nretention_period: \"15m\"\n".to_owned(),
        ),
        (
            "llama-8b-override".to_owned(),
            "model_id: meta/llama-3.1-8b\nnamespace: production\nretention_period: \"5m\"\n"
                .to_owned(),
        ),
    ]);
    let set = ScaleToZeroConfigSet::parse_config_map_data(&data)
        .unwrap()
        .value;
    assert_eq!(
        set.retention_period("production", "meta/llama-3.1-8b"),
        5 * MINUTE
    );
    assert_eq!(
        set.retention_period("staging", "meta/llama-3.1-8b"),
        15 * MINUTE
    );
}
