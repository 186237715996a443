//! Connecting to PostgreSQL: the URL (`--database-url` / `DATABASE_URL`), TLS
//! (`--db-sslmode`, `--db-ca-file`, or libpq's `sslmode`/`sslrootcert` in the URL), and
//! errors that name host, port and reason instead of a stack trace.

use super::{pg_reason, Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::config::{Host, SslMode as PgSslMode};
use tokio_postgres::{Client, Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

/// TLS policy, with libpq's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// TLS if the server offers it, without certificate checks; plain otherwise.
    Prefer,
    /// TLS or fail; the certificate is checked only when a CA file is given.
    Require,
    /// TLS, certificate chain checked against the CA file (or the system roots), and the
    /// host name checked against the certificate.
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn parse(s: &str) -> Result<SslMode> {
        Ok(match s {
            "disable" | "allow" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            // verify-ca is served by the stricter check.
            "verify-ca" | "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::Config(format!(
                    "sslmode {other:?} is not one of disable, prefer, require, verify-full"
                )))
            }
        })
    }
}

/// How to reach the database, as given on the command line.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// A `postgres://` URL or a libpq key=value string. May hold a password: never printed.
    pub url: String,
    /// Overrides the URL's `sslmode`; default `prefer`.
    pub sslmode: Option<SslMode>,
    /// CA certificates (PEM) to verify the server with; overrides the URL's `sslrootcert`.
    pub ca_file: Option<PathBuf>,
    /// Give up connecting after this long (unless the URL says otherwise).
    pub connect_timeout: Duration,
}

/// Where a connection goes, without the secret: for messages, credentials and pg_dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub user: String,
}

/// Connection settings resolved once: the parsed config, the TLS mode and its connector.
#[derive(Clone)]
pub struct Resolved {
    config: Config,
    sslmode: SslMode,
    ca_file: Option<PathBuf>,
    tls: Option<MakeRustlsConnect>,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The config holds the password; show only where it goes.
        f.debug_struct("Resolved").field("target", &self.target()).field("sslmode", &self.sslmode).finish()
    }
}

impl ConnectOptions {
    pub fn new(url: impl Into<String>) -> ConnectOptions {
        ConnectOptions { url: url.into(), sslmode: None, ca_file: None, connect_timeout: Duration::from_secs(10) }
    }

    /// Parse the URL and prepare TLS. No IO except reading the CA file.
    pub fn resolve(&self) -> Result<Resolved> {
        if let Some((scheme, _)) = self.url.split_once("://") {
            if scheme != "postgres" && scheme != "postgresql" {
                return Err(Error::Config(format!(
                    "the database URL is a {scheme}:// URL; portalctl needs PostgreSQL: \
                     postgres://USER@HOST:5432/DATABASE"
                )));
            }
        }
        let (url, url_sslmode, url_rootcert) = split_libpq_tls_params(&self.url)?;
        let mut config = Config::from_str(&url)
            .map_err(|e| Error::Config(format!("the database URL cannot be parsed: {}", pg_reason(&e))))?;
        if config.get_hosts().is_empty() {
            config.host("localhost");
        }
        if config.get_user().is_none() {
            let user = std::env::var("PGUSER").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| "postgres".into());
            config.user(&user);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(self.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("portalctl");
        }
        let sslmode = match (self.sslmode, url_sslmode) {
            (Some(m), _) => m,
            (None, Some(m)) => m,
            (None, None) => SslMode::Prefer,
        };
        let ca_file = self.ca_file.clone().or(url_rootcert);
        config.ssl_mode(match sslmode {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require | SslMode::VerifyFull => PgSslMode::Require,
        });
        let tls = match sslmode {
            SslMode::Disable => None,
            _ => Some(MakeRustlsConnect::new(tls_config(sslmode, ca_file.as_deref())?)),
        };
        Ok(Resolved { config, sslmode, ca_file, tls })
    }

    /// Resolve and connect once.
    pub async fn connect(&self) -> Result<Client> {
        self.resolve()?.connect().await
    }
}

impl Resolved {
    /// Host, port, database and user of the connection (the first host if several).
    pub fn target(&self) -> Target {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let user = self.config.get_user().unwrap_or("postgres").to_string();
        let dbname = self.config.get_dbname().map(str::to_string).unwrap_or_else(|| user.clone());
        Target { host, port, dbname, user }
    }

    pub fn sslmode(&self) -> SslMode {
        self.sslmode
    }

    /// Open a connection; its driver runs on the current tokio runtime.
    pub async fn connect(&self) -> Result<Client> {
        let result = match &self.tls {
            None => self.config.connect(NoTls).await.map(|(client, conn)| {
                tokio::spawn(conn);
                client
            }),
            Some(tls) => self.config.connect(tls.clone()).await.map(|(client, conn)| {
                tokio::spawn(conn);
                client
            }),
        };
        result.map_err(|e| {
            let t = self.target();
            let reason = connect_reason(&e, self.config.get_connect_timeout());
            Error::Connect { host: t.host, port: t.port, reason }
        })
    }

    /// Whether `user` can log in with `password` at this server (a full SCRAM handshake, the
    /// same TLS settings): `Ok(false)` when the server refuses the password or the role,
    /// an error when the server cannot be asked at all. The password never leaves this call.
    pub async fn logs_in(&self, user: &str, password: &str) -> Result<bool> {
        let mut config = self.config.clone();
        config.user(user).password(password).application_name("portalctl-credential-check");
        let result = match &self.tls {
            None => config.connect(NoTls).await.map(|(_, conn)| drop(conn)),
            Some(tls) => config.connect(tls.clone()).await.map(|(_, conn)| drop(conn)),
        };
        match result {
            Ok(()) => Ok(true),
            Err(e) if e.as_db_error().is_some_and(|d| matches!(d.code().code(), "28P01" | "28000")) => Ok(false),
            Err(e) => {
                let t = self.target();
                Err(Error::Connect {
                    host: t.host,
                    port: t.port,
                    reason: connect_reason(&e, config.get_connect_timeout()),
                })
            }
        }
    }

    /// The libpq environment (`PGHOST`, `PGPASSWORD`, ...) for tools like pg_dump, so that
    /// the password never appears on a command line.
    pub fn libpq_env(&self) -> Vec<(&'static str, String)> {
        let t = self.target();
        let mut env = vec![
            ("PGHOST", t.host),
            ("PGPORT", t.port.to_string()),
            ("PGUSER", t.user),
            ("PGDATABASE", t.dbname),
            ("PGSSLMODE", self.sslmode.as_str().to_string()),
            ("PGAPPNAME", "portalctl".to_string()),
        ];
        if let Some(pw) = self.config.get_password() {
            env.push(("PGPASSWORD", String::from_utf8_lossy(pw).into_owned()));
        }
        if let Some(ca) = &self.ca_file {
            env.push(("PGSSLROOTCERT", ca.display().to_string()));
        }
        env
    }
}

/// Why a connection failed, in the server's or the operating system's words.
fn connect_reason(e: &tokio_postgres::Error, timeout: Option<&Duration>) -> String {
    if let Some(db) = e.as_db_error() {
        let what = match db.code().code() {
            "28P01" | "28000" => "login refused: ",
            "3D000" => "",
            _ => "",
        };
        return format!("{what}{} (SQLSTATE {})", db.message(), db.code().code());
    }
    let mut io_reason = None;
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            io_reason = Some(match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    "connection refused (is the server running and listening there?)".to_string()
                }
                std::io::ErrorKind::TimedOut => match timeout {
                    Some(t) => format!("timed out after {} s", t.as_secs()),
                    None => "timed out".to_string(),
                },
                _ => io.to_string(),
            });
            break;
        }
        source = cause.source();
    }
    if let Some(r) = io_reason {
        return r;
    }
    let text = pg_reason(e);
    if text.contains("timeout") || text.contains("timed out") {
        if let Some(t) = timeout {
            return format!("timed out after {} s", t.as_secs());
        }
    }
    text.trim_start_matches("error connecting to server: ").to_string()
}

/// Take libpq's TLS parameters (`sslmode`, `sslrootcert`) out of a URL's query so that
/// libpq-style URLs work, including `sslmode=verify-full` which tokio-postgres does not know.
pub fn split_libpq_tls_params(url: &str) -> Result<(String, Option<SslMode>, Option<PathBuf>)> {
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let Some((base, query)) = url.split_once('?').filter(|_| is_url) else {
        return Ok((url.to_string(), None, None));
    };
    let mut kept = Vec::new();
    let mut mode = None;
    let mut root = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "sslmode" => mode = Some(SslMode::parse(v)?),
            "sslrootcert" => root = Some(PathBuf::from(percent_decode(v))),
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
    Ok((url, mode, root))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_config(mode: SslMode, ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS setup: {e}")))?;
    let verify = mode == SslMode::VerifyFull || ca_file.is_some();
    if !verify {
        // libpq's prefer/require: encrypted, but the certificate is not checked.
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCertificateCheck(provider())))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            use rustls::pki_types::pem::PemObject;
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| Error::Config(format!("CA file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(Error::Config(format!("CA file {} holds no PEM certificate", path.display())));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| Error::Config(format!("CA file {}: {e}", path.display())))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(Error::Config(
                    "sslmode verify-full: no system CA certificates found; pass --db-ca-file".into(),
                ));
            }
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// Accepts any server certificate (libpq's `sslmode=require` without a root certificate),
/// but still checks the handshake signatures.
#[derive(Debug)]
struct NoCertificateCheck(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_tls_parameters_are_taken_out_of_the_url() {
        let (url, mode, root) = split_libpq_tls_params(
            "postgres://u:p@db.example:5433/portal?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(url, "postgres://u:p@db.example:5433/portal?application_name=x");
        assert_eq!(mode, Some(SslMode::VerifyFull));
        assert_eq!(root, Some(PathBuf::from("/etc/ca.pem")));
        let (url, mode, _) = split_libpq_tls_params("postgres://h/db?sslmode=disable").unwrap();
        assert_eq!((url.as_str(), mode), ("postgres://h/db", Some(SslMode::Disable)));
        assert!(split_libpq_tls_params("postgres://h/db?sslmode=sometimes").is_err());
    }

    #[test]
    fn target_names_host_port_and_database_but_debug_hides_the_password() {
        let r = ConnectOptions::new("postgres://admin:s3cret@db.example:6543/portal").resolve().unwrap();
        assert_eq!(
            r.target(),
            Target { host: "db.example".into(), port: 6543, dbname: "portal".into(), user: "admin".into() }
        );
        assert!(!format!("{r:?}").contains("s3cret"));
        assert_eq!(r.sslmode(), SslMode::Prefer);
        let env = r.libpq_env();
        assert!(env.contains(&("PGPASSWORD", "s3cret".to_string())));
        assert!(env.contains(&("PGPORT", "6543".to_string())));
    }

    #[test]
    fn a_missing_ca_file_is_a_config_error() {
        let mut o = ConnectOptions::new("postgres://h/db");
        o.sslmode = Some(SslMode::VerifyFull);
        o.ca_file = Some("/nonexistent/ca.pem".into());
        let err = o.resolve().unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[tokio::test]
    async fn a_refused_connection_names_host_port_and_reason() {
        let mut o = ConnectOptions::new("postgres://postgres@127.0.0.1:1/postgres");
        o.sslmode = Some(SslMode::Disable);
        let err = o.connect().await.unwrap_err();
        let text = err.to_string();
        assert!(err.is_unavailable());
        assert!(text.contains("127.0.0.1:1"), "{text}");
        assert!(text.contains("refused"), "{text}");
    }
}
