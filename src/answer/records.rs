//! The records of each answer in a build: static RRsets, a site's MX set, a host's addresses,
//! the note on an answer a blocklist listing shaped, NODATA, and the addresses that go in
//! additional sections.

use std::net::IpAddr;

use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rustc_hash::FxHashMap;

use super::demotion::warm_plan;
use super::demotions::{Demotions, notes};
use super::draft::{Draft, Drafts, Names, Out, TooLarge, check_size};
use super::encode::{Encoder, Rdata};
use super::health::HealthView;
use super::plan::{Mode, MxPlan};
use super::prepared::{Builder, NOERROR, Prepared, SERVFAIL};
use super::snapshot::{Answers, Variant, Warm};
use crate::topology::{HostId, Topology, View};
use crate::wire::wire_name;
use crate::zone::StaticZone;

/// What a live answer holds: the MX set, the addresses of the hosts it leads with, or (TXT)
/// why a blocklist listing moved hosts in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Mx,
    Addresses { v6: bool },
    Note,
}

impl Kind {
    /// Every kind, with its record type.
    pub(super) const ALL: [(Kind, RecordType); 4] = [
        (Kind::Mx, RecordType::MX),
        (Kind::Addresses { v6: false }, RecordType::A),
        (Kind::Addresses { v6: true }, RecordType::AAAA),
        (Kind::Note, RecordType::TXT),
    ];
}

/// What every answer of one build shares.
pub(super) struct Context<'n> {
    topology: &'n Topology,
    health: &'n HealthView,
    demotions: &'n Demotions,
    names: &'n Names,
    /// The apex SOA with this generation's serial.
    soa: Record,
    /// The same, with the negative-caching TTL (RFC 2308 section 3), also the TTL of NSEC
    /// records (RFC 9077).
    pub(super) soa_negative: Record,
    /// TTL of each host's address records.
    host_ttl: Vec<u32>,
    /// Hosts by wire name, for static NS and MX records that name them.
    host_by_name: FxHashMap<&'n [u8], HostId>,
    /// The zone file's A/AAAA records by owner.
    static_addresses: FxHashMap<&'n [u8], Vec<(IpAddr, u32)>>,
    /// The NODATA answer by question name length: it depends on nothing else.
    nodata: FxHashMap<usize, Prepared>,
}

impl<'n> Context<'n> {
    pub(super) fn new(
        topology: &'n Topology,
        zone: &'n StaticZone,
        health: &'n HealthView,
        demotions: &'n Demotions,
        serial: u32,
        names: &'n Names,
    ) -> Self {
        let mut soa = zone.soa.clone();
        let mut minimum = soa.ttl;
        if let RData::SOA(data) = &mut soa.data {
            data.serial = serial;
            minimum = data.minimum;
        }
        let mut soa_negative = soa.clone();
        soa_negative.ttl = soa.ttl.min(minimum);
        let mut static_addresses: FxHashMap<&'n [u8], Vec<(IpAddr, u32)>> = FxHashMap::default();
        for (rrsets, wire) in zone.records.values().zip(&names.statics) {
            for rtype in [RecordType::A, RecordType::AAAA] {
                for r in rrsets.get(&rtype).into_iter().flatten() {
                    if let Some(ip) = r.data.ip_addr() {
                        static_addresses.entry(wire).or_default().push((ip, r.ttl));
                    }
                }
            }
        }
        let answer = &topology.answer;
        Self {
            topology,
            health,
            demotions,
            names,
            soa,
            soa_negative,
            host_ttl: health
                .hosts
                .iter()
                .map(|h| {
                    if h.degraded() {
                        answer.degraded_ttl
                    } else {
                        answer.ttl
                    }
                })
                .collect(),
            host_by_name: topology
                .hosts
                .iter()
                .enumerate()
                .map(|(id, h)| (&h.wire[..], id))
                .collect(),
            static_addresses,
            nodata: FxHashMap::default(),
        }
    }

    /// The draft node of `wire`, created with its NODATA answer if new.
    pub(super) fn node(
        &mut self,
        drafts: &mut Drafts<'n>,
        out: &mut Out<'n, '_>,
        wire: &'n [u8],
    ) -> u32 {
        if let Some(&i) = drafts.index.get(wire) {
            return i;
        }
        let i = drafts.nodes.len() as u32;
        let nodata = self.nodata(out, wire.len());
        drafts.nodes.push(Draft { name: wire, nodata });
        drafts.index.insert(wire, i);
        i
    }

    /// Adds `answers` for `rtype` to the node of `wire`.
    pub(super) fn add(
        &mut self,
        drafts: &mut Drafts<'n>,
        out: &mut Out<'n, '_>,
        name: &Name,
        wire: &'n [u8],
        rtype: RecordType,
        answers: Answers,
    ) -> Result<(), TooLarge> {
        check_size(name, rtype, wire.len(), &answers)?;
        let node = self.node(drafts, out, wire);
        drafts.rrsets.push((node, u16::from(rtype), answers));
        Ok(())
    }

    /// The NODATA answer for a question name of `len` bytes (under the origin).
    pub(super) fn nodata(&mut self, out: &mut Out<'n, '_>, len: usize) -> Prepared {
        if let Some(p) = self.nodata.get(&len) {
            return p.clone();
        }
        // Any name of that length ending in the origin compresses the same way.
        let origin = &self.names.origin;
        let mut qname = Vec::with_capacity(len);
        let mut pad = len - origin.len();
        while pad > 0 {
            let label = (pad - 1).min(63);
            qname.push(label as u8);
            qname.extend(std::iter::repeat_n(b'-', label));
            pad -= label + 1;
        }
        qname.extend_from_slice(origin);
        // A plain body only: in a signed build each name's NODATA answer gets its own signed
        // twin (with that name's NSEC record) once the names are known.
        let mut local = Encoder::default();
        let mut b = Builder::new(&mut local, &qname, true);
        b.authority().static_record(origin, &self.soa_negative);
        let prepared = b.finish(NOERROR, true, &mut out.bodies);
        self.nodata.insert(len, prepared.clone());
        prepared
    }

    /// The apex SOA in a negative answer: the negative-caching TTL, signed with its own.
    pub(super) fn negative_soa<'a>(&'a self, b: &mut Builder<'_, 'n, 'a>) {
        b.authority().record_signed_as(
            &self.names.origin,
            RecordType::SOA,
            self.soa_negative.ttl,
            self.soa.ttl,
            Rdata::Static(&self.soa.data),
        );
    }

    /// The TTL of the apex SOA (and of the DNSKEY RRset).
    pub(super) fn soa_ttl(&self) -> u32 {
        self.soa.ttl
    }

    /// Adds the A/AAAA records of `target` to the additional section, if the zone has them.
    fn add_addresses(&self, b: &mut Builder<'_, 'n, '_>, target: &'n [u8]) {
        if let Some(&host) = self.host_by_name.get(target) {
            self.add_host_addresses(b, host);
        } else if let Some(list) = self.static_addresses.get(target) {
            for &(addr, ttl) in list {
                b.record(target, address_type(addr), ttl, Rdata::Address(addr));
            }
        }
    }

    /// A records, then AAAA records, of a host's served addresses.
    fn add_host_addresses(&self, b: &mut Builder<'_, 'n, '_>, host: HostId) {
        let wire = &self.topology.hosts[host].wire;
        let ttl = self.host_ttl[host];
        for v6 in [false, true] {
            for addr in self
                .health
                .host(host)
                .served_addresses()
                .filter(|a| a.is_ipv6() == v6)
            {
                b.record(wire, address_type(addr), ttl, Rdata::Address(addr));
            }
        }
    }

    pub(super) fn static_answer(
        &self,
        out: &mut Out<'n, '_>,
        owner: &'n [u8],
        rtype: RecordType,
        records: &'n [Record],
    ) -> Prepared {
        let mut b = Builder::new(&mut out.enc, owner, true);
        if rtype == RecordType::SOA {
            b.static_record(owner, &self.soa);
        } else {
            for r in records {
                b.static_record(owner, r);
            }
        }
        b.additional();
        let mut seen: Vec<Vec<u8>> = Vec::new();
        for r in records {
            let target = match &r.data {
                RData::NS(ns) => Some(&ns.0),
                RData::MX(mx) => Some(&mx.exchange),
                _ => None,
            };
            if let Some(target) = target {
                let wire = wire_name(target);
                // Two records naming one target give its addresses once: an RRset holds no
                // duplicates (RFC 2181 section 5).
                if seen.contains(&wire) {
                    continue;
                }
                seen.push(wire.clone());
                // Targets are looked up by name; the records written borrow the table's copy.
                if let Some((&key, _)) = self.host_by_name.get_key_value(&wire[..]) {
                    self.add_addresses(&mut b, key);
                } else if let Some((&key, _)) = self.static_addresses.get_key_value(&wire[..]) {
                    self.add_addresses(&mut b, key);
                }
            }
        }
        b.finish(NOERROR, true, &mut out.bodies)
    }

    /// The TTL of a live answer: shorter while something it depends on is changing.
    fn plan_ttl(&self, plan: &MxPlan) -> u32 {
        let answer = &self.topology.answer;
        if plan.degraded {
            answer.degraded_ttl
        } else {
            answer.ttl
        }
    }

    fn mx_answer(&self, out: &mut Out<'n, '_>, owner: &'n [u8], plan: &MxPlan) -> Prepared {
        let ttl = self.plan_ttl(plan);
        let hosts = &self.topology.hosts;
        let mut b = Builder::new(&mut out.enc, owner, true);
        for ex in &plan.exchanges {
            b.record(
                owner,
                RecordType::MX,
                ttl,
                Rdata::Mx(ex.preference, &hosts[ex.host].wire),
            );
        }
        b.additional();
        for ex in &plan.exchanges {
            self.add_host_addresses(&mut b, ex.host);
        }
        b.finish(NOERROR, true, &mut out.bodies)
    }

    /// The answer at a name whose MX answer follows `plan` in `view`, with its warm-standby
    /// variant: the MX set, or (for an MTA that skips MX) the addresses it should connect to.
    /// `None` when neither variant has a record of that kind.
    pub(super) fn variant(
        &mut self,
        out: &mut Out<'n, '_>,
        owner: &'n [u8],
        view: View,
        plan: &MxPlan,
        kind: Kind,
    ) -> Option<Variant> {
        let warm = match view {
            // The note is the same in either variant: no TXT answer counts as a warm one.
            View::Site(site)
                if self.topology.sites[site].warm_share > 0.0 && kind != Kind::Note =>
            {
                warm_plan(self.topology, self.health, self.demotions, site).and_then(|p| {
                    Some(Warm {
                        answer: self.plan_answer(out, owner, &p, kind)?,
                        site,
                        share: self.topology.sites[site].warm_share,
                    })
                })
            }
            _ => None,
        };
        let normal = match self.plan_answer(out, owner, plan, kind) {
            Some(normal) => normal,
            None if warm.is_some() => self.nodata(out, owner.len()),
            None => return None,
        };
        Some(Variant { normal, warm })
    }

    /// One answer of `kind` for `plan`; `None` for an address family none of its hosts has.
    fn plan_answer(
        &self,
        out: &mut Out<'n, '_>,
        owner: &'n [u8],
        plan: &MxPlan,
        kind: Kind,
    ) -> Option<Prepared> {
        if kind == Kind::Note {
            return self.note_answer(out, owner, plan);
        }
        if plan.exchanges.is_empty() {
            // Nothing is known of any host (DNS-named hosts that never resolved, none
            // remembered): an empty NOERROR would make senders bounce or give up, and an
            // NXDOMAIN would be cached; SERVFAIL makes resolvers retry and senders defer.
            return Some(Builder::new(&mut out.enc, owner, true).finish(
                SERVFAIL,
                false,
                &mut out.bodies,
            ));
        }
        match kind {
            Kind::Mx => Some(self.mx_answer(out, owner, plan)),
            Kind::Addresses { v6 } => self.plan_addresses(out, owner, plan, v6),
            Kind::Note => None,
        }
    }

    /// The TXT record that says which listed sites moved in `plan`, for operators and
    /// `smarthostd explain`; `None` (NODATA) while health alone shapes the answer.
    fn note_answer(
        &self,
        out: &mut Out<'n, '_>,
        owner: &'n [u8],
        plan: &MxPlan,
    ) -> Option<Prepared> {
        if plan.shaped_by.is_empty() {
            return None;
        }
        let txt = RData::TXT(TXT::new(notes(self.topology, self.demotions, plan)));
        let mut b = Builder::new(&mut out.enc, owner, true);
        b.record(
            owner,
            RecordType::TXT,
            self.plan_ttl(plan),
            Rdata::Static(&txt),
        );
        Some(b.finish(NOERROR, true, &mut out.bodies))
    }

    /// The addresses an A-only MTA is given for a name with a live MX answer: those of the hosts
    /// at the answer's lowest preference (the site's healthy relays; when none, the first
    /// fallback tier's), or of every host in the failsafe, with the MX answer's TTL. An MTA that
    /// connects to the name's own addresses then fails over exactly when an MX-first one does.
    /// The lowest preference is taken per address family, as a single-stack MX-first MTA skips
    /// exchanges it has no address for.
    fn plan_addresses(
        &self,
        out: &mut Out<'n, '_>,
        owner: &'n [u8],
        plan: &MxPlan,
        v6: bool,
    ) -> Option<Prepared> {
        let of_family = |host: HostId| {
            self.health
                .host(host)
                .served_addresses()
                .filter(move |a| a.is_ipv6() == v6)
        };
        let lowest = plan
            .exchanges
            .iter()
            .filter(|e| of_family(e.host).next().is_some())
            .map(|e| e.preference)
            .min()?;
        // Two hosts may share an address: it is listed once (RFC 2181 section 5).
        let mut seen = rustc_hash::FxHashSet::default();
        let addresses: Vec<IpAddr> = plan
            .exchanges
            .iter()
            .filter(|e| plan.mode == Mode::Failsafe || e.preference == lowest)
            .flat_map(|e| of_family(e.host))
            .filter(|a| seen.insert(*a))
            .collect();
        if addresses.is_empty() {
            return None;
        }
        let ttl = self.plan_ttl(plan);
        let mut b = Builder::new(&mut out.enc, owner, true);
        for addr in addresses {
            b.record(owner, address_type(addr), ttl, Rdata::Address(addr));
        }
        Some(b.finish(NOERROR, true, &mut out.bodies))
    }

    pub(super) fn address_answer(
        &self,
        out: &mut Out<'n, '_>,
        host: HostId,
        v6: bool,
    ) -> Option<Prepared> {
        let mut served = self
            .health
            .host(host)
            .served_addresses()
            .filter(|a| a.is_ipv6() == v6)
            .peekable();
        served.peek()?;
        let owner = &self.topology.hosts[host].wire;
        let ttl = self.host_ttl[host];
        let mut b = Builder::new(&mut out.enc, owner, true);
        for addr in served {
            b.record(owner, address_type(addr), ttl, Rdata::Address(addr));
        }
        Some(b.finish(NOERROR, true, &mut out.bodies))
    }
}

fn address_type(addr: IpAddr) -> RecordType {
    if addr.is_ipv4() {
        RecordType::A
    } else {
        RecordType::AAAA
    }
}
