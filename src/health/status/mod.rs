//! The status report: every site, host and address as the health task sees it, with each
//! site's current MX answer. Served as JSON by the admin API and drawn by the status page.

use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::answer::{Mode, Snapshot};
use crate::events::history::History;

mod reputation;

pub use reputation::{EgressStatus, ListStatus, SiteReputation};

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReport {
    /// The generation of the answers served now; grows by one with each publish
    /// (`smarthostd_snapshot_generation`).
    pub generation: u64,
    /// The SOA serial served with them; grows with each generation.
    pub serial: u32,
    /// The first probe round has finished and DNS is answering.
    pub ready: bool,
    /// The zone's apex, fully qualified (`smarthost.internal.`).
    pub origin: String,
    /// Every configured site, in config order.
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
    /// The site's name (`[sites.<name>]`), lower case.
    pub name: String,
    /// Its pseudo-domain, `<site>.<origin>.`: what its MTAs relay to.
    pub domain: String,
    /// How its answer is made now: `normal` (its own healthy relays lead), `remote_only` (only the
    /// fallback sites' healthy relays) or `failsafe` (every configured relay, since none is
    /// healthy).
    pub mode: Mode,
    /// Answers carry the degraded TTL.
    pub degraded: bool,
    /// The MX answer served now, in order.
    pub answer: Vec<MxEntry>,
    /// The site's own relays, in config order.
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
    /// The MX preference; MTAs try lower ones first.
    pub preference: u16,
    /// The exchange, `<host>.<site>.<origin>.`.
    pub exchange: String,
    /// The site the exchange belongs to: this one or a fallback site.
    pub site: String,
    /// The exchange's host name in that site.
    pub host: String,
    /// The addresses the answer gives it: those up, or every known one when none is.
    pub addresses: Vec<IpAddr>,
}

/// One host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostStatus {
    /// The host's name in its site (`hosts[].name`), lower case.
    pub name: String,
    /// Its name in answers, `<host>.<site>.<origin>.`.
    pub fqdn: String,
    /// `up`, `down`, `unknown` or `drained`.
    pub state: String,
    /// An operator took it out of the answers; it is still probed.
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
    /// Every address probed: the configured ones, or the last known ones of `target`.
    pub addresses: Vec<AddressStatus>,
    /// The last 24 hours: up, down, drained, from the events.
    #[serde(default)]
    pub last_24h: Option<History>,
}

/// One probed address.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddressStatus {
    /// The address probed.
    pub address: IpAddr,
    /// The SMTP port probed (`port`, default 25).
    pub port: u16,
    /// `up`, `down` or `unknown`.
    pub state: String,
    /// The last probe disagreed with the state.
    pub pending: bool,
    /// Why the last failed probe failed (kept while the address is down).
    pub reason: Option<String>,
    /// RFC 3339 time of the last probe.
    pub last_probe: Option<String>,
    /// How long the last probe took, passed or failed, in milliseconds; null before the first.
    pub latency_ms: Option<f64>,
    /// RFC 3339 time the current state began.
    pub since: String,
    /// Seconds the current state has held when the report was made (with no verdict yet: since the
    /// address was added); a reload that keeps the address keeps the count.
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
