//! A TLS listener that answers one fixed Kong body per connection, with certificates
//! made by rcgen: a CA, a server certificate for 127.0.0.1, a client certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

pub struct Pki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
    /// Certificate and key of each further client asked for, signed by the same CA.
    pub extra_clients: Vec<(String, String)>,
}

pub fn make_pki() -> Pki {
    make_pki_for(&["127.0.0.1"])
}

/// A PKI whose server certificate names `server_names` (DNS names or IP addresses).
pub fn make_pki_for(server_names: &[&str]) -> Pki {
    make_pki_with_clients(server_names, &["kongup-client"])
}

/// As [`make_pki_for`], with a client certificate for each of `client_names` as its
/// common name (PostgreSQL's `clientcert=verify-full` matches it against the user name):
/// the first is `client_cert_pem`, the others `extra_clients`.
pub fn make_pki_with_clients(server_names: &[&str], client_names: &[&str]) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(
        DnType::CommonName,
        format!("kongup test CA for {}", server_names.join(", ")),
    );
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let names: Vec<String> = server_names.iter().map(|name| name.to_string()).collect();
    let mut server_params = CertificateParams::new(names).unwrap();
    // A subject of its own: OpenSSL (libpq) takes a certificate whose subject is its
    // issuer's for a self-signed one, and rejects it.
    server_params.distinguished_name.push(
        DnType::CommonName,
        server_names.first().copied().unwrap_or("server"),
    );
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
    let mut clients = client_names.iter().map(|name| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, *name);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    });
    let (client_cert_pem, client_key_pem) = clients.next().expect("a client name");
    let extra_clients = clients.collect();
    Pki {
        ca_pem: ca_cert.pem(),
        server_cert_pem: server_cert.pem(),
        server_key_pem: server_key.serialize_pem(),
        client_cert_pem,
        client_key_pem,
        extra_clients,
    }
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Serves `body` as JSON over TLS; requires a client certificate signed by the CA when
/// `require_client_cert`. Returns `https://127.0.0.1:PORT`.
pub async fn serve(pki: &Pki, body: String, require_client_cert: bool) -> String {
    kongup::kong::http::install_crypto_provider();
    let certs = vec![CertificateDer::from_pem_slice(pki.server_cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem.as_bytes()).unwrap();
    let builder = rustls::ServerConfig::builder();
    let config = if require_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap())
            .unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
            .build()
            .unwrap();
        builder
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .unwrap()
    } else {
        builder
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap()
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    format!("https://{address}")
}
