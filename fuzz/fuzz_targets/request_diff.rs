//! The fast parser against the full one: whatever `parse_fast` accepts, hickory-server's
//! `parse_slow` must accept as the same `Query`; what the fast one drops, the full one drops.
//!
//! Input: the same format as `request` (a selector byte, then the message), so that the two
//! targets share a corpus; the selector only chooses the source address passed to hickory.
//!
//! No difference is forgiven: the one this target found (an OPT payload under 512, which the
//! full parser raises to 512 per RFC 6891 section 6.2.5) is now treated alike by both parsers.

#![no_main]

use std::fmt::Write;

use hickory_server::net::xfer::Protocol;
use libfuzzer_sys::fuzz_target;
use smarthostd::dns::query::{Fast, Query, parse_fast};
use smarthostd::dns::slow::{Slow, parse_slow};
use smarthostd_fuzz::{hex, transport};

/// The fields that differ, for the report.
fn diff(fast: &Query, slow: &Query) -> String {
    let mut out = String::new();
    macro_rules! field {
        ($name:literal, $a:expr, $b:expr) => {
            if $a != $b {
                let _ = writeln!(out, "  {}: fast {:?}, slow {:?}", $name, $a, $b);
            }
        };
    }
    field!("id", fast.id, slow.id);
    field!("opcode", fast.opcode, slow.opcode);
    field!("recursion_desired", fast.recursion_desired, slow.recursion_desired);
    field!("checking_disabled", fast.checking_disabled, slow.checking_disabled);
    field!("question", fast.question.as_slice(), slow.question.as_slice());
    field!("qname_len", fast.qname_len, slow.qname_len);
    field!("qname_lower", &fast.qname_lower[..], &slow.qname_lower[..]);
    field!("qtype", fast.qtype, slow.qtype);
    field!("qclass", fast.qclass, slow.qclass);
    field!("edns", fast.edns, slow.edns);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, raw)) = data.split_first() else {
        return;
    };
    let (_, src) = transport(selector);
    match parse_fast(raw) {
        Fast::Query(fast) => match parse_slow(raw, src, Protocol::Udp) {
            Slow::Query(slow) => {
                let expected = fast.clone();
                assert!(
                    *slow == expected,
                    "the parsers disagree on {}\n{}",
                    hex(raw),
                    diff(&expected, &slow)
                );
            }
            other => panic!(
                "the fast parser accepts what the full one does not: {}\n fast: {fast:?}\n slow: {other:?}",
                hex(raw)
            ),
        },
        Fast::Drop => assert!(
            matches!(parse_slow(raw, src, Protocol::Udp), Slow::Drop),
            "the fast parser drops what the full one answers: {}",
            hex(raw)
        ),
        Fast::Unusual => {}
    }
});
