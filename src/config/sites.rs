//! `[sites.<name>]`: each site's relays as written, and a relay's address with its interface.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use hickory_proto::rr::Name;
use ipnet::IpNet;
use serde::Deserialize;

use super::validate::{MAX_PROBE_TIMEOUT, MIN_PROBE_TIMEOUT, Validator, root};
use super::{Config, ConfigError};

/// The index of a network interface by name; 0 (no scope) when there is none.
pub fn interface_index(name: &str) -> u32 {
    nix::net::if_::if_nametoindex(name).unwrap_or(0)
}

/// `[sites.<name>]`: one site with its relays.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// The site's smart hosts, in the order answers list them.
    pub hosts: Vec<HostConfig>,
    /// Ordered fallback sites at 20, 30, ...; absent: every other site at 20.
    #[serde(default)]
    pub fallback: Option<Vec<String>>,
    /// Client networks whose queries for a shared name get this site's view.
    #[serde(default)]
    pub clients: Vec<IpNet>,
    /// Share of answers (0.0 to 0.5) that also list the first fallback site's hosts at the local
    /// preference, to keep their egress reputation warm.
    #[serde(default)]
    pub warm_share: f64,
    /// The public addresses the site's relays send from, as receivers see them: what the
    /// blocklists of `[reputation]` are asked about.
    #[serde(default)]
    pub egress: Vec<IpAddr>,
}

/// One smart host: a name in the zone, and the addresses it is reached at.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// The first label of `<host>.<site>.<origin>`.
    pub name: String,
    /// Fixed addresses; each is probed on its own. A link-local IPv6 address names its
    /// interface: `"fe80::25%eth0"`.
    #[serde(default)]
    pub addresses: Vec<RelayAddress>,
    /// A DNS name to resolve for the addresses instead (re-resolved when its TTL runs out).
    #[serde(default)]
    pub fqdn: Option<String>,
    /// SMTP port to probe; default 25.
    #[serde(default)]
    pub port: Option<u16>,
    /// Per-host probe timeout override.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Per-host STARTTLS override.
    #[serde(default)]
    pub starttls: Option<bool>,
    /// The name the relay's certificate must carry when `probe.tls_verify` is on; default: the
    /// `fqdn`, or for a host given by `addresses`, the address itself (with TLSA records: the
    /// host's name in the zone, which DANE senders send as SNI).
    #[serde(default)]
    pub tls_name: Option<String>,
    /// TLSA records that pin the relay's key or its CA, `"3 1 1 <hex>"`: probed on every probe
    /// (with STARTTLS, whatever `starttls` says), several during a key rollover.
    #[serde(default)]
    pub tlsa: Vec<crate::dane::Tlsa>,
    /// The relay's PEM certificate (or chain, or public key), relative to the config's folder,
    /// from which its `3 1 1` record is derived; read at start and on every reload.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
}

/// A relay's address as written: an IP address, with `%interface` for a link-local IPv6 one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RelayAddress {
    /// The address itself: probed, and served in the host's A/AAAA records.
    pub ip: IpAddr,
    /// The interface of a link-local address (`eth0` in `fe80::25%eth0`).
    pub interface: Option<String>,
}

impl std::str::FromStr for RelayAddress {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ip, interface) = match s.split_once('%') {
            Some((ip, interface)) => (ip, Some(interface.to_string())),
            None => (s, None),
        };
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address"))?;
        if interface.as_deref() == Some("") {
            return Err(format!("{s:?}: the interface after % is empty"));
        }
        if interface.is_some() && !ip.is_ipv6() {
            return Err(format!("{s:?}: only an IPv6 address takes an %interface"));
        }
        Ok(Self { ip, interface })
    }
}

impl std::fmt::Display for RelayAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.interface {
            Some(i) => write!(f, "{}%{i}", self.ip),
            None => write!(f, "{}", self.ip),
        }
    }
}

impl<'de> Deserialize<'de> for RelayAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The SMTP port probed when a host names none.
pub const DEFAULT_SMTP_PORT: u16 = 25;

impl Validator<'_> {
    /// Checks `[sites]`: names, hosts, addresses, probe settings and fallbacks.
    pub(super) fn sites(&self, config: &Config) -> Result<(), ConfigError> {
        self.check(
            !config.sites.is_empty(),
            root().key("sites"),
            "needs at least one site",
        )?;
        let mut site_names = HashSet::new();
        for (site_name, site) in &config.sites {
            let at = root().key("sites").key(site_name);
            self.label(site_name, at.clone(), "site name")?;
            self.check(
                site_names.insert(site_name.to_ascii_lowercase()),
                at.clone(),
                "another site has the same name in other letter case",
            )?;
            self.check(
                !site.hosts.is_empty(),
                at.clone().key("hosts"),
                "needs at least one host",
            )?;
            let mut host_names = HashSet::new();
            for (i, host) in site.hosts.iter().enumerate() {
                let host_at = at.clone().key("hosts").index(i);
                self.label(&host.name, host_at.clone().key("name"), "host name")?;
                self.check(
                    host_names.insert(host.name.to_ascii_lowercase()),
                    host_at.clone().key("name"),
                    format!("duplicate host \"{}\" in site \"{site_name}\"", host.name),
                )?;
                match (&host.fqdn, host.addresses.is_empty()) {
                    (None, true) => {
                        return Err(self.error(host_at, "needs `addresses` or `fqdn`"));
                    }
                    (Some(_), false) => {
                        return Err(self.error(
                            host_at.key("fqdn"),
                            "give either `addresses` or `fqdn`, not both",
                        ));
                    }
                    (Some(fqdn), true) => {
                        self.check(
                            fqdn.parse::<std::net::IpAddr>().is_err(),
                            host_at.clone().key("fqdn"),
                            format!("{fqdn} is an IP address, which never resolves: give it in `addresses`"),
                        )?;
                        self.check(
                            Name::from_ascii(fqdn).is_ok_and(|n| n.num_labels() >= 1),
                            host_at.clone().key("fqdn"),
                            "not a domain name",
                        )?;
                    }
                    (None, false) => {}
                }
                let mut addresses = HashSet::new();
                for (j, addr) in host.addresses.iter().enumerate() {
                    let here = host_at.clone().key("addresses").index(j);
                    self.check(
                        addresses.insert(addr.ip),
                        here.clone(),
                        format!("{} is listed twice", addr.ip),
                    )?;
                    self.check(
                        !addr.ip.is_unspecified() && !addr.ip.is_multicast(),
                        here.clone(),
                        format!("{addr} cannot be a relay's address"),
                    )?;
                    let link_local =
                        matches!(addr.ip, std::net::IpAddr::V6(v6) if v6.is_unicast_link_local());
                    match (&addr.interface, link_local) {
                        (None, true) => {
                            return Err(self.error(
                                here,
                                format!(
                                    "{addr} is link-local: name its interface, e.g. \"{addr}%eth0\""
                                ),
                            ));
                        }
                        (Some(_), false) => {
                            return Err(self.error(
                                here,
                                format!("{addr}: only a link-local address (fe80::/10) takes an %interface"),
                            ));
                        }
                        (Some(interface), true) => self.check(
                            super::interface_index(interface) != 0,
                            here,
                            format!("{addr}: this machine has no interface {interface}"),
                        )?,
                        (None, false) => {}
                    }
                }
                if let Some(name) = &host.tls_name {
                    self.check(
                        rustls_pki_types::ServerName::try_from(name.as_str()).is_ok()
                            && name.parse::<std::net::IpAddr>().is_err()
                            && Name::from_ascii(name).is_ok(),
                        host_at.clone().key("tls_name"),
                        "not a host name",
                    )?;
                }
                if let Some(port) = host.port {
                    self.check(port != 0, host_at.clone().key("port"), "must be 1 to 65535")?;
                }
                if let Some(t) = host.timeout {
                    self.check(
                        (MIN_PROBE_TIMEOUT..=MAX_PROBE_TIMEOUT).contains(&t),
                        host_at.key("timeout"),
                        format!(
                            "must be {} to {}",
                            humantime::format_duration(MIN_PROBE_TIMEOUT),
                            humantime::format_duration(MAX_PROBE_TIMEOUT)
                        ),
                    )?;
                }
            }
            self.fallback(config, site_name)?;
            self.check(
                (0.0..=0.5).contains(&site.warm_share),
                at.clone().key("warm_share"),
                format!("{} is out of range 0.0 to 0.5", site.warm_share),
            )?;
            if site.warm_share > 0.0 {
                self.check(
                    first_fallback(config, site_name).is_some(),
                    at.key("warm_share"),
                    "needs a fallback site to keep warm",
                )?;
            }
        }
        Ok(())
    }

    fn fallback(&self, config: &Config, site_name: &str) -> Result<(), ConfigError> {
        let Some(fallback) = &config.sites[site_name].fallback else {
            return Ok(());
        };
        let at = root().key("sites").key(site_name).key("fallback");
        let zone = &config.zone;
        let last = u32::from(zone.fallback_preference)
            + u32::from(zone.fallback_step) * (fallback.len().saturating_sub(1) as u32);
        self.check(
            last <= u32::from(u16::MAX),
            at.clone(),
            "too many fallback sites for the preference range",
        )?;
        let mut seen = HashSet::new();
        for (i, other) in fallback.iter().enumerate() {
            let known: Vec<&str> = config.sites.keys().map(String::as_str).collect();
            self.check(
                config.sites.contains_key(other.as_str()),
                at.clone().index(i),
                format!("unknown site \"{other}\" (sites are: {})", known.join(", ")),
            )?;
            self.check(
                other != site_name,
                at.clone().index(i),
                "a site cannot be its own fallback",
            )?;
            self.check(
                seen.insert(other),
                at.clone().index(i),
                format!("\"{other}\" is listed twice"),
            )?;
        }
        Ok(())
    }
}

/// The first fallback site of `site_name`: its first `fallback` entry, or with no list, the
/// first other site in file order.
pub(super) fn first_fallback<'c>(config: &'c Config, site_name: &str) -> Option<&'c str> {
    match &config.sites[site_name].fallback {
        Some(list) => list.first().map(String::as_str),
        None => config
            .sites
            .keys()
            .map(String::as_str)
            .find(|s| *s != site_name),
    }
}
