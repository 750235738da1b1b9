//! `wva check-prometheus`: resolves the Prometheus configuration as `wva run` does, connects,
//! prints the PromQL and the samples as JSON; fails within 15 s.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{EXIT_INVALID, policy_name, print};
use crate::config::scale_to_zero::validate_retention_period;
use crate::core::Policy;

/// Arguments of `wva check-prometheus`.
#[derive(Debug, clap::Args)]
pub struct CheckPrometheusArgs {
    /// Namespace of the model to collect (with --model).
    #[arg(long, requires = "model")]
    pub namespace: Option<String>,
    /// Model ID to collect exactly as the controller would (with --namespace); any printable
    /// characters, matched literally.
    #[arg(long, requires = "namespace")]
    pub model: Option<String>,
    /// Also query the request count over this period (a Go duration, e.g. 10m), as for a model
    /// with scale-to-zero.
    #[arg(long)]
    pub retention: Option<String>,
    /// The policy `wva run` would use: with `wva-next` the model's served rate is queried too
    /// (its own query, docs/prometheus.md).
    #[arg(long, default_value = "wva-v0.5.0", value_parser = policy_name)]
    pub policy: Policy,
    /// Kubeconfig for reading the main ConfigMap when PROMETHEUS_BASE_URL is not set.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
}

/// Everything `check-prometheus` does must finish within this, also when Prometheus hangs.
const CHECK_PROMETHEUS_DEADLINE: std::time::Duration = std::time::Duration::from_secs(15);

pub fn run(args: &CheckPrometheusArgs) -> ExitCode {
    use crate::prometheus::connect::{CheckOptions, ConfigSource, check};
    let retention = match args.retention.as_deref().map(validate_retention_period) {
        None => None,
        Some(Ok(nanos)) => Some(nanos),
        Some(Err(e)) => {
            eprintln!("error: --retention: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let model = args.namespace.clone().zip(args.model.clone());
    let served_rate = args.policy == Policy::WvaNext;
    let options = match CheckOptions::new(model, retention, served_rate) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let Some(runtime) = super::runtime(false) else {
        return ExitCode::FAILURE;
    };
    let env = super::env::lookup;
    let namespace = super::env::controller_namespace();
    let config_map_name = super::env::main_config_map_name();
    let source = ConfigSource {
        env: &env,
        namespace: &namespace,
        config_map_name: &config_map_name,
    };
    let outcome = runtime.block_on(async {
        tokio::time::timeout(CHECK_PROMETHEUS_DEADLINE, async {
            let kube = super::kube::client(args.kubeconfig.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            check(&options, &source, kube.as_ref())
                .await
                .map_err(|e| e.to_string())
        })
        .await
    });
    match outcome {
        Ok(Ok(report)) => {
            if let Some(warnings) = report["warnings"].as_array() {
                for w in warnings {
                    eprintln!("warning: {}", w.as_str().unwrap_or_default());
                }
            }
            print(&super::pretty_json(&report))
        }
        Ok(Err(why)) => {
            eprintln!("error: {why}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!(
                "error: no answer within {}s",
                CHECK_PROMETHEUS_DEADLINE.as_secs()
            );
            ExitCode::FAILURE
        }
    }
}
