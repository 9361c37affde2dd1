//! `build`: topology + static zone + health → a [`Snapshot`] with every answer prepared.
//!
//! Pure: no I/O, no clock. Runs on every health transition and reload, so it is written to be
//! quick: every name is put in wire form once, one encoder is reused for every answer, and the
//! NODATA answer (the SOA, compressed against the question) is shared by all names of one
//! length, which is all it depends on.

use std::net::IpAddr;
use std::sync::Arc;

use hashbrown::HashTable;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rustc_hash::FxHashMap;

use super::encode::{Encoder, Rdata, wire_name};
use super::plan::{MxPlan, site_plan, view_plan, warm_plan};
use super::prepared::{Builder, NOERROR, NXDOMAIN, Prepared};
use super::snapshot::{Answers, Node, Snapshot, Variant, Warm, WarmCounters, name_hash};
use crate::health::HealthView;
use crate::topology::{HostId, Topology, View};
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

/// Names a build writes that the topology does not already hold in wire form.
struct Names {
    origin: Vec<u8>,
    /// The apex and the view names, when views are on.
    shared: Vec<(Name, Vec<u8>)>,
    /// Owners of the zone file's records, in the zone's order.
    statics: Vec<Vec<u8>>,
}

impl Names {
    fn new(topology: &Topology, zone: &StaticZone) -> Self {
        let shared = if topology.views_enabled {
            std::iter::once(&topology.origin)
                .chain(&topology.view_names)
                .map(|n| (n.clone(), wire_name(n)))
                .collect()
        } else {
            Vec::new()
        };
        Self {
            origin: wire_name(&topology.origin),
            shared,
            statics: zone.records.keys().map(wire_name).collect(),
        }
    }
}

/// Where a build writes: the reused encoder and the arena of finished answers.
struct Out<'n> {
    enc: Encoder<'n>,
    bodies: Vec<u8>,
}

/// A node while the snapshot is being built.
struct Draft<'n> {
    name: &'n [u8],
    nodata: Prepared,
}

/// The nodes of a build, and their answers in the order they come.
#[derive(Default)]
struct Drafts<'n> {
    index: FxHashMap<&'n [u8], u32>,
    nodes: Vec<Draft<'n>>,
    rrsets: Vec<(u32, u16, Answers)>,
}

/// Builds generation `generation` with SOA serial `serial`.
pub fn build(
    topology: Arc<Topology>,
    zone: &StaticZone,
    health: Arc<HealthView>,
    serial: u32,
    generation: u64,
) -> Result<Snapshot, TooLarge> {
    let names = Names::new(&topology, zone);
    let mut cx = Context::new(&topology, zone, &health, serial, &names);
    let mut out = Out {
        enc: Encoder::default(),
        bodies: Vec::with_capacity(64 * (topology.hosts.len() + topology.sites.len() * 16) + 4096),
    };
    let mut drafts = Drafts::default();
    drafts
        .nodes
        .reserve(topology.hosts.len() + topology.sites.len() + names.statics.len() + 16);

    for ((owner, rrsets), wire) in zone.records.iter().zip(&names.statics) {
        for (&rtype, records) in rrsets {
            let answer = cx.static_answer(&mut out, wire, rtype, records);
            cx.add(
                &mut drafts,
                &mut out,
                owner,
                wire,
                rtype,
                Answers::Fixed(answer),
            )?;
        }
    }
    let plans: Vec<MxPlan> = (0..topology.sites.len())
        .map(|s| site_plan(&topology, &health, s))
        .collect();
    for (site_id, site) in topology.sites.iter().enumerate() {
        let variant = cx.variant(&mut out, &site.wire, View::Site(site_id), &plans[site_id]);
        cx.add(
            &mut drafts,
            &mut out,
            &site.domain,
            &site.wire,
            RecordType::MX,
            Answers::Site(variant),
        )?;
    }
    for (host_id, host) in topology.hosts.iter().enumerate() {
        for v6 in [false, true] {
            if let Some(answer) = cx.address_answer(&mut out, host_id, v6) {
                let rtype = if v6 { RecordType::AAAA } else { RecordType::A };
                cx.add(
                    &mut drafts,
                    &mut out,
                    &host.fqdn,
                    &host.wire,
                    rtype,
                    Answers::Fixed(answer),
                )?;
            }
        }
    }
    for (name, wire) in &names.shared {
        let views = topology
            .views()
            .map(|view| cx.variant(&mut out, wire, view, &view_plan(&topology, &health, view)))
            .collect();
        cx.add(
            &mut drafts,
            &mut out,
            name,
            wire,
            RecordType::MX,
            Answers::Views(views),
        )?;
    }
    // Empty non-terminals exist: NOERROR with no data, not NXDOMAIN (RFC 8020).
    for i in 0..drafts.nodes.len() {
        let wire = drafts.nodes[i].name;
        if wire == &names.origin[..] {
            continue;
        }
        let mut at = usize::from(wire[0]) + 1;
        while wire[at] != 0 && wire[at..] != names.origin[..] {
            cx.node(&mut drafts, &mut out, &wire[at..]);
            at += usize::from(wire[at]) + 1;
        }
    }

    let mut nxdomain = Builder::new(&mut out.enc, &names.origin, false);
    nxdomain
        .authority()
        .static_record(&names.origin, &cx.soa_negative);
    let nxdomain = nxdomain.finish(NXDOMAIN, true, &mut out.bodies);
    let (names_arena, nodes, rrsets) = assemble(drafts);
    Ok(Snapshot {
        generation,
        serial,
        origin: names.origin.clone().into(),
        names: names_arena,
        nodes,
        rrsets,
        bodies: out.bodies,
        nxdomain,
        plans,
        warm: Arc::new(WarmCounters::new(topology.sites.len())),
        topology,
        health,
    })
}

/// Lays the drafts out as the snapshot's arenas and node table.
fn assemble(drafts: Drafts<'_>) -> (Vec<u8>, HashTable<Node>, Vec<(u16, Answers)>) {
    let Drafts {
        nodes, mut rrsets, ..
    } = drafts;
    // Group each node's answers together, keeping the order they were added in.
    rrsets.sort_by_key(|(node, _, _)| *node);
    let mut spans = vec![(0u32, 0u16); nodes.len()];
    for (i, (node, _, _)) in rrsets.iter().enumerate() {
        let span = &mut spans[*node as usize];
        if span.1 == 0 {
            span.0 = i as u32;
        }
        span.1 += 1;
    }
    let mut names = Vec::with_capacity(nodes.iter().map(|d| d.name.len()).sum());
    let mut table = HashTable::with_capacity(nodes.len());
    for (draft, (rrsets_at, rrsets_len)) in nodes.into_iter().zip(spans) {
        let node = Node {
            name_at: names.len() as u32,
            name_len: draft.name.len() as u8,
            rrsets_at,
            rrsets_len,
            nodata: draft.nodata,
        };
        names.extend_from_slice(draft.name);
        table.insert_unique(name_hash(draft.name), node, |n: &Node| {
            unreachable_rehash(n)
        });
    }
    let rrsets = rrsets.into_iter().map(|(_, t, a)| (t, a)).collect();
    (names, table, rrsets)
}

/// The table is sized up front, so inserting never rehashes.
fn unreachable_rehash(_: &Node) -> u64 {
    unreachable!("the node table was allocated for every node")
}

fn check_size(
    name: &Name,
    rtype: RecordType,
    qname_len: usize,
    answers: &Answers,
) -> Result<(), TooLarge> {
    let largest = match answers {
        Answers::Fixed(p) => p.len(),
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
        let warm = self.warm.as_ref().map_or(0, |w| w.answer.len());
        self.normal.len().max(warm)
    }
}

/// What every answer of one build shares.
struct Context<'n> {
    topology: &'n Topology,
    health: &'n HealthView,
    names: &'n Names,
    /// The apex SOA with this generation's serial.
    soa: Record,
    /// The same, with the negative-caching TTL (RFC 2308 section 3).
    soa_negative: Record,
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
    fn new(
        topology: &'n Topology,
        zone: &'n StaticZone,
        health: &'n HealthView,
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
    fn node(&mut self, drafts: &mut Drafts<'n>, out: &mut Out<'n>, wire: &'n [u8]) -> u32 {
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
    fn add(
        &mut self,
        drafts: &mut Drafts<'n>,
        out: &mut Out<'n>,
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
    fn nodata(&mut self, out: &mut Out<'n>, len: usize) -> Prepared {
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
        let mut local = Encoder::default();
        let mut b = Builder::new(&mut local, &qname, true);
        b.authority().static_record(origin, &self.soa_negative);
        let prepared = b.finish(NOERROR, true, &mut out.bodies);
        self.nodata.insert(len, prepared.clone());
        prepared
    }

    /// Adds the A/AAAA records of `target` to the additional section, if the zone has them.
    fn add_addresses(&self, b: &mut Builder<'_, 'n>, target: &'n [u8]) {
        if let Some(&host) = self.host_by_name.get(target) {
            self.add_host_addresses(b, host);
        } else if let Some(list) = self.static_addresses.get(target) {
            for &(addr, ttl) in list {
                b.record(target, address_type(addr), ttl, Rdata::Address(addr));
            }
        }
    }

    /// A records, then AAAA records, of a host's served addresses.
    fn add_host_addresses(&self, b: &mut Builder<'_, 'n>, host: HostId) {
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

    fn static_answer(
        &self,
        out: &mut Out<'n>,
        owner: &'n [u8],
        rtype: RecordType,
        records: &[Record],
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
        for r in records {
            let target = match &r.data {
                RData::NS(ns) => Some(&ns.0),
                RData::MX(mx) => Some(&mx.exchange),
                _ => None,
            };
            if let Some(target) = target {
                let wire = wire_name(target);
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

    fn mx_answer(&self, out: &mut Out<'n>, owner: &'n [u8], plan: &MxPlan) -> Prepared {
        let answer = &self.topology.answer;
        let ttl = if plan.degraded {
            answer.degraded_ttl
        } else {
            answer.ttl
        };
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

    fn variant(&self, out: &mut Out<'n>, owner: &'n [u8], view: View, plan: &MxPlan) -> Variant {
        let warm = match view {
            View::Site(site) if self.topology.sites[site].warm_share > 0.0 => {
                warm_plan(self.topology, self.health, site).map(|p| Warm {
                    answer: self.mx_answer(out, owner, &p),
                    site,
                    share: self.topology.sites[site].warm_share,
                })
            }
            _ => None,
        };
        Variant {
            normal: self.mx_answer(out, owner, plan),
            warm,
        }
    }

    fn address_answer(&self, out: &mut Out<'n>, host: HostId, v6: bool) -> Option<Prepared> {
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
