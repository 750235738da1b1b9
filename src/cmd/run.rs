//! `wva run`: the product — the controller (caches, the cycle, actuation, status, Events), the
//! admission webhook when a certificate is given, and the plain probe and metrics ports, in one
//! process on the runtime. Reads the flags and the environment; the rules live below.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::{EXIT_INVALID, env, listen_address, policy_name};
use crate::admission::ConfigMapSettings;
use crate::admission::cluster::ClusterView;
use crate::admission::limits::ListenerLimits;
use crate::admission::metrics::AdmissionMetrics;
use crate::admission::server::{AdmissionState, ServeOptions, TlsFiles};
use crate::cache::{Caches, ConfigMapNames, Scope, WorkloadCaches};
use crate::controller::actuate::Mode;
use crate::controller::cycle::{Controller, CycleMetrics, Options};
use crate::controller::events::Events;
use crate::controller::metrics::ReplicaMetrics;
use crate::controller::wake::{self, Waker, pools::PoolGroup};
use crate::core::Policy;
use crate::leader::{self, Elector, LeaderMetrics, Leadership, Timing};
use crate::prometheus::client::{ClientOptions, PrometheusClient};
use crate::prometheus::connect::{ConfigSource, configuration};
use crate::runtime::Runtime;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Kubeconfig file; else $KUBECONFIG; else the in-cluster configuration.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// `metrics`: publish wva_desired_replicas for an HPA or KEDA (upstream's way). `direct`:
    /// also set each target's replicas through its /scale subresource.
    #[arg(long, env = "WVA_ACTUATION", default_value = "metrics", value_parser = actuation)]
    pub actuation: Mode,
    /// Plain-HTTP address of /metrics (`0` turns it off; /metrics is also on the probe port).
    #[arg(long, default_value = ":8080")]
    pub metrics_bind_address: String,
    /// Plain-HTTP address of /healthz, /readyz and /metrics.
    #[arg(long, default_value = ":8081", value_parser = listen_address)]
    pub health_probe_bind_address: SocketAddr,
    /// Serving certificate (PEM) of the admission webhook; without it the webhook is off.
    #[arg(long, requires = "webhook_key")]
    pub webhook_cert: Option<PathBuf>,
    /// Private key (PEM) of the webhook's serving certificate.
    #[arg(long, requires = "webhook_cert")]
    pub webhook_key: Option<PathBuf>,
    /// CA bundle (PEM): callers of the webhook must present a certificate signed by it.
    #[arg(long, requires = "webhook_cert")]
    pub webhook_client_ca: Option<PathBuf>,
    /// Address of the admission webhook (TLS).
    #[arg(long, default_value = ":9443", value_parser = listen_address)]
    pub webhook_listen: SocketAddr,
    /// Leader election on the Lease `72dd1cf1.llm-d.ai` in POD_NAMESPACE: only the leader runs
    /// cycles and writes; every replica serves admissions and probes.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    pub leader_elect: bool,
    /// How long a Lease not renewed stays another replica's (Go duration).
    #[arg(long, default_value = "60s", value_parser = go_duration)]
    pub leader_election_lease_duration: Duration,
    /// How long the leader keeps leading without a successful renewal (Go duration).
    #[arg(long, default_value = "50s", value_parser = go_duration)]
    pub leader_election_renew_deadline: Duration,
    /// How often candidates try and the leader renews (Go duration).
    #[arg(long, default_value = "10s", value_parser = go_duration)]
    pub leader_election_retry_period: Duration,
    /// Watch one namespace only (VAs, Deployments, Pods); default every namespace.
    #[arg(long)]
    pub watch_namespace: Option<String>,
    /// Keep the last 20 snapshot/report pairs of the cycle here (replay with `wva analyze`).
    #[arg(long)]
    pub dump_snapshots: Option<PathBuf>,
    /// The scaling policy.
    #[arg(long, default_value = "wva-v0.5.0", value_parser = policy_name)]
    pub policy: Policy,
    /// On SIGTERM, how long the webhook keeps answering reviews (seconds).
    #[arg(long, default_value_t = 5.0)]
    pub drain_seconds: f64,
    /// How often certificate and token files are checked for new content (seconds).
    #[arg(long, default_value_t = 5.0)]
    pub cert_reload_seconds: f64,
    /// How often the endpoint pickers of models scaled to zero are asked for queued requests
    /// (Go duration; upstream polls every 100ms).
    #[arg(long, default_value = "1s", value_parser = go_duration)]
    pub scale_from_zero_interval: Duration,
}

fn go_duration(text: &str) -> Result<Duration, String> {
    match crate::config::duration::parse_go_duration(text) {
        Ok(nanos) if nanos > 0 => Ok(Duration::from_nanos(nanos as u64)),
        Ok(_) => Err(format!("{text:?} must be positive")),
        Err(e) => Err(format!("{text:?} is not a Go duration such as 15s: {e}")),
    }
}

fn actuation(name: &str) -> Result<Mode, String> {
    Mode::from_name(name)
        .ok_or_else(|| format!("unknown actuation {name:?}; known: metrics, direct"))
}

/// After SIGTERM, how much longer than the drain time the components may take to stop.
const STOP_MARGIN: Duration = Duration::from_secs(5);

pub fn run(args: RunArgs) -> ExitCode {
    crate::telemetry::init_logging();
    let timing = Timing {
        lease_duration: args.leader_election_lease_duration,
        renew_deadline: args.leader_election_renew_deadline,
        retry_period: args.leader_election_retry_period,
    };
    if let Err(e) = timing.check() {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_INVALID);
    }
    let Some(runtime) = super::runtime(true) else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(serve(args, timing)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: RunArgs, timing: Timing) -> Result<(), String> {
    let drain = super::seconds(args.drain_seconds, "--drain-seconds")?;
    let reload_interval = super::seconds(args.cert_reload_seconds, "--cert-reload-seconds")?;
    let pool_group = PoolGroup::from_env(env::lookup("POOL_GROUP").as_deref())?;
    let node_selector = env::lookup("WVA_NODE_SELECTOR").filter(|s| !s.trim().is_empty());
    if let Some(selector) = &node_selector {
        crate::config::label_selector::validate(selector)
            .map_err(|e| format!("invalid WVA_NODE_SELECTOR {selector:?}: {e}"))?;
    }
    let client = super::kube::client(args.kubeconfig.as_deref())
        .await
        .map_err(|e| e.to_string())?
        .ok_or("wva run needs a cluster: pass --kubeconfig, set KUBECONFIG, or run it in a pod")?;
    let namespace = env::controller_namespace();
    let config_maps = ConfigMapNames {
        namespace: namespace.clone(),
        main: env::main_config_map_name(),
        saturation: env::lookup("SATURATION_CONFIG_MAP_NAME")
            .unwrap_or_else(|| crate::config::saturation::CONFIG_MAP_NAME.into()),
        scale_to_zero: crate::config::scale_to_zero::CONFIG_MAP_NAME.into(),
    };

    let lookup = env::lookup;
    let source = ConfigSource {
        env: &lookup,
        namespace: &namespace,
        config_map_name: &config_maps.main,
    };
    let (prometheus_config, warnings) = configuration(&source, Some(&client))
        .await
        .map_err(|e| e.to_string())?;
    for warning in warnings {
        tracing::warn!(%warning, "Prometheus configuration");
    }
    tracing::info!(url = %prometheus_config.shown_url(), source = %prometheus_config.source, "Prometheus");
    let options = ClientOptions {
        reload_interval,
        ..ClientOptions::default()
    };
    let prometheus =
        PrometheusClient::new(prometheus_config, options).map_err(|e| e.to_string())?;

    let mut runtime = Runtime::bind(args.health_probe_bind_address)
        .await
        .map_err(|e| e.to_string())?;
    let metrics_addr = match args.metrics_bind_address.as_str() {
        "0" => None,
        text => Some(
            runtime
                .bind_metrics(
                    listen_address(text).map_err(|e| format!("--metrics-bind-address: {e}"))?,
                )
                .await
                .map_err(|e| e.to_string())?,
        ),
    };

    let scope = Scope {
        namespace: args.watch_namespace.clone(),
        node_selector,
    };
    let (caches, watch) = Caches::new(client.clone(), &scope, runtime.shutdown());
    watch.start(&mut runtime);
    let (workload, watches) = WorkloadCaches::new(
        client.clone(),
        &scope,
        &config_maps,
        args.actuation == Mode::Direct,
        runtime.shutdown(),
    );
    for watch in watches {
        watch.start(&mut runtime);
    }

    let admission_addr = match (&args.webhook_cert, &args.webhook_key) {
        (Some(cert), Some(key)) => {
            let metrics = AdmissionMetrics::default();
            metrics.register(runtime.metrics());
            let settings = ConfigMapSettings {
                namespace: namespace.clone(),
                saturation_name: config_maps.saturation.clone(),
                scale_to_zero_name: config_maps.scale_to_zero.clone(),
            };
            let limits = ListenerLimits::default();
            let cluster = ClusterView::new(client.clone(), caches.clone());
            let state = Arc::new(AdmissionState::new(
                Some(cluster),
                settings,
                metrics,
                &limits,
            ));
            let options = ServeOptions {
                listen: args.webhook_listen,
                tls: TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                    client_ca: args.webhook_client_ca.clone(),
                },
                reload_interval,
                limits,
            };
            let server = crate::admission::server::bind(&options, state)
                .await
                .map_err(|e| e.to_string())?;
            let addr = server.admission_addr;
            runtime.spawn(
                "admission-server",
                server.serve_until(runtime.shutdown(), drain),
            );
            Some(addr)
        }
        _ => {
            tracing::info!("no --webhook-cert: the admission webhook is off");
            None
        }
    };

    let replica_metrics = ReplicaMetrics::new(env::lookup("CONTROLLER_INSTANCE"));
    replica_metrics.register(runtime.metrics());
    let cycle_metrics = CycleMetrics::default();
    cycle_metrics.register(runtime.metrics());
    let options = Options {
        mode: args.actuation,
        policy: args.policy,
        controller_instance: env::lookup("CONTROLLER_INSTANCE"),
        dump_dir: args.dump_snapshots.clone(),
        config_maps,
        scale_to_zero_default: env::lookup("WVA_SCALE_TO_ZERO")
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
    };
    if let Some(dir) = &options.dump_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("--dump-snapshots {}: {e}", dir.display()))?;
    }
    let pools = match wake::pools_served(&client, scope.namespace.as_deref(), pool_group).await {
        Ok(true) => {
            let (store, watch) = crate::cache::inference_pools(
                client.clone(),
                &scope,
                &pool_group.resource(),
                runtime.shutdown(),
            );
            watch.start(&mut runtime);
            tracing::info!(group = %pool_group.api_version(), "scale-from-zero on: watching InferencePools");
            Some(store)
        }
        served => {
            let why = match served {
                Err(error) => format!(
                    "API discovery of {} failed: {error}",
                    pool_group.api_version()
                ),
                _ => format!(
                    "no InferencePool CRD of {} is served",
                    pool_group.api_version()
                ),
            };
            tracing::warn!(%why, "scale-from-zero off (install the CRD, or set POOL_GROUP, and restart wva)");
            runtime
                .readiness()
                .add(format!("scale-from-zero off ({why})"), Arc::new(|| Ok(())));
            None
        }
    };
    let waker = Waker::new(
        wake::Options {
            group: pool_group,
            interval: args.scale_from_zero_interval,
            bearer_token: env::lookup("EPP_METRIC_READER_BEARER_TOKEN").filter(|t| !t.is_empty()),
        },
        pools,
    );
    let (events, publisher) = Events::new(client.clone(), env::lookup("POD_NAME"));
    events.register(runtime.metrics());
    runtime.spawn("events", publisher.run(runtime.shutdown()));
    let elector = args.leader_elect.then(|| {
        let metrics = LeaderMetrics::default();
        metrics.register(runtime.metrics());
        let identity = leader::identity(env::lookup("POD_NAME"));
        tracing::info!(%identity, lease = leader::LEASE_NAME, namespace = %namespace, "leader election on");
        Elector::new(client.clone(), &namespace, identity, timing, metrics)
    });
    let leadership = elector
        .as_ref()
        .map_or_else(Leadership::always, |e| e.leadership());
    let controller = Controller::new(
        client,
        caches.variant_autoscalings.clone(),
        workload,
        prometheus,
        replica_metrics,
        cycle_metrics,
        events,
        options,
        leadership,
        waker,
    );
    runtime
        .readiness()
        .add("controller/configuration", controller.configured());
    let shutdown = runtime.shutdown();
    runtime.spawn("controller", async move {
        match elector {
            None => controller.run(shutdown).await,
            Some(elector) => {
                // The Lease is released only once the cycle in flight has finished.
                let (stopped, _) =
                    tokio::join!(controller.run(shutdown.clone()), elector.run(shutdown));
                elector.release().await;
                stopped
            }
        }
    });

    // One plain line on stdout so that scripts and tests learn the ports (port 0 = any free port).
    let shown = |addr: Option<SocketAddr>, scheme: &str| {
        addr.map_or("off".to_owned(), |a| format!("{scheme}://{a}"))
    };
    println!(
        "listening probes=http://{} metrics={} admission={}",
        runtime.probe_addr(),
        shown(metrics_addr, "http"),
        shown(admission_addr, "https")
    );
    tracing::info!(probes = %runtime.probe_addr(), actuation = args.actuation.name(), webhook = admission_addr.is_some(), "wva run started");
    runtime
        .run(super::shutdown_signal(), drain + STOP_MARGIN)
        .await
        .map_err(|e| e.to_string())
}
