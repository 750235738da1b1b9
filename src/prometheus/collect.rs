//! One cycle's metrics for every model in at most five queries — KV-cache use, queue length,
//! request counts for the models with scale-to-zero, and served rates and the newest waiting
//! counts for the models a `wva-next` controller decides — shaped per (namespace, model) and
//! pod for the snapshot builder. A failed KV or queue query fails the collection (the
//! controller then holds instead of scaling down on missing data); a failed request-count query
//! only makes the counts unknown, a failed served-rate query the rates (`wva-next` then reads
//! the data as incomplete and never scales down on it), and a failed waiting query the newest
//! counts (`wva-next` then reads the minute's largest).

use std::collections::BTreeMap;

use serde::Serialize;

use super::client::{PrometheusClient, QueryError};
use super::promql::{self, ModelKey, PromqlError};
use super::response::Sample;
use crate::config::duration::Nanos;

/// A sample older than this is stale.
pub const STALE_AFTER_SECONDS: f64 = 300.0;
/// A sample timestamped further than this ahead of the controller's clock is stale, not fresh.
pub const MAX_CLOCK_SKEW_SECONDS: f64 = 30.0;

/// A model to collect; `retention` is set when scale-to-zero is enabled for it, `served_rate`
/// when its pods' served requests/s and newest waiting counts are wanted (`wva-next`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelRequest {
    pub key: ModelKey,
    pub retention: Option<Nanos>,
    pub served_rate: bool,
}

/// One pod's latest values. A value is `None` when the series is absent or not a usable number
/// (NaN, ±Inf, negative).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSample {
    pub kv_cache_usage: Option<f64>,
    /// Truncated toward zero.
    pub queue_length: Option<u64>,
    /// Successful requests/s over the last minute; only for models with `served_rate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub served_rps: Option<f64>,
    /// Requests waiting at the newest sample of the last minute; only for models with
    /// `served_rate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<f64>,
    /// Age of the older of the two samples, in seconds.
    pub age_seconds: f64,
    /// Older than [`STALE_AFTER_SECONDS`].
    pub stale: bool,
}

/// What Prometheus says about one model.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelSamples {
    pub namespace: String,
    #[serde(rename = "modelID")]
    pub model_id: String,
    /// By pod name.
    pub pods: BTreeMap<String, PodSample>,
    /// Successful requests over the retention period; `None` when scale-to-zero is off for the
    /// model, the series does not exist, or the query failed.
    pub request_count: Option<f64>,
}

/// The cycle's collection.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Collection {
    pub models: Vec<ModelSamples>,
    /// The PromQL sent, in order.
    pub queries: Vec<String>,
    /// Why request counts are unknown, when their query failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_count_error: Option<String>,
    /// Why served rates are unknown, when their query failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub served_rate_error: Option<String>,
    /// Why the newest waiting counts are unknown, when their query failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_error: Option<String>,
}

/// Why nothing was collected.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error(transparent)]
    Promql(PromqlError),
    #[error("{metric} query failed: {error}")]
    Query {
        metric: &'static str,
        #[source]
        error: QueryError,
    },
}

/// The PromQL for a cycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queries {
    pub kv: String,
    pub queue: String,
    /// When any model has scale-to-zero.
    pub counts: Option<String>,
    /// When any model wants its served rate: that, and the newest waiting counts.
    pub served: Option<String>,
    pub waiting: Option<String>,
}

impl Queries {
    /// The queries in the order they are listed (and counted).
    pub fn texts(&self) -> Vec<String> {
        [
            Some(&self.kv),
            Some(&self.queue),
            self.counts.as_ref(),
            self.served.as_ref(),
            self.waiting.as_ref(),
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
    }
}

/// The PromQL for a cycle: KV-cache, queue, request counts (models with scale-to-zero), served
/// rates and newest waiting counts (models with `served_rate`).
pub fn queries(models: &[ModelRequest]) -> Result<Queries, PromqlError> {
    let keys: Vec<ModelKey> = models.iter().map(|m| m.key.clone()).collect();
    let counted: Vec<(ModelKey, Nanos)> = models
        .iter()
        .filter_map(|m| m.retention.map(|r| (m.key.clone(), r)))
        .collect();
    let rated: Vec<ModelKey> = models
        .iter()
        .filter(|m| m.served_rate)
        .map(|m| m.key.clone())
        .collect();
    Ok(Queries {
        kv: promql::kv_cache_usage(&keys)?,
        queue: promql::queue_length(&keys)?,
        counts: (!counted.is_empty())
            .then(|| promql::request_count(&counted))
            .transpose()?,
        served: (!rated.is_empty())
            .then(|| promql::served_rate(&rated))
            .transpose()?,
        waiting: (!rated.is_empty())
            .then(|| promql::waiting_now(&rated))
            .transpose()?,
    })
}

/// Runs the cycle's queries concurrently and shapes the answers. `now` is Unix seconds.
pub async fn collect(
    client: &PrometheusClient,
    models: &[ModelRequest],
    now: f64,
) -> Result<Collection, CollectError> {
    let texts = queries(models).map_err(CollectError::Promql)?;
    // Series of other models (a selector Prometheus widened, a proxy that ignores it) are
    // dropped while the answer is read, not after.
    let wanted: std::collections::HashSet<(&str, &str)> = models
        .iter()
        .map(|m| (m.key.namespace.as_str(), m.key.model_id.as_str()))
        .collect();
    let keep = |labels: &BTreeMap<String, String>| match (
        labels.get("namespace"),
        labels.get("model_name"),
    ) {
        (Some(ns), Some(model)) => wanted.contains(&(ns.as_str(), model.as_str())),
        _ => false,
    };
    let (kv, queue, counts, served, waiting) = tokio::join!(
        client.query_keeping(&texts.kv, &keep),
        client.query_keeping(&texts.queue, &keep),
        optional(client, texts.counts.as_deref(), &keep),
        optional(client, texts.served.as_deref(), &keep),
        optional(client, texts.waiting.as_deref(), &keep),
    );
    let kv = kv.map_err(|error| CollectError::Query {
        metric: promql::KV_CACHE_METRIC,
        error,
    })?;
    let queue = queue.map_err(|error| CollectError::Query {
        metric: promql::QUEUE_METRIC,
        error,
    })?;
    let (counts, request_count_error) = match counts {
        None => (Vec::new(), None),
        Some(Ok(samples)) => (samples, None),
        Some(Err(error)) => (
            Vec::new(),
            Some(format!(
                "{} query failed: {error}",
                promql::REQUEST_SUCCESS_METRIC
            )),
        ),
    };
    let (served, served_rate_error) = match served {
        None => (Vec::new(), None),
        Some(Ok(samples)) => (samples, None),
        Some(Err(error)) => (
            Vec::new(),
            Some(format!("served-rate query failed: {error}")),
        ),
    };
    let (waiting, waiting_error) = match waiting {
        None => (Vec::new(), None),
        Some(Ok(samples)) => (samples, None),
        Some(Err(error)) => (Vec::new(), Some(format!("waiting query failed: {error}"))),
    };
    let mut collection = assemble(models, &kv, &queue, &counts, &served, &waiting, now);
    collection.queries = texts.texts();
    collection.request_count_error = request_count_error;
    collection.served_rate_error = served_rate_error;
    collection.waiting_error = waiting_error;
    Ok(collection)
}

/// A query that is sent only when there is one.
async fn optional(
    client: &PrometheusClient,
    query: Option<&str>,
    keep: super::response::Keep<'_>,
) -> Option<Result<Vec<Sample>, QueryError>> {
    match query {
        Some(q) => Some(client.query_keeping(q, keep).await),
        None => None,
    }
}

fn label<'a>(sample: &'a Sample, name: &str) -> Option<&'a str> {
    sample.labels.get(name).map(String::as_str)
}

/// Shapes raw samples per model and pod (pure).
pub fn assemble(
    models: &[ModelRequest],
    kv: &[Sample],
    queue: &[Sample],
    counts: &[Sample],
    served: &[Sample],
    waiting: &[Sample],
    now: f64,
) -> Collection {
    let mut by_model: BTreeMap<(String, String), ModelSamples> = models
        .iter()
        .map(|m| {
            (
                (m.key.namespace.clone(), m.key.model_id.clone()),
                ModelSamples {
                    namespace: m.key.namespace.clone(),
                    model_id: m.key.model_id.clone(),
                    pods: BTreeMap::new(),
                    request_count: None,
                },
            )
        })
        .collect();
    let mut put = |sample: &Sample, apply: &dyn Fn(&mut PodSample, f64)| {
        // An empty `pod` label names no pod.
        let (Some(ns), Some(model), Some(pod)) = (
            label(sample, "namespace"),
            label(sample, "model_name"),
            label(sample, "pod").filter(|p| !p.is_empty()),
        ) else {
            return;
        };
        let Some(entry) = by_model.get_mut(&(ns.to_owned(), model.to_owned())) else {
            return;
        };
        let age = (now - sample.timestamp).max(0.0);
        let pod = entry.pods.entry(pod.to_owned()).or_insert(PodSample {
            kv_cache_usage: None,
            queue_length: None,
            served_rps: None,
            waiting: None,
            age_seconds: age,
            stale: false,
        });
        pod.age_seconds = pod.age_seconds.max(age);
        // A sample from the future (a skewed clock) is not fresh either.
        let from_the_future = sample.timestamp > now + MAX_CLOCK_SKEW_SECONDS;
        pod.stale |= pod.age_seconds > STALE_AFTER_SECONDS || from_the_future;
        if let Some(value) = sample.value {
            apply(pod, value);
        }
    };
    for s in kv {
        // KV-cache use is a fraction; above 1 is read as full (never as spare capacity).
        // Two series for one pod (the query is a `max by (pod)`): the larger counts.
        put(s, &|pod, v| {
            if v >= 0.0 {
                let v = v.min(1.0);
                pod.kv_cache_usage = Some(pod.kv_cache_usage.map_or(v, |old| old.max(v)));
            }
        });
    }
    for s in queue {
        put(s, &|pod, v| {
            if v >= 0.0 {
                let v = v.trunc() as u64;
                pod.queue_length = Some(pod.queue_length.map_or(v, |old| old.max(v)));
            }
        });
    }
    for s in served {
        // A rate is evaluated "now" (its age is 0). A pod with a served rate and neither KV
        // nor queue samples is still no reporting pod: the snapshot needs one of those.
        put(s, &|pod, v| {
            if v >= 0.0 {
                pod.served_rps = Some(pod.served_rps.map_or(v, |old| old.max(v)));
            }
        });
    }
    for s in waiting {
        put(s, &|pod, v| {
            if v >= 0.0 {
                pod.waiting = Some(pod.waiting.map_or(v, |old| old.max(v)));
            }
        });
    }
    for s in counts {
        if let (Some(ns), Some(model), Some(value)) =
            (label(s, "namespace"), label(s, "model_name"), s.value)
            && let Some(entry) = by_model.get_mut(&(ns.to_owned(), model.to_owned()))
        {
            entry.request_count = (value >= 0.0).then_some(value);
        }
    }
    Collection {
        models: by_model.into_values().collect(),
        queries: Vec::new(),
        request_count_error: None,
        served_rate_error: None,
        waiting_error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(
        ns: &str,
        model: &str,
        pod: Option<&str>,
        value: Option<f64>,
        timestamp: f64,
    ) -> Sample {
        let mut labels = BTreeMap::from([
            ("namespace".to_owned(), ns.to_owned()),
            ("model_name".to_owned(), model.to_owned()),
        ]);
        if let Some(p) = pod {
            labels.insert("pod".into(), p.into());
        }
        Sample {
            labels,
            value,
            timestamp,
        }
    }

    fn request(ns: &str, model: &str, retention: Option<Nanos>) -> ModelRequest {
        ModelRequest {
            key: ModelKey::new(ns, model),
            retention,
            served_rate: false,
        }
    }

    #[test]
    fn samples_are_shaped_per_model_and_pod() {
        let models = [
            request("prod", "m", Some(600_000_000_000)),
            request("lab", "m", None),
        ];
        let kv = [
            sample("prod", "m", Some("p1"), Some(0.5), 1000.0),
            sample("lab", "m", Some("q1"), Some(0.1), 1000.0),
            sample("prod", "m", None, Some(0.9), 1000.0),
        ];
        let queue = [
            sample("prod", "m", Some("p1"), Some(2.9), 1000.0),
            sample("prod", "m", Some("p2"), Some(1.0), 1000.0),
        ];
        let counts = [sample("prod", "m", None, Some(0.0), 1000.0)];
        let c = assemble(&models, &kv, &queue, &counts, &[], &[], 1010.0);
        let lab = &c.models[0];
        let prod = &c.models[1];
        assert_eq!(
            (lab.namespace.as_str(), lab.pods.len(), lab.request_count),
            ("lab", 1, None)
        );
        assert_eq!(prod.pods["p1"].kv_cache_usage, Some(0.5));
        assert_eq!(
            prod.pods["p1"].queue_length,
            Some(2),
            "truncated toward zero"
        );
        assert_eq!(prod.pods["p2"].kv_cache_usage, None, "absent series");
        assert_eq!(prod.pods["p1"].age_seconds, 10.0);
        assert!(!prod.pods["p1"].stale);
        assert_eq!(prod.request_count, Some(0.0));
        assert_eq!(
            prod.pods.len(),
            2,
            "a sample without a pod label is skipped"
        );
    }

    #[test]
    fn served_rates_are_per_pod_and_need_a_kv_or_queue_sample_to_report() {
        let models = [request("prod", "m", None)];
        let kv = [sample("prod", "m", Some("p1"), Some(0.5), 1000.0)];
        let served = [
            sample("prod", "m", Some("p1"), Some(3.5), 1010.0),
            sample("prod", "m", Some("p2"), Some(1.0), 1010.0),
            sample("prod", "m", Some("p3"), None, 1010.0),
        ];
        let waiting = [
            sample("prod", "m", Some("p1"), Some(2.5), 1010.0),
            sample("prod", "m", Some("p3"), Some(-1.0), 1010.0),
        ];
        let c = assemble(&models, &kv, &[], &[], &served, &waiting, 1010.0);
        let pods = &c.models[0].pods;
        assert_eq!(pods["p1"].served_rps, Some(3.5));
        assert_eq!(pods["p1"].waiting, Some(2.5), "not truncated");
        assert_eq!(pods["p3"].waiting, None, "a negative count is none");
        assert_eq!(pods["p1"].age_seconds, 10.0, "the KV sample's age stands");
        assert_eq!(
            (pods["p2"].kv_cache_usage, pods["p2"].queue_length),
            (None, None),
            "a served rate alone"
        );
        assert_eq!(pods["p3"].served_rps, None, "NaN is no rate");
    }

    #[test]
    fn unusable_values_are_missing_not_zero() {
        let models = [request("prod", "m", None)];
        let kv = [
            sample("prod", "m", Some("nan"), None, 0.0),
            sample("prod", "m", Some("neg"), Some(-0.1), 0.0),
            sample("prod", "m", Some("over"), Some(1.7), 0.0),
        ];
        let queue = [sample("prod", "m", Some("neg"), Some(-3.0), 0.0)];
        let c = assemble(&models, &kv, &queue, &[], &[], &[], 10.0);
        let pods = &c.models[0].pods;
        assert_eq!(pods["nan"].kv_cache_usage, None);
        assert_eq!(pods["neg"].kv_cache_usage, None);
        assert_eq!(pods["neg"].queue_length, None);
        assert_eq!(pods["over"].kv_cache_usage, Some(1.0));
    }

    #[test]
    fn old_samples_are_stale() {
        let models = [request("prod", "m", None)];
        let kv = [sample("prod", "m", Some("old"), Some(0.2), 1000.0)];
        let queue = [sample("prod", "m", Some("old"), Some(1.0), 1400.0)];
        let c = assemble(&models, &kv, &queue, &[], &[], &[], 1400.0 + 1.0);
        let pod = &c.models[0].pods["old"];
        assert_eq!(pod.age_seconds, 401.0, "the older sample counts");
        assert!(pod.stale);
    }

    #[test]
    fn two_series_for_one_pod_take_the_max_and_an_empty_pod_is_no_pod() {
        let models = [request("prod", "m", None)];
        let kv = [
            sample("prod", "m", Some("p"), Some(0.7), 100.0),
            sample("prod", "m", Some("p"), Some(0.2), 100.0),
            sample("prod", "m", Some(""), Some(0.9), 100.0),
        ];
        let queue = [
            sample("prod", "m", Some("p"), Some(1.0), 100.0),
            sample("prod", "m", Some("p"), Some(4.0), 100.0),
            sample("prod", "m", Some("p"), Some(2.0), 100.0),
        ];
        let c = assemble(&models, &kv, &queue, &[], &[], &[], 101.0);
        let pods = &c.models[0].pods;
        assert_eq!(pods.len(), 1, "{pods:?}");
        assert_eq!(pods["p"].kv_cache_usage, Some(0.7));
        assert_eq!(pods["p"].queue_length, Some(4));
    }

    #[test]
    fn samples_from_the_future_are_stale() {
        let models = [request("prod", "m", None)];
        let near = [sample("prod", "m", Some("near"), Some(0.2), 1010.0)];
        let far = [sample("prod", "m", Some("far"), Some(0.2), 1000.0 + 3600.0)];
        let c = assemble(&models, &near, &far, &[], &[], &[], 1000.0);
        let pods = &c.models[0].pods;
        assert!(!pods["near"].stale, "within the skew allowance");
        assert!(pods["far"].stale, "an hour ahead");
    }

    #[test]
    fn at_most_three_queries_five_with_wva_next_whatever_the_number_of_models() {
        let many: Vec<ModelRequest> = (0..500)
            .map(|i| {
                request(
                    "prod",
                    &format!("m{i}"),
                    (i % 2 == 0).then_some(600_000_000_000),
                )
            })
            .collect();
        assert_eq!(queries(&many).unwrap().texts().len(), 3);
        let mut rated = many.clone();
        rated[7].served_rate = true;
        let texts = queries(&rated).unwrap().texts();
        assert_eq!(texts.len(), 5, "wva-next's two more");
        for (text, function) in [
            (&texts[3], "sum by (namespace, model_name, pod) (rate("),
            (
                &texts[4],
                "max by (namespace, model_name, pod) (last_over_time(",
            ),
        ] {
            assert!(
                text.starts_with(function)
                    && text.contains("model_name=\"m7\"")
                    && !text.contains("model_name=\"m6\""),
                "only the rated model: {text}"
            );
        }
        let none_counted: Vec<ModelRequest> = (0..5)
            .map(|i| request("prod", &format!("m{i}"), None))
            .collect();
        assert_eq!(queries(&none_counted).unwrap().texts().len(), 2);
        assert!(queries(&[request("Bad NS", "m", None)]).is_err());
    }
}
