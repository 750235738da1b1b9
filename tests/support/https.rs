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

/// A blocking TLS stream for tests that speak HTTP by hand (half-sent headers, bodies that
/// never end, an HTTP/2 preface without a stream).
pub type RawTls = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

/// Connects to 127.0.0.1:`port`, trusting `ca_pem`, offering `alpn`, and finishes the handshake.
/// Reads time out after `read_timeout`.
pub fn raw_tls(
    port: u16,
    ca_pem: &str,
    alpn: &[&[u8]],
    read_timeout: std::time::Duration,
) -> RawTls {
    raw_tls_from([127, 0, 0, 1].into(), port, ca_pem, alpn, read_timeout)
}

/// [`raw_tls`] from the loopback address `source` (any 127.x.y.z), as a different client
/// would connect.
pub fn raw_tls_from(
    source: std::net::IpAddr,
    port: u16,
    ca_pem: &str,
    alpn: &[&[u8]],
    read_timeout: std::time::Duration,
) -> RawTls {
    try_raw_tls_from(source, port, ca_pem, alpn, read_timeout).unwrap()
}

/// [`raw_tls_from`], with a refused connection or handshake as an error.
pub fn try_raw_tls_from(
    source: std::net::IpAddr,
    port: u16,
    ca_pem: &str,
    alpn: &[&[u8]],
    read_timeout: std::time::Duration,
) -> std::io::Result<RawTls> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&std::net::SocketAddr::new(source, 0).into())
        .unwrap();
    socket.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())?;
    let tcp: std::net::TcpStream = socket.into();
    tcp.set_read_timeout(Some(read_timeout)).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut stream = rustls::StreamOwned::new(
        rustls::ClientConnection::new(Arc::new(config), name).unwrap(),
        tcp,
    );
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// Reads until the server closes the connection (end of stream or a reset: `true`) or the read
/// time-out passes (`false`); returns what arrived meanwhile.
pub fn read_until_closed(stream: &mut RawTls) -> (Vec<u8>, bool) {
    use std::io::{ErrorKind, Read};
    let mut received = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (received, true),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (received, false);
            }
            Err(_) => return (received, true),
        }
    }
}
