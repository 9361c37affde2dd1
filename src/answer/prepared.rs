//! A response prepared once per snapshot: everything after the question, in wire format.

use hickory_proto::rr::RecordType;

use super::encode::{Encoder, Rdata};

/// The sections of one response, ready to follow the client's question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The low four bits of the RCODE.
    pub rcode: u8,
    /// Whether the AA flag is set.
    pub authoritative: bool,
    pub answers: u16,
    pub authorities: u16,
    pub additionals: u16,
    /// Answer, authority and additional sections, compressed against a lower-case question.
    pub body: Box<[u8]>,
    /// Length of `body` without the additional section, which may be dropped to fit a UDP
    /// payload without setting TC (RFC 2181 section 9).
    pub essential_len: usize,
    /// Length of the question these bytes were encoded behind.
    pub question_len: usize,
}

/// Which section records are being added to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Section {
    Answer,
    Authority,
    Additional,
}

/// Writes one [`Prepared`] section by section.
pub struct Builder {
    enc: Encoder,
    question_end: usize,
    section: Section,
    counts: [u16; 3],
    essential_len: Option<usize>,
}

/// The RCODEs a prepared answer can carry.
pub const NOERROR: u8 = 0;
pub const NXDOMAIN: u8 = 3;

impl Builder {
    /// Starts a response to a question for `qname` (lower-case wire form).
    pub fn new(qname: &[u8]) -> Self {
        Self::with_encoder(Encoder::with_question(qname))
    }

    /// Starts a response whose sections carry no compression pointers.
    pub fn uncompressed() -> Self {
        Self::with_encoder(Encoder::uncompressed(&[0]))
    }

    fn with_encoder(enc: Encoder) -> Self {
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
        owner: &[u8],
        rtype: RecordType,
        ttl: u32,
        rdata: Rdata<'_>,
    ) -> &mut Self {
        self.enc.record(owner, rtype, ttl, rdata);
        self.counts[self.section as usize] += 1;
        self
    }

    /// Adds one zone file record to the current section.
    pub fn static_record(
        &mut self,
        record: &hickory_proto::rr::Record,
        ttl: Option<u32>,
    ) -> &mut Self {
        self.enc.static_record(record, ttl);
        self.counts[self.section as usize] += 1;
        self
    }

    /// Finishes the response with the given RCODE and AA flag.
    pub fn finish(self, rcode: u8, authoritative: bool) -> Prepared {
        let body_len = self.enc.len() - self.question_end;
        let essential_len = self.essential_len.unwrap_or(body_len);
        let question_end = self.question_end;
        let bytes = self.enc.into_bytes();
        Prepared {
            rcode,
            authoritative,
            answers: self.counts[0],
            authorities: self.counts[1],
            additionals: self.counts[2],
            body: bytes[question_end..].into(),
            essential_len,
            question_len: question_end - super::encode::QUESTION_OFFSET,
        }
    }
}
