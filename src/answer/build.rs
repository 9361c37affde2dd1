//! `build`: topology + static zone + health → a [`Snapshot`] with every answer prepared.
//!
//! Pure: no I/O, no clock. Runs on every health transition and reload, so it is written to be
//! quick: every name is put in wire form once, one encoder is reused for every answer, and the
//! NODATA answer (the SOA, compressed against the question) is shared by all names of one
//! length, which is all it depends on.

use std::sync::Arc;

use hashbrown::HashTable;
use hickory_proto::rr::{Name, RecordType};
use rustc_hash::FxHashMap;

use super::encode::{Encoder, wire_name};
use super::plan::{MxPlan, site_plan, view_plan};
use super::prepared::{Builder, NXDOMAIN, Prepared};
use super::records::{Context, Kind};
use super::snapshot::{Answers, Node, Snapshot, Variant, WarmCounters, name_hash};
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

/// Names a build writes that the topology does not already hold in wire form.
pub(super) struct Names {
    pub(super) origin: Vec<u8>,
    /// The apex and the view names, when views are on.
    pub(super) shared: Vec<(Name, Vec<u8>)>,
    /// Owners of the zone file's records, in the zone's order.
    pub(super) statics: Vec<Vec<u8>>,
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
pub(super) struct Out<'n> {
    pub(super) enc: Encoder<'n>,
    pub(super) bodies: Vec<u8>,
}

/// A node while the snapshot is being built.
pub(super) struct Draft<'n> {
    pub(super) name: &'n [u8],
    pub(super) nodata: Prepared,
}

/// The nodes of a build, and their answers in the order they come.
#[derive(Default)]
pub(super) struct Drafts<'n> {
    pub(super) index: FxHashMap<&'n [u8], u32>,
    pub(super) nodes: Vec<Draft<'n>>,
    pub(super) rrsets: Vec<(u32, u16, Answers)>,
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
        for (kind, rtype) in Kind::ALL {
            let view = View::Site(site_id);
            if let Some(variant) = cx.variant(&mut out, &site.wire, view, &plans[site_id], kind) {
                cx.add(
                    &mut drafts,
                    &mut out,
                    &site.domain,
                    &site.wire,
                    rtype,
                    Answers::Site(variant),
                )?;
            }
        }
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
    let view_plans: Vec<(View, MxPlan)> = if names.shared.is_empty() {
        Vec::new()
    } else {
        topology
            .views()
            .map(|view| (view, view_plan(&topology, &health, view)))
            .collect()
    };
    for (name, wire) in &names.shared {
        for (kind, rtype) in Kind::ALL {
            let variants: Vec<Option<Variant>> = view_plans
                .iter()
                .map(|(view, plan)| cx.variant(&mut out, wire, *view, plan, kind))
                .collect();
            if variants.iter().all(Option::is_none) {
                continue;
            }
            // A view with no address of this family answers NODATA, as the name would alone.
            let views = variants
                .into_iter()
                .map(|v| {
                    v.unwrap_or_else(|| Variant {
                        normal: cx.nodata(&mut out, wire.len()),
                        warm: None,
                    })
                })
                .collect();
            cx.add(
                &mut drafts,
                &mut out,
                name,
                wire,
                rtype,
                Answers::Views(views),
            )?;
        }
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

pub(super) fn check_size(
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
