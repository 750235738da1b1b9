//! Telemetry plumbing: logging to standard error and the Prometheus text encoding of a metrics
//! registry. Defines no metric of its own: each component registers its metrics on the
//! process runtime's registry (`runtime`), next to the code that updates them.

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

/// The OpenMetrics text exposition of every metric in `registry`.
pub fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing to a String cannot fail: fmt::Write for String always returns Ok.
    let _ = prometheus_client::encoding::text::encode(&mut text, registry);
    text
}
