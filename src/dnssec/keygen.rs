//! `smarthostd dnssec keygen`'s work: a new combined signing key (flags 257) written into the
//! key folder in BIND's format, published and active from `now`.
//!
//! The `.private` file is created with mode 0600, exclusively (`O_CREAT | O_EXCL`, which never
//! follows a symbolic link planted at its name) and written whole before the `.key` file
//! appears, so the server never sees half a pair.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use hickory_proto::rr::Name;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};

use super::key::{FLAGS_KSK, Key};
use super::keyfile::{format_private, format_public};
use super::timing::Timing;
use crate::config::KeyAlgorithm;

/// What a key generation wrote.
#[derive(Debug)]
pub struct Generated {
    /// The `.key` file.
    pub public: PathBuf,
    /// The `.private` file (mode 0600).
    pub private: PathBuf,
    /// The new key's tag.
    pub tag: u16,
}

/// Why no key was written.
#[derive(Debug, thiserror::Error)]
pub enum KeygenError {
    /// The operating system refused (the folder, an existing file).
    #[error("{path}: {error}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// The random source failed.
    #[error("cannot make a key: the system's random source failed")]
    Random,
}

/// Makes a key for `origin` with `algorithm` in `dir` (created if missing, mode 0700), with
/// Created, Publish and Activate set to `now`.
pub fn generate(
    dir: &Path,
    origin: &Name,
    algorithm: KeyAlgorithm,
    now: u64,
) -> Result<Generated, KeygenError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |error| KeygenError::Io { path, error }
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(dir))?;
    }
    let rng = SystemRandom::new();
    // A key whose tag collides with one already in the folder is thrown away for another: two
    // keys with one tag make validators try both, and their files would share a name.
    for _ in 0..16 {
        let (private_key, public_key) = material(algorithm, &rng)?;
        let timing = Timing {
            created: Some(now),
            publish: Some(now),
            activate: Some(now),
            ..Timing::default()
        };
        let key = Key::new(dir, algorithm, FLAGS_KSK, &public_key, &private_key, timing)
            .expect("fresh key material forms a pair");
        let stem = Key::file_stem(origin, algorithm.number(), key.tag);
        if dir.join(format!("{stem}.key")).exists() || dir.join(format!("{stem}.private")).exists()
        {
            continue;
        }
        return write(dir, origin, &key, &private_key);
    }
    Err(KeygenError::Io {
        path: dir.to_path_buf(),
        error: std::io::Error::other("every new key's tag was taken by a key already there"),
    })
}

/// Writes `key` (whose private half is `private_key`) as a BIND pair in `dir`: the `.private`
/// first, created exclusively with mode 0600; never through a file or link already there.
pub fn write(
    dir: &Path,
    origin: &Name,
    key: &Key,
    private_key: &[u8],
) -> Result<Generated, KeygenError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |error| KeygenError::Io { path, error }
    };
    let algorithm = key.algorithm.number();
    let stem = Key::file_stem(origin, algorithm, key.tag);
    let public = dir.join(format!("{stem}.key"));
    let private = dir.join(format!("{stem}.private"));
    let create = |path: &Path, mode: u32, text: String| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(path)
            .map_err(io(path))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io(path))
    };
    create(
        &private,
        0o600,
        format_private(algorithm, private_key, &key.timing),
    )?;
    create(
        &public,
        0o644,
        format_public(
            origin,
            key.flags,
            algorithm,
            key.public_key(),
            key.tag,
            &key.timing,
        ),
    )?;
    Ok(Generated {
        public,
        private,
        tag: key.tag,
    })
}

/// Fresh key material: (private key as BIND stores it, public key as DNSKEY carries it).
pub fn material(
    algorithm: KeyAlgorithm,
    rng: &SystemRandom,
) -> Result<(Vec<u8>, Vec<u8>), KeygenError> {
    match algorithm {
        KeyAlgorithm::EcdsaP256Sha256 => {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng)
                .map_err(|_| KeygenError::Random)?;
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), rng)
                    .map_err(|_| KeygenError::Random)?;
            let public = pair.public_key().as_ref()[1..].to_vec();
            Ok((ecdsa_scalar(pkcs8.as_ref()), public))
        }
        KeyAlgorithm::Ed25519 => {
            let mut seed = [0u8; 32];
            ring::rand::SecureRandom::fill(rng, &mut seed).map_err(|_| KeygenError::Random)?;
            let pair =
                Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| KeygenError::Random)?;
            Ok((seed.to_vec(), pair.public_key().as_ref().to_vec()))
        }
    }
}

/// The 32-byte private scalar inside ring's PKCS#8 document for a P-256 key: the OCTET STRING
/// of length 32 that follows the ECPrivateKey's version (`02 01 01 04 20`).
fn ecdsa_scalar(pkcs8: &[u8]) -> Vec<u8> {
    const MARKER: [u8; 5] = [0x02, 0x01, 0x01, 0x04, 0x20];
    let at = pkcs8
        .windows(MARKER.len())
        .position(|w| w == MARKER)
        .expect("ring's P-256 PKCS#8 holds an ECPrivateKey")
        + MARKER.len();
    pkcs8[at..at + 32].to_vec()
}
