//! `build`: topology + static zone + health + demotions → a [`Snapshot`] with every answer
//! prepared.
//!
//! Pure: no I/O, no clock (a signed build is given the time). Runs on every health transition
//! and reload, so it is written to be quick: every name is put in wire form once, one encoder
//! is reused for every answer, and the NODATA answer (the SOA, compressed against the question)
//! is shared by all names of one length, which is all it depends on.
//!
//! A signed build gives every answer a signed twin: RRSIGs from the signer (which takes what
//! its cache holds and signs the rest), the DNSKEY RRset at the apex, and once every name is
//! known the NSEC chain and the signed negative answers ([`chain`](super::chain)).

use std::sync::Arc;

use hashbrown::HashTable;
use hickory_proto::rr::RecordType;

use super::demoted_plan;
use super::demotions::Demotions;
use super::denial::Chain;
use super::draft::{Drafts, Names, Out, TooLarge};
use super::encode::{Encoder, Rdata};
use super::health_view::HealthView;
use super::plan::MxPlan;
use super::prepared::{Builder, NOERROR, NXDOMAIN};
use super::records::{Context, Kind};
use super::signed::Bodies;
use super::snapshot::{Answers, Node, Snapshot, Variant, WarmCounters, name_hash};
use crate::dnssec::{SignatureCache, Signer, ZoneKeys};
use crate::topology::{Topology, View};
use crate::wire::TYPE_DNSKEY;
use crate::zone::StaticZone;

/// What a signed build needs: the keys, the time (seconds since the epoch: which keys are
/// published and active, and the signatures' times) and the signatures of earlier builds.
pub struct Signing<'k> {
    /// The zone's keys and the signatures' lifetime.
    pub keys: &'k ZoneKeys,
    /// The build's time.
    pub now: u64,
    /// Signatures kept from build to build; this build takes what it can and adds the rest.
    pub cache: &'k mut SignatureCache,
}

/// Builds generation `generation` with SOA serial `serial`; `demotions` are the sites whose
/// blocklisted egress moves their relays behind clean sites. With `signing`, every answer also
/// gets its signed twin.
pub fn build(
    topology: Arc<Topology>,
    zone: &StaticZone,
    health: Arc<HealthView>,
    demotions: &Demotions,
    serial: u32,
    generation: u64,
    signing: Option<Signing<'_>>,
) -> Result<Snapshot, TooLarge> {
    let names = Names::new(&topology, zone);
    let mut cx = Context::new(&topology, zone, &health, demotions, serial, &names);
    let capacity = 64 * (topology.hosts.len() + topology.sites.len() * 16) + 4096;
    let (keys, now) = match &signing {
        Some(s) => (Some(s.keys), s.now),
        None => (None, 0),
    };
    let signer =
        signing.map(|s| Signer::new(&s.keys.keys, s.keys.lifetime, s.now, &names.origin, s.cache));
    let mut out = Out {
        enc: Encoder::default(),
        bodies: Bodies::new(capacity * if signer.is_some() { 4 } else { 1 }, signer),
    };
    out.enc.set_signing(keys.is_some());
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
    if let Some(keys) = keys {
        // The published keys, with the SOA's TTL.
        let mut b = Builder::new(&mut out.enc, &names.origin, true);
        for key in keys.keys.published(now) {
            b.record(
                &names.origin,
                RecordType::DNSKEY,
                cx.soa_ttl(),
                Rdata::Raw(&key.dnskey),
            );
        }
        if b.answer_count() > 0 {
            let answer = b.finish(NOERROR, true, &mut out.bodies);
            let origin = &topology.origin;
            let rtype = RecordType::from(TYPE_DNSKEY);
            cx.add(
                &mut drafts,
                &mut out,
                origin,
                &names.origin,
                rtype,
                Answers::Fixed(answer),
            )?;
        }
    }
    if keys.is_some() {
        // The pinned relays' TLSA records, published only signed: a DANE sender uses no others
        // (RFC 7672 section 2.2). Their `_tcp` parents become empty non-terminals below.
        for rrset in topology
            .tlsa
            .iter()
            .filter(|r| topology.origin.zone_of(&r.owner))
        {
            let mut b = Builder::new(&mut out.enc, &rrset.wire, true);
            for rdata in &rrset.rdata {
                b.record(
                    &rrset.wire,
                    RecordType::TLSA,
                    topology.answer.ttl,
                    Rdata::Raw(rdata),
                );
            }
            let answer = b.finish(NOERROR, true, &mut out.bodies);
            cx.add(
                &mut drafts,
                &mut out,
                &rrset.owner,
                &rrset.wire,
                RecordType::TLSA,
                Answers::Fixed(answer),
            )?;
        }
    }
    let plans: Vec<MxPlan> = (0..topology.sites.len())
        .map(|s| demoted_plan::plan(&topology, &health, demotions, View::Site(s)))
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
            .map(|view| {
                (
                    view,
                    demoted_plan::plan(&topology, &health, demotions, view),
                )
            })
            .collect()
    };
    for (name, wire) in &names.shared {
        for (kind, rtype) in Kind::ALL {
            // The apex's TXT records are the zone file's (SPF, verification tokens).
            if kind == Kind::Note && *name == topology.origin {
                continue;
            }
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

    let chain = match keys {
        Some(_) => super::chain::add(&cx, &mut drafts, &mut out),
        None => Chain::default(),
    };
    let mut nxdomain = Builder::new(&mut out.enc, &names.origin, false);
    cx.negative_soa(&mut nxdomain);
    let nxdomain = nxdomain.finish(NXDOMAIN, true, &mut out.bodies);
    let (names_arena, nodes, rrsets) = assemble(drafts);
    let Bodies { bytes, signer, .. } = out.bodies;
    let (resign_at, signatures_made) = match (&signer, keys) {
        (Some(s), Some(k)) => {
            let next_key_event = k.keys.next_event(now);
            let at = [s.next_refresh(), next_key_event]
                .into_iter()
                .flatten()
                .min();
            (at, s.made)
        }
        _ => (None, 0),
    };
    drop(signer);
    Ok(Snapshot {
        generation,
        serial,
        origin: names.origin.clone().into(),
        names: names_arena,
        nodes,
        rrsets,
        bodies: bytes,
        nxdomain,
        chain,
        resign_at,
        signatures_made,
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
