//! Proving a name does not exist, at query time, from NSEC records prepared with the zone.
//!
//! Each NSEC record of the chain and its RRSIGs are one ready byte block (owner uncompressed,
//! so it follows any question). An NXDOMAIN answer with DO carries the SOA block and two of
//! them, chosen per query: the NSEC that covers the name, and the one that covers the wildcard
//! at its closest encloser (RFC 4035 section 3.1.3.2), deduplicated when they are the same.
//! Both are found by binary search in canonical order; the closest encloser by walking the
//! name's labels through the node table. Nothing is signed or allocated per query.

use std::ops::Range;

use crate::dnssec::canonical::{MAX_KEY, canonical_key_below};

/// The NSEC chain in canonical order.
#[derive(Debug, Default)]
pub(super) struct Chain {
    /// The owners' canonical keys below the origin (which every name is under), back to back.
    pub(super) keys: Vec<u8>,
    /// The origin's length in wire form.
    pub(super) origin: usize,
    pub(super) links: Vec<Link>,
    /// The link that covers the wildcard at the apex (`*.<origin>`), which proves most
    /// NXDOMAINs: their closest encloser is the apex.
    apex_wildcard: usize,
}

/// The key of the label `*` below its parent: the wildcard at the apex, below the origin.
const WILDCARD_KEY: [u8; 3] = [1, b'*', 0];

/// One NSEC record of the chain.
#[derive(Debug)]
pub(super) struct Link {
    /// The first 8 bytes of its key (0 after the key's end), big-endian: most comparisons in a
    /// search end on it.
    pub(super) head: u64,
    /// Its owner's canonical key, the origin's left out, in [`Chain::keys`].
    pub(super) key: Range<u32>,
    /// The NSEC record and its RRSIGs, in the snapshot's byte arena.
    pub(super) block: Range<u32>,
    /// How many records the block holds.
    pub(super) records: u16,
}

impl Chain {
    /// Adds the NSEC record of `owner` (the next in canonical order), whose record and RRSIGs
    /// are `block` in the snapshot's arena.
    /// The first link's owner must be the origin.
    pub(super) fn push(&mut self, owner: &[u8], block: Range<u32>, records: u16) {
        if self.links.is_empty() {
            self.origin = owner.len();
        }
        let mut key = [0u8; MAX_KEY];
        let len = canonical_key_below(owner, self.origin, &mut key);
        let key = &key[..len];
        if key < &WILDCARD_KEY[..] {
            // Owners come in canonical order: the last one before the wildcard covers it.
            self.apex_wildcard = self.links.len();
        }
        let at = self.keys.len() as u32;
        self.keys.extend_from_slice(key);
        self.links.push(Link {
            head: head(key),
            key: at..self.keys.len() as u32,
            block,
            records,
        });
    }

    fn key(&self, link: &Link) -> &[u8] {
        &self.keys[link.key.start as usize..link.key.end as usize]
    }

    /// The link whose NSEC covers the name whose canonical key below the origin is `key` (a
    /// name not in the zone): the last owner before it (the apex sorts first, so every name
    /// under it has one).
    fn covering(&self, key: &[u8]) -> &Link {
        let first = head(key);
        let after = self.links.partition_point(|l| {
            // A difference in the first 8 bytes decides (a key's end pads with 0, the least
            // byte); a tie there is settled by the whole keys.
            l.head < first || (l.head == first && self.key(l) < key)
        });
        &self.links[after.saturating_sub(1)]
    }
}

/// The first 8 bytes of `key`, 0 after its end, as a big-endian number.
fn head(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = key.len().min(8);
    bytes[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(bytes)
}

/// The NSEC records that prove a name does not exist: where each lies in the snapshot's
/// bodies and how many records (NSEC and RRSIGs) it holds. `wildcard` is empty when the NSEC
/// that covers the name also covers the wildcard.
pub(super) struct Proof {
    pub(super) cover: (Range<usize>, u16),
    pub(super) wildcard: (Range<usize>, u16),
}

impl Chain {
    /// The proof that `qname` (lower-case wire form, under the origin, not in the zone) does
    /// not exist; `exists` says whether a name is in the zone.
    pub(super) fn nxdomain_proof(&self, qname: &[u8], exists: impl Fn(&[u8]) -> bool) -> Proof {
        let mut key = [0u8; MAX_KEY];
        let len = canonical_key_below(qname, self.origin, &mut key);
        let cover = self.covering(&key[..len]);
        // The wildcard at the closest encloser: the encloser's key, which is the start of the
        // name's (the name is under it), and the label `*` after it.
        let (encloser, labels) = self.closest_encloser(qname, exists);
        let wild = if labels == 0 {
            &self.links[self.apex_wildcard]
        } else {
            let at = 2 * (encloser.len() - self.origin - labels) + labels;
            key[at..at + 3].copy_from_slice(&WILDCARD_KEY);
            self.covering(&key[..at + 3])
        };
        let block = |l: &Link| (l.block.start as usize..l.block.end as usize, l.records);
        Proof {
            cover: block(cover),
            wildcard: if std::ptr::eq(cover, wild) {
                (0..0, 0)
            } else {
                block(wild)
            },
        }
    }

    /// The longest existing ancestor of `qname` (which does not exist itself), and how many
    /// labels it has below the origin: at worst the origin, which the snapshot has found in it.
    fn closest_encloser<'q>(
        &self,
        qname: &'q [u8],
        exists: impl Fn(&[u8]) -> bool,
    ) -> (&'q [u8], usize) {
        let mut at = usize::from(qname[0]) + 1;
        while qname.len() - at > self.origin {
            if exists(&qname[at..]) {
                break;
            }
            at += usize::from(qname[at]) + 1;
        }
        let suffix = &qname[at..];
        let mut labels = 0;
        let mut i = 0;
        while suffix.len() - i > self.origin {
            labels += 1;
            i += usize::from(suffix[i]) + 1;
        }
        (suffix, labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnssec::canonical::canonical_cmp;

    /// A wire name under `zone.` from labels of raw bytes, leftmost first.
    fn name(labels: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for l in labels.iter().chain([&b"zone"[..]].iter()) {
            out.push(l.len() as u8);
            out.extend_from_slice(l);
        }
        out.push(0);
        out
    }

    #[test]
    fn the_covering_link_is_the_last_owner_before_the_name_in_canonical_order() {
        // Owners whose keys share long heads, with bytes 0 and 1 inside labels.
        let mut owners: Vec<Vec<u8>> = vec![
            name(&[]),
            name(&[b"a"]),
            name(&[b"a", b"a"]),
            name(&[b"aaaaaaaa"]),
            name(&[b"aaaaaaaab"]),
            name(&[b"a\0"]),
            name(&[b"a\0\0\0\0\0\0\0"]),
            name(&[b"\x01"]),
            name(&[b"b", b"aaaaaaaa"]),
            name(&[b"zz"]),
        ];
        owners.sort_by(|a, b| canonical_cmp(a, b));
        let mut chain = Chain::default();
        for (i, o) in owners.iter().enumerate() {
            chain.push(o, i as u32..i as u32 + 1, 1);
        }
        let queries = [
            name(&[b"0"]),
            name(&[b"a", b"b"]),
            name(&[b"aaaaaaaa", b"x"]),
            name(&[b"aaaaaaaaa"]),
            name(&[b"a\0\0"]),
            name(&[b"a\0\0\0\0\0\0\0\0"]),
            name(&[b"\x01\x01"]),
            name(&[b"\0"]),
            name(&[b"*", b"b"]),
            name(&[b"zzz"]),
            name(&[b"m", b"zz"]),
        ];
        for q in &queries {
            let mut key = [0u8; MAX_KEY];
            let len = canonical_key_below(q, chain.origin, &mut key);
            let got = chain.covering(&key[..len]).block.start as usize;
            let want = owners
                .iter()
                .rposition(|o| canonical_cmp(o, q).is_lt())
                .unwrap();
            assert_eq!(got, want, "{q:?}");
        }
    }

    #[test]
    fn the_wildcard_proof_is_the_nsec_before_the_wildcard_at_the_closest_encloser() {
        // The apex's wildcard is covered by a prepared link, found once; deeper ones by search.
        for owners in [
            vec![name(&[]), name(&[b"a"]), name(&[b"a", b"b"]), name(&[b"c"])],
            vec![
                name(&[]),
                name(&[b"!"]),
                name(&[b"\x01"]),
                name(&[b"+"]),
                name(&[b"m"]),
            ],
            vec![
                name(&[]),
                name(&[b"!", b"b"]),
                name(&[b"!"]),
                name(&[b"x", b"b"]),
            ],
        ] {
            let mut owners = owners;
            owners.sort_by(|a, b| canonical_cmp(a, b));
            let mut chain = Chain::default();
            for (i, o) in owners.iter().enumerate() {
                chain.push(o, i as u32..i as u32 + 1, 1);
            }
            let exists = |n: &[u8]| owners.iter().any(|o| o == n);
            for q in [
                name(&[b"zzz"]),
                name(&[b"x", b"b"]),
                name(&[b"x", b"a"]),
                name(&[b"\0"]),
            ] {
                if exists(&q) {
                    continue;
                }
                let (encloser, _) = chain.closest_encloser(&q, exists);
                let mut wildcard = vec![1, b'*'];
                wildcard.extend_from_slice(encloser);
                let last_before = |n: &[u8]| {
                    owners
                        .iter()
                        .rposition(|o| canonical_cmp(o, n).is_lt())
                        .unwrap()
                };
                let proof = chain.nxdomain_proof(&q, exists);
                let (cover, wild) = (last_before(&q), last_before(&wildcard));
                assert_eq!(proof.cover.0.start, cover, "{q:?}");
                let want = if wild == cover { 0..0 } else { wild..wild + 1 };
                assert_eq!(proof.wildcard.0, want, "{q:?} under {owners:?}");
            }
        }
    }
}
