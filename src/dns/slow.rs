//! The full parser: hickory-server's request decoding, for every message the fast parser
//! passes on. It yields the same [`Query`] as the fast parser would, or the error to answer.
//!
//! The OPT record's options are read from the message's own bytes by [`parse_options`], as the
//! fast parser reads them: hickory-proto keeps no trace of an ECS option's surplus octets, and takes
//! any COOKIE option, so that only the bytes can say whether one is malformed.

use std::net::SocketAddr;

use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{MessageType, OpCode};
use hickory_server::server::Request;

use super::options::{Malformed, Options, parse_options};
use super::query::{Edns, HEADER_LEN, MAX_NAME, Query, QuestionBuf};
use crate::metrics::CookieSeen;
use crate::wire::rcode::{FORMERR, NOTIMP};
use crate::wire::{TYPE_OPT, case_kept_wire, wire_name};

/// An answerable query, or why not.
#[derive(Debug)]
pub enum Slow {
    /// A query, parsed as the fast parser would have: answer it.
    Query(Box<Query>),
    /// Answer with this RCODE, echoing the header (and the question, when there is one).
    Error(Box<ErrorReply>),
    /// Not a query: stay silent.
    Drop,
}

/// The parts of a request an error response echoes.
#[derive(Debug, Clone)]
pub struct ErrorReply {
    /// The message ID, echoed.
    pub id: u16,
    /// The OPCODE, echoed.
    pub opcode: u8,
    /// The RD flag, echoed.
    pub recursion_desired: bool,
    /// The CD flag, echoed.
    pub checking_disabled: bool,
    /// The RCODE to answer with: FORMERR or NOTIMP.
    pub rcode: u8,
    /// The question to echo, when one could be read.
    pub question: Option<QuestionBuf>,
    /// The request's OPT record: when present, the response carries one too (without ECS).
    pub edns: Option<Edns>,
    /// [`CookieSeen::Malformed`] when a malformed COOKIE option is the reason, for metrics.
    pub cookie: CookieSeen,
}

/// Parses any message with hickory-server.
pub fn parse_slow(raw: &[u8], src: SocketAddr, protocol: Protocol) -> Slow {
    if raw.len() < HEADER_LEN || raw[2] & 0x80 != 0 {
        return Slow::Drop;
    }
    let id = u16::from_be_bytes([raw[0], raw[1]]);
    let opcode = (raw[2] >> 3) & 0x0F;
    let header_error = |rcode| {
        Slow::Error(Box::new(ErrorReply {
            id,
            opcode,
            recursion_desired: raw[2] & 0x01 != 0,
            checking_disabled: raw[3] & 0x10 != 0,
            rcode,
            question: None,
            edns: None,
            cookie: CookieSeen::Absent,
        }))
    };
    let request = match Request::from_bytes(raw.to_vec(), src, protocol) {
        Ok(r) => r,
        Err(_) => return header_error(FORMERR),
    };
    if request.metadata.message_type == MessageType::Response {
        return Slow::Drop;
    }
    let options = match &request.edns {
        Some(_) => opt_data(raw).map_or(Err(Malformed::Layout), parse_options),
        None => Ok(Options::default()),
    };
    let edns = request.edns.as_ref().map(|e| Edns {
        payload: e.max_payload(),
        version: e.version(),
        dnssec_ok: e.flags().dnssec_ok,
        client_subnet: options.ok().and_then(|o| o.client_subnet),
        cookie: options.ok().and_then(|o| o.cookie),
    });
    let queries = request.queries.queries();
    let question = queries.first().map(|q| {
        let original = q.original();
        let mut bytes = case_kept_wire(original.name());
        bytes.extend_from_slice(&u16::from(original.query_type()).to_be_bytes());
        bytes.extend_from_slice(&u16::from(original.query_class()).to_be_bytes());
        (QuestionBuf::from_slice(&bytes), bytes.len() - 4, q)
    });
    let error = |rcode, question: Option<QuestionBuf>, cookie| {
        Slow::Error(Box::new(ErrorReply {
            id,
            opcode,
            recursion_desired: request.metadata.recursion_desired,
            checking_disabled: request.metadata.checking_disabled,
            rcode,
            question,
            edns,
            cookie,
        }))
    };
    // RFC 7871 section 6 and RFC 7873 section 5.2.2: whatever else the message is.
    if let Err(malformed) = options {
        let cookie = match malformed {
            Malformed::Cookie => CookieSeen::Malformed,
            _ => CookieSeen::Absent,
        };
        return error(FORMERR, question.map(|q| q.0), cookie);
    }
    if request.metadata.op_code != OpCode::Query {
        return error(NOTIMP, question.map(|q| q.0), CookieSeen::Absent);
    }
    if queries.len() != 1 {
        return error(FORMERR, None, CookieSeen::Absent);
    }
    let (question, qname_len, q) = question.expect("one query");
    let mut qname_lower = [0u8; MAX_NAME];
    let lower = wire_name(q.original().name());
    qname_lower[..lower.len()].copy_from_slice(&lower);
    Slow::Query(Box::new(Query {
        id,
        opcode,
        recursion_desired: request.metadata.recursion_desired,
        checking_disabled: request.metadata.checking_disabled,
        question,
        qname_len,
        qname_lower,
        qtype: u16::from(q.query_type()),
        qclass: u16::from(q.query_class()),
        edns,
    }))
}

/// The data of the OPT record in `raw`, a message hickory-proto has read whole (so the counts,
/// names and lengths it walks are known to fit), with OPT only in the additional section.
fn opt_data(raw: &[u8]) -> Option<&[u8]> {
    let count = |i: usize| usize::from(u16::from_be_bytes([raw[i], raw[i + 1]]));
    let mut at = HEADER_LEN;
    for _ in 0..count(4) {
        at = skip_name(raw, at)? + 4;
    }
    let before_additional = count(6) + count(8);
    for i in 0..before_additional + count(10) {
        let fixed = skip_name(raw, at)?;
        let header = raw.get(fixed..fixed + 10)?;
        let rdlen = usize::from(u16::from_be_bytes([header[8], header[9]]));
        let data = raw.get(fixed + 10..fixed + 10 + rdlen)?;
        if i >= before_additional && u16::from_be_bytes([header[0], header[1]]) == TYPE_OPT {
            return Some(data);
        }
        at = fixed + 10 + rdlen;
    }
    None
}

/// Where the name at `at` ends: after its root label, or after the pointer that ends it.
fn skip_name(raw: &[u8], mut at: usize) -> Option<usize> {
    loop {
        match *raw.get(at)? {
            0 => return Some(at + 1),
            len if len & 0xC0 == 0xC0 => return Some(at + 2),
            len => at += 1 + usize::from(len),
        }
    }
}
