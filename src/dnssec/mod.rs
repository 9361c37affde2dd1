//! DNSSEC: the zone's keys and the signatures made with them.
//!
//! - [`timing`]: BIND's key timing metadata and what it means at a given time.
//! - [`keyfile`]: BIND's `.key` and `.private` formats, read and written.
//! - [`key`]: one key (DNSKEY data, ring key pair, timing); `Debug` never shows the private key.
//! - [`keyset`]: every key in `key_dir`, checked; which are published and which sign when.
//! - [`keygen`]: a new combined key, written as `dnssec-keygen` would.
//! - [`anchors`]: DS records and trust anchors for `smarthostd dnssec ds`.
//! - [`canonical`]: canonical name order, label counts, NSEC type bitmaps.
//! - [`sign`]: signing RRsets through a cache that keeps signatures from build to build.
//! - [`verify`]: a response checked as a validator would (the tests' common check).
//!
//! Keys are read with the config (a bad key is a config error naming its file); signatures are
//! made when a generation of answers is built (`answer::build`), never per query.

pub(crate) mod anchors;
pub(crate) mod canonical;
pub(crate) mod key;
pub(crate) mod keyfile;
pub mod keygen;
pub(crate) mod keyset;
pub(crate) mod sign;
pub(crate) mod timing;
pub mod verify;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::rr::Name;

pub use key::Key;
pub use keyset::KeySet;
pub use sign::{Lifetime, SignatureCache, Signer};

use crate::config::{Config, ConfigError};

/// What signing needs from the configuration: the keys and the signatures' lifetime.
#[derive(Debug)]
pub struct ZoneKeys {
    /// The keys read from `key_dir`.
    pub keys: KeySet,
    /// `signature_validity` and `signature_refresh`, in seconds.
    pub lifetime: Lifetime,
    /// The key folder, resolved.
    pub dir: PathBuf,
}

/// Reads the keys `[dnssec]` names; `None` without the table (the zone is served unsigned).
pub fn load(config: &Config, origin: &Name) -> Result<Option<ZoneKeys>, ConfigError> {
    let Some(d) = &config.dnssec else {
        return Ok(None);
    };
    let dir = d.key_dir_path(&config.path);
    let keys = KeySet::load(&dir, origin)?;
    Ok(Some(ZoneKeys {
        keys,
        lifetime: Lifetime {
            validity: d.signature_validity.as_secs(),
            refresh: d.refresh().as_secs(),
        },
        dir,
    }))
}

/// Seconds since the epoch of `t` (0 before it).
pub fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
