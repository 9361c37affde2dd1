//! The status report: every site, host and address as the health task sees it, with each
//! site's current MX answer. Served as JSON by the admin API and drawn by the status page.

use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::answer::{Mode, Snapshot};
use crate::events::history::History;

pub use super::listing_status::{EgressStatus, ListStatus, SiteReputation};

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReport {
    pub generation: u64,
    pub serial: u32,
    /// The first probe round has finished and DNS is answering.
    pub ready: bool,
    pub origin: String,
    pub sites: Vec<SiteStatus>,
    /// Every drain kept in the state directory, also of hosts no longer configured.
    #[serde(default)]
    pub drains: Vec<DrainStatus>,
}

/// One drain in the state directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrainStatus {
    /// `site/host`.
    pub key: String,
    /// Whether the host is in the running configuration (a stale drain otherwise).
    pub configured: bool,
    /// RFC 3339 end of a timed drain.
    pub until: Option<String>,
}

/// One site and its answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SiteStatus {
    pub name: String,
    pub domain: String,
    pub mode: Mode,
    /// Answers carry the degraded TTL.
    pub degraded: bool,
    /// The MX answer served now, in order.
    pub answer: Vec<MxEntry>,
    pub hosts: Vec<HostStatus>,
    /// The last 24 hours: local hosts leading (up) or not (an outage), from the events.
    #[serde(default)]
    pub last_24h: Option<History>,
    /// Blocklist verdicts on the site's egress addresses, and the listings that shaped its
    /// answer; absent when nothing is checked for it and nothing shaped it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reputation: Option<SiteReputation>,
}

/// One MX record of a site's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MxEntry {
    pub preference: u16,
    pub exchange: String,
    pub site: String,
    pub host: String,
    pub addresses: Vec<IpAddr>,
}

/// One host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostStatus {
    pub name: String,
    pub fqdn: String,
    /// `up`, `down`, `unknown` or `drained`.
    pub state: String,
    pub drained: bool,
    /// RFC 3339 end of a timed drain.
    #[serde(default)]
    pub drained_until: Option<String>,
    /// Named in answers outside the failsafe.
    pub healthy: bool,
    /// The DNS name the addresses come from, for hosts configured by `fqdn`.
    pub target: Option<String>,
    /// Why the last resolution of `target` failed; the last known addresses stay meanwhile.
    #[serde(default)]
    pub resolve_error: Option<String>,
    pub addresses: Vec<AddressStatus>,
    /// The last 24 hours: up, down, drained, from the events.
    #[serde(default)]
    pub last_24h: Option<History>,
}

/// One probed address.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddressStatus {
    pub address: IpAddr,
    pub port: u16,
    /// `up`, `down` or `unknown`.
    pub state: String,
    /// The last probe disagreed with the state.
    pub pending: bool,
    /// Why the last failed probe failed (kept while the address is down).
    pub reason: Option<String>,
    /// RFC 3339 time of the last probe.
    pub last_probe: Option<String>,
    pub latency_ms: Option<f64>,
    /// RFC 3339 time the current state began.
    pub since: String,
    pub since_seconds: f64,
}

/// Wall-clock time of an `Instant`, for people.
pub fn wall_clock(at: Instant) -> SystemTime {
    let now = Instant::now();
    let sys = SystemTime::now();
    if at <= now {
        sys - (now - at)
    } else {
        sys + (at - now)
    }
}

/// RFC 3339 text of a wall-clock time, to the second.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Milliseconds as a float with microsecond precision.
pub fn millis(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

/// The answer section of each site in `snapshot`, as status entries.
pub fn site_answers(snapshot: &Snapshot) -> Vec<(Mode, bool, Vec<MxEntry>)> {
    let topo = &snapshot.topology;
    snapshot
        .plans
        .iter()
        .map(|plan| {
            let entries = plan
                .exchanges
                .iter()
                .map(|ex| {
                    let host = &topo.hosts[ex.host];
                    MxEntry {
                        preference: ex.preference,
                        exchange: host.fqdn.to_ascii(),
                        site: topo.sites[host.site].name.clone(),
                        host: host.name.clone(),
                        addresses: snapshot.health.host(ex.host).served_addresses().collect(),
                    }
                })
                .collect();
            (plan.mode, plan.degraded, entries)
        })
        .collect()
}
