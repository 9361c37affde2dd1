//! The NSEC chain of a signed build, made once every name and its types are known: each name's
//! NSEC record (answered by itself for type NSEC), each name's signed NODATA answer, the byte
//! blocks NXDOMAIN proofs are put together from, and the NODATA answers of views.
//!
//! A name's NSEC lists the types it has in this generation. A name answered per view (the apex
//! and `views.names`) or with a warm-standby variant can have a type in one answer and not in
//! another: its chain NSEC lists the union, and a NODATA answer of one view carries an NSEC
//! with that view's own types (same owner, same next name, signed on its own). Both are true
//! for the resolver that receives them, so aggressive negative caching (RFC 8198) only ever
//! synthesises what smarthostd would answer it: the union NSEC denies only types no view has,
//! and a view's NSEC reaches only resolvers in that view (see deploy/GUIDE.md for ECS).

use hickory_proto::rr::RecordType;
use rustc_hash::FxHashMap;

use super::denial::Chain;
use super::draft::{Drafts, Out};
use super::encode::Rdata;
use super::prepared::{Builder, NOERROR, Prepared};
use super::records::Context;
use super::snapshot::Answers;
use crate::dnssec::canonical::{canonical_cmp, type_bitmap};
use crate::wire::{TYPE_NSEC, TYPE_RRSIG};

/// Adds the NSEC records and signed negative answers to a signed build's drafts.
pub(super) fn add<'n>(cx: &Context<'n>, drafts: &mut Drafts<'n>, out: &mut Out<'n, '_>) -> Chain {
    let n = drafts.nodes.len();
    let mut by_node: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, (node, _, _)) in drafts.rrsets.iter().enumerate() {
        by_node[*node as usize].push(i);
    }
    let union: Vec<Vec<u16>> = by_node
        .iter()
        .map(|rrsets| {
            rrsets
                .iter()
                .filter(|&&i| present_somewhere(&drafts.rrsets[i].2))
                .map(|&i| drafts.rrsets[i].1)
                .collect()
        })
        .collect();
    let mut order: Vec<usize> = (0..n).filter(|&i| !union[i].is_empty()).collect();
    order.sort_by(|&a, &b| canonical_cmp(drafts.nodes[a].name, drafts.nodes[b].name));
    let ttl = cx.soa_negative.ttl;
    let mut next_of: Vec<&'n [u8]> = vec![&[]; n];
    let mut rdata_of: Vec<Vec<u8>> = vec![Vec::new(); n];
    let mut chain = Chain::default();
    for (k, &node) in order.iter().enumerate() {
        let owner = drafts.nodes[node].name;
        let next = drafts.nodes[order[(k + 1) % order.len()]].name;
        next_of[node] = next;
        let rdata = nsec_rdata(next, &union[node]);
        // The NSEC RRset itself, for a query of type NSEC.
        let mut b = Builder::new(&mut out.enc, owner, true);
        b.record(owner, RecordType::NSEC, ttl, Rdata::Raw(&rdata));
        let answer = b.finish(NOERROR, true, &mut out.bodies);
        drafts
            .rrsets
            .push((node as u32, TYPE_NSEC, Answers::Fixed(answer)));
        drafts.nodes[node].nodata = nodata(cx, out, owner, owner, &rdata);
        // The block an NXDOMAIN proof copies: no pointer, so it follows any question.
        let mut b = Builder::new(&mut out.enc, owner, false);
        b.dnssec_record(owner, RecordType::NSEC, ttl, Rdata::Raw(&rdata));
        let block = b
            .finish(NOERROR, true, &mut out.bodies)
            .signed
            .expect("a signed build");
        chain.push(owner, block.range.clone(), block.answers);
        rdata_of[node] = rdata;
    }
    // An empty non-terminal's NODATA: the NSEC whose span holds it, proving it has no types
    // while names under it exist.
    for node in (0..n).filter(|&i| union[i].is_empty()) {
        let name = drafts.nodes[node].name;
        let after = order.partition_point(|&o| canonical_cmp(drafts.nodes[o].name, name).is_lt());
        let before = order[after.saturating_sub(1)];
        drafts.nodes[node].nodata =
            nodata(cx, out, name, drafts.nodes[before].name, &rdata_of[before]);
    }
    view_nodata(cx, drafts, out, &by_node, &next_of);
    chain
}

/// Gives each NODATA answer of a view (or of a site's normal answer beside a warm one) an NSEC
/// with the types that answer's view has at the name.
fn view_nodata<'n>(
    cx: &Context<'n>,
    drafts: &mut Drafts<'n>,
    out: &mut Out<'n, '_>,
    by_node: &[Vec<usize>],
    next_of: &[&'n [u8]],
) {
    let mut made: FxHashMap<(usize, Vec<u8>), Prepared> = FxHashMap::default();
    for (node, rrsets) in by_node.iter().enumerate() {
        for &i in rrsets {
            let slots = match &drafts.rrsets[i].2 {
                Answers::Fixed(_) => continue,
                Answers::Site(v) => usize::from(!v.normal.is_positive()),
                Answers::Views(vs) => vs.len(),
            };
            for slot in 0..slots {
                let nodata_here = match &drafts.rrsets[i].2 {
                    Answers::Views(vs) => !vs[slot].normal.is_positive(),
                    _ => true,
                };
                if !nodata_here {
                    continue;
                }
                let types: Vec<u16> = rrsets
                    .iter()
                    .filter(|&&j| present_in(&drafts.rrsets[j].2, slot))
                    .map(|&j| drafts.rrsets[j].1)
                    .collect();
                let owner = drafts.nodes[node].name;
                let rdata = nsec_rdata(next_of[node], &types);
                let prepared = made
                    .entry((node, rdata))
                    .or_insert_with_key(|(_, rdata)| nodata(cx, out, owner, owner, rdata))
                    .clone();
                match &mut drafts.rrsets[i].2 {
                    Answers::Views(vs) => vs[slot].normal = prepared,
                    Answers::Site(v) => v.normal = prepared,
                    Answers::Fixed(_) => {}
                }
            }
        }
    }
}

/// Whether some answer of this RRset has records: the type is in the name's chain NSEC.
fn present_somewhere(answers: &Answers) -> bool {
    match answers {
        Answers::Fixed(p) => p.is_positive(),
        Answers::Site(v) => v.normal.is_positive() || v.warm.is_some(),
        Answers::Views(vs) => vs
            .iter()
            .any(|v| v.normal.is_positive() || v.warm.is_some()),
    }
}

/// Whether the normal answer of view `slot` (for a site name: its only one) has records.
fn present_in(answers: &Answers, slot: usize) -> bool {
    match answers {
        Answers::Fixed(p) => p.is_positive(),
        Answers::Site(v) => v.normal.is_positive(),
        Answers::Views(vs) => vs.get(slot).is_some_and(|v| v.normal.is_positive()),
    }
}

/// A NODATA answer for `qname` proved by the NSEC of `owner` with data `rdata`.
fn nodata<'n>(
    cx: &Context<'n>,
    out: &mut Out<'n, '_>,
    qname: &'n [u8],
    owner: &'n [u8],
    rdata: &[u8],
) -> Prepared {
    let mut b = Builder::new(&mut out.enc, qname, true);
    cx.negative_soa(&mut b);
    b.dnssec_record(
        owner,
        RecordType::NSEC,
        cx.soa_negative.ttl,
        Rdata::Raw(rdata),
    );
    b.finish(NOERROR, true, &mut out.bodies)
}

/// NSEC record data: the next name (never compressed) and the bitmap of `types` with RRSIG and
/// NSEC, which every name of a signed zone has.
fn nsec_rdata(next: &[u8], types: &[u16]) -> Vec<u8> {
    let mut all = types.to_vec();
    all.extend([TYPE_RRSIG, TYPE_NSEC]);
    let mut rdata = next.to_vec();
    rdata.extend(type_bitmap(&all));
    rdata
}
