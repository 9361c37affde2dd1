//! The fast and full parsers must agree: for every query shape the fast parser accepts, the
//! full parser yields the same query and the response bytes are identical.

use std::net::SocketAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_server::net::xfer::Protocol;

use super::cookie::Cookies;
use super::query::{Fast, parse_fast};
use super::respond::{Client, Responder};
use super::slow::{Slow, parse_slow};
use crate::test_support::snapshot;

pub(super) const CONFIG: &str = r#"
[server]
trusted_resolvers = ["127.9.0.0/16"]
[zone]
origin = "smarthost.internal"
file = "z.zone"
[views]
names = ["relay"]
[sites.oxford]
hosts = [ { name = "mail1", addresses = ["192.0.2.11", "2001:db8::11"] },
          { name = "mail2", addresses = ["192.0.2.12"] } ]
clients = ["127.10.0.0/16", "2001:db8:10::/48"]
fallback = ["cambridge"]
warm_share = 0.25
[sites.cambridge]
hosts = [ { name = "mail1", addresses = ["192.0.2.21"] } ]
clients = ["127.20.0.0/16"]
[sites.big]
hosts = [ { name = "r01", addresses = ["192.0.2.101"] }, { name = "r02", addresses = ["192.0.2.102"] },
          { name = "r03", addresses = ["192.0.2.103"] }, { name = "r04", addresses = ["192.0.2.104"] },
          { name = "r05", addresses = ["192.0.2.105"] }, { name = "r06", addresses = ["192.0.2.106"] },
          { name = "r07", addresses = ["192.0.2.107"] }, { name = "r08", addresses = ["192.0.2.108"] },
          { name = "r09", addresses = ["192.0.2.109"] }, { name = "r10", addresses = ["192.0.2.110"] },
          { name = "r11", addresses = ["192.0.2.111"] }, { name = "r12", addresses = ["192.0.2.112"] },
          { name = "r13", addresses = ["192.0.2.113"] }, { name = "r14", addresses = ["192.0.2.114"] },
          { name = "r15", addresses = ["192.0.2.115"] }, { name = "r16", addresses = ["192.0.2.116"] },
          { name = "r17", addresses = ["192.0.2.117"] }, { name = "r18", addresses = ["192.0.2.118"] },
          { name = "r19", addresses = ["192.0.2.119"] }, { name = "r20", addresses = ["192.0.2.120"] },
          { name = "r21", addresses = ["192.0.2.121"] }, { name = "r22", addresses = ["192.0.2.122"] },
          { name = "r23", addresses = ["192.0.2.123"] }, { name = "r24", addresses = ["192.0.2.124"] } ]
fallback = []
"#;

pub(super) const ZONE: &str = "$ORIGIN smarthost.internal.\n$TTL 300\n\
@ IN SOA ns1 hostmaster ( 1 3600 600 86400 60 )\n@ IN NS ns1\n@ IN TXT \"v=1\"\n\
ns1 IN A 127.0.0.53\na.b.deep IN TXT \"x\"\n\
mx IN MX 5 mail2.oxford\n";

const NAMES: &[&str] = &[
    "oxford.smarthost.internal",
    "OxFoRd.SmartHost.Internal",
    "mail1.oxford.smarthost.internal",
    "MAIL2.OXFORD.SMARTHOST.INTERNAL",
    "big.smarthost.internal",
    "smarthost.internal",
    "relay.smarthost.internal",
    "alias.smarthost.internal",
    "b.deep.smarthost.internal",
    "mx.smarthost.internal",
    "nope.smarthost.internal",
    "x.mail1.oxford.smarthost.internal",
    "example.com",
    ".",
];

const TYPES: &[RecordType] = &[
    RecordType::A,
    RecordType::AAAA,
    RecordType::MX,
    RecordType::NS,
    RecordType::SOA,
    RecordType::TXT,
    RecordType::CNAME,
    RecordType::ANY,
    RecordType::SRV,
    RecordType::AXFR,
    RecordType::Unknown(65280),
];

/// Cookies made with a fixed secret at a fixed time, so that two answers are byte-identical.
pub(super) fn fixed_cookies() -> Cookies {
    Cookies::with_clock(&[[0x5a; 16]], || 1_700_000_000).unwrap()
}

pub(super) fn queries() -> Vec<Vec<u8>> {
    let first = super::cookie::Cookie {
        client: [7; 8],
        server: super::cookie::Presented::None,
    };
    let ours = fixed_cookies()
        .reply(&first, "127.10.0.1".parse().unwrap())
        .data;
    let mut out = Vec::new();
    for name in NAMES {
        for &rtype in TYPES {
            for variant in 0..9 {
                let mut m = Message::new(0xBEEF, MessageType::Query, OpCode::Query);
                m.metadata.recursion_desired = variant % 2 == 0;
                m.metadata.checking_disabled = variant == 3;
                let mut q = Query::query(Name::from_ascii(name).unwrap(), rtype);
                if variant == 6 {
                    q.set_query_class(DNSClass::CH);
                }
                m.add_query(q);
                let mut e = Edns::new();
                match variant {
                    1 => e.set_max_payload(512),
                    2 => e.set_max_payload(4096),
                    3 => e.set_dnssec_ok(true),
                    4 => {
                        e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
                            "127.20.1.0".parse().unwrap(),
                            24,
                            0,
                        )));
                        e.set_max_payload(1232)
                    }
                    5 => e.set_version(1),
                    // A client's first query; one with our cookie for 127.10.0.1 (invalid
                    // from any other source).
                    7 => {
                        e.options_mut().insert(EdnsOption::Unknown(10, vec![7; 8]));
                        &mut e
                    }
                    8 => {
                        e.options_mut()
                            .insert(EdnsOption::Unknown(10, ours.to_vec()));
                        &mut e
                    }
                    _ => &mut e,
                };
                if variant != 0 && variant != 6 {
                    m.set_edns(e);
                }
                out.push(m.to_vec().unwrap());
            }
        }
    }
    out
}

#[test]
fn fast_and_full_parsers_give_byte_identical_answers() {
    let snap = snapshot(CONFIG, ZONE);
    let cookies = fixed_cookies();
    let responder = Responder {
        snapshot: &snap,
        edns_payload: 1232,
        cookies: &cookies,
    };
    let sources: [SocketAddr; 4] = [
        "127.10.0.1:5000".parse().unwrap(),
        "127.9.0.1:5000".parse().unwrap(),
        "127.30.0.1:5000".parse().unwrap(),
        "[2001:db8:10::1]:5000".parse().unwrap(),
    ];
    let (mut fast_out, mut slow_out) = (Vec::new(), Vec::new());
    let mut compared = 0;
    for raw in queries() {
        let Fast::Query(fast) = parse_fast(&raw) else {
            panic!("the fast parser passed on a plain query: {raw:?}");
        };
        for src in sources {
            for tcp in [false, true] {
                let protocol = if tcp { Protocol::Tcp } else { Protocol::Udp };
                let Slow::Query(slow) = parse_slow(&raw, src, protocol) else {
                    panic!("the full parser rejected {raw:?}");
                };
                assert_eq!(*slow, fast, "the parsers disagree on {raw:?}");
                let client = Client { ip: src.ip(), tcp };
                // Warm picks count answers: compare answers from twin counters.
                let a = responder.answer(&fast, client, &mut fast_out);
                let b = responder.answer(&slow, client, &mut slow_out);
                if !(a.warm || b.warm) {
                    assert_eq!(fast_out, slow_out, "different bytes for {raw:?} from {src}");
                    assert_eq!(a, b);
                }
                let parsed =
                    Message::from_vec(&fast_out).unwrap_or_else(|e| panic!("{e}: {raw:?}"));
                assert_eq!(parsed.metadata.id, 0xBEEF);
                compared += 1;
            }
        }
    }
    assert!(compared > 5000, "{compared}");
}

#[test]
fn an_unusual_but_valid_query_takes_the_full_parser_and_gets_the_same_answer() {
    let snap = snapshot(CONFIG, ZONE);
    let cookies = fixed_cookies();
    let responder = Responder {
        snapshot: &snap,
        edns_payload: 1232,
        cookies: &cookies,
    };
    let mut m = Message::new(7, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii("oxford.smarthost.internal").unwrap(),
        RecordType::MX,
    ));
    let plain = m.to_vec().unwrap();
    // The same query carrying a record in its authority section: legal, but not the shape the
    // fast parser vouches for.
    m.add_authority(hickory_proto::rr::Record::from_rdata(
        Name::from_ascii("x.example.").unwrap(),
        60,
        hickory_proto::rr::RData::A("192.0.2.1".parse::<std::net::Ipv4Addr>().unwrap().into()),
    ));
    let unusual = m.to_vec().unwrap();
    assert!(matches!(parse_fast(&unusual), Fast::Unusual));
    let src: SocketAddr = "127.0.0.1:53".parse().unwrap();
    let client = Client {
        ip: src.ip(),
        tcp: false,
    };
    let Slow::Query(q) = parse_slow(&unusual, src, Protocol::Udp) else {
        panic!()
    };
    let Fast::Query(f) = parse_fast(&plain) else {
        panic!()
    };
    assert_eq!(*q, f);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    responder.answer(&q, client, &mut a);
    responder.answer(&f, client, &mut b);
    assert_eq!(a, b);
}

#[test]
fn fast_and_full_parsers_give_byte_identical_signed_answers() {
    let mut zone = crate::test_support::SignedZone::new(
        CONFIG,
        ZONE,
        crate::config::KeyAlgorithm::Ed25519,
        1_800_000_000,
    );
    let snap = zone.build(
        crate::answer::HealthView::all_up(&zone.topology),
        1_800_000_060,
        2,
    );
    let cookies = fixed_cookies();
    let responder = Responder {
        snapshot: &snap,
        edns_payload: 1232,
        cookies: &cookies,
    };
    let src: SocketAddr = "127.10.0.1:5000".parse().unwrap();
    let (mut fast_out, mut slow_out) = (Vec::new(), Vec::new());
    let mut signed = 0;
    for raw in queries() {
        let Fast::Query(fast) = parse_fast(&raw) else {
            panic!("the fast parser passed on a plain query: {raw:?}");
        };
        let Slow::Query(slow) = parse_slow(&raw, src, Protocol::Udp) else {
            panic!("the full parser rejected {raw:?}");
        };
        let client = Client {
            ip: src.ip(),
            tcp: false,
        };
        let a = responder.answer(&fast, client, &mut fast_out);
        let b = responder.answer(&slow, client, &mut slow_out);
        if !(a.warm || b.warm) {
            assert_eq!(fast_out, slow_out, "different bytes for {raw:?}");
        }
        let parsed = Message::from_vec(&fast_out).unwrap_or_else(|e| panic!("{e}: {raw:?}"));
        let sigs = parsed
            .answers
            .iter()
            .chain(&parsed.authorities)
            .filter(|r| r.record_type() == RecordType::RRSIG)
            .count();
        let dnssec_ok = fast.edns.is_some_and(|e| e.dnssec_ok);
        assert!(dnssec_ok || sigs == 0, "RRSIGs without DO: {parsed}");
        signed += usize::from(sigs > 0);
    }
    assert!(signed > 30, "{signed} signed answers");
}
