use std::cell::Cell;
use std::net::IpAddr;

use super::ReplyCache;
use crate::answer::{HealthView, Snapshot};
use crate::config::KeyAlgorithm;
use crate::dns::query::{Fast, parse_fast};
use crate::dns::respond::{Client, Outcome, Responder};
use crate::dns::tests::{CONFIG, ZONE, fixed_cookies, queries};
use crate::test_support::{SignedZone, snapshot};

/// Sources in different views, a trusted resolver (whose subnets are believed), an address
/// in no site's clients, and IPv6.
const SOURCES: [&str; 5] = [
    "127.10.0.1",
    "127.20.0.1",
    "127.9.0.1",
    "127.30.0.1",
    "2001:db8:10::1",
];

/// The reply `snap` gives `raw` from `ip` without a cache.
fn fresh(snap: &Snapshot, raw: &[u8], ip: IpAddr, out: &mut Vec<u8>) -> Option<Outcome> {
    let cookies = fixed_cookies();
    let responder = Responder {
        snapshot: snap,
        edns_payload: 1232,
        cookies: &cookies,
    };
    match parse_fast(raw) {
        Fast::Query(q) => Some(responder.answer(&q, Client { ip, tcp: false }, out)),
        _ => None,
    }
}

/// Asks every query from every source in turn through one cache per query (each source with
/// its own ID), and compares each reply with the one made for that source without a cache.
/// Returns how many came from the cache.
fn every_source_gets_its_own_reply(snap: &Snapshot) -> usize {
    let mut hits = 0;
    let (mut cached, mut direct) = (Vec::new(), Vec::new());
    for mut raw in queries() {
        let mut cache = ReplyCache::new();
        for (i, source) in SOURCES.iter().enumerate() {
            let ip: IpAddr = source.parse().unwrap();
            raw[..2].copy_from_slice(&(0x1000 + i as u16).to_be_bytes());
            let made = Cell::new(false);
            let a = cache.answer(snap, &raw, ip, &mut cached, |out| {
                made.set(true);
                fresh(snap, &raw, ip, out)
            });
            let b = fresh(snap, &raw, ip, &mut direct);
            hits += usize::from(!made.get());
            let (a, b) = (a.unwrap(), b.unwrap());
            // Warm picks count answers: two answers made apart may differ; never a kept one.
            if made.get() && (a.warm || b.warm) {
                continue;
            }
            assert_eq!(cached, direct, "{raw:?} from {source}");
            assert_eq!(a, b, "{raw:?} from {source}");
        }
    }
    hits
}

/// The first query of type `qtype` whose reply from `ip` may be kept.
fn reusable(snap: &Snapshot, ip: IpAddr, qtype: u16) -> Vec<u8> {
    queries()
        .into_iter()
        .find(|q| {
            fresh(snap, q, ip, &mut Vec::new())
                .is_some_and(|o| o.reusable && o.qtype == qtype && o.rcode == 0)
        })
        .expect("a reusable query")
}

#[test]
fn a_kept_reply_is_byte_for_byte_what_the_client_would_have_been_sent() {
    let hits = every_source_gets_its_own_reply(&snapshot(CONFIG, ZONE));
    // Most shapes are reusable (no cookie, no subnet, no view, no warm share): a cache that
    // never kept anything would pass the comparison, not this.
    assert!(hits > 2000, "{hits} replies from the cache");
}

#[test]
fn a_kept_signed_reply_is_byte_for_byte_what_the_client_would_have_been_sent() {
    let mut zone = SignedZone::new(CONFIG, ZONE, KeyAlgorithm::Ed25519, 1_800_000_000);
    let snap = zone.build(HealthView::all_up(&zone.topology), 1_800_000_060, 2);
    let hits = every_source_gets_its_own_reply(&snap);
    assert!(hits > 2000, "{hits} replies from the cache");
}

#[test]
fn a_client_not_allowed_to_query_is_refused_what_another_was_sent() {
    let config = CONFIG.replace(
        "[server]\n",
        "[server]\nallow_query = [\"127.10.0.0/16\"]\n",
    );
    let snap = snapshot(&config, ZONE);
    let allowed: IpAddr = "127.10.0.1".parse().unwrap();
    let raw = &reusable(&snap, allowed, 1);
    let mut cache = ReplyCache::new();
    let mut out = Vec::new();
    let kept = cache.answer(&snap, raw, allowed, &mut out, |o| {
        fresh(&snap, raw, allowed, o)
    });
    assert!(kept.unwrap().reusable);
    let other: IpAddr = "127.30.0.1".parse().unwrap();
    let made = Cell::new(false);
    let refused = cache
        .answer(&snap, raw, other, &mut out, |o| {
            made.set(true);
            fresh(&snap, raw, other, o)
        })
        .unwrap();
    assert!(made.get() && refused.denied, "{refused:?}");
    assert_eq!(out[3] & 0x0F, 5, "REFUSED");
}

#[test]
fn a_new_generation_is_answered_from_itself() {
    let mut zone = SignedZone::new(CONFIG, ZONE, KeyAlgorithm::Ed25519, 1_800_000_000);
    let up = zone.build(HealthView::all_up(&zone.topology), 1_800_000_060, 2);
    let mut health = HealthView::all_up(&zone.topology);
    let mail1 = zone.topology.find_host("oxford", "mail1").unwrap();
    health.set_host(mail1, crate::answer::State::Down);
    let down = zone.build(health, 1_800_000_060, 3);
    let ip: IpAddr = "127.10.0.1".parse().unwrap();
    let raw = reusable(&up, ip, 15);
    let mut cache = ReplyCache::new();
    let (mut cached, mut direct) = (Vec::new(), Vec::new());
    cache.answer(&up, &raw, ip, &mut cached, |o| fresh(&up, &raw, ip, o));
    cache.answer(&down, &raw, ip, &mut cached, |o| fresh(&down, &raw, ip, o));
    fresh(&down, &raw, ip, &mut direct);
    let mut before = Vec::new();
    fresh(&up, &raw, ip, &mut before);
    assert_ne!(before, direct, "the two generations answer differently");
    assert_eq!(cached, direct);
}

#[test]
fn a_reply_the_full_parser_made_is_never_kept() {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RData, Record, RecordType};
    let snap = snapshot(CONFIG, ZONE);
    let cookies = fixed_cookies();
    let mut m = Message::new(7, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii("mail1.oxford.smarthost.internal").unwrap(),
        RecordType::A,
    ));
    let plain = m.to_vec().unwrap();
    // Legal, but a shape only the full parser reads (as a TSIG-signed request is).
    m.add_authority(Record::from_rdata(
        Name::from_ascii("x.example.").unwrap(),
        60,
        RData::A("192.0.2.1".parse::<std::net::Ipv4Addr>().unwrap().into()),
    ));
    let unusual = m.to_vec().unwrap();
    let src = "127.10.0.1:53".parse().unwrap();
    let answer = |raw: &[u8]| {
        crate::dns::answer_with(&snap, 1232, &cookies, raw, src, false, &mut Vec::new()).unwrap()
    };
    assert!(answer(&plain).reusable);
    assert!(!answer(&unusual).reusable);
}
