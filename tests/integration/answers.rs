//! The MX trick over real sockets: each site's answer as its hosts come and go.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::support::*;

fn all_sites() -> Vec<(u16, String)> {
    vec![
        mx(10, "mail1.oxford"),
        mx(10, "mail2.oxford"),
        mx(20, "mail1.cambridge"),
        mx(20, "mail2.cambridge"),
        mx(20, "mail1.london"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_healthy_the_site_leads_and_every_other_site_follows_at_20() {
    let sites = Relays::sites(2, 2, 1).await;
    let server = TestServer::start(&Setup::new(sites.toml())).await;
    let m = udp(server.dns, "oxford.smarthost.internal", RecordType::MX).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative, "AA set");
    assert!(!m.metadata.recursion_available, "RA clear");
    assert_eq!(mx_set(&m), all_sites());
    let mut addresses = additional_addresses(&m);
    addresses.sort();
    let mut want = vec![
        (
            "mail1.oxford.smarthost.internal.".to_string(),
            sites.oxford[0].addr.ip().to_string(),
        ),
        (
            "mail2.oxford.smarthost.internal.".to_string(),
            sites.oxford[1].addr.ip().to_string(),
        ),
        (
            "mail1.cambridge.smarthost.internal.".to_string(),
            sites.cambridge[0].addr.ip().to_string(),
        ),
        (
            "mail2.cambridge.smarthost.internal.".to_string(),
            sites.cambridge[1].addr.ip().to_string(),
        ),
        (
            "mail1.london.smarthost.internal.".to_string(),
            sites.london[0].addr.ip().to_string(),
        ),
    ];
    want.sort();
    assert_eq!(
        addresses, want,
        "every exchange's address, not just the first"
    );
    assert_eq!(m.answers[0].ttl, 30);
    // Cambridge's own answer puts Cambridge first.
    let cambridge = server.mx("cambridge.smarthost.internal").await;
    assert_eq!(
        cambridge[..2],
        [mx(10, "mail1.cambridge"), mx(10, "mail2.cambridge")]
    );
    // And the host name answers its address.
    let a = udp(server.dns, "mail2.oxford.smarthost.internal", RecordType::A).await;
    assert_eq!(a.answers.len(), 1);
    assert_eq!(a.answers[0].data.ip_addr(), Some(sites.oxford[1].addr.ip()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_local_host_leaves_then_all_local_then_everything() {
    let mut sites = Relays::sites(2, 2, 1).await;
    let server = TestServer::start(&Setup::new(sites.toml())).await;
    assert_eq!(server.mx("oxford.smarthost.internal").await, all_sites());

    sites.oxford[0].stop();
    let one_down = server
        .wait_mx("oxford.smarthost.internal", |m| {
            !m.contains(&mx(10, "mail1.oxford"))
        })
        .await;
    assert_eq!(
        one_down,
        vec![
            mx(10, "mail2.oxford"),
            mx(20, "mail1.cambridge"),
            mx(20, "mail2.cambridge"),
            mx(20, "mail1.london")
        ]
    );
    let degraded = udp(server.dns, "oxford.smarthost.internal", RecordType::MX).await;
    assert_eq!(
        degraded.answers[0].ttl, 15,
        "a down host in the answer's set halves the TTL"
    );

    sites.oxford[1].stop();
    let remote_only = server
        .wait_mx("oxford.smarthost.internal", |m| {
            m.iter().all(|(p, _)| *p == 20)
        })
        .await;
    assert_eq!(
        remote_only,
        vec![
            mx(20, "mail1.cambridge"),
            mx(20, "mail2.cambridge"),
            mx(20, "mail1.london")
        ]
    );

    for host in sites.cambridge.iter_mut().chain(sites.london.iter_mut()) {
        host.stop();
    }
    // Nothing healthy anywhere: the full configured set, never an empty answer.
    let failsafe = server
        .wait_mx("oxford.smarthost.internal", |m| m.len() == 5)
        .await;
    assert_eq!(failsafe, all_sites());
    let m = udp(server.dns, "oxford.smarthost.internal", RecordType::MX).await;
    assert_eq!(
        additional_addresses(&m).len(),
        5,
        "every named exchange still resolves"
    );

    // A host that returns is back in the answer.
    sites.oxford[0].restart().await;
    let back = server
        .wait_mx("oxford.smarthost.internal", |m| m.len() == 1)
        .await;
    assert_eq!(back, vec![mx(10, "mail1.oxford")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_fallback_ranks_sites_and_leaves_the_others_out() {
    let sites = Relays::sites(2, 2, 1).await;
    let server = TestServer::start(&Setup::new(
        sites.toml_with(&[("oxford", "fallback = [\"london\", \"cambridge\"]")]),
    ))
    .await;
    assert_eq!(
        server.mx("oxford.smarthost.internal").await,
        vec![
            mx(10, "mail1.oxford"),
            mx(10, "mail2.oxford"),
            mx(20, "mail1.london"),
            mx(30, "mail1.cambridge"),
            mx(30, "mail2.cambridge"),
        ]
    );
    let sites2 = Relays::sites(2, 2, 1).await;
    let server2 = TestServer::start(&Setup::new(
        sites2.toml_with(&[("oxford", "fallback = [\"london\"]")]),
    ))
    .await;
    assert_eq!(
        server2.mx("oxford.smarthost.internal").await,
        vec![
            mx(10, "mail1.oxford"),
            mx(10, "mail2.oxford"),
            mx(20, "mail1.london")
        ],
        "a site left out of fallback is not a fallback"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_answers_only_its_healthy_addresses_and_counts_up_while_one_is() {
    // One host with two addresses on the same port: one listens, one does not.
    let live = FakeSmtp::start(Behavior::Healthy).await;
    let dead_ip = crate::fake_smtp::next_loopback();
    let other = FakeSmtp::start(Behavior::Healthy).await;
    let rest = format!(
        "[sites.oxford]\nhosts = [{{ name = \"mail1\", addresses = [\"{}\", \"{dead_ip}\"], port = {} }}]\n\
         [sites.cambridge]\nhosts = [{}]\n",
        live.addr.ip(),
        live.addr.port(),
        other.host_entry("mail1")
    );
    let server = TestServer::start(&Setup::new(rest)).await;
    let a = udp(server.dns, "mail1.oxford.smarthost.internal", RecordType::A).await;
    let ips: Vec<_> = a.answers.iter().filter_map(|r| r.data.ip_addr()).collect();
    assert_eq!(ips, vec![live.addr.ip()]);
    assert_eq!(
        server.mx("oxford.smarthost.internal").await[0],
        mx(10, "mail1.oxford")
    );
}
