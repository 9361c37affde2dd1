//! Signed answers over real sockets: keys made by BIND's and ldns's tools and by our own
//! keygen, every answer checked as a validator checks it (`smarthostd::dnssec::verify`), DO and
//! no DO, UDP truncation, a failover, two instances sharing one key, the serial across a
//! restart, a rollover through a reload (the CLI: `dnssec_cli`).
//!
//! `dnssec-keygen` (bind9-utils) and `ldns-keygen` (ldnsutils) must be installed: `.ci/run`
//! installs them.

use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData};
use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use smarthostd::dnssec::verify::{Proved, check};

use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::support::*;

/// A key tool and the arguments that make a key for the zone in the current folder.
const TOOLS: &[(&str, &[&str])] = &[
    (
        "dnssec-keygen",
        &[
            "-a",
            "ECDSAP256SHA256",
            "-f",
            "KSK",
            "-n",
            "ZONE",
            "smarthost.internal",
        ],
    ),
    (
        "dnssec-keygen",
        &["-a", "ED25519", "-n", "ZONE", "smarthost.internal"],
    ),
    (
        "ldns-keygen",
        &["-a", "ECDSAP256SHA256", "-k", "smarthost.internal"],
    ),
];

/// Makes a key in `dir/keys` with `tool` (or our own keygen for `None`).
pub(crate) fn make_key(dir: &Path, tool: Option<(&str, &[&str])>) {
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    match tool {
        Some((program, args)) => {
            let out = Command::new(program)
                .args(args)
                .current_dir(&keys)
                .output()
                .unwrap_or_else(|e| {
                    panic!("{program}: {e}: install bind9-utils and ldnsutils (.ci/run does)")
                });
            assert!(out.status.success(), "{program}: {out:?}");
        }
        None => {
            let origin = smarthostd::wire::fqdn("smarthost.internal").unwrap();
            let now = smarthostd::dnssec::unix_seconds(SystemTime::now());
            smarthostd::dnssec::keygen::generate(
                &keys,
                &origin,
                smarthostd::config::KeyAlgorithm::EcdsaP256Sha256,
                now,
            )
            .unwrap();
        }
    }
}

pub(crate) fn signed(rest: String) -> Setup {
    Setup::new(format!("{rest}\n[dnssec]\nkey_dir = \"keys\"\n"))
}

/// A query with DO (or not) and an EDNS payload.
pub(crate) fn dnssec_query(
    name: &str,
    rtype: RecordType,
    dnssec_ok: bool,
    payload: u16,
) -> Message {
    let mut m = query(name, rtype, None);
    let mut e = Edns::new();
    e.set_max_payload(payload);
    e.set_dnssec_ok(dnssec_ok);
    m.set_edns(e);
    m
}

async fn ask(server: &TestServer, name: &str, rtype: RecordType) -> Message {
    udp_message(server.dns, &dnssec_query(name, rtype, true, 1232)).await
}

pub(crate) async fn dnskeys(server: &TestServer) -> Vec<DNSKEY> {
    let m = ask(server, "smarthost.internal", RecordType::DNSKEY).await;
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::DNSKEY(k)) => Some(k.clone()),
            _ => None,
        })
        .collect()
}

pub(crate) fn zone() -> Name {
    Name::from_ascii("smarthost.internal.").unwrap()
}

pub(crate) fn now() -> u32 {
    smarthostd::dnssec::unix_seconds(SystemTime::now()) as u32
}

/// The questions every signed server is asked, with the proof each answer must carry.
const QUESTIONS: &[(&str, RecordType, Proved)] = &[
    ("oxford.smarthost.internal", RecordType::MX, Proved::Answer),
    ("oxford.smarthost.internal", RecordType::A, Proved::Answer),
    (
        "oxford.smarthost.internal",
        RecordType::AAAA,
        Proved::NoData,
    ),
    (
        "mail1.oxford.smarthost.internal",
        RecordType::A,
        Proved::Answer,
    ),
    ("smarthost.internal", RecordType::NS, Proved::Answer),
    ("smarthost.internal", RecordType::SOA, Proved::Answer),
    ("info.smarthost.internal", RecordType::TXT, Proved::Answer),
    ("nope.smarthost.internal", RecordType::A, Proved::NxDomain),
    (
        "x.mail1.oxford.smarthost.internal",
        RecordType::MX,
        Proved::NxDomain,
    ),
];

async fn check_server(server: &TestServer, keys: &[DNSKEY]) {
    for &(name, rtype, want) in QUESTIONS {
        let m = ask(server, name, rtype).await;
        let proved =
            check(&m, &zone(), keys, now()).unwrap_or_else(|e| panic!("{name} {rtype}: {e}\n{m}"));
        assert_eq!(proved, want, "{name} {rtype}\n{m}");
        let plain = udp_message(server.dns, &dnssec_query(name, rtype, false, 1232)).await;
        let sigs = plain
            .answers
            .iter()
            .chain(&plain.authorities)
            .chain(&plain.additionals)
            .filter(|r| matches!(r.record_type(), RecordType::RRSIG | RecordType::NSEC))
            .count();
        assert_eq!(sigs, 0, "no DNSSEC records without DO: {plain}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_from_bind_ldns_and_our_keygen_sign_answers_that_validate() {
    let oxford = FakeSmtp::start(Behavior::Healthy).await;
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    let setup = signed(two_sites(&oxford, &cambridge));
    for tool in TOOLS.iter().map(|&(p, a)| Some((p, a))).chain([None]) {
        let dir = tempfile::tempdir().unwrap();
        make_key(dir.path(), tool);
        let server = TestServer::start_in(&setup, dir).await;
        let keys = dnskeys(&server).await;
        assert_eq!(keys.len(), 1, "{tool:?}");
        check_server(&server, &keys).await;
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_is_signed_at_once_and_validates() {
    let mut oxford = FakeSmtp::start(Behavior::Healthy).await;
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    let dir = tempfile::tempdir().unwrap();
    make_key(dir.path(), None);
    let server = TestServer::start_in(&signed(two_sites(&oxford, &cambridge)), dir).await;
    let keys = dnskeys(&server).await;
    oxford.stop();
    server
        .wait_mx("oxford.smarthost.internal", |mx| {
            mx == [self::mx(20, "mail1.cambridge")]
        })
        .await;
    let m = ask(&server, "oxford.smarthost.internal", RecordType::MX).await;
    assert_eq!(mx_set(&m), [self::mx(20, "mail1.cambridge")]);
    assert_eq!(check(&m, &zone(), &keys, now()), Ok(Proved::Answer), "{m}");
    let m = ask(&server, "oxford.smarthost.internal", RecordType::A).await;
    assert_eq!(check(&m, &zone(), &keys, now()), Ok(Proved::Answer), "{m}");
    assert!(!m.to_string().contains(&oxford_ip(&oxford)), "{m}");
}

fn oxford_ip(host: &FakeSmtp) -> String {
    let entry = host.host_entry("x");
    entry.split('"').nth(3).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_drops_the_additional_section_with_its_signatures_before_it_truncates() {
    let hosts: Vec<FakeSmtp> = futures_hosts(6).await;
    let entries: Vec<String> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| h.host_entry(&format!("mail{i}")))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    make_key(dir.path(), None);
    let setup = signed(format!(
        "[sites.oxford]\nhosts = [{}]\n",
        entries.join(", ")
    ));
    let server = TestServer::start_in(&setup, dir).await;
    let keys = dnskeys(&server).await;
    let full = tcp_message(&server, "oxford.smarthost.internal", RecordType::MX).await;
    assert_eq!(full.answers.len(), 7, "6 MX and an RRSIG: {full}");
    assert_eq!(full.additionals.len(), 12, "6 A, each with an RRSIG");
    // At 512 bytes the additional section goes, the answer and its RRSIG stay, no TC.
    let small = udp_message(
        server.dns,
        &dnssec_query("oxford.smarthost.internal", RecordType::MX, true, 512),
    )
    .await;
    assert!(!small.metadata.truncation, "{small}");
    assert_eq!(small.answers.len(), 7);
    assert!(small.additionals.is_empty());
    assert_eq!(check(&small, &zone(), &keys, now()), Ok(Proved::Answer));
    // An NXDOMAIN with its proofs (the SOA, two NSEC records, three RRSIGs) does not fit 512
    // bytes: TC and no records, for the client to ask again over TCP; it fits 1232.
    let nx = udp_message(
        server.dns,
        &dnssec_query("nope.smarthost.internal", RecordType::A, true, 512),
    )
    .await;
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert!(nx.metadata.truncation && nx.authorities.is_empty(), "{nx}");
    let nx = ask(&server, "nope.smarthost.internal", RecordType::A).await;
    assert!(!nx.metadata.truncation);
    assert_eq!(check(&nx, &zone(), &keys, now()), Ok(Proved::NxDomain));
    let nx = tcp_message(&server, "nope.smarthost.internal", RecordType::A).await;
    assert_eq!(check(&nx, &zone(), &keys, now()), Ok(Proved::NxDomain));
}

async fn futures_hosts(n: usize) -> Vec<FakeSmtp> {
    let mut hosts = Vec::new();
    for _ in 0..n {
        hosts.push(FakeSmtp::start(Behavior::Healthy).await);
    }
    hosts
}

pub(crate) async fn tcp_message(server: &TestServer, name: &str, rtype: RecordType) -> Message {
    let q = dnssec_query(name, rtype, true, 1232);
    Message::from_vec(&tcp_raw(server.dns, &q.to_vec().unwrap()).await).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_with_one_key_folder_each_validate_for_a_resolver_that_mixes_them() {
    let oxford = FakeSmtp::start(Behavior::Healthy).await;
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    let setup = signed(two_sites(&oxford, &cambridge));
    let shared = tempfile::tempdir().unwrap();
    make_key(shared.path(), None);
    let mut servers = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(shared.path().join("keys"), dir.path().join("keys")).unwrap();
        servers.push(TestServer::start_in(&setup, dir).await);
    }
    // The DNSKEY RRset from the first, every answer from the second, and the other way round:
    // what a resolver that asks both sees.
    let keys = [dnskeys(&servers[0]).await, dnskeys(&servers[1]).await];
    assert_eq!(keys[0], keys[1]);
    check_server(&servers[1], &keys[0]).await;
    check_server(&servers[0], &keys[1]).await;
    let serials: Vec<u32> = {
        let mut s = Vec::new();
        for server in &servers {
            s.push(soa_serial(server).await);
        }
        s
    };
    assert!(serials.iter().all(|&s| s > 7), "{serials:?}");
}

async fn soa_serial(server: &TestServer) -> u32 {
    let m = ask(server, "smarthost.internal", RecordType::SOA).await;
    m.answers
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        })
        .expect("an SOA")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serial_never_goes_back_across_a_restart_and_is_reserved_ahead() {
    let oxford = FakeSmtp::start(Behavior::Healthy).await;
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    let dir = tempfile::tempdir().unwrap();
    make_key(dir.path(), None);
    let setup = signed(two_sites(&oxford, &cambridge));
    let server = TestServer::start_in(&setup, dir).await;
    let before = soa_serial(&server).await;
    let file = server.dir.path().join("soa-serial");
    let reserved: u32 = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        reserved >= before && reserved < before + 1000,
        "{before} {reserved}"
    );
    let dir = server.stop().await;
    // The clock would start numbering at about the same value: the reservation wins.
    let server = TestServer::start_in(&setup, dir).await;
    let after = soa_serial(&server).await;
    assert!(
        after > reserved,
        "{before} then {after}, reserved {reserved}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_is_published_by_a_reload_and_signs_only_from_its_activate_time() {
    let oxford = FakeSmtp::start(Behavior::Healthy).await;
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    let dir = tempfile::tempdir().unwrap();
    make_key(dir.path(), None);
    let setup = signed(two_sites(&oxford, &cambridge));
    let server = TestServer::start_in(&setup, dir).await;
    assert_eq!(dnskeys(&server).await.len(), 1);
    // The successor, as dnssec-keygen makes it for a rollover: published now, active in a day.
    let out = Command::new("dnssec-keygen")
        .args([
            "-a",
            "ECDSAP256SHA256",
            "-f",
            "KSK",
            "-P",
            "now",
            "-A",
            "+1d",
            "-n",
            "ZONE",
            "smarthost.internal",
        ])
        .current_dir(server.dir.path().join("keys"))
        .output()
        .expect("dnssec-keygen (bind9-utils)");
    assert!(out.status.success(), "{out:?}");
    let said = server.control.reload().await.unwrap();
    assert!(said.contains("reloaded"), "{said}");
    let keys = eventually("the new key published", || async {
        let keys = dnskeys(&server).await;
        if keys.len() == 2 {
            Ok(keys)
        } else {
            Err(format!("{} keys", keys.len()))
        }
    })
    .await;
    let m = ask(&server, "oxford.smarthost.internal", RecordType::MX).await;
    let sigs = m
        .answers
        .iter()
        .filter(|r| r.record_type() == RecordType::RRSIG)
        .count();
    assert_eq!(sigs, 1, "only the active key signs: {m}");
    check_server(&server, &keys).await;
}
