//! DNS wire encoding of prepared answers, with RFC 1035 name compression.
//!
//! Answers are encoded once per snapshot behind a question that holds the query name in lower
//! case at offset 12, so that a response is the client's own question followed by these bytes:
//! pointers into the question stay valid because the client's name has the same length.
//! hickory-proto encodes the rdata of types we do not compress (RFC 3597 forbids compressing
//! names in newer types); the types with names that may be compressed are written here.
//!
//! One [`Encoder`] serves a whole snapshot build: its buffer and its table of written names
//! are reused from message to message, and the table borrows the names (`'n`) instead of
//! copying them, so encoding allocates nothing but each finished body.

use std::net::IpAddr;

use hickory_proto::rr::{DNSClass, RData, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
use rustc_hash::FxHashMap;

use crate::wire::wire_name;

/// Offset of the question name in every message.
pub(crate) const QUESTION_OFFSET: usize = 12;
/// A compression pointer can only reach the first 16 KiB of a message.
const MAX_POINTER_TARGET: usize = 0x3FFF;

/// Builds messages, compressing every name against the names written before it.
pub(crate) struct Encoder<'n> {
    buf: Vec<u8>,
    /// Lower-case wire suffixes already written, and where.
    suffixes: FxHashMap<&'n [u8], u16>,
    /// Off for bytes that must follow questions of any length.
    compress: bool,
    /// Builders keep their records to encode them again with signatures (a signed build).
    signing: bool,
}

/// Record data we encode ourselves (so that names inside compress) or hand to hickory-proto.
#[derive(Clone, Copy)]
pub(crate) enum Rdata<'a, 'n> {
    /// An A or AAAA record's address.
    Address(IpAddr),
    /// An MX record: the preference, and the exchange in lower-case wire form (compressed).
    Mx(u16, &'n [u8]),
    /// A record of the zone file, as hickory-proto parsed it.
    Static(&'a RData),
    /// Data already in wire form with no name to compress: DNSKEY, RRSIG, NSEC (whose names
    /// must not be compressed, RFC 4034 sections 3.1.7 and 4.1.1).
    Raw(&'a [u8]),
}

impl Default for Encoder<'_> {
    fn default() -> Self {
        Self {
            buf: Vec::with_capacity(4096),
            suffixes: FxHashMap::default(),
            compress: true,
            signing: false,
        }
    }
}

impl<'n> Encoder<'n> {
    /// Starts a message: an empty header and `qname` (lower-case wire form) as its question.
    /// Without `compress`, no name is ever compressed, so that the bytes after the question stay
    /// valid behind a question of any length.
    pub(crate) fn start(&mut self, qname: &'n [u8], compress: bool) {
        self.buf.clear();
        self.suffixes.clear();
        self.compress = compress;
        self.buf.extend_from_slice(&[0; QUESTION_OFFSET]);
        self.name(qname);
        self.buf.extend_from_slice(&[0, 0, 0, 1]);
    }

    /// Makes builders on this encoder keep their records for a signed twin.
    pub(crate) fn set_signing(&mut self, signing: bool) {
        self.signing = signing;
    }

    /// Whether builders on this encoder keep their records for a signed twin.
    pub(crate) fn signing(&self) -> bool {
        self.signing
    }

    /// Bytes written so far, header included.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// The message as written (header left zero).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Writes a lower-case, uncompressed wire name, compressed against earlier names, and
    /// remembers its suffixes for later names.
    pub(crate) fn name(&mut self, wire: &'n [u8]) {
        if !self.compress {
            self.buf.extend_from_slice(wire);
            return;
        }
        let mut at = 0;
        while wire[at] != 0 {
            let suffix = &wire[at..];
            if let Some(&offset) = self.suffixes.get(suffix) {
                self.buf.extend_from_slice(&(0xC000 | offset).to_be_bytes());
                return;
            }
            let here = self.buf.len();
            if here <= MAX_POINTER_TARGET {
                self.suffixes.insert(suffix, here as u16);
            }
            let len = usize::from(wire[at]);
            self.buf.extend_from_slice(&wire[at..=at + len]);
            at += len + 1;
        }
        self.buf.push(0);
    }

    /// Writes a name that does not live as long as the encoder: it is compressed against
    /// earlier names but not remembered.
    fn transient_name(&mut self, wire: &[u8]) {
        if self.compress {
            let mut at = 0;
            while wire[at] != 0 {
                if let Some(&offset) = self.suffixes.get(&wire[at..]) {
                    self.buf.extend_from_slice(&(0xC000 | offset).to_be_bytes());
                    return;
                }
                let len = usize::from(wire[at]);
                self.buf.extend_from_slice(&wire[at..=at + len]);
                at += len + 1;
            }
            self.buf.push(0);
        } else {
            self.buf.extend_from_slice(wire);
        }
    }

    /// Writes one resource record of class IN.
    pub(crate) fn record(
        &mut self,
        owner: &'n [u8],
        rtype: RecordType,
        ttl: u32,
        rdata: Rdata<'_, 'n>,
    ) {
        self.name(owner);
        self.buf.extend_from_slice(&u16::from(rtype).to_be_bytes());
        self.buf
            .extend_from_slice(&u16::from(DNSClass::IN).to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        let len_at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        match rdata {
            Rdata::Address(IpAddr::V4(a)) => self.buf.extend_from_slice(&a.octets()),
            Rdata::Address(IpAddr::V6(a)) => self.buf.extend_from_slice(&a.octets()),
            Rdata::Mx(preference, exchange) => {
                self.buf.extend_from_slice(&preference.to_be_bytes());
                self.name(exchange);
            }
            Rdata::Static(data) => self.static_rdata(data),
            Rdata::Raw(bytes) => self.buf.extend_from_slice(bytes),
        }
        let rdlen = (self.buf.len() - len_at - 2) as u16;
        self.buf[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    }

    fn static_rdata(&mut self, data: &RData) {
        match data {
            RData::A(a) => self.buf.extend_from_slice(&a.0.octets()),
            RData::AAAA(a) => self.buf.extend_from_slice(&a.0.octets()),
            RData::MX(mx) => {
                self.buf.extend_from_slice(&mx.preference.to_be_bytes());
                self.transient_name(&wire_name(&mx.exchange));
            }
            RData::NS(ns) => self.transient_name(&wire_name(&ns.0)),
            RData::CNAME(c) => self.transient_name(&wire_name(&c.0)),
            RData::PTR(p) => self.transient_name(&wire_name(&p.0)),
            RData::SOA(soa) => {
                self.transient_name(&wire_name(&soa.mname));
                self.transient_name(&wire_name(&soa.rname));
                for v in [
                    soa.serial,
                    soa.refresh as u32,
                    soa.retry as u32,
                    soa.expire as u32,
                    soa.minimum,
                ] {
                    self.buf.extend_from_slice(&v.to_be_bytes());
                }
            }
            other => {
                // Newer types: names inside must not be compressed (RFC 3597 section 4).
                let mut bytes = Vec::new();
                let mut e = BinEncoder::new(&mut bytes);
                e.set_name_encoding(NameEncoding::Uncompressed);
                other
                    .emit(&mut e)
                    .expect("record data from a parsed zone file encodes");
                self.buf.extend_from_slice(&bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fqdn;
    use hickory_proto::op::Message;
    use hickory_proto::serialize::binary::BinDecodable;

    #[test]
    fn names_compress_against_the_question_and_decode_back() {
        let qname = wire_name(&fqdn("oxford.smarthost.internal").unwrap());
        let mx = wire_name(&fqdn("mail1.oxford.smarthost.internal").unwrap());
        let mut e = Encoder::default();
        e.start(&qname, true);
        let before = e.len();
        e.record(&qname, RecordType::MX, 30, Rdata::Mx(10, &mx));
        e.record(
            &mx,
            RecordType::A,
            30,
            Rdata::Address("127.0.1.11".parse().unwrap()),
        );
        // owner pointer (2) + fixed (10) + pref (2) + "mail1" label (6) + pointer (2)
        assert_eq!(e.len() - before, 22 + 2 + 10 + 4);
        let mut bytes = e.bytes().to_vec();
        bytes[4..6].copy_from_slice(&1u16.to_be_bytes());
        bytes[6..8].copy_from_slice(&2u16.to_be_bytes());
        let m = Message::from_bytes(&bytes).unwrap();
        assert_eq!(
            m.answers[0].to_string().split_whitespace().last(),
            Some("mail1.oxford.smarthost.internal.")
        );
        assert_eq!(
            m.answers[1].name.to_string(),
            "mail1.oxford.smarthost.internal."
        );
    }

    #[test]
    fn uncompressed_messages_carry_no_pointers() {
        let qname = wire_name(&fqdn("smarthost.internal").unwrap());
        let mut e = Encoder::default();
        e.start(&qname, false);
        e.record(
            &qname,
            RecordType::A,
            30,
            Rdata::Address("127.0.0.1".parse().unwrap()),
        );
        assert!(
            !e.bytes()[QUESTION_OFFSET..]
                .windows(2)
                .any(|w| w[0] & 0xC0 == 0xC0 && w[1] == 12)
        );
    }
}
