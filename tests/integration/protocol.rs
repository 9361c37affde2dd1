//! DNS protocol behaviour: negative answers, refusals, EDNS, truncation, case, odd packets.

use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::support::*;

async fn serve_two_sites() -> (TestServer, Vec<FakeSmtp>) {
    let a = FakeSmtp::start(Behavior::Healthy).await;
    let b = FakeSmtp::start(Behavior::Healthy).await;
    let rest = two_sites(&a, &b);
    (TestServer::start(&Setup::new(rest)).await, vec![a, b])
}

fn soa_in_authority(m: &Message) -> bool {
    m.authorities.len() == 1 && matches!(m.authorities[0].data, RData::SOA(_))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nxdomain_nodata_and_refused_carry_the_right_sections() {
    let (server, _hosts) = serve_two_sites().await;
    for (name, rtype) in [
        ("nope.smarthost.internal", RecordType::A),
        ("x.mail1.oxford.smarthost.internal", RecordType::MX),
    ] {
        let m = udp(server.dns, name, rtype).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{name}");
        assert!(m.metadata.authoritative);
        assert!(m.answers.is_empty());
        assert!(soa_in_authority(&m), "{name}: SOA in authority");
        assert_eq!(
            m.authorities[0].ttl, 60,
            "negative TTL is min(SOA TTL, minimum)"
        );
    }
    for (name, rtype) in [
        ("oxford.smarthost.internal", RecordType::TXT),
        ("mail1.oxford.smarthost.internal", RecordType::AAAA),
        ("mail1.oxford.smarthost.internal", RecordType::MX),
        ("smarthost.internal", RecordType::TXT),
    ] {
        let m = udp(server.dns, name, rtype).await;
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NoError,
            "{name} {rtype}"
        );
        assert!(m.answers.is_empty(), "{name} {rtype}: no data");
        assert!(soa_in_authority(&m), "{name} {rtype}: SOA in authority");
    }
    for name in ["example.com", "internal", "smarthost.internal.example"] {
        let q = query(name, RecordType::A, Some(1232));
        let m = udp_message(server.dns, &q).await;
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{name}");
        assert!(!m.metadata.authoritative && !m.metadata.recursion_available);
        assert!(m.metadata.recursion_desired, "RD copied");
        assert!(m.answers.is_empty() && m.authorities.is_empty());
    }
    // Zone transfers are refused too.
    let m = tcp(server.dns, "smarthost.internal", RecordType::AXFR).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_records_soa_ns_and_any() {
    let (server, _hosts) = serve_two_sites().await;
    let m = udp(server.dns, "smarthost.internal", RecordType::NS).await;
    assert_eq!(m.answers.len(), 2);
    let mut additional = additional_addresses(&m);
    additional.sort();
    assert_eq!(
        additional,
        vec![
            (
                "ns1.smarthost.internal.".to_string(),
                "127.0.0.53".to_string()
            ),
            ("ns2.smarthost.internal.".to_string(), "::1".to_string())
        ],
        "every in-zone name server's address"
    );
    let txt = udp(server.dns, "info.smarthost.internal", RecordType::TXT).await;
    assert_eq!(txt.answers.len(), 1);
    let soa = udp(server.dns, "smarthost.internal", RecordType::SOA).await;
    let RData::SOA(s) = &soa.answers[0].data else {
        panic!()
    };
    assert!(
        s.serial > 7,
        "the served serial starts past the file's and grows"
    );
    let any = udp(server.dns, "oxford.smarthost.internal", RecordType::ANY).await;
    assert!(!any.answers.is_empty());
    assert!(
        any.answers
            .iter()
            .all(|r| r.record_type() == RecordType::MX),
        "ANY answered with one RRset (RFC 8482)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn letter_case_is_preserved_and_edns_echoed() {
    let (server, _hosts) = serve_two_sites().await;
    let q = query("OxFoRd.SmartHost.INTERNAL", RecordType::MX, Some(4096));
    let m = udp_message(server.dns, &q).await;
    assert_eq!(m.queries[0].name().to_ascii(), "OxFoRd.SmartHost.INTERNAL.");
    assert_eq!(mx_set(&m)[0], mx(10, "mail1.oxford"));
    let edns = m.edns.as_ref().expect("EDNS echoed");
    assert_eq!(edns.version(), 0);
    assert_eq!(
        edns.max_payload(),
        1232,
        "we advertise our own payload size"
    );
    // Without EDNS there is no OPT in the answer.
    let plain = udp_message(
        server.dns,
        &query("oxford.smarthost.internal", RecordType::MX, None),
    )
    .await;
    assert!(plain.edns.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edns_version_1_gets_badvers_and_unknown_opcodes_notimp() {
    let (server, _hosts) = serve_two_sites().await;
    let mut q = query("oxford.smarthost.internal", RecordType::MX, None);
    let mut e = Edns::new();
    e.set_version(1);
    q.set_edns(e);
    let bytes = udp_raw(server.dns, &q.to_vec().unwrap()).await.unwrap();
    let m = Message::from_vec(&bytes).unwrap();
    assert_eq!(u16::from(m.metadata.response_code), 16, "BADVERS");
    assert_eq!(m.edns.as_ref().unwrap().version(), 0);
    assert!(m.answers.is_empty());

    let mut notify = query("oxford.smarthost.internal", RecordType::SOA, None)
        .to_vec()
        .unwrap();
    notify[2] = (notify[2] & 0x87) | (4 << 3); // opcode NOTIFY
    let m = Message::from_vec(&udp_raw(server.dns, &notify).await.unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NotImp);
    let mut status = notify.clone();
    status[2] = (status[2] & 0x87) | (2 << 3);
    let m = Message::from_vec(&udp_raw(server.dns, &status).await.unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NotImp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_too_big_for_udp_is_truncated_and_whole_over_tcp() {
    let mut hosts = Vec::new();
    let mut entries = Vec::new();
    for i in 0..40 {
        let h = FakeSmtp::start(Behavior::Healthy).await;
        entries.push(h.host_entry(&format!("relay{i:02}")));
        hosts.push(h);
    }
    let other = FakeSmtp::start(Behavior::Healthy).await;
    let rest = format!(
        "[sites.big]\nhosts = [{}]\n[sites.small]\nhosts = [{}]\n",
        entries.join(", "),
        other.host_entry("mail1")
    );
    let server = TestServer::start(&Setup::new(rest)).await;
    // No EDNS: 512 bytes.
    let q = query("big.smarthost.internal", RecordType::MX, None);
    let bytes = udp_raw(server.dns, &q.to_vec().unwrap()).await.unwrap();
    assert!(bytes.len() <= 512, "{} bytes over UDP", bytes.len());
    let m = Message::from_vec(&bytes).unwrap();
    assert!(m.metadata.truncation, "TC set");
    assert!(m.answers.is_empty(), "nothing partial");
    // EDNS 1232: the MX records fit, the addresses do not; TC stays clear (RFC 2181 section 9).
    let m = udp_message(
        server.dns,
        &query("big.smarthost.internal", RecordType::MX, Some(1232)),
    )
    .await;
    assert!(!m.metadata.truncation);
    assert_eq!(mx_set(&m).len(), 41);
    assert!(
        m.additionals
            .iter()
            .all(|r| r.record_type() == RecordType::OPT)
    );
    // TCP: everything.
    let m = tcp(server.dns, "big.smarthost.internal", RecordType::MX).await;
    assert!(!m.metadata.truncation);
    assert_eq!(mx_set(&m).len(), 41);
    assert_eq!(additional_addresses(&m).len(), 41);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_packets_get_formerr_or_silence_and_the_next_query_is_answered() {
    let (server, _hosts) = serve_two_sites().await;
    let good = query("oxford.smarthost.internal", RecordType::MX, None)
        .to_vec()
        .unwrap();
    let header = &good[..12];
    let mut cases: Vec<(&str, Vec<u8>, Option<ResponseCode>)> = vec![
        ("truncated header", good[..7].to_vec(), None),
        (
            "truncated question",
            good[..20].to_vec(),
            Some(ResponseCode::FormErr),
        ),
        (
            "compression loop",
            [header, &[0xC0, 0x0C, 0, 1, 0, 1]].concat(),
            Some(ResponseCode::FormErr),
        ),
        (
            "label over 63",
            [header, &[64], &[b'a'; 64], &[0, 0, 1, 0, 1]].concat(),
            Some(ResponseCode::FormErr),
        ),
    ];
    let mut long_name = Vec::new();
    for _ in 0..5 {
        long_name.push(60u8);
        long_name.extend_from_slice(&[b'a'; 60]);
    }
    long_name.extend_from_slice(&[0, 0, 1, 0, 1]);
    cases.push((
        "name over 255",
        [header, &long_name].concat(),
        Some(ResponseCode::FormErr),
    ));
    let mut no_question = good[..12].to_vec();
    no_question[5] = 0;
    cases.push(("qdcount 0", no_question, Some(ResponseCode::FormErr)));
    let mut two = [&good[..], &good[12..]].concat();
    two[5] = 2;
    cases.push(("qdcount 2", two, Some(ResponseCode::FormErr)));
    let mut response = good.clone();
    response[2] |= 0x80;
    cases.push(("a response packet", response, None));
    let mut garbage_count = good.clone();
    garbage_count[7] = 9; // claims nine answers that are not there
    cases.push((
        "counts past the end",
        garbage_count,
        Some(ResponseCode::FormErr),
    ));

    for (what, bytes, want) in cases {
        let got = udp_raw(server.dns, &bytes).await;
        match want {
            None => assert!(got.is_none(), "{what}: silence expected"),
            Some(code) => {
                let m = Message::from_vec(&got.unwrap_or_else(|| panic!("{what}: no response")))
                    .unwrap();
                assert_eq!(m.metadata.response_code, code, "{what}");
                assert_eq!(
                    m.metadata.id,
                    u16::from_be_bytes([bytes[0], bytes[1]]),
                    "{what}: id echoed"
                );
            }
        }
        let next = udp(server.dns, "oxford.smarthost.internal", RecordType::MX).await;
        assert_eq!(
            next.metadata.response_code,
            ResponseCode::NoError,
            "answers after {what}"
        );
    }
}
