//! The immutable snapshot the DNS edge reads: every answer of one generation, prepared.
//!
//! Laid out for few allocations and a cheap lookup: the names live in one byte arena and the
//! answers' bytes in another; a hash table of nodes points into both.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use super::body::Body;
use super::denial::Chain;
use super::health_view::HealthView;
use super::plan::MxPlan;
use super::prepared::{NOERROR, Prepared};
use crate::topology::{SiteId, Topology};
use crate::wire::{TYPE_ANY, TYPE_AXFR, TYPE_IXFR, TYPE_RRSIG};

/// One generation of the zone: topology, health, and every answer prepared from them.
pub struct Snapshot {
    /// Grows by one with every publish.
    pub generation: u64,
    /// The SOA serial served with this generation.
    pub serial: u32,
    /// The sites, hosts and client networks the answers were built from: views and `allow_query`
    /// are decided against it.
    pub topology: Arc<Topology>,
    /// The health the answers were built from.
    pub health: Arc<HealthView>,
    /// Each site's MX plan, indexed by [`SiteId`] (for status and logs).
    pub plans: Vec<MxPlan>,
    /// Carried from generation to generation while the topology stays.
    pub warm: Arc<WarmCounters>,
    /// The origin in lower-case wire form.
    pub(super) origin: Box<[u8]>,
    /// Every node's name, lower-case wire form, back to back.
    pub(super) names: Vec<u8>,
    pub(super) nodes: HashTable<Node>,
    /// Answers by type, node by node.
    pub(super) rrsets: Vec<(u16, Answers)>,
    /// The bytes of every prepared answer.
    pub(super) bodies: Vec<u8>,
    /// The authority section of an NXDOMAIN answer, encoded without pointers so that it can
    /// follow any question (signed: the SOA and its RRSIGs; the NSEC proofs come from `chain`).
    pub(super) nxdomain: Prepared,
    /// The NSEC chain of a signed zone, for NXDOMAIN proofs; empty when unsigned.
    pub(super) chain: Chain,
    /// When the answers must be built again for their signatures: the first signature to reach
    /// its refresh point, or the next key timing event (seconds since the epoch).
    pub resign_at: Option<u64>,
    /// Signatures made for this generation (the rest came from the cache).
    pub signatures_made: usize,
}

/// One name of the zone.
pub(super) struct Node {
    pub(super) name_at: u32,
    pub(super) name_len: u8,
    /// This node's answers in [`Snapshot::rrsets`].
    pub(super) rrsets_at: u32,
    pub(super) rrsets_len: u16,
    /// The NOERROR/NODATA answer for types the name does not have.
    pub(super) nodata: Prepared,
}

/// The answers of one name and type.
pub(super) enum Answers {
    Fixed(Prepared),
    /// A site's MX answer, with the warm-standby variant.
    Site(Variant),
    /// A shared name's MX answer per view, indexed by [`Topology::view_index`].
    Views(Box<[Variant]>),
}

/// An answer and the variant served to a share of queries to keep standby relays warm.
pub(super) struct Variant {
    pub(super) normal: Prepared,
    pub(super) warm: Option<Warm>,
}

/// The warm-standby variant of a site's answer.
pub struct Warm {
    /// The answer with the first fallback site's healthy hosts raised to the local preference.
    pub answer: Prepared,
    /// The site whose answer this is: its counter in [`WarmCounters`] decides which queries get it.
    pub site: SiteId,
    /// The share of the site's answers that are warm (`sites.<name>.warm_share`, 0 to 0.5).
    pub share: f64,
}

/// A prepared answer with its bytes: the plain or the signed body, as the query's DO bit asked.
#[derive(Clone, Copy)]
pub struct Answer<'a> {
    /// The low four bits of the RCODE.
    pub rcode: u8,
    /// Whether the AA flag is set.
    pub authoritative: bool,
    /// Records in the answer, authority and additional sections.
    pub counts: [u16; 3],
    /// The sections' bytes, in up to three pieces (an NXDOMAIN proof is put together from
    /// prepared NSEC records per query).
    parts: [&'a [u8]; 3],
    /// Bytes before the additional section.
    essential_len: usize,
}

impl<'a> Answer<'a> {
    pub(super) fn new(
        prepared: &Prepared,
        body: &Body,
        parts: [&'a [u8]; 3],
        counts: [u16; 3],
    ) -> Self {
        Self {
            rcode: prepared.rcode,
            authoritative: prepared.authoritative,
            counts,
            parts,
            essential_len: body.essential_len as usize,
        }
    }

    /// Bytes of all sections.
    pub fn len(&self) -> usize {
        self.parts.iter().map(|p| p.len()).sum()
    }

    /// Whether there are no records at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The same, with nothing that could be dropped: every piece is essential.
    pub(super) fn whole(mut self) -> Self {
        self.essential_len = self.len();
        self
    }

    /// Bytes of the sections without the additional one and its RRSIGs.
    pub fn essential_len(&self) -> usize {
        self.essential_len
    }

    /// Appends the sections to `out`; without `additional`, only up to the additional section.
    pub fn write_to(&self, out: &mut Vec<u8>, additional: bool) {
        if additional {
            for part in self.parts {
                out.extend_from_slice(part);
            }
        } else {
            // The additional section only ever follows in the first piece.
            out.extend_from_slice(&self.parts[0][..self.essential_len.min(self.parts[0].len())]);
            for part in &self.parts[1..] {
                out.extend_from_slice(part);
            }
        }
    }
}

/// What the zone says about a query, before any per-client decision.
pub enum Lookup<'a> {
    /// A prepared answer (positive or NODATA), maybe with a warm variant to choose from.
    Found {
        /// The answer most queries get.
        answer: Answer<'a>,
        /// For a site with a `warm_share`, the warm-standby variant and its share: the responder
        /// picks which of the two a query gets.
        warm: Option<(Answer<'a>, &'a Warm)>,
    },
    /// A name under the origin that does not exist.
    NxDomain(Answer<'a>),
    /// Zone transfers are not offered.
    TransferRefused,
    /// A name outside the zone: not ours to answer.
    NotAuthoritative,
}

/// The hash of a lower-case wire name in the node table.
pub(super) fn name_hash(name: &[u8]) -> u64 {
    FxBuildHasher.hash_one(name)
}

impl Snapshot {
    /// The plain body of `prepared`, or with `dnssec_ok` its signed twin when there is one.
    pub(super) fn answer<'a>(&'a self, prepared: &'a Prepared, dnssec_ok: bool) -> Answer<'a> {
        let body = match &prepared.signed {
            Some(signed) if dnssec_ok => signed,
            _ => &prepared.plain,
        };
        Answer::new(
            prepared,
            body,
            [&self.bodies[body.span()], &[], &[]],
            [body.answers, body.authorities, body.additionals],
        )
    }

    /// The NXDOMAIN answer for `qname`; with `dnssec_ok` in a signed zone, with its proofs.
    pub(super) fn nxdomain_answer(&self, qname: &[u8], dnssec_ok: bool) -> Answer<'_> {
        let prepared = &self.nxdomain;
        let (Some(body), true, false) = (&prepared.signed, dnssec_ok, self.chain.links.is_empty())
        else {
            return self.answer(prepared, false);
        };
        let proof = (self.chain).nxdomain_proof(qname, |name| self.node(name).is_some());
        let (cover, wildcard) = (proof.cover, proof.wildcard);
        Answer::new(
            prepared,
            body,
            [
                &self.bodies[body.span()],
                &self.bodies[cover.0],
                &self.bodies[wildcard.0],
            ],
            [0, body.authorities + cover.1 + wildcard.1, 0],
        )
        .whole()
    }

    /// The RRSIG records of the answer's first RRset, as a query for type RRSIG gets them.
    fn signatures<'a>(&'a self, prepared: &'a Prepared) -> Option<Answer<'a>> {
        let body = prepared.signed.as_ref()?;
        let (at, len, count) = body.answer_sigs;
        if count == 0 {
            return None;
        }
        let start = body.span().start + usize::from(at);
        let bytes = &self.bodies[start..start + usize::from(len)];
        let mut answer = Answer::new(prepared, body, [bytes, &[], &[]], [count, 0, 0]);
        answer.rcode = NOERROR;
        answer.essential_len = bytes.len();
        Some(answer)
    }

    pub(super) fn node(&self, qname: &[u8]) -> Option<&Node> {
        self.nodes.find(name_hash(qname), |n| {
            let at = n.name_at as usize;
            self.names[at..at + usize::from(n.name_len)] == *qname
        })
    }

    /// Looks up a lower-case wire name and type; `dnssec_ok` (the query's DO bit) picks the
    /// signed bodies. `view` is called only for shared names.
    pub fn lookup(
        &self,
        qname: &[u8],
        qtype: u16,
        dnssec_ok: bool,
        view: impl FnOnce() -> usize,
    ) -> Lookup<'_> {
        let Some(node) = self.node(qname) else {
            return if self.in_zone(qname) {
                Lookup::NxDomain(self.nxdomain_answer(qname, dnssec_ok))
            } else {
                Lookup::NotAuthoritative
            };
        };
        if qtype == TYPE_AXFR || qtype == TYPE_IXFR {
            return Lookup::TransferRefused;
        }
        let at = node.rrsets_at as usize;
        let rrsets = &self.rrsets[at..at + usize::from(node.rrsets_len)];
        // RFC 8482: one RRset is a complete answer to ANY; a query for RRSIG gets that RRset's
        // signatures, as Knot answers it.
        let found = if qtype == TYPE_ANY || qtype == TYPE_RRSIG {
            rrsets.first()
        } else {
            rrsets.iter().find(|(t, _)| *t == qtype)
        };
        let nodata = || Lookup::Found {
            answer: self.answer(&node.nodata, dnssec_ok),
            warm: None,
        };
        let variant = match found.map(|(_, a)| a) {
            None => return nodata(),
            Some(Answers::Fixed(p)) => {
                if qtype == TYPE_RRSIG {
                    return self
                        .signatures(p)
                        .map_or_else(nodata, |answer| Lookup::Found { answer, warm: None });
                }
                return Lookup::Found {
                    answer: self.answer(p, dnssec_ok),
                    warm: None,
                };
            }
            Some(Answers::Site(variant)) => variant,
            Some(Answers::Views(views)) => &views[view()],
        };
        if qtype == TYPE_RRSIG {
            return self
                .signatures(&variant.normal)
                .map_or_else(nodata, |answer| Lookup::Found { answer, warm: None });
        }
        Lookup::Found {
            answer: self.answer(&variant.normal, dnssec_ok),
            warm: variant
                .warm
                .as_ref()
                .map(|w| (self.answer(&w.answer, dnssec_ok), w)),
        }
    }

    /// Every RRset of the zone as clients of view `view` (an index of [`Topology::views`]) are
    /// answered: owner (lower-case wire form), type, and the answer with DO (`dnssec_ok`: its
    /// RRSIGs after it) or without, the warm-standby variants left out; the NSEC record of
    /// every name and the DNSKEY RRset included in a signed zone. Each answer's sections are
    /// compressed against a question for its owner at offset 12 (put one before them to decode
    /// them). For zone transfers: note that at a name answered per view the NSEC record here
    /// lists the types of every view; the one with the view's own types is in that view's
    /// NODATA answers.
    pub fn enumerate(
        &self,
        view: usize,
        dnssec_ok: bool,
    ) -> impl Iterator<Item = (&[u8], u16, Answer<'_>)> + '_ {
        self.nodes.iter().flat_map(move |node| {
            let at = node.name_at as usize;
            let name = &self.names[at..at + usize::from(node.name_len)];
            let first = node.rrsets_at as usize;
            self.rrsets[first..first + usize::from(node.rrsets_len)]
                .iter()
                .filter_map(move |(rtype, answers)| {
                    let prepared = match answers {
                        Answers::Fixed(p) => p,
                        Answers::Site(v) => &v.normal,
                        Answers::Views(vs) => &vs.get(view)?.normal,
                    };
                    (prepared.rcode == NOERROR && prepared.plain.answers > 0)
                        .then(|| (name, *rtype, self.answer(prepared, dnssec_ok)))
                })
        })
    }

    /// Whether a lower-case wire name is the origin or under it.
    pub fn in_zone(&self, qname: &[u8]) -> bool {
        let mut at = 0;
        while at < qname.len() {
            if qname[at..] == *self.origin {
                return true;
            }
            if qname[at] == 0 {
                return false;
            }
            at += usize::from(qname[at]) + 1;
        }
        false
    }
}

/// Per-site counters that spread the warm-standby variant evenly over answers.
#[derive(Debug, Default)]
pub struct WarmCounters(Box<[AtomicU64]>);

impl WarmCounters {
    /// Counters for `sites` sites, from zero.
    pub fn new(sites: usize) -> Self {
        Self((0..sites).map(|_| AtomicU64::new(0)).collect())
    }

    /// Answers of `site` that could have been warm so far.
    pub fn eligible(&self, site: usize) -> u64 {
        self.0.get(site).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Whether this answer of `site` is a warm one: exactly ⌊n × share⌋ of the first n are.
    pub fn pick(&self, site: usize, share: f64) -> bool {
        let Some(counter) = self.0.get(site) else {
            return false;
        };
        let n = counter.fetch_add(1, Ordering::Relaxed) as f64;
        ((n + 1.0) * share).floor() > (n * share).floor()
    }
}
