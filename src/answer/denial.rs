//! Proving a name does not exist, at query time, from NSEC records prepared with the zone.
//!
//! Each NSEC record of the chain and its RRSIGs are one ready byte block (owner uncompressed,
//! so it follows any question). An NXDOMAIN answer with DO carries the SOA block and two of
//! them, chosen per query: the NSEC that covers the name, and the one that covers the wildcard
//! at its closest encloser (RFC 4035 section 3.1.3.2), deduplicated when they are the same.
//! Both are found by binary search in canonical order; the closest encloser by walking the
//! name's labels through the node table. Nothing is signed or allocated per query.

use std::ops::Range;

use super::snapshot::{Answer, Snapshot};
use crate::dnssec::canonical::canonical_cmp;

/// The NSEC chain in canonical order.
#[derive(Debug, Default)]
pub(super) struct Chain {
    /// Owner names, lower-case wire form, back to back.
    pub(super) names: Vec<u8>,
    pub(super) links: Vec<Link>,
}

/// One NSEC record of the chain.
#[derive(Debug)]
pub(super) struct Link {
    /// Its owner in [`Chain::names`].
    pub(super) name: Range<u32>,
    /// The NSEC record and its RRSIGs, in the snapshot's byte arena.
    pub(super) block: Range<u32>,
    /// How many records the block holds.
    pub(super) records: u16,
}

impl Chain {
    fn name(&self, link: &Link) -> &[u8] {
        &self.names[link.name.start as usize..link.name.end as usize]
    }

    /// The link whose NSEC covers `name` (a name not in the zone): the last owner before it in
    /// canonical order (the apex sorts first, so every name under it has one).
    fn covering(&self, name: &[u8]) -> &Link {
        let after = self
            .links
            .partition_point(|l| canonical_cmp(self.name(l), name).is_lt());
        &self.links[after.saturating_sub(1)]
    }
}

impl Snapshot {
    /// The NXDOMAIN answer for `qname`; with `dnssec_ok` in a signed zone, with its proofs.
    pub(super) fn nxdomain_answer(&self, qname: &[u8], dnssec_ok: bool) -> Answer<'_> {
        let prepared = &self.nxdomain;
        let (Some(body), true, false) = (&prepared.signed, dnssec_ok, self.chain.links.is_empty())
        else {
            return self.answer(prepared, false);
        };
        let cover = self.chain.covering(qname);
        let encloser = self.closest_encloser(qname);
        let mut wildcard = [0u8; 257];
        wildcard[..2].copy_from_slice(b"\x01*");
        wildcard[2..2 + encloser.len()].copy_from_slice(encloser);
        let wild = self.chain.covering(&wildcard[..2 + encloser.len()]);
        let block = |l: &Link| &self.bodies[l.block.start as usize..l.block.end as usize];
        let (second, second_records) = if std::ptr::eq(cover, wild) {
            (&[][..], 0)
        } else {
            (block(wild), wild.records)
        };
        Answer::new(
            prepared,
            body,
            [&self.bodies[body.range.clone()], block(cover), second],
            [0, body.authorities + cover.records + second_records, 0],
        )
        .whole()
    }

    /// The longest existing ancestor of `qname` (which does not exist itself): at worst the
    /// origin, which [`Snapshot::in_zone`] has found in it.
    fn closest_encloser<'q>(&self, qname: &'q [u8]) -> &'q [u8] {
        let mut at = usize::from(qname[0]) + 1;
        while at < qname.len() {
            let suffix = &qname[at..];
            if self.node(suffix).is_some() || qname[at] == 0 {
                return suffix;
            }
            at += usize::from(qname[at]) + 1;
        }
        &qname[qname.len() - 1..]
    }
}
