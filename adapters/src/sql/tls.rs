//! TLS to PostgreSQL, chosen by the URL as libpq users write it: `sslmode=require` encrypts
//! without checking the server's certificate (libpq's meaning), `verify-full` checks the
//! chain and the host name against `sslrootcert` (a PEM file) or the system's roots;
//! `disable` and no `sslmode` connect in plain TCP, as before TLS was supported.
//!
//! tokio-postgres knows only `disable`/`prefer`/`require`, so the URL it gets has the
//! checking modes turned into `require` and `sslrootcert` removed; what to check is in the
//! rustls configuration instead.

use std::sync::Arc;

use diesel::ConnectionError;
use diesel_async::AsyncPgConnection;
use futures::FutureExt;
use futures::future::BoxFuture;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, aws_lc_rs};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// What a `DATABASE_URL` asks of TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP (`disable`, or no `sslmode`).
    Disable,
    /// TLS if the server offers it, unchecked (`prefer`).
    Prefer,
    /// TLS or nothing, unchecked (`require`).
    Require,
    /// TLS or nothing, chain and host name checked (`verify-full`).
    VerifyFull,
}

/// A PostgreSQL URL split into what tokio-postgres reads and how to do TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTls {
    /// The URL for tokio-postgres: `sslmode` in its words, no `sslrootcert`.
    pub url: String,
    pub mode: SslMode,
    /// `sslrootcert`: the PEM file of the certificates to trust for `verify-full`.
    pub root_cert: Option<String>,
}

impl PgTls {
    /// Reads `sslmode` and `sslrootcert` from the URL's query.
    ///
    /// # Errors
    /// A sentence naming what is wrong: an unsupported `sslmode` (`verify-ca`, which
    /// rustls cannot check without the host name, or an unknown one), or `sslrootcert`
    /// without `verify-full`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut mode = SslMode::Disable;
        let mut root_cert = None;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" => mode = ssl_mode(value)?,
                "sslrootcert" => root_cert = Some(percent_decode(value)),
                _ => kept.push(pair.to_owned()),
            }
        }
        if root_cert.is_some() && mode != SslMode::VerifyFull {
            return Err("sslrootcert needs sslmode=verify-full".to_owned());
        }
        let wire_mode = match mode {
            SslMode::Disable => None,
            SslMode::Prefer => Some("prefer"),
            SslMode::Require | SslMode::VerifyFull => Some("require"),
        };
        kept.extend(wire_mode.map(|m| format!("sslmode={m}")));
        let url = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok(Self {
            url,
            mode,
            root_cert,
        })
    }

    /// The rustls connector of this mode, or `None` for plain TCP.
    ///
    /// # Errors
    /// The root certificate file cannot be read or holds no certificate.
    pub fn connector(&self) -> Result<Option<MakeRustlsConnect>, String> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let config = match self.mode {
            SslMode::Disable => return Ok(None),
            SslMode::Prefer | SslMode::Require => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unchecked(provider())))
                .with_no_client_auth(),
            SslMode::VerifyFull => builder
                .with_root_certificates(roots(self.root_cert.as_deref())?)
                .with_no_client_auth(),
        };
        Ok(Some(MakeRustlsConnect::new(config)))
    }
}

fn ssl_mode(value: &str) -> Result<SslMode, String> {
    match value {
        "disable" => Ok(SslMode::Disable),
        "prefer" | "allow" => Ok(SslMode::Prefer),
        "require" => Ok(SslMode::Require),
        "verify-full" => Ok(SslMode::VerifyFull),
        "verify-ca" => Err(
            "sslmode=verify-ca is not supported: use verify-full (the certificate must name the host)"
                .to_owned(),
        ),
        other => Err(format!(
            "unknown sslmode {other}: expected disable, prefer, require or verify-full"
        )),
    }
}

/// `%2F` and friends in a file path given in a URL.
fn percent_decode(value: &str) -> String {
    url::form_urlencoded::parse(format!("v={value}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(aws_lc_rs::default_provider())
}

/// The certificates of `file`, or the system's trusted roots.
fn roots(file: Option<&str>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|e| format!("sslrootcert {path}: {e}"))?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!("sslrootcert {path}: no certificate in the file"));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err(
                    "verify-full: no system root certificates; name them with sslrootcert"
                        .to_owned(),
                );
            }
        }
    }
    Ok(store)
}

/// A connection through `tls`: diesel-async's own `establish` speaks plain TCP only.
pub(crate) fn establish(
    url: String,
    tls: MakeRustlsConnect,
) -> BoxFuture<'static, diesel::ConnectionResult<AsyncPgConnection>> {
    async move {
        let (client, connection) = tokio_postgres::connect(&url, tls)
            .await
            .map_err(|e| ConnectionError::BadConnection(with_causes(&e)))?;
        AsyncPgConnection::try_from_client_and_connection(client, connection).await
    }
    .boxed()
}

/// `error: cause: cause…`: tokio-postgres names only the step ("error performing TLS
/// handshake"); the reason (an untrusted certificate) is in its sources.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `require` as libpq means it: encrypted, the certificate not checked. Signatures are
/// still verified, so the handshake is a real one with the key the server showed.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_from_the_url() {
        let plain = PgTls::parse("postgres://u@h/db").unwrap();
        assert_eq!(plain.mode, SslMode::Disable);
        assert_eq!(plain.url, "postgres://u@h/db");
        assert!(plain.connector().unwrap().is_none());

        let full = PgTls::parse(
            "postgres://u@h:5433/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.crt&options=-c%20x",
        )
        .unwrap();
        assert_eq!(full.mode, SslMode::VerifyFull);
        assert_eq!(full.root_cert.as_deref(), Some("/tmp/ca.crt"));
        assert_eq!(
            full.url,
            "postgres://u@h:5433/db?options=-c%20x&sslmode=require"
        );

        let require = PgTls::parse("postgres://u@h/db?sslmode=require").unwrap();
        assert_eq!(require.mode, SslMode::Require);
        assert!(require.connector().unwrap().is_some());
    }

    #[test]
    fn unsupported_modes_and_a_bad_root_file_are_named() {
        for (url, said) in [
            ("postgres://u@h/db?sslmode=verify-ca", "verify-ca"),
            ("postgres://u@h/db?sslmode=sure", "unknown sslmode sure"),
            (
                "postgres://u@h/db?sslmode=require&sslrootcert=/x",
                "sslrootcert needs sslmode=verify-full",
            ),
        ] {
            let error = PgTls::parse(url).unwrap_err();
            assert!(error.contains(said), "{url}: {error}");
        }
        let missing = PgTls::parse("postgres://u@h/db?sslmode=verify-full&sslrootcert=/nope.pem")
            .unwrap()
            .connector()
            .err()
            .unwrap();
        assert!(missing.contains("sslrootcert /nope.pem"), "{missing}");
    }
}
