//! The Prometheus HTTP client: rustls (ring, TLS 1.2+), a CA file that replaces the system roots
//! (as upstream), client certificates (mTLS), a server-name override, a bearer token from the
//! variable or a file. Certificate, key, CA and token files are re-read when their content
//! changes, so rotations need no restart. Queries are POST forms with a 10 s budget, retried
//! with backoff (spec §4.6) on connection errors and 5xx only; answers are size-limited and
//! parsed by `response`. Never logs a token.

use std::collections::hash_map::{DefaultHasher, RandomState};
use std::hash::{BuildHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::response::{self, ResponseError, Sample};
use crate::config::prometheus::{self as vars, PrometheusConfig};

/// Retry policy (upstream's `PrometheusQueryBackoff`): 500 ms, ×2, 10 % jitter, 5 attempts,
/// all inside the query's time budget.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub initial: Duration,
    pub factor: f64,
    pub jitter: f64,
    pub attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            factor: 2.0,
            jitter: 0.1,
            attempts: 5,
        }
    }
}

/// Client limits.
#[derive(Clone, Copy, Debug)]
pub struct ClientOptions {
    /// Budget for one query, retries included.
    pub timeout: Duration,
    pub backoff: Backoff,
    /// Answers larger than this are refused (a runaway query must not exhaust memory).
    pub max_response_bytes: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            backoff: Backoff::default(),
            max_response_bytes: 32 * 1024 * 1024,
        }
    }
}

/// Why a query produced no data.
#[derive(Debug)]
pub enum QueryError {
    /// A TLS or token file is unusable; names the variable and the path.
    Setup(String),
    /// No connection (refused, reset, TLS handshake failed, DNS).
    Connect(String),
    /// The budget ran out.
    Timeout(Duration),
    /// An HTTP status other than 200 (and not a Prometheus error document).
    Status { code: u16, body: String },
    /// The answer exceeded the size limit.
    TooLarge(usize),
    /// The answer was not usable.
    Response(ResponseError),
}

impl QueryError {
    fn retryable(&self) -> bool {
        match self {
            Self::Connect(_) => true,
            Self::Status { code, .. } => *code >= 500,
            _ => false,
        }
    }
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Setup(m) => f.write_str(m),
            Self::Connect(m) => write!(f, "cannot reach Prometheus: {m}"),
            Self::Timeout(d) => write!(f, "Prometheus did not answer within {d:?}"),
            Self::Status { code, body } => write!(f, "Prometheus answered HTTP {code}: {body}"),
            Self::TooLarge(limit) => write!(
                f,
                "the answer is larger than {} MiB; refused",
                limit / (1024 * 1024)
            ),
            Self::Response(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for QueryError {}

/// The files a client depends on, read at one moment.
#[derive(Hash, PartialEq, Eq)]
struct Files {
    ca: Option<Vec<u8>>,
    cert: Option<Vec<u8>>,
    key: Option<Vec<u8>>,
    token: Option<Vec<u8>>,
}

fn read(path: &Option<PathBuf>, variable: &str) -> Result<Option<Vec<u8>>, QueryError> {
    path.as_ref()
        .map(|p| {
            std::fs::read(p).map_err(|e| {
                QueryError::Setup(format!("{variable}: cannot read {}: {e}", p.display()))
            })
        })
        .transpose()
}

impl Files {
    fn read(config: &PrometheusConfig) -> Result<Self, QueryError> {
        Ok(Self {
            ca: read(&config.ca_cert_path, vars::CA_CERT_PATH)?,
            cert: read(&config.client_cert_path, vars::CLIENT_CERT_PATH)?,
            key: read(&config.client_key_path, vars::CLIENT_KEY_PATH)?,
            token: if config.bearer_token.is_some() {
                None
            } else {
                read(&config.token_path, vars::TOKEN_PATH)?
            },
        })
    }

    fn fingerprint(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.hash(&mut h);
        h.finish()
    }
}

struct Current {
    fingerprint: u64,
    http: reqwest::Client,
    token: Option<String>,
}

/// A Prometheus query client; cheap to share (`Arc`).
pub struct PrometheusClient {
    config: PrometheusConfig,
    options: ClientOptions,
    query_url: reqwest::Url,
    current: Mutex<Arc<Current>>,
}

impl PrometheusClient {
    /// Builds the client, reading every file now: a missing or broken file is an error that
    /// names the variable and the path.
    pub fn new(config: PrometheusConfig, options: ClientOptions) -> Result<Self, QueryError> {
        let base = config.base_url.trim_end_matches('/');
        let query_url = reqwest::Url::parse(&format!("{base}/api/v1/query"))
            .map_err(|e| QueryError::Setup(format!("{}: {e}", vars::BASE_URL)))?;
        let files = Files::read(&config)?;
        let current = build(&config, &files)?;
        Ok(Self {
            config,
            options,
            query_url,
            current: Mutex::new(Arc::new(current)),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &PrometheusConfig {
        &self.config
    }

    /// The client for the files as they are now; a rotation in progress (a file missing or
    /// not matching yet) keeps the previous client.
    fn current(&self) -> Arc<Current> {
        let previous = self
            .current
            .lock()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        let Ok(files) = Files::read(&self.config) else {
            return previous;
        };
        let fingerprint = files.fingerprint();
        if fingerprint == previous.fingerprint {
            return previous;
        }
        match build(&self.config, &files) {
            Ok(new) => {
                tracing::info!("Prometheus TLS or token files changed; using the new ones");
                let new = Arc::new(new);
                if let Ok(mut slot) = self.current.lock() {
                    *slot = new.clone();
                }
                new
            }
            Err(error) => {
                tracing::warn!(%error, "new Prometheus TLS or token files are not usable yet; keeping the current ones");
                previous
            }
        }
    }

    /// Runs an instant query (POST form), retrying connection errors and 5xx within the budget.
    pub async fn query(&self, promql: &str) -> Result<Vec<Sample>, QueryError> {
        let deadline = Instant::now() + self.options.timeout;
        let backoff = self.options.backoff;
        let mut delay = backoff.initial;
        let mut attempt = 1;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(QueryError::Timeout(self.options.timeout));
            }
            let result = match tokio::time::timeout(remaining, self.attempt(promql)).await {
                Ok(r) => r,
                Err(_) => return Err(QueryError::Timeout(self.options.timeout)),
            };
            match result {
                Ok(samples) => return Ok(samples),
                Err(error) if error.retryable() && attempt < backoff.attempts => {
                    let jittered = delay.mul_f64(1.0 + backoff.jitter * random_unit());
                    let left = deadline.saturating_duration_since(Instant::now());
                    if jittered >= left {
                        return Err(error);
                    }
                    tracing::debug!(%error, attempt, ?jittered, "Prometheus query failed; retrying");
                    tokio::time::sleep(jittered).await;
                    delay = delay.mul_f64(backoff.factor);
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn attempt(&self, promql: &str) -> Result<Vec<Sample>, QueryError> {
        let current = self.current();
        let mut request = current
            .http
            .post(self.query_url.clone())
            .form(&[("query", promql)]);
        if let Some(token) = &current.token {
            request = request.bearer_auth(token);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| QueryError::Connect(error_chain(&e)))?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| QueryError::Connect(error_chain(&e)))?
        {
            if body.len() + chunk.len() > self.options.max_response_bytes {
                return Err(QueryError::TooLarge(self.options.max_response_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        // Prometheus answers 400/422/503 with an error document: report its message.
        match (status, response::parse(&body)) {
            (200, parsed) => parsed.map_err(QueryError::Response),
            (_, Err(ResponseError::Prometheus { error_type, error })) if status < 500 => {
                Err(QueryError::Response(ResponseError::Prometheus {
                    error_type,
                    error,
                }))
            }
            (code, _) => Err(QueryError::Status {
                code,
                body: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            }),
        }
    }
}

/// The error and its causes, for messages ("error sending request: connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A number in [0, 1) for jitter; no randomness crate needed for that.
fn random_unit() -> f64 {
    let bits = RandomState::new().hash_one(Instant::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

fn build(config: &PrometheusConfig, files: &Files) -> Result<Current, QueryError> {
    let tls = tls_config(config, files)?;
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| QueryError::Setup(format!("HTTP client: {}", error_chain(&e))))?;
    let token = match (&config.bearer_token, &files.token) {
        (Some(t), _) => Some(t.expose().to_owned()),
        (None, Some(bytes)) => {
            Some(String::from_utf8_lossy(bytes).trim().to_owned()).filter(|t| !t.is_empty())
        }
        (None, None) => None,
    };
    Ok(Current {
        fingerprint: files.fingerprint(),
        http,
        token,
    })
}

fn certificates(
    pem: &[u8],
    variable: &str,
    path: &Option<PathBuf>,
) -> Result<Vec<CertificateDer<'static>>, QueryError> {
    let shown = path
        .as_deref()
        .map(Path::display)
        .map(|d| d.to_string())
        .unwrap_or_default();
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| QueryError::Setup(format!("{variable}: {shown}: {e}")))?;
    if certs.is_empty() {
        return Err(QueryError::Setup(format!(
            "{variable}: {shown}: no PEM certificate found"
        )));
    }
    Ok(certs)
}

fn tls_config(
    config: &PrometheusConfig,
    files: &Files,
) -> Result<rustls::ClientConfig, QueryError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| QueryError::Setup(format!("TLS: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> = if config.insecure_skip_verify {
        Arc::new(NoVerification(provider.clone()))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match &files.ca {
            // Like upstream, a CA file replaces the system roots.
            Some(pem) => {
                for cert in certificates(pem, vars::CA_CERT_PATH, &config.ca_cert_path)? {
                    roots
                        .add(cert)
                        .map_err(|e| QueryError::Setup(format!("{}: {e}", vars::CA_CERT_PATH)))?;
                }
            }
            None => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
        }
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map_err(|e| QueryError::Setup(format!("TLS roots: {e}")))?;
        match &config.server_name {
            Some(name) => {
                let name = ServerName::try_from(name.clone()).map_err(|e| {
                    QueryError::Setup(format!("{}: {name:?}: {e}", vars::SERVER_NAME))
                })?;
                Arc::new(ExpectedName {
                    inner: webpki,
                    name,
                })
            }
            None => webpki,
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut tls = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(cert, vars::CLIENT_CERT_PATH, &config.client_cert_path)?;
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| {
                QueryError::Setup(format!(
                    "{}: {}: {e}",
                    vars::CLIENT_KEY_PATH,
                    config
                        .client_key_path
                        .as_deref()
                        .map(Path::display)
                        .map(|d| d.to_string())
                        .unwrap_or_default()
                ))
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                QueryError::Setup(format!(
                    "{} and {}: {e}",
                    vars::CLIENT_CERT_PATH,
                    vars::CLIENT_KEY_PATH
                ))
            })?
        }
        _ => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tls)
}

/// Verifies the certificate for `PROMETHEUS_SERVER_NAME` instead of the URL's host.
#[derive(Debug)]
struct ExpectedName {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for ExpectedName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `PROMETHEUS_TLS_INSECURE_SKIP_VERIFY=true`: any certificate is accepted (handshake
/// signatures are still checked). Development only; a warning is logged at start.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
