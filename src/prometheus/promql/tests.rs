use super::*;

#[test]
fn escapes_backslash_quote_and_newline() {
    assert_eq!(
        escape("prod\",malicious=\"attack"),
        "prod\\\",malicious=\\\"attack"
    );
    assert_eq!(escape("a\\\"b"), "a\\\\\\\"b");
    assert_eq!(escape("x\"} or vector(1) #"), "x\\\"} or vector(1) #");
    assert_eq!(escape("trailing\\"), "trailing\\\\");
    assert_eq!(escape("line\nbreak"), "line\\nbreak");
    assert_eq!(escape("ünïcödé/模型"), "ünïcödé/模型");
}

#[test]
fn hostile_namespaces_are_errors_not_queries() {
    for ns in [
        "prod\",malicious=\"attack",
        "a\\\"b",
        "x\"} or vector(1) #",
        "trailing\\",
        "new\nline",
        "Prod",
        "",
        "ünï",
    ] {
        let err = kv_cache_usage(&[ModelKey::new(ns, "m")]).unwrap_err();
        assert!(matches!(err, PromqlError::Namespace(..)), "{ns:?}: {err}");
    }
}

#[test]
fn model_ids_with_control_characters_are_errors() {
    for m in ["line\nbreak", "tab\there", "nul\0", "", "del\u{7f}"] {
        assert!(
            matches!(
                queue_length(&[ModelKey::new("prod", m)]),
                Err(PromqlError::ModelId(..))
            ),
            "{m:?}"
        );
    }
}

#[test]
fn printable_model_ids_are_escaped_and_match_literally() {
    let q = kv_cache_usage(&[ModelKey::new("prod", "x\"} or vector(1) #\\")]).unwrap();
    assert_eq!(
        q,
        "max by (namespace, model_name, pod) (max_over_time(vllm:kv_cache_usage_perc{namespace=\"prod\",model_name=\"x\\\"} or vector(1) #\\\\\"}[1m]))"
    );
}

/// Every per-pod query (KV-cache use and queue for both policies, served rate and newest waiting
/// count for `wva-next`): the value escaped inside its selector, a hostile namespace an error,
/// no models an error.
#[test]
fn each_per_pod_query_is_escaped_and_refuses_hostile_names() {
    type Query = fn(&[ModelKey]) -> Result<String, PromqlError>;
    let selector = "{namespace=\"prod\",model_name=\"x\\\"} or vector(1) #\"}[1m]";
    let cases: [(&str, Query, &str); 4] = [
        (
            "kv",
            kv_cache_usage,
            "max by (namespace, model_name, pod) (max_over_time(vllm:kv_cache_usage_perc",
        ),
        (
            "queue",
            queue_length,
            "max by (namespace, model_name, pod) (max_over_time(vllm:num_requests_waiting",
        ),
        (
            "served",
            served_rate,
            "sum by (namespace, model_name, pod) (rate(vllm:request_success_total",
        ),
        (
            "waiting",
            waiting_now,
            "max by (namespace, model_name, pod) (last_over_time(vllm:num_requests_waiting",
        ),
    ];
    for (name, query, head) in cases {
        let q = query(&[ModelKey::new("prod", "x\"} or vector(1) #")]).unwrap();
        assert_eq!(q, format!("{head}{selector}))"), "{name}");
        assert!(
            matches!(
                query(&[ModelKey::new("Bad NS", "m")]),
                Err(PromqlError::Namespace(..))
            ),
            "{name}"
        );
        assert_eq!(query(&[]), Err(PromqlError::NoModels), "{name}");
    }
}

#[test]
fn models_are_batched_with_or() {
    let models = [
        ModelKey::new("prod", "meta/llama-3.1-8b"),
        ModelKey::new("lab", "ibm/granite"),
    ];
    assert_eq!(
        queue_length(&models).unwrap(),
        "max by (namespace, model_name, pod) ((max_over_time(vllm:num_requests_waiting{namespace=\"prod\",model_name=\"meta/llama-3.1-8b\"}[1m]) or max_over_time(vllm:num_requests_waiting{namespace=\"lab\",model_name=\"ibm/granite\"}[1m])))"
    );
    assert_eq!(
        request_count(&[
            (models[0].clone(), 10 * MINUTE),
            (models[1].clone(), 90 * MINUTE)
        ])
        .unwrap(),
        "sum by (namespace, model_name) ((increase(vllm:request_success_total{namespace=\"prod\",model_name=\"meta/llama-3.1-8b\"}[10m]) or increase(vllm:request_success_total{namespace=\"lab\",model_name=\"ibm/granite\"}[90m])))"
    );
    assert_eq!(kv_cache_usage(&[]), Err(PromqlError::NoModels));
}

#[test]
fn prometheus_durations_match_upstream() {
    for (nanos, text) in [
        (90 * MINUTE, "90m"),
        (SECOND / 10, "1s"),
        (0, "1s"),
        (SECOND + SECOND / 2, "1s"),
        (48 * HOUR, "2d"),
        (25 * HOUR, "25h"),
        (2 * HOUR, "2h"),
        (10 * MINUTE, "10m"),
        (61 * SECOND, "61s"),
        (2 * SECOND + 1, "2s"),
        (-5, "1s"),
    ] {
        assert_eq!(format_prometheus_duration(nanos), text, "{nanos}");
    }
}

#[test]
fn many_models_form_a_balanced_or_tree() {
    let models: Vec<ModelKey> = (0..5)
        .map(|i| ModelKey::new("ns", format!("m{i}")))
        .collect();
    let q = kv_cache_usage(&models).unwrap();
    let sel = |i: usize| {
        format!(
            "max_over_time(vllm:kv_cache_usage_perc{{namespace=\"ns\",model_name=\"m{i}\"}}[1m])"
        )
    };
    assert_eq!(
        q,
        format!(
            "max by (namespace, model_name, pod) ((({} or {}) or ({} or ({} or {}))))",
            sel(0),
            sel(1),
            sel(2),
            sel(3),
            sel(4)
        )
    );
    let many: Vec<ModelKey> = (0..500)
        .map(|i| ModelKey::new("ns", format!("m{i}")))
        .collect();
    let q = queue_length(&many).unwrap();
    let depth = q
        .chars()
        .scan(0i32, |d, c| {
            *d += match c {
                '(' => 1,
                ')' => -1,
                _ => 0,
            };
            Some(*d)
        })
        .max()
        .unwrap();
    assert!(depth <= 14, "nesting depth {depth} stays logarithmic");
}
