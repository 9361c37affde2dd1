//! The pieces of a build in progress: the names it writes, where it writes, the nodes and
//! their answers before they are laid out as a [`Snapshot`](super::Snapshot), and the size
//! check every answer passes.

use hickory_proto::rr::{Name, RecordType};
use rustc_hash::FxHashMap;

use super::body::{MAX_MESSAGE, OPT_RESERVE};
use super::encode::Encoder;
use super::prepared::Prepared;
use super::signed::Bodies;
use super::snapshot::{Answers, Variant};
use crate::topology::Topology;
use crate::wire::wire_name;
use crate::zone::StaticZone;

/// An answer that cannot be sent even over TCP.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "the answer for {name} {rtype} would be {size} bytes, over the 65,535 a DNS message holds: fewer hosts or fallback sites for it"
)]
pub struct TooLarge {
    /// The name whose answer is too large.
    pub name: String,
    /// The type of that answer.
    pub rtype: RecordType,
    /// Bytes its largest response would take, header, question and room for EDNS included.
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
    pub(super) fn new(topology: &Topology, zone: &StaticZone) -> Self {
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

/// Where a build writes: the reused encoder and the arena of finished answers (with the
/// signer, in a signed build).
pub(super) struct Out<'n, 'k> {
    pub(super) enc: Encoder<'n>,
    pub(super) bodies: Bodies<'k>,
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
