//! The metrics HPAs and KEDA read, exactly as upstream exports them (upstream
//! `internal/metrics/metrics.go`): `wva_desired_replicas`, `wva_current_replicas`,
//! `wva_desired_ratio` (gauges) and `wva_replica_scaling_total` (a counter upstream declares and
//! never increments; wva counts each applied step). Same names, help texts (no trailing period),
//! label names and order; `variant_name` is the target Deployment's name; `controller_instance`
//! only when `CONTROLLER_INSTANCE` is set. Unlike upstream, the series of a deleted VA are
//! removed. Holds values only; the cycle sets them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// The labels of the gauges, in upstream's order (without `controller_instance`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VariantLabels {
    /// The target Deployment's name.
    pub variant_name: String,
    pub namespace: String,
    pub accelerator_type: String,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Values {
    desired: f64,
    current: f64,
}

#[derive(Default)]
struct State {
    gauges: BTreeMap<VariantLabels, Values>,
    /// (variant_name, namespace, direction, reason) → count.
    steps: BTreeMap<(String, String, String, String), u64>,
}

/// The replica metrics; cheap to clone (every clone shares the values).
#[derive(Clone)]
pub struct ReplicaMetrics {
    state: Arc<Mutex<State>>,
    controller_instance: Option<String>,
}

impl std::fmt::Debug for ReplicaMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaMetrics")
            .field("controller_instance", &self.controller_instance)
            .finish_non_exhaustive()
    }
}

impl ReplicaMetrics {
    /// `controller_instance`: `CONTROLLER_INSTANCE` when set and not empty.
    pub fn new(controller_instance: Option<String>) -> Self {
        Self {
            state: Arc::default(),
            controller_instance: controller_instance.filter(|i| !i.is_empty()),
        }
    }

    /// Adds the four metrics to `registry` (a collector: the help texts stay upstream's).
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register_collector(Box::new(self.clone()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Upstream's `EmitReplicaMetrics`: desired, current, and desired/current (desired when
    /// current is 0, so 0 → N publishes N).
    pub fn publish(&self, labels: VariantLabels, current: u32, desired: u32) {
        self.lock().gauges.insert(
            labels,
            Values {
                desired: f64::from(desired),
                current: f64::from(current),
            },
        );
    }

    /// One applied scaling step (`direction` `up` or `down`; `reason` the rule that fired).
    pub fn scaled(&self, variant_name: &str, namespace: &str, direction: &str, reason: &str) {
        *self
            .lock()
            .steps
            .entry((
                variant_name.into(),
                namespace.into(),
                direction.into(),
                reason.into(),
            ))
            .or_default() += 1;
    }

    /// Removes every series of a variant that is gone (its VA deleted or retargeted).
    pub fn forget(&self, variant_name: &str, namespace: &str) {
        let mut state = self.lock();
        state
            .gauges
            .retain(|l, _| !(l.variant_name == variant_name && l.namespace == namespace));
        state
            .steps
            .retain(|(v, ns, _, _), _| !(v == variant_name && ns == namespace));
    }

    /// Drops every desired/current gauge (the step counters stay: they count what this process
    /// did). A replica that stops leading withdraws its figures, so that an HPA never sums the
    /// old leader's stale `wva_desired_replicas` with the new leader's.
    pub fn withdraw(&self) {
        self.lock().gauges.clear();
    }

    /// Keeps the series of `live` only: a VA deleted or retargeted, or a variant whose
    /// accelerator changed, loses its old series.
    pub fn retain(&self, live: &std::collections::BTreeSet<VariantLabels>) {
        let mut state = self.lock();
        state.gauges.retain(|l, _| live.contains(l));
        state.steps.retain(|(v, ns, _, _), _| {
            live.iter()
                .any(|l| &l.variant_name == v && &l.namespace == ns)
        });
    }

    /// The variants with series now.
    pub fn published(&self) -> Vec<VariantLabels> {
        self.lock().gauges.keys().cloned().collect()
    }

    fn labels(&self, pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        let mut labels: Vec<(&'static str, String)> =
            pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        if let Some(instance) = &self.controller_instance {
            labels.push(("controller_instance", instance.clone()));
        }
        labels
    }
}

type GaugeOf = fn(&Values) -> f64;

impl Collector for ReplicaMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let state = self.lock();
        let gauges: [(&str, &str, GaugeOf); 3] = [
            (
                "wva_desired_replicas",
                "Desired number of replicas for each variant",
                |v| v.desired,
            ),
            (
                "wva_current_replicas",
                "Current number of replicas for each variant",
                |v| v.current,
            ),
            (
                "wva_desired_ratio",
                "Ratio of the desired number of replicas and the current number of replicas for each variant",
                |v| {
                    if v.current == 0.0 {
                        v.desired
                    } else {
                        v.desired / v.current
                    }
                },
            ),
        ];
        for (name, help, value) in gauges {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for (labels, values) in &state.gauges {
                let set = self.labels(&[
                    ("variant_name", &labels.variant_name),
                    ("namespace", &labels.namespace),
                    ("accelerator_type", &labels.accelerator_type),
                ]);
                ConstGauge::new(value(values)).encode(family.encode_family(&set)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "wva_replica_scaling",
            "Total number of replica scaling operations",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for ((variant, namespace, direction, reason), count) in &state.steps {
            let set = self.labels(&[
                ("variant_name", variant),
                ("namespace", namespace),
                ("direction", direction),
                ("reason", reason),
            ]);
            ConstCounter::new(*count).encode(family.encode_family(&set)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(variant: &str) -> VariantLabels {
        VariantLabels {
            variant_name: variant.into(),
            namespace: "prod".into(),
            accelerator_type: "A100".into(),
        }
    }

    fn exposition(metrics: &ReplicaMetrics) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        metrics.register(&mut registry);
        crate::telemetry::encode(&registry)
    }

    #[test]
    fn names_help_and_labels_are_upstreams() {
        let metrics = ReplicaMetrics::new(None);
        metrics.publish(labels("llama-decode"), 2, 3);
        metrics.publish(labels("from-zero"), 0, 4);
        metrics.scaled("llama-decode", "prod", "up", "kv-spare-low");
        let text = exposition(&metrics);
        for line in [
            "# HELP wva_desired_replicas Desired number of replicas for each variant\n",
            "# TYPE wva_desired_replicas gauge\n",
            "wva_desired_replicas{variant_name=\"llama-decode\",namespace=\"prod\",accelerator_type=\"A100\"} 3.0\n",
            "# HELP wva_current_replicas Current number of replicas for each variant\n",
            "wva_current_replicas{variant_name=\"llama-decode\",namespace=\"prod\",accelerator_type=\"A100\"} 2.0\n",
            "# HELP wva_desired_ratio Ratio of the desired number of replicas and the current number of replicas for each variant\n",
            "wva_desired_ratio{variant_name=\"llama-decode\",namespace=\"prod\",accelerator_type=\"A100\"} 1.5\n",
            "wva_desired_ratio{variant_name=\"from-zero\",namespace=\"prod\",accelerator_type=\"A100\"} 4.0\n",
            "# HELP wva_replica_scaling Total number of replica scaling operations\n",
            "wva_replica_scaling_total{variant_name=\"llama-decode\",namespace=\"prod\",direction=\"up\",reason=\"kv-spare-low\"} 1\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn the_instance_label_comes_last_and_only_when_set() {
        let metrics = ReplicaMetrics::new(Some("blue".into()));
        metrics.publish(labels("v"), 1, 1);
        assert!(exposition(&metrics).contains(
            "wva_desired_replicas{variant_name=\"v\",namespace=\"prod\",accelerator_type=\"A100\",controller_instance=\"blue\"} 1.0\n"
        ));
        let empty = ReplicaMetrics::new(Some(String::new()));
        empty.publish(labels("v"), 1, 1);
        assert!(!exposition(&empty).contains("controller_instance"));
    }

    #[test]
    fn a_forgotten_variant_has_no_series_left() {
        let metrics = ReplicaMetrics::new(None);
        metrics.publish(labels("gone"), 1, 2);
        metrics.publish(labels("kept"), 1, 1);
        metrics.scaled("gone", "prod", "up", "r");
        metrics.forget("gone", "prod");
        let text = exposition(&metrics);
        assert!(!text.contains("\"gone\""), "{text}");
        assert!(text.contains("\"kept\""));
        assert_eq!(metrics.published(), vec![labels("kept")]);
    }
}
