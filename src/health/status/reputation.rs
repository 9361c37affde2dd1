//! The blocklist part of the status report: each site's standing, its egress addresses'
//! verdicts on every list, and the listings that shaped its answer; with the lines a person
//! reads on the status page and in `smarthostd status`.

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

/// One site's standing with the blocklists.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SiteReputation {
    /// `clean`, `listed`, or `held` (delisted, still demoted until `demoted_until`).
    pub standing: String,
    /// The site's relays are moved behind clean sites (`reputation.action = "demote"`).
    pub demoted: bool,
    /// RFC 3339 end of the hold after a delisting.
    pub demoted_until: Option<String>,
    /// Demoted sites whose relays moved in this site's MX answer (the site itself included).
    pub answer_shaped_by: Vec<String>,
    /// The site's egress addresses and what each list says of them.
    pub egress: Vec<EgressStatus>,
}

/// One egress address.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EgressStatus {
    /// The egress address (`sites.<name>.egress`).
    pub address: IpAddr,
    /// What each configured list says of it.
    pub lists: Vec<ListStatus>,
}

/// What one list says of one address.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListStatus {
    /// The list's `name` (by default its zone), as logs and metrics give it.
    pub list: String,
    /// `unknown` (no lookup has answered yet), `clean` or `listed`.
    pub verdict: String,
    /// The list's answer, when listed.
    pub code: Option<Ipv4Addr>,
    /// The list's TXT record, when listed.
    pub reason: Option<String>,
    /// RFC 3339 time the verdict began.
    pub since: Option<String>,
    /// RFC 3339 time of the last lookup.
    pub checked: Option<String>,
    /// Why the last lookup gave no verdict (a list error, a timeout); the verdict stands.
    pub problem: Option<String>,
}

impl SiteReputation {
    /// What a person should read, one line each: listings, demotion, what shaped the answer,
    /// lookups that fail.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for e in &self.egress {
            for l in &e.lists {
                if l.verdict == "listed" {
                    let code = l.code.map_or(String::new(), |c| format!(" ({c})"));
                    let reason = l
                        .reason
                        .as_deref()
                        .map_or(String::new(), |r| format!(": {r}"));
                    lines.push(format!(
                        "egress {} listed on {}{code}{reason}",
                        e.address, l.list
                    ));
                }
                if let Some(problem) = &l.problem {
                    lines.push(format!(
                        "egress {} on {}: {problem} (verdict kept: {})",
                        e.address, l.list, l.verdict
                    ));
                }
            }
        }
        match (&self.demoted_until, self.demoted) {
            (Some(until), true) => lines.push(format!("demoted: delisted, held until {until}")),
            (None, true) => lines.push("demoted: its relays follow every clean site's".into()),
            _ => {}
        }
        if !self.answer_shaped_by.is_empty() {
            lines.push(format!(
                "answer shaped by the listing of: {}",
                self.answer_shaped_by.join(", ")
            ));
        }
        lines
    }
}
