//! The signed twin of a prepared answer: the same records, each RRset followed by its RRSIG
//! records, and the NSEC records only the signed body carries.
//!
//! Encoded a second time rather than patched: RRSIGs inserted into the plain body would move
//! the names later compression pointers point at. Each RRset is put in canonical form and its
//! signatures taken from the build's [`Signer`] (which signs only what its cache does not hold).

use std::net::IpAddr;
use std::ops::Range;

use hickory_proto::rr::{RData, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use super::body::{Body, MAX_SIGNED_BODY, Section};
use super::encode::{Encoder, Rdata};
use crate::dnssec::Signer;

/// Where a build's answers go: the byte arena of every body, and the signer of a signed build.
pub(crate) struct Bodies<'k> {
    /// Every body of the generation, back to back.
    pub bytes: Vec<u8>,
    /// Signs RRsets for the signed twins; `None` for an unsigned zone.
    pub signer: Option<Signer<'k>>,
    /// Canonical record data of the RRset being signed.
    canonical: Vec<u8>,
    ranges: Vec<Range<usize>>,
}

impl<'k> Bodies<'k> {
    /// An arena of `capacity` bytes, signing with `signer` when given.
    pub(crate) fn new(capacity: usize, signer: Option<Signer<'k>>) -> Self {
        Self {
            bytes: Vec::with_capacity(capacity),
            signer,
            canonical: Vec::with_capacity(1024),
            ranges: Vec::with_capacity(64),
        }
    }
}

/// A record kept by a builder of a signed build, to be encoded again with signatures.
#[derive(Clone, Copy)]
pub(super) struct Rec<'n, 'a> {
    pub(super) section: Section,
    pub(super) owner: &'n [u8],
    pub(super) rtype: RecordType,
    pub(super) ttl: u32,
    /// The TTL its RRSIG names (RFC 4034 section 3.1.4): the RRset's TTL in the zone.
    pub(super) original_ttl: u32,
    pub(super) rdata: Rdata<'a, 'n>,
}

/// Encodes `records` (behind a question for `qname`) with each RRset's RRSIGs after it;
/// appends the body to `out`. An answer whose signed body would not fit a message loses its
/// additional section there.
pub(super) fn encode_signed<'n>(
    enc: &mut Encoder<'n>,
    qname: &'n [u8],
    compress: bool,
    records: &[Rec<'n, '_>],
    out: &mut Bodies<'_>,
) -> Option<Body> {
    let signer = out.signer.as_mut()?;
    enc.start(qname, compress);
    let question_end = enc.len();
    let mut counts = [0u16; 3];
    let mut essential = None;
    let mut answer_sigs = (0, 0, 0);
    let mut i = 0;
    while i < records.len() {
        let first = records[i];
        let n = records[i..]
            .iter()
            .take_while(|r| {
                r.section == first.section && r.rtype == first.rtype && r.owner == first.owner
            })
            .count();
        let rrset = &records[i..i + n];
        i += n;
        if first.section == Section::Additional && essential.is_none() {
            essential = Some(enc.len() - question_end);
        }
        out.canonical.clear();
        out.ranges.clear();
        for r in rrset {
            enc.record(r.owner, r.rtype, r.ttl, r.rdata);
            let start = out.canonical.len();
            canonical(&r.rdata, &mut out.canonical);
            out.ranges.push(start..out.canonical.len());
        }
        counts[first.section as usize] += n as u16;
        let sigs_start = enc.len();
        let (canonical, ranges) = (&out.canonical, &out.ranges);
        let sigs = signer.sign(
            first.owner,
            u16::from(first.rtype),
            first.original_ttl,
            ranges.iter().map(|r| &canonical[r.clone()]),
        );
        let mut signed = 0u16;
        for sig in sigs {
            enc.record(first.owner, RecordType::RRSIG, first.ttl, Rdata::Raw(sig));
            signed += 1;
        }
        counts[first.section as usize] += signed;
        if first.section == Section::Answer && answer_sigs.2 == 0 && signed > 0 {
            // A body is at most a message long: offsets fit 16 bits.
            answer_sigs = (
                (sigs_start - question_end) as u16,
                (enc.len() - sigs_start) as u16,
                signed,
            );
        }
    }
    let mut body = &enc.bytes()[question_end..];
    let mut essential_len = essential.unwrap_or(body.len());
    if body.len() > MAX_SIGNED_BODY {
        body = &body[..essential_len];
        counts[2] = 0;
        essential_len = body.len();
    }
    let start = out.bytes.len();
    out.bytes.extend_from_slice(body);
    Some(Body {
        answers: counts[0],
        authorities: counts[1],
        additionals: counts[2],
        range: start as u32..out.bytes.len() as u32,
        essential_len: essential_len as u32,
        answer_sigs,
    })
}

/// Appends a record's data in canonical form (RFC 4034 section 6.2): no compression, names in
/// lower case (ours already are; the zone file's are lowered where the RFC says).
fn canonical(rdata: &Rdata<'_, '_>, out: &mut Vec<u8>) {
    match rdata {
        Rdata::Address(IpAddr::V4(a)) => out.extend_from_slice(&a.octets()),
        Rdata::Address(IpAddr::V6(a)) => out.extend_from_slice(&a.octets()),
        Rdata::Mx(preference, exchange) => {
            out.extend_from_slice(&preference.to_be_bytes());
            out.extend_from_slice(exchange);
        }
        Rdata::Raw(bytes) => out.extend_from_slice(bytes),
        Rdata::Static(data) => static_canonical(data, out),
    }
}

fn static_canonical(data: &RData, out: &mut Vec<u8>) {
    // A BinEncoder writes from the start of its buffer: encode apart, then append.
    let mut bytes = Vec::new();
    let mut e = BinEncoder::new(&mut bytes);
    e.set_canonical_form(true);
    e.set_name_encoding(NameEncoding::Uncompressed);
    data.emit(&mut e)
        .expect("record data from a parsed zone file encodes");
    out.extend_from_slice(&bytes);
}
