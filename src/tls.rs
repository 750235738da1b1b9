//! TLS for every listener and client of the process: PEM loading with errors that name the file,
//! rustls configurations (ring provider, TLS 1.3 and 1.2 only, ALPN h2 and http/1.1), and
//! [`Reloader`], the one file watcher that re-reads certificates, keys, CA bundles and tokens when
//! their bytes change and keeps the last good set in force. Knows nothing of admission rules or
//! Prometheus; does no IO on a request path (the reloader reads files on its own task).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The only protocol versions wva speaks.
const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Why a TLS file or configuration is unusable. `what` names the file's role (a flag or an
/// environment variable), so the message says which setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {}: {message}", path.display())]
    Pem {
        what: String,
        path: PathBuf,
        message: String,
    },
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
}

impl TlsError {
    fn invalid(what: &str, message: impl std::fmt::Display) -> Self {
        Self::Invalid {
            what: what.to_owned(),
            message: message.to_string(),
        }
    }
}

/// A PEM file as read: its role (for messages), path and bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PemFile {
    pub what: String,
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

impl PemFile {
    /// Reads `path` now (blocking; for start-up only).
    pub fn read(what: &str, path: &Path) -> Result<Self, TlsError> {
        std::fs::read(path)
            .map(|bytes| Self {
                what: what.to_owned(),
                path: path.to_owned(),
                bytes,
            })
            .map_err(|source| TlsError::Read {
                what: what.to_owned(),
                path: path.to_owned(),
                source,
            })
    }

    fn error(&self, message: impl std::fmt::Display) -> TlsError {
        TlsError::Pem {
            what: self.what.clone(),
            path: self.path.clone(),
            message: message.to_string(),
        }
    }

    /// Every certificate in the file; at least one.
    pub fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let certs: Vec<_> = CertificateDer::pem_slice_iter(&self.bytes)
            .collect::<Result<_, _>>()
            .map_err(|e| self.error(e))?;
        if certs.is_empty() {
            return Err(self.error("no PEM certificate found"));
        }
        Ok(certs)
    }

    /// The private key (PKCS#8, PKCS#1 or SEC1). Encrypted keys are refused by name.
    pub fn private_key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        if contains_label(&self.bytes, b"ENCRYPTED PRIVATE KEY")
            || contains_label(&self.bytes, b"Proc-Type: 4,ENCRYPTED")
        {
            return Err(self.error(
                "encrypted keys are not supported; store the key unencrypted in the Secret",
            ));
        }
        PrivateKeyDer::from_pem_slice(&self.bytes).map_err(|e| match e {
            pem::Error::NoItemsFound => self.error(
                "no PEM private key found (expected BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
            ),
            other => self.error(other),
        })
    }

    /// A root store of every certificate in the file.
    pub fn roots(&self) -> Result<rustls::RootCertStore, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in self.certificates()? {
            roots.add(cert).map_err(|e| self.error(e))?;
        }
        Ok(roots)
    }
}

/// How far a certificate's `notBefore` may be ahead of this clock (a just-issued certificate
/// on a node whose clock is a little behind).
const NOT_BEFORE_SKEW_SECONDS: i64 = 300;

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Refuses a serving certificate that has expired or is not valid yet: serving it would fail
/// every handshake, so a reload keeps the previous one and a start-up says why.
fn check_validity(file: &PemFile, leaf: &CertificateDer<'_>, now: i64) -> Result<(), TlsError> {
    let Some((not_before, not_after)) = validity(leaf) else {
        return Err(file.error("the certificate's validity period cannot be read"));
    };
    if now > not_after {
        return Err(file.error(format!(
            "the certificate expired at {} (renew it; cert-manager renews before expiry unless it is failing)",
            utc(not_after)
        )));
    }
    if now + NOT_BEFORE_SKEW_SECONDS < not_before {
        return Err(file.error(format!(
            "the certificate is not valid before {} (check this node's clock)",
            utc(not_before)
        )));
    }
    Ok(())
}

/// `notBefore` and `notAfter` of a DER certificate, in Unix seconds (RFC 5280 §4.1: the
/// validity is the fifth element of the TBSCertificate, after an optional `[0]` version).
fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let (tag, certificate, _) = tlv(der)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, tbs, _) = tlv(certificate)?;
    if tag != 0x30 {
        return None;
    }
    let mut rest = tbs;
    let (tag, _, after) = tlv(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    for _ in 0..3 {
        // serialNumber, signature, issuer
        rest = tlv(rest)?.2;
    }
    let (tag, validity, _) = tlv(rest)?;
    if tag != 0x30 {
        return None;
    }
    let (before_tag, before, rest) = tlv(validity)?;
    let (after_tag, after, _) = tlv(rest)?;
    Some((asn1_time(before_tag, before)?, asn1_time(after_tag, after)?))
}

/// One DER tag-length-value: (tag, value, what follows).
fn tlv(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (digits, after) = rest.split_at(count);
        rest = after;
        digits.iter().fold(0usize, |n, &d| n << 8 | usize::from(d))
    };
    if rest.len() < length {
        return None;
    }
    let (value, after) = rest.split_at(length);
    Some((tag, value, after))
}

/// UTCTime (`YYMMDDHHMMSSZ`, tag 0x17) or GeneralizedTime (`YYYYMMDDHHMMSSZ`, tag 0x18).
fn asn1_time(tag: u8, text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 if text.len() == 12 => {
            let yy: i64 = text[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        0x18 if text.len() == 14 => (text[..4].parse().ok()?, &text[4..]),
        _ => return None,
    };
    let field = |at: usize| rest.get(at..at + 2)?.parse::<i64>().ok();
    let (month, day, hour, minute, second) =
        (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let time = seconds.rem_euclid(86_400);
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        time / 3_600,
        time % 3_600 / 60,
        time % 60
    )
}

fn contains_label(bytes: &[u8], label: &[u8]) -> bool {
    bytes.windows(label.len()).any(|w| w == label)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server configuration: the serving chain and key, and, when `client_ca` is given, client
/// certificates required and checked against it.
pub fn server_config(
    cert: &PemFile,
    key: &PemFile,
    client_ca: Option<&PemFile>,
) -> Result<rustls::ServerConfig, TlsError> {
    let provider = provider();
    let chain = cert.certificates()?;
    check_validity(cert, &chain[0], unix_now())?;
    let private_key = key.private_key()?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| TlsError::invalid("TLS", e))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(ca.roots()?),
                provider,
            )
            .build()
            .map_err(|e| ca.error(e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, private_key).map_err(|e| {
        TlsError::invalid(
            &format!("{} and {}", cert.what, key.what),
            format!("{e} ({} and {})", cert.path.display(), key.path.display()),
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// How a client checks the server it talks to.
#[derive(Clone, Debug, Default)]
pub enum ServerTrust<'a> {
    /// The system's roots.
    #[default]
    System,
    /// Only the CAs in this file (replacing the system roots).
    Roots(&'a PemFile),
    /// Any certificate (handshake signatures are still checked). Development only.
    Insecure,
}

/// What a client configuration is built from.
#[derive(Clone, Debug, Default)]
pub struct ClientTls<'a> {
    pub trust: ServerTrust<'a>,
    /// Verify the certificate for this name instead of the URL's host.
    pub server_name: Option<&'a str>,
    /// A client certificate chain and key (mTLS).
    pub identity: Option<(&'a PemFile, &'a PemFile)>,
}

/// A client configuration from [`ClientTls`].
pub fn client_config(options: &ClientTls<'_>) -> Result<rustls::ClientConfig, TlsError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| TlsError::invalid("TLS", e))?;
    let roots = match &options.trust {
        ServerTrust::Insecure => None,
        ServerTrust::Roots(file) => Some(file.roots()?),
        ServerTrust::System => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            Some(roots)
        }
    };
    let webpki = match roots {
        None => None,
        Some(roots) => Some(
            rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .map_err(|e| TlsError::invalid("TLS roots", e))?,
        ),
    };
    let expected_name = match options.server_name {
        None => None,
        Some(name) => Some(
            ServerName::try_from(name.to_owned())
                .map_err(|e| TlsError::invalid("server name", format!("{name:?}: {e}")))?,
        ),
    };
    let verifier = Arc::new(Verifier {
        webpki,
        expected_name,
        provider: provider.clone(),
    });
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match options.identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(cert.certificates()?, key.private_key()?)
            .map_err(|e| TlsError::invalid(&format!("{} and {}", cert.what, key.what), e))?,
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The server check of every client: the WebPKI chain check (`None`: any certificate, the
/// insecure development mode), optionally for a configured name instead of the URL's host.
/// Handshake signatures are always verified with the provider's algorithms.
#[derive(Debug)]
struct Verifier {
    webpki: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    expected_name: Option<ServerName<'static>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.webpki else {
            return Ok(ServerCertVerified::assertion());
        };
        let name = self.expected_name.as_ref().unwrap_or(server_name);
        webpki.verify_server_cert(end_entity, intermediates, name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A set of files read together: the role and path of each.
pub type FileSet = Vec<(String, PathBuf)>;

/// Watches a [`FileSet`]: every `interval` it reads the files (on its own task, never on a
/// request path), and when their bytes differ from the last set it saw it calls `build`. A
/// success is published to [`Reloader::subscribe`]rs; a failure (a file unreadable, a pair
/// half-written, a key that does not match) is logged once per distinct content and the last
/// good value stays in force.
pub struct Reloader<T> {
    current: tokio::sync::watch::Receiver<Arc<T>>,
    refresh: tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<()>>,
}

impl<T: Send + Sync + 'static> Reloader<T> {
    /// Reads and builds once now (an error here is a start-up error), then spawns the watcher on
    /// the current tokio runtime. The watcher stops when every subscriber is gone.
    pub fn start<E, F>(
        name: &'static str,
        files: FileSet,
        interval: Duration,
        build: F,
    ) -> Result<Self, E>
    where
        E: From<TlsError> + std::fmt::Display + 'static,
        F: Fn(&[PemFile]) -> Result<T, E> + Send + Sync + 'static,
    {
        let contents = files
            .iter()
            .map(|(what, path)| PemFile::read(what, path))
            .collect::<Result<Vec<_>, _>>()?;
        let value = build(&contents)?;
        let (sender, current) = tokio::sync::watch::channel(Arc::new(value));
        let (refresh, requests) = tokio::sync::mpsc::channel(8);
        tokio::spawn(watch_files(
            name, files, contents, interval, build, sender, requests,
        ));
        Ok(Self { current, refresh })
    }

    /// Re-reads the files now (asynchronously, on the watcher's task) and returns once that
    /// pass is done: for a caller that just saw a failure a rotation could explain (a refused
    /// handshake, a rejected token) and wants to retry with the newest files.
    pub async fn refresh(&self) -> Arc<T> {
        let (done, finished) = tokio::sync::oneshot::channel();
        if self.refresh.send(done).await.is_ok() {
            let _ = finished.await;
        }
        self.current()
    }

    /// The value for the files as last read successfully.
    pub fn current(&self) -> Arc<T> {
        self.current.borrow().clone()
    }

    /// A receiver that sees every new value.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<T>> {
        self.current.clone()
    }
}

async fn watch_files<T, E, F>(
    name: &'static str,
    files: FileSet,
    mut seen: Vec<PemFile>,
    interval: Duration,
    build: F,
    sender: tokio::sync::watch::Sender<Arc<T>>,
    mut requests: tokio::sync::mpsc::Receiver<tokio::sync::oneshot::Sender<()>>,
) where
    E: std::fmt::Display,
    F: Fn(&[PemFile]) -> Result<T, E>,
{
    // The last problem logged, so that a lasting one is logged once, not every poll.
    let mut last_problem: Option<String> = None;
    loop {
        let requested = tokio::select! {
            _ = tokio::time::sleep(interval) => None,
            Some(done) = requests.recv() => Some(done),
            _ = sender.closed() => return,
        };
        let mut contents = Vec::with_capacity(files.len());
        let mut unreadable = None;
        for (what, path) in &files {
            match tokio::fs::read(path).await {
                Ok(bytes) => contents.push(PemFile {
                    what: what.clone(),
                    path: path.clone(),
                    bytes,
                }),
                Err(source) => {
                    unreadable = Some(TlsError::Read {
                        what: what.clone(),
                        path: path.clone(),
                        source,
                    });
                    break;
                }
            }
        }
        let problem = match unreadable {
            Some(error) => Some(error.to_string()),
            None if contents == seen => None,
            None => match build(&contents) {
                Ok(value) => {
                    seen = contents;
                    sender.send_replace(Arc::new(value));
                    tracing::info!(files = name, "files changed; now using the new ones");
                    None
                }
                Err(error) => Some(error.to_string()),
            },
        };
        match problem {
            Some(message) if last_problem.as_ref() != Some(&message) => {
                tracing::warn!(files = name, error = %message, "new files are not usable (yet); keeping the last good ones");
                last_problem = Some(message);
            }
            Some(_) => {}
            None => last_problem = None,
        }
        if let Some(done) = requested {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(what: &str, text: &str) -> PemFile {
        PemFile {
            what: what.into(),
            path: PathBuf::from(format!("/etc/{what}")),
            bytes: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn errors_name_the_file_and_the_fix() {
        let empty = pem("certificate", "");
        assert_eq!(
            empty.certificates().unwrap_err().to_string(),
            "certificate /etc/certificate: no PEM certificate found"
        );
        let encrypted = pem(
            "key",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        );
        assert!(
            encrypted
                .private_key()
                .unwrap_err()
                .to_string()
                .contains("encrypted keys are not supported")
        );
        let not_a_key = pem("key", "hello");
        assert!(
            not_a_key
                .private_key()
                .unwrap_err()
                .to_string()
                .contains("no PEM private key found")
        );
        let missing = PemFile::read("client CA", Path::new("/nonexistent/ca.crt")).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("cannot read client CA /nonexistent/ca.crt"),
            "{missing}"
        );
    }

    fn certificate_pem(name: &str) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .pem()
    }

    /// How many certificates the file holds: a stand-in for building a real configuration.
    fn count(files: &[PemFile]) -> Result<usize, TlsError> {
        files[0].certificates().map(|c| c.len())
    }

    async fn eventually(what: &str, check: impl Fn() -> bool) {
        for _ in 0..200 {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting until {what}");
    }

    #[tokio::test]
    async fn the_reloader_swaps_on_new_bytes_and_keeps_the_last_good_set() {
        let dir = std::env::temp_dir().join(format!("wva-tls-reloader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bundle.crt");
        std::fs::write(&path, certificate_pem("a")).unwrap();
        let files = vec![("CA".to_owned(), path.clone())];
        let reloader = Reloader::start("test", files, Duration::from_millis(10), count).unwrap();
        assert_eq!(*reloader.current(), 1);

        // A bundle of two: picked up by the watcher.
        std::fs::write(&path, certificate_pem("a") + &certificate_pem("b")).unwrap();
        eventually("the bundle is in force", || *reloader.current() == 2).await;

        // Half-written garbage and then a missing file: the last good set stays in force.
        std::fs::write(&path, "-----BEGIN CERTIFICATE-----\ngarbage").unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(*reloader.current(), 2);
        std::fs::remove_file(&path).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(*reloader.current(), 2);

        // Back to one certificate; `refresh` sees it without waiting for a poll.
        std::fs::write(&path, certificate_pem("c")).unwrap();
        let slow = Reloader::start(
            "slow",
            vec![("CA".to_owned(), path.clone())],
            Duration::from_secs(3600),
            count,
        )
        .unwrap();
        std::fs::write(&path, certificate_pem("c") + &certificate_pem("d")).unwrap();
        assert_eq!(*slow.current(), 1, "no poll within the hour");
        assert_eq!(*slow.refresh().await, 2, "refresh re-reads at once");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_broken_set_at_start_is_an_error_naming_the_file() {
        let error = Reloader::start(
            "test",
            vec![(
                "certificate".to_owned(),
                PathBuf::from("/nonexistent/tls.crt"),
            )],
            Duration::from_secs(1),
            count,
        )
        .err()
        .unwrap();
        assert!(
            error
                .to_string()
                .starts_with("cannot read certificate /nonexistent/tls.crt"),
            "{error}"
        );
    }

    fn certificate_valid(not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    #[test]
    fn validity_is_read_from_the_certificate() {
        let (cert, _) = certificate_valid((2024, 2, 29), (2051, 1, 1));
        let der = pem("certificate", &cert).certificates().unwrap().remove(0);
        let (before, after) = validity(&der).unwrap();
        assert_eq!(utc(before), "2024-02-29T00:00:00Z");
        assert_eq!(
            utc(after),
            "2051-01-01T00:00:00Z",
            "GeneralizedTime after 2049"
        );
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert!(validity(b"\x30\x03\x02\x01").is_none(), "truncated DER");
    }

    #[test]
    fn expired_and_future_certificates_are_refused_naming_the_file() {
        let (cert, key) = certificate_valid((2000, 1, 1), (2001, 1, 1));
        let error = server_config(&pem("certificate", &cert), &pem("key", &key), None)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(
                "certificate /etc/certificate: the certificate expired at 2001-01-01T00:00:00Z"
            ),
            "{error}"
        );
        let (cert, key) = certificate_valid((2090, 1, 1), (2091, 1, 1));
        let error = server_config(&pem("certificate", &cert), &pem("key", &key), None)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("is not valid before 2090-01-01T00:00:00Z"),
            "{error}"
        );
        let (cert, key) = certificate_valid((2020, 1, 1), (2090, 1, 1));
        assert!(server_config(&pem("certificate", &cert), &pem("key", &key), None).is_ok());
    }
}
