//! The admission webhook's metrics: reviews answered by route and result, and the time to
//! answer. Registered on the process runtime's registry under `wva_admission_*`; updated by the
//! server only.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    route: &'static str,
    /// `allowed`, `denied` or `bad_request`.
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

/// Cheap to clone: every clone updates the same series.
#[derive(Clone)]
pub struct AdmissionMetrics {
    requests: Family<ResultLabels, Counter>,
    duration: Family<RouteLabels, Histogram>,
}

impl Default for AdmissionMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(
                (|| Histogram::new(exponential_buckets(0.000_05, 2.0, 16))) as fn() -> Histogram,
            ),
        }
    }
}

impl AdmissionMetrics {
    /// Registers `wva_admission_requests_total` and `wva_admission_duration_seconds`.
    pub fn register(&self, registry: &mut Registry) {
        let registry = registry.sub_registry_with_prefix("wva_admission");
        registry.register(
            "requests",
            "Admission reviews answered, by route and result",
            self.requests.clone(),
        );
        registry.register(
            "duration_seconds",
            "Time to answer an admission review, from body read to response",
            self.duration.clone(),
        );
    }

    /// Records one answered review.
    pub fn observe(&self, route: &'static str, result: &'static str, elapsed: Duration) {
        self.requests
            .get_or_create(&ResultLabels { route, result })
            .inc();
        self.duration
            .get_or_create(&RouteLabels { route })
            .observe(elapsed.as_secs_f64());
    }
}
