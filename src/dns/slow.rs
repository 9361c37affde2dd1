//! The full parser: hickory-server's request decoding, for every message the fast parser
//! passes on. It yields the same [`Query`] as the fast parser would, or the error to answer.

use std::net::SocketAddr;

use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{MessageType, OpCode};
use hickory_server::proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_server::server::Request;

use super::query::{ClientSubnet, Edns, HEADER_LEN, MAX_NAME, Query, QuestionBuf};
use crate::wire::rcode::{FORMERR, NOTIMP};
use crate::wire::{case_kept_wire, wire_name};

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
        }))
    };
    let request = match Request::from_bytes(raw.to_vec(), src, protocol) {
        Ok(r) => r,
        Err(_) => return header_error(FORMERR),
    };
    if request.metadata.message_type == MessageType::Response {
        return Slow::Drop;
    }
    let edns = request.edns.as_ref().map(|e| Edns {
        payload: e.max_payload(),
        version: e.version(),
        dnssec_ok: e.flags().dnssec_ok,
        client_subnet: match e.option(EdnsCode::Subnet) {
            Some(EdnsOption::Subnet(s)) => Some(ClientSubnet {
                address: s.addr(),
                source_prefix: s.source_prefix(),
            }),
            _ => None,
        },
    });
    let queries = request.queries.queries();
    let question = queries.first().map(|q| {
        let original = q.original();
        let mut bytes = case_kept_wire(original.name());
        bytes.extend_from_slice(&u16::from(original.query_type()).to_be_bytes());
        bytes.extend_from_slice(&u16::from(original.query_class()).to_be_bytes());
        (QuestionBuf::from_slice(&bytes), bytes.len() - 4, q)
    });
    let error = |rcode, question: Option<QuestionBuf>| {
        Slow::Error(Box::new(ErrorReply {
            id,
            opcode,
            recursion_desired: request.metadata.recursion_desired,
            checking_disabled: request.metadata.checking_disabled,
            rcode,
            question,
            edns,
        }))
    };
    if request.metadata.op_code != OpCode::Query {
        return error(NOTIMP, question.map(|q| q.0));
    }
    if queries.len() != 1 {
        return error(FORMERR, None);
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
