//! Signed answers checked as a validator checks them, without a network: every RRSIG of a built
//! snapshot verified with hickory-proto's verifier, and the NSEC proof of every negative answer
//! (NODATA, per view, at empty non-terminals, NXDOMAIN); `resign_tests` does the same after
//! rebuilds that take signatures from the cache.

use std::net::SocketAddr;

use hickory_proto::dnssec::rdata::DNSKEY;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use crate::answer::HealthView;
use crate::config::KeyAlgorithm;
use crate::dnssec::verify::{Proved, check};
use crate::test_support::SignedZone;

pub(super) const CONFIG: &str = r#"
[zone]
origin = "smarthost.internal"
file = "z.zone"
[views]
names = ["relay"]
[sites.oxford]
hosts = [ { name = "mail1", addresses = ["192.0.2.11", "2001:db8::11"] },
          { name = "mail2", addresses = ["192.0.2.12"] } ]
clients = ["127.10.0.0/16"]
fallback = ["cambridge"]
warm_share = 0.5
[sites.cambridge]
hosts = [ { name = "mail1", addresses = ["192.0.2.21"] } ]
clients = ["127.20.0.0/16"]
fallback = []
"#;

pub(super) const ZONE: &str = "$ORIGIN smarthost.internal.\n$TTL 300\n\
@ IN SOA ns1 hostmaster ( 1 3600 600 86400 60 )\n@ IN NS ns1\n@ IN TXT \"v=1\"\n\
ns1 IN A 127.0.0.53\na.b.deep IN TXT \"x\"\nmx IN MX 5 mail2.oxford\nmx IN MX 6 mail2.oxford\n";

pub(super) const NOW: u64 = 1_800_000_000;
pub(super) const OXFORD: &str = "127.10.0.1:5300";
pub(super) const CAMBRIDGE: &str = "127.20.0.1:5300";

pub(super) fn ask(
    snap: &super::Snapshot,
    name: &str,
    rtype: RecordType,
    dnssec_ok: bool,
    from: &str,
) -> Message {
    let mut m = Message::new(0x5151, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    let mut e = Edns::new();
    e.set_dnssec_ok(dnssec_ok);
    m.set_edns(e);
    let src: SocketAddr = from.parse().unwrap();
    let mut out = Vec::new();
    let cookies = crate::dns::cookie::Cookies::new(&[[7; 16]]).unwrap();
    crate::dns::answer_with(
        snap,
        1232,
        &cookies,
        &m.to_vec().unwrap(),
        src,
        true,
        &mut out,
    )
    .expect("an answer");
    Message::from_vec(&out).unwrap()
}

/// Every question the zone answers in some way, with the proof a validator must find.
const CASES: &[(&str, RecordType, &str, Proved)] = &[
    (
        "oxford.smarthost.internal",
        RecordType::MX,
        OXFORD,
        Proved::Answer,
    ),
    (
        "oxford.smarthost.internal",
        RecordType::A,
        OXFORD,
        Proved::Answer,
    ),
    (
        "oxford.smarthost.internal",
        RecordType::AAAA,
        OXFORD,
        Proved::Answer,
    ),
    (
        "oxford.smarthost.internal",
        RecordType::TXT,
        OXFORD,
        Proved::NoData,
    ),
    (
        "oxford.smarthost.internal",
        RecordType::ANY,
        OXFORD,
        Proved::Answer,
    ),
    (
        "oxford.smarthost.internal",
        RecordType::NSEC,
        OXFORD,
        Proved::Answer,
    ),
    (
        "cambridge.smarthost.internal",
        RecordType::AAAA,
        OXFORD,
        Proved::NoData,
    ),
    (
        "mail1.oxford.smarthost.internal",
        RecordType::AAAA,
        OXFORD,
        Proved::Answer,
    ),
    (
        "mail2.oxford.smarthost.internal",
        RecordType::AAAA,
        OXFORD,
        Proved::NoData,
    ),
    (
        "smarthost.internal",
        RecordType::SOA,
        OXFORD,
        Proved::Answer,
    ),
    ("smarthost.internal", RecordType::NS, OXFORD, Proved::Answer),
    (
        "smarthost.internal",
        RecordType::DNSKEY,
        OXFORD,
        Proved::Answer,
    ),
    (
        "smarthost.internal",
        RecordType::TXT,
        OXFORD,
        Proved::Answer,
    ),
    ("smarthost.internal", RecordType::DS, OXFORD, Proved::NoData),
    (
        "smarthost.internal",
        RecordType::MX,
        CAMBRIDGE,
        Proved::Answer,
    ),
    (
        "smarthost.internal",
        RecordType::AAAA,
        OXFORD,
        Proved::Answer,
    ),
    (
        "smarthost.internal",
        RecordType::AAAA,
        CAMBRIDGE,
        Proved::NoData,
    ),
    (
        "relay.smarthost.internal",
        RecordType::AAAA,
        CAMBRIDGE,
        Proved::NoData,
    ),
    (
        "relay.smarthost.internal",
        RecordType::A,
        CAMBRIDGE,
        Proved::Answer,
    ),
    (
        "relay.smarthost.internal",
        RecordType::SRV,
        OXFORD,
        Proved::NoData,
    ),
    (
        "mx.smarthost.internal",
        RecordType::MX,
        OXFORD,
        Proved::Answer,
    ),
    (
        "deep.smarthost.internal",
        RecordType::A,
        OXFORD,
        Proved::EmptyNonTerminal,
    ),
    (
        "b.deep.smarthost.internal",
        RecordType::TXT,
        OXFORD,
        Proved::EmptyNonTerminal,
    ),
    (
        "a.b.deep.smarthost.internal",
        RecordType::TXT,
        OXFORD,
        Proved::Answer,
    ),
    (
        "nope.smarthost.internal",
        RecordType::A,
        OXFORD,
        Proved::NxDomain,
    ),
    (
        "zzzz.smarthost.internal",
        RecordType::MX,
        OXFORD,
        Proved::NxDomain,
    ),
    (
        "x.mail1.oxford.smarthost.internal",
        RecordType::A,
        OXFORD,
        Proved::NxDomain,
    ),
    (
        "c.b.deep.smarthost.internal",
        RecordType::A,
        OXFORD,
        Proved::NxDomain,
    ),
    (
        "0.smarthost.internal",
        RecordType::A,
        OXFORD,
        Proved::NxDomain,
    ),
];

pub(super) fn dnskeys(snap: &super::Snapshot) -> Vec<DNSKEY> {
    let m = ask(snap, "smarthost.internal", RecordType::DNSKEY, true, OXFORD);
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            hickory_proto::rr::RData::DNSSEC(
                hickory_proto::dnssec::rdata::DNSSECRData::DNSKEY(k),
            ) => Some(k.clone()),
            _ => None,
        })
        .collect()
}

pub(super) fn check_all(snap: &super::Snapshot, now: u64) {
    let zone = Name::from_ascii("smarthost.internal.").unwrap();
    let keys = dnskeys(snap);
    assert_eq!(keys.len(), 1);
    for &(name, rtype, from, want) in CASES {
        let m = ask(snap, name, rtype, true, from);
        let proved = check(&m, &zone, &keys, now as u32)
            .unwrap_or_else(|e| panic!("{name} {rtype} from {from}: {e}\n{m}"));
        assert_eq!(proved, want, "{name} {rtype} from {from}\n{m}");
        // Without DO: the same answer, no DNSSEC record anywhere.
        let plain = ask(snap, name, rtype, false, from);
        assert_eq!(plain.metadata.response_code, m.metadata.response_code);
        let dnssec = plain
            .answers
            .iter()
            .chain(&plain.authorities)
            .chain(&plain.additionals)
            .filter(|r| {
                matches!(r.record_type(), RecordType::RRSIG)
                    || (r.record_type() == RecordType::NSEC && rtype != RecordType::NSEC)
            })
            .count();
        assert_eq!(dnssec, 0, "{name} {rtype} without DO:\n{plain}");
    }
}

#[test]
fn every_answer_and_proof_of_a_signed_build_validates() {
    for algorithm in [KeyAlgorithm::EcdsaP256Sha256, KeyAlgorithm::Ed25519] {
        let mut z = SignedZone::new(CONFIG, ZONE, algorithm, NOW - 60);
        let snap = z.build(HealthView::all_up(&z.topology), NOW, 10);
        check_all(&snap, NOW);
        assert!(snap.signatures_made > 20, "{}", snap.signatures_made);
        assert_eq!(snap.resign_at, Some(NOW + 7 * 86400));
    }
}

#[test]
fn the_nxdomain_proof_is_put_together_per_name_without_duplicates() {
    let mut z = SignedZone::new(CONFIG, ZONE, KeyAlgorithm::Ed25519, NOW - 60);
    let snap = z.build(HealthView::all_up(&z.topology), NOW, 10);
    // Under mail1.oxford the wildcard and the name fall in the same span: one NSEC.
    let m = ask(
        &snap,
        "x.mail1.oxford.smarthost.internal",
        RecordType::A,
        true,
        OXFORD,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    let nsecs = m
        .authorities
        .iter()
        .filter(|r| r.record_type() == RecordType::NSEC)
        .count();
    assert_eq!(nsecs, 1, "{m}");
    // "0" sorts before every name under the apex, its wildcard after the apex: two NSECs.
    let m = ask(&snap, "0.smarthost.internal", RecordType::A, true, OXFORD);
    let nsecs = m
        .authorities
        .iter()
        .filter(|r| r.record_type() == RecordType::NSEC)
        .count();
    assert!(nsecs >= 1, "{m}");
    // The question's letter case does not matter.
    let m = ask(
        &snap,
        "NoPe.SmartHost.Internal",
        RecordType::A,
        true,
        OXFORD,
    );
    let keys = dnskeys(&snap);
    let zone = Name::from_ascii("smarthost.internal.").unwrap();
    assert_eq!(check(&m, &zone, &keys, NOW as u32), Ok(Proved::NxDomain));
}

#[test]
fn a_query_for_rrsig_gets_the_first_rrsets_signatures_with_or_without_do() {
    let mut z = SignedZone::new(CONFIG, ZONE, KeyAlgorithm::Ed25519, NOW - 60);
    let snap = z.build(HealthView::all_up(&z.topology), NOW, 10);
    for dnssec_ok in [false, true] {
        let m = ask(
            &snap,
            "mail1.oxford.smarthost.internal",
            RecordType::RRSIG,
            dnssec_ok,
            OXFORD,
        );
        assert_eq!(m.answers.len(), 1, "{m}");
        assert_eq!(m.answers[0].record_type(), RecordType::RRSIG);
        assert!(m.authorities.is_empty() && m.additionals.is_empty());
    }
    // An empty non-terminal has none: NODATA.
    let m = ask(
        &snap,
        "deep.smarthost.internal",
        RecordType::RRSIG,
        true,
        OXFORD,
    );
    assert!(m.answers.is_empty());
}
