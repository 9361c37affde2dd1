//! `[transfer]`: who may take the zone by AXFR/IXFR, with which TSIG keys, and which
//! secondaries are sent NOTIFY when it changes.
//!
//! A TSIG secret is read here once, from base64 as BIND's `tsig-keygen` prints it, and never
//! written anywhere again: not in `Debug`, not in an error (which names key and line only).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use hickory_proto::rr::Name;
use ipnet::IpNet;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::validate::{Validator, root};
use super::{Config, ConfigError};

/// The port NOTIFY goes to when an address names none.
pub(crate) const DNS_PORT: u16 = 53;

/// `[transfer]`: the zone offered to secondaries.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferConfig {
    /// Networks that may transfer the zone; a client outside them is refused. Empty (the
    /// default): nobody.
    #[serde(default)]
    pub allow: Vec<IpNet>,
    /// The keys transfers and NOTIFY are signed with; NOTIFY is signed with the first.
    #[serde(default)]
    pub tsig: Vec<TsigKeyConfig>,
    /// Secondaries told of each change by NOTIFY (RFC 1996): addresses, port optional (53).
    #[serde(default)]
    pub notify: Vec<NotifyAddress>,
    /// A transfer or a NOTIFY exchange without a valid TSIG is refused, even from `allow`.
    #[serde(default = "yes")]
    pub require_tsig: bool,
}

fn yes() -> bool {
    true
}

/// One TSIG key (RFC 8945), as `tsig-keygen` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsigKeyConfig {
    /// The key's name, the same on both sides (a domain name such as `xfr-key`).
    pub name: String,
    /// The MAC algorithm.
    #[serde(default)]
    pub algorithm: TsigAlgorithm,
    /// The shared secret, in base64.
    pub secret: TsigSecret,
}

/// The TSIG algorithms smarthostd signs and checks with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TsigAlgorithm {
    /// `hmac-sha256`: what `tsig-keygen` makes by default and every secondary supports.
    #[default]
    HmacSha256,
    /// `hmac-sha512`.
    HmacSha512,
}

impl TsigAlgorithm {
    /// The name as in config files and BIND's `key` statements.
    pub fn name(self) -> &'static str {
        match self {
            Self::HmacSha256 => "hmac-sha256",
            Self::HmacSha512 => "hmac-sha512",
        }
    }
}

impl<'de> Deserialize<'de> for TsigAlgorithm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.to_ascii_lowercase().as_str() {
            "hmac-sha256" => Ok(Self::HmacSha256),
            "hmac-sha512" => Ok(Self::HmacSha512),
            _ => Err(de::Error::custom(format!(
                "{text:?} is not supported: \"hmac-sha256\" (the default) or \"hmac-sha512\""
            ))),
        }
    }
}

/// A TSIG secret's bytes; shown as `TsigSecret(..)`.
#[derive(Clone, PartialEq, Eq)]
pub struct TsigSecret(Vec<u8>);

impl TsigSecret {
    /// The secret's bytes, for the signer only.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for TsigSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TsigSecret(..)")
    }
}

const SECRET_PROBLEM: &str =
    "must be a string of base64 (at least 16 bytes), such as `tsig-keygen` prints";

/// Reads a secret; every error names the problem and never the text.
struct SecretVisitor;

impl Visitor<'_> for SecretVisitor {
    type Value = TsigSecret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SECRET_PROBLEM)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        match data_encoding::BASE64.decode(s.trim().as_bytes()) {
            Ok(bytes) if bytes.len() >= 16 => Ok(TsigSecret(bytes)),
            _ => Err(E::custom(SECRET_PROBLEM)),
        }
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_PROBLEM))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_PROBLEM))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_PROBLEM))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_PROBLEM))
    }
}

impl<'de> Deserialize<'de> for TsigSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(SecretVisitor)
    }
}

/// A secondary's address for NOTIFY: `192.0.2.53`, `192.0.2.53:5300` or `[2001:db8::53]:53`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifyAddress(pub SocketAddr);

impl<'de> Deserialize<'de> for NotifyAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Self(addr));
        }
        match text.parse::<IpAddr>() {
            Ok(ip) => Ok(Self(SocketAddr::new(ip, DNS_PORT))),
            Err(_) => Err(de::Error::custom(format!(
                "{text:?} is not an address: an IP address, port optional (\"192.0.2.53\", \"192.0.2.53:5300\", \"[2001:db8::53]:53\")"
            ))),
        }
    }
}

/// What `check-config` says of `[transfer]`: names whose answer depends on the client (views),
/// which a secondary serves with the default view's answer to everyone, and a table that lets
/// nobody transfer or lets anyone in `allow` transfer without a key.
pub(crate) fn warnings(config: &Config) -> Vec<String> {
    let Some(t) = &config.transfer else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if !config.views.names.is_empty() {
        let default = config.views.default.as_deref().unwrap_or(super::VIEW_ALL);
        out.push(format!(
            "transfer: secondaries serve the apex and {} with the default view's answer (\"{default}\") to every client; only smarthostd itself answers them per site",
            config
                .views
                .names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if t.allow.is_empty() {
        out.push("transfer.allow is empty: every zone transfer is refused".to_string());
    }
    if !t.require_tsig {
        out.push(
            "transfer.require_tsig = false: anyone who can send from an address in transfer.allow can take the zone"
                .to_string(),
        );
    }
    out
}

impl TsigKeyConfig {
    /// The key's name as a domain name (checked by validation).
    pub fn key_name(&self) -> Name {
        let mut name = Name::from_ascii(&self.name).unwrap_or_else(|_| Name::root());
        name.set_fqdn(true);
        name.to_lowercase()
    }
}

impl Validator<'_> {
    pub(super) fn transfer(&self, config: &Config) -> Result<(), ConfigError> {
        let Some(t) = &config.transfer else {
            return Ok(());
        };
        let at = |k: &str| root().key("transfer").key(k);
        let mut names = Vec::new();
        for (i, key) in t.tsig.iter().enumerate() {
            let name = Name::from_ascii(&key.name);
            self.check(
                name.as_ref().is_ok_and(|n| !n.is_root()) && !key.name.is_empty(),
                at("tsig").index(i).key("name"),
                "not a key name: a domain name such as \"xfr-key\" or \"xfr.example.\"",
            )?;
            let name = key.key_name();
            self.check(
                !names.contains(&name),
                at("tsig").index(i).key("name"),
                format!("key {name} is listed twice"),
            )?;
            names.push(name);
        }
        self.check(
            !t.require_tsig || !t.tsig.is_empty(),
            at("require_tsig"),
            "needs at least one [[transfer.tsig]] key (or require_tsig = false)",
        )?;
        for (i, addr) in t.notify.iter().enumerate() {
            let ip = addr.0.ip();
            self.check(
                !ip.is_unspecified() && !ip.is_multicast() && addr.0.port() != 0,
                at("notify").index(i),
                format!("{} cannot be sent NOTIFY", addr.0),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "transfer_tests.rs"]
mod tests;
