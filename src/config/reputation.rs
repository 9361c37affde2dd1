//! `[reputation]` and `sites.<name>.egress`: which DNS blocklists the sites' sending addresses
//! are looked up in, how often, through which resolver, and what a listing does to the answers.
//!
//! The checks name file, line and key path like every other; [`warnings`] are the things
//! `check-config` and the server's start say without refusing the file (egress addresses that
//! nothing checks, a missing resolver, a private address).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::rr::Name;
use ipnet::Ipv4Net;
use serde::{Deserialize, Deserializer};

use super::locate::KeyPath;
use super::validate::{Validator, root};
use super::{Config, ConfigError};

/// Answers that are a list's error codes, never a listing: 127.255.255.0/24 (Spamhaus:
/// .252 a typing error in the zone name, .254 a query through a public resolver, .255 too many
/// queries), and 127.0.0.1, which RFC 5782 (section 2.1) forbids a list to contain and which
/// lists that shut down answer to every query ("listing the world").
pub(crate) const ERROR_CODES: [Ipv4Net; 2] = [
    Ipv4Net::new_assert(Ipv4Addr::new(127, 255, 255, 0), 24),
    Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 1), 32),
];

/// The shortest interval between two checks of an address: short enough for tests, while the
/// default keeps well inside every list's free-use query volume.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The shortest wait for one blocklist answer (`reputation.timeout`).
pub(crate) const MIN_TIMEOUT: Duration = Duration::from_millis(100);
/// The longest wait for one blocklist answer (`reputation.timeout`).
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest reversed address in a query name: 32 nibbles and their dots.
const LONGEST_REVERSED: usize = 64;

/// `[reputation]`: DNS blocklist checks of every site's egress addresses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReputationConfig {
    /// The blocklist zones each egress address is looked up in.
    pub lists: Vec<ListConfig>,
    /// Time between two checks of one address on one list (±10 % jitter). Lists count queries
    /// against free-use limits, and listings change over hours, not seconds.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Bound on one lookup; a lookup that runs out keeps the last verdict.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// The resolvers to ask; default: the system resolver. Lists refuse queries that reach them
    /// through public resolvers, so this is usually the organisation's own recursive resolver.
    pub resolver: Vec<SocketAddr>,
    /// What a listing does: `warn` (log, metrics, status) or `demote` (also move the listed
    /// site's relays behind clean sites in the answers).
    pub action: Action,
    /// How long a delisted site stays demoted before it leads again: lists delist and relist
    /// an address that still sends what got it listed, and answers should not flap with them.
    #[serde(with = "humantime_serde")]
    pub hold: Duration,
}

impl Default for ReputationConfig {
    fn default() -> Self {
        Self {
            lists: Vec::new(),
            interval: Duration::from_secs(15 * 60),
            timeout: Duration::from_secs(5),
            resolver: Vec::new(),
            action: Action::Warn,
            hold: Duration::from_secs(3600),
        }
    }
}

/// What a listing of a site's egress address does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A WARN line, metrics and status; the answers do not change.
    #[default]
    Warn,
    /// As `warn`, and the listed site's relays move behind every clean site in the answers.
    Demote,
}

/// One blocklist: `{ zone = "zen.spamhaus.org", name = "zen", listed = ["127.0.0.2/31"] }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListConfig {
    /// The zone the reversed address is looked up under.
    pub zone: String,
    /// The list's name in logs, metrics and status; default: the zone.
    #[serde(default)]
    pub name: Option<String>,
    /// The answers that mean "listed"; any other answer, and any of the [`ERROR_CODES`], is a
    /// list error. Addresses are taken as /32.
    #[serde(default = "default_listed", deserialize_with = "networks")]
    pub listed: Vec<Ipv4Net>,
}

impl ListConfig {
    /// The name logs, metrics and status use.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.zone)
    }
}

fn default_listed() -> Vec<Ipv4Net> {
    vec![Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8)]
}

/// IPv4 networks, where a bare address is its /32.
fn networks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Ipv4Net>, D::Error> {
    let texts = Vec::<String>::deserialize(d)?;
    texts
        .iter()
        .map(|t| {
            t.parse::<Ipv4Net>()
                .or_else(|_| t.parse::<Ipv4Addr>().map(Ipv4Net::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "{t:?} is not an IPv4 network or address: lists answer with A records such as 127.0.0.2"
                    ))
                })
        })
        .collect()
}

impl Validator<'_> {
    /// `sites.*.egress` and `[reputation]`.
    pub(super) fn reputation(&self, config: &Config) -> Result<(), ConfigError> {
        self.egress(config)?;
        let Some(r) = &config.reputation else {
            return Ok(());
        };
        let at = |k: &str| root().key("reputation").key(k);
        self.check(
            r.interval >= MIN_INTERVAL,
            at("interval"),
            format!(
                "must be at least {}",
                humantime::format_duration(MIN_INTERVAL)
            ),
        )?;
        self.check(
            (MIN_TIMEOUT..=MAX_TIMEOUT).contains(&r.timeout),
            at("timeout"),
            format!(
                "must be {} to {}",
                humantime::format_duration(MIN_TIMEOUT),
                humantime::format_duration(MAX_TIMEOUT)
            ),
        )?;
        self.check(
            r.action != Action::Demote || !r.lists.is_empty(),
            at("action"),
            "\"demote\" needs at least one list in reputation.lists",
        )?;
        for (i, addr) in r.resolver.iter().enumerate() {
            let here = at("resolver").index(i);
            self.check(
                !addr.ip().is_unspecified() && addr.port() != 0,
                here.clone(),
                format!("{addr} is not a resolver's address: give an address and port such as \"10.0.0.53:53\""),
            )?;
            self.check(
                !r.resolver[..i].contains(addr),
                here,
                format!("{addr} is listed twice"),
            )?;
        }
        let mut names: Vec<String> = Vec::new();
        let mut zones: Vec<Name> = Vec::new();
        for (i, list) in r.lists.iter().enumerate() {
            let here = at("lists").index(i);
            let zone = self.list_zone(&list.zone, here.clone().key("zone"))?;
            self.check(
                !zones.contains(&zone),
                here.clone().key("zone"),
                format!("{zone} is listed twice"),
            )?;
            zones.push(zone);
            if let Some(name) = &list.name {
                self.check(
                    !name.is_empty()
                        && name.len() <= 63
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
                    here.clone().key("name"),
                    "must be 1 to 63 letters, digits, dots, hyphens or underscores (it is a metric label)",
                )?;
            }
            let label = list.label().to_ascii_lowercase();
            self.check(
                !names.contains(&label),
                here.clone()
                    .key(if list.name.is_some() { "name" } else { "zone" }),
                format!("another list is also called {label:?}: give each a distinct `name`"),
            )?;
            names.push(label);
            self.check(
                !list.listed.is_empty(),
                here.clone().key("listed"),
                "needs at least one network, or leave it out for 127.0.0.0/8",
            )?;
            for (j, net) in list.listed.iter().enumerate() {
                self.check(
                    !ERROR_CODES.iter().any(|e| e.contains(net)),
                    here.clone().key("listed").index(j),
                    format!("{net} holds only error codes (127.255.255.0/24, 127.0.0.1), which never mean listed"),
                )?;
            }
        }
        Ok(())
    }

    /// A list's zone: a domain name whose query names fit in 255 bytes.
    fn list_zone(&self, text: &str, here: KeyPath) -> Result<Name, ConfigError> {
        let trimmed = text.trim_end_matches('.');
        self.check(!trimmed.is_empty(), here.clone(), "must not be empty")?;
        self.check(
            trimmed.parse::<IpAddr>().is_err(),
            here.clone(),
            "is an IP address: give the list's zone, such as \"zen.spamhaus.org\"",
        )?;
        let name = Name::from_ascii(format!("{trimmed}."))
            .map_err(|e| self.error(here.clone(), format!("not a domain name: {e}")))?;
        self.check(
            name.num_labels() >= 2,
            here.clone(),
            "a blocklist zone has at least two labels, such as \"bl.example.org\"",
        )?;
        self.check(
            name.len() + LONGEST_REVERSED <= 255,
            here,
            "too long: an IPv6 address's 32 nibbles must fit in front of it in a 255-byte name",
        )?;
        Ok(name.to_lowercase())
    }

    fn egress(&self, config: &Config) -> Result<(), ConfigError> {
        for (site_name, site) in &config.sites {
            for (i, addr) in site.egress.iter().enumerate() {
                let here = root().key("sites").key(site_name).key("egress").index(i);
                let broadcast = *addr == IpAddr::V4(Ipv4Addr::BROADCAST);
                self.check(
                    !addr.is_unspecified() && !addr.is_multicast() && !broadcast,
                    here.clone(),
                    format!("{addr} cannot be an address mail is sent from"),
                )?;
                self.check(
                    !site.egress[..i].contains(addr),
                    here,
                    format!("{addr} is listed twice"),
                )?;
            }
        }
        Ok(())
    }
}

/// What `check-config` and the server's start say about blocklist checks without refusing the
/// config: what would leave egress addresses unchecked, and addresses no list can name.
pub(crate) fn warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let with_egress: Vec<&str> = config
        .sites
        .iter()
        .filter(|(_, s)| !s.egress.is_empty())
        .map(|(n, _)| n.as_str())
        .collect();
    match &config.reputation {
        None if !with_egress.is_empty() => out.push(format!(
            "sites {} have egress addresses but there is no [reputation] table: no blocklist is checked",
            with_egress.join(", ")
        )),
        None => {}
        Some(_) if with_egress.is_empty() => out.push(
            "[reputation] is set but no site has egress addresses (sites.<name>.egress): nothing is checked"
                .into(),
        ),
        Some(r) if r.lists.is_empty() => {
            out.push("reputation.lists is empty: nothing is checked".into())
        }
        Some(r) if r.resolver.is_empty() => out.push(
            "reputation.resolver is not set: the system resolver is asked; lists refuse queries that reach them through public resolvers (Spamhaus answers 127.255.255.254)"
                .into(),
        ),
        Some(_) => {}
    }
    for (site_name, site) in &config.sites {
        for addr in &site.egress {
            if !is_public(*addr) {
                out.push(format!(
                    "sites.{site_name}.egress: {addr} is not a public address; blocklists list the address receivers see (127.0.0.2 is the test entry every list carries)"
                ));
            }
        }
    }
    out
}

/// Whether receivers on the internet could see mail come from `addr`.
fn is_public(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => {
            let shared = Ipv4Net::new_assert(Ipv4Addr::new(100, 64, 0, 0), 10);
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_documentation()
                || shared.contains(&v4))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unicast_link_local()
                || first & 0xfe00 == 0xfc00
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

#[cfg(test)]
#[path = "reputation_tests.rs"]
mod tests;
