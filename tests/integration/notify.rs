//! NOTIFY to secondaries over real UDP: a socket the test binds plays the secondary. Each
//! NOTIFY is checked as a secondary checks it (opcode, the zone's SOA, the TSIG with the first
//! key); unanswered, it is sent again after 1 s, then 2 s; answered, it stops; a burst of
//! changes gives the secondary at most one NOTIFY a second, for the latest serial.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::{RData, RecordType, TSigResponseContext};
use smarthostd::state::drains::Drain;
use tokio::net::UdpSocket;

use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::support::*;
use crate::transfer::{good_signer, transfer_table};

/// A NOTIFY received by `secondary`, checked: its bytes, sender, ID, serial, and when it came.
struct Received {
    bytes: Vec<u8>,
    from: SocketAddr,
    id: u16,
    serial: u32,
    at: Instant,
    mac: Vec<u8>,
}

/// The next NOTIFY within `limit`, its TSIG verified with the test key.
async fn next_notify(secondary: &UdpSocket, limit: Duration) -> Option<Received> {
    let mut buf = vec![0u8; 4096];
    let (n, from) = tokio::time::timeout(limit, secondary.recv_from(&mut buf))
        .await
        .ok()?
        .unwrap();
    let bytes = buf[..n].to_vec();
    let (mac, _, _) = good_signer()
        .verify_message_byte(&bytes, None, true)
        .expect("NOTIFY signed with the first key");
    let m = Message::from_vec(&bytes).unwrap();
    assert_eq!(m.metadata.op_code, OpCode::Notify);
    assert_eq!(m.metadata.message_type, MessageType::Query);
    assert!(m.metadata.authoritative);
    assert_eq!(m.queries[0].query_type(), RecordType::SOA);
    assert_eq!(m.queries[0].name().to_string(), "smarthost.internal.");
    let serial = match &m.answers[0].data {
        RData::SOA(soa) => soa.serial,
        other => panic!("{other:?}"),
    };
    Some(Received {
        bytes,
        from,
        id: m.metadata.id,
        serial,
        at: Instant::now(),
        mac,
    })
}

/// Answers a NOTIFY as a secondary does: same ID, signed with the key.
async fn acknowledge(secondary: &UdpSocket, notify: &Received) {
    let request = Message::from_vec(&notify.bytes).unwrap();
    let mut m = Message::response(notify.id, OpCode::Notify);
    m.metadata.authoritative = true;
    m.add_queries(request.queries.clone());
    let now = smarthostd::dnssec::unix_seconds(std::time::SystemTime::now());
    let context = TSigResponseContext::new(notify.id, now, good_signer(), notify.mac.clone(), None);
    let tsig = context.sign(&m.to_vec().unwrap()).unwrap();
    m.set_signature(tsig);
    secondary
        .send_to(&m.to_vec().unwrap(), notify.from)
        .await
        .unwrap();
}

/// Site `a` with relays `m` and `n`, NOTIFY to `secondary`.
async fn setup(secondary: &UdpSocket) -> (TestServer, [FakeSmtp; 2]) {
    let relays = [
        FakeSmtp::start(Behavior::Healthy).await,
        FakeSmtp::start(Behavior::Healthy).await,
    ];
    let notify = format!("notify = [\"{}\"]", secondary.local_addr().unwrap());
    let rest = format!(
        "[sites.a]\nhosts = [{}, {}]\n{}",
        relays[0].host_entry("m"),
        relays[1].host_entry("n"),
        transfer_table("127.0.0.0/8", &notify)
    );
    (TestServer::start(&Setup::new(rest)).await, relays)
}

#[tokio::test]
async fn an_unanswered_notify_is_sent_again_doubling_its_wait() {
    let secondary = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (_server, _relay) = setup(&secondary).await;
    let first = next_notify(&secondary, DEADLINE)
        .await
        .expect("NOTIFY at start");
    let second = next_notify(&secondary, Duration::from_secs(3))
        .await
        .expect("sent again");
    let third = next_notify(&secondary, Duration::from_secs(4))
        .await
        .expect("and again");
    assert_eq!((second.serial, third.serial), (first.serial, first.serial));
    let waits = (second.at - first.at, third.at - second.at);
    assert!(
        waits.0 >= Duration::from_millis(900) && waits.1 >= Duration::from_millis(1900),
        "waits {waits:?}: 1 s, then 2 s"
    );
    assert_ne!(first.id, second.id, "each send its own ID");
}

#[tokio::test]
async fn an_answered_notify_stops_and_a_burst_of_changes_is_coalesced() {
    let secondary = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (server, _relay) = setup(&secondary).await;
    let first = next_notify(&secondary, DEADLINE)
        .await
        .expect("NOTIFY at start");
    acknowledge(&secondary, &first).await;
    // Answered: no retry comes in the time the first one would have taken.
    assert!(
        next_notify(&secondary, Duration::from_millis(2500))
            .await
            .is_none(),
        "answered, yet sent again"
    );
    // Ten changes at once (a drain of one of the two relays changes the site's answer; of the
    // only one it would not: the failsafe names it still): the secondary hears of them at most once a second, and ends with
    // the serial of the last.
    let burst = Instant::now();
    for i in 0..10 {
        let drain = (i % 2 == 0).then_some(Drain { until: None });
        server.control.drain("a", "m", drain).await.unwrap();
    }
    server
        .control
        .drain("a", "m", Some(Drain { until: None }))
        .await
        .unwrap();
    let last = match &udp(server.dns, "smarthost.internal", RecordType::SOA)
        .await
        .answers[0]
        .data
    {
        RData::SOA(soa) => soa.serial,
        other => panic!("{other:?}"),
    };
    let mut seen = Vec::new();
    while let Some(n) = next_notify(&secondary, Duration::from_secs(3)).await {
        acknowledge(&secondary, &n).await;
        let done = n.serial == last;
        seen.push(n);
        if done {
            break;
        }
    }
    assert_eq!(
        seen.last().map(|n| n.serial),
        Some(last),
        "the latest serial is announced"
    );
    assert!(seen.len() <= 3, "{} NOTIFYs for one burst", seen.len());
    for pair in seen.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_millis(900),
            "one a second at most"
        );
    }
    assert!(
        seen.last().unwrap().at - burst < Duration::from_secs(3),
        "the burst's last change is announced within the coalescing bound"
    );
}
