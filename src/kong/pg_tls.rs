//! TLS to PostgreSQL, with libpq's meaning of `sslmode` and `sslrootcert`, so kongup's own
//! connections and the `pg_dump`/`pg_restore` it runs (libpq) check the same things:
//!
//! | sslmode | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (default) | when the server offers it | checked against a CA file when there is one, else not at all |
//! | `require` | always | as `prefer` (libpq's rule); without a CA file kongup warns |
//! | `verify-ca` | always | chains to the CA file, else to the system's roots; its names are not checked |
//! | `verify-full` | always | as `verify-ca`, and it names the host kongup connects to |
//!
//! The CA file is the address's `sslrootcert` or the plan's `database.tls.ca_file`, else
//! `PGSSLROOTCERT`, else libpq's `~/.postgresql/root.crt` when it exists. Without one,
//! `verify-ca` and `verify-full` trust the system's roots (rustls-native-certs:
//! `SSL_CERT_FILE`/`SSL_CERT_DIR`, else the distribution's bundle), and `pg_dump` is handed
//! the bundle file, since libpq before 16 knows no `sslrootcert=system`. TLS never runs
//! over a Unix socket, as in libpq.
//!
//! A client certificate (libpq's `sslcert`/`sslkey`, the plan's `database.tls.client_cert`
//! and `client_key`, else `PGSSLCERT`/`PGSSLKEY`, else `~/.postgresql/postgresql.crt` and
//! `.key` when the certificate exists) is presented to a server that asks for one. Unlike
//! libpq, a certificate named explicitly but missing is an error, not silently left out.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    AlertDescription, CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls_improved::MakeRustlsConnect;

pub use crate::plan::model::SslMode;

/// The CA file trusted for the server's certificate, and who named it (for errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaFile {
    pub path: PathBuf,
    /// E.g. "sslrootcert in the address", "environment variable PGSSLROOTCERT".
    pub origin: String,
}

/// The certificate and key kongup presents to a server that asks for one, and who named
/// them (for errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub origin: String,
}

/// What a connection to PostgreSQL does about TLS, libpq's defaults already applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PgTls {
    pub mode: SslMode,
    /// `None`: `verify-ca`/`verify-full` trust the system's roots, `prefer`/`require` check
    /// nothing.
    pub ca_file: Option<CaFile>,
    /// `None`: no client certificate is presented.
    pub client_cert: Option<ClientCert>,
}

/// `sslrootcert` as written: a file, or libpq 16's `system` (the system's roots).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    System,
    File(PathBuf),
}

impl RootCert {
    fn from_text(text: &str) -> RootCert {
        if text == "system" {
            RootCert::System
        } else {
            RootCert::File(PathBuf::from(text))
        }
    }
}

/// The TLS parameters of a connection address, taken out of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressTls {
    pub mode: Option<SslMode>,
    pub root_cert: Option<RootCert>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// What a certificate check needs of the server's certificate.
enum Check {
    /// Any certificate (`prefer`/`require` without a CA file).
    Nothing,
    /// It chains to these roots.
    Chain(Arc<RootCertStore>),
    /// It chains to these roots and names the host.
    ChainAndName(Arc<RootCertStore>),
}

impl PgTls {
    /// Applies libpq's defaults to what the address or the plan said (`root_cert_origin`
    /// names where the root certificate was written, for errors): the mode, else
    /// `PGSSLMODE`, else `prefer`; the root certificate, else
    /// `PGSSLROOTCERT`, else `~/.postgresql/root.crt` when it exists. `sslrootcert=system`
    /// means the system's roots and needs `verify-full`, as in libpq 16.
    pub fn resolve(
        mode: Option<SslMode>,
        root_cert: Option<RootCert>,
        root_cert_origin: &str,
    ) -> Result<PgTls, String> {
        let mode = match mode {
            Some(mode) => Some(mode),
            None => match non_empty_env("PGSSLMODE") {
                Some(word) => Some(parse_mode(&word).map_err(|e| {
                    format!("the environment variable PGSSLMODE: {e}; fix it or unset it")
                })?),
                None => None,
            },
        };
        let root_cert = match root_cert {
            Some(root_cert) => Some((root_cert, root_cert_origin.to_string())),
            None => non_empty_env("PGSSLROOTCERT").map(|text| {
                (
                    RootCert::from_text(&text),
                    "environment variable PGSSLROOTCERT".to_string(),
                )
            }),
        };
        match root_cert {
            Some((RootCert::System, origin)) => match mode {
                None | Some(SslMode::VerifyFull) => Ok(PgTls {
                    mode: SslMode::VerifyFull,
                    ca_file: None,
                    client_cert: None,
                }),
                Some(weaker) => Err(format!(
                    "sslrootcert=system ({origin}) checks the server against the system's roots and needs sslmode=verify-full, not {}: write sslmode=verify-full, or name a CA file",
                    weaker.as_str()
                )),
            },
            Some((RootCert::File(path), origin)) => Ok(PgTls {
                mode: mode.unwrap_or_default(),
                ca_file: Some(CaFile { path, origin }),
                client_cert: None,
            }),
            None => Ok(PgTls {
                mode: mode.unwrap_or_default(),
                ca_file: libpq_default_root_cert().map(|path| CaFile {
                    path,
                    origin: "libpq's default root certificate file".to_string(),
                }),
                client_cert: None,
            }),
        }
    }

    /// Adds the client certificate as libpq finds it: the one named (`origin` says where),
    /// else `PGSSLCERT`/`PGSSLKEY`, else `~/.postgresql/postgresql.crt` and `.key` when that
    /// certificate exists; nothing with `disable`. A certificate or key named but missing, a
    /// key without its certificate, or a key others can read (libpq refuses those too) is
    /// an error.
    pub fn with_client_cert(
        mut self,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        origin: &str,
    ) -> Result<PgTls, String> {
        if self.mode == SslMode::Disable {
            // No TLS, so nothing to present: libpq does not look for the files either.
            return Ok(self);
        }
        let env_cert = non_empty_env("PGSSLCERT").map(PathBuf::from);
        let env_key = non_empty_env("PGSSLKEY").map(PathBuf::from);
        let default_dir = dirs::home_dir().map(|home| home.join(".postgresql"));
        let (cert, cert_origin) = match (cert, env_cert) {
            (Some(cert), _) => (cert, origin.to_string()),
            (None, Some(cert)) => (cert, "environment variable PGSSLCERT".to_string()),
            (None, None) => {
                let default = default_dir.as_ref().map(|dir| dir.join("postgresql.crt"));
                match default.filter(|path| path.is_file()) {
                    Some(cert) => (cert, "libpq's default client certificate".to_string()),
                    None if key.is_some() => {
                        return Err(format!(
                            "a client key is named ({origin}) but no certificate: name the certificate beside it"
                        ));
                    }
                    None => return Ok(self),
                }
            }
        };
        let key = match (key, env_key) {
            (Some(key), _) => key,
            (None, Some(key)) => key,
            (None, None) => match default_dir {
                Some(dir) => dir.join("postgresql.key"),
                None => {
                    return Err(format!(
                        "the client certificate {} ({cert_origin}) has no key named: name it (sslkey, database.tls.client_key)",
                        cert.display()
                    ));
                }
            },
        };
        if !cert.is_file() {
            return Err(format!(
                "the client certificate {} ({cert_origin}) does not exist: check the path",
                cert.display()
            ));
        }
        private_key_usable(&key, &cert, &cert_origin)?;
        self.client_cert = Some(ClientCert {
            cert,
            key,
            origin: cert_origin,
        });
        Ok(self)
    }

    /// What the operator must be told before connecting: `require` without a CA file
    /// encrypts but believes any server.
    pub fn warnings(&self, address: &str) -> Vec<String> {
        if self.mode == SslMode::Require && self.ca_file.is_none() {
            vec![format!(
                "sslmode=require for PostgreSQL at {address}: the connection is encrypted but the server's certificate is not checked (libpq's require), so anyone on the network path could pose as the database; use sslmode=verify-full with the CA that signed the server's certificate (sslrootcert in the address, database.tls.ca_file in the plan)"
            )]
        } else {
            Vec::new()
        }
    }

    /// Where the trusted roots come from, for errors.
    pub fn ca_source(&self) -> String {
        match &self.ca_file {
            Some(ca) => format!("the CA file {} ({})", ca.path.display(), ca.origin),
            None => "the system's trusted roots (no sslrootcert given; SSL_CERT_FILE or SSL_CERT_DIR choose others)".to_string(),
        }
    }

    /// `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT` and `PGSSLKEY` for libpq (`pg_dump`,
    /// `pg_restore`, `psql`), so they check and present what kongup does.
    pub fn libpq_env(&self) -> Vec<(String, String)> {
        let mut env = vec![("PGSSLMODE".to_string(), self.mode.as_str().to_string())];
        let root_cert = match (&self.ca_file, self.mode) {
            (Some(ca), _) => Some(ca.path.clone()),
            (None, SslMode::VerifyCa | SslMode::VerifyFull) => system_bundle_file(),
            (None, _) => None,
        };
        if let Some(path) = root_cert {
            env.push(("PGSSLROOTCERT".to_string(), path.display().to_string()));
        }
        if let Some(client) = &self.client_cert {
            env.push(("PGSSLCERT".to_string(), client.cert.display().to_string()));
            env.push(("PGSSLKEY".to_string(), client.key.display().to_string()));
        }
        env
    }

    /// The rustls connector for tokio-postgres (not used with `disable`).
    pub fn connector(&self) -> Result<MakeRustlsConnect, String> {
        crate::kong::http::install_crypto_provider();
        let check = match (self.mode, &self.ca_file) {
            (SslMode::Disable, _) | (SslMode::Prefer | SslMode::Require, None) => Check::Nothing,
            (SslMode::Prefer | SslMode::Require | SslMode::VerifyCa, Some(ca)) => {
                Check::Chain(file_roots(ca)?)
            }
            (SslMode::VerifyCa, None) => Check::Chain(system_roots()?),
            (SslMode::VerifyFull, Some(ca)) => Check::ChainAndName(file_roots(ca)?),
            (SslMode::VerifyFull, None) => Check::ChainAndName(system_roots()?),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = ServerCheck {
            check,
            algorithms: provider.signature_verification_algorithms,
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS for PostgreSQL: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier));
        let config = match &self.client_cert {
            None => builder.with_no_client_auth(),
            Some(client) => {
                let (certs, key) = read_client_cert(client)?;
                builder.with_client_auth_cert(certs, key).map_err(|e| {
                    format!(
                        "the client key {} does not fit the certificate {} ({}): {e}",
                        client.key.display(),
                        client.cert.display(),
                        client.origin
                    )
                })?
            }
        };
        Ok(MakeRustlsConnect::new(config))
    }
}

/// The certificate chain and key, read from their PEM files.
fn read_client_cert(
    client: &ClientCert,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let shown = |path: &Path| format!("{} ({})", path.display(), client.origin);
    let pem = std::fs::read(&client.cert).map_err(|e| {
        format!(
            "cannot read the client certificate {}: {e}",
            shown(&client.cert)
        )
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            format!(
                "the client certificate {} is not valid PEM: {e}",
                shown(&client.cert)
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "the client certificate {} holds no certificate (expected a PEM `BEGIN CERTIFICATE` block)",
            shown(&client.cert)
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&client.key).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => format!(
            "{} holds no private key kongup can read (an encrypted key must be decrypted first: kongup takes no sslpassword)",
            shown(&client.key)
        ),
        e => format!("cannot read the private key {}: {e}", shown(&client.key)),
    })?;
    Ok((certs, key))
}

/// libpq's rule for a client key: it exists, and neither its group nor others have any
/// access to it (root's may be group-readable, for a group the server's user is in).
fn private_key_usable(key: &Path, cert: &Path, cert_origin: &str) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(key).map_err(|e| {
        format!(
            "cannot read the client key {} of the client certificate {} ({cert_origin}): {e}; check the path",
            key.display(),
            cert.display()
        )
    })?;
    let allowed = if meta.uid() == 0 { 0o040 } else { 0 };
    let mode = meta.mode() & 0o777;
    if mode & 0o077 & !allowed != 0 {
        return Err(format!(
            "the client key {} gives its group or other users access (mode {mode:o}), which libpq refuses as well: chmod 0600 it",
            key.display()
        ));
    }
    Ok(())
}

fn non_empty_env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|value| !value.is_empty())
}

fn parse_mode(word: &str) -> Result<SslMode, String> {
    SslMode::from_word(word).ok_or_else(|| {
        format!(
            "sslmode `{word}` is not one kongup speaks ({})",
            SslMode::WORDS.join(", ")
        )
    })
}

/// libpq's `~/.postgresql/root.crt`, when it exists.
fn libpq_default_root_cert() -> Option<PathBuf> {
    let path = dirs::home_dir()?.join(".postgresql").join("root.crt");
    path.is_file().then_some(path)
}

/// The system's CA bundle as one file, for libpq's `PGSSLROOTCERT`: `SSL_CERT_FILE`, else
/// the distribution's (e.g. /etc/ssl/certs/ca-certificates.crt).
fn system_bundle_file() -> Option<PathBuf> {
    openssl_probe::probe().cert_file
}

fn file_roots(ca: &CaFile) -> Result<Arc<RootCertStore>, String> {
    let shown = format!("the CA file {} ({})", ca.path.display(), ca.origin);
    let pem =
        std::fs::read(&ca.path).map_err(|e| format!("cannot read {shown}: {e}; check the path"))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("{shown} is not valid PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("{shown} holds a certificate kongup cannot use: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "{shown} holds no certificate (expected PEM `BEGIN CERTIFICATE` blocks)"
        ));
    }
    Ok(Arc::new(roots))
}

/// The system's roots, read once per process.
fn system_roots() -> Result<Arc<RootCertStore>, String> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                let why = found
                    .errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; ");
                Err(format!(
                    "no trusted roots found on this machine{}: name the CA that signed the database's certificate with sslrootcert=PATH (database.tls.ca_file in the plan), or point SSL_CERT_FILE at a bundle",
                    if why.is_empty() { String::new() } else { format!(" ({why})") }
                ))
            } else {
                Ok(Arc::new(roots))
            }
        })
        .clone()
}

/// Checks the server's certificate as the mode asks; the handshake's signatures are always
/// checked against the certificate presented.
#[derive(Debug)]
struct ServerCheck {
    check: Check,
    algorithms: WebPkiSupportedAlgorithms,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Check::Nothing => "Nothing",
            Check::Chain(_) => "Chain",
            Check::ChainAndName(_) => "ChainAndName",
        })
    }
}

impl ServerCertVerifier for ServerCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let (roots, check_name) = match &self.check {
            Check::Nothing => return Ok(ServerCertVerified::assertion()),
            Check::Chain(roots) => (roots, false),
            Check::ChainAndName(roots) => (roots, true),
        };
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        if check_name {
            rustls::client::verify_server_name(&cert, server_name)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Why a TLS handshake with the server failed, read from tokio-postgres' error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFailure {
    /// The server answered the TLS request with "no".
    NotSupported,
    /// The certificate does not chain to the trusted roots.
    Untrusted(String),
    /// The certificate chains but does not name the host; what it names instead.
    WrongName(Vec<String>),
    /// The server ended the handshake over a certificate (kongup's client certificate,
    /// when it presented one): the alert it sent.
    CertificateAlert(String),
    /// Anything else in the handshake (an expired certificate, a protocol alert).
    Other(String),
}

/// The TLS failure behind a connection error, if it is one.
pub fn tls_failure(error: &tokio_postgres::Error) -> Option<TlsFailure> {
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        // tokio-rustls hands rustls' error over inside an io::Error, whose `source` skips it.
        let inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        if let Some(tls) = inner.or_else(|| e.downcast_ref::<rustls::Error>()) {
            return Some(match tls {
                rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                    presented,
                    ..
                }) => TlsFailure::WrongName(presented.iter().map(|n| plain_name(n)).collect()),
                rustls::Error::InvalidCertificate(CertificateError::NotValidForName) => {
                    TlsFailure::WrongName(Vec::new())
                }
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
                    TlsFailure::Untrusted("it is signed by a CA kongup does not know".into())
                }
                rustls::Error::InvalidCertificate(CertificateError::BadSignature) => {
                    TlsFailure::Untrusted(
                        "its signature does not check out against the trusted CA of that name"
                            .into(),
                    )
                }
                rustls::Error::AlertReceived(
                    alert @ (AlertDescription::BadCertificate
                    | AlertDescription::UnsupportedCertificate
                    | AlertDescription::CertificateRevoked
                    | AlertDescription::CertificateExpired
                    | AlertDescription::CertificateUnknown
                    | AlertDescription::UnknownCA
                    | AlertDescription::DecryptError
                    | AlertDescription::AccessDenied
                    | AlertDescription::CertificateRequired),
                ) => TlsFailure::CertificateAlert(format!("{alert:?}")),
                other => TlsFailure::Other(other.to_string()),
            });
        }
        // tokio-postgres' own words when the server answers the SSL request with 'N'.
        if e.to_string() == "server does not support TLS" {
            return Some(TlsFailure::NotSupported);
        }
        source = e.source();
    }
    None
}

/// A name as webpki lists it (`DnsName("db.internal")`, `IpAddress(10.0.0.5)`), plain.
fn plain_name(listed: &str) -> String {
    listed
        .strip_prefix("DnsName(\"")
        .and_then(|rest| rest.strip_suffix("\")"))
        .or_else(|| {
            listed
                .strip_prefix("IpAddress(")
                .and_then(|rest| rest.strip_suffix(')'))
        })
        .unwrap_or(listed)
        .to_string()
}

/// Takes `sslmode` and `sslrootcert` out of a connection address (a `postgres://` URL or
/// a `key=value` string): tokio-postgres knows neither `verify-ca`/`verify-full` nor
/// `sslrootcert`, so they are kongup's to read, as are `sslcert` and `sslkey`. The rest of
/// the address is returned for tokio-postgres. `sslpassword` is refused with a message.
pub fn take_tls_params(address: &str) -> Result<(String, AddressTls), String> {
    let mut tls = AddressTls::default();
    let mut take = |key: &str, value: &str| -> Result<bool, String> {
        match key {
            "sslmode" => tls.mode = Some(parse_mode(value)?),
            "sslrootcert" => tls.root_cert = Some(RootCert::from_text(value)),
            // An empty value is libpq's "not set".
            "sslcert" => tls.cert = (!value.is_empty()).then(|| PathBuf::from(value)),
            "sslkey" => tls.key = (!value.is_empty()).then(|| PathBuf::from(value)),
            "sslpassword" => {
                return Err(
                    "the database address names sslpassword: kongup reads no encrypted client key; decrypt it to a file only you can read (openssl pkey -in KEY -out KEY.plain; chmod 0600) and name that with sslkey".to_string(),
                );
            }
            _ => return Ok(false),
        }
        Ok(true)
    };
    let rest = if address.starts_with("postgres://") || address.starts_with("postgresql://") {
        let Some((base, query)) = address.split_once('?') else {
            return Ok((address.to_string(), tls));
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if !take(&percent_decode(key)?, &percent_decode(value)?)? {
                kept.push(pair);
            }
        }
        if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else {
        let mut kept = Vec::new();
        for (key, value) in key_values(address)? {
            if !take(&key, &value)? {
                let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
                kept.push(format!("{key}='{quoted}'"));
            }
        }
        kept.join(" ")
    };
    Ok((rest, tls))
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    format!(
                        "bad percent-encoding in the database address near `{}`",
                        &text[i..]
                    )
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| "the database address decodes to something that is not UTF-8".to_string())
}

/// libpq's `key=value` connection string: values may be single-quoted; a backslash
/// escapes the next character.
fn key_values(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!(
                "the database address has `{key}` without `=value`; write key=value pairs or a postgres:// URL"
            ));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => {
                        return Err(format!(
                            "the value of `{key}` in the database address has no closing quote"
                        ));
                    }
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

/// Whether `host` names a directory holding the server's Unix socket (tokio-postgres'
/// and libpq's rule), over which TLS is never used.
pub fn is_unix_socket(host: &str) -> bool {
    Path::new(host).is_absolute()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_webpki_read_plainly() {
        assert_eq!(plain_name("DnsName(\"db.internal\")"), "db.internal");
        assert_eq!(plain_name("IpAddress(10.0.0.5)"), "10.0.0.5");
        assert_eq!(plain_name("DirectoryName"), "DirectoryName");
    }

    #[test]
    fn url_tls_parameters_are_taken_out_and_the_rest_kept() {
        let (rest, tls) = take_tls_params(
            "postgres://kong@db:5432/kong?connect_timeout=5&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgres://kong@db:5432/kong?connect_timeout=5&application_name=x"
        );
        assert_eq!(tls.mode, Some(SslMode::VerifyFull));
        assert_eq!(
            tls.root_cert,
            Some(RootCert::File(PathBuf::from("/etc/ca.pem")))
        );
        let (rest, tls) = take_tls_params("postgresql://db/kong?sslmode=require").unwrap();
        assert_eq!(rest, "postgresql://db/kong");
        assert_eq!(tls.mode, Some(SslMode::Require));
        let (rest, tls) = take_tls_params("postgres://db/kong").unwrap();
        assert_eq!(
            (rest.as_str(), tls),
            ("postgres://db/kong", AddressTls::default())
        );
        let (_, tls) = take_tls_params("postgres://db/kong?sslrootcert=system").unwrap();
        assert_eq!(tls.root_cert, Some(RootCert::System));
    }

    #[test]
    fn key_value_tls_parameters_are_taken_out_and_the_rest_requoted() {
        let (rest, tls) = take_tls_params(
            "host=db  dbname = 'kong db' sslmode=verify-ca sslrootcert='/etc/my ca.pem' password=it\\'s",
        )
        .unwrap();
        assert_eq!(rest, "host='db' dbname='kong db' password='it\\'s'");
        assert_eq!(tls.mode, Some(SslMode::VerifyCa));
        assert_eq!(
            tls.root_cert,
            Some(RootCert::File(PathBuf::from("/etc/my ca.pem")))
        );
        // What is kept still reads the same to tokio-postgres.
        let config: tokio_postgres::Config = rest.parse().unwrap();
        assert_eq!(config.get_dbname(), Some("kong db"));
        assert_eq!(config.get_password(), Some(&b"it's"[..]));
        assert!(take_tls_params("host=db dbname='kong").is_err());
        assert!(take_tls_params("host").is_err());
    }

    #[test]
    fn unknown_modes_and_encrypted_keys_are_refused_with_the_way_out() {
        let error = take_tls_params("postgres://db/kong?sslmode=allow").unwrap_err();
        assert!(error.contains("verify-full"), "{error}");
        let error = take_tls_params("postgres://db/kong?sslpassword=x").unwrap_err();
        assert!(error.contains("decrypt it"), "{error}");
        assert!(take_tls_params("postgres://db/kong?sslmode=%zz").is_err());
        let (rest, tls) =
            take_tls_params("postgres://db/kong?sslcert=%2Fc.pem&sslkey=/k.pem").unwrap();
        assert_eq!(rest, "postgres://db/kong");
        assert_eq!(tls.cert, Some(PathBuf::from("/c.pem")));
        assert_eq!(tls.key, Some(PathBuf::from("/k.pem")));
    }

    /// The client certificate as libpq finds it, but a named file that is missing is an
    /// error, and a key others can read is refused as libpq refuses it.
    #[test]
    fn client_certificates_are_found_as_libpq_finds_them_and_checked() {
        use std::os::unix::fs::PermissionsExt;
        // PGSSLCERT/PGSSLKEY and the home directory are read only when nothing was named,
        // so these cases do not depend on this machine's environment.
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("client.crt");
        let key = dir.path().join("client.key");
        std::fs::write(&cert, "certificate").unwrap();
        std::fs::write(&key, "key").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

        let tls = PgTls::default()
            .with_client_cert(Some(cert.clone()), Some(key.clone()), "the plan")
            .unwrap();
        let client = tls.client_cert.clone().unwrap();
        assert_eq!(
            (client.cert.as_path(), client.key.as_path()),
            (cert.as_path(), key.as_path())
        );
        let env = tls.libpq_env();
        assert!(env.contains(&("PGSSLCERT".into(), cert.display().to_string())));
        assert!(env.contains(&("PGSSLKEY".into(), key.display().to_string())));

        let missing = dir.path().join("nope.crt");
        let error = PgTls::default()
            .with_client_cert(Some(missing.clone()), Some(key.clone()), "the plan")
            .unwrap_err();
        assert!(
            error.contains(&missing.display().to_string()) && error.contains("does not exist"),
            "{error}"
        );

        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = PgTls::default()
            .with_client_cert(Some(cert.clone()), Some(key.clone()), "the plan")
            .unwrap_err();
        assert!(
            error.contains("chmod 0600") && error.contains("644"),
            "{error}"
        );
        // The owner's own bits are the owner's business, as in libpq.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o700)).unwrap();
        PgTls::default()
            .with_client_cert(Some(cert.clone()), Some(key.clone()), "the plan")
            .unwrap();

        // Without TLS nothing is looked for, not even a file that is missing.
        let disabled = PgTls {
            mode: SslMode::Disable,
            ..PgTls::default()
        }
        .with_client_cert(Some(missing.clone()), None, "the plan")
        .unwrap();
        assert_eq!(disabled.client_cert, None);

        // Garbage in the files: the connector says which file and why.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let tls = PgTls {
            mode: SslMode::Require,
            ..PgTls::default()
        }
        .with_client_cert(Some(cert.clone()), Some(key.clone()), "the plan")
        .unwrap();
        let error = tls.connector().err().expect("no certificate in the file");
        assert!(error.contains("holds no certificate"), "{error}");
    }

    #[test]
    fn resolve_follows_libpq() {
        // Resolution reads PGSSLMODE/PGSSLROOTCERT only when nothing was given, so these
        // cases do not depend on the environment of the test.
        let file = RootCert::File(PathBuf::from("/etc/ca.pem"));
        let tls = PgTls::resolve(
            Some(SslMode::Require),
            Some(file),
            "sslrootcert in the address",
        )
        .unwrap();
        assert_eq!(tls.mode, SslMode::Require);
        assert_eq!(
            tls.ca_file.as_ref().map(|ca| ca.origin.as_str()),
            Some("sslrootcert in the address")
        );
        assert!(
            tls.warnings("db:5432/kong").is_empty(),
            "a CA file is checked"
        );
        assert_eq!(
            tls.libpq_env(),
            [
                ("PGSSLMODE".to_string(), "require".to_string()),
                ("PGSSLROOTCERT".to_string(), "/etc/ca.pem".to_string()),
            ]
        );
        let system =
            PgTls::resolve(Some(SslMode::VerifyFull), Some(RootCert::System), "x").unwrap();
        assert_eq!(system.mode, SslMode::VerifyFull);
        assert_eq!(system.ca_file, None);
        let error =
            PgTls::resolve(Some(SslMode::Require), Some(RootCert::System), "x").unwrap_err();
        assert!(error.contains("needs sslmode=verify-full"), "{error}");
    }

    #[test]
    fn require_without_a_ca_file_warns_and_says_what_to_use() {
        let tls = PgTls {
            mode: SslMode::Require,
            ..PgTls::default()
        };
        let warnings = tls.warnings("db:5432/kong");
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("not checked"), "{warnings:?}");
        assert!(warnings[0].contains("verify-full"), "{warnings:?}");
        assert_eq!(
            tls.libpq_env(),
            [("PGSSLMODE".to_string(), "require".to_string())]
        );
        for quiet in [
            SslMode::Disable,
            SslMode::Prefer,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            let tls = PgTls {
                mode: quiet,
                ..PgTls::default()
            };
            assert!(tls.warnings("db").is_empty(), "{quiet:?}");
        }
    }

    #[test]
    fn a_ca_file_that_is_missing_or_holds_no_certificate_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        for (path, expected) in [
            (dir.path().join("absent.pem"), "cannot read the CA file"),
            (empty, "holds no certificate"),
        ] {
            let tls = PgTls {
                mode: SslMode::VerifyFull,
                ca_file: Some(CaFile {
                    path: path.clone(),
                    origin: "sslrootcert in the address".into(),
                }),
                client_cert: None,
            };
            let error = tls.connector().err().expect("no connector");
            assert!(error.contains(expected), "{error}");
            assert!(error.contains(&path.display().to_string()), "{error}");
        }
    }
}
