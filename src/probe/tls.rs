//! TLS client settings for STARTTLS probes (rustls with ring).
//!
//! Internal relays often present self-signed or internal-CA certificates, so the chain is not
//! checked against CAs unless `probe.tls_verify` asks for it (then the public roots, or
//! `probe.tls_ca_file`). The handshake signature always is: it proves that the relay holds the
//! private key of the certificate it presented. Without that check, anyone at a relay's address
//! could replay the relay's certificate and pass, and a TLSA record pinning the relay's key
//! would pin nothing. The pinned key itself is matched after the handshake
//! ([`dane::authenticate`](crate::dane::authenticate)).

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore,
    SignatureScheme,
};

/// Builds the client config the probes share: with `verify`, chains are checked against the
/// public roots or the CAs in `ca_file`; handshake signatures are checked either way.
pub fn client_config(verify: bool, ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let pkix = if verify {
        let mut roots = RootCertStore::empty();
        match ca_file {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                for cert in certs {
                    let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| e.to_string())?;
        Some(verifier)
    } else {
        None
    };
    let verifier = Verifier {
        pkix,
        algorithms: provider.signature_verification_algorithms,
    };
    Ok(Arc::new(
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth(),
    ))
}

/// Checks the chain against CAs when `pkix` is set, and every handshake signature against the
/// key of the certificate presented.
#[derive(Debug)]
struct Verifier {
    pkix: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

/// The relay signed the handshake with another key than its certificate's: whoever answered
/// does not hold that certificate's private key.
#[derive(Debug, thiserror::Error)]
#[error(
    "its handshake signature does not verify with the key of the certificate it presented: it does not hold that certificate's private key"
)]
pub struct KeyNotHeld;

/// A signature that does not verify with the certificate's key, or that no scheme of that key
/// can have made, is [`KeyNotHeld`].
fn key_not_held(e: rustls::Error) -> rustls::Error {
    match e {
        rustls::Error::InvalidCertificate(
            CertificateError::BadSignature
            | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. },
        ) => rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
            KeyNotHeld,
        )))),
        e => e,
    }
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
        match &self.pkix {
            Some(pkix) => {
                pkix.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            }
            None => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
            .map_err(key_not_held)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
            .map_err(key_not_held)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Whether a failed handshake's error is [`KeyNotHeld`].
pub fn is_key_not_held(e: &std::io::Error) -> bool {
    let Some(rustls::Error::InvalidCertificate(CertificateError::Other(other))) =
        e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        return false;
    };
    other.0.downcast_ref::<KeyNotHeld>().is_some()
}
