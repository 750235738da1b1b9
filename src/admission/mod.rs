//! The admission webhook: validating and mutating rules for VariantAutoscaling objects and the
//! wva ConfigMaps, and the HTTPS server that serves them. The rules ([`validate`], [`mutate`])
//! are pure functions of the object under review and a read-only view of the cluster
//! ([`ClusterFacts`]); [`handle`] turns a parsed review into the response; `server` is the thin
//! IO adapter (TLS, routes, certificate reload, metrics).

pub mod cluster;
pub mod mutate;
pub mod review;
pub mod server;
pub mod validate;

use serde_json::Value;

pub use review::{Operation, ReviewRequest, UnreadableReview, Verdict, parse_review};
pub use validate::{ClusterFacts, ConfigMapSettings, ExistingVa};

/// The webhook endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    ValidateVariantAutoscaling,
    MutateVariantAutoscaling,
    ValidateConfig,
}

impl Route {
    pub const ALL: [Route; 3] = [
        Route::ValidateVariantAutoscaling,
        Route::MutateVariantAutoscaling,
        Route::ValidateConfig,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Route::ValidateVariantAutoscaling => "/validate-variantautoscaling",
            Route::MutateVariantAutoscaling => "/mutate-variantautoscaling",
            Route::ValidateConfig => "/validate-config",
        }
    }

    /// The object kind the route reviews.
    pub fn kind(self) -> &'static str {
        match self {
            Route::ValidateVariantAutoscaling | Route::MutateVariantAutoscaling => {
                "VariantAutoscaling"
            }
            Route::ValidateConfig => "ConfigMap",
        }
    }
}

/// Applies the route's rules to a parsed review and builds the AdmissionReview response.
pub fn handle(
    route: Route,
    request: &ReviewRequest,
    facts: &ClusterFacts,
    settings: &ConfigMapSettings,
) -> Value {
    let verdict = verdict(route, request, facts, settings);
    review::response(&request.uid, &verdict, route.kind(), &request.name)
}

/// The rules' verdict for one request.
pub fn verdict(
    route: Route,
    request: &ReviewRequest,
    facts: &ClusterFacts,
    settings: &ConfigMapSettings,
) -> Verdict {
    let Some(object) = request.object.as_ref() else {
        return Verdict::default();
    };
    if !request.kind.is_empty() && request.kind != route.kind() {
        return Verdict {
            warnings: vec![format!(
                "wva: {} reviews {} objects, not {}; allowed unchecked (check the webhook's rules)",
                route.path(),
                route.kind(),
                request.kind
            )],
            ..Default::default()
        };
    }
    match route {
        Route::ValidateVariantAutoscaling => validate::validate_variant_autoscaling(
            request.operation,
            &request.namespace,
            object,
            request.old_object.as_ref(),
            facts,
        ),
        Route::MutateVariantAutoscaling => match request.operation {
            Operation::Create | Operation::Update => Verdict {
                patch: Some(mutate::patch(object)),
                ..Default::default()
            },
            _ => Verdict::default(),
        },
        Route::ValidateConfig => validate::validate_config_map(request.operation, object, settings),
    }
}

#[cfg(test)]
mod tests;

/// `wva webhook`: serves the admission routes until SIGTERM or Ctrl-C.
pub fn serve_webhook(args: crate::cli::WebhookArgs) -> std::process::ExitCode {
    crate::telemetry::init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_webhook(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run_webhook(args: crate::cli::WebhookArgs) -> Result<(), String> {
    let client = crate::k8s::client(args.kubeconfig.as_deref()).await?;
    let cluster = client.map(cluster::ClusterCache::start);
    if cluster.is_none() {
        tracing::warn!(
            "no --kubeconfig and not in a cluster: the one-VariantAutoscaling-per-workload rule and the target-exists warning are off"
        );
    }
    let metrics = std::sync::Arc::new(crate::telemetry::Metrics::default());
    let state = std::sync::Arc::new(server::AdmissionState {
        cluster: cluster.clone(),
        settings: ConfigMapSettings {
            namespace: args.namespace.clone(),
            saturation_name: args.saturation_config_map_name.clone(),
            scale_to_zero_name: crate::config::scale_to_zero::CONFIG_MAP_NAME.into(),
        },
        metrics,
    });
    let ready: crate::telemetry::Readiness = match cluster {
        Some(cache) => std::sync::Arc::new(move || {
            if cache.is_ready() {
                Ok(())
            } else {
                Err("the VariantAutoscaling cache has not synced yet".into())
            }
        }),
        None => std::sync::Arc::new(|| Ok(())),
    };
    let seconds = |s: f64, flag: &str| {
        std::time::Duration::try_from_secs_f64(s)
            .map_err(|_| format!("{flag} must be a non-negative number of seconds, got {s}"))
    };
    let options = server::ServeOptions {
        listen: args.listen,
        probe_listen: args.probe_listen,
        tls: server::TlsFiles {
            cert: args.cert.clone(),
            key: args.key.clone(),
            client_ca: args.client_ca.clone(),
        },
        reload_interval: seconds(args.cert_reload_seconds, "--cert-reload-seconds")?,
    };
    let drain = seconds(args.drain_seconds, "--drain-seconds")?;
    let running = server::start(&options, state, ready)
        .await
        .map_err(|e| e.to_string())?;
    // One plain line on stdout so that scripts and tests learn the ports (port 0 = any free port).
    println!(
        "listening admission=https://{} probes=http://{}",
        running.admission_addr, running.probe_addr
    );
    tracing::info!(admission = %running.admission_addr, probes = %running.probe_addr, mtls = args.client_ca.is_some(), "admission webhook serving");
    shutdown_signal().await;
    tracing::info!(
        ?drain,
        "shutting down: no new connections, finishing in-flight reviews"
    );
    running.shutdown(drain).await;
    Ok(())
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
