//! Zone transfers to secondaries over real sockets: AXFR with TSIG (every message's MAC
//! checked with hickory-proto's verifier, as a secondary checks it), IXFR, refusals (no key, a
//! wrong key, a wrong secret, an address outside `allow`, UDP), a TSIG-signed SOA query, and a
//! signed zone's RRSIG, NSEC and DNSKEY records in the transfer.

use std::net::SocketAddr;
use std::time::SystemTime;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
use hickory_proto::rr::{Name, RData, Record, RecordType, TSigner};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::support::*;

/// 32 bytes, as `tsig-keygen -a hmac-sha256` makes.
pub(crate) const SECRET: &str = "K2tf3TRjvQkVCmJF3/Z9vA4Ozw5wB+sgBm7CzdyM8Ms=";
pub(crate) const KEY: &str = "xfr-key";

/// `[transfer]` with `allow` and the test key.
pub(crate) fn transfer_table(allow: &str, extra: &str) -> String {
    format!(
        "[transfer]\nallow = [\"{allow}\"]\n{extra}\n[[transfer.tsig]]\nname = \"{KEY}\"\nsecret = \"{SECRET}\"\n"
    )
}

/// The test key, or the same name with another secret.
pub(crate) fn signer(name: &str, secret: &[u8]) -> TSigner {
    TSigner::new(
        secret.to_vec(),
        TsigAlgorithm::HmacSha256,
        Name::from_ascii(name).unwrap(),
        300,
    )
    .unwrap()
}

pub(crate) fn good_signer() -> TSigner {
    signer(
        KEY,
        &data_encoding::BASE64.decode(SECRET.as_bytes()).unwrap(),
    )
}

fn now() -> u64 {
    smarthostd::dnssec::unix_seconds(SystemTime::now())
}

/// `hosts` relays at one site, each at its own loopback address where nothing listens.
async fn many_hosts(hosts: usize) -> String {
    let closed = FakeSmtp::closed().await;
    let entries: Vec<String> = (0..hosts)
        .map(|i| {
            format!(
                "{{ name = \"relay{i}\", addresses = [\"127.9.{}.{}\"], port = {} }}",
                i / 250,
                i % 250 + 1,
                closed.port()
            )
        })
        .collect();
    format!("[sites.big]\nhosts = [{}]\n", entries.join(", "))
}

/// Sends `request` over TCP and reads every message of the answer up to the closing SOA (or
/// the first that is not a transfer's), raw.
pub(crate) async fn transfer_raw(server: SocketAddr, request: &[u8]) -> Vec<Vec<u8>> {
    let mut stream = TcpStream::connect(server).await.unwrap();
    let mut framed = (request.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(request);
    stream.write_all(&framed).await.unwrap();
    let mut out = Vec::new();
    let mut soas = 0;
    while let Some(bytes) = read_framed(&mut stream).await {
        let m = Message::from_vec(&bytes).unwrap();
        let done = m.metadata.response_code != ResponseCode::NoError || m.answers.is_empty();
        soas += m
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count();
        out.push(bytes);
        if done || soas >= 2 || (out.len() == 1 && soas == 1 && m.answers.len() == 1) {
            break;
        }
    }
    out
}

/// An AXFR (or IXFR) request for the zone, signed with `key` when given; the verifier of the
/// answers' TSIGs comes with it.
pub(crate) fn request(
    rtype: RecordType,
    key: Option<&TSigner>,
) -> (Vec<u8>, Option<hickory_proto::rr::TSigVerifier>) {
    let mut m = query("smarthost.internal", rtype, None);
    m.metadata.recursion_desired = false;
    sign(m, key)
}

fn sign(
    mut m: Message,
    key: Option<&TSigner>,
) -> (Vec<u8>, Option<hickory_proto::rr::TSigVerifier>) {
    let Some(key) = key else {
        return (m.to_vec().unwrap(), None);
    };
    let (tsig, verifier) = key.sign_message(&m, now()).unwrap();
    m.set_signature(tsig);
    (m.to_vec().unwrap(), verifier)
}

/// The records of a transfer's messages, every message's TSIG checked by `verifier`.
fn verified_records(
    messages: &[Vec<u8>],
    verifier: &mut hickory_proto::rr::TSigVerifier,
) -> Vec<Record> {
    let mut records = Vec::new();
    for (i, bytes) in messages.iter().enumerate() {
        let m = verifier
            .verify(bytes)
            .unwrap_or_else(|e| panic!("message {i} of {}: {e}", messages.len()));
        records.extend(m.into_message().answers);
    }
    records
}

async fn server_with(rest: String) -> TestServer {
    let mut setup = Setup::new(rest);
    setup.probe = "[probe]\ninterval = \"30s\"\ntimeout = \"1s\"\n".into();
    TestServer::start(&setup).await
}

#[tokio::test]
async fn an_axfr_with_a_valid_tsig_is_signed_on_every_message() {
    let sites = many_hosts(600).await;
    let server = server_with(format!("{sites}{}", transfer_table("127.0.0.0/8", ""))).await;
    let key = good_signer();
    let (bytes, verifier) = request(RecordType::AXFR, Some(&key));
    let messages = transfer_raw(server.dns, &bytes).await;
    assert!(
        messages.len() >= 2,
        "600 relays fill more than one message: {}",
        messages.len()
    );
    let records = verified_records(&messages, &mut verifier.unwrap());
    let first = records.first().unwrap();
    let last = records.last().unwrap();
    assert_eq!(first.record_type(), RecordType::SOA);
    assert_eq!(last, first, "the transfer ends with the same SOA");
    let soa = udp(server.dns, "smarthost.internal", RecordType::SOA).await;
    assert_eq!(
        &soa.answers[0], first,
        "the SOA served is the one transferred"
    );
    let a: Vec<&Record> = records
        .iter()
        .filter(|r| r.record_type() == RecordType::A)
        .collect();
    assert!(
        a.iter()
            .any(|r| r.name.to_string() == "relay599.big.smarthost.internal."),
        "{:?}",
        a.iter()
            .map(|r| r.name.to_string())
            .take(3)
            .collect::<Vec<_>>()
    );
    assert!(a.len() >= 600, "every relay's address: {}", a.len());
    assert!(records.iter().any(|r| r.record_type() == RecordType::NS));
    assert!(records.iter().any(|r| r.record_type() == RecordType::TXT));
    // A secondary at the current serial asking IXFR gets the SOA alone; one behind, the zone.
    let serial = match &first.data {
        RData::SOA(s) => s.serial,
        _ => unreachable!(),
    };
    for (theirs, whole) in [(serial, false), (serial.wrapping_sub(1), true)] {
        let mut m = query("smarthost.internal", RecordType::IXFR, None);
        let mut soa = first.clone();
        if let RData::SOA(s) = &mut soa.data {
            s.serial = theirs;
        }
        m.add_authority(soa);
        let (bytes, verifier) = sign(m, Some(&key));
        let messages = transfer_raw(server.dns, &bytes).await;
        let records = verified_records(&messages, &mut verifier.unwrap());
        assert_eq!(
            records.len() > 1,
            whole,
            "IXFR from serial {theirs} (ours {serial})"
        );
    }
}

/// The one message of a refused transfer, parsed, with its TSIG error when it has one.
async fn refused(server: SocketAddr, bytes: &[u8]) -> (ResponseCode, Option<TsigError>, Message) {
    let messages = transfer_raw(server, bytes).await;
    assert_eq!(messages.len(), 1);
    let m = Message::from_vec(&messages[0]).unwrap();
    assert!(m.answers.is_empty(), "no records: {m:?}");
    let error = m.signature().and_then(|s| s.data.error);
    (m.metadata.response_code, error, m)
}

#[tokio::test]
async fn transfers_without_a_valid_key_or_from_outside_allow_are_refused() {
    let relay = FakeSmtp::start(Behavior::Healthy).await;
    let sites = format!("[sites.a]\nhosts = [{}]\n", relay.host_entry("m"));
    let server = server_with(format!("{sites}{}", transfer_table("127.0.0.0/8", ""))).await;
    // No key: REFUSED.
    let (bytes, _) = request(RecordType::AXFR, None);
    let (rcode, error, _) = refused(server.dns, &bytes).await;
    assert_eq!((rcode, error), (ResponseCode::Refused, None));
    // A key we do not know: NOTAUTH, BADKEY, unsigned.
    let stranger = signer("other-key", &[7; 32]);
    let (bytes, _) = request(RecordType::AXFR, Some(&stranger));
    let (rcode, error, m) = refused(server.dns, &bytes).await;
    assert_eq!(
        (rcode, error),
        (ResponseCode::NotAuth, Some(TsigError::BadKey))
    );
    assert!(
        m.signature().unwrap().data.mac.is_empty(),
        "BADKEY is unsigned"
    );
    // Our key's name with another secret: NOTAUTH, BADSIG.
    let forged = signer(KEY, &[7; 32]);
    let (bytes, _) = request(RecordType::AXFR, Some(&forged));
    let (rcode, error, _) = refused(server.dns, &bytes).await;
    assert_eq!(
        (rcode, error),
        (ResponseCode::NotAuth, Some(TsigError::BadSig))
    );
    // A replayed request signed an hour ago: BADTIME, signed.
    let mut old = query("smarthost.internal", RecordType::AXFR, None);
    let (tsig, _) = good_signer().sign_message(&old, now() - 3600).unwrap();
    old.set_signature(tsig);
    let (rcode, error, _) = refused(server.dns, &old.to_vec().unwrap()).await;
    assert_eq!(
        (rcode, error),
        (ResponseCode::NotAuth, Some(TsigError::BadTime))
    );
    // Over UDP, even with the key: REFUSED, and signed.
    let (bytes, verifier) = request(RecordType::AXFR, Some(&good_signer()));
    let answer = udp_raw(server.dns, &bytes)
        .await
        .expect("an answer over UDP");
    let m = verifier
        .unwrap()
        .verify(&answer)
        .expect("signed")
        .into_message();
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    server.stop().await;

    // A valid key from outside `allow`: REFUSED, signed.
    let server = server_with(format!("{sites}{}", transfer_table("192.0.2.0/24", ""))).await;
    let (bytes, verifier) = request(RecordType::AXFR, Some(&good_signer()));
    let messages = transfer_raw(server.dns, &bytes).await;
    let m = verifier
        .unwrap()
        .verify(&messages[0])
        .expect("signed")
        .into_message();
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(m.answers.is_empty());
    server.stop().await;

    // Without [transfer]: every transfer refused.
    let server = server_with(sites.clone()).await;
    let (bytes, _) = request(RecordType::AXFR, Some(&good_signer()));
    let (rcode, error, _) = refused(server.dns, &bytes).await;
    assert_eq!(
        (rcode, error),
        (ResponseCode::NotAuth, Some(TsigError::BadKey))
    );
    let (bytes, _) = request(RecordType::AXFR, None);
    let (rcode, _, _) = refused(server.dns, &bytes).await;
    assert_eq!(rcode, ResponseCode::Refused);
}

#[tokio::test]
async fn require_tsig_false_lets_allow_alone_decide() {
    let relay = FakeSmtp::start(Behavior::Healthy).await;
    let sites = format!("[sites.a]\nhosts = [{}]\n", relay.host_entry("m"));
    let table = transfer_table("127.0.0.1/32", "require_tsig = false");
    let server = server_with(format!("{sites}{table}")).await;
    let (bytes, _) = request(RecordType::AXFR, None);
    let messages = transfer_raw(server.dns, &bytes).await;
    let records: Vec<Record> = messages
        .iter()
        .flat_map(|b| Message::from_vec(b).unwrap().answers)
        .collect();
    assert!(records.len() > 3, "{records:?}");
    assert!(
        Message::from_vec(&messages[0])
            .unwrap()
            .signature()
            .is_none()
    );
}

#[tokio::test]
async fn a_tsig_signed_soa_query_is_answered_signed_over_udp_and_tcp() {
    let relay = FakeSmtp::start(Behavior::Healthy).await;
    let sites = format!("[sites.a]\nhosts = [{}]\n", relay.host_entry("m"));
    let server = server_with(format!("{sites}{}", transfer_table("127.0.0.0/8", ""))).await;
    for tcp in [false, true] {
        let m = query("smarthost.internal", RecordType::SOA, Some(1232));
        let (bytes, verifier) = sign(m, Some(&good_signer()));
        let answer = if tcp {
            tcp_raw(server.dns, &bytes).await
        } else {
            udp_raw(server.dns, &bytes).await.unwrap()
        };
        let m = verifier
            .unwrap()
            .verify(&answer)
            .expect("signed")
            .into_message();
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NoError,
            "tcp: {tcp}"
        );
        assert_eq!(m.answers[0].record_type(), RecordType::SOA);
        assert!(m.metadata.authoritative);
    }
    // A wrong secret on a plain query: NOTAUTH with BADSIG, not an answer.
    let m = query("a.smarthost.internal", RecordType::MX, None);
    let (bytes, _) = sign(m, Some(&signer(KEY, &[1; 32])));
    let m = Message::from_vec(&udp_raw(server.dns, &bytes).await.unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NotAuth);
    assert_eq!(m.signature().unwrap().data.error, Some(TsigError::BadSig));
    assert!(m.answers.is_empty());
}

#[tokio::test]
async fn a_signed_zone_transfers_with_its_signatures_nsec_and_dnskey() {
    let relay = FakeSmtp::start(Behavior::Healthy).await;
    let sites = format!("[sites.a]\nhosts = [{}]\n", relay.host_entry("m"));
    let dir = tempfile::tempdir().unwrap();
    crate::dnssec::make_key(dir.path(), None);
    let mut setup = crate::dnssec::signed(format!("{sites}{}", transfer_table("127.0.0.0/8", "")));
    setup.probe = "[probe]\ninterval = \"30s\"\ntimeout = \"1s\"\n".into();
    let server = TestServer::start_in(&setup, dir).await;
    let (bytes, verifier) = request(RecordType::AXFR, Some(&good_signer()));
    let messages = transfer_raw(server.dns, &bytes).await;
    let records = verified_records(&messages, &mut verifier.unwrap());
    for rtype in [
        RecordType::RRSIG,
        RecordType::NSEC,
        RecordType::DNSKEY,
        RecordType::MX,
    ] {
        assert!(
            records.iter().any(|r| r.record_type() == rtype),
            "{rtype} missing"
        );
    }
    let soas = records
        .iter()
        .filter(|r| r.record_type() == RecordType::SOA)
        .count();
    assert_eq!(soas, 2, "the SOA opens and closes the transfer, once each");
}

#[tokio::test]
async fn refusals_are_logged_without_the_secret_bounded_under_a_flood_and_junk_is_survived() {
    let relay = FakeSmtp::start(Behavior::Healthy).await;
    let sites = format!("[sites.a]\nhosts = [{}]\n", relay.host_entry("m"));
    let mut setup = Setup::new(format!("{sites}{}", transfer_table("127.0.0.1/32", "")));
    setup.probe = "[probe]\ninterval = \"30s\"\ntimeout = \"1s\"\n".into();
    let server = ServerProcess::spawn(&setup, None);
    // A key name with a control character and a line break, as a forger may send.
    let name = Name::from_labels(vec![&b"evil\x08key\x0b"[..], &b"example"[..]]).unwrap();
    let hostile = TSigner::new(vec![7; 32], TsigAlgorithm::HmacSha256, name, 300).unwrap();
    let (bytes, _) = request(RecordType::AXFR, Some(&hostile));
    let (rcode, _, _) = refused(server.dns, &bytes).await;
    assert_eq!(rcode, ResponseCode::NotAuth);
    // A flood of unsigned requests: each refused, the log bounded.
    let (unsigned, _) = request(RecordType::AXFR, None);
    for _ in 0..200 {
        let (rcode, _, _) = refused(server.dns, &unsigned).await;
        assert_eq!(rcode, ResponseCode::Refused);
    }
    // Junk that looks like a transfer: a TSIG cut short, a TSIG with a MAC length past its end.
    let (signed, _) = request(RecordType::AXFR, Some(&good_signer()));
    let mut lying = signed.clone();
    let at = lying.len() - 8;
    lying[at] = 0xFF;
    for junk in [&signed[..signed.len() - 5], &lying[..], &signed[..20]] {
        let mut stream = TcpStream::connect(server.dns).await.unwrap();
        let mut framed = (junk.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(junk);
        stream.write_all(&framed).await.unwrap();
        if let Some(reply) = read_framed(&mut stream).await {
            let m = Message::from_vec(&reply).unwrap();
            assert!(m.answers.is_empty(), "junk got records: {m:?}");
        }
    }
    let soa = udp(server.dns, "smarthost.internal", RecordType::SOA).await;
    assert_eq!(
        soa.metadata.response_code,
        ResponseCode::NoError,
        "still serving"
    );
    let log = server.log_text();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("zone transfer refused"))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("no TSIG") && l.contains("127.0.0.1")),
        "{log}"
    );
    let bad_key = lines
        .iter()
        .find(|l| l.contains("unknown key"))
        .expect("BADKEY logged");
    assert!(
        bad_key.contains("BADKEY") && !bad_key.contains('\u{b}'),
        "{bad_key}"
    );
    assert!(
        lines.len() < 150,
        "{} refusal lines for 201 refusals: the log is bounded",
        lines.len()
    );
    assert!(
        !log.contains(SECRET) && !log.contains("K2tf3T"),
        "the secret is in the log"
    );
}

#[tokio::test]
async fn a_reload_that_changes_transfer_says_it_waits_for_a_restart() {
    let relay = FakeSmtp::start(Behavior::Healthy).await;
    let sites = format!("[sites.a]\nhosts = [{}]\n", relay.host_entry("m"));
    let mut setup = Setup::new(format!("{sites}{}", transfer_table("127.0.0.1/32", "")));
    setup.probe = "[probe]\ninterval = \"30s\"\ntimeout = \"1s\"\n".into();
    let server = ServerProcess::spawn(&setup, None);
    setup.rest = format!("{sites}{}", transfer_table("10.0.0.0/8", ""));
    let config = server._dir.path().join("smarthost.toml");
    std::fs::write(&config, setup.render()).unwrap();
    server.signal(nix::sys::signal::Signal::SIGHUP);
    server.log_with(&["apply at the next restart"]).await;
    // Until then the old `allow` holds: a transfer from 127.0.0.1 still succeeds.
    let (bytes, verifier) = request(RecordType::AXFR, Some(&good_signer()));
    let records = verified_records(
        &transfer_raw(server.dns, &bytes).await,
        &mut verifier.unwrap(),
    );
    assert!(records.len() > 3);
    assert!(!server.log_text().contains(SECRET));
}

/// The SOA serial smarthostd serves now.
async fn serial_now(server: SocketAddr) -> u32 {
    match &udp(server, "smarthost.internal", RecordType::SOA)
        .await
        .answers[0]
        .data
    {
        RData::SOA(soa) => soa.serial,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_ixfr_from_a_version_transferred_before_gets_the_difference() {
    let relays = [
        FakeSmtp::start(Behavior::Healthy).await,
        FakeSmtp::start(Behavior::Healthy).await,
    ];
    let sites = format!(
        "[sites.a]\nhosts = [{}, {}]\n",
        relays[0].host_entry("m"),
        relays[1].host_entry("n")
    );
    let server = TestServer::start(&Setup::new(format!(
        "{sites}{}",
        transfer_table("127.0.0.0/8", "")
    )))
    .await;
    server
        .wait_mx("a.smarthost.internal", |m| m.len() == 2)
        .await;
    let key = good_signer();
    let axfr = |server: SocketAddr| {
        let key = key.clone();
        async move {
            let (bytes, verifier) = request(RecordType::AXFR, Some(&key));
            verified_records(&transfer_raw(server, &bytes).await, &mut verifier.unwrap())
        }
    };
    let before = axfr(server.dns).await;
    let old_soa = before[0].clone();
    let old_serial = serial_now(server.dns).await;
    let drain = Some(smarthostd::state::drains::Drain { until: None });
    server.control.drain("a", "m", drain).await.unwrap();
    let new_serial = serial_now(server.dns).await;
    assert_ne!(new_serial, old_serial);
    let mut m = query("smarthost.internal", RecordType::IXFR, None);
    m.add_authority(old_soa.clone());
    let (bytes, verifier) = sign(m, Some(&key));
    let diff = verified_records(
        &transfer_raw(server.dns, &bytes).await,
        &mut verifier.unwrap(),
    );
    let after = axfr(server.dns).await;
    assert_eq!(diff[0], after[0], "opens with the new SOA");
    assert_eq!(
        diff[1], old_soa,
        "then the old SOA: a difference, not the whole zone"
    );
    assert_eq!(diff.last(), Some(&after[0]));
    // What went, up to the new SOA; what came, up to the last.
    let split = 2 + diff[2..]
        .iter()
        .position(|r| r.record_type() == RecordType::SOA)
        .unwrap();
    let (gone, came) = (&diff[2..split], &diff[split + 1..diff.len() - 1]);
    assert!(!gone.is_empty() && diff.len() < after.len(), "{diff:?}");
    let body = |records: &[Record]| -> Vec<Record> { records[1..records.len() - 1].to_vec() };
    let mut applied: Vec<Record> = body(&before)
        .into_iter()
        .filter(|r| !gone.contains(r))
        .collect();
    applied.extend(came.iter().cloned());
    let key_of = |r: &Record| format!("{r}");
    let mut applied: Vec<String> = applied.iter().map(key_of).collect();
    let mut want: Vec<String> = body(&after).iter().map(key_of).collect();
    applied.sort();
    want.sort();
    assert_eq!(
        applied, want,
        "the old version with the difference applied is the new one"
    );
}
