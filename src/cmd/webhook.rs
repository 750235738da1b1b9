//! `wva webhook`: serves the admission routes alone (validate and default VariantAutoscalings,
//! validate the wva ConfigMaps) on the process runtime, until SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::listen_address;
use crate::admission::ConfigMapSettings;
use crate::admission::cluster::ClusterView;
use crate::admission::limits::ListenerLimits;
use crate::admission::metrics::AdmissionMetrics;
use crate::admission::server::{AdmissionState, ServeOptions, TlsFiles};
use crate::cache::{self, Caches};
use crate::runtime::Runtime;

#[derive(Debug, clap::Args)]
pub struct WebhookArgs {
    /// Serving certificate (PEM), e.g. the cert-manager Secret's tls.crt; re-read when it changes.
    #[arg(long)]
    pub cert: PathBuf,
    /// Private key (PEM) of the serving certificate; re-read when it changes.
    #[arg(long)]
    pub key: PathBuf,
    /// CA bundle (PEM) for client certificates: when set, callers (the API server) must present
    /// a certificate signed by it.
    #[arg(long)]
    pub client_ca: Option<PathBuf>,
    /// Address for admission reviews over TLS (`:8443` = every interface; port 0 = any free port).
    #[arg(long, default_value = ":8443", value_parser = listen_address)]
    pub listen: SocketAddr,
    /// Plain-HTTP address for /healthz, /readyz and /metrics.
    #[arg(long, default_value = ":8081", value_parser = listen_address)]
    pub probe_listen: SocketAddr,
    /// Kubeconfig for the cluster view (duplicate-target rule, target-exists warning). Without
    /// it and outside a cluster, the webhook needs no cluster and those checks are off.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace of the wva ConfigMaps.
    #[arg(
        long,
        env = "POD_NAMESPACE",
        default_value = "workload-variant-autoscaler-system"
    )]
    pub namespace: String,
    /// Name of the saturation-scaling ConfigMap.
    #[arg(long, env = "SATURATION_CONFIG_MAP_NAME", default_value = crate::config::saturation::CONFIG_MAP_NAME)]
    pub saturation_config_map_name: String,
    /// How often the certificate files are checked for new content (seconds).
    #[arg(long, default_value_t = 5.0)]
    pub cert_reload_seconds: f64,
    /// On SIGTERM, how long in-flight reviews may take to finish (seconds).
    #[arg(long, default_value_t = 5.0)]
    pub drain_seconds: f64,
}

/// After SIGTERM, how much longer than the drain time the components may take to stop.
const STOP_MARGIN: Duration = Duration::from_secs(2);

pub fn run(args: WebhookArgs) -> ExitCode {
    crate::telemetry::init_logging();
    let Some(runtime) = super::runtime(true) else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: WebhookArgs) -> Result<(), String> {
    let reload_interval = super::seconds(args.cert_reload_seconds, "--cert-reload-seconds")?;
    let drain = super::seconds(args.drain_seconds, "--drain-seconds")?;
    let client = super::kube::client(args.kubeconfig.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    let mut runtime = Runtime::bind(args.probe_listen)
        .await
        .map_err(|e| e.to_string())?;
    let cluster = match client {
        Some(client) => {
            let (caches, watch) =
                Caches::new(client.clone(), &cache::Scope::default(), runtime.shutdown());
            watch.start(&mut runtime);
            Some(ClusterView::new(client, caches))
        }
        None => {
            tracing::warn!(
                "no --kubeconfig and not in a cluster: the one-VariantAutoscaling-per-workload rule and the target-exists warning are off"
            );
            None
        }
    };
    let metrics = AdmissionMetrics::default();
    metrics.register(runtime.metrics());
    let settings = ConfigMapSettings {
        namespace: args.namespace.clone(),
        saturation_name: args.saturation_config_map_name.clone(),
        scale_to_zero_name: crate::config::scale_to_zero::CONFIG_MAP_NAME.into(),
    };
    let limits = ListenerLimits::default();
    let state = Arc::new(AdmissionState::new(cluster, settings, metrics, &limits));
    let options = ServeOptions {
        listen: args.listen,
        tls: TlsFiles {
            cert: args.cert.clone(),
            key: args.key.clone(),
            client_ca: args.client_ca.clone(),
        },
        reload_interval,
        limits,
    };
    let server = crate::admission::server::bind(&options, state)
        .await
        .map_err(|e| e.to_string())?;
    // One plain line on stdout so that scripts and tests learn the ports (port 0 = any free port).
    println!(
        "listening admission=https://{} probes=http://{}",
        server.admission_addr,
        runtime.probe_addr()
    );
    tracing::info!(admission = %server.admission_addr, probes = %runtime.probe_addr(), mtls = args.client_ca.is_some(), "admission webhook serving");
    runtime.spawn(
        "admission-server",
        server.serve_until(runtime.shutdown(), drain),
    );
    runtime
        .run(super::shutdown_signal(), drain + STOP_MARGIN)
        .await
        .map_err(|e| e.to_string())
}
