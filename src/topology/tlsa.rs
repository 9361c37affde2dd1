//! Where the pinned relays' TLSA records are published, and what each owner name holds.
//!
//! A sender looks TLSA records up at `_25._tcp.<the name it connects to>` (RFC 7672 section
//! 2.2.3), and which name that is depends on how it was pointed at the zone:
//!
//! - **MX-first** senders (`relayhost = oxford.smarthost.internal`, Exim `/MX`, Exchange)
//!   connect to an MX exchange: `_25._tcp.<host>.<site>.<origin>` holds that relay's records.
//! - **A-only** senders (Postfix `relayhost = [oxford.smarthost.internal]`, Exim `byname`,
//!   OpenSMTPD) connect to the name they were given, whose address answer may name any relay
//!   the site's answer can lead with: `_25._tcp.<site>.<origin>` holds the records of all of
//!   them (the site's own relays and every fallback site's), and with views so do the apex and
//!   each `views.names` name (every relay any view can name). An answer's addresses change with
//!   health while the TLSA RRset is cached on its own, so the set is every relay the name can
//!   lead to, not those it leads to now.
//!
//! A name that can lead to a relay without records gets no RRset at all: a DANE sender would
//! refuse that relay on every delivery, where without records it uses unauthenticated TLS.
//! [`Topology::tlsa_gaps`] lists those names, for `check-config`.

use hickory_proto::ProtoError;
use hickory_proto::rr::Name;

use super::{HostId, Topology, View};
use crate::dane::{SMTP_PREFIX, Tlsa};
use crate::wire::wire_name;

/// Why an owner name holds its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// An MX exchange: the relay itself.
    Host(HostId),
    /// A site's own name, for A-only senders.
    Site(usize),
    /// The apex or a `views.names` name, answered per view.
    Shared,
}

/// One TLSA RRset to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsaRrset {
    /// `_25._tcp.<name>`, lower case, fully qualified.
    pub owner: Name,
    /// `owner` in lower-case wire form.
    pub wire: Box<[u8]>,
    /// Each record's RDATA in wire form, in a stable order, each once.
    pub rdata: Vec<Box<[u8]>>,
    /// The name the senders connect to, and why it holds these records.
    pub about: Owner,
}

impl Topology {
    /// Every TLSA RRset the zone publishes, as the module map says: one per pinned relay at
    /// its MX exchange name, one per site name whose answers lead only to pinned relays, and
    /// (with views) one per shared name whose answers lead only to pinned relays. Empty when
    /// no relay is pinned.
    pub fn tlsa_rrsets(&self) -> Result<Vec<TlsaRrset>, ProtoError> {
        let mut out = Vec::new();
        for (id, host) in self.hosts.iter().enumerate() {
            if !host.tlsa.is_empty() {
                out.push(rrset(&host.fqdn, &host.tlsa, Owner::Host(id))?);
            }
        }
        for (site_id, site) in self.sites.iter().enumerate() {
            if let Some(records) = self.records_of(&self.reachable(View::Site(site_id))) {
                out.push(rrset(&site.domain, &records, Owner::Site(site_id))?);
            }
        }
        if self.views_enabled {
            let mut every: Vec<HostId> = self.views().flat_map(|v| self.reachable(v)).collect();
            every.sort_unstable();
            every.dedup();
            if let Some(records) = self.records_of(&every) {
                for name in std::iter::once(&self.origin).chain(&self.view_names) {
                    out.push(rrset(name, &records, Owner::Shared)?);
                }
            }
        }
        Ok(out)
    }

    /// The names an A-only sender can be pointed at whose answers can lead both to pinned
    /// relays and to relays without records, each with the unpinned relays (`site/host`): no
    /// TLSA RRset is published there, so such a sender uses unauthenticated TLS.
    pub fn tlsa_gaps(&self) -> Vec<(Name, Vec<String>)> {
        let mut names: Vec<(Name, Vec<HostId>)> = (0..self.sites.len())
            .map(|s| (self.sites[s].domain.clone(), self.reachable(View::Site(s))))
            .collect();
        if self.views_enabled {
            let mut every: Vec<HostId> = self.views().flat_map(|v| self.reachable(v)).collect();
            every.sort_unstable();
            every.dedup();
            for name in std::iter::once(&self.origin).chain(&self.view_names) {
                names.push((name.clone(), every.clone()));
            }
        }
        names
            .into_iter()
            .filter_map(|(name, hosts)| {
                let (pinned, bare): (Vec<HostId>, Vec<HostId>) =
                    hosts.iter().partition(|&&h| !self.hosts[h].tlsa.is_empty());
                (!pinned.is_empty() && !bare.is_empty()).then(|| {
                    let bare = bare.iter().map(|&h| self.hosts[h].key(self)).collect();
                    (name, bare)
                })
            })
            .collect()
    }

    /// [`tlsa_gaps`](Self::tlsa_gaps) in words, for `check-config` and the log.
    pub fn tlsa_gap_warnings(&self) -> Vec<String> {
        self.tlsa_gaps()
            .into_iter()
            .map(|(name, bare)| {
                format!(
                    "{name} can lead an A-only sender (relayhost = [{}]) to relays with TLSA records and to relays without ({} {} none), so no TLSA record set is published for it: such a sender uses unauthenticated TLS",
                    name.to_ascii().trim_end_matches('.'),
                    bare.join(", "),
                    if bare.len() == 1 { "has" } else { "have" }
                )
            })
            .collect()
    }

    /// Every host an address answer of `view` can name: the site's own and its fallback
    /// sites' (the failsafe names all of them), or for the "all" view every host.
    fn reachable(&self, view: View) -> Vec<HostId> {
        let mut hosts: Vec<HostId> = match view {
            View::All => (0..self.hosts.len()).collect(),
            View::Site(s) => {
                let site = &self.sites[s];
                let fallbacks = site.fallback.iter().map(|&(f, _)| &self.sites[f].hosts);
                std::iter::once(&site.hosts)
                    .chain(fallbacks)
                    .flatten()
                    .copied()
                    .collect()
            }
        };
        hosts.sort_unstable();
        hosts.dedup();
        hosts
    }

    /// The union of the records of `hosts`, when every one of them is pinned.
    fn records_of(&self, hosts: &[HostId]) -> Option<Vec<Tlsa>> {
        if hosts.is_empty() || hosts.iter().any(|&h| self.hosts[h].tlsa.is_empty()) {
            return None;
        }
        Some(
            hosts
                .iter()
                .flat_map(|&h| self.hosts[h].tlsa.clone())
                .collect(),
        )
    }
}

fn rrset(name: &Name, records: &[Tlsa], about: Owner) -> Result<TlsaRrset, ProtoError> {
    let owner = Name::from_ascii(SMTP_PREFIX)?.append_domain(name)?;
    let mut rdata: Vec<Box<[u8]>> = records.iter().map(|r| r.rdata().into()).collect();
    rdata.sort_unstable();
    rdata.dedup();
    Ok(TlsaRrset {
        wire: wire_name(&owner).into(),
        owner,
        rdata,
        about,
    })
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::rdata::TLSA;
    use hickory_proto::serialize::binary::BinEncodable;

    use super::*;
    use crate::test_support::{config_from, topology};

    const A: &str = "3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6";
    const B: &str = "3 1 1 1c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6";

    fn host(name: &str, octet: u8, tlsa: Option<&str>) -> String {
        let tlsa = tlsa.map_or(String::new(), |t| format!(", tlsa = [\"{t}\"]"));
        format!("{{ name = \"{name}\", addresses = [\"192.0.2.{octet}\"]{tlsa} }}")
    }

    fn owners(t: &Topology) -> Vec<(String, usize)> {
        t.tlsa
            .iter()
            .map(|r| (r.owner.to_ascii(), r.rdata.len()))
            .collect()
    }

    #[test]
    fn every_pinned_relay_and_every_name_that_leads_only_to_pinned_relays_gets_an_rrset() {
        let t = topology(&config_from(&format!(
            "[zone]\norigin = \"smarthost.internal\"\nfile = \"z\"\n[views]\nnames = [\"relay\"]\n\
             [sites.oxford]\nhosts = [{}, {}]\nfallback = [\"cambridge\"]\n\
             [sites.cambridge]\nhosts = [{}]\nfallback = []\n\
             [sites.london]\nhosts = [{}]\n",
            host("mail1", 1, Some(A)),
            host("mail2", 2, Some(B)),
            host("mail1", 3, Some(A)),
            host("mail1", 4, None),
        )));
        assert_eq!(
            owners(&t),
            vec![
                ("_25._tcp.mail1.oxford.smarthost.internal.".into(), 1),
                ("_25._tcp.mail2.oxford.smarthost.internal.".into(), 1),
                ("_25._tcp.mail1.cambridge.smarthost.internal.".into(), 1),
                // Oxford's relays and its fallback Cambridge's: A and B, each once.
                ("_25._tcp.oxford.smarthost.internal.".into(), 2),
                ("_25._tcp.cambridge.smarthost.internal.".into(), 1),
            ],
            "london's relay has no records: london's name, which leads to it, and the shared names, which every view can lead to it, get none"
        );
        let gaps: Vec<(String, Vec<String>)> = t
            .tlsa_gaps()
            .into_iter()
            .map(|(n, h)| (n.to_ascii(), h))
            .collect();
        assert_eq!(
            gaps,
            vec![
                // London falls back to the pinned sites, and its own relay is not pinned.
                (
                    "london.smarthost.internal.".to_string(),
                    vec!["london/mail1".to_string()]
                ),
                ("smarthost.internal.".into(), vec!["london/mail1".into()]),
                (
                    "relay.smarthost.internal.".into(),
                    vec!["london/mail1".into()]
                ),
            ]
        );
        let wire = &t.tlsa[0];
        assert_eq!(&wire.wire[..11], b"\x03_25\x04_tcp\x05m");
        let record: Tlsa = A.parse().unwrap();
        let hickory = TLSA::new(3.into(), 1.into(), 1.into(), record.data.to_vec());
        assert_eq!(
            *wire.rdata[0],
            *hickory.to_bytes().unwrap(),
            "the RDATA hickory writes"
        );
    }

    #[test]
    fn a_topology_without_pinned_relays_publishes_nothing() {
        let t = topology(&config_from(&format!(
            "[zone]\norigin = \"smarthost.internal\"\nfile = \"z\"\n[sites.oxford]\nhosts = [{}]\n",
            host("mail1", 1, None)
        )));
        assert!(t.tlsa.is_empty() && t.tlsa_gaps().is_empty());
    }
}
