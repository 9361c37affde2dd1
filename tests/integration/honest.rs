//! Answers that tell the truth in corners: the first answers after a start, a site whose
//! hosts never resolved, the DO bit, who may ask.

use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::net::UdpSocket;

use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_answers_wait_for_every_first_probe_however_long_its_dialogue() {
    // mail2 greets after 0.9 s and then never answers EHLO: with a 1 s timeout per step its
    // probe fails after about 1.9 s, past one timeout and a margin.
    let good = FakeSmtp::start(Behavior::Healthy).await;
    let hanging = FakeSmtp::start(Behavior::GreetThenSilent(Duration::from_millis(900))).await;
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    let mut setup = Setup::new(format!(
        "[sites.oxford]\nhosts = [{}, {}]\n[sites.cambridge]\nhosts = [{}]\n",
        good.host_entry("mail1"),
        hanging.host_entry("mail2"),
        cambridge.host_entry("mail1")
    ));
    setup.probe = "[probe]\ninterval = \"5s\"\ntimeout = \"1s\"\nrise = 2\nfall = 2\n".into();
    let started = Instant::now();
    let server = TestServer::start(&setup).await;
    let waited = started.elapsed();
    // The very first answer already leaves the relay out.
    assert_eq!(
        server.mx("oxford.smarthost.internal").await,
        vec![mx(10, "mail1.oxford"), mx(20, "mail1.cambridge")],
        "after {waited:?}"
    );
    assert!(
        waited >= Duration::from_millis(1800),
        "ready after {waited:?}"
    );
    let status = server.control.status().await.unwrap();
    let reason = status.sites[0].hosts[1].addresses[0]
        .reason
        .clone()
        .unwrap();
    assert!(reason.contains("EHLO"), "{reason}");
}

/// A resolver address where nothing answers.
async fn dead_resolver() -> std::net::SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.local_addr().unwrap()
}

fn fqdn_sites(port: u16, resolver: std::net::SocketAddr) -> Setup {
    let mut setup = Setup::new(format!(
        "[sites.oxford]\nhosts = [{{ name = \"isp1\", fqdn = \"relay1.isp.test\", port = {port} }}]\n\
         [sites.cambridge]\nhosts = [{{ name = \"isp2\", fqdn = \"relay2.isp.test\", port = {port} }}]\n"
    ));
    setup
        .probe
        .push_str(&format!("resolver = [\"{resolver}\"]\n"));
    setup
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_whose_hosts_never_resolved_answers_servfail_not_an_empty_answer() {
    let resolver = dead_resolver().await;
    let server = TestServer::start(&fqdn_sites(25, resolver)).await;
    for rtype in [RecordType::MX, RecordType::A, RecordType::AAAA] {
        let m = udp(server.dns, "oxford.smarthost.internal", rtype).await;
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::ServFail,
            "{rtype}: resolvers retry, senders defer"
        );
        assert!(m.answers.is_empty());
    }
    let status = server.control.status().await.unwrap();
    assert_eq!(status.sites[0].mode, smarthostd::answer::Mode::Failsafe);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_known_addresses_stand_in_when_names_do_not_resolve_at_start() {
    let relay = FakeSmtp::start(Behavior::Healthy).await;
    let resolver = dead_resolver().await;
    let setup = fqdn_sites(relay.addr.port(), resolver);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("resolved-hosts"),
        format!(
            "oxford/isp1 relay1.isp.test. {}\ncambridge/isp2 relay2.isp.test. {}\n",
            relay.addr.ip(),
            relay.addr.ip()
        ),
    )
    .unwrap();
    let server = TestServer::start_in(&setup, dir).await;
    assert_eq!(
        server.mx("oxford.smarthost.internal").await,
        vec![mx(10, "isp1.oxford"), mx(20, "isp2.cambridge")]
    );
    let a = udp(server.dns, "isp1.oxford.smarthost.internal", RecordType::A).await;
    assert_eq!(a.answers[0].data.ip_addr(), Some(relay.addr.ip()));
}

/// The DO flag of a response's OPT record.
fn dnssec_ok(bytes: &[u8]) -> bool {
    let m = Message::from_vec(bytes).unwrap();
    m.edns.expect("an OPT record").flags().dnssec_ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_do_bit_is_copied_to_the_response() {
    let (a, b) = (
        FakeSmtp::start(Behavior::Healthy).await,
        FakeSmtp::start(Behavior::Healthy).await,
    );
    let server = TestServer::start(&Setup::new(two_sites(&a, &b))).await;
    for (name, opcode) in [
        (
            "oxford.smarthost.internal",
            hickory_proto::op::OpCode::Query,
        ),
        (
            "nosuch.smarthost.internal",
            hickory_proto::op::OpCode::Query,
        ),
        // NOTIMP comes from the full parser's error path.
        (
            "oxford.smarthost.internal",
            hickory_proto::op::OpCode::Status,
        ),
    ] {
        for dnssec in [true, false] {
            let mut q = query(name, RecordType::MX, None);
            q.metadata.op_code = opcode;
            let mut e = Edns::new();
            e.set_max_payload(1232);
            e.set_dnssec_ok(dnssec);
            q.set_edns(e);
            let response = udp_raw(server.dns, &q.to_vec().unwrap()).await.unwrap();
            assert_eq!(
                dnssec_ok(&response),
                dnssec,
                "{name} {opcode:?} DO={dnssec}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_outside_allow_query_are_refused_and_counted() {
    let (a, b) = (
        FakeSmtp::start(Behavior::Healthy).await,
        FakeSmtp::start(Behavior::Healthy).await,
    );
    let mut setup = Setup::new(two_sites(&a, &b));
    setup.server = "allow_query = [\"127.50.0.0/16\"]\n\
        [server.rate_limit]\nresponses_per_second = 20\nslip = 0\nexempt = []"
        .into();
    let server = TestServer::start(&setup).await;
    let q = query("oxford.smarthost.internal", RecordType::MX, Some(1232));
    let allowed = UdpSocket::bind("127.50.0.1:0").await.unwrap();
    let m = Message::from_vec(
        &udp_raw_from(&allowed, server.dns, &q.to_vec().unwrap())
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(mx_set(&m).len(), 2);

    let other = UdpSocket::bind("127.51.0.1:0").await.unwrap();
    let m = Message::from_vec(
        &udp_raw_from(&other, server.dns, &q.to_vec().unwrap())
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(m.answers.is_empty() && m.additionals.is_empty());
    assert!(!m.metadata.authoritative);
    // Over TCP too (from 127.0.0.1, outside the list).
    let m = tcp(server.dns, "oxford.smarthost.internal", RecordType::MX).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);

    // Refusals are still rate-limited: a flood from the refused client is mostly dropped.
    let bytes = q.to_vec().unwrap();
    for _ in 0..100 {
        other.send_to(&bytes, server.dns).await.unwrap();
    }
    let mut answered = 0;
    let mut buf = vec![0u8; 4096];
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(300), other.recv_from(&mut buf)).await
    {
        answered += 1;
    }
    assert!(answered <= 40, "{answered} refusals sent of 100");
    let metrics = server.control.metrics.encode();
    let refused: f64 = metrics
        .lines()
        .find(|l| l.starts_with("smarthostd_dns_refused_by_acl_total "))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .expect("the refusals are counted");
    assert!(refused >= 2.0, "{metrics}");
}
