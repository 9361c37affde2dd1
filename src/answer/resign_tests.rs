//! Signatures over time, without a network: a rebuild after one relay's change signs only what
//! changed, signatures are made again at their refresh point, and the default view's signed
//! zone can be listed RRset by RRset (what a zone transfer will send), every RRset validating.

use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RecordType};

use super::signed_tests::{CONFIG, NOW, OXFORD, ZONE, ask, check_all, dnskeys};
use crate::answer::{HealthView, State};
use crate::config::KeyAlgorithm;
use crate::dnssec::verify::{Proved, check};
use crate::test_support::SignedZone;

#[test]
fn a_rebuild_after_one_relays_change_signs_only_what_changed_and_still_validates() {
    let mut z = SignedZone::new(CONFIG, ZONE, KeyAlgorithm::EcdsaP256Sha256, NOW - 60);
    let first = z.build(HealthView::all_up(&z.topology), NOW, 10);
    let mut health = HealthView::all_up(&z.topology);
    health.set_host(1, State::Down); // oxford's mail2
    let second = z.build(health, NOW + 30, 11);
    assert!(
        second.signatures_made * 2 < first.signatures_made,
        "{} of {} signatures made again",
        second.signatures_made,
        first.signatures_made
    );
    check_all(&second, NOW + 30);
    let mx = ask(
        &second,
        "oxford.smarthost.internal",
        RecordType::MX,
        true,
        OXFORD,
    );
    assert!(
        !mx.to_string().contains("mail2.oxford"),
        "mail2 withdrawn:\n{mx}"
    );
    // Nothing changed: only the SOA (a new serial) is signed again.
    let third = z.build(HealthView::all_up(&z.topology), NOW + 60, 12);
    assert_eq!(third.signatures_made, 1, "the SOA alone");
    check_all(&third, NOW + 60);
}

#[test]
fn signatures_are_made_again_at_their_refresh_point_and_validate_then() {
    let mut z = SignedZone::new(CONFIG, ZONE, KeyAlgorithm::Ed25519, NOW - 60);
    let first = z.build(HealthView::all_up(&z.topology), NOW, 10);
    let refresh = first.resign_at.unwrap();
    let before = z.build(HealthView::all_up(&z.topology), refresh - 1, 11);
    assert_eq!(before.signatures_made, 1);
    let at = z.build(HealthView::all_up(&z.topology), refresh, 12);
    assert!(
        at.signatures_made >= first.signatures_made - 1,
        "{}",
        at.signatures_made
    );
    check_all(&at, refresh + 3600);
    assert_eq!(at.resign_at, Some(refresh + 7 * 86400));
}

#[test]
fn the_default_views_signed_zone_can_be_enumerated_and_validates() {
    let mut z = SignedZone::new(CONFIG, ZONE, KeyAlgorithm::EcdsaP256Sha256, NOW - 60);
    let snap = z.build(HealthView::all_up(&z.topology), NOW, 10);
    let keys = dnskeys(&snap);
    let zone = Name::from_ascii("smarthost.internal.").unwrap();
    let view = z.topology.view_index(z.topology.default_view);
    let mut types = std::collections::BTreeSet::new();
    for (owner, rtype, answer) in snap.enumerate(view, true) {
        // The sections behind a header and the owner's question, as a response.
        let mut wire = vec![0, 0, 0x84, 0, 0, 1];
        for c in answer.counts {
            wire.extend_from_slice(&c.to_be_bytes());
        }
        wire.extend_from_slice(owner);
        wire.extend_from_slice(&rtype.to_be_bytes());
        wire.extend_from_slice(&1u16.to_be_bytes());
        answer.write_to(&mut wire, true);
        let m = Message::from_vec(&wire).unwrap();
        assert_eq!(
            check(&m, &zone, &keys, NOW as u32),
            Ok(Proved::Answer),
            "{m}"
        );
        types.insert(RecordType::from(rtype));
    }
    for t in [
        RecordType::SOA,
        RecordType::NS,
        RecordType::DNSKEY,
        RecordType::NSEC,
        RecordType::MX,
        RecordType::A,
        RecordType::AAAA,
    ] {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }
}
