//! The records of each answer in a build: static RRsets, NODATA, and the addresses that go in
//! additional sections; the live answers (a site's MX set, addresses, notes) are in `live`.

use std::net::IpAddr;

use hickory_proto::rr::{Name, RData, Record, RecordType};
use rustc_hash::FxHashMap;

use super::demotions::Demotions;
use super::draft::{Draft, Drafts, Names, Out, TooLarge, check_size};
use super::encode::{Encoder, Rdata};
use super::health_view::HealthView;
use super::prepared::{Builder, NOERROR, Prepared};
use super::snapshot::Answers;
use crate::topology::{HostId, Topology};
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
    pub(super) topology: &'n Topology,
    pub(super) health: &'n HealthView,
    pub(super) demotions: &'n Demotions,
    names: &'n Names,
    /// The apex SOA with this generation's serial.
    soa: Record,
    /// The same, with the negative-caching TTL (RFC 2308 section 3), also the TTL of NSEC
    /// records (RFC 9077).
    pub(super) soa_negative: Record,
    /// TTL of each host's address records.
    pub(super) host_ttl: Vec<u32>,
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
    pub(super) fn add_host_addresses(&self, b: &mut Builder<'_, 'n, '_>, host: HostId) {
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
}

pub(super) fn address_type(addr: IpAddr) -> RecordType {
    if addr.is_ipv4() {
        RecordType::A
    } else {
        RecordType::AAAA
    }
}
