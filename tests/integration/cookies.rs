//! DNS cookies over real sockets: a client cookie gets a server cookie back over UDP and TCP, a
//! valid one is kept and counted, one made by another instance with the shared secret is
//! accepted, malformed options get FORMERR, and a valid cookie exempts its client from rate
//! limiting while a forged, replayed or stale one does not.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use smarthostd::dns::cookie::{Cookie, Cookies, Presented};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, UdpSocket};

use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::support::*;

/// The secrets the servers here share with the tests' "other instance": the first signs.
const SECRET: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";
const RETIRED: &str = "dd3bdf9344b678b185a6f5cb60fca715";

fn key(hex: &str) -> [u8; 16] {
    std::array::from_fn(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
}

fn now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
}

/// A cookie another instance with `secret` would have handed `ip` at `at`: the client cookie
/// and its server cookie, 24 bytes.
fn cookie_from(secret: &str, client: [u8; 8], ip: &str, at: u32) -> Vec<u8> {
    let other = Cookies::new(&[key(secret)]).unwrap();
    let first = Cookie {
        client,
        server: Presented::None,
    };
    other
        .reply_at(&first, ip.parse().unwrap(), at)
        .data
        .to_vec()
}

/// `oxford.smarthost.internal MX` with a COOKIE option of `cookie`.
fn with_cookie(cookie: &[u8]) -> Message {
    let mut q = query("oxford.smarthost.internal", RecordType::MX, None);
    let mut e = Edns::new();
    e.set_max_payload(1232);
    e.options_mut()
        .insert(EdnsOption::Unknown(10, cookie.to_vec()));
    q.set_edns(e);
    q
}

/// The COOKIE option of a response.
fn cookie_of(m: &Message) -> Option<Vec<u8>> {
    match m.edns.as_ref()?.option(EdnsCode::Cookie)? {
        EdnsOption::Unknown(10, data) => Some(data.clone()),
        _ => None,
    }
}

async fn udp_from(ip: &str) -> UdpSocket {
    UdpSocket::bind(SocketAddr::new(ip.parse().unwrap(), 0))
        .await
        .unwrap()
}

async fn ask_udp(socket: &UdpSocket, server: SocketAddr, q: &Message) -> Option<Message> {
    let bytes = udp_raw_from(socket, server, &q.to_vec().unwrap()).await?;
    Some(Message::from_vec(&bytes).unwrap())
}

async fn ask_tcp(ip: &str, server: SocketAddr, q: &Message) -> Message {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(ip.parse().unwrap(), 0))
        .unwrap();
    let mut stream = socket.connect(server).await.unwrap();
    let bytes = q.to_vec().unwrap();
    let framed = [&(bytes.len() as u16).to_be_bytes()[..], &bytes].concat();
    stream.write_all(&framed).await.unwrap();
    Message::from_vec(&read_framed(&mut stream).await.expect("a TCP answer")).unwrap()
}

async fn server(extra: &str) -> (TestServer, FakeSmtp, FakeSmtp) {
    let a = FakeSmtp::start(Behavior::Healthy).await;
    let b = FakeSmtp::start(Behavior::Healthy).await;
    let mut setup = Setup::new(two_sites(&a, &b));
    setup.server = format!("[server.cookies]\nsecrets = [\"{SECRET}\", \"{RETIRED}\"]\n{extra}");
    (TestServer::start(&setup).await, a, b)
}

fn metric(server: &TestServer, cookie: &str) -> u64 {
    let text = server.control.metrics.encode();
    let prefix = format!("smarthostd_dns_cookies_total{{cookie=\"{cookie}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cookie_gets_a_server_cookie_that_is_valid_next_time_over_udp_and_tcp() {
    let (server, _a, _b) = server("").await;
    let client = [0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57];
    let socket = udp_from("127.60.0.1").await;

    let first = ask_udp(&socket, server.dns, &with_cookie(&client))
        .await
        .unwrap();
    assert_eq!(first.metadata.response_code, ResponseCode::NoError);
    assert!(!first.answers.is_empty());
    let issued = cookie_of(&first).expect("a server cookie for a client cookie");
    assert_eq!(issued.len(), 24);
    assert_eq!(issued[..8], client, "the client cookie echoed");
    assert_eq!(
        issued[8..12],
        [1, 0, 0, 0],
        "version 1, reserved 0 (RFC 9018)"
    );
    // Made with the first secret: what another instance with that secret accepts.
    let other = Cookies::new(&[key(SECRET)]).unwrap();
    let presented = Cookie {
        client,
        server: Presented::Standard(issued[8..].try_into().unwrap()),
    };
    let ip: IpAddr = "127.60.0.1".parse().unwrap();
    assert_eq!(
        other.reply_at(&presented, ip, now()).seen,
        smarthostd::metrics::CookieSeen::Valid
    );

    // Presented again, over UDP and over TCP: valid, and kept while young.
    let again = ask_udp(&socket, server.dns, &with_cookie(&issued))
        .await
        .unwrap();
    assert_eq!(cookie_of(&again).unwrap(), issued);
    let over_tcp = ask_tcp("127.60.0.1", server.dns, &with_cookie(&issued)).await;
    assert_eq!(over_tcp.metadata.response_code, ResponseCode::NoError);
    assert_eq!(cookie_of(&over_tcp).unwrap(), issued);
    // From another address the same cookie is not ours to accept: a fresh one comes back.
    let elsewhere = ask_udp(
        &udp_from("127.60.0.2").await,
        server.dns,
        &with_cookie(&issued),
    )
    .await
    .unwrap();
    assert_ne!(cookie_of(&elsewhere).unwrap(), issued);

    // A cookie made by another instance sharing the secrets, or with the retired secret: valid;
    // the retired one is replaced by one of the current secret.
    let shared = cookie_from(SECRET, [9; 8], "127.60.0.1", now() - 60);
    let m = ask_udp(&socket, server.dns, &with_cookie(&shared))
        .await
        .unwrap();
    assert_eq!(cookie_of(&m).unwrap(), shared);
    let retired = cookie_from(RETIRED, [9; 8], "127.60.0.1", now() - 60);
    let m = ask_udp(&socket, server.dns, &with_cookie(&retired))
        .await
        .unwrap();
    let renewed = cookie_of(&m).unwrap();
    assert_ne!(renewed, retired);
    let renewed = Cookie {
        client: [9; 8],
        server: Presented::Standard(renewed[8..].try_into().unwrap()),
    };
    assert_eq!(
        other.reply_at(&renewed, ip, now()).seen,
        smarthostd::metrics::CookieSeen::Valid
    );

    assert_eq!(metric(&server, "client_only"), 1);
    assert_eq!(metric(&server, "valid"), 4);
    assert_eq!(metric(&server, "invalid"), 1);
    // No cookie, no option back.
    let plain = ask_udp(
        &socket,
        server.dns,
        &query("oxford.smarthost.internal", RecordType::MX, Some(1232)),
    )
    .await
    .unwrap();
    assert_eq!(cookie_of(&plain), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_cookie_options_get_formerr() {
    let (server, _a, _b) = server("").await;
    let socket = udp_from("127.61.0.1").await;
    let mut two = with_cookie(&[1; 8]);
    let mut e = two.edns.clone().unwrap();
    e.options_mut().insert(EdnsOption::Unknown(10, vec![2; 8]));
    two.set_edns(e);
    let cases = [
        ("7 bytes", with_cookie(&[1; 7])),
        ("9 bytes", with_cookie(&[1; 9])),
        ("15 bytes", with_cookie(&[1; 15])),
        ("41 bytes", with_cookie(&[1; 41])),
        ("empty", with_cookie(&[])),
        ("two options", two),
    ];
    for (what, q) in &cases {
        let m = ask_udp(&socket, server.dns, q).await.expect("an answer");
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr, "{what}");
        assert_eq!(cookie_of(&m), None, "{what}");
        let raw = tcp_raw(server.dns, &q.to_vec().unwrap()).await;
        let m = Message::from_vec(&raw).unwrap();
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::FormErr,
            "{what} over TCP"
        );
    }
    assert_eq!(metric(&server, "malformed"), 2 * cases.len() as u64);
    // A 40-byte option (a server cookie of 32 bytes, another server's): answered, renewed.
    let m = ask_udp(&socket, server.dns, &with_cookie(&[1; 40]))
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(cookie_of(&m).unwrap().len(), 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_cookie_is_exempt_from_rate_limiting_and_a_forged_or_stale_one_is_not() {
    let (server, _a, _b) =
        server("[server.rate_limit]\nresponses_per_second = 5\nslip = 0\nexempt = []").await;
    // A spoofed flood from one /24, for as long as the test runs (at most 3,000 queries).
    let flood = udp_from("127.62.0.1").await;
    let q = query("oxford.smarthost.internal", RecordType::MX, Some(1232))
        .to_vec()
        .unwrap();
    let target = server.dns;
    let flooding = tokio::spawn(async move {
        for _ in 0..3000 {
            let _ = flood.send_to(&q, target).await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    // The flood is being limited.
    eventually("the flood limited", || async {
        let metrics = server.control.metrics.encode();
        sample(
            &metrics,
            "smarthostd_dns_rate_limited_total{action=\"dropped\"}",
        )
        .unwrap_or(0.0)
            > 0.0
    })
    .await;

    // A real resolver in the same /24: its first query over UDP may be limited, so it learns its
    // cookie over TCP (as after a truncated answer), then every UDP query is answered in full.
    let resolver = "127.62.0.2";
    let first = ask_tcp(resolver, server.dns, &with_cookie(&[5; 8])).await;
    let cookie = cookie_of(&first).expect("a cookie over TCP");
    let socket = udp_from(resolver).await;
    let started = Instant::now();
    for i in 0..40 {
        let m = ask_udp(&socket, server.dns, &with_cookie(&cookie))
            .await
            .unwrap_or_else(|| panic!("query {i} with a valid cookie was limited"));
        assert!(!m.metadata.truncation && !m.answers.is_empty(), "query {i}");
    }
    assert!(started.elapsed() < DEADLINE);

    // Without a cookie, with one forged, replayed from another address or an hour and more
    // old: limited with the flood.
    let now = now();
    let forged = [&cookie[..8], &[1, 0, 0, 0], &now.to_be_bytes(), &[0; 8]].concat();
    let stale = cookie_from(SECRET, [6; 8], "127.62.0.3", now - 3700);
    for (what, ip, option) in [
        ("no cookie", "127.62.0.3", None),
        ("a client cookie only", "127.62.0.3", Some(vec![6; 8])),
        ("a forged server cookie", resolver, Some(forged)),
        (
            "the resolver's cookie replayed",
            "127.62.0.3",
            Some(cookie.clone()),
        ),
        ("a stale server cookie", "127.62.0.3", Some(stale)),
    ] {
        let socket = udp_from(ip).await;
        let q = match &option {
            Some(c) => with_cookie(c),
            None => query("oxford.smarthost.internal", RecordType::MX, Some(1232)),
        };
        let bytes = q.to_vec().unwrap();
        for _ in 0..40 {
            socket.send_to(&bytes, server.dns).await.unwrap();
        }
        let mut answered = 0;
        let mut buf = vec![0u8; 4096];
        while let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(300), socket.recv_from(&mut buf)).await
        {
            answered += 1;
        }
        // The prefix's budget is 5 a second, which the flood mostly takes.
        assert!(answered <= 12, "{what}: {answered} of 40 answered");
    }
    flooding.abort();
    assert!(metric(&server, "valid") >= 40);
    assert!(metric(&server, "invalid") >= 40);
    let metrics = server.control.metrics.encode();
    assert!(
        metrics.contains("smarthostd_dns_rate_limited_total{action=\"dropped\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_secrets_need_a_restart_and_are_never_shown() {
    let (server, a, b) = server("").await;
    let mut setup = Setup::new(two_sites(&a, &b));
    let rotated = "00112233445566778899aabbccddeeff";
    setup.server = format!("[server.cookies]\nsecrets = [\"{rotated}\", \"{SECRET}\"]");
    server.rewrite(&setup);
    let reply = server.control.reload().await.unwrap();
    assert!(
        reply.contains("server.cookies changed: these take effect after a restart"),
        "{reply}"
    );
    for shown in [reply, server.control.metrics.encode()] {
        assert!(
            !shown.contains(rotated) && !shown.contains(SECRET),
            "{shown}"
        );
    }
    // A bad secret: check-config names file, line and key, and never the text.
    setup.server = "[server.cookies]\nsecrets = [\"e5e973e5a6b2a43f48e7dc849e37bfcZ\"]".into();
    server.rewrite(&setup);
    let path = server.dir.path().join("smarthost.toml");
    let out = cli(&["check-config", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("smarthost.toml:5:") && stderr.contains("server.cookies.secrets[0]"),
        "{stderr}"
    );
    assert!(!stderr.contains("e5e973e5"), "{stderr}");
    let error = server.control.reload().await.unwrap_err().to_string();
    assert!(!error.contains("e5e973e5"), "{error}");
}
