//! The Prometheus HTTP client: TLS through `tls` (a CA file that replaces the system roots, as
//! upstream; client certificates for mTLS; a server-name override; an insecure development
//! mode), a bearer token from the variable or a file. Certificate, key, CA and token files are
//! watched by the one file reloader, so rotations need no restart and no query reads a file; a
//! refused handshake or a rejected file token re-reads them once before the retry. Queries are
//! POST forms with a 10 s budget, retried with upstream's backoff on connection errors and 5xx
//! only; answers are size-limited and parsed by `response`. Never logs a token.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use super::response::{self, Keep, ResponseError, Sample};
use crate::config::prometheus::{self as vars, PrometheusConfig, redact_url};
use crate::tls::{ClientTls, PemFile, Reloader, ServerTrust, TlsError};

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
    /// Answers with more series than this are refused.
    pub max_series: usize,
    /// How often the CA, client certificate, key and token files are checked for new content.
    pub reload_interval: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            backoff: Backoff::default(),
            // About 100,000 series of the collection's shape; three such answers in flight stay
            // under 64 MiB (benches/prometheus.rs measures it).
            max_response_bytes: 16 * 1024 * 1024,
            max_series: response::MAX_SERIES,
            reload_interval: Duration::from_secs(5),
        }
    }
}

/// Why a query produced no data.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A TLS or token file is unusable; names the variable and the path.
    #[error("{0}")]
    Setup(String),
    /// No connection (refused, reset, TLS handshake failed, DNS).
    #[error("cannot reach Prometheus: {0}")]
    Connect(String),
    /// The budget ran out.
    #[error("Prometheus did not answer within {0:?}")]
    Timeout(Duration),
    /// An HTTP status other than 200 (and not a Prometheus error document).
    #[error("Prometheus answered HTTP {code}: {body}")]
    Status { code: u16, body: String },
    /// Prometheus (or a proxy in front of it) answered with a redirect; none is followed.
    #[error(
        "Prometheus answered HTTP {code} redirecting to {location:?}; redirects are not followed (is an authenticating proxy in front of it? point PROMETHEUS_BASE_URL at the API itself)"
    )]
    Redirect { code: u16, location: String },
    /// The answer exceeded the size limit.
    #[error("the answer is larger than {} MiB; refused", .0 / (1024 * 1024))]
    TooLarge(usize),
    /// The answer was not usable.
    #[error(transparent)]
    Response(ResponseError),
}

/// Prometheus settings are environment variables: their messages lead with the variable.
impl From<TlsError> for QueryError {
    fn from(error: TlsError) -> Self {
        Self::Setup(match error {
            TlsError::Read { what, path, source } => {
                format!("{what}: cannot read {}: {source}", path.display())
            }
            TlsError::Pem {
                what,
                path,
                message,
            } => format!("{what}: {}: {message}", path.display()),
            TlsError::Invalid { what, message } => format!("{what}: {message}"),
        })
    }
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

/// The HTTP client and token for the files as last read.
struct Current {
    http: reqwest::Client,
    token: Option<String>,
}

/// Answers read and parsed at once, per client: a cycle's queries run concurrently (five with
/// `wva-next`), and each answer is held whole while it is parsed, so this bounds a cycle's
/// memory at three answers of `max_response_bytes` (docs/performance.md).
pub const ANSWERS_AT_ONCE: usize = 3;

/// A Prometheus query client; cheap to share (`Arc`). Must be built inside a tokio runtime
/// (the file watcher runs on it).
pub struct PrometheusClient {
    config: PrometheusConfig,
    options: ClientOptions,
    query_url: reqwest::Url,
    current: Reloader<Current>,
    answers: tokio::sync::Semaphore,
}

impl PrometheusClient {
    /// Builds the client, reading every file now: a missing or broken file is an error that
    /// names the variable and the path.
    pub fn new(config: PrometheusConfig, options: ClientOptions) -> Result<Self, QueryError> {
        let base = config.base_url.trim_end_matches('/');
        let query_url = reqwest::Url::parse(&format!("{base}/api/v1/query"))
            .map_err(|e| QueryError::Setup(format!("{}: {e}", vars::BASE_URL)))?;
        let mut files = Vec::new();
        for (variable, path) in [
            (vars::CA_CERT_PATH, &config.ca_cert_path),
            (vars::CLIENT_CERT_PATH, &config.client_cert_path),
            (vars::CLIENT_KEY_PATH, &config.client_key_path),
        ] {
            if let Some(path) = path {
                files.push((variable.to_owned(), path.clone()));
            }
        }
        if config.bearer_token.is_none()
            && let Some(path) = &config.token_path
        {
            files.push((vars::TOKEN_PATH.to_owned(), path.clone()));
        }
        let build_config = config.clone();
        let current = Reloader::start(
            "Prometheus TLS and token",
            files,
            options.reload_interval,
            move |files: &[PemFile]| build(&build_config, files),
        )?;
        Ok(Self {
            config,
            options,
            query_url,
            current,
            answers: tokio::sync::Semaphore::new(ANSWERS_AT_ONCE),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &PrometheusConfig {
        &self.config
    }

    /// Runs an instant query (POST form), retrying connection errors and 5xx within the budget.
    pub async fn query(&self, promql: &str) -> Result<Vec<Sample>, QueryError> {
        self.query_keeping(promql, &|_| true).await
    }

    /// [`Self::query`], holding only the series `keep` accepts while the answer is read.
    pub async fn query_keeping(
        &self,
        promql: &str,
        keep: Keep<'_>,
    ) -> Result<Vec<Sample>, QueryError> {
        let deadline = Instant::now() + self.options.timeout;
        let backoff = self.options.backoff;
        let mut delay = backoff.initial;
        let mut attempt = 1;
        let mut current = self.current.current();
        let mut token_refreshed = false;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(QueryError::Timeout(self.options.timeout));
            }
            let result =
                match tokio::time::timeout(remaining, self.attempt(&current, promql, keep)).await {
                    Ok(r) => r,
                    Err(_) => return Err(QueryError::Timeout(self.options.timeout)),
                };
            match result {
                Ok(samples) => return Ok(samples),
                // A token read from a file was refused: it may have just rotated. Re-read the
                // files once and retry at once if the token changed.
                Err(QueryError::Status {
                    code: 401 | 403, ..
                }) if self.config.token_path.is_some()
                    && self.config.bearer_token.is_none()
                    && !token_refreshed =>
                {
                    token_refreshed = true;
                    let newer = self.current.refresh().await;
                    if newer.token == current.token {
                        return self.attempt(&current, promql, keep).await;
                    }
                    current = newer;
                }
                Err(error) if error.retryable() && attempt < backoff.attempts => {
                    let jittered = delay.mul_f64(1.0 + backoff.jitter * random_unit());
                    let left = deadline.saturating_duration_since(Instant::now());
                    if jittered >= left {
                        return Err(error);
                    }
                    tracing::debug!(%error, attempt, ?jittered, "Prometheus query failed; retrying");
                    // A refused handshake may be a certificate rotation: retry with the newest files.
                    if matches!(error, QueryError::Connect(_)) {
                        current = self.current.refresh().await;
                    }
                    tokio::time::sleep(jittered).await;
                    delay = delay.mul_f64(backoff.factor);
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn attempt(
        &self,
        current: &Current,
        promql: &str,
        keep: Keep<'_>,
    ) -> Result<Vec<Sample>, QueryError> {
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
        if response.status().is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|l| redact_url(&String::from_utf8_lossy(l.as_bytes())))
                .unwrap_or_default();
            return Err(QueryError::Redirect {
                code: status,
                location,
            });
        }
        // The chunks as they came (no copy into one growing buffer): the parser streams over
        // them and keeps only the series asked for. At most `ANSWERS_AT_ONCE` are held.
        let _held = self
            .answers
            .acquire()
            .await
            .map_err(|_| QueryError::Setup("the client is closed".into()))?;
        let mut chunks = Vec::new();
        let mut total = 0usize;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| QueryError::Connect(error_chain(&e)))?
        {
            total += chunk.len();
            if total > self.options.max_response_bytes {
                return Err(QueryError::TooLarge(self.options.max_response_bytes));
            }
            chunks.push(chunk);
        }
        let parsed = response::parse_from(ChunkReader::new(&chunks), keep, self.options.max_series);
        // Prometheus answers 400/422/503 with an error document: report its message.
        match (status, parsed) {
            (200, parsed) => parsed.map_err(QueryError::Response),
            (_, Err(ResponseError::Prometheus { error_type, error })) if status < 500 => {
                Err(QueryError::Response(ResponseError::Prometheus {
                    error_type,
                    error,
                }))
            }
            (code, _) => {
                let head: Vec<u8> = chunks
                    .iter()
                    .flat_map(|c| c.iter().copied())
                    .take(200)
                    .collect();
                Err(QueryError::Status {
                    code,
                    body: String::from_utf8_lossy(&head).into_owned(),
                })
            }
        }
    }
}

/// Reads a list of chunks as one stream.
struct ChunkReader<'a> {
    chunks: &'a [bytes::Bytes],
    at: usize,
}

impl<'a> ChunkReader<'a> {
    fn new(chunks: &'a [bytes::Bytes]) -> Self {
        Self { chunks, at: 0 }
    }
}

impl std::io::Read for ChunkReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while let Some((first, rest)) = self.chunks.split_first() {
            let left = &first[self.at..];
            if left.is_empty() {
                self.chunks = rest;
                self.at = 0;
                continue;
            }
            let n = left.len().min(out.len());
            out[..n].copy_from_slice(&left[..n]);
            self.at += n;
            return Ok(n);
        }
        Ok(0)
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

/// The HTTP client and token for one set of files (given in the order `new` lists them).
fn build(config: &PrometheusConfig, files: &[PemFile]) -> Result<Current, QueryError> {
    let file = |variable: &str| files.iter().find(|f| f.what == variable);
    let trust = match (config.insecure_skip_verify, file(vars::CA_CERT_PATH)) {
        (true, _) => ServerTrust::Insecure,
        (false, Some(ca)) => ServerTrust::Roots(ca),
        (false, None) => ServerTrust::System,
    };
    let identity = file(vars::CLIENT_CERT_PATH).zip(file(vars::CLIENT_KEY_PATH));
    let tls = crate::tls::client_config(&ClientTls {
        trust,
        server_name: config.server_name.as_deref(),
        identity,
    })?;
    // No redirects (an https URL must never end on a plain-http host) and no proxy from the
    // environment (the token must not travel through a proxy nobody configured for wva).
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| QueryError::Setup(format!("HTTP client: {}", error_chain(&e))))?;
    let token = match (&config.bearer_token, file(vars::TOKEN_PATH)) {
        (Some(t), _) => Some(t.expose().to_owned()),
        (None, Some(token)) => {
            Some(String::from_utf8_lossy(&token.bytes).trim().to_owned()).filter(|t| !t.is_empty())
        }
        (None, None) => None,
    };
    Ok(Current { http, token })
}
