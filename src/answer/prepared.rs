//! A response prepared once per snapshot: everything after the question, in wire format.

use std::ops::Range;

use hickory_proto::rr::{Record, RecordType};

use super::encode::{Encoder, Rdata};

/// The header facts of one prepared response, and where its sections are in the snapshot's
/// byte arena.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The low four bits of the RCODE.
    pub rcode: u8,
    /// Whether the AA flag is set.
    pub authoritative: bool,
    /// Records in the answer section.
    pub answers: u16,
    /// Records in the authority section.
    pub authorities: u16,
    /// Records in the additional section, the OPT record not counted (each response adds its own);
    /// 0 is sent when the section is dropped to fit.
    pub additionals: u16,
    /// Answer, authority and additional sections, compressed against a lower-case question.
    pub(super) body: Range<usize>,
    /// Length of the body without the additional section, which may be dropped to fit a UDP
    /// payload without setting TC (RFC 2181 section 9).
    pub essential_len: u32,
}

/// Which section records are being added to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Section {
    Answer,
    Authority,
    Additional,
}

/// The RCODEs a prepared answer can carry.
pub use crate::wire::rcode::{NOERROR, NXDOMAIN, SERVFAIL};

/// Writes one [`Prepared`] section by section, on a shared [`Encoder`].
pub struct Builder<'e, 'n> {
    enc: &'e mut Encoder<'n>,
    question_end: usize,
    section: Section,
    counts: [u16; 3],
    essential_len: Option<usize>,
}

impl<'e, 'n> Builder<'e, 'n> {
    /// Starts a response to a question for `qname` (lower-case wire form); see
    /// [`Encoder::start`] for `compress`.
    pub fn new(enc: &'e mut Encoder<'n>, qname: &'n [u8], compress: bool) -> Self {
        enc.start(qname, compress);
        Self {
            question_end: enc.len(),
            enc,
            section: Section::Answer,
            counts: [0; 3],
            essential_len: None,
        }
    }

    /// Further records go to the authority section.
    pub fn authority(&mut self) -> &mut Self {
        self.section = self.section.max(Section::Authority);
        self
    }

    /// Further records go to the additional section.
    pub fn additional(&mut self) -> &mut Self {
        if self.essential_len.is_none() {
            self.essential_len = Some(self.enc.len() - self.question_end);
        }
        self.section = Section::Additional;
        self
    }

    /// Adds one record to the current section.
    pub fn record(
        &mut self,
        owner: &'n [u8],
        rtype: RecordType,
        ttl: u32,
        rdata: Rdata<'_, 'n>,
    ) -> &mut Self {
        self.enc.record(owner, rtype, ttl, rdata);
        self.counts[self.section as usize] += 1;
        self
    }

    /// Adds one zone file record, owned by `owner` (its wire name), to the current section.
    pub fn static_record(&mut self, owner: &'n [u8], record: &Record) -> &mut Self {
        self.enc.static_record(owner, record);
        self.counts[self.section as usize] += 1;
        self
    }

    /// Records in the answer section so far.
    pub fn answer_count(&self) -> u16 {
        self.counts[0]
    }

    /// Finishes the response with the given RCODE and AA flag, appending its bytes to `arena`.
    pub fn finish(self, rcode: u8, authoritative: bool, arena: &mut Vec<u8>) -> Prepared {
        let body = &self.enc.bytes()[self.question_end..];
        let start = arena.len();
        arena.extend_from_slice(body);
        Prepared {
            rcode,
            authoritative,
            answers: self.counts[0],
            authorities: self.counts[1],
            additionals: self.counts[2],
            essential_len: self.essential_len.unwrap_or(body.len()) as u32,
            body: start..arena.len(),
        }
    }
}

impl Prepared {
    /// Bytes of the whole body.
    pub fn len(&self) -> usize {
        self.body.len()
    }

    /// Whether the body is empty (an answer with no records at all).
    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }
}
