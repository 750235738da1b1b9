//! The admission webhook's HTTPS server: axum routes over rustls (ring; TLS 1.2+; HTTP/1.1 and
//! HTTP/2), certificate and key (and client CA) re-read from files when their content changes,
//! optional client-certificate checks, per-route metrics, graceful shutdown. A thin adapter: the
//! rules live in `validate`/`mutate`, the response shape in `review`.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;

use super::cluster::ClusterCache;
use super::review::MAX_BODY_BYTES;
use super::{ClusterFacts, ConfigMapSettings, Route, handle, parse_review};
use crate::telemetry::{Metrics, Readiness, probe_router};

/// Errors starting or running the server.
#[derive(Debug)]
pub enum ServerError {
    /// A certificate, key or CA file is unreadable or inconsistent; names the file.
    Tls(String),
    /// An address could not be bound.
    Bind(SocketAddr, std::io::Error),
    Io(std::io::Error),
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tls(m) => write!(f, "TLS configuration: {m}"),
            Self::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ServerError {}

/// The serving certificate, its key and, for client-certificate checks, a CA bundle (all PEM).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// The PEM contents of [`TlsFiles`] at one moment.
#[derive(Hash)]
struct TlsContents {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl TlsContents {
    fn config(&self) -> Result<rustls::ServerConfig, ServerError> {
        tls_config(&self.cert, &self.key, self.client_ca.as_deref())
    }

    fn fingerprint(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.hash(&mut h);
        h.finish()
    }
}

impl TlsFiles {
    fn read(&self) -> Result<TlsContents, ServerError> {
        let read = |p: &PathBuf, what: &str| {
            std::fs::read(p)
                .map_err(|e| ServerError::Tls(format!("cannot read {what} {}: {e}", p.display())))
        };
        Ok(TlsContents {
            cert: read(&self.cert, "certificate")?,
            key: read(&self.key, "key")?,
            client_ca: self
                .client_ca
                .as_ref()
                .map(|p| read(p, "client CA"))
                .transpose()?,
        })
    }
}

/// Builds the rustls configuration from PEM contents: ring provider, TLS 1.3 and 1.2, ALPN h2
/// and http/1.1, client certificates required when a CA is given.
pub fn tls_config(
    cert: &[u8],
    key: &[u8],
    client_ca: Option<&[u8]>,
) -> Result<rustls::ServerConfig, ServerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<_, _>>()
        .map_err(|e| ServerError::Tls(format!("certificate: {e}")))?;
    if certs.is_empty() {
        return Err(ServerError::Tls(
            "certificate: no PEM certificate found".into(),
        ));
    }
    let key =
        PrivateKeyDer::from_pem_slice(key).map_err(|e| ServerError::Tls(format!("key: {e}")))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(ca) {
                let c = c.map_err(|e| ServerError::Tls(format!("client CA: {e}")))?;
                roots
                    .add(c)
                    .map_err(|e| ServerError::Tls(format!("client CA: {e}")))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| ServerError::Tls(format!("client CA: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| ServerError::Tls(format!("certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Re-reads the TLS files every `interval` and swaps the configuration when their content
/// changed and is consistent. Secret volumes swap a symlink, so polling content is the reliable
/// signal. A broken set (half-written files, a key that does not match) keeps the previous
/// configuration in force and is retried at the next poll.
async fn reload_tls(files: TlsFiles, config: RustlsConfig, mut current: u64, interval: Duration) {
    let mut last_error: Option<u64> = None;
    loop {
        tokio::time::sleep(interval).await;
        let Ok(contents) = files.read() else { continue };
        let print = contents.fingerprint();
        if print == current {
            continue;
        }
        match contents.config() {
            Ok(new) => {
                config.reload_from_config(Arc::new(new));
                current = print;
                last_error = None;
                tracing::info!(cert = %files.cert.display(), "reloaded the serving certificate");
            }
            Err(error) if last_error != Some(print) => {
                last_error = Some(print);
                tracing::warn!(%error, "new TLS files are not usable yet; keeping the current certificate");
            }
            Err(_) => {}
        }
    }
}

/// What the handlers share.
pub struct AdmissionState {
    /// `None` without a cluster: the duplicate-target rule and the target-exists warning are off.
    pub cluster: Option<ClusterCache>,
    pub settings: ConfigMapSettings,
    pub metrics: Arc<Metrics>,
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
        .with_state(state)
}

async fn review(route: Route, state: Arc<AdmissionState>, body: Bytes) -> Response {
    let started = Instant::now();
    let request = match parse_review(&body) {
        Ok(r) => r,
        Err(error) => {
            state
                .metrics
                .observe_admission(route.path(), "bad_request", started.elapsed());
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": error.0})),
            )
                .into_response();
        }
    };
    let facts = match (&state.cluster, route) {
        (Some(cache), Route::ValidateVariantAutoscaling) => {
            cache
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
    if result == "denied" {
        tracing::info!(
            route = route.path(), uid = %request.uid, namespace = %request.namespace, name = %request.name,
            message = %response["response"]["status"]["message"], "denied"
        );
    }
    state
        .metrics
        .observe_admission(route.path(), result, started.elapsed());
    axum::Json(response).into_response()
}

/// Where and how to serve.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub probe_listen: SocketAddr,
    pub tls: TlsFiles,
    /// How often the TLS files are checked for new content.
    pub reload_interval: Duration,
}

/// A running server: its bound addresses and a handle to stop it.
pub struct RunningServer {
    pub admission_addr: SocketAddr,
    pub probe_addr: SocketAddr,
    handle: axum_server::Handle<SocketAddr>,
    probe_stop: tokio::sync::oneshot::Sender<()>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    /// Stops accepting connections, lets in-flight reviews finish (up to `drain`), then stops.
    pub async fn shutdown(self, drain: Duration) {
        self.handle.graceful_shutdown(Some(drain));
        let _ = self.probe_stop.send(());
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Binds both ports (port 0 picks a free one) and serves until shut down.
pub async fn start(
    options: &ServeOptions,
    state: Arc<AdmissionState>,
    ready: Readiness,
) -> Result<RunningServer, ServerError> {
    let contents = options.tls.read()?;
    let config = RustlsConfig::from_config(Arc::new(contents.config()?));

    let listener = std::net::TcpListener::bind(options.listen)
        .map_err(|e| ServerError::Bind(options.listen, e))?;
    listener.set_nonblocking(true).map_err(ServerError::Io)?;
    let admission_addr = listener.local_addr().map_err(ServerError::Io)?;
    let probe_listener = tokio::net::TcpListener::bind(options.probe_listen)
        .await
        .map_err(|e| ServerError::Bind(options.probe_listen, e))?;
    let probe_addr = probe_listener.local_addr().map_err(ServerError::Io)?;

    let handle = axum_server::Handle::new();
    // TCP_NODELAY: reviews are small; Nagle plus delayed ACKs would add 40 ms stalls.
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config.clone())
        .acceptor(axum_server::accept::NoDelayAcceptor::new());
    let server = axum_server::from_tcp(listener)
        .map_err(ServerError::Io)?
        .acceptor(acceptor)
        .handle(handle.clone());
    let app = router(state.clone());
    let admission = tokio::spawn(async move {
        if let Err(error) = server.serve(app.into_make_service()).await {
            tracing::error!(%error, "admission server stopped");
        }
    });
    let reloader = tokio::spawn(reload_tls(
        options.tls.clone(),
        config,
        contents.fingerprint(),
        options.reload_interval,
    ));
    let (probe_stop, probe_stopped) = tokio::sync::oneshot::channel::<()>();
    let probes = probe_router(state.metrics.clone(), ready);
    let probe = tokio::spawn(async move {
        let _ = axum::serve(probe_listener, probes)
            .with_graceful_shutdown(async move {
                let _ = probe_stopped.await;
            })
            .await;
    });
    let admission_task = tokio::spawn(async move {
        let _ = admission.await;
        reloader.abort();
    });
    Ok(RunningServer {
        admission_addr,
        probe_addr,
        handle,
        probe_stop,
        tasks: vec![admission_task, probe],
    })
}
