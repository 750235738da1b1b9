//! The process runtime shared by `wva webhook` and `wva run`: the plain-HTTP probe server
//! (`/healthz`, `/readyz`, `/metrics`), readiness as named checks (each component registers one;
//! `/readyz?verbose` lists them as the Kubernetes API server does), one metrics registry with a
//! sub-registry per component, one shutdown path (a signal → components stop taking work and
//! drain → exit), and fail-stop: a component task that ends while nobody asked it to makes
//! readiness false, stops the others and makes [`Runtime::run`] fail naming it. Knows nothing of
//! what the components do.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};

/// A readiness check: `Ok` when the component can do its work, else why not.
pub type Check = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Why the runtime could not start or why the process stops with a failure.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot listen on {0} for the probes: {1}")]
    Bind(SocketAddr, #[source] std::io::Error),
    #[error("component {name} stopped unexpectedly: {why}")]
    ComponentStopped { name: String, why: String },
    #[error("components still running {0:?} after the drain time; stopped them")]
    DrainTimeout(Vec<String>),
}

/// The process's readiness: named checks plus one process-wide state (shutting down, or a
/// component failed). Cheap to clone.
#[derive(Clone, Default)]
pub struct Readiness {
    inner: Arc<Mutex<ReadinessState>>,
}

#[derive(Default)]
struct ReadinessState {
    checks: Vec<(String, Check)>,
    stopping: Option<String>,
}

/// The outcome of every check at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadinessReport {
    pub checks: Vec<(String, Result<(), String>)>,
}

impl Readiness {
    /// Registers a named check (e.g. `cache/variantautoscalings`).
    pub fn add(&self, name: impl Into<String>, check: Check) {
        self.lock().checks.push((name.into(), check));
    }

    /// Makes the process not ready from now on, for `why`.
    pub fn stop(&self, why: impl Into<String>) {
        self.lock().stopping.get_or_insert(why.into());
    }

    /// Runs every check.
    pub fn report(&self) -> ReadinessReport {
        let (checks, stopping) = {
            let state = self.lock();
            (state.checks.clone(), state.stopping.clone())
        };
        let mut report: Vec<(String, Result<(), String>)> = checks
            .iter()
            .map(|(name, check)| (name.clone(), check()))
            .collect();
        report.push(("shutdown".into(), stopping.map_or(Ok(()), Err)));
        ReadinessReport { checks: report }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ReadinessState> {
        // A check that panicked while the lock was held leaves the list intact.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ReadinessReport {
    pub fn ready(&self) -> bool {
        self.checks.iter().all(|(_, r)| r.is_ok())
    }

    /// The `/readyz` answer: `ok` when ready and not verbose; otherwise one line per check in the
    /// Kubernetes API server's format (`[+]name ok`, `[-]name failed: why`) and a closing line.
    pub fn render(&self, verbose: bool) -> (StatusCode, String) {
        let ready = self.ready();
        if ready && !verbose {
            return (StatusCode::OK, "ok".into());
        }
        let mut text = String::new();
        for (name, result) in &self.checks {
            match result {
                Ok(()) => text.push_str(&format!("[+]{name} ok\n")),
                Err(why) => text.push_str(&format!("[-]{name} failed: {why}\n")),
            }
        }
        if ready {
            text.push_str("readyz check passed\n");
            (StatusCode::OK, text)
        } else {
            text.push_str("readyz check failed\n");
            (StatusCode::SERVICE_UNAVAILABLE, text)
        }
    }
}

/// Told to every component: resolves once the process is shutting down. Cheap to clone.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Waits until shutdown is requested.
    pub async fn requested(&self) {
        let mut receiver = self.0.clone();
        // An error means the runtime is gone: that is a shutdown too.
        let _ = receiver.wait_for(|stop| *stop).await;
    }

    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }
}

/// The runtime of one process. Build it, register metrics and readiness checks, spawn the
/// components, then [`Runtime::run`].
pub struct Runtime {
    registry: Registry,
    readiness: Readiness,
    stop: watch::Sender<bool>,
    tasks: JoinSet<Result<(), String>>,
    names: HashMap<tokio::task::Id, String>,
    probe_listener: tokio::net::TcpListener,
    probe_addr: SocketAddr,
    metrics_listener: Option<tokio::net::TcpListener>,
}

impl Runtime {
    /// Binds the probe port now (port 0 picks a free one), so that the caller can say where it is.
    pub async fn bind(probe_listen: SocketAddr) -> Result<Self, RuntimeError> {
        let probe_listener = tokio::net::TcpListener::bind(probe_listen)
            .await
            .map_err(|e| RuntimeError::Bind(probe_listen, e))?;
        let probe_addr = probe_listener
            .local_addr()
            .map_err(|e| RuntimeError::Bind(probe_listen, e))?;
        Ok(Self {
            registry: Registry::default(),
            readiness: Readiness::default(),
            stop: watch::channel(false).0,
            tasks: JoinSet::new(),
            names: HashMap::new(),
            probe_listener,
            probe_addr,
            metrics_listener: None,
        })
    }

    /// Also serves `/metrics` alone on `listen` (plain HTTP, as `--metrics-bind-address`);
    /// binds now and returns the bound address.
    pub async fn bind_metrics(&mut self, listen: SocketAddr) -> Result<SocketAddr, RuntimeError> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| RuntimeError::Bind(listen, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| RuntimeError::Bind(listen, e))?;
        self.metrics_listener = Some(listener);
        Ok(addr)
    }

    pub fn probe_addr(&self) -> SocketAddr {
        self.probe_addr
    }

    /// A component's own part of the registry: its metrics keep their full names.
    pub fn metrics(&mut self) -> &mut Registry {
        &mut self.registry
    }

    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    pub fn shutdown(&self) -> Shutdown {
        Shutdown(self.stop.subscribe())
    }

    /// Runs a component. It must return only after [`Shutdown::requested`]; returning earlier —
    /// with `Ok` or an error, or by panicking or being aborted — stops the process (fail-stop).
    pub fn spawn<E, F>(&mut self, name: &str, task: F) -> AbortHandle
    where
        E: std::fmt::Display,
        F: Future<Output = Result<(), E>> + Send + 'static,
    {
        let handle = self
            .tasks
            .spawn(async move { task.await.map_err(|e| e.to_string()) });
        self.names.insert(handle.id(), name.to_owned());
        handle
    }

    /// Serves the probes until `signal` resolves or a component stops by itself; then asks every
    /// component to stop and waits up to `grace` for them. `Ok` after a clean shutdown.
    pub async fn run(
        mut self,
        signal: impl Future<Output = ()>,
        grace: Duration,
    ) -> Result<(), RuntimeError> {
        let registry = Arc::new(std::mem::take(&mut self.registry));
        let probes = probe_router(registry.clone(), self.readiness.clone());
        let (probe_stop, probe_stopped) = tokio::sync::watch::channel(false);
        let listener = self.probe_listener;
        let stopped = probe_stopped.clone();
        let probe_server = tokio::spawn(async move {
            axum::serve(listener, probes)
                .with_graceful_shutdown(wait_true(stopped))
                .await
        });
        let metrics_server = self.metrics_listener.take().map(|listener| {
            let router = Router::new()
                .route("/metrics", get(metrics_text))
                .with_state(ProbeState {
                    registry,
                    readiness: self.readiness.clone(),
                });
            tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(wait_true(probe_stopped))
                    .await
            })
        });

        tokio::pin!(signal);
        let mut failure = None;
        tokio::select! {
            () = &mut signal => {
                tracing::info!("shutting down: no new work, finishing what is in flight");
                self.readiness.stop("the process is shutting down");
            }
            Some(joined) = self.tasks.join_next_with_id() => {
                let (name, why) = describe(&mut self.names, joined);
                tracing::error!(component = %name, %why, "a component stopped unexpectedly; stopping the process");
                self.readiness.stop(format!("component {name} stopped: {why}"));
                failure = Some(RuntimeError::ComponentStopped { name, why });
            }
        }
        self.stop.send_replace(true);
        let drained = tokio::time::timeout(grace, async {
            while let Some(joined) = self.tasks.join_next_with_id().await {
                let (name, why) = describe(&mut self.names, joined);
                if why != "finished" {
                    tracing::warn!(component = %name, %why, "component ended with an error while stopping");
                }
            }
        })
        .await;
        let mut outcome = failure.map_or(Ok(()), Err);
        if drained.is_err() {
            let left: Vec<String> = self.names.values().cloned().collect();
            self.tasks.abort_all();
            if outcome.is_ok() {
                outcome = Err(RuntimeError::DrainTimeout(left));
            }
        }
        probe_stop.send_replace(true);
        let _ = probe_server.await;
        if let Some(server) = metrics_server {
            let _ = server.await;
        }
        outcome
    }
}

async fn wait_true(mut flag: watch::Receiver<bool>) {
    let _ = flag.wait_for(|&stop| stop).await;
}

/// The component's name and how it ended; forgets the task.
fn describe(
    names: &mut HashMap<tokio::task::Id, String>,
    joined: Result<(tokio::task::Id, Result<(), String>), tokio::task::JoinError>,
) -> (String, String) {
    let (id, why) = match joined {
        Ok((id, Ok(()))) => (id, "finished".to_owned()),
        Ok((id, Err(error))) => (id, error),
        Err(error) if error.is_cancelled() => (error.id(), "aborted".to_owned()),
        Err(error) => (error.id(), "panicked".to_owned()),
    };
    let name = names.remove(&id).unwrap_or_else(|| format!("task {id}"));
    (name, why)
}

#[derive(Clone)]
struct ProbeState {
    registry: Arc<Registry>,
    readiness: Readiness,
}

/// `/healthz` (the process answers), `/readyz` (and `/readyz/<check>`), `/metrics`.
fn probe_router(registry: Arc<Registry>, readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/readyz/{*check}", get(readyz_one))
        .route("/metrics", get(metrics_text))
        .with_state(ProbeState {
            registry,
            readiness,
        })
}

async fn readyz(State(state): State<ProbeState>, RawQuery(query): RawQuery) -> impl IntoResponse {
    let verbose = query.as_deref().is_some_and(|q| {
        q.split('&')
            .any(|p| p == "verbose" || p.starts_with("verbose="))
    });
    state.readiness.report().render(verbose)
}

async fn readyz_one(
    State(state): State<ProbeState>,
    Path(check): Path<String>,
) -> impl IntoResponse {
    let report = state.readiness.report();
    match report.checks.into_iter().find(|(name, _)| *name == check) {
        None => (
            StatusCode::NOT_FOUND,
            format!("no readiness check {check:?}\n"),
        ),
        Some((_, Ok(()))) => (StatusCode::OK, "ok".into()),
        Some((name, Err(why))) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("[-]{name} failed: {why}\n"),
        ),
    }
}

async fn metrics_text(State(state): State<ProbeState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::telemetry::encode(&state.registry),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(result: Result<(), &'static str>) -> Check {
        Arc::new(move || result.map_err(str::to_owned))
    }

    #[test]
    fn readyz_lists_named_checks_like_the_api_server() {
        let readiness = Readiness::default();
        readiness.add("admission-certificate", check(Ok(())));
        assert_eq!(
            readiness.report().render(false),
            (StatusCode::OK, "ok".into())
        );
        assert_eq!(
            readiness.report().render(true),
            (
                StatusCode::OK,
                "[+]admission-certificate ok\n[+]shutdown ok\nreadyz check passed\n".into()
            )
        );
        readiness.add(
            "cache/variantautoscalings",
            check(Err("has not synced yet")),
        );
        let (code, text) = readiness.report().render(false);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            text,
            "[+]admission-certificate ok\n[-]cache/variantautoscalings failed: has not synced yet\n[+]shutdown ok\nreadyz check failed\n"
        );
    }

    #[test]
    fn stopping_makes_the_process_unready_for_good() {
        let readiness = Readiness::default();
        readiness.stop("the process is shutting down");
        readiness.stop("a later reason does not replace the first");
        let report = readiness.report();
        assert!(!report.ready());
        assert_eq!(
            report.checks,
            vec![(
                "shutdown".to_owned(),
                Err("the process is shutting down".to_owned())
            )]
        );
    }

    #[tokio::test]
    async fn a_component_that_ends_by_itself_stops_the_process() {
        let mut runtime = Runtime::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let shutdown = runtime.shutdown();
        runtime.spawn("steady", async move {
            shutdown.requested().await;
            Ok::<(), String>(())
        });
        runtime.spawn("fragile", async { Err::<(), _>("listener closed") });
        let outcome = runtime
            .run(std::future::pending(), Duration::from_secs(5))
            .await;
        match outcome {
            Err(RuntimeError::ComponentStopped { name, why }) => {
                assert_eq!(
                    (name.as_str(), why.as_str()),
                    ("fragile", "listener closed")
                );
            }
            other => panic!("expected a fail-stop, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_signal_drains_every_component_and_succeeds() {
        let mut runtime = Runtime::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (shutdown, done) = (runtime.shutdown(), finished.clone());
        runtime.spawn("worker", async move {
            shutdown.requested().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok::<(), String>(())
        });
        let outcome = runtime.run(async {}, Duration::from_secs(5)).await;
        assert!(outcome.is_ok(), "{outcome:?}");
        assert!(finished.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_component_that_ignores_shutdown_is_stopped_after_the_grace_time() {
        let mut runtime = Runtime::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        runtime.spawn("stubborn", std::future::pending::<Result<(), String>>());
        let outcome = runtime.run(async {}, Duration::from_millis(50)).await;
        assert!(
            matches!(outcome, Err(RuntimeError::DrainTimeout(ref left)) if left == &["stubborn".to_owned()]),
            "{outcome:?}"
        );
    }
}
