//! The pinned relays' TLSA records as a running server answers them over real UDP and TCP: with
//! `[dnssec]` signed, at the name an MX-first sender asks (`_25._tcp.<relay>`) and at the one a
//! sender that asks the site's own addresses asks (`_25._tcp.<site>`), each proved as a
//! validator proves it; without `[dnssec]` not published at all (NXDOMAIN), as a DANE sender
//! uses only signed records.

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use smarthostd::dnssec::verify::{Proved, check};

use crate::dnssec::{dnskeys, dnssec_query, make_key, now, signed, tcp_message, zone};
use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::fake_tls::{BOTH, MAIL1, Relay};
use crate::support::*;

const SITE_TLSA: &str = "_25._tcp.oxford.smarthost.internal";
const RELAY_TLSA: &str = "_25._tcp.mail1.oxford.smarthost.internal";

/// Two pinned relays, each with its own key: oxford's mail1 by its certificate file
/// `mail1.pem`, cambridge's mail1 (oxford's fallback, so `_25._tcp.oxford` holds its record
/// too) by `tlsa`.
struct Pinned {
    oxford: Relay,
    cambridge: Relay,
    _relays: [FakeSmtp; 2],
    config: String,
}

async fn pinned(dir: &std::path::Path) -> Pinned {
    let oxford = Relay::self_signed(&[MAIL1]);
    let cambridge = Relay::self_signed(&["mail1.cambridge.smarthost.internal"]);
    let ox = FakeSmtp::start(Behavior::Starttls(oxford.server(BOTH))).await;
    let cam = FakeSmtp::start(Behavior::Starttls(cambridge.server(BOTH))).await;
    std::fs::write(dir.join("mail1.pem"), oxford.pem()).unwrap();
    let config = format!(
        "[sites.oxford]\nhosts = [{{ name = \"mail1\", addresses = [\"{}\"], port = {}, tls_key = \"mail1.pem\" }}]\n\
         [sites.cambridge]\nhosts = [{{ name = \"mail1\", addresses = [\"{}\"], port = {}, tlsa = [\"{}\"] }}]\n",
        ox.addr.ip(),
        ox.addr.port(),
        cam.addr.ip(),
        cam.addr.port(),
        cambridge.record()
    );
    Pinned {
        oxford,
        cambridge,
        _relays: [ox, cam],
        config,
    }
}

/// The answer's TLSA records as "u s m hex".
fn tlsa_records(m: &Message) -> Vec<String> {
    let mut out: Vec<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TLSA(t) => Some(format!(
                "{} {} {} {}",
                u8::from(t.cert_usage),
                u8::from(t.selector),
                u8::from(t.matching),
                t.cert_data
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            )),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

fn rrsigs(m: &Message) -> usize {
    m.answers
        .iter()
        .filter(|r| r.record_type() == RecordType::RRSIG)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signing_server_answers_the_pinned_records_signed_at_the_relay_and_the_site_over_udp_and_tcp()
 {
    let dir = tempfile::tempdir().unwrap();
    let p = pinned(dir.path()).await;
    make_key(dir.path(), None);
    let server = TestServer::start_in(&signed(p.config.clone()), dir).await;
    let keys = dnskeys(&server).await;
    let mut both = vec![p.oxford.record(), p.cambridge.record()];
    both.sort();
    for (name, want) in [
        (RELAY_TLSA, vec![p.oxford.record()]),
        (SITE_TLSA, both.clone()),
    ] {
        let over_udp = udp_message(
            server.dns,
            &dnssec_query(name, RecordType::TLSA, true, 1232),
        )
        .await;
        let over_tcp = tcp_message(&server, name, RecordType::TLSA).await;
        for (how, m) in [("udp", &over_udp), ("tcp", &over_tcp)] {
            assert_eq!(
                m.metadata.response_code,
                ResponseCode::NoError,
                "{how} {name}: {m}"
            );
            assert!(m.metadata.authoritative, "{how} {name}: {m}");
            assert_eq!(tlsa_records(m), want, "{how} {name}: {m}");
            assert_eq!(
                rrsigs(m),
                1,
                "{how} {name}: one RRSIG over the TLSA RRset: {m}"
            );
            assert_eq!(
                check(m, &zone(), &keys, now()),
                Ok(Proved::Answer),
                "{how} {name}: {m}"
            );
        }
    }
    // Without DO the records, and no signature.
    let plain = udp_message(
        server.dns,
        &dnssec_query(SITE_TLSA, RecordType::TLSA, false, 1232),
    )
    .await;
    assert_eq!(tlsa_records(&plain), both, "{plain}");
    assert_eq!(rrsigs(&plain), 0, "{plain}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_dnssec_the_pinned_records_are_not_published() {
    let dir = tempfile::tempdir().unwrap();
    let p = pinned(dir.path()).await;
    let server = TestServer::start_in(&Setup::new(p.config.clone()), dir).await;
    // The relays are probed and served (their keys match) ...
    assert_eq!(
        server.mx("oxford.smarthost.internal").await,
        vec![mx(10, "mail1.oxford"), mx(20, "mail1.cambridge")]
    );
    // ... but its records are not in unsigned answers.
    for name in [RELAY_TLSA, SITE_TLSA] {
        let over_udp = udp_message(
            server.dns,
            &dnssec_query(name, RecordType::TLSA, true, 1232),
        )
        .await;
        let over_tcp = tcp_message(&server, name, RecordType::TLSA).await;
        for (how, m) in [("udp", &over_udp), ("tcp", &over_tcp)] {
            assert_eq!(
                m.metadata.response_code,
                ResponseCode::NXDomain,
                "{how} {name}: {m}"
            );
            assert!(
                tlsa_records(m).is_empty() && rrsigs(m) == 0,
                "{how} {name}: {m}"
            );
        }
    }
}
