//! The immutable snapshot the DNS edge reads: every answer of one generation, prepared.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustc_hash::FxHashMap;

use super::plan::MxPlan;
use super::prepared::Prepared;
use crate::health::HealthView;
use crate::topology::{SiteId, Topology};

/// DNS type codes the lookup treats specially.
pub const TYPE_ANY: u16 = 255;
pub const TYPE_AXFR: u16 = 252;
pub const TYPE_IXFR: u16 = 251;
pub const TYPE_OPT: u16 = 41;

/// One generation of the zone: topology, health, and every answer prepared from them.
pub struct Snapshot {
    /// Grows by one with every publish.
    pub generation: u64,
    /// The SOA serial served with this generation.
    pub serial: u32,
    pub topology: Arc<Topology>,
    pub health: Arc<HealthView>,
    /// Each site's MX plan, indexed by [`SiteId`] (for status and logs).
    pub plans: Vec<MxPlan>,
    /// The origin in lower-case wire form.
    pub(super) origin: Box<[u8]>,
    /// Names in lower-case wire form.
    pub(super) nodes: FxHashMap<Box<[u8]>, Node>,
    /// The authority section of an NXDOMAIN answer, encoded without pointers so that it can
    /// follow any question.
    pub(super) nxdomain: Prepared,
    /// Carried from generation to generation while the topology stays.
    pub warm: Arc<WarmCounters>,
}

/// One name of the zone and its answers by type.
pub(super) struct Node {
    pub(super) rrsets: Vec<(u16, Answers)>,
    /// The type answered for ANY (RFC 8482: one RRset is enough).
    pub(super) any: Option<usize>,
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
    pub answer: Prepared,
    pub site: SiteId,
    pub share: f64,
}

/// What the zone says about a query, before any per-client decision.
pub enum Lookup<'a> {
    /// A prepared answer (positive or NODATA), maybe with a warm variant to choose from.
    Found {
        answer: &'a Prepared,
        warm: Option<&'a Warm>,
    },
    /// A name under the origin that does not exist.
    NxDomain(&'a Prepared),
    /// Zone transfers are not offered.
    TransferRefused,
    /// A name outside the zone: not ours to answer.
    NotAuthoritative,
}

impl Snapshot {
    /// Looks up a lower-case wire name and type. `view` is called only for shared names.
    pub fn lookup(&self, qname: &[u8], qtype: u16, view: impl FnOnce() -> usize) -> Lookup<'_> {
        let Some(node) = self.nodes.get(qname) else {
            return if self.in_zone(qname) {
                Lookup::NxDomain(&self.nxdomain)
            } else {
                Lookup::NotAuthoritative
            };
        };
        if qtype == TYPE_AXFR || qtype == TYPE_IXFR {
            return Lookup::TransferRefused;
        }
        let index = if qtype == TYPE_ANY {
            node.any
        } else {
            node.rrsets.iter().position(|(t, _)| *t == qtype)
        };
        let Some(index) = index else {
            return Lookup::Found {
                answer: &node.nodata,
                warm: None,
            };
        };
        let variant = match &node.rrsets[index].1 {
            Answers::Fixed(answer) => return Lookup::Found { answer, warm: None },
            Answers::Site(variant) => variant,
            Answers::Views(views) => &views[view()],
        };
        Lookup::Found {
            answer: &variant.normal,
            warm: variant.warm.as_ref(),
        }
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

    /// Whether the name has answers that depend on the client's view.
    pub fn is_shared(&self, qname: &[u8]) -> bool {
        self.nodes
            .get(qname)
            .is_some_and(|n| n.rrsets.iter().any(|(_, a)| matches!(a, Answers::Views(_))))
    }

    /// The number of names served.
    pub fn name_count(&self) -> usize {
        self.nodes.len()
    }
}

/// Per-site counters that spread the warm-standby variant evenly over answers.
#[derive(Debug, Default)]
pub struct WarmCounters(Box<[AtomicU64]>);

impl WarmCounters {
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
