//! Geo views: one shared name, answered for the site that asks (source address or ECS).

use std::net::{IpAddr, SocketAddr};

use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use tokio::net::UdpSocket;

use crate::support::*;

/// One relay a site; the shared names answer per view, `warm` goes into oxford's table.
fn views(relays: &Relays, warm: &str) -> String {
    let oxford =
        format!("clients = [\"127.10.0.0/16\"]\nfallback = [\"cambridge\", \"london\"]\n{warm}");
    let cambridge = "clients = [\"127.20.0.0/16\", \"127.10.5.0/24\"]";
    format!(
        "[views]\nnames = [\"relay\"]\ndefault = \"all\"\n{}",
        relays.toml_with(&[("oxford", &oxford), ("cambridge", cambridge)])
    )
}

/// A socket whose source address is `ip`.
async fn from(ip: &str) -> UdpSocket {
    UdpSocket::bind(SocketAddr::new(ip.parse().unwrap(), 0))
        .await
        .unwrap()
}

async fn ask(socket: &UdpSocket, server: SocketAddr, q: &Message) -> Message {
    let bytes = udp_raw_from(socket, server, &q.to_vec().unwrap())
        .await
        .expect("an answer");
    Message::from_vec(&bytes).unwrap()
}

async fn mx_from(ip: &str, server: SocketAddr, name: &str) -> Vec<(u16, String)> {
    mx_set(
        &ask(
            &from(ip).await,
            server,
            &query(name, RecordType::MX, Some(1232)),
        )
        .await,
    )
}

fn with_subnet(name: &str, addr: &str, prefix: u8) -> Message {
    let mut q = query(name, RecordType::MX, None);
    let mut e = Edns::new();
    e.set_max_payload(1232);
    e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
        addr.parse::<IpAddr>().unwrap(),
        prefix,
        0,
    )));
    q.set_edns(e);
    q
}

/// `name MX` with `options` as the raw data of its OPT record.
fn with_raw_options(name: &str, options: &[u8]) -> Vec<u8> {
    let mut raw = query(name, RecordType::MX, None).to_vec().unwrap();
    raw[11] = 1;
    raw.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
    raw.extend_from_slice(&(options.len() as u16).to_be_bytes());
    raw.extend_from_slice(options);
    raw
}

fn scope(m: &Message) -> Option<u8> {
    match m.edns.as_ref()?.option(EdnsCode::Subnet)? {
        EdnsOption::Subnet(s) => Some(s.scope_prefix()),
        _ => None,
    }
}

fn oxford_view() -> Vec<(u16, String)> {
    vec![
        mx(10, "mail1.oxford"),
        mx(20, "mail1.cambridge"),
        mx(30, "mail1.london"),
    ]
}

fn cambridge_view() -> Vec<(u16, String)> {
    vec![
        mx(10, "mail1.cambridge"),
        mx(20, "mail1.oxford"),
        mx(20, "mail1.london"),
    ]
}

fn all_view() -> Vec<(u16, String)> {
    vec![
        mx(10, "mail1.oxford"),
        mx(10, "mail1.cambridge"),
        mx(10, "mail1.london"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_network_gets_its_site_view_longest_prefix_first() {
    let v = Relays::sites(1, 1, 1).await;
    let mut setup = Setup::new(views(&v, ""));
    setup.server = "trusted_resolvers = [\"127.40.0.0/16\"]".into();
    let server = TestServer::start(&setup).await;
    for name in ["smarthost.internal", "relay.smarthost.internal"] {
        assert_eq!(
            mx_from("127.10.0.1", server.dns, name).await,
            oxford_view(),
            "{name}"
        );
        assert_eq!(
            mx_from("127.20.9.9", server.dns, name).await,
            cambridge_view(),
            "{name}"
        );
        assert_eq!(
            mx_from("127.10.5.1", server.dns, name).await,
            cambridge_view(),
            "longest prefix: {name}"
        );
        assert_eq!(
            mx_from("127.30.0.1", server.dns, name).await,
            all_view(),
            "default view: {name}"
        );
    }
    // Per-site pseudo-domains do not depend on who asks.
    assert_eq!(
        mx_from("127.20.9.9", server.dns, "oxford.smarthost.internal").await,
        oxford_view()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_subnet_is_believed_only_from_trusted_resolvers() {
    let v = Relays::sites(1, 1, 1).await;
    let mut setup = Setup::new(views(&v, ""));
    setup.server = "trusted_resolvers = [\"127.40.0.0/16\"]".into();
    let server = TestServer::start(&setup).await;
    let trusted = from("127.40.0.1").await;
    let m = ask(
        &trusted,
        server.dns,
        &with_subnet("smarthost.internal", "127.20.1.0", 24),
    )
    .await;
    assert_eq!(mx_set(&m), cambridge_view());
    assert_eq!(
        scope(&m),
        Some(16),
        "echoed with the prefix of the network that chose the view"
    );
    let m = ask(
        &trusted,
        server.dns,
        &with_subnet("smarthost.internal", "127.99.1.0", 24),
    )
    .await;
    assert_eq!(mx_set(&m), all_view());
    assert_eq!(
        scope(&m),
        Some(10),
        "the default view holds for all of 127.64.0.0/10, where no site network is"
    );
    // A subnet shorter than the site networks inside it: the scope is at least as long as
    // the longest of them, so the resolver does not cache this answer for their clients.
    let m = ask(
        &trusted,
        server.dns,
        &with_subnet("smarthost.internal", "127.0.0.0", 8),
    )
    .await;
    assert_eq!(mx_set(&m), all_view());
    assert_eq!(
        scope(&m),
        Some(24),
        "127.10.5.0/24 of cambridge is inside 127/8"
    );
    let m = ask(
        &trusted,
        server.dns,
        &with_subnet("smarthost.internal", "127.16.0.0", 12),
    )
    .await;
    assert_eq!(mx_set(&m), all_view(), "127.16.0.0 itself is in no site");
    assert_eq!(
        scope(&m),
        Some(16),
        "cambridge's 127.20.0.0/16 is inside 127.16/12"
    );
    // From anyone else the option is ignored: the source address decides, and scope is 0.
    let untrusted = from("127.10.0.9").await;
    let m = ask(
        &untrusted,
        server.dns,
        &with_subnet("smarthost.internal", "127.20.1.0", 24),
    )
    .await;
    assert_eq!(mx_set(&m), oxford_view());
    assert_eq!(scope(&m), Some(0));
    // A name that does not depend on the view gets scope 0 even from a trusted resolver.
    let m = ask(
        &trusted,
        server.dns,
        &with_subnet("oxford.smarthost.internal", "127.20.1.0", 24),
    )
    .await;
    assert_eq!(scope(&m), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_changes_are_seen_through_every_view() {
    let mut v = Relays::sites(1, 1, 1).await;
    let server = TestServer::start(&Setup::new(views(&v, ""))).await;
    v.oxford[0].stop();
    server
        .wait_mx("oxford.smarthost.internal", |m| {
            !m.contains(&mx(10, "mail1.oxford"))
        })
        .await;
    assert_eq!(
        mx_from("127.10.0.1", server.dns, "smarthost.internal").await,
        vec![mx(20, "mail1.cambridge"), mx(30, "mail1.london")]
    );
    assert_eq!(
        mx_from("127.20.0.1", server.dns, "relay.smarthost.internal").await,
        vec![mx(10, "mail1.cambridge"), mx(20, "mail1.london")]
    );
    assert_eq!(
        mx_from("127.30.0.1", server.dns, "smarthost.internal").await,
        vec![mx(10, "mail1.cambridge"), mx(10, "mail1.london")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_warm_share_is_exact_over_1000_answers() {
    let v = Relays::sites(1, 1, 1).await;
    let mut setup = Setup::new(views(&v, "warm_share = 0.2"));
    // One probe round, then none during the count: this test is about the share, not health.
    setup.probe = "[probe]\ninterval = \"1h\"\ntimeout = \"2s\"\n".into();
    let server = TestServer::start(&setup).await;
    let socket = from("127.0.0.1").await;
    let mut warm = 0;
    for _ in 0..1000 {
        let m = ask(
            &socket,
            server.dns,
            &query("oxford.smarthost.internal", RecordType::MX, None),
        )
        .await;
        let answer = mx_set(&m);
        if answer.contains(&mx(10, "mail1.cambridge")) {
            assert_eq!(
                answer,
                vec![
                    mx(10, "mail1.oxford"),
                    mx(10, "mail1.cambridge"),
                    mx(30, "mail1.london")
                ]
            );
            warm += 1;
        } else {
            assert_eq!(answer, oxford_view());
        }
    }
    assert_eq!(warm, 200);
    let metrics = server.control.metrics.encode();
    assert!(
        metrics.contains("smarthostd_warm_answers_total{site=\"oxford\"} 200"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_client_subnet_gets_formerr_over_udp_and_tcp() {
    let v = Relays::sites(1, 1, 1).await;
    let mut setup = Setup::new(views(&v, ""));
    setup.server = "trusted_resolvers = [\"127.40.0.0/16\"]".into();
    let server = TestServer::start(&setup).await;
    let trusted = from("127.40.0.1").await;
    let ecs = |body: &[u8]| [&[0, 8][..], &(body.len() as u16).to_be_bytes(), body].concat();
    // RFC 7871 section 6: bits set past the source prefix (10.1.3.0/23), or more address
    // octets than the prefix needs, are FORMERR, however the query is laid out.
    for (what, body) in [
        ("10.1.3.0/23", &[0, 1, 23, 0, 10, 1, 3][..]),
        ("10.1.0.0/16 in three octets", &[0, 1, 16, 0, 10, 1, 0][..]),
        ("a scope in a query", &[0, 1, 24, 8, 10, 1, 2][..]),
    ] {
        let raw = with_raw_options("smarthost.internal", &ecs(body));
        let answer = udp_raw_from(&trusted, server.dns, &raw)
            .await
            .expect("an answer");
        let m = Message::from_vec(&answer).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr, "{what}");
        assert!(m.answers.is_empty() && scope(&m).is_none(), "{what}");
        let m = Message::from_vec(&tcp_raw(server.dns, &raw).await).unwrap();
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::FormErr,
            "{what} over TCP"
        );
    }
    // The same subnet written as the RFC asks is answered for the view it chooses.
    let raw = with_raw_options("smarthost.internal", &ecs(&[0, 1, 23, 0, 127, 20, 0]));
    let m = Message::from_vec(&udp_raw_from(&trusted, server.dns, &raw).await.unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(mx_set(&m), cambridge_view());
}
