//! A relay's key as the operator gives it (`tls_key`): a PEM certificate, chain, or public key,
//! from which the `3 1 1` record is derived. And the SubjectPublicKeyInfo of a certificate,
//! which every `x 1 x` record is about.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::libc;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::{PemObject, SectionKind};

use super::record::Tlsa;

/// The longest key file read: a certificate chain is a few KiB; anything near this is not one.
const MAX_FILE_LEN: u64 = 1 << 20;

/// Why a key file gives no record. Messages name the file and never quote it: a file given by
/// mistake may hold a private key.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyFileError {
    /// Missing, or not readable by smarthostd.
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A folder, a FIFO, a device.
    #[error("{} is not a regular file", path.display())]
    NotAFile {
        /// The file.
        path: PathBuf,
    },
    /// Larger than any certificate chain.
    #[error("{} is larger than {MAX_FILE_LEN} bytes: not a certificate or public key", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// Not PEM, or a PEM section is damaged.
    #[error("{} is not PEM ({why}): give the relay's certificate (BEGIN CERTIFICATE) or public key (BEGIN PUBLIC KEY)", path.display())]
    NotPem {
        /// The file.
        path: PathBuf,
        /// What is wrong, without the file's bytes.
        why: &'static str,
    },
    /// It holds a private key: smarthostd needs, and will read, only public parts.
    #[error("{} holds a private key: smarthostd needs only the relay's certificate or public key, so that the private key stays on the relay; give a file without it", path.display())]
    PrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// PEM, but of something else (a CSR, a CRL).
    #[error("{} holds no certificate (BEGIN CERTIFICATE) or public key (BEGIN PUBLIC KEY)", path.display())]
    Nothing {
        /// The file.
        path: PathBuf,
    },
    /// The certificate or key does not parse.
    #[error("{}: {what}", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What could not be read.
        what: String,
    },
}

/// The `3 1 1` record of the key in the PEM file `path`: its first certificate's key (a chain
/// names the relay first), or else its public key. Reads at most [`MAX_FILE_LEN`] bytes, and
/// never waits on a FIFO.
pub(crate) fn read_key_file(path: &Path) -> Result<Tlsa, KeyFileError> {
    let unreadable = |source| KeyFileError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    // Links are followed: certificates often live behind them (/etc/letsencrypt/live).
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(KeyFileError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(KeyFileError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    record_from_pem(&bytes).map_err(|e| e.at(path))
}

/// What [`record_from_pem`] found wrong, before a file is named.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PemProblem {
    /// No PEM section at all, or a damaged one.
    NotPem(&'static str),
    /// A private key among the sections.
    PrivateKey,
    /// No certificate and no public key.
    Nothing,
    /// The certificate or key does not parse.
    Damaged(String),
}

impl PemProblem {
    fn at(self, path: &Path) -> KeyFileError {
        let path = path.to_path_buf();
        match self {
            PemProblem::NotPem(why) => KeyFileError::NotPem { path, why },
            PemProblem::PrivateKey => KeyFileError::PrivateKey { path },
            PemProblem::Nothing => KeyFileError::Nothing { path },
            PemProblem::Damaged(what) => KeyFileError::Damaged { path, what },
        }
    }
}

/// The `3 1 1` record of PEM text: its first certificate's key, else its public key.
pub(crate) fn record_from_pem(pem: &[u8]) -> Result<Tlsa, PemProblem> {
    let mut certificate = None;
    let mut public_key = None;
    let mut sections = 0;
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem) {
        let (kind, der) = section.map_err(|e| {
            PemProblem::NotPem(match e {
                rustls_pki_types::pem::Error::MissingSectionEnd { .. } => {
                    "a section has no END line"
                }
                rustls_pki_types::pem::Error::IllegalSectionStart { .. } => {
                    "a BEGIN line is malformed"
                }
                rustls_pki_types::pem::Error::Base64Decode(_) => "a section is not base64",
                _ => "it cannot be read as PEM",
            })
        })?;
        sections += 1;
        match kind {
            SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey => {
                return Err(PemProblem::PrivateKey);
            }
            SectionKind::Certificate if certificate.is_none() => certificate = Some(der),
            SectionKind::PublicKey if public_key.is_none() => public_key = Some(der),
            _ => {}
        }
    }
    if sections == 0 {
        return Err(PemProblem::NotPem("no BEGIN line"));
    }
    if let Some(der) = certificate {
        let spki = spki_of(&CertificateDer::from(der)).map_err(|e| {
            PemProblem::Damaged(format!("its first certificate cannot be read: {e:?}"))
        })?;
        return Ok(Tlsa::dane_ee_spki_sha256(&spki));
    }
    let Some(der) = public_key else {
        return Err(PemProblem::Nothing);
    };
    let spki = rustls_pki_types::SubjectPublicKeyInfoDer::from(der.as_slice());
    webpki::RawPublicKeyEntity::try_from(&spki)
        .map_err(|e| PemProblem::Damaged(format!("its public key cannot be read: {e:?}")))?;
    Ok(Tlsa::dane_ee_spki_sha256(&der))
}

/// The DER SubjectPublicKeyInfo of `cert`: what selector 1 is about.
pub(crate) fn spki_of(cert: &CertificateDer<'_>) -> Result<Vec<u8>, webpki::Error> {
    // A trust anchor is the certificate's subject and key, read by a parser that also takes
    // version 1 certificates.
    let anchor = webpki::anchor_from_trusted_cert(cert)?;
    Ok(webpki::spki_for_anchor(&anchor).as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::PublicKeyData;

    fn relay() -> (rcgen::Certificate, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["relay.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert, key)
    }

    #[test]
    fn a_certificate_a_chain_and_a_public_key_give_the_key_s_3_1_1() {
        let (cert, key) = relay();
        let want = Tlsa::dane_ee_spki_sha256(&key.subject_public_key_info());
        assert_eq!(record_from_pem(cert.pem().as_bytes()), Ok(want.clone()));
        let (other, _) = relay();
        let chain = format!("{}{}", cert.pem(), other.pem());
        assert_eq!(
            record_from_pem(chain.as_bytes()),
            Ok(want.clone()),
            "the first"
        );
        assert_eq!(record_from_pem(key.public_key_pem().as_bytes()), Ok(want));
    }

    #[test]
    fn a_private_key_anything_else_and_damage_are_refused() {
        let (cert, key) = relay();
        let with_key = format!("{}{}", cert.pem(), key.serialize_pem());
        assert_eq!(
            record_from_pem(with_key.as_bytes()),
            Err(PemProblem::PrivateKey)
        );
        assert_eq!(
            record_from_pem(b"just text\n"),
            Err(PemProblem::NotPem("no BEGIN line"))
        );
        let cut = cert.pem().replace("-----END CERTIFICATE-----", "");
        assert!(matches!(
            record_from_pem(cut.as_bytes()),
            Err(PemProblem::NotPem(_))
        ));
        let crl = "-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n";
        assert_eq!(record_from_pem(crl.as_bytes()), Err(PemProblem::Nothing));
        let junk = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            record_from_pem(junk.as_bytes()),
            Err(PemProblem::Damaged(_))
        ));
    }

    #[test]
    fn a_file_is_named_in_each_error_and_its_bytes_never_are() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = relay();
        let path = dir.path().join("relay.pem");
        std::fs::write(&path, format!("{}{}", cert.pem(), key.serialize_pem())).unwrap();
        let e = read_key_file(&path).unwrap_err().to_string();
        assert!(e.contains("relay.pem") && e.contains("private key"), "{e}");
        assert!(!e.contains("MII") && !e.contains("BEGIN PRIVATE"), "{e}");
        let missing = read_key_file(&dir.path().join("nope.pem")).unwrap_err();
        assert!(missing.to_string().starts_with("cannot read"), "{missing}");
        assert!(matches!(
            read_key_file(dir.path()),
            Err(KeyFileError::NotAFile { .. })
        ));
        std::fs::write(&path, cert.pem()).unwrap();
        let link = dir.path().join("live.pem");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(read_key_file(&link).is_ok(), "links are followed");
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("key.pem");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(matches!(
            read_key_file(&fifo),
            Err(KeyFileError::NotAFile { .. })
        ));
    }
}
