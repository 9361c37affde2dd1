//! Raw DNS messages through `smarthostd::dns::answer_with`, the function every UDP and TCP
//! query goes through, against a snapshot built from a config with views, ECS, warm standby and
//! a 40-host site.
//!
//! Input: one selector byte (bit 0: TCP; bits 1..=4: the client address, see
//! `smarthostd_fuzz::SOURCES`), then the message as it arrived.
//!
//! Checked for every message:
//! - it is dropped exactly when it is under 12 bytes or a response (QR set), else answered;
//! - the answer parses with hickory-proto, has the query's ID and opcode, QR set, at most 65,535
//!   bytes, and over UDP at most max(512, min(client EDNS payload, ours));
//! - TC agrees with the outcome and never appears over TCP;
//! - the RCODE (with the OPT record's extended bits) agrees with the outcome;
//! - an echoed question is the client's, letter case kept;
//! - an OPT record carries our payload, and an ECS option echoes the client's address and prefix;
//! - a query with a COOKIE option (as either parser reads it) gets one back, unless it is
//!   answered BADVERS: the client cookie and a 16-byte version 1 server cookie; a cookie the
//!   query had none of never appears; a malformed COOKIE option gets FORMERR;
//! - the rate limiter's "slip" form of the answer (cut after the question, TC) parses too.

#![no_main]

use std::cell::RefCell;

use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_server::net::xfer::Protocol;
use libfuzzer_sys::fuzz_target;
use smarthostd::dns::answer_with;
use smarthostd::dns::query::{Fast, parse_fast};
use smarthostd::dns::slow::{Slow, parse_slow};
use smarthostd::metrics::CookieSeen;
use smarthostd::dns::rrl::truncate_to_question;
use smarthostd_fuzz::{fixture, hex, transport, udp_limit};

thread_local! {
    /// Reused like the server's per-socket buffers: each answer must overwrite the last.
    static OUT: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(4096));
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, raw)) = data.split_first() else {
        return;
    };
    let fx = fixture();
    let (tcp, src) = transport(selector);
    OUT.with_borrow_mut(|out| {
        let outcome = answer_with(&fx.snapshot, fx.edns_payload, &fx.cookies, raw, src, tcp, out);
        let droppable = raw.len() < 12 || raw[2] & 0x80 != 0;
        let Some(outcome) = outcome else {
            assert!(droppable, "no answer to a query: {}", hex(raw));
            return;
        };
        assert!(!droppable, "an answer to a response or runt: {}", hex(raw));
        let ctx = || format!("query {} (tcp={tcp}, src={src}) -> {}", hex(raw), hex(out));

        // Size and header.
        assert!(out.len() >= 12, "short answer: {}", ctx());
        assert!(out.len() <= usize::from(u16::MAX), "answer over 65535 bytes: {}", ctx());
        if !tcp {
            let limit = udp_limit(raw, fx.edns_payload);
            assert!(
                out.len() <= limit,
                "UDP answer of {} bytes over the limit {limit}: {}",
                out.len(),
                ctx()
            );
        }
        assert_eq!(out[..2], raw[..2], "ID not echoed: {}", ctx());
        assert!(out[2] & 0x80 != 0, "QR not set: {}", ctx());
        assert_eq!(out[2] & 0x78, raw[2] & 0x78, "opcode not echoed: {}", ctx());
        let tc = out[2] & 0x02 != 0;
        assert_eq!(tc, outcome.truncated, "TC disagrees with the outcome: {}", ctx());
        assert!(!(tcp && tc), "TC over TCP: {}", ctx());

        // The whole message, as a client's parser sees it.
        let msg = Message::from_vec(out)
            .unwrap_or_else(|e| panic!("answer does not parse ({e}): {}", ctx()));
        assert_eq!(msg.metadata.message_type, MessageType::Response, "{}", ctx());
        assert_eq!(
            u16::from(msg.metadata.response_code),
            outcome.rcode,
            "RCODE disagrees with the outcome: {}",
            ctx()
        );
        if tc {
            assert!(
                msg.answers.is_empty() && msg.authorities.is_empty() && msg.additionals.is_empty(),
                "records in a truncated answer: {}",
                ctx()
            );
        }

        // The question: the client's, case kept, exactly `question_len` bytes after the header.
        assert_eq!(
            msg.queries.len(),
            usize::from(outcome.question_len > 0),
            "question count disagrees with the outcome: {}",
            ctx()
        );
        if let (Some(echoed), Ok(query)) = (msg.queries.first(), Message::from_vec(raw))
            && let Some(asked) = query.queries.first()
        {
            let labels = |n: &hickory_proto::rr::Name| n.iter().map(<[u8]>::to_vec).collect::<Vec<_>>();
            assert_eq!(labels(echoed.name()), labels(asked.name()), "question name changed: {}", ctx());
            assert_eq!(echoed.query_type(), asked.query_type(), "{}", ctx());
            assert_eq!(echoed.query_class(), asked.query_class(), "{}", ctx());
        }

        // OPT: ours, and an ECS option only as the client sent it.
        let client_edns = match parse_fast(raw) {
            Fast::Query(q) => q.edns,
            _ => None,
        };
        if client_edns.is_some() {
            assert!(msg.edns.is_some(), "no OPT in the answer to an EDNS query: {}", ctx());
        }
        if let Some(edns) = &msg.edns {
            assert_eq!(edns.max_payload(), fx.edns_payload.max(512), "{}", ctx());
            if let Some(EdnsOption::Subnet(ours)) = edns.option(EdnsCode::Subnet) {
                // From the parser that answered: the fast one when it took the query.
                let theirs = match parse_fast(raw) {
                    Fast::Query(q) => q
                        .edns
                        .and_then(|e| e.client_subnet)
                        .map(|s| (s.address, s.source_prefix)),
                    _ => Message::from_vec(raw).ok().and_then(|m| m.edns).and_then(|e| {
                        match e.option(EdnsCode::Subnet) {
                            Some(EdnsOption::Subnet(s)) => Some((s.addr(), s.source_prefix())),
                            _ => None,
                        }
                    }),
                };
                assert_eq!(
                    Some((ours.addr(), ours.source_prefix())),
                    theirs,
                    "ECS option not the client's: {}",
                    ctx()
                );
            }
        }

        // COOKIE: the client's, with a server cookie of ours; none where the client sent none.
        let asked = match parse_fast(raw) {
            Fast::Query(q) => q.edns,
            _ => match parse_slow(raw, src, if tcp { Protocol::Tcp } else { Protocol::Udp }) {
                Slow::Query(q) => q.edns,
                _ => None,
            },
        };
        let client_cookie = asked.and_then(|e| e.cookie).map(|c| c.client);
        let echoed = msg.edns.as_ref().and_then(|e| match e.option(EdnsCode::Cookie) {
            Some(EdnsOption::Unknown(10, data)) => Some(data.clone()),
            _ => None,
        });
        match (client_cookie, echoed) {
            (Some(client), Some(data)) => {
                assert_eq!(data.len(), 24, "a cookie of {} bytes: {}", data.len(), ctx());
                assert_eq!(data[..8], client, "not the client's cookie: {}", ctx());
                assert_eq!(data[8..12], [1, 0, 0, 0], "not version 1, reserved 0: {}", ctx());
            }
            (Some(_), None) => assert_eq!(outcome.rcode, 16, "no cookie back: {}", ctx()),
            (None, Some(_)) => panic!("a cookie the client did not send: {}", ctx()),
            (None, None) => {}
        }
        if outcome.cookie == CookieSeen::Malformed {
            assert_eq!(outcome.rcode, 1, "a malformed cookie not FORMERR: {}", ctx());
        }

        // What the rate limiter sends instead when it slips: the header and question, TC.
        let mut slipped = out.clone();
        truncate_to_question(&mut slipped, outcome.question_len);
        let slip = Message::from_vec(&slipped)
            .unwrap_or_else(|e| panic!("slipped answer does not parse ({e}): {}", ctx()));
        assert!(slip.metadata.truncation, "{}", ctx());
        assert_eq!(slip.metadata.id, msg.metadata.id, "{}", ctx());
        assert_eq!(slip.queries, msg.queries, "{}", ctx());
    });
});
