//! `build`: topology + static zone + health → a [`Snapshot`] with every answer prepared.
//!
//! Pure: no I/O, no clock. Runs on every health transition and reload.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::{Name, RData, Record, RecordType};
use rustc_hash::FxHashMap;

use super::encode::{Rdata, wire_name};
use super::plan::{MxPlan, site_plan, view_plan, warm_plan};
use super::prepared::{Builder, NOERROR, NXDOMAIN, Prepared};
use super::snapshot::{Answers, Node, Snapshot, Variant, Warm, WarmCounters};
use crate::health::HealthView;
use crate::topology::{Topology, View};
use crate::zone::StaticZone;

/// Room kept in every message for the OPT record and an ECS option.
const OPT_RESERVE: usize = 11 + 4 + 20;
const MAX_MESSAGE: usize = u16::MAX as usize;

/// An answer that cannot be sent even over TCP.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "the answer for {name} {rtype} would be {size} bytes, over the 65,535 a DNS message holds: fewer hosts or fallback sites for it"
)]
pub struct TooLarge {
    pub name: String,
    pub rtype: RecordType,
    pub size: usize,
}

/// Builds generation `generation` with SOA serial `serial`.
pub fn build(
    topology: Arc<Topology>,
    zone: &StaticZone,
    health: Arc<HealthView>,
    serial: u32,
    generation: u64,
) -> Result<Snapshot, TooLarge> {
    let cx = Context::new(&topology, zone, &health, serial);
    let mut nodes: FxHashMap<Box<[u8]>, Node> = FxHashMap::default();
    let mut add = |name: &Name, wire: &[u8], rtype: RecordType, answers: Answers| {
        check_size(name, rtype, wire.len(), &answers)?;
        let node = nodes
            .entry(wire.into())
            .or_insert_with(|| cx.empty_node(wire));
        node.rrsets.push((u16::from(rtype), answers));
        Ok::<(), TooLarge>(())
    };

    for (owner, rrsets) in &zone.records {
        let wire = wire_name(owner);
        for (&rtype, records) in rrsets {
            add(
                owner,
                &wire,
                rtype,
                Answers::Fixed(cx.static_answer(&wire, rtype, records)),
            )?;
        }
    }
    let plans: Vec<MxPlan> = (0..topology.sites.len())
        .map(|s| site_plan(&topology, &health, s))
        .collect();
    for (site_id, site) in topology.sites.iter().enumerate() {
        let wire = wire_name(&site.domain);
        let variant = cx.variant(&wire, View::Site(site_id), &plans[site_id]);
        add(&site.domain, &wire, RecordType::MX, Answers::Site(variant))?;
    }
    for (host_id, host) in topology.hosts.iter().enumerate() {
        let wire = &cx.host_wire[host_id];
        for rtype in [RecordType::A, RecordType::AAAA] {
            if let Some(answer) = cx.address_answer(wire, rtype) {
                add(&host.fqdn, wire, rtype, Answers::Fixed(answer))?;
            }
        }
    }
    if topology.views_enabled {
        let shared = std::iter::once(&topology.origin).chain(&topology.view_names);
        for name in shared {
            let wire = wire_name(name);
            let views = topology
                .views()
                .map(|view| cx.variant(&wire, view, &view_plan(&topology, &health, view)))
                .collect();
            add(name, &wire, RecordType::MX, Answers::Views(views))?;
        }
    }
    // Empty non-terminals exist: NOERROR with no data, not NXDOMAIN (RFC 8020).
    let names: Vec<Box<[u8]>> = nodes.keys().cloned().collect();
    for wire in names.into_iter().filter(|w| **w != *cx.origin) {
        let mut at = usize::from(wire[0]) + 1;
        while wire[at] != 0 && wire[at..] != *cx.origin {
            nodes
                .entry(wire[at..].into())
                .or_insert_with(|| cx.empty_node(&wire[at..]));
            at += usize::from(wire[at]) + 1;
        }
    }
    for node in nodes.values_mut() {
        node.any = (!node.rrsets.is_empty()).then_some(0);
    }

    let mut nxdomain = Builder::uncompressed();
    nxdomain.authority().static_record(&cx.soa_negative, None);
    Ok(Snapshot {
        generation,
        serial,
        origin: cx.origin.clone().into(),
        nxdomain: nxdomain.finish(NXDOMAIN, true),
        nodes,
        plans,
        warm: Arc::new(WarmCounters::new(topology.sites.len())),
        topology,
        health,
    })
}

fn check_size(
    name: &Name,
    rtype: RecordType,
    qname_len: usize,
    answers: &Answers,
) -> Result<(), TooLarge> {
    let largest = match answers {
        Answers::Fixed(p) => p.body.len(),
        Answers::Site(v) => v.largest(),
        Answers::Views(vs) => vs.iter().map(Variant::largest).max().unwrap_or(0),
    };
    let size = 12 + qname_len + 4 + largest + OPT_RESERVE;
    if size > MAX_MESSAGE {
        return Err(TooLarge {
            name: name.to_string(),
            rtype,
            size,
        });
    }
    Ok(())
}

impl Variant {
    fn largest(&self) -> usize {
        let warm = self.warm.as_ref().map_or(0, |w| w.answer.body.len());
        self.normal.body.len().max(warm)
    }
}

/// What every answer of one build shares.
struct Context<'a> {
    topology: &'a Topology,
    health: &'a HealthView,
    origin: Vec<u8>,
    /// The apex SOA with this generation's serial.
    soa: Record,
    /// The same, with the negative-caching TTL (RFC 2308 section 3).
    soa_negative: Record,
    host_wire: Vec<Vec<u8>>,
    /// Addresses an answer may add for a name: smart hosts' served ones, static A/AAAA.
    addresses: FxHashMap<Vec<u8>, Vec<(IpAddr, u32)>>,
}

impl<'a> Context<'a> {
    fn new(
        topology: &'a Topology,
        zone: &'a StaticZone,
        health: &'a HealthView,
        serial: u32,
    ) -> Self {
        let mut soa = zone.soa.clone();
        let mut minimum = soa.ttl;
        if let RData::SOA(data) = &mut soa.data {
            data.serial = serial;
            minimum = data.minimum;
        }
        let mut soa_negative = soa.clone();
        soa_negative.ttl = soa.ttl.min(minimum);

        let host_wire: Vec<Vec<u8>> = topology.hosts.iter().map(|h| wire_name(&h.fqdn)).collect();
        let mut addresses: FxHashMap<Vec<u8>, Vec<(IpAddr, u32)>> = FxHashMap::default();
        for (owner, rrsets) in &zone.records {
            for rtype in [RecordType::A, RecordType::AAAA] {
                for r in rrsets.get(&rtype).into_iter().flatten() {
                    if let Some(ip) = r.data.ip_addr() {
                        addresses
                            .entry(wire_name(owner))
                            .or_default()
                            .push((ip, r.ttl));
                    }
                }
            }
        }
        for (id, wire) in host_wire.iter().enumerate() {
            let host = health.host(id);
            let ttl = if host.degraded() {
                topology.answer.degraded_ttl
            } else {
                topology.answer.ttl
            };
            let mut list: Vec<(IpAddr, u32)> = host.served_addresses().map(|a| (a, ttl)).collect();
            // A before AAAA, each in configured order.
            list.sort_by_key(|(a, _)| a.is_ipv6());
            addresses.insert(wire.clone(), list);
        }
        Self {
            topology,
            health,
            origin: wire_name(&zone.origin),
            soa,
            soa_negative,
            host_wire,
            addresses,
        }
    }

    fn empty_node(&self, wire: &[u8]) -> Node {
        let mut b = Builder::new(wire);
        b.authority().static_record(&self.soa_negative, None);
        Node {
            rrsets: Vec::new(),
            any: None,
            nodata: b.finish(NOERROR, true),
        }
    }

    /// Adds the A/AAAA records of `target` to the additional section, if the zone has them.
    fn add_addresses(&self, b: &mut Builder, target: &[u8]) {
        for &(addr, ttl) in self.addresses.get(target).into_iter().flatten() {
            let rtype = if addr.is_ipv4() {
                RecordType::A
            } else {
                RecordType::AAAA
            };
            b.record(target, rtype, ttl, Rdata::Address(addr));
        }
    }

    fn static_answer(&self, owner: &[u8], rtype: RecordType, records: &[Record]) -> Prepared {
        let mut b = Builder::new(owner);
        if rtype == RecordType::SOA {
            b.static_record(&self.soa, None);
        } else {
            for r in records {
                b.static_record(r, None);
            }
        }
        b.additional();
        for r in records {
            let target = match &r.data {
                RData::NS(ns) => Some(&ns.0),
                RData::MX(mx) => Some(&mx.exchange),
                _ => None,
            };
            if let Some(target) = target {
                self.add_addresses(&mut b, &wire_name(target));
            }
        }
        b.finish(NOERROR, true)
    }

    fn mx_answer(&self, owner: &[u8], plan: &MxPlan) -> Prepared {
        let answer = &self.topology.answer;
        let ttl = if plan.degraded {
            answer.degraded_ttl
        } else {
            answer.ttl
        };
        let mut b = Builder::new(owner);
        for ex in &plan.exchanges {
            b.record(
                owner,
                RecordType::MX,
                ttl,
                Rdata::Mx(ex.preference, &self.host_wire[ex.host]),
            );
        }
        b.additional();
        for ex in &plan.exchanges {
            self.add_addresses(&mut b, &self.host_wire[ex.host]);
        }
        b.finish(NOERROR, true)
    }

    fn variant(&self, owner: &[u8], view: View, plan: &MxPlan) -> Variant {
        let warm = match view {
            View::Site(site) if self.topology.sites[site].warm_share > 0.0 => {
                warm_plan(self.topology, self.health, site).map(|p| Warm {
                    answer: self.mx_answer(owner, &p),
                    site,
                    share: self.topology.sites[site].warm_share,
                })
            }
            _ => None,
        };
        Variant {
            normal: self.mx_answer(owner, plan),
            warm,
        }
    }

    fn address_answer(&self, owner: &[u8], rtype: RecordType) -> Option<Prepared> {
        let want_v6 = rtype == RecordType::AAAA;
        let list = self.addresses.get(owner)?;
        let mut b = Builder::new(owner);
        for &(addr, ttl) in list.iter().filter(|(a, _)| a.is_ipv6() == want_v6) {
            b.record(owner, rtype, ttl, Rdata::Address(addr));
        }
        let p = b.finish(NOERROR, true);
        (p.answers > 0).then_some(p)
    }
}
