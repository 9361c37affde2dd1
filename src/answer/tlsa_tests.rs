//! The pinned relays' TLSA records as a DANE sender's validating resolver sees them: signed at
//! `_25._tcp.` of every name that can lead a sender to them, the `_tcp` parents proved empty
//! non-terminals, nothing published when answers are not signed.

use hickory_proto::dnssec::rdata::DNSKEY;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType};

use super::signed_tests::{CAMBRIDGE, NOW, OXFORD, ZONE, ask, dnskeys};
use crate::answer::HealthView;
use crate::config::KeyAlgorithm;
use crate::dnssec::verify::{Proved, check};
use crate::test_support::SignedZone;

const A: &str = "0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6";
const B: &str = "1c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6";
const C: &str = "2c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6";

/// Every relay pinned: every name an answer can lead to gets records.
fn config() -> String {
    format!(
        r#"
[zone]
origin = "smarthost.internal"
file = "z.zone"
[views]
names = ["relay"]
[sites.oxford]
hosts = [ {{ name = "mail1", addresses = ["192.0.2.11"], tlsa = ["3 1 1 {A}"] }},
          {{ name = "mail2", addresses = ["192.0.2.12"], tlsa = ["3 1 1 {B}", "3 1 1 {A}"] }} ]
clients = ["127.10.0.0/16"]
fallback = ["cambridge"]
[sites.cambridge]
hosts = [ {{ name = "mail1", addresses = ["192.0.2.21"], tlsa = ["3 1 1 {C}"] }} ]
clients = ["127.20.0.0/16"]
fallback = []
"#
    )
}

/// The TLSA data (hex) of an answer, sorted.
fn tlsa_data(m: &hickory_proto::op::Message) -> Vec<String> {
    let mut out: Vec<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TLSA(t) => {
                assert_eq!(
                    (
                        u8::from(t.cert_usage),
                        u8::from(t.selector),
                        u8::from(t.matching)
                    ),
                    (3, 1, 1),
                    "{t}"
                );
                Some(t.cert_data.iter().map(|b| format!("{b:02x}")).collect())
            }
            _ => None,
        })
        .collect();
    out.sort();
    out
}

fn checked(snap: &super::Snapshot, keys: &[DNSKEY], name: &str, rtype: RecordType) -> Proved {
    let m = ask(snap, name, rtype, true, OXFORD);
    let zone = Name::from_ascii("smarthost.internal.").unwrap();
    check(&m, &zone, keys, NOW as u32).unwrap_or_else(|e| panic!("{name} {rtype}: {e}\n{m}"))
}

#[test]
fn every_name_a_sender_connects_to_has_its_relays_records_signed() {
    let mut z = SignedZone::new(&config(), ZONE, KeyAlgorithm::EcdsaP256Sha256, NOW - 60);
    let snap = z.build(HealthView::all_up(&z.topology), NOW, 10);
    let keys = dnskeys(&snap);
    for (name, want) in [
        // MX-first senders: the exchange's own records.
        ("_25._tcp.mail1.oxford.smarthost.internal", vec![A]),
        ("_25._tcp.mail2.oxford.smarthost.internal", vec![A, B]),
        ("_25._tcp.mail1.cambridge.smarthost.internal", vec![C]),
        // A-only senders: every relay the name's addresses can lead to, fallback included.
        ("_25._tcp.oxford.smarthost.internal", vec![A, B, C]),
        ("_25._tcp.cambridge.smarthost.internal", vec![C]),
        ("_25._tcp.smarthost.internal", vec![A, B, C]),
        ("_25._tcp.relay.smarthost.internal", vec![A, B, C]),
    ] {
        assert_eq!(
            checked(&snap, &keys, name, RecordType::TLSA),
            Proved::Answer,
            "{name}"
        );
        let m = ask(&snap, name, RecordType::TLSA, true, CAMBRIDGE);
        assert_eq!(tlsa_data(&m), want, "{name}: the same in every view");
        let plain = ask(&snap, name, RecordType::TLSA, false, OXFORD);
        assert_eq!(tlsa_data(&plain), want, "{name} without DO");
        assert!(
            plain
                .answers
                .iter()
                .all(|r| r.record_type() == RecordType::TLSA),
            "{plain}"
        );
        assert_eq!(m.answers[0].ttl, z.topology.answer.ttl);
    }
    for (name, rtype, want) in [
        (
            "_tcp.mail1.oxford.smarthost.internal",
            RecordType::TLSA,
            Proved::EmptyNonTerminal,
        ),
        (
            "_tcp.oxford.smarthost.internal",
            RecordType::A,
            Proved::EmptyNonTerminal,
        ),
        (
            "_25._tcp.mail1.oxford.smarthost.internal",
            RecordType::A,
            Proved::NoData,
        ),
        (
            "_465._tcp.mail1.oxford.smarthost.internal",
            RecordType::TLSA,
            Proved::NxDomain,
        ),
        (
            "_25._udp.oxford.smarthost.internal",
            RecordType::TLSA,
            Proved::NxDomain,
        ),
        // The names beside keep their answers and proofs.
        ("oxford.smarthost.internal", RecordType::MX, Proved::Answer),
        (
            "mail1.oxford.smarthost.internal",
            RecordType::TLSA,
            Proved::NoData,
        ),
    ] {
        assert_eq!(checked(&snap, &keys, name, rtype), want, "{name} {rtype}");
    }
}

#[test]
fn without_signing_no_tlsa_record_is_published() {
    let z = SignedZone::new(&config(), ZONE, KeyAlgorithm::Ed25519, NOW - 60);
    let snap = crate::answer::build(
        z.topology.clone(),
        &z.zone,
        std::sync::Arc::new(HealthView::all_up(&z.topology)),
        &Default::default(),
        1,
        1,
        None,
    )
    .unwrap();
    let m = ask(
        &snap,
        "_25._tcp.mail1.oxford.smarthost.internal",
        RecordType::TLSA,
        true,
        OXFORD,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{m}");
    assert!(m.answers.is_empty());
}

#[test]
fn a_zone_file_record_at_a_published_tlsa_name_is_refused_with_its_line() {
    let z = SignedZone::new(&config(), ZONE, KeyAlgorithm::Ed25519, NOW - 60);
    let clash = format!("{ZONE}_25._tcp.mail1.oxford IN TXT \"mine\"\n");
    let zone = crate::zone::StaticZone::parse(
        std::path::Path::new("test.zone"),
        clash,
        &z.topology.origin,
    )
    .unwrap();
    let e = zone.check_against(&z.topology).unwrap_err().to_string();
    assert!(
        e.contains("_25._tcp.mail1.oxford.smarthost.internal") && e.contains("TLSA"),
        "{e}"
    );
}
