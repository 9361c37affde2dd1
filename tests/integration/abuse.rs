//! Hostile clients: idle, half-sent and never-reading connections, floods of them, on the
//! admin port and on DNS over TCP. None may change an answer or lock a new client out.

use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::support::*;

/// Opens up to `n` connections to `to`, each connect bounded; returns those that connected.
async fn open_many(to: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut open = Vec::with_capacity(n);
    for _ in 0..n {
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(to)).await
        {
            open.push(s);
        }
    }
    open
}

/// Sum of the samples of `name` whose labels contain `with`.
fn metric(metrics: &str, name: &str, with: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(with))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Whether the peer has closed `s` within `limit` (reading whatever it sent before).
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut buf = vec![0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_flood_changes_no_answer_and_holds_no_descriptor_for_long() {
    raise_fd_limit(1500);
    let (a, b) = (
        FakeSmtp::start(Behavior::Healthy).await,
        FakeSmtp::start(Behavior::Healthy).await,
    );
    let server = ServerProcess::spawn(&Setup::new(two_sites(&a, &b)), Some(1024));
    let want = vec![mx(10, "mail1.oxford"), mx(20, "mail1.cambridge")];
    assert_eq!(
        mx_set(&udp(server.dns, "oxford.smarthost.internal", RecordType::MX).await),
        want
    );

    // A half-sent request that trickles a header line a second (slowloris), and a client that
    // pipelines requests and never reads the responses.
    let mut slowloris = TcpStream::connect(server.admin).await.unwrap();
    slowloris
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        for i in 0..30 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if slowloris
                .write_all(format!("X-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                return (slowloris, true);
            }
        }
        (slowloris, false)
    });
    let reader = TcpSocket::new_v4().unwrap();
    reader.set_recv_buffer_size(4096).unwrap();
    let mut never_reads = reader.connect(server.admin).await.unwrap();
    let pipelined = b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(400);
    let _ = tokio::time::timeout(Duration::from_secs(2), never_reads.write_all(&pipelined)).await;
    let flood_started = Instant::now();

    // 1,100 idle connections: more than the process may hold descriptors.
    let idle = open_many(server.admin, 1100).await;
    assert!(idle.len() > 1000, "only {} connected", idle.len());
    assert!(
        server.open_fds() < 200,
        "the admin port holds {} descriptors",
        server.open_fds()
    );

    // A new client is still served, and the answers, probes and DNS over TCP are untouched.
    let before = http_get(server.admin, "/metrics", Duration::from_secs(5))
        .await
        .expect("/metrics answers during the flood");
    assert_eq!(
        mx_set(&udp(server.dns, "oxford.smarthost.internal", RecordType::MX).await),
        want
    );
    assert_eq!(
        mx_set(&tcp(server.dns, "oxford.smarthost.internal", RecordType::MX).await),
        want
    );
    let probes = |m: &str, result| metric(m, "smarthostd_probe_results_total{", result);
    let up_before = probes(&before, "result=\"up\"");
    let after = eventually("probes going on during the flood", || async {
        let after = http_get(server.admin, "/metrics", Duration::from_secs(5))
            .await
            .expect("/metrics answers during the flood");
        if probes(&after, "result=\"up\"") > up_before {
            Ok(after)
        } else {
            Err(format!("{up_before} probes up, as before"))
        }
    })
    .await;
    assert_eq!(probes(&after, "result=\"down\""), 0.0, "no probe failed");
    assert_eq!(metric(&after, "smarthostd_site_answer_mode{", "site="), 0.0);
    assert!(metric(&after, "smarthostd_connections_evicted_total{", "admin") > 1000.0);

    // The slowloris client is cut off once its headers take longer than the header timeout,
    // the non-reader once its responses wait longer than the write timeout.
    let (_slowloris, cut) = trickle.await.unwrap();
    assert!(cut, "the half-sent request was never cut off");
    assert!(
        closed_within(
            &mut never_reads,
            Duration::from_secs(20).saturating_sub(flood_started.elapsed())
        )
        .await,
        "the connection that never reads was never closed"
    );
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_errors_back_off_instead_of_spinning() {
    let (a, b) = (
        FakeSmtp::start(Behavior::Healthy).await,
        FakeSmtp::start(Behavior::Healthy).await,
    );
    let mut setup = Setup::new(two_sites(&a, &b));
    setup.server = "udp_sockets = 1".into();
    // Just enough descriptors to start: every connection past a few fails to be accepted.
    let server = ServerProcess::spawn(&setup, Some(24));
    let _held = open_many(server.admin, 40).await;
    // Accepts fail from here on: the first failure is logged.
    server.log_with(&["backing off"]).await;
    // CPU is a rate: it takes a window of time to measure.
    let window = Duration::from_secs(2);
    let cpu_before = server.cpu_time();
    tokio::time::sleep(window).await;
    let used = server.cpu_time() - cpu_before;
    assert!(
        used < window / 4,
        "{used:?} of CPU in {window:?} while accepts fail"
    );
}

/// `n` queries for `name`, each framed for TCP.
fn pipelined_queries(name: &str, n: usize) -> Vec<u8> {
    let q = query(name, RecordType::MX, None).to_vec().unwrap();
    let one = [&(q.len() as u16).to_be_bytes()[..], &q].concat();
    one.repeat(n)
}

/// A new client's query over TCP, answered within `limit`.
async fn answered_within(dns: std::net::SocketAddr, limit: Duration) -> bool {
    let attempt = async {
        let mut s = TcpStream::connect(dns).await.ok()?;
        s.write_all(&pipelined_queries("oxford.smarthost.internal", 1))
            .await
            .ok()?;
        read_framed(&mut s).await
    };
    matches!(tokio::time::timeout(limit, attempt).await, Ok(Some(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_dns_client_is_served_past_a_thousand_stalled_or_idle_connections() {
    raise_fd_limit(2000);
    let (a, b) = (
        FakeSmtp::start(Behavior::Healthy).await,
        FakeSmtp::start(Behavior::Healthy).await,
    );
    let mut setup = Setup::new(two_sites(&a, &b));
    // Long enough that no timeout rescues the new client: only eviction can.
    setup.server = "tcp_idle_timeout = \"60s\"".into();
    let server = TestServer::start(&setup).await;

    // 1,000 clients that pipeline queries and never read: the server's writes stall.
    let burst = pipelined_queries("oxford.smarthost.internal", 300);
    let mut stalled = Vec::new();
    for _ in 0..1000 {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(2048).unwrap();
        if let Ok(Ok(mut s)) =
            tokio::time::timeout(Duration::from_secs(2), socket.connect(server.dns)).await
        {
            let _ = tokio::time::timeout(Duration::from_millis(200), s.write_all(&burst)).await;
            stalled.push(s);
        }
    }
    assert!(stalled.len() >= 900, "{} connected", stalled.len());
    assert!(
        answered_within(server.dns, Duration::from_secs(3)).await,
        "a new client is answered with 1,000 stalled connections open"
    );
    drop(stalled);

    // 1,000 idle clients.
    let idle = open_many(server.dns, 1000).await;
    assert!(idle.len() >= 900, "{} connected", idle.len());
    assert!(
        answered_within(server.dns, Duration::from_secs(3)).await,
        "a new client is answered with 1,000 idle connections open"
    );
    // A truncated UDP answer can be fetched over TCP meanwhile.
    let m = tcp(server.dns, "oxford.smarthost.internal", RecordType::MX).await;
    assert_eq!(mx_set(&m).len(), 2);
    drop(idle);
}
