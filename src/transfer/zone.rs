//! The zone as a secondary receives it: every RRset of the default view's answers (with DNSSEC,
//! their RRSIGs, the NSEC chain and the DNSKEY RRset too), between two copies of the SOA, in
//! messages of at most [`MESSAGE_TARGET`] bytes (RFC 5936); the versions served lately, for
//! incremental transfers (RFC 1995).

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, OpCode, Query};
use hickory_proto::rr::{RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;

use crate::answer::{Answer, Lookup, Snapshot};
use crate::wire::HEADER_LEN;
use crate::wire::{CLASS_IN, TYPE_SOA, wire_name};

/// Records put in one message, counted in their uncompressed size: well under the 64 KiB a TCP
/// message may hold, as BIND and Knot fill theirs.
pub const MESSAGE_TARGET: usize = 16 * 1024;

/// The zone's records: the SOA apart, then the rest (the SOA's RRSIGs among them).
#[derive(Debug)]
pub struct ZoneRecords {
    /// The apex SOA, first and last in a transfer.
    pub soa: Record,
    /// Every other record, RRset by RRset.
    pub rest: Vec<Record>,
}

impl ZoneRecords {
    /// The records of `snapshot` as the default view answers them; `None` when the snapshot
    /// has no SOA (it always has).
    pub fn of(snapshot: &Snapshot) -> Option<Self> {
        let topology = &snapshot.topology;
        let view = topology.view_index(topology.default_view);
        let mut soa = None;
        let mut rest = Vec::new();
        for (owner, rtype, answer) in snapshot.enumerate(view, true) {
            for record in decode(owner, rtype, &answer) {
                let is_soa = u16::from(record.record_type()) == TYPE_SOA;
                if is_soa && soa.is_none() {
                    soa = Some(record);
                } else if !is_soa {
                    rest.push(record);
                }
            }
        }
        Some(Self { soa: soa?, rest })
    }

    /// The SOA serial.
    pub fn serial(&self) -> u32 {
        match &self.soa.data {
            RData::SOA(soa) => soa.serial,
            _ => 0,
        }
    }

    /// The messages of a full transfer (AXFR, or IXFR answered as one) for request `id` and
    /// its question, unsigned: SOA, the rest, SOA.
    pub fn messages(&self, id: u16, question: &Query) -> Vec<Vec<u8>> {
        let mut records = Vec::with_capacity(self.rest.len() + 2);
        records.push(&self.soa);
        records.extend(self.rest.iter());
        records.push(&self.soa);
        pack(id, question, &records)
    }

    /// The messages of an incremental transfer from `old` to this version (RFC 1995 section
    /// 4, one difference sequence): SOA, old SOA, what went, SOA, what came, SOA.
    pub fn incremental(&self, old: &ZoneRecords, id: u16, question: &Query) -> Vec<Vec<u8>> {
        let wire = |r: &Record| r.to_bytes().unwrap_or_default();
        let before: HashSet<Vec<u8>> = old.rest.iter().map(wire).collect();
        let after: HashSet<Vec<u8>> = self.rest.iter().map(wire).collect();
        let mut records = vec![&self.soa, &old.soa];
        records.extend(old.rest.iter().filter(|r| !after.contains(&wire(r))));
        records.push(&self.soa);
        records.extend(self.rest.iter().filter(|r| !before.contains(&wire(r))));
        records.push(&self.soa);
        pack(id, question, &records)
    }

    /// The answer to an IXFR from a secondary already at the current serial: the SOA alone
    /// (RFC 1995 section 4).
    pub fn up_to_date(&self, id: u16, question: &Query) -> Vec<u8> {
        message(id, question, true, &[&self.soa])
    }
}

/// `records` in messages of at most [`MESSAGE_TARGET`] bytes (uncompressed); only the first
/// repeats the question.
fn pack(id: u16, question: &Query, records: &[&Record]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut chunk: Vec<&Record> = Vec::new();
    let mut size = 0;
    for record in records {
        let len = record.to_bytes().map_or(MESSAGE_TARGET, |b| b.len());
        if !chunk.is_empty() && size + len > MESSAGE_TARGET {
            out.push(message(id, question, out.is_empty(), &chunk));
            chunk.clear();
            size = 0;
        }
        chunk.push(record);
        size += len;
    }
    out.push(message(id, question, out.is_empty(), &chunk));
    out
}

/// The answer section of a prepared answer for `owner` and `rtype`, decoded.
fn decode(owner: &[u8], rtype: u16, answer: &Answer<'_>) -> Vec<Record> {
    // The answer's sections are compressed against a question for the owner at 12.
    let mut bytes = Vec::with_capacity(HEADER_LEN + owner.len() + 4 + answer.len());
    bytes.extend_from_slice(&[0, 0, 0x84, 0, 0, 1]);
    for count in answer.counts {
        bytes.extend_from_slice(&count.to_be_bytes());
    }
    bytes.extend_from_slice(owner);
    bytes.extend_from_slice(&rtype.to_be_bytes());
    bytes.extend_from_slice(&CLASS_IN.to_be_bytes());
    answer.write_to(&mut bytes, true);
    Message::from_vec(&bytes).map_or_else(|_| Vec::new(), |m| m.answers)
}

/// The apex SOA of `snapshot`, as served.
pub fn soa(snapshot: &Snapshot) -> Option<Record> {
    let origin = wire_name(&snapshot.topology.origin);
    match snapshot.lookup(&origin, TYPE_SOA, false, || 0) {
        Lookup::Found { answer, .. } => decode(&origin, TYPE_SOA, &answer)
            .into_iter()
            .find(|r| r.record_type() == RecordType::SOA),
        _ => None,
    }
}

/// One message of a transfer; only the first repeats the question.
fn message(id: u16, question: &Query, first: bool, records: &[&Record]) -> Vec<u8> {
    let mut m = Message::response(id, OpCode::Query);
    m.metadata.authoritative = true;
    if first {
        m.add_query(question.clone());
    }
    m.add_answers(records.iter().map(|r| (*r).clone()));
    m.to_vec().unwrap_or_default()
}

/// The serial of the SOA in an IXFR request's authority section (RFC 1995 section 3).
pub fn ixfr_serial(request: &Message) -> Option<u32> {
    request.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) if r.record_type() == RecordType::SOA => Some(soa.serial),
        _ => None,
    })
}

/// Versions of the zone kept for incremental transfers: a secondary more versions behind, or
/// at a version from before a restart, gets the whole zone.
pub const HISTORY_VERSIONS: usize = 16;

/// The versions transferred lately, newest last: every version a secondary holds came from a
/// transfer, so these are the ones it can ask for a difference from.
#[derive(Debug, Default)]
pub struct History(Mutex<VecDeque<Arc<ZoneRecords>>>);

impl History {
    /// The version with `serial`, when kept.
    pub fn find(&self, serial: u32) -> Option<Arc<ZoneRecords>> {
        let versions = self.0.lock().unwrap_or_else(|e| e.into_inner());
        versions
            .iter()
            .rev()
            .find(|z| z.serial() == serial)
            .cloned()
    }

    /// The version of `snapshot`: kept already, or made and kept.
    pub fn of(&self, snapshot: &Snapshot) -> Option<Arc<ZoneRecords>> {
        if let Some(zone) = self.find(snapshot.serial) {
            return Some(zone);
        }
        let zone = Arc::new(ZoneRecords::of(snapshot)?);
        let mut versions = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if versions.len() == HISTORY_VERSIONS {
            versions.pop_front();
        }
        versions.push_back(zone.clone());
        Some(zone)
    }
}
