//! Abuse limits: response rate limiting, TCP limits, and no leak after many failed probes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::support::*;

async fn pair() -> (FakeSmtp, FakeSmtp, String) {
    let a = FakeSmtp::start(Behavior::Healthy).await;
    let b = FakeSmtp::start(Behavior::Healthy).await;
    let rest = two_sites(&a, &b);
    (a, b, rest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limiting_holds_a_flood_from_one_prefix_while_another_is_answered() {
    let (_a, _b, rest) = pair().await;
    let mut setup = Setup::new(rest);
    setup.server = "[server.rate_limit]\nresponses_per_second = 20\nslip = 2\nexempt = []".into();
    let server = TestServer::start(&setup).await;
    let flood = UdpSocket::bind("127.70.0.1:0").await.unwrap();
    let q = query("oxford.smarthost.internal", RecordType::MX, None)
        .to_vec()
        .unwrap();
    for _ in 0..200 {
        flood.send_to(&q, server.dns).await.unwrap();
    }
    // Another client in another /24 is answered in full meanwhile.
    let other = UdpSocket::bind("127.71.0.1:0").await.unwrap();
    let answer = udp_raw_from(&other, server.dns, &q)
        .await
        .expect("the other client is answered");
    let answer = Message::from_vec(&answer).unwrap();
    assert!(!answer.metadata.truncation && !answer.answers.is_empty());

    let (mut full, mut truncated) = (0, 0);
    let mut buf = vec![0u8; 4096];
    while let Ok(Ok((n, _))) =
        tokio::time::timeout(Duration::from_millis(500), flood.recv_from(&mut buf)).await
    {
        let m = Message::from_vec(&buf[..n]).unwrap();
        if m.metadata.truncation {
            assert!(m.answers.is_empty());
            truncated += 1;
        } else {
            full += 1;
        }
    }
    // 20 a second; the flood may straddle one second boundary.
    assert!((20..=40).contains(&full), "{full} full answers");
    assert!(
        truncated >= 50,
        "every second limited answer slips out truncated: {truncated}"
    );
    assert!(
        full + truncated < 150,
        "the rest are dropped: {full} + {truncated}"
    );
    let metrics = server.control.metrics.encode();
    assert!(
        metrics.contains("smarthostd_dns_rate_limited_total{action=\"dropped\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_limits_hold() {
    let (_a, _b, rest) = pair().await;
    let mut setup = Setup::new(rest);
    // An idle timeout long enough to tell a close at the query limit from one for idleness.
    let idle = Duration::from_secs(2);
    setup.server = format!(
        "tcp_max_connections = 2\ntcp_idle_timeout = \"{}\"\ntcp_max_queries = 3",
        humantime::format_duration(idle)
    );
    let server = TestServer::start(&setup).await;
    let q = query("oxford.smarthost.internal", RecordType::MX, None)
        .to_vec()
        .unwrap();
    let framed = [&(q.len() as u16).to_be_bytes()[..], &q].concat();

    // Queries per connection: after three, the server answers what was already sent and
    // closes; a query sent later is not answered.
    let mut c = TcpStream::connect(server.dns).await.unwrap();
    for _ in 0..5 {
        c.write_all(&framed).await.unwrap();
    }
    for _ in 0..5 {
        assert!(
            read_framed(&mut c).await.is_some(),
            "pipelined queries are not lost"
        );
    }
    let answered = Instant::now();
    let mut byte = [0u8; 1];
    let end = tokio::time::timeout(DEADLINE, c.read(&mut byte)).await;
    assert!(
        matches!(end, Ok(Ok(0)) | Ok(Err(_))),
        "closed after the last answer: {end:?}"
    );
    assert!(
        answered.elapsed() < idle / 2,
        "closed at the limit, not for idleness: {:?}",
        answered.elapsed()
    );
    let _ = c.write_all(&framed).await;
    assert!(
        read_framed(&mut c).await.is_none(),
        "a query after the limit is not answered"
    );

    // Concurrent connections: with both slots taken by idle clients, a third is served at
    // once, and the one idle for longest is closed to make room. Each is seen served, in
    // turn, so that the first is the one idle for longest.
    let mut first = TcpStream::connect(server.dns).await.unwrap();
    first.write_all(&framed).await.unwrap();
    assert!(read_framed(&mut first).await.is_some());
    let mut second = TcpStream::connect(server.dns).await.unwrap();
    second.write_all(&framed).await.unwrap();
    assert!(read_framed(&mut second).await.is_some());
    let started = Instant::now();
    let mut third = TcpStream::connect(server.dns).await.unwrap();
    third.write_all(&framed).await.unwrap();
    let answer = read_framed(&mut third).await;
    assert!(
        answer.is_some(),
        "a new client is served while the slots are full"
    );
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "served without waiting for an idle timeout: {:?}",
        started.elapsed()
    );
    let closed = tokio::time::timeout(Duration::from_millis(200), first.read(&mut byte)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the longest-idle connection made room: {closed:?}"
    );
    // Idle timeout: the second connection, left alone, is closed by the server too.
    let closed = tokio::time::timeout(idle + DEADLINE, second.read(&mut byte)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "idle connection closed: {closed:?}"
    );
    let evicted = server.control.metrics.encode();
    assert!(
        evicted.contains("smarthostd_connections_evicted_total{listener=\"dns\"} 1"),
        "{evicted}"
    );
}

fn gauge(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing"))
}

fn failed_probes(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("smarthostd_probe_results_total{") && l.contains("result=\"down\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn scrape(admin: SocketAddr) -> String {
    let mut s = TcpStream::connect(admin).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_failed_probes_leave_no_task_and_no_descriptor_behind() {
    let mut hosts = Vec::new();
    let mut entries = Vec::new();
    for i in 0..24 {
        let behavior = match i % 3 {
            0 => Behavior::Silent,
            1 => Behavior::StallMidGreeting,
            _ => Behavior::Busy,
        };
        let h = FakeSmtp::start(behavior).await;
        entries.push(h.host_entry(&format!("h{i}")));
        hosts.push(h);
    }
    for i in 0..24 {
        let closed = FakeSmtp::closed().await;
        entries.push(format!(
            "{{ name = \"c{i}\", addresses = [\"{}\"], port = {} }}",
            closed.ip(),
            closed.port()
        ));
    }
    let good = FakeSmtp::start(Behavior::Healthy).await;
    let mut setup = Setup::new(format!(
        "[sites.bad]\nhosts = [{}]\n[sites.good]\nhosts = [{}]\n",
        entries.join(", "),
        good.host_entry("mail1")
    ));
    setup.probe = "[probe]\ninterval = \"100ms\"\ntimeout = \"25ms\"\nrise = 2\nfall = 2\n".into();
    // Its own process, so that its descriptors and tasks are its own.
    let server = ServerProcess::spawn(&setup, None);
    let fd_dir = format!("/proc/{}/fd", server.pid());
    let first = scrape(server.admin).await;
    let tasks_before = gauge(&first, "smarthostd_runtime_alive_tasks");
    // One probe task per address (48 here) is among them, or a leak of probes would not show.
    assert!(
        tasks_before >= 48.0,
        "runtime_alive_tasks {tasks_before} does not count the probe tasks"
    );
    let fds_before = std::fs::read_dir(&fd_dir).unwrap().count();
    let last = eventually_within(Duration::from_secs(120), "10,000 failed probes", || async {
        let metrics = scrape(server.admin).await;
        let failed = failed_probes(&metrics);
        if failed >= 10_000.0 {
            Ok(metrics)
        } else {
            Err(format!("{failed} failed probes"))
        }
    })
    .await;
    let tasks_after = gauge(&last, "smarthostd_runtime_alive_tasks");
    let fds_after = std::fs::read_dir(&fd_dir).unwrap().count();
    // Probes in flight hold one socket each: at most one per address, 48 here.
    let in_flight = 48.0;
    assert!(
        tasks_after <= tasks_before + 2.0,
        "tasks {tasks_before} → {tasks_after}"
    );
    assert!(
        (fds_after as f64) <= fds_before as f64 + in_flight,
        "descriptors {fds_before} → {fds_after}"
    );
    for h in &hosts {
        assert!(
            h.open.load(std::sync::atomic::Ordering::Relaxed) <= 1,
            "a stalled session stayed open"
        );
    }
}
