//! A response prepared once per snapshot: everything after the question, in wire format, and
//! for a signed zone its twin with RRSIG (and NSEC) records, sent to queries with DO set.

use hickory_proto::rr::{Record, RecordType};

pub(crate) use super::body::Body;
use super::body::Section;
use super::encode::{Encoder, Rdata};
use super::signed::{Bodies, Rec, encode_signed};

/// The header facts of one prepared response, and where its bodies are in the snapshot's byte
/// arena.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The low four bits of the RCODE.
    pub rcode: u8,
    /// Whether the AA flag is set.
    pub authoritative: bool,
    /// The records without DNSSEC: for queries without DO.
    pub plain: Body,
    /// With RRSIGs after each RRset (and NSEC proofs in negative answers), for queries with DO;
    /// `None` when the zone is not signed (boxed: an unsigned build carries only the pointer).
    pub signed: Option<Box<Body>>,
}

/// The RCODEs a prepared answer can carry.
pub(crate) use crate::wire::rcode::{NOERROR, NXDOMAIN, SERVFAIL};

/// Writes one [`Prepared`] section by section, on a shared [`Encoder`]. When the encoder keeps
/// records (a signed build), they are encoded a second time with their signatures at
/// [`finish`](Self::finish).
pub(crate) struct Builder<'e, 'n, 'a> {
    enc: &'e mut Encoder<'n>,
    qname: &'n [u8],
    compress: bool,
    question_end: usize,
    section: Section,
    counts: [u16; 3],
    essential_len: Option<usize>,
    records: Option<Vec<Rec<'n, 'a>>>,
}

impl<'e, 'n, 'a> Builder<'e, 'n, 'a> {
    /// Starts a response to a question for `qname` (lower-case wire form); see
    /// [`Encoder::start`] for `compress`.
    pub(crate) fn new(enc: &'e mut Encoder<'n>, qname: &'n [u8], compress: bool) -> Self {
        enc.start(qname, compress);
        Self {
            question_end: enc.len(),
            records: enc.signing().then(Vec::new),
            enc,
            qname,
            compress,
            section: Section::Answer,
            counts: [0; 3],
            essential_len: None,
        }
    }

    /// Further records go to the authority section.
    pub(crate) fn authority(&mut self) -> &mut Self {
        self.section = self.section.max(Section::Authority);
        self
    }

    /// Further records go to the additional section.
    pub(crate) fn additional(&mut self) -> &mut Self {
        if self.essential_len.is_none() {
            self.essential_len = Some(self.enc.len() - self.question_end);
        }
        self.section = Section::Additional;
        self
    }

    /// Adds one record to the current section.
    pub(crate) fn record(
        &mut self,
        owner: &'n [u8],
        rtype: RecordType,
        ttl: u32,
        rdata: Rdata<'a, 'n>,
    ) -> &mut Self {
        self.add(owner, rtype, ttl, ttl, rdata, false)
    }

    /// Adds one record, served with `ttl` but signed with `original_ttl` (the apex SOA in a
    /// negative answer carries the negative-caching TTL, its signature the SOA's own).
    pub(crate) fn record_signed_as(
        &mut self,
        owner: &'n [u8],
        rtype: RecordType,
        ttl: u32,
        original_ttl: u32,
        rdata: Rdata<'a, 'n>,
    ) -> &mut Self {
        self.add(owner, rtype, ttl, original_ttl, rdata, false)
    }

    /// Adds a record only the signed body carries (the NSEC proof of a negative answer).
    pub(crate) fn dnssec_record(
        &mut self,
        owner: &'n [u8],
        rtype: RecordType,
        ttl: u32,
        rdata: Rdata<'a, 'n>,
    ) -> &mut Self {
        self.add(owner, rtype, ttl, ttl, rdata, true)
    }

    fn add(
        &mut self,
        owner: &'n [u8],
        rtype: RecordType,
        ttl: u32,
        original_ttl: u32,
        rdata: Rdata<'a, 'n>,
        dnssec_only: bool,
    ) -> &mut Self {
        if !dnssec_only {
            self.enc.record(owner, rtype, ttl, rdata);
            self.counts[self.section as usize] += 1;
        }
        if let Some(records) = &mut self.records {
            records.push(Rec {
                section: self.section,
                owner,
                rtype,
                ttl,
                original_ttl,
                rdata,
            });
        }
        self
    }

    /// Adds one zone file record, owned by `owner` (its wire name), to the current section.
    pub(crate) fn static_record(&mut self, owner: &'n [u8], record: &'a Record) -> &mut Self {
        self.record(
            owner,
            record.record_type(),
            record.ttl,
            Rdata::Static(&record.data),
        )
    }

    /// Records in the answer section so far.
    pub(crate) fn answer_count(&self) -> u16 {
        self.counts[0]
    }

    /// Finishes the response with the given RCODE and AA flag, appending its bodies to `out`.
    pub(crate) fn finish(self, rcode: u8, authoritative: bool, out: &mut Bodies<'_>) -> Prepared {
        let body = &self.enc.bytes()[self.question_end..];
        let start = out.bytes.len();
        out.bytes.extend_from_slice(body);
        let plain = Body {
            answers: self.counts[0],
            authorities: self.counts[1],
            additionals: self.counts[2],
            essential_len: self.essential_len.unwrap_or(body.len()) as u32,
            range: start as u32..out.bytes.len() as u32,
            answer_sigs: (0, 0, 0),
        };
        let signed = match self.records {
            Some(records) => {
                encode_signed(self.enc, self.qname, self.compress, &records, out).map(Box::new)
            }
            None => None,
        };
        Prepared {
            rcode,
            authoritative,
            plain,
            signed,
        }
    }
}

impl Prepared {
    /// Bytes of the larger body.
    pub fn len(&self) -> usize {
        let signed = self.signed.as_ref().map_or(0, |b| b.span().len());
        self.plain.span().len().max(signed)
    }

    /// Whether the body is empty (an answer with no records at all).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether it answers with records, or fails (SERVFAIL): not a NODATA answer. Types
    /// answered this way are in the name's NSEC type bitmap.
    pub fn is_positive(&self) -> bool {
        self.rcode != NOERROR || self.plain.answers > 0
    }
}
