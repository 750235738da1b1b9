//! The admission webhook's HTTPS server: axum routes over rustls (via `tls`: ring, TLS 1.2+,
//! HTTP/1.1 and HTTP/2), the certificate, key and client CA re-read by the one file reloader,
//! per-route metrics, graceful shutdown. A thin adapter: the rules live in `validate`/`mutate`,
//! the response shape in `review`; the probes and the metrics endpoint belong to the process
//! runtime.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum_server::tls_rustls::RustlsConfig;
use serde_json::json;

use super::cluster::ClusterView;
use super::metrics::AdmissionMetrics;
use super::review::MAX_BODY_BYTES;
use super::{ClusterFacts, ConfigMapSettings, Route, handle, parse_review};
use crate::runtime::Shutdown;
use crate::tls::{Reloader, TlsError};

/// Errors starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A certificate, key or CA file is unreadable or inconsistent; names the file.
    #[error("TLS configuration: {0}")]
    Tls(#[from] TlsError),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, #[source] std::io::Error),
    #[error("admission server: {0}")]
    Io(#[from] std::io::Error),
    #[error("the admission server task ended: {0}")]
    Stopped(String),
}

/// The serving certificate, its key and, for client-certificate checks, a CA bundle (all PEM).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    fn file_set(&self) -> crate::tls::FileSet {
        let mut files = vec![
            ("certificate".to_owned(), self.cert.clone()),
            ("key".to_owned(), self.key.clone()),
        ];
        if let Some(ca) = &self.client_ca {
            files.push(("client CA".to_owned(), ca.clone()));
        }
        files
    }
}

/// Builds the server configuration from the files of [`TlsFiles::file_set`], in that order.
fn server_config(files: &[crate::tls::PemFile]) -> Result<rustls::ServerConfig, ServerError> {
    Ok(crate::tls::server_config(
        &files[0],
        &files[1],
        files.get(2),
    )?)
}

/// What the handlers share.
pub struct AdmissionState {
    /// `None` without a cluster: the duplicate-target rule and the target-exists warning are off.
    pub cluster: Option<ClusterView>,
    pub settings: ConfigMapSettings,
    pub metrics: AdmissionMetrics,
    pub denial_log: RateLimit,
}

impl AdmissionState {
    /// The state for `settings`, with fresh metrics and the default log rate.
    pub fn new(
        cluster: Option<ClusterView>,
        settings: ConfigMapSettings,
        metrics: AdmissionMetrics,
    ) -> Self {
        Self {
            cluster,
            settings,
            metrics,
            denial_log: RateLimit::per_second(DENIAL_LOG_LINES_PER_SECOND),
        }
    }
}

/// At most this many "denied" log lines a second; the metrics count every denial.
pub const DENIAL_LOG_LINES_PER_SECOND: u32 = 10;

/// A fixed-window rate limit for log lines: [`RateLimit::admit`] says whether to log now and how
/// many lines were suppressed since the last one logged.
pub struct RateLimit {
    per_second: u32,
    window: std::sync::Mutex<(Instant, u32, u64)>,
}

impl RateLimit {
    pub fn per_second(per_second: u32) -> Self {
        Self {
            per_second,
            window: std::sync::Mutex::new((Instant::now(), 0, 0)),
        }
    }

    /// `Some(suppressed)` to log now, `None` to stay quiet.
    pub fn admit(&self, now: Instant) -> Option<u64> {
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let (start, logged, suppressed) = &mut *window;
        if now.duration_since(*start) >= Duration::from_secs(1) {
            *start = now;
            *logged = 0;
        }
        if *logged < self.per_second {
            *logged += 1;
            Some(std::mem::take(suppressed))
        } else {
            *suppressed += 1;
            None
        }
    }
}

/// The admission routes (the same router serves `wva webhook` and `wva run`).
pub fn router(state: Arc<AdmissionState>) -> Router {
    let mut router = Router::new();
    for route in Route::ALL {
        router = router.route(
            route.path(),
            post(
                move |State(state): State<Arc<AdmissionState>>, body: Bytes| {
                    review(route, state, body)
                },
            ),
        );
    }
    router
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(refuse_oversized))
        .with_state(state)
}

/// A body declared larger than the limit is refused from its `Content-Length` alone, before a
/// byte of it is read, and the connection is closed (its unread body cannot be skipped).
async fn refuse_oversized(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    let response = next.run(request).await;
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        // The limit was hit while reading: the rest of the body is unread.
        return too_large();
    }
    response
}

fn too_large() -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        [(header::CONNECTION, "close")],
        axum::Json(json!({"error": format!("the review is larger than {MAX_BODY_BYTES} bytes")})),
    )
        .into_response()
}

async fn review(route: Route, state: Arc<AdmissionState>, body: Bytes) -> Response {
    let started = Instant::now();
    let request = match parse_review(&body) {
        Ok(r) => r,
        Err(error) => {
            state
                .metrics
                .observe(route.path(), "bad_request", started.elapsed());
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": error.0})),
            )
                .into_response();
        }
    };
    let facts = match (&state.cluster, route) {
        (Some(cluster), Route::ValidateVariantAutoscaling) => {
            cluster
                .facts(&request.namespace, request.object.as_ref())
                .await
        }
        _ => ClusterFacts::default(),
    };
    let response = handle(route, &request, &facts, &state.settings);
    let result = if response["response"]["allowed"] == true {
        "allowed"
    } else {
        "denied"
    };
    if result == "denied"
        && let Some(suppressed) = state.denial_log.admit(Instant::now())
    {
        tracing::info!(
            route = route.path(), uid = %request.uid, namespace = %request.namespace, name = %request.name,
            message = %response["response"]["status"]["message"], suppressed, "denied"
        );
    }
    state
        .metrics
        .observe(route.path(), result, started.elapsed());
    axum::Json(response).into_response()
}

/// Where and how to serve.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub tls: TlsFiles,
    /// How often the TLS files are checked for new content.
    pub reload_interval: Duration,
}

/// A bound server, not serving yet: run it as a runtime component with
/// [`AdmissionServer::serve_until`], or in the background with [`AdmissionServer::spawn`].
pub struct AdmissionServer {
    pub admission_addr: SocketAddr,
    handle: axum_server::Handle<SocketAddr>,
    serve: futures::future::BoxFuture<'static, std::io::Result<()>>,
}

impl AdmissionServer {
    /// Serves until `shutdown` is requested, then stops accepting connections and lets
    /// in-flight reviews finish (up to `drain`). Ends with an error if the server stops first.
    pub async fn serve_until(self, shutdown: Shutdown, drain: Duration) -> Result<(), ServerError> {
        let mut serve = self.serve;
        tokio::select! {
            ended = &mut serve => {
                return Err(ServerError::Stopped(match ended {
                    Ok(()) => "it returned".to_owned(),
                    Err(error) => error.to_string(),
                }));
            }
            () = shutdown.requested() => {}
        }
        self.handle.graceful_shutdown(Some(drain));
        serve.await?;
        Ok(())
    }

    /// Serves on a task of its own (tests, benchmarks).
    pub fn spawn(self) -> RunningServer {
        RunningServer {
            admission_addr: self.admission_addr,
            handle: self.handle,
            task: tokio::spawn(self.serve),
        }
    }
}

/// A server serving on its own task.
pub struct RunningServer {
    pub admission_addr: SocketAddr,
    handle: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Stops accepting connections, lets in-flight reviews finish (up to `drain`), then stops.
    pub async fn shutdown(self, drain: Duration) {
        self.handle.graceful_shutdown(Some(drain));
        let _ = self.task.await;
    }
}

/// Reads the TLS files and binds the admission port (port 0 picks a free one). Must run inside
/// a tokio runtime (the certificate watcher runs on it).
pub async fn bind(
    options: &ServeOptions,
    state: Arc<AdmissionState>,
) -> Result<AdmissionServer, ServerError> {
    let reloader = Reloader::start(
        "admission certificate",
        options.tls.file_set(),
        options.reload_interval,
        server_config,
    )?;
    let config = RustlsConfig::from_config(reloader.current());
    let listener = std::net::TcpListener::bind(options.listen)
        .map_err(|e| ServerError::Bind(options.listen, e))?;
    listener.set_nonblocking(true)?;
    let admission_addr = listener.local_addr()?;

    let handle = axum_server::Handle::new();
    // TCP_NODELAY: reviews are small; Nagle plus delayed ACKs would add 40 ms stalls.
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config.clone())
        .acceptor(axum_server::accept::NoDelayAcceptor::new());
    let server = axum_server::from_tcp(listener)?
        .acceptor(acceptor)
        .handle(handle.clone());
    let app = router(state);
    let mut updates = reloader.subscribe();
    // One future: the listener and the certificate swaps end together.
    let serve = async move {
        let swap_certificates = async move {
            while updates.changed().await.is_ok() {
                let new = updates.borrow_and_update().clone();
                config.reload_from_config(new);
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            ended = server.serve(app.into_make_service()) => ended,
            () = swap_certificates => Ok(()),
        }
    };
    Ok(AdmissionServer {
        admission_addr,
        handle,
        serve: Box::pin(serve),
    })
}

/// [`bind`] and [`AdmissionServer::spawn`].
pub async fn start(
    options: &ServeOptions,
    state: Arc<AdmissionState>,
) -> Result<RunningServer, ServerError> {
    Ok(bind(options, state).await?.spawn())
}
