//! Address answers at names with a live MX answer: an MTA that never asks for MX (OpenSMTPD,
//! Postfix `[relayhost]`, Exim `byname`) connects to the name's own A/AAAA records, and must
//! fail over exactly when an MX-first one does.

use std::net::{IpAddr, SocketAddr};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use tokio::net::UdpSocket;

use smarthostd::state::drains::Drain;

use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::support::*;

/// Oxford: mail1 (IPv4), mail2 (IPv6, on ::1). Cambridge: mail1 (IPv4).
async fn relays() -> Relays {
    let mut relays = Relays::sites(1, 1, 0).await;
    (relays.oxford).push(FakeSmtp::start_on("::1".parse().unwrap(), Behavior::Healthy).await);
    relays
}

/// The sites' tables, each with its clients, after `extra`; `oxford` goes into oxford's.
fn sites(relays: &Relays, extra: &str, oxford: &str) -> String {
    let oxford = format!("clients = [\"127.10.0.0/16\"]\n{oxford}");
    let tables = relays.toml_with(&[
        ("oxford", &oxford),
        ("cambridge", "clients = [\"127.20.0.0/16\"]"),
    ]);
    format!("{extra}\n{tables}")
}

/// The sorted addresses of an A or AAAA answer, and its TTL.
async fn addresses(server: SocketAddr, name: &str, rtype: RecordType) -> (Vec<IpAddr>, u32) {
    let m = udp(server, name, rtype).await;
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NoError,
        "{name} {rtype}"
    );
    assert!(m.metadata.authoritative);
    let mut ips: Vec<IpAddr> = m.answers.iter().filter_map(|r| r.data.ip_addr()).collect();
    ips.sort();
    (ips, m.answers.first().map_or(0, |r| r.ttl))
}

async fn wait_addresses(server: SocketAddr, name: &str, rtype: RecordType, want: &[IpAddr]) -> u32 {
    let mut want = want.to_vec();
    want.sort();
    let want = &want;
    eventually(format!("{name} {rtype} as {want:?}"), || async move {
        let (got, ttl) = addresses(server, name, rtype).await;
        if got == *want {
            Ok(ttl)
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_name_answers_the_addresses_of_the_hosts_its_mx_answer_leads_with() {
    let mut r = relays().await;
    let server = TestServer::start(&Setup::new(sites(&r, "", ""))).await;
    let site = "oxford.smarthost.internal";
    let (ox1, ox2, cam) = (
        r.oxford[0].addr.ip(),
        r.oxford[1].addr.ip(),
        r.cambridge[0].addr.ip(),
    );

    // Healthy: the site's own relays, A and AAAA, with the MX answer's TTL.
    assert_eq!(
        addresses(server.dns, site, RecordType::A).await,
        (vec![ox1], 30)
    );
    assert_eq!(
        addresses(server.dns, site, RecordType::AAAA).await,
        (vec![ox2], 30)
    );
    // ANY gets one RRset, the MX (RFC 8482); the address answers are their own RRsets.
    let any = udp(server.dns, site, RecordType::ANY).await;
    assert!(any.answers.iter().all(|r| matches!(r.data, RData::MX(_))));

    // A drained relay leaves the address answer as it leaves the MX answer.
    server
        .control
        .drain("oxford", "mail1", Some(Drain { until: None }))
        .await
        .unwrap();
    // Oxford's only IPv4 relay is drained: an IPv4-only sender goes where an MX-first one
    // without IPv6 goes, to the fallback site (per address family, the lowest preference
    // that has an address of it).
    assert_eq!(
        addresses(server.dns, site, RecordType::A).await.0,
        vec![cam]
    );
    assert_eq!(
        addresses(server.dns, site, RecordType::AAAA).await.0,
        vec![ox2]
    );
    server.control.drain("oxford", "mail1", None).await.unwrap();
    wait_addresses(server.dns, site, RecordType::A, &[ox1]).await;

    // Every local relay down: the fallback site's relays, with the degraded TTL.
    r.oxford[0].stop();
    r.oxford[1].stop();
    let ttl = wait_addresses(server.dns, site, RecordType::A, &[cam]).await;
    assert_eq!(ttl, 15, "degraded while the local relays are down");
    let m = udp(server.dns, site, RecordType::AAAA).await;
    assert!(m.answers.is_empty(), "no healthy relay has IPv6: NODATA");
    assert_eq!(m.authorities.len(), 1, "NODATA carries the SOA");
    assert_eq!(server.mx(site).await, vec![mx(20, "mail1.cambridge")]);

    // Nothing healthy: every configured address (failsafe), never an empty answer.
    r.cambridge[0].stop();
    wait_addresses(server.dns, site, RecordType::A, &[ox1, cam]).await;
    assert_eq!(
        addresses(server.dns, site, RecordType::AAAA).await.0,
        vec![ox2]
    );

    // A local relay returns: it alone leads again, for A-only and MX-first senders alike.
    r.oxford[0].restart().await;
    wait_addresses(server.dns, site, RecordType::A, &[ox1]).await;
    assert_eq!(server.mx(site).await, vec![mx(10, "mail1.oxford")]);
    // Over TCP too.
    let tcp_answer = tcp(server.dns, site, RecordType::A).await;
    let ips: Vec<IpAddr> = tcp_answer
        .answers
        .iter()
        .filter_map(|r| r.data.ip_addr())
        .collect();
    assert_eq!(ips, vec![ox1]);
}

/// A query from a source address in `ip`'s site.
async fn a_from(ip: &str, server: SocketAddr, name: &str) -> Vec<IpAddr> {
    let socket = UdpSocket::bind(SocketAddr::new(ip.parse().unwrap(), 0))
        .await
        .unwrap();
    let q = query(name, RecordType::A, Some(1232));
    let bytes = udp_raw_from(&socket, server, &q.to_vec().unwrap())
        .await
        .expect("an answer");
    let m = hickory_proto::op::Message::from_vec(&bytes).unwrap();
    let mut ips: Vec<IpAddr> = m.answers.iter().filter_map(|r| r.data.ip_addr()).collect();
    ips.sort();
    ips
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_names_answer_addresses_per_view_and_keep_warm_standby_warm() {
    let r = relays().await;
    let setup = Setup::new(sites(
        &r,
        "[views]\nnames = [\"relay\"]\ndefault = \"all\"",
        "",
    ));
    let server = TestServer::start(&setup).await;
    let (ox1, cam) = (r.oxford[0].addr.ip(), r.cambridge[0].addr.ip());
    for name in ["smarthost.internal", "relay.smarthost.internal"] {
        assert_eq!(
            a_from("127.10.0.1", server.dns, name).await,
            vec![ox1],
            "{name}"
        );
        assert_eq!(
            a_from("127.20.0.1", server.dns, name).await,
            vec![cam],
            "{name}"
        );
        let mut all = vec![ox1, cam];
        all.sort();
        assert_eq!(
            a_from("127.30.0.1", server.dns, name).await,
            all,
            "{name}: the all view"
        );
    }

    // warm_share: that share of the site's address answers also names the first fallback.
    let warm = sites(&r, "", "fallback = [\"cambridge\"]\nwarm_share = 0.25");
    let server = TestServer::start(&Setup::new(warm)).await;
    let mut warm_answers = 0;
    for _ in 0..100 {
        let (ips, _) = addresses(server.dns, "oxford.smarthost.internal", RecordType::A).await;
        if ips.contains(&cam) {
            assert!(ips.contains(&ox1));
            warm_answers += 1;
        }
    }
    assert_eq!(
        warm_answers, 25,
        "exactly a quarter of the answers are warm"
    );
}
