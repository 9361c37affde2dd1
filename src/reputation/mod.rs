//! Blocklist checks of the sites' egress addresses (`[reputation]`): the lookups, and the
//! verdicts they lead to. The health task owns the verdicts and decides what they do to the
//! answers; this module only asks and keeps the book.
//!
//! - [`query`]: the query name of an address on a list, and what an answer code means (pure).
//! - [`lookup`]: one lookup through the configured resolver (hickory-resolver).
//! - [`checker`]: rounds of lookups on the probe runtime, with a concurrency bound of their
//!   own, each result sent on a channel to the health task: no probe or answer waits for them.
//! - [`book`]: the verdicts, each site's standing, and the hold after a delisting (pure).

pub(crate) mod book;
pub(crate) mod checker;
pub(crate) mod lookup;
pub(crate) mod query;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::rr::Name;
use ipnet::Ipv4Net;

use crate::config::Config;

/// One blocklist, as the checks use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct List {
    /// The name in logs, metrics and status.
    pub name: Arc<str>,
    /// The zone, fully qualified, lower case.
    pub zone: Name,
    /// The answers that mean "listed".
    pub listed: Vec<Ipv4Net>,
}

/// What the checks of one configuration look up, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Watch {
    /// The lists to ask.
    pub lists: Vec<List>,
    /// Every egress address of every site, each once (sites may share one).
    pub addresses: Vec<IpAddr>,
    /// Between two lookups of one address on one list (`reputation.interval`, ±10 %).
    pub interval: Duration,
    /// Bound on each lookup (`reputation.timeout`).
    pub timeout: Duration,
    /// Empty: the system resolver.
    pub resolver: Vec<SocketAddr>,
}

impl Watch {
    /// The checks `config` asks for; `None` when there is nothing to look up.
    pub(crate) fn from_config(config: &Config) -> Option<Self> {
        let r = config.reputation.as_ref()?;
        let mut addresses: Vec<IpAddr> = Vec::new();
        for addr in config.sites.values().flat_map(|s| &s.egress) {
            let addr = canonical(*addr);
            if !addresses.contains(&addr) {
                addresses.push(addr);
            }
        }
        let lists: Vec<List> = r
            .lists
            .iter()
            .filter_map(|l| {
                Some(List {
                    name: l.label().into(),
                    zone: crate::wire::fqdn(&l.zone).ok()?,
                    listed: l.listed.clone(),
                })
            })
            .collect();
        (!addresses.is_empty() && !lists.is_empty()).then(|| Self {
            lists,
            addresses,
            interval: r.interval,
            timeout: r.timeout,
            resolver: r.resolver.clone(),
        })
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address lists know it by.
pub(crate) fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// What one lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// An answer in the list's `listed` networks, with the list's TXT record when it has one.
    Listed {
        /// The list's answer code, an address in its `listed` networks (e.g. 127.0.0.2).
        code: Ipv4Addr,
        /// The list's TXT record at the same name, when it has one.
        reason: Option<String>,
    },
    /// NXDOMAIN (or no A record): not on the list.
    Clean,
    /// No verdict: an error code (the list refused the query), SERVFAIL, REFUSED, a network
    /// error. The last verdict stands.
    Error(String),
    /// No answer in time. The last verdict stands.
    Timeout,
}

impl Outcome {
    /// The `result` label of `smarthostd_reputation_lookups_total`.
    pub(crate) fn result(&self) -> &'static str {
        match self {
            Outcome::Listed { .. } => "listed",
            Outcome::Clean => "clean",
            Outcome::Error(_) => "error",
            Outcome::Timeout => "timeout",
        }
    }

    /// Every result label, so that each series exists from the start.
    pub(crate) const RESULTS: [&'static str; 4] = ["listed", "clean", "error", "timeout"];
}

/// One lookup's result, sent to the health task.
#[derive(Debug, Clone)]
pub(crate) struct LookupReport {
    /// The egress address looked up.
    pub address: IpAddr,
    /// The list's name.
    pub list: Arc<str>,
    /// What the lookup found.
    pub outcome: Outcome,
    /// When the lookup ended: the time the book records it at.
    pub at: Instant,
}
