//! `[dnssec]`: where the zone's signing keys are, how long signatures last and when they are
//! made again. Without the table the zone is served unsigned.
//!
//! The keys themselves are read by [`crate::dnssec`]; this file only checks the table.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::validate::{Validator, root};
use super::{Config, ConfigError};

/// The shortest `signature_validity`: signatures are made when answers are built, and a
/// validity shorter than an hour leaves too little room for clock skew and cached answers.
pub(crate) const MIN_VALIDITY: Duration = Duration::from_secs(3600);
/// The shortest `signature_refresh`: a signature must stay valid for a while after it is
/// served, longer than any validator's clock is plausibly ahead.
pub(crate) const MIN_REFRESH: Duration = Duration::from_secs(15 * 60);
/// The longest `signature_validity` (RRSIG times are 32-bit serial numbers: RFC 4034 section
/// 3.1.5 keeps them within 68 years; a year is already far more than anyone needs).
pub(crate) const MAX_VALIDITY: Duration = Duration::from_secs(365 * 86400);

/// `[dnssec]`: the zone is signed with the keys in `key_dir`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnssecConfig {
    /// Folder of the key pairs in BIND's format (`K<origin>.+<alg>+<tag>.key` and `.private`),
    /// relative to the config file's folder.
    pub key_dir: PathBuf,
    /// How long a signature is valid from when it is made (its inception is an hour earlier,
    /// for validators whose clock is behind).
    #[serde(default = "default_validity", with = "humantime_serde")]
    pub signature_validity: Duration,
    /// A signature is made again when less than this is left of its validity; default: half of
    /// `signature_validity`.
    #[serde(default, with = "humantime_serde")]
    pub signature_refresh: Option<Duration>,
    /// The algorithm `smarthostd dnssec keygen` makes keys with.
    #[serde(default)]
    pub algorithm: KeyAlgorithm,
}

fn default_validity() -> Duration {
    Duration::from_secs(14 * 86400)
}

/// The DNSSEC algorithms smarthostd signs with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// 13, ECDSA P-256 with SHA-256: every validator supports it (RFC 8624: MUST).
    #[default]
    EcdsaP256Sha256,
    /// 15, Ed25519 (RFC 8080): smaller, faster, supported by current validators.
    Ed25519,
}

impl KeyAlgorithm {
    /// The DNSSEC algorithm number.
    pub fn number(self) -> u8 {
        match self {
            Self::EcdsaP256Sha256 => 13,
            Self::Ed25519 => 15,
        }
    }

    /// The algorithm of `number`, if smarthostd signs with it.
    pub fn from_number(number: u8) -> Option<Self> {
        match number {
            13 => Some(Self::EcdsaP256Sha256),
            15 => Some(Self::Ed25519),
            _ => None,
        }
    }

    /// The mnemonic BIND's files and tools use.
    pub fn mnemonic(self) -> &'static str {
        match self {
            Self::EcdsaP256Sha256 => "ECDSAP256SHA256",
            Self::Ed25519 => "ED25519",
        }
    }
}

impl<'de> Deserialize<'de> for KeyAlgorithm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.to_ascii_uppercase().as_str() {
            "ECDSAP256SHA256" | "13" => Ok(Self::EcdsaP256Sha256),
            "ED25519" | "15" => Ok(Self::Ed25519),
            _ => Err(serde::de::Error::custom(format!(
                "{text:?} is not supported: \"ECDSAP256SHA256\" (13) or \"ED25519\" (15)"
            ))),
        }
    }
}

impl DnssecConfig {
    /// The key folder, resolved against the folder of the config at `config_path`.
    pub fn key_dir_path(&self, config_path: &Path) -> PathBuf {
        match config_path.parent() {
            Some(dir) if self.key_dir.is_relative() => dir.join(&self.key_dir),
            _ => self.key_dir.clone(),
        }
    }

    /// When a signature is made again: this much before it expires.
    pub fn refresh(&self) -> Duration {
        self.signature_refresh
            .unwrap_or(self.signature_validity / 2)
    }
}

impl Validator<'_> {
    pub(super) fn dnssec(&self, config: &Config) -> Result<(), ConfigError> {
        let Some(d) = &config.dnssec else {
            return Ok(());
        };
        let at = |k: &str| root().key("dnssec").key(k);
        self.check(
            !d.key_dir.as_os_str().is_empty(),
            at("key_dir"),
            "must name a folder",
        )?;
        self.check(
            (MIN_VALIDITY..=MAX_VALIDITY).contains(&d.signature_validity),
            at("signature_validity"),
            "must be 1h to 365d",
        )?;
        let refresh = d.refresh();
        let key = if d.signature_refresh.is_some() {
            "signature_refresh"
        } else {
            "signature_validity"
        };
        self.check(
            refresh >= MIN_REFRESH,
            at(key),
            format!(
                "signature_refresh must be at least {}: a signature must stay valid a while after it is served",
                humantime::format_duration(MIN_REFRESH)
            ),
        )?;
        self.check(
            refresh < d.signature_validity,
            at(key),
            "signature_refresh must be shorter than signature_validity, or every signature is made again at once",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::config_from;

    const BASE: &str = "[zone]\norigin = \"smarthost.internal\"\nfile = \"z.zone\"\n\
        [sites.a]\nhosts = [ { name = \"m\", addresses = [\"192.0.2.1\"] } ]\n";

    fn parse(dnssec: &str) -> Result<crate::config::Config, crate::config::ConfigError> {
        crate::config::parse(
            std::path::Path::new("/etc/smarthostd/test.toml"),
            &format!("{BASE}[dnssec]\n{dnssec}\n"),
        )
    }

    #[test]
    fn defaults_are_knots_two_weeks_refreshed_at_half() {
        let c = config_from(&format!("{BASE}[dnssec]\nkey_dir = \"keys\"\n"));
        let d = c.dnssec.unwrap();
        assert_eq!(d.signature_validity.as_secs(), 14 * 86400);
        assert_eq!(d.refresh().as_secs(), 7 * 86400);
        assert_eq!(d.algorithm.number(), 13);
        assert_eq!(
            d.key_dir_path(std::path::Path::new("/etc/smarthostd/x.toml")),
            std::path::Path::new("/etc/smarthostd/keys")
        );
        assert!(config_from(BASE).dnssec.is_none(), "no table: unsigned");
    }

    #[test]
    fn bad_values_are_named_with_their_line() {
        let e = parse("key_dir = \"k\"\nsignature_validity = \"30m\"").unwrap_err();
        assert_eq!(e.key, "dnssec.signature_validity");
        assert_eq!(e.position.map(|p| p.0), Some(8), "{e}");
        assert!(e.message.contains("1h to 365d"), "{e}");
        let e = parse("key_dir = \"k\"\nsignature_refresh = \"14d\"").unwrap_err();
        assert!(e.message.contains("shorter than signature_validity"), "{e}");
        let e = parse("key_dir = \"k\"\nsignature_refresh = \"1m\"").unwrap_err();
        assert!(e.message.contains("at least 15m"), "{e}");
        let e = parse("key_dir = \"k\"\nalgorithm = \"RSASHA256\"").unwrap_err();
        assert!(e.message.contains("ED25519"), "{e}");
        let e = parse("key_dir = \"k\"\nnsec3 = true").unwrap_err();
        assert!(e.message.contains("unknown field"), "{e}");
        let ok = parse("key_dir = \"k\"\nalgorithm = \"ed25519\"\nsignature_validity = \"1h\"\nsignature_refresh = \"20m\"").unwrap();
        assert_eq!(ok.dnssec.unwrap().algorithm.number(), 15);
    }
}
