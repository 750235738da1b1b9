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
}
