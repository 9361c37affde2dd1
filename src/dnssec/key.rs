//! One signing key: the DNSKEY record it publishes, the ring key pair that signs, and its
//! timing. Made from a `.key`/`.private` pair (checked against each other and the file name) or
//! from fresh key material (`keygen`).
//!
//! `Debug` is written by hand: the private key never reaches a log, an error or a status page.

use std::path::{Path, PathBuf};

use hickory_proto::dnssec::crypto::{EcdsaSigningKey, Ed25519SigningKey};
use hickory_proto::dnssec::rdata::DNSKEY;
use hickory_proto::dnssec::{Algorithm, PublicKeyBuf, SigningKey, TBS};
use hickory_proto::rr::Name;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};

use super::keyfile::{FileProblem, PrivateFile, PublicFile, algorithm_name};
use super::timing::Timing;
use crate::config::KeyAlgorithm;

/// The DNSKEY flags of a zone-signing key.
pub(crate) const FLAGS_ZSK: u16 = 256;
/// The DNSKEY flags of a key-signing (secure entry point) key; used alone, it signs everything.
pub(crate) const FLAGS_KSK: u16 = 257;

/// A zone key that can sign.
pub struct Key {
    /// The `.key` file it was read from (or written to).
    pub file: PathBuf,
    /// Its algorithm.
    pub algorithm: KeyAlgorithm,
    /// [`FLAGS_KSK`] or [`FLAGS_ZSK`].
    pub flags: u16,
    /// Its key tag (RFC 4034 appendix B).
    pub tag: u16,
    /// The DNSKEY record's data in wire form: flags, protocol, algorithm, public key.
    pub dnskey: Box<[u8]>,
    /// When it is published and when it signs.
    pub timing: Timing,
    /// Tells keys apart in the signature cache: its DNSKEY data, hashed.
    pub id: u64,
    signer: Box<dyn SigningKey>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("file", &self.file)
            .field("algorithm", &self.algorithm.mnemonic())
            .field("flags", &self.flags)
            .field("tag", &self.tag)
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// Checks a parsed `.key` and `.private` pair against each other and makes the key.
    /// Problems are reported against the `.key` file unless the `.private` one is to blame
    /// (the bool in the error: `true` for the `.private` file).
    pub fn from_files(
        file: &Path,
        public: &PublicFile,
        private: &PrivateFile,
    ) -> Result<Self, (bool, FileProblem)> {
        let at_key = |m: String| {
            (
                false,
                FileProblem {
                    line: Some(public.line),
                    message: m,
                },
            )
        };
        let Some(algorithm) = KeyAlgorithm::from_number(public.algorithm) else {
            return Err(at_key(format!(
                "algorithm {} ({}) is not supported: use 13 (ECDSAP256SHA256) or 15 (ED25519)",
                public.algorithm,
                algorithm_name(public.algorithm)
            )));
        };
        if private.algorithm != public.algorithm {
            return Err((
                true,
                FileProblem {
                    line: None,
                    message: format!(
                        "its Algorithm is {}, the .key file's is {}: not a pair",
                        private.algorithm, public.algorithm
                    ),
                },
            ));
        }
        if public.protocol != 3 {
            return Err(at_key("the protocol field must be 3 (RFC 4034)".into()));
        }
        if public.flags != FLAGS_KSK && public.flags != FLAGS_ZSK {
            return Err(at_key(format!(
                "flags {} are not supported: 257 (key-signing) or 256 (zone-signing)",
                public.flags
            )));
        }
        let key = Self::new(
            file,
            algorithm,
            public.flags,
            &public.public_key,
            &private.private_key,
            public.timing.overridden_by(&private.timing),
        );
        key.map_err(|m| {
            (
                true,
                FileProblem {
                    line: None,
                    message: m,
                },
            )
        })
    }

    /// Makes a key from its material; the error says what does not fit (never the key).
    pub fn new(
        file: &Path,
        algorithm: KeyAlgorithm,
        flags: u16,
        public_key: &[u8],
        private_key: &[u8],
        timing: Timing,
    ) -> Result<Self, String> {
        let mismatch = "the private key does not belong to the public key in the .key file";
        let signer: Box<dyn SigningKey> = match algorithm {
            KeyAlgorithm::EcdsaP256Sha256 => {
                if public_key.len() != 64 || private_key.len() != 32 {
                    return Err(format!(
                        "an ECDSA P-256 key is 32 bytes and its public key 64; found {} and {}",
                        private_key.len(),
                        public_key.len()
                    ));
                }
                let mut uncompressed = Vec::with_capacity(65);
                uncompressed.push(4);
                uncompressed.extend_from_slice(public_key);
                let pair = EcdsaKeyPair::from_private_key_and_public_key(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    private_key,
                    &uncompressed,
                    &SystemRandom::new(),
                )
                .map_err(|_| mismatch.to_string())?;
                Box::new(EcdsaSigningKey::from_ecdsa(
                    pair,
                    Algorithm::ECDSAP256SHA256,
                ))
            }
            KeyAlgorithm::Ed25519 => {
                if public_key.len() != 32 || private_key.len() != 32 {
                    return Err(format!(
                        "an Ed25519 key and its public key are 32 bytes each; found {} and {}",
                        private_key.len(),
                        public_key.len()
                    ));
                }
                let pair = Ed25519KeyPair::from_seed_and_public_key(private_key, public_key)
                    .map_err(|_| mismatch.to_string())?;
                Box::new(Ed25519SigningKey::from_ed25519(pair))
            }
        };
        let mut dnskey = Vec::with_capacity(4 + public_key.len());
        dnskey.extend_from_slice(&flags.to_be_bytes());
        dnskey.push(3);
        dnskey.push(algorithm.number());
        dnskey.extend_from_slice(public_key);
        let tag = DNSKEY::calculate_key_tag_internal(&dnskey);
        let id = {
            use std::hash::{BuildHasher, BuildHasherDefault};
            BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .hash_one(&dnskey)
        };
        Ok(Self {
            file: file.to_path_buf(),
            algorithm,
            flags,
            tag,
            dnskey: dnskey.into(),
            timing,
            id,
            signer,
        })
    }

    /// Whether it has the secure entry point bit: the key a parent's DS or a trust anchor names.
    pub fn is_ksk(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The public key, as the DNSKEY record carries it.
    pub fn public_key(&self) -> &[u8] {
        &self.dnskey[4..]
    }

    /// The DNSKEY record data, as hickory-proto models it.
    pub fn dnskey_rdata(&self) -> DNSKEY {
        DNSKEY::with_flags(
            self.flags,
            PublicKeyBuf::new(self.public_key().to_vec(), self.algorithm_id()),
        )
    }

    /// hickory-proto's name for the algorithm.
    pub fn algorithm_id(&self) -> Algorithm {
        Algorithm::from_u8(self.algorithm.number())
    }

    /// Signs `data` (RFC 4034 section 3.1.8.1: RRSIG data without its signature, then the
    /// RRset in canonical form).
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        self.signer
            .sign(&TBS::from(data))
            .expect("ring signs any message with a key it accepted")
    }

    /// The name of its key files: `K<origin>+<alg>+<tag>`.
    pub fn file_stem(origin: &Name, algorithm: u8, tag: u16) -> String {
        format!("K{}+{algorithm:03}+{tag:05}", origin.to_ascii())
    }
}

/// The origin, algorithm and tag a key file's name gives (`Ksmarthost.internal.+013+10037`).
pub(crate) fn parse_stem(stem: &str) -> Option<(String, u8, u16)> {
    let rest = stem.strip_prefix('K')?;
    let (rest, tag) = rest.rsplit_once('+')?;
    let (origin, algorithm) = rest.rsplit_once('+')?;
    if origin.is_empty() || algorithm.len() != 3 || tag.len() != 5 {
        return None;
    }
    Some((
        origin.to_string(),
        algorithm.parse().ok()?,
        tag.parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_names_give_origin_algorithm_and_tag() {
        assert_eq!(
            parse_stem("Ksmarthost.internal.+013+10037"),
            Some(("smarthost.internal.".into(), 13, 10037))
        );
        assert_eq!(parse_stem("Kx.+13+10037"), None);
        assert_eq!(parse_stem("x.+013+10037"), None);
        let origin = Name::from_ascii("smarthost.internal.").unwrap();
        assert_eq!(
            Key::file_stem(&origin, 15, 7),
            "Ksmarthost.internal.+015+00007"
        );
    }
}
