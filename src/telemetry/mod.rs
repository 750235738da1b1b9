//! Telemetry: logging setup, the process's metrics registry, and the plain-HTTP probe routes
//! (`/healthz`, `/readyz`, `/metrics`). Knows nothing of scaling or admission rules.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Logs to standard error; `RUST_LOG` (e.g. `wva=debug`) overrides the default `info`.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    pub route: &'static str,
    /// `allowed`, `denied` or `bad_request`.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: &'static str,
}

/// Every metric the process exports.
pub struct Metrics {
    registry: Registry,
    pub admission_requests: Family<AdmissionLabels, Counter>,
    pub admission_duration: Family<RouteLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let admission_requests = Family::<AdmissionLabels, Counter>::default();
        registry.register(
            "wva_admission_requests",
            "Admission reviews answered, by route and result",
            admission_requests.clone(),
        );
        let admission_duration = Family::<RouteLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.000_05, 2.0, 16))) as fn() -> Histogram,
        );
        registry.register(
            "wva_admission_duration_seconds",
            "Time to answer an admission review, from body read to response",
            admission_duration.clone(),
        );
        Self {
            registry,
            admission_requests,
            admission_duration,
        }
    }
}

impl Metrics {
    /// Records one answered review.
    pub fn observe_admission(&self, route: &'static str, result: &'static str, elapsed: Duration) {
        self.admission_requests
            .get_or_create(&AdmissionLabels { route, result })
            .inc();
        self.admission_duration
            .get_or_create(&RouteLabels { route })
            .observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("invariant: encoding to a String cannot fail");
        text
    }
}

/// Readiness: a function the probe route asks on every call.
pub type Readiness = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

#[derive(Clone)]
struct ProbeState {
    metrics: Arc<Metrics>,
    ready: Readiness,
}

/// `/healthz` (the process answers), `/readyz` (ready to serve), `/metrics`.
pub fn probe_router(metrics: Arc<Metrics>, ready: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(ProbeState { metrics, ready })
}

async fn readyz(State(state): State<ProbeState>) -> impl IntoResponse {
    match (state.ready)() {
        Ok(()) => (StatusCode::OK, "ok".to_owned()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}")),
    }
}

async fn metrics_text(State(state): State<ProbeState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}
