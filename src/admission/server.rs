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
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum_server::tls_rustls::RustlsConfig;
use http_body_util::BodyExt;
use serde_json::json;

use super::cluster::ClusterView;
use super::limits::{BodyBudget, Connections, GuardAcceptor, ListenerLimits};
use super::metrics::AdmissionMetrics;
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
    /// Request body bytes in flight, across every connection.
    pub body_budget: BodyBudget,
    pub body_read_timeout: Duration,
}

impl AdmissionState {
    /// The state for `settings`, with the default log rate and the body limits of `limits`.
    pub fn new(
        cluster: Option<ClusterView>,
        settings: ConfigMapSettings,
        metrics: AdmissionMetrics,
        limits: &ListenerLimits,
    ) -> Self {
        Self {
            cluster,
            settings,
            metrics,
            denial_log: RateLimit::per_second(DENIAL_LOG_LINES_PER_SECOND),
            body_budget: BodyBudget::new(limits.body_budget_bytes),
            body_read_timeout: limits.body_read_timeout,
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
                move |State(state): State<Arc<AdmissionState>>, request: Request| {
                    review(route, state, request)
                },
            ),
        );
    }
    router.with_state(state)
}

/// Why a body was not read; each closes the connection (the rest of the body is unread).
enum BodyError {
    TooLarge(usize),
    Timeout(Duration),
    Busy,
    Broken(String),
}

impl BodyError {
    fn response(&self) -> Response {
        let (code, result, message) = match self {
            Self::TooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the review is larger than {limit} bytes"),
            ),
            Self::Timeout(after) => (
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!("the review's body did not arrive within {after:?}"),
            ),
            Self::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "too many review bodies in flight; retry".to_owned(),
            ),
            Self::Broken(why) => (
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("the body could not be read: {why}"),
            ),
        };
        let mut response = (
            code,
            [(header::CONNECTION, "close")],
            axum::Json(json!({ "error": message })),
        )
            .into_response();
        response.extensions_mut().insert(BodyResult(result));
        response
    }
}

/// The metrics result of a refused body.
#[derive(Clone, Copy)]
struct BodyResult(&'static str);

/// Reads a body within the route's limit, the process's body budget and the body time-out. A
/// length declared over the limit is refused before a byte is read.
async fn read_body(
    route: Route,
    state: &AdmissionState,
    request: Request,
) -> Result<(Bytes, Vec<tokio::sync::OwnedSemaphorePermit>), BodyError> {
    let limit = route.max_body_bytes();
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    let mut body = request.into_body();
    let read = async {
        // Grown as bytes arrive (and are budgeted), never sized from the declared length.
        let mut data = Vec::with_capacity(declared.map_or(0, |n| n as usize).min(16 * 1024));
        let mut held = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| BodyError::Broken(e.to_string()))?;
            if let Ok(chunk) = frame.into_data() {
                if data.len() + chunk.len() > limit {
                    return Err(BodyError::TooLarge(limit));
                }
                // Counted as it arrives: a slow body holds only what it has sent.
                held.push(
                    state
                        .body_budget
                        .reserve(chunk.len())
                        .ok_or(BodyError::Busy)?,
                );
                data.extend_from_slice(&chunk);
            }
        }
        Ok((Bytes::from(data), held))
    };
    tokio::time::timeout(state.body_read_timeout, read)
        .await
        .map_err(|_| BodyError::Timeout(state.body_read_timeout))?
}

async fn review(route: Route, state: Arc<AdmissionState>, request: Request) -> Response {
    let started = Instant::now();
    let (body, _permit) = match read_body(route, &state, request).await {
        Ok(read) => read,
        Err(error) => {
            let response = error.response();
            let result = response
                .extensions()
                .get::<BodyResult>()
                .map_or("bad_request", |r| r.0);
            state
                .metrics
                .observe(route.path(), result, started.elapsed());
            return response;
        }
    };
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
    pub limits: ListenerLimits,
}

/// A bound server, not serving yet: run it as a runtime component with
/// [`AdmissionServer::serve_until`], or in the background with [`AdmissionServer::spawn`].
pub struct AdmissionServer {
    pub admission_addr: SocketAddr,
    /// The open connections (counts for metrics and tests).
    pub connections: Connections,
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
            connections: self.connections,
            handle: self.handle,
            task: tokio::spawn(self.serve),
        }
    }
}

/// A server serving on its own task.
pub struct RunningServer {
    pub admission_addr: SocketAddr,
    pub connections: Connections,
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
    let limits = options.limits;
    let connections = Connections::default();
    let guard = GuardAcceptor::new(connections.clone(), limits);
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config.clone())
        .handshake_timeout(limits.handshake_timeout)
        .acceptor(guard);
    let refusals = Arc::new(RateLimit::per_second(1));
    let mut server = axum_server::from_tcp(listener)?
        .acceptor(acceptor)
        .handle(handle.clone())
        .first_request_timeout(limits.first_request_timeout)
        .accept_error_handler(move |peer, error| {
            if let Some(suppressed) = refusals.admit(Instant::now()) {
                tracing::warn!(peer = ?peer, %error, suppressed, "admission connection not accepted");
            }
        });
    let timer = hyper_util::rt::TokioTimer::new();
    let builder = server.http_builder();
    // Small buffers and windows: what a connection holds unread stays small.
    builder
        .http1()
        .timer(timer.clone())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(timer)
        .keep_alive_interval(limits.http2_keep_alive_interval)
        .keep_alive_timeout(limits.http2_keep_alive_timeout)
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .initial_stream_window_size(128 * 1024)
        .initial_connection_window_size(256 * 1024);
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
        connections,
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
