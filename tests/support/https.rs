//! HTTPS clients for tests: rustls (ring) trusting given CA certificates, optionally presenting a
//! client certificate, optionally limited to one HTTP version or TLS version.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Http {
    Any,
    Http1,
    Http2,
}

/// A client trusting `ca_pems`; with `client` = (cert PEM, key PEM) it presents that certificate.
pub fn client(
    ca_pems: &[&str],
    client: Option<(&str, &str)>,
    http: Http,
    tls12_only: bool,
) -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for pem in ca_pems {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert.as_bytes())
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
    };
    config.alpn_protocols = match http {
        Http::Any => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        Http::Http1 => vec![b"http/1.1".to_vec()],
        Http::Http2 => vec![b"h2".to_vec()],
    };
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .timeout(std::time::Duration::from_secs(10))
        .no_proxy();
    builder = match http {
        Http::Http1 => builder.http1_only(),
        Http::Http2 => builder.http2_prior_knowledge(),
        Http::Any => builder,
    };
    builder.build().unwrap()
}
