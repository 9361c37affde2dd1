//! Certificates for the fake relays: a relay's own (self-signed, or issued by an internal CA
//! with the CA sent along), the records that pin them, and an impostor that presents a relay's
//! certificate with a key of its own.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, PublicKeyData};
use rustls::crypto::ring::default_provider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SupportedProtocolVersion};

/// The name a relay of site oxford is reached by in the test zone: its MX exchange.
pub(crate) const MAIL1: &str = "mail1.oxford.smarthost.internal";

/// TLS 1.2 and 1.3, as a relay offers them.
pub(crate) const BOTH: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];
/// TLS 1.2 alone.
pub(crate) const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
/// TLS 1.3 alone.
pub(crate) const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// `x y z <hex of sha256(bytes)>`, computed here rather than by smarthostd.
fn sha256_record(prefix: &str, bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    format!(
        "{prefix} {}",
        data_encoding::HEXLOWER.encode(digest.as_ref())
    )
}

/// An internal CA.
pub(crate) struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    pub(crate) fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    /// Its certificate.
    pub(crate) fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// `2 0 1 <sha256 of its certificate>`: it as the relays' trust anchor.
    pub(crate) fn record(&self) -> String {
        sha256_record("2 0 1", self.issuer.der())
    }
}

/// A relay's certificate chain (its own first) and private key.
pub(crate) struct Relay {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: KeyPair,
}

impl Relay {
    /// A self-signed certificate for `names`.
    pub(crate) fn self_signed(names: &[&str]) -> Self {
        let key = KeyPair::generate().unwrap();
        let cert = params(names).self_signed(&key).unwrap();
        Self {
            chain: vec![cert.der().clone()],
            key,
        }
    }

    /// A certificate for `names` issued by `ca`, sent with the CA's certificate.
    pub(crate) fn issued_by(ca: &Ca, names: &[&str]) -> Self {
        let key = KeyPair::generate().unwrap();
        let cert = params(names).signed_by(&key, &ca.issuer).unwrap();
        Self {
            chain: vec![cert.der().clone(), ca.der()],
            key,
        }
    }

    /// `3 1 1 <sha256 of its key>`: the record that pins it.
    pub(crate) fn record(&self) -> String {
        sha256_record("3 1 1", &self.key.subject_public_key_info())
    }

    /// Its certificate chain as PEM, as an operator gives it in `tls_key`.
    pub(crate) fn pem(&self) -> String {
        self.chain
            .iter()
            .map(|c| {
                let b64 = data_encoding::BASE64.encode(c);
                let lines: Vec<&str> = b64
                    .as_bytes()
                    .chunks(64)
                    .map(|l| std::str::from_utf8(l).unwrap())
                    .collect();
                format!(
                    "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                    lines.join("\n")
                )
            })
            .collect()
    }

    /// A STARTTLS server that presents this chain and signs with this key.
    pub(crate) fn server(
        &self,
        versions: &[&'static SupportedProtocolVersion],
    ) -> Arc<ServerConfig> {
        server(self.chain.clone(), &self.key, versions)
    }

    /// A server that presents this chain and signs with a key of its own: someone at the
    /// relay's address replaying its certificate.
    pub(crate) fn impostor(
        &self,
        versions: &[&'static SupportedProtocolVersion],
    ) -> Arc<ServerConfig> {
        server(self.chain.clone(), &KeyPair::generate().unwrap(), versions)
    }
}

fn params(names: &[&str]) -> CertificateParams {
    CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap()
}

/// Always the same chain and key, whatever the client asks for.
#[derive(Debug)]
struct Always(Arc<CertifiedKey>);

impl ResolvesServerCert for Always {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A server presenting `chain` and signing with `key`, matched or not (`with_single_cert`
/// would refuse a key that is not the certificate's).
fn server(
    chain: Vec<CertificateDer<'static>>,
    key: &KeyPair,
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ServerConfig> {
    let provider = Arc::new(default_provider());
    let signing = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(key.serialize_der().into()))
        .unwrap();
    let certified = Arc::new(CertifiedKey::new(chain, signing));
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Always(certified)));
    Arc::new(config)
}
